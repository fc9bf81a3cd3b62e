// tools/qswitch/services/capture_hub.h: live packet capture of the switch, written as pcap by
// libpcap.
//
// Theory of operation
// - CaptureHub is the switch's CaptureHook (switch/l2_switch.h). It installs itself with
//   set_capture_hook(this) only while at least one session exists, so a switch nobody captures
//   pays one null-pointer test per frame.
// - A session records either the whole switch (each frame once, at ingress: every frame that
//   enters the switch, whatever the switch then does with it) or one port (frames received on it
//   at ingress and frames queued to it at egress). An optional BPF filter, compiled by libpcap
//   (pcap_open_dead(DLT_EN10MB) + pcap_compile), is run on each frame with pcap_offline_filter.
// - The pcap file format is written by libpcap itself: pcap_dump_fopen on a FILE* made with
//   fopencookie whose write callback appends to the session's bounded ring buffer (unbuffered
//   FILE, so every pcap_dump reaches the ring at once). Before each pcap_dump the whole record
//   (16-byte header + caplen) must fit in the ring, else the frame is dropped and counted
//   (dropped_slow): a slow consumer never slows the switch and never sees a torn record.
// - The ring drains to the session's output fd, non-blocking, from the loop: a uv_check handle
//   (after each poll phase, so once per loop turn, batching that turn's frames) writes what it
//   can; on EAGAIN a uv_poll waits for UV_WRITABLE. A regular file (--pcap FILE) cannot be
//   polled and is simply written each turn.
// - A socket output (the control connection handed over after the "capture" reply) is also
//   polled for reading: anything the client sends is discarded, and EOF / an error / EPIPE on
//   write ends the session, which is then removed (logged with its counters).
// - No allocation per frame: the ring is allocated when the session starts; the timestamp is
//   the real time of the hook call (clock_gettime(CLOCK_REALTIME)).
// - Single-threaded, on the switch's loop. The hub must outlive every caller of attach() (the
//   control server's takeover callbacks): destroy the control server first.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "switch/l2_switch.h"

namespace qswitch::tools {

struct CaptureSpec {
  std::optional<sw::PortId> port;  // nullopt: the whole switch
  std::string filter;              // BPF (pcap-filter(7)); empty: everything
  size_t buffer_size = 4u << 20;   // bytes of pcap records waiting for the consumer
};

struct CaptureInfo {
  uint64_t id = 0;
  std::optional<sw::PortId> port;
  std::string filter;
  std::string output;          // "control", "file:PATH", or what the caller named it
  uint64_t captured = 0;       // records written to the ring
  uint64_t dropped_slow = 0;   // frames that matched but did not fit: the consumer is too slow
  uint64_t filtered_out = 0;   // frames of the session's port(s) the filter rejected
  uint64_t buffered_size = 0;  // bytes in the ring not yet written
};

class CaptureHub : public sw::L2Switch::CaptureHook {
 public:
  static constexpr int kSnapLen = 65535;

  CaptureHub(uv_loop_t* loop, sw::L2Switch& fabric);
  ~CaptureHub() override;
  CaptureHub(const CaptureHub&) = delete;
  CaptureHub& operator=(const CaptureHub&) = delete;

  // Checks a spec without starting anything: the filter compiles (error names libpcap's
  // message) and the port, when given, is attached.
  bool validate(const CaptureSpec& spec, std::string& error) const;
  // Starts a session writing to `out` (made non-blocking here); returns its id, or 0 with
  // `error` set.
  uint64_t attach(const CaptureSpec& spec, io::Fd out, std::string output_name, std::string& error);
  // --pcap FILE: opens `path` (O_WRONLY|O_CREAT|O_TRUNC, 0600) and records the whole switch
  // from now until the hub is destroyed. False with `error` naming the path and why.
  bool start_file(const std::string& path, std::string& error);
  // Ends a session (its pcap stays whole: only complete records were ever buffered). False
  // when no session has that id.
  bool stop(uint64_t id);

  std::vector<CaptureInfo> list() const;
  size_t session_count() const { return sessions_.size(); }

  // sw::L2Switch::CaptureHook
  void ingress(const sw::Port& in, const sw::Frame& frame) override;
  void egress(const sw::Port& out, const sw::Frame& frame) override;

  class Session;

 private:
  friend class Session;
  void record(const sw::Port& port, const sw::Frame& frame, bool is_ingress);
  void on_check();
  // Removes the sessions that ended; uninstalls the hook when none is left.
  void sweep();
  void update_hook();

  uv_loop_t* loop_;
  sw::L2Switch& fabric_;
  std::vector<std::unique_ptr<Session>> sessions_;
  uint64_t next_id_ = 1;
  io::UvHandle<uv_check_t> check_;
  bool check_started_ = false;
  bool hook_installed_ = false;
  std::vector<uint8_t> joined_;  // a split frame's bytes in one piece (Session::offer)
};

}  // namespace qswitch::tools
