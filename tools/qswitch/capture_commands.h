// tools/qswitch/capture_commands.h: live capture over the control channel, both ends.
//
// Theory of operation
// - Server side: "capture" {"port": ID (optional), "filter": "BPF" (optional)} validates the
//   port and compiles the filter (a bad one is an error reply naming libpcap's message), replies
//   {"capturing": true, "port": ID|null, "filter": "..."} and takes the connection over: from
//   then on it carries a pcap byte stream (global header first) written by backends::CaptureHub,
//   until the client closes it. "capture.list" lists the sessions with their counters;
//   "capture.stop" {"id"} ends one (the only way to end a --pcap FILE capture early).
// - Client side: `qswitch ctl capture [--port ID] [--filter BPF] -w FILE|- [--duration S]
//   [--count N]` sends the request, reads the reply line, then copies the stream to FILE (0600)
//   or stdout. It writes only whole pcap units (the global header, then complete records), so a
//   capture stopped by SIGINT/SIGTERM, --duration, --count or the switch going away leaves a
//   valid pcap file. Exit 0 when stopped that way, 1 on an error reply or I/O error, 2 on usage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/capture/capture_hub.h"
#include "tools/qswitch/control_api.h"

namespace qswitch::tools {

void register_capture_commands(ControlApi& api, backends::CaptureHub& hub);

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

// Cuts a pcap byte stream into whole units: the 24-byte global header, then records (16-byte
// header + caplen, in the stream's byte order as its magic says).
class PcapStreamCutter {
 public:
  // Appends bytes; returns false on a stream that is not pcap (error() says why).
  bool feed(const char* data, size_t size);
  // Bytes at the front of the buffer that form whole units, ready to write.
  size_t ready_size() const { return ready_; }
  const char* data() const { return buf_.data(); }
  // Drops `size` ready bytes (after writing them).
  void consume(size_t size);
  uint64_t record_count() const { return records_; }  // complete records seen so far
  // Limits ready_size() to the header and the first `max_records` records.
  void set_record_limit(uint64_t max_records) { limit_ = max_records; }
  bool limit_reached() const { return limit_ != 0 && records_ >= limit_; }
  const std::string& error() const { return error_; }

 private:
  void scan();

  std::string buf_;
  size_t ready_ = 0;    // whole units at the front of buf_
  bool have_header_ = false;
  bool swapped_ = false;
  uint64_t records_ = 0;
  uint64_t limit_ = 0;
  std::string error_;
};

// argv: the words after "capture".
int run_ctl_capture(const std::string& sock, int argc, const char* const* argv);

}  // namespace qswitch::tools
