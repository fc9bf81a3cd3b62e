// tests/e2e/host_side.h: what the e2e tests do on the host beside the guests: run `qswitch ctl`
// as a real process, and read a TCP service through the host's loopback (a slirp port's host
// forward). Every call is bounded in time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace qswitch::e2e {

struct CtlResult {
  int exit_code = -1;  // -1: did not exit in time (or could not start)
  std::string out;
  std::string err;  // its stderr, or why it could not start
};

// `qswitch ctl --sock CTL_SOCK ARGS...`: waits until its stdout closes or `timeout` passes, then
// up to 5 s for it to exit; stderr goes through `stderr_path` (a file in the test's temp dir).
CtlResult run_ctl(const std::string& ctl_sock, const std::vector<std::string>& args,
                  const std::string& stderr_path,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
// "exit N\nstdout:\n...\nstderr:\n...": for failure messages.
std::string describe(const CtlResult& r);

struct TcpRead {
  int connect_errno = 0;  // 0: connected
  std::string data;       // everything read until EOF, the deadline or 4096 bytes
};

// Connects to 127.0.0.1:port (with `ipv6`: [::1]:port) and reads until the peer closes, 4096
// bytes arrived or `timeout` passes.
TcpRead tcp_read_loopback(uint16_t port, std::chrono::milliseconds timeout, bool ipv6 = false);

}  // namespace qswitch::e2e
