// switch/port.h: what the switch core needs from a port, and the counters every port keeps.
//
// Ownership: enqueue() borrows the frame; a port that queues it takes its own chunk reference
// and releases it once the bytes are written or dropped ("the caller transfers nothing": the
// receiving port's reference stays the receiver's). A port counts its own output drops.
// Ports are owned by the backends layer; the switch keeps a non-owning pointer between attach()
// and detach().
#pragma once

#include <cstdint>
#include <string>

#include "switch/frame.h"
#include "switch/types.h"

namespace qswitch::sw {

// One struct, so every drop reason is visible in stats; names are the ones printed.
struct PortCounters {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t drop_queue_full = 0;   // output queue over its byte bound: frame not sent to this port
  uint64_t drop_bad_length = 0;   // received length outside 14..65549: protocol error, port closed
  uint64_t drop_bad_source = 0;   // received with a multicast source MAC
  uint64_t drop_same_port = 0;    // destination was learned on the port it came from
  uint64_t drop_port_closed = 0;  // queued output lost because this port closed
  uint64_t rx_paused = 0;         // reading paused: all receive chunks still held by outputs
  uint64_t rx_throttled = 0;      // reading paused: a unicast destination's queue was congested
  uint64_t dup_mac = 0;           // duplicate-MAC (flapping) events involving this port
  uint64_t drop_mac_spoof = 0;    // received with a source MAC pinned to another port
  uint64_t tx_copied = 0;         // queued frames copied out of a sender's chunks it ran short of
  uint64_t congestion_timeouts = 0;  // congested too long: stopped holding its senders back

  template <typename F>
  void for_each(F&& f) const {
    f("rx_frames", rx_frames);
    f("rx_bytes", rx_bytes);
    f("tx_frames", tx_frames);
    f("tx_bytes", tx_bytes);
    f("drop_queue_full", drop_queue_full);
    f("drop_bad_length", drop_bad_length);
    f("drop_bad_source", drop_bad_source);
    f("drop_same_port", drop_same_port);
    f("drop_port_closed", drop_port_closed);
    f("rx_paused", rx_paused);
    f("rx_throttled", rx_throttled);
    f("dup_mac", dup_mac);
    f("drop_mac_spoof", drop_mac_spoof);
    f("tx_copied", tx_copied);
    f("congestion_timeouts", congestion_timeouts);
  }
};

class Port {
 public:
  virtual ~Port() = default;

  // Queue `frame` for output (see the ownership note above). Never blocks, never fails loudly:
  // a full queue drops the frame and counts drop_queue_full.
  virtual void enqueue(const Frame& frame) = 0;
  // Write what is queued without blocking. Called by L2Switch::flush() once per loop turn for
  // every port that got frames since the last call.
  virtual void flush() = 0;
  // The peer's identity for logs: "unix:/run/x.sock", "tcp:127.0.0.1:40312".
  virtual std::string describe() const = 0;
  // True while this port's output is backed up but its peer is still reading (it wrote something
  // recently). A sender of unicast to a congested port is throttled rather than its frames
  // dropped: flow control for a slow receiver. A stuck peer (no progress) is never congested,
  // so it cannot stall anyone: its frames are dropped instead (drop_queue_full).
  virtual bool congested(Millis /*now*/) { return false; }
  // Copy every queued frame that pins a chunk of `pool` into memory of the port's own and let
  // go of those chunks (frame.h: the pool's port runs short of receive memory).
  virtual void release_chunks(const ChunkPool& /*pool*/) {}

  PortId id() const { return id_; }
  PortCounters& counters() { return counters_; }
  const PortCounters& counters() const { return counters_; }

 private:
  friend class L2Switch;
  PortId id_ = kNoPort;
  bool flush_pending_ = false;
  bool has_first_mac_ = false;

 protected:
  PortCounters counters_;
};

}  // namespace qswitch::sw
