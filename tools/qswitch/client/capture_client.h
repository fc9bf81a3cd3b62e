// tools/qswitch/client/capture_client.h: `qswitch ctl capture`, the client of the "capture"
// command.
//
// Theory of operation
// - `qswitch ctl capture [--port ID] [--filter BPF] -w FILE|- [--duration S] [--count N]` sends
//   the request, reads the reply line, then copies the stream to FILE (0600) or stdout. It writes
//   only whole pcap units (the global header, then complete records: pcap_stream.h), so a
//   capture stopped by SIGINT/SIGTERM, --duration, --count or the switch going away leaves a
//   valid pcap file. Exit 0 when stopped that way, 1 on an error reply or I/O error, 2 on usage.
// - The server side is capture_commands.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qswitch::tools {

struct CaptureCliOptions {
  std::string sock;
  std::optional<uint32_t> port;
  std::string filter;
  std::string write_path;  // "-" is stdout; empty: -w was not given (a usage error)
  std::optional<double> duration_s;
  std::optional<uint64_t> count;
  bool help = false;
};

// Parses the words after "capture" (sock: the default or --sock given before "capture").
bool parse_capture_args(const std::vector<std::string>& args, CaptureCliOptions& options,
                        std::string& error);
std::string capture_request_line(const CaptureCliOptions& options);
const char* capture_usage();

// argv: the words after "capture".
int run_ctl_capture(const std::string& sock, int argc, const char* const* argv);

}  // namespace qswitch::tools
