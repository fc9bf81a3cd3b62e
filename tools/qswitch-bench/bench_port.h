// tools/qswitch-bench/bench_port.h: one bench port, run on its own thread.
//
// Theory of operation
// - A BenchPort owns its link and does everything for its port on one thread: it sends its hello
//   broadcast, then (when it is a sender) streams data frames to its receivers and (always) reads
//   and checks what arrives. One thread per port keeps a pair's sender and receiver on different
//   cores; a port that both sends and receives (bidir, mesh, spread) alternates a write and a
//   read and sleeps in poll() only when neither made progress.
// - Senders and receivers (PortPlan): a sender sends to its receivers in turn, frame k to
//   send_to[k % n], and numbers its frames per receiver, so each receiver sees a gapless
//   sequence from each sender (bench_frame.h). With one receiver (pair, bidir, mesh) every slot
//   keeps the destination fill_frame_header wrote; with several (spread) the destination MAC is
//   rewritten per frame. A receiver checks each frame against what its sender sends it
//   (ReceiverView, one SenderView per port) and its sequence against that sender's last one
//   (SenderSequences); it also counts the valid frames from each sender, for the loss per
//   sender and receiver.
// - Stream links: frames are built in place in a buffer of whole frames (>= 256 KiB) and written
//   with one send() per turn, resuming after partial writes. Each turn first reads until the
//   socket is empty (up to 8 reads of up to 1 MiB), so a port that also sends never lets its input
//   back up into the switch; frames are cut out of the stream by their length prefix (a partial
//   frame stays at the front of the buffer until the rest arrives). A length outside 14..65549
//   is a protocol error.
// - With --vlan the port's frames carry an 802.1Q tag (PortPlan::vlan): headers, hellos included,
//   are built tagged once per slot, so the loops below do not know about tags; what it receives
//   may be longer or shorter than what its sender sent (PortPlan::rx_from, bench_frame.h).
// - VDE links: one vde_send()/vde_recv() per frame (VDE is a datagram per frame), up to 64 of each
//   per turn.
// - Datagram links (unixgram, udp, --direct=dgram): one frame per datagram, no length prefix.
//   A sender prepares 64 frames in 64 fixed slots and hands them over with sendmmsg(); what the
//   socket did not take is retried next turn before any new frame is made, so frames leave in
//   sequence order. Each turn first reads with recvmmsg() (64 slots of size + 64 bytes, so a
//   longer datagram shows up as MSG_TRUNC and is checked as the wrong size) until the socket is
//   empty, at most 8 calls. A datagram under 14 bytes (an empty one included) is foreign, not an
//   error. At drain the sender stops; frames prepared but not sent were never counted as sent.
//   ECONNREFUSED (nothing bound at the switch's address, or an ICMP port unreachable over UDP)
//   fails the port.
// - The main thread moves RunShared::phase forward: hello -> warmup -> measure -> drain -> stop.
//   The port notes its counters when it first sees each phase, so the main thread can subtract
//   "start of measure" from "start of drain" after joining. Senders stop sending new frames at
//   drain (a partly written buffer is finished so the stream stays framed) and set tx_done.
// - Nothing allocates after construction; every loop ends when the phase reaches stop, which the
//   main thread does after a bounded time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

#include "tools/qswitch-bench/bench_frame.h"
#include "tools/qswitch-bench/bench_link.h"

namespace qswitch::tools {

enum class Phase : int { kHello = 0, kWarmup, kMeasure, kDrain, kStop };
inline constexpr int kPhaseCount = 5;
inline constexpr unsigned kDgramBurst = 64;  // datagrams per sendmmsg()/recvmmsg()

struct RunShared {
  std::atomic<Phase> phase{Phase::kHello};
  std::atomic<bool> failed{false};
};

// What a port receives from one sender (see PortPlan::rx_from).
struct RxFrom {
  // Bytes on this port's wire (tag and padding included), and the sender's frame without its
  // tag (what the check word and the body cover).
  uint32_t size = 0;
  uint32_t sent_size = 0;
};

struct PortPlan {
  uint32_t index = 0;
  uint32_t size = 0;  // Ethernet frame bytes of every data frame it sends, its tag included
  uint16_t vlan = 0;  // the VID of the 802.1Q tag on every frame it sends and receives; 0: none
  // Its receivers in turn: data frame k goes to send_to[k % send_to.size()], numbered per
  // receiver (the receiver's (k / send_to.size())-th). Empty: it sends no data. One receiver
  // in pair, bidir and mesh; every other port in spread.
  std::vector<uint32_t> send_to;
  uint64_t senders = 0;  // bit j: port j sends to it; 0: it receives no data
  // Indexed by port (one per port of the run): what arrives from that port if it sends here.
  std::vector<RxFrom> rx_from;

