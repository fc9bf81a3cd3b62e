// backends/runtime/datagram_tx.h: a bounded output queue for ports that send one frame per write
// (datagram sockets, tap devices, VXLAN).
//
// Theory of operation
// - The frames wait in the ring every output queue shares (sw::OutputRing, switch/output_ring.h):
//   at most max_bytes of frame data, push() refuses beyond that (the port counts
//   drop_queue_full), so a peer that stops reading cannot grow qswitch's memory; each frame pins
//   its chunk until it leaves or unpin() copies it out.
// - iov(i) describes the i-th queued frame for sendmmsg/writev without its length prefix: the
//   Ethernet bytes straight from the receiving port's chunk, then zero bytes up to 60 for a
//   shorter frame (IEEE 802.3 minimum). A frame is never empty (frames are >= 14 bytes), so no
//   zero-length datagram can leave: QEMU stops reading a dgram socket for good when it gets one.
// - pop(n) releases the first n frames once they were sent (a datagram is all or nothing).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "switch/frame.h"
#include "switch/output_ring.h"

namespace qswitch::backends {

class DatagramTx : public sw::OutputRing {
 public:
  using OutputRing::OutputRing;

  // Fills out[0..1] for the i-th queued frame (i < count()); returns 1, or 2 with padding or for
  // a split frame (frame.h: head, then tail).
  int iov(size_t i, iovec out[2]) const;
  // The i-th queued frame's Ethernet bytes (for ports that pick a destination per frame); only
  // its first head_size(i) bytes are there (the rest of a split frame is at at(i).tail()).
  const uint8_t* data(size_t i) const { return at(i).data(); }
  uint32_t head_size(size_t i) const { return at(i).head != 0 ? at(i).head : at(i).size; }
  uint32_t size(size_t i) const { return at(i).size; }
};

}  // namespace qswitch::backends
