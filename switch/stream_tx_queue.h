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
// - Copies of short lone frames: a frame of kPadFrameSize..kCopyMaxSize bytes pushed on its own
//   that does not continue the last entry's run is copied (prefix and frame) to the back of a
//   staging chunk the queue holds, and queued from there. Consecutive copies are adjacent in that
//   chunk, so they join one run: one entry, one iovec, one chunk reference, where frames that
//   take turns between outputs (many ports, each sending to all others) would otherwise be an
//   entry and an iovec each, and the kernel copies a long list of small iovecs far slower than
//   one area (about 18 ns per 64-byte iovec on the development machine against a few for the
//   copy here). The sender's chunk is not pinned by such a frame. Frames pushed as a burst
//   (push_burst(): adjacent frames of one input to one output, already a run) are never copied,
//   nor are larger, short, split or offloaded frames. Staging chunks (kStagingChunkSize bytes)
//   come from a pool the queues of a loop share (given to the constructor; none: no copies),
//   and a queue gives its chunks back whenever it empties, so an idle port holds no staging
//   memory and the next queue to copy takes a chunk still warm in cache. A queue holds at most
//   kMaxStagingChunks (a peer that stops reading cannot take them all), and starts again at the
//   front of one of them that nothing queued uses any more; when all it holds are in use, or the
//   pool has none left, a frame is queued from its chunk as before.
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
  // `staging`: where copies go (see above; it outlives the queue's frames: a ChunkPool that goes
  // first orphans the chunks still held), or nullptr for no copies.
  explicit StreamTxQueue(size_t max_bytes, ChunkPool* staging = nullptr);
  ~StreamTxQueue();
  StreamTxQueue(const StreamTxQueue&) = delete;
  StreamTxQueue& operator=(const StreamTxQueue&) = delete;

  // The largest frame push() copies (see above), and the staging chunks' size.
  static constexpr uint32_t kCopyMaxSize = 256;
  static constexpr uint32_t kStagingChunkSize = 32 * 1024;
  static constexpr uint32_t kMaxStagingChunks = 16;

  // Queues the frame (or its copy, see above) and takes a chunk reference; false when it would
  // exceed max_bytes (or the entry cap: max_bytes / 64 entries, at most 65536).
  bool push(const Frame& frame);
  // push() for each frame from the front, stopping at the first it refuses; returns how many it
  // took (OutputRing::push_burst()).
  size_t push_burst(std::span<const Frame> frames) {
    staged_end_ = nullptr;
    return ring_.push_burst(frames);
  }
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
  uint64_t clear();
  // Copies out the queued frames that pin chunks of `pool` (OutputRing::unpin()); returns how
  // many frames were copied.
  size_t unpin(const ChunkOwner& pool) {
    staged_end_ = nullptr;  // the last entry may be a copy now
    return ring_.unpin(pool);
  }

  bool empty() const { return ring_.empty(); }
  size_t count() const { return ring_.frames(); }
  size_t queued_bytes() const { return ring_.queued_bytes(); }
  size_t max_bytes() const { return ring_.max_bytes(); }
  // Staging chunks the queue holds (see above).
  uint32_t staging_chunks() const { return held_count_; }

 private:
  // `frame` copied to the back of the staging chunk, or a frame without chunk when no staging
  // chunk is free. staging_used_ moves on only once the copy is queued.
  Frame stage(const Frame& frame);
  // After the ring emptied: the staging chunks go back to the pool.
  void restart_staging();

  ChunkPool* staging_;
  OutputRing ring_;
  RxChunk* held_[kMaxStagingChunks] = {};  // one reference each is the queue's own
  uint32_t held_count_ = 0;
  RxChunk* stage_ = nullptr;  // the one of held_ copies go to
  uint32_t staging_used_ = 0;
  // Where the last entry ends when it is a run of copies in stage_ (the next copy continues it);
  // nullptr when it is not known to be.
  const uint8_t* staged_end_ = nullptr;
  size_t head_offset_ = 0;  // bytes of the first frame already written
};

}  // namespace qswitch::sw
