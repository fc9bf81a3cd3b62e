// tests/e2e/host_side.cc: see the header.
#include "tests/e2e/host_side.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>

#include "tests/e2e/guest.h"
#include "tests/e2e/subprocess.h"

namespace qswitch::e2e {

CtlResult run_ctl(const std::string& ctl_sock, const std::vector<std::string>& args,
                  const std::string& stderr_path, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {qswitch_binary(), "ctl", "--sock", ctl_sock};
  argv.insert(argv.end(), args.begin(), args.end());
  CtlResult result;
  std::string error;
  std::unique_ptr<Subprocess> p = Subprocess::spawn(argv, stderr_path, &error);
  if (!p) {
    result.err = error;
    return result;
  }
  p->wait_for([](const std::string&) { return false; }, timeout);  // until EOF or timeout
  const std::optional<int> status = p->wait_exit(std::chrono::seconds(5));
  if (status && WIFEXITED(*status)) result.exit_code = WEXITSTATUS(*status);
  result.out = p->output();
  result.err = read_text_file(stderr_path);
  return result;
}

std::string describe(const CtlResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

TcpRead tcp_read_loopback(uint16_t port, std::chrono::milliseconds timeout, bool ipv6) {
  using Clock = std::chrono::steady_clock;
  TcpRead result;
  const int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    result.connect_errno = errno;
    return result;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (ipv6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    result.connect_errno = errno;
    ::close(fd);
    return result;
  }
  const auto deadline = Clock::now() + timeout;
  char buf[512];
  while (Clock::now() < deadline && result.data.size() < 4096) {
    pollfd p{fd, POLLIN, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    result.data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return result;
}

}  // namespace qswitch::e2e
