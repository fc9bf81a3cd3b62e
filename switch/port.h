// switch/port.h: what the switch core needs from a port. Every port keeps sw::PortCounters
// (switch/counters.h: each counter's name and meaning).
//
// Ownership: enqueue() borrows the frame; a port that queues it takes its own chunk reference
// and releases it once the bytes are written or dropped ("the caller transfers nothing": the
// receiving port's reference stays the receiver's). A port counts its own output drops.
// Ports are owned by the backends layer; the switch keeps a non-owning pointer between attach()
// and detach().
#pragma once

#include <cstdint>
#include <string>

#include "switch/counters.h"
#include "switch/frame.h"
#include "switch/types.h"

namespace qswitch::sw {

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
