// backends/stream/stream_port.h: QEMU "-netdev stream" / "-netdev socket,connect=" port.
//
// Theory of operation
// - Each frame is a 4-byte big-endian length then the Ethernet frame (QEMU net/stream.c).
//   Bytes are read straight into a StreamRxBuffer chunk (up to kReadsPerWake reads per wake-up,
//   so one busy port cannot starve the others, as libuv caps its own read loops), decoded in
//   place and handed to the switch as a burst of views.
// - A length < 14 or > 65549 is a protocol error: the port is closed, drop_bad_length counted,
//   one log line. Nothing else notices.
// - Output is a StreamTxQueue bounded in bytes (--queue-size). flush() writes it with one sendmsg
//   (MSG_NOSIGNAL) of up to IOV_MAX iovecs per call until the socket would block; then the port
//   waits for POLLOUT. A peer that stops reading only fills its own queue: further frames for it
//   are dropped (drop_queue_full) and the rest of the switch goes on.
// - Flow control: while the queue is over half full and the peer took bytes within the last
//   kStuckMs, the port is congested(): a port sending unicast to it stops reading (rx_throttled)
//   until it is not, as QEMU's own hub holds a sender back. A peer that stops reading stops being
//   congested after kStuckMs, so it throttles nobody for longer than that.
// - Polling, paused reads and shutdown: backends/runtime/polled_port.h.
// - Memory: an idle port owns a poll handle, an empty queue and, after its first frame, one
//   receive chunk of which only the pages it has touched are resident.
#pragma once

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
  void flush() override;
  std::string describe() const override { return peer_; }
  const char* kind() const override { return "stream"; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }
  bool congested(sw::Millis now) override;
  void release_chunks(const sw::ChunkPool& pool) override { release_output(tx_, pool); }

 private:
  void read_some() override;
  bool can_read() override { return !rx_.write_space().empty(); }
  uint64_t drop_output() override { return tx_.clear(); }
  // Hands the frames decoded so far to the switch; returns false if the port closed.
  bool forward_buffered(sw::StreamRxBuffer::Status status, size_t count);

  std::string peer_;
  sw::StreamRxBuffer rx_;
  sw::StreamTxQueue tx_;
};

}  // namespace qswitch::backends
