// switch/output_ring.h: a port's bounded ring of queued output frames, the part every output
// queue shares (the stream queue, StreamTxQueue; the one-frame-per-write queue, DatagramTx).
//
// Theory of operation
// - Entries are Frames that pin their chunk (frame.h): push() takes a chunk reference, pop()
//   drops it. The ring holds at most max_bytes of frame data, and push() refuses a frame beyond
//   that (the port counts drop_queue_full). That bound is what keeps a peer that stops reading
//   from growing qswitch's memory.
// - Entry storage grows by doubling up to max_bytes / 64 entries (enough for max_bytes of 64-byte
//   frames, the smallest a guest's stack sends in bulk; at most 65536 entries, 1.5 MiB), then
//   never shrinks: no allocation per frame once warm. Beyond the entry cap, push() refuses too.
// - Every entry keeps the frame's wire view (length prefix, then the Ethernet bytes), so a queue
//   can send it with the prefix (stream) or without (datagram) straight from the chunk. A split
//   frame (frame.h) is two pieces: the prefix and head from its loan, then the tail.
// - unpin(pool) lets go of a sender's chunks (frame.h: a pool running short asks for it): the
//   frames from the first not yet copied one up to the last one in `pool`'s chunks are copied,
//   prefix included (a split frame's head and tail joined), in order, into the ring's CopyRing and
//   their chunk references dropped. Copied frames are therefore always a prefix of the ring, the
//   CopyRing releases them in the order it took them, and copies stay adjacent, so a run of them
//   still leaves in one iovec. The CopyRing has room for everything the ring may hold plus one
//   largest frame lost to a wrap, so a copy never fails (if it did, that frame and those after it
//   would simply stay where they are).
// - Plain C++: no syscalls, no exceptions (allocation failure aside, which only grow() and a
//   copy into an empty CopyRing can meet: the CopyRing frees its buffer whenever it empties, so
//   each episode of copying allocates it once; never once per frame).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "switch/frame.h"

namespace qswitch::sw {

class OutputRing {
 public:
  struct Entry {
    const uint8_t* wire;   // length prefix, then `size` bytes (in a chunk, or in the CopyRing)
    uint32_t size;         // Ethernet frame length
    uint32_t head;         // 0, or a split frame's (frame.h): `head` bytes at wire, then tail()
    RxChunk* chunk;        // the pinned chunk; nullptr once copied (or for static storage)
    FrameOffload offload;  // a large TCP segment's, for ports that take them (frame.h)

    const uint8_t* data() const { return wire + kPrefixSize; }
    const uint8_t* tail() const { return chunk->tail; }
  };
  // What leaving frames amount to, as tx_frames and tx_bytes count them.
  struct Written {
    uint64_t frames = 0;
    uint64_t bytes = 0;  // Ethernet bytes, padded to kPadFrameSize
  };

  explicit OutputRing(size_t max_bytes);
  ~OutputRing() { clear(); }
  OutputRing(const OutputRing&) = delete;
  OutputRing& operator=(const OutputRing&) = delete;

  // Queues the frame and takes a chunk reference; false when it would exceed max_bytes (or the
  // entry cap).
  bool push(const Frame& frame);
  // The i-th queued frame (i < count()), 0 being the oldest.
  const Entry& at(size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  // Releases the first n frames (sent, or given up on).
  Written pop(size_t n);
  // Drops everything queued (the port is closing). Returns how many frames were dropped.
  uint64_t clear();
  // Copies out the queued frames that pin chunks of `pool` (see above); returns how many
  // frames were copied.
  size_t unpin(const ChunkOwner& pool);

  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  Entry& slot(size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  bool grow();

  size_t max_bytes_;
  size_t max_entries_;
  std::vector<Entry> ring_;  // power-of-two size
  size_t head_ = 0;
  size_t count_ = 0;
  size_t queued_bytes_ = 0;
  size_t copied_count_ = 0;  // the first copied_count_ entries live in copies_
  CopyRing copies_;
};

}  // namespace qswitch::sw
