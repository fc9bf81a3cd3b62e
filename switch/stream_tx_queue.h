// switch/stream_tx_queue.h: a stream port's bounded output queue, drained with writev.
//
// Theory of operation
// - Entries are Frames that pin their chunk (frame.h); the queue holds at most max_bytes of
//   frame data, and push() refuses a frame beyond that (the port counts drop_queue_full). That
//   bound is what keeps a peer that stops reading from growing qswitch's memory.
// - fill_iov() describes the unsent bytes in QEMU stream framing. A frame of at least 60 bytes
//   is sent straight from its chunk, prefix included, and consecutive frames that are adjacent
//   in memory (they were adjacent on input) share one iovec. A shorter frame is padded to 60
//   bytes (IEEE 802.3 minimum; QEMU pads only for its own slirp and tap backends) with a
//   rewritten prefix and zero bytes.
// - consume(n) accounts a (possibly partial) write; frames completely written release their
//   chunk reference. A partial write leaves the rest of that frame first in line.
// - Entry storage grows by doubling up to max_bytes / 64 entries (at most 65536), then never
//   shrinks: no allocation per frame once warm.
// - unpin(pool) lets go of a sender's chunks (frame.h: a pool running short asks for it): the
//   frames from the first not yet copied one up to the last one in `pool`'s chunks are copied,
//   in order, into the queue's CopyRing and their chunk references dropped. Copied frames are
//   therefore always a prefix of the queue, the ring releases them in the order it took them,
//   and copies stay adjacent, so a run of them still leaves in one iovec. The ring has room for
//   everything the queue may hold plus one largest frame lost to a wrap, so a copy never fails
//   (if it did, that frame and those after it would simply stay where they are).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "switch/frame.h"

namespace qswitch::sw {

class StreamTxQueue {
 public:
  explicit StreamTxQueue(size_t max_bytes);
  ~StreamTxQueue();
  StreamTxQueue(const StreamTxQueue&) = delete;
  StreamTxQueue& operator=(const StreamTxQueue&) = delete;

  // Queues the frame and takes a chunk reference; false when it would exceed max_bytes (or the
  // entry cap: max_bytes / 64 entries, at most 65536).
  bool push(const Frame& frame);
  // Up to `max` iovecs covering the unsent bytes, in order. Returns how many were filled.
  int fill_iov(iovec* iov, int max);
  struct Written {
    uint64_t frames = 0;
    uint64_t bytes = 0;  // Ethernet bytes (with padding), as tx_bytes counts them
  };
  // `n` bytes of what fill_iov() described were written.
  Written consume(size_t n);
  // Drops everything queued (the port is closing). Returns how many frames were dropped.
  uint64_t clear();
  // Copies out the queued frames that pin chunks of `pool` (see above); returns how many
  // frames were copied.
  size_t unpin(const ChunkPool& pool);

  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    const uint8_t* wire;
    uint32_t size;
    uint8_t pad_prefix[4];  // the prefix sent for frames shorter than kPadFrameSize
    RxChunk* chunk;
  };
  static uint32_t wire_size(const Entry& e);
  Entry& at(size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  bool grow();
  // Removes the first entry (written or dropped).
  void pop_front();

  size_t max_bytes_;
  size_t max_entries_;
  std::vector<Entry> ring_;  // power-of-two size
  size_t head_ = 0;
  size_t count_ = 0;
  size_t queued_bytes_ = 0;
  size_t head_offset_ = 0;  // bytes of the first entry already written
  size_t copied_count_ = 0;  // the first copied_count_ entries live in copies_
  CopyRing copies_;
};

}  // namespace qswitch::sw
