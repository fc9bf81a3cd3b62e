// switch/stream_tx_queue.h: a stream port's bounded output queue, drained with writev.
//
// Theory of operation
// - The frames wait in an OutputRing (output_ring.h): bounded by max_bytes (push() refuses a
//   frame beyond that; the port counts drop_queue_full), each pinning its chunk until it leaves
//   or unpin() copies it out.
// - fill_iov() describes the unsent bytes in QEMU stream framing, up to kMaxDescribe bytes. A
//   frame of at least 60 bytes is sent straight from its chunk, prefix included, and
//   consecutive frames that are adjacent in memory (they were adjacent on input, or were copied
//   out together) share one iovec. A shorter frame is padded to 60 bytes (IEEE 802.3 minimum;
//   QEMU pads only for its own slirp and tap backends) with a constant prefix (60) and zero
//   bytes.
// - Frames adjacent in one chunk share one entry of the ring (a run, output_ring.h), so the
//   usual burst to one output is one entry, one chunk reference and one iovec.
// - consume(n) accounts a (possibly partial) write; frames completely written release their
//   chunk reference (a run's, when its last frame is written). A partial write leaves the rest
//   of that frame first in line.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "switch/frame.h"
#include "switch/output_ring.h"

namespace qswitch::sw {

class StreamTxQueue {
 public:
  explicit StreamTxQueue(size_t max_bytes) : ring_(max_bytes, /*merge_runs=*/true) {}
  StreamTxQueue(const StreamTxQueue&) = delete;
  StreamTxQueue& operator=(const StreamTxQueue&) = delete;

  // Queues the frame and takes a chunk reference; false when it would exceed max_bytes (or the
  // entry cap: max_bytes / 64 entries, at most 65536).
  bool push(const Frame& frame) { return ring_.push(frame); }
  // push() for each frame from the front, stopping at the first it refuses; returns how many it
  // took (OutputRing::push_burst()).
  size_t push_burst(std::span<const Frame> frames) { return ring_.push_burst(frames); }
  // Up to `max` iovecs covering the unsent bytes, in order, but no more frames once
  // kMaxDescribe bytes are described (the first frame always is). Returns how many iovecs were
  // filled; `bytes` is what they add up to.
  int fill_iov(iovec* iov, int max, size_t& bytes);
  int fill_iov(iovec* iov, int max) {
    size_t bytes = 0;
    return fill_iov(iov, max, bytes);
  }
  // More than a socket's send buffer takes in one call (unix: 208 KiB by default), so one write
  // still fills it; a deep queue is not walked whole for every write.
  static constexpr size_t kMaxDescribe = size_t{512} * 1024;
  using Written = OutputRing::Written;
  // `n` bytes of what fill_iov() described were written.
  Written consume(size_t n);
  // Drops everything queued (the port is closing). Returns how many frames were dropped.
  uint64_t clear() {
    head_offset_ = 0;
    return ring_.clear();
  }
  // Copies out the queued frames that pin chunks of `pool` (OutputRing::unpin()); returns how
  // many frames were copied.
  size_t unpin(const ChunkOwner& pool) { return ring_.unpin(pool); }

  bool empty() const { return ring_.empty(); }
  size_t count() const { return ring_.frames(); }
  size_t queued_bytes() const { return ring_.queued_bytes(); }
  size_t max_bytes() const { return ring_.max_bytes(); }

 private:
  OutputRing ring_;
  size_t head_offset_ = 0;  // bytes of the first frame already written
};

}  // namespace qswitch::sw