  bool sends() const { return !send_to.empty(); }
  bool receives() const { return senders != 0; }
};

struct PortTotals {
  uint64_t tx_frames = 0;  // data frames completely handed to the socket
  uint64_t rx_frames = 0;  // valid data frames received
  uint64_t rx_bytes = 0;   // their Ethernet bytes
};

struct PortResult {
  std::array<PortTotals, kPhaseCount> at_phase{};  // totals when the port first saw each phase
  PortTotals final;
  // Per sender, summed over senders (SenderSequences): sequence numbers skipped (frames still
  // missing may arrive later), and frames older than one already received from the same sender.
  uint64_t gap_lost = 0;
  uint64_t reordered = 0;
  uint64_t corrupt = 0;
  uint64_t foreign = 0;  // counted from the measure phase on
  uint64_t hellos = 0;
  std::vector<uint64_t> rx_by_sender;  // valid data frames from each port, whole run
  std::string error;                   // why this port failed; empty when it did not
};

class BenchPort {
 public:
  BenchPort(const PortPlan& plan, BenchLink link, RunShared& shared);
  BenchPort(const BenchPort&) = delete;
  BenchPort& operator=(const BenchPort&) = delete;

  void run();  // the thread body; returns once the phase is stop or the port failed

  const PortPlan& plan() const { return plan_; }
  const PortResult& result() const { return result_; }  // read after the thread is joined
  bool hello_sent() const { return hello_sent_.load(std::memory_order_acquire); }
  bool tx_done() const { return tx_done_.load(std::memory_order_acquire); }
  int64_t last_rx_ns() const { return last_rx_ns_.load(std::memory_order_relaxed); }

 private:
  void run_stream();
  void run_vde();
  void run_dgram();
  bool send_hello_stream();
  bool send_hello_vde();
  bool send_hello_dgram();
  template <typename Send, typename ErrorText>
  bool send_hello_frame(Send send_one, ErrorText error_text, const char* socket_kind);
  void refill_dgram();
  int receive_dgram();  // datagrams read, or -1 when the port failed
  void refill_tx();
  // Fills the data part of the next frame for the next receiver in turn into `frame` (its
  // header was built by fill_frame_header; with several receivers the destination is rewritten).
  void fill_next_frame(uint8_t* frame);
  bool parse_stream();  // false on a protocol error
  void on_frame(const uint8_t* frame, uint32_t size);
  void note_phase(Phase to);  // records totals_ for every phase up to `to` not yet recorded
  // Each turn of a run loop starts here: the current phase in `ph` (noted when new); false when
  // the loop must end (stop, or another port failed).
  bool next_phase(Phase& ph);
  void fail(std::string why);

  PortPlan plan_;
  BenchLink link_;
  RunShared& shared_;
  BodyPattern tx_pattern_;  // for the frames it sends, untagged
  // One pattern per distinct untagged size among its senders' frames (at most two: with --vlan
  // on some ports a sender's untagged frame is 4 bytes shorter), and what it expects from each
  // port (rx_views_[j].pattern points into rx_patterns_, which never changes after
  // construction).
  std::vector<BodyPattern> rx_patterns_;
  std::vector<SenderView> rx_views_;
  ReceiverView view_;
  SenderSequences rx_seq_;
  uint32_t wire_size_;  // stream: 4 + size

  std::vector<uint8_t> tx_buf_;  // stream: whole wire frames; vde: one frame; dgram: 64 frames
  size_t tx_len_ = 0;
  size_t tx_off_ = 0;
  uint64_t tx_bytes_ = 0;
  // Sending in turn: tx_macs_[d] is send_to[d]'s MAC, next_tx_seq_[d] the sequence of the next
  // frame to it; tx_turn_ is the index d of the next frame's receiver.
  std::vector<Mac> tx_macs_;
  std::vector<uint64_t> next_tx_seq_;
  size_t tx_turn_ = 0;

  // Datagram links: tx_buf_ holds kDgramBurst frames, one per tx_msgs_ entry; entries
  // [tx_sent_, tx_ready_) are prepared and not yet taken by the socket. rx_buf_ holds
  // kDgramBurst slots of rx_slot_size_ bytes, one per rx_msgs_ entry.
  std::vector<mmsghdr> tx_msgs_;
  std::vector<iovec> tx_iov_;
  unsigned tx_ready_ = 0;
  unsigned tx_sent_ = 0;
  std::vector<mmsghdr> rx_msgs_;
  std::vector<iovec> rx_iov_;
  uint32_t rx_slot_size_ = 0;

  std::vector<uint8_t> rx_buf_;
  size_t rx_fill_ = 0;
  bool count_foreign_ = false;
  int noted_ = 0;  // at_phase[0..noted_] are recorded

  PortTotals totals_;
  PortResult result_;
  std::atomic<bool> hello_sent_{false};
  std::atomic<bool> tx_done_{false};
  std::atomic<int64_t> last_rx_ns_{0};
};

int64_t monotonic_ns();

}  // namespace qswitch::tools
