// backends/stream/stream_port.h: QEMU "-netdev stream" / "-netdev socket,connect=" port.
//
// Theory of operation
// - Each frame is a 4-byte big-endian length then the Ethernet frame (QEMU net/stream.c).
//   Bytes are read straight into a StreamRxBuffer chunk (up to kReadsPerWake reads per wake-up,
//   so one busy port cannot starve the others, as libuv caps its own read loops), decoded in
//   place and handed to the switch as a burst of views.
// - A length < 14 or > 65549 is a protocol error: the port is closed, drop_bad_length counted,
//   one log line. Nothing else notices.
// - A control client on the wrong socket: when the first two bytes a port receives are '{"' (a
//   JSON object, which as a length prefix would be a protocol error anyway), the peer gets one
//   JSON line {"ok":false,"error":"this is a qswitch data socket ..."} saying where control
//   requests go, the port closes ("port N down: ...: a control request ...", the loop's
//   rate-limited port log) and counts drop_control_request. Only the first bytes of a port are
//   looked at; frames are never inspected.
// - Output is a StreamTxQueue bounded in bytes (--queue-size). flush() writes it with one sendmsg
//   (MSG_NOSIGNAL) of up to IOV_MAX iovecs (and StreamTxQueue::kMaxDescribe bytes) per call until
//   the socket takes less than that (its buffer is full) or would block; then the port waits for
//   POLLOUT. A peer that stops reading only fills its own queue: further frames for it
//   are dropped (drop_queue_full) and the rest of the switch goes on.
// - Flow control: while the queue is over half full and the peer took bytes within the last
//   kStuckMs, the port is congested(): a port sending unicast to it stops reading (rx_throttled)
//   until it is not, as QEMU's own hub holds a sender back. A peer that stops reading stops being
//   congested after kStuckMs, so it throttles nobody for longer than that.
// - Polling, paused reads and shutdown: backends/runtime/polled_port.h.
// - Memory: an idle port owns a poll handle, an empty queue and, after its first frame, one
//   receive chunk of which only the pages it has touched are resident.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/polled_port.h"
#include "switch/stream_rx_buffer.h"
#include "switch/stream_tx_queue.h"

namespace qswitch::backends {

class StreamPort final : public PolledPort {
 public:
  // `fd` is a connected, non-blocking stream socket. `peer` names it in logs.
  StreamPort(SwitchLoop& loop, io::Fd fd, std::string peer);
  ~StreamPort() override;

  void enqueue(const sw::Frame& frame) override;
  void enqueue_burst(std::span<const sw::Frame> frames) override;
  void flush() override;
  std::string describe() const override { return peer_; }
  const char* kind() const override { return "stream"; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }
  bool congested(sw::Millis now) override;
  void release_chunks(const sw::ChunkOwner& pool) override { release_output(tx_, pool); }
  void for_each_extra_counter(const ExtraCounterFn& f) const override;

  // What the peer is told when it wrote a control request (JSON) into this data socket.
  static constexpr const char* kControlRequestReply =
      "{\"ok\":false,\"error\":\"this is a qswitch data socket (QEMU -netdev stream); send "
      "control requests to the control socket\"}\n";

 private:
  void read_some() override;
  bool can_read() override { return !rx_.write_space().empty(); }
  uint64_t drop_output() override { return tx_.clear(); }
  // Hands the frames decoded so far to the switch; returns false if the port closed.
  bool forward_buffered(sw::StreamRxBuffer::Status status, size_t count);
  // Looks at the first bytes the port receives (`bytes`, just read); true if they are a control
  // request, which has then been answered and the port closed.
  bool refused_control_request(std::span<const uint8_t> bytes);

  std::string peer_;
  sw::StreamRxBuffer rx_;
  sw::StreamTxQueue tx_;
  uint8_t first_bytes_[2] = {};
  uint8_t first_bytes_seen_ = 0;  // up to sizeof first_bytes_
  uint64_t control_requests_ = 0;
};

}  // namespace qswitch::backends
