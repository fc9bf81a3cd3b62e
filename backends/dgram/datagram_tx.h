// backends/dgram/datagram_tx.h: a bounded output queue for ports that send one frame per write
// (datagram sockets, tap devices, VXLAN).
//
// Theory of operation
// - Entries are frames that pin their chunk (switch/frame.h), as in StreamTxQueue: the
//   queue holds at most max_bytes of frame data and push() refuses beyond that (the port counts
//   drop_queue_full), so a peer that stops reading cannot grow qswitch's memory.
// - iov(i) describes the i-th queued frame for sendmmsg/writev without its length prefix: the
//   Ethernet bytes straight from the receiving port's chunk, then zero bytes up to 60 for a
//   shorter frame (IEEE 802.3 minimum). A frame is never empty (frames are >= 14 bytes), so no
//   zero-length datagram can leave: QEMU stops reading a dgram socket for good when it gets one.
// - pop(n) releases the first n frames once they were sent (a datagram is all or nothing).
// - Entry storage grows by doubling up to max_bytes / 64 entries (at most 65536), then never
//   shrinks: no allocation per frame once warm.
// - unpin(pool) lets go of a sender's chunks, as sw::StreamTxQueue::unpin() does: the queued frames
//   up to the last one in `pool`'s chunks are copied, in order, into the queue's own CopyRing.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "switch/frame.h"

namespace qswitch::backends {

class DatagramTx {
 public:
  explicit DatagramTx(size_t max_bytes);
  ~DatagramTx();
  DatagramTx(const DatagramTx&) = delete;
  DatagramTx& operator=(const DatagramTx&) = delete;

  // Queues the frame and takes a chunk reference; false when full.
  bool push(const sw::Frame& frame);
  // Fills out[0..1] for the i-th queued frame (i < count()); returns 1, or 2 with padding.
  int iov(size_t i, iovec out[2]) const;
  // The i-th queued frame's Ethernet bytes (for ports that pick a destination per frame).
  const uint8_t* data(size_t i) const { return at(i).data; }
  uint32_t size(size_t i) const { return at(i).size; }
  struct Written {
    uint64_t frames = 0;
    uint64_t bytes = 0;  // Ethernet bytes with padding, as tx_bytes counts them
  };
  // The first n queued frames were sent (or given up on): release them.
  Written pop(size_t n);
  // Drops everything (the port is closing); returns how many frames were dropped.
  uint64_t clear();
  // Copies out the queued frames that pin chunks of `pool`; returns how many were copied.
  size_t unpin(const sw::ChunkPool& pool);

  bool empty() const { return count_ == 0; }
  size_t count() const { return count_; }
  size_t queued_bytes() const { return queued_bytes_; }
  size_t max_bytes() const { return max_bytes_; }

 private:
  struct Entry {
    const uint8_t* data;
    uint32_t size;
    sw::RxChunk* chunk;
  };
  const Entry& at(size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  bool grow();

  size_t max_bytes_;
  size_t max_entries_;
  std::vector<Entry> ring_;  // power-of-two size
  size_t head_ = 0;
  size_t count_ = 0;
  size_t queued_bytes_ = 0;
  size_t copied_count_ = 0;  // the first copied_count_ entries live in copies_
  sw::CopyRing copies_;
};

}  // namespace qswitch::backends
