// switch/output_ring.h: a port's bounded ring of queued output frames, the part every output
// queue shares (the stream queue, StreamTxQueue; the one-frame-per-write queue, DatagramTx).
//
// Theory of operation
// - Entries are Frames that pin their chunk (frame.h): push() takes a chunk reference, pop()
//   drops it. The ring holds at most max_bytes of frame data, and push() refuses a frame beyond
//   that (the port counts drop_queue_full). That bound is what keeps a peer that stops reading
//   from growing qswitch's memory.
// - Entry storage grows by doubling up to max_bytes / 64 entries (enough for max_bytes of 64-byte
//   frames, the smallest a guest's stack sends in bulk; at most 65536 entries of 32 bytes,
//   2 MiB), then never shrinks: no allocation per frame once warm. Beyond that many frames,
//   push() refuses too.
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
// - Runs (opt-in, merge_runs: the stream queue, which writes frames back to back with their
//   prefixes): a frame that starts where the last entry ends, in the same chunk, joins that
//   entry instead of taking one of its own and another chunk reference, when both are plain
//   (at least kPadFrameSize bytes, not split, no offload) and the entry stays within
//   kMaxWireSize bytes of wire. A run is `frames` frames whose wire bytes (each prefix, then its
//   frame) are contiguous: `size` is their Ethernet bytes together. Frames of one input burst to
//   one output, the common case, then cost one entry. trim_front() lets go of the leading frames
//   of a partly written run (it reads their prefixes), so what leaves is still counted frame by
//   frame. The frame cap stays what the entry cap was, so the CopyRing's room still holds.
// - Plain C++: no syscalls, no exceptions (allocation failure aside, which only grow() and a
//   copy into an empty CopyRing can meet: the CopyRing frees its buffer whenever it empties, so
//   each episode of copying allocates it once; never once per frame).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "switch/frame.h"

namespace qswitch::sw {

class OutputRing {
 public:
  struct Entry {
    const uint8_t* wire;   // length prefix, then `size` bytes (in a chunk, or in the CopyRing)
    uint32_t size;         // Ethernet frame length (a run's: all of its frames')
    uint16_t head;         // 0, or a split frame's (frame.h): `head` bytes at wire, then tail()
    uint16_t frames;       // 1, or the frames of a run (at most kMaxWireSize / 64 of them)
    RxChunk* chunk;        // the pinned chunk; nullptr once copied (or for static storage)
    FrameOffload offload;  // a large TCP segment's, for ports that take them (frame.h)

    // Bytes from `wire` to the end of the last frame (short frames are padded elsewhere).
    size_t wire_bytes() const { return size_t{frames} * kPrefixSize + size; }

    const uint8_t* data() const { return wire + kPrefixSize; }
    const uint8_t* tail() const { return chunk->tail; }
  };
  // 32 bytes, two to a cache line: every queued frame that is not part of a run is one.
  static_assert(sizeof(Entry) == 32);
  static_assert(kSplitHead <= UINT16_MAX);
  // What leaving frames amount to, as tx_frames and tx_bytes count them.
  struct Written {
    uint64_t frames = 0;
    uint64_t bytes = 0;  // Ethernet bytes, padded to kPadFrameSize
  };

  explicit OutputRing(size_t max_bytes, bool merge_runs = false);
  ~OutputRing() { clear(); }
  OutputRing(const OutputRing&) = delete;
  OutputRing& operator=(const OutputRing&) = delete;

  // Queues the frame and takes a chunk reference; false when it would exceed max_bytes (or the
  // entry cap), or for a split frame whose head exceeds 65535 bytes (none does: kSplitHead).
  bool push(const Frame& frame);
  // Queues frames from the front of `frames` as push() would, one at a time, and returns how
  // many it took: all of them, or those before the first push() refused. A frame that continues
  // the run of the one before it (runs: adjacent plain frames of one chunk) costs a few compares,
  // no call: one input burst to one output, the common case, is mostly that.
  size_t push_burst(std::span<const Frame> frames);
  // Whether push(frame) would append `frame` to the last entry, continuing its run (see Runs
  // above; a chunk-less frame never does, and copies made by unpin() have no chunk either).
  bool joins_last(const Frame& frame) const;
  // push() for a frame its caller knows to continue the last entry's run (it starts where that
  // ends, in the same chunk, and both are plain): it joins the run without joins_last()'s
  // checks, or takes an entry of its own when the run is at its longest.
  bool push_continuing(const Frame& frame);
  // The i-th queued frame (i < count()), 0 being the oldest.
  const Entry& at(size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  // Releases the first n entries (sent, or given up on).
  Written pop(size_t n);
  // Releases the leading frames of the first entry (a run) that lie wholly within its first
  // `bytes` wire bytes, keeping at least its last frame; returns what left and, in `bytes`,
  // what is left of the count (the written part of the frame now first).
  Written trim_front(size_t& bytes);
  // Drops everything queued (the port is closing). Returns how many frames were dropped.
  uint64_t clear();
  // Copies out the queued frames that pin chunks of `pool` (see above); returns how many
  // frames were copied.
  size_t unpin(const ChunkOwner& pool);

  bool empty() const { return count_ == 0; }
  // Entries (a run is one).
  size_t count() const { return count_; }
  // Frames queued.
  size_t frames() const { return frames_; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  Entry& slot(size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  // One more frame of `size` bytes stays within max_bytes and the frame cap (push_burst() makes
  // the same check on its own copies of the counts).
  bool has_room(uint32_t size) const {
    return queued_bytes_ + size <= max_bytes_ && frames_ != max_entries_;
  }
  bool grow();

  size_t max_bytes_;
  size_t max_entries_;  // also the most frames queued
  bool merge_runs_;
  std::vector<Entry> ring_;  // power-of-two size
  size_t head_ = 0;
  size_t count_ = 0;
  size_t frames_ = 0;
  size_t queued_bytes_ = 0;
  size_t copied_count_ = 0;  // the first copied_count_ entries live in copies_
  CopyRing copies_;
};

}  // namespace qswitch::sw
