// switch/packed_frames.h: frames written one after another into chunks, each with its length
// prefix: the receive memory of ports that copy each frame in from somewhere else (a vhost-user
// guest's buffers), and where the switch writes the segments it cuts (l2_switch.h).
//
// Theory of operation
// - Frames must sit in switch chunks with their 4-byte length prefix in front (switch/frame.h),
//   so they can leave toward a stream peer from where they were written. DatagramRx gives every
//   frame a slot of the largest frame's size, because a datagram's size is known only once it
//   is read; here the size is known before the copy (a descriptor chain's length), so frames
//   are packed: prefix, frame, padding to 8 bytes, the next prefix. A chunk of kChunkSize bytes
//   holds thousands of small frames or a few of the largest, and queued small frames pin far
//   less memory (fewer chunk reliefs, fewer copies).
// - Usage per burst: reserve(len) gives where a frame of `len` bytes goes in the current chunk,
//   or nullptr when it does not fit there. commit(len) writes the prefix and returns the frame.
//   When reserve() says no, the caller hands the frames it has to the switch first (they point
//   into the current chunk), or takes its own references on them (the switch's segments), then
//   next_chunk() lets go of the chunk and takes a fresh one; false when every chunk is still
//   held by output queues (stop taking frames until they drain, as the other kinds do).
// - The receiver holds one reference on its current chunk; a chunk goes back to the pool when
//   that reference and every output's are gone. Pages of a chunk are touched only as frames
//   are written (chunks are not zeroed).
#pragma once

#include <cstdint>

#include "switch/frame.h"

namespace qswitch::sw {

class PackedFrames {
 public:
  static constexpr uint32_t kChunkSize = 256 * 1024;
  static_assert(kChunkSize >= 3 * kMaxWireSize);

  explicit PackedFrames(uint32_t max_chunks);
  ~PackedFrames();
  PackedFrames(const PackedFrames&) = delete;
  PackedFrames& operator=(const PackedFrames&) = delete;

  // Where the `len` bytes of a frame go (len <= kMaxFrameSize), or nullptr when the current
  // chunk has no room for it (or there is none yet): see next_chunk().
  uint8_t* reserve(uint32_t len) const;
  // The frame of `len` bytes just written where reserve(len) said; the next reserve() goes
  // after it.
  Frame commit(uint32_t len);
  // Lets go of the current chunk (hand its frames to the switch first) and takes a fresh one;
  // false when none is free.
  bool next_chunk();
  // A fresh chunk could be had now (retrying after next_chunk() said no).
  bool chunk_available() const { return pool_.available_count() > 0; }
  // Who relieves this receiver's pool when it runs short (switch/frame.h).
  void set_pressure(ChunkPressure* pressure) { pool_.set_pressure(pressure); }

 private:
  ChunkPool pool_;
  RxChunk* chunk_ = nullptr;
  uint32_t used_ = 0;  // bytes of chunk_ taken by committed frames
};

}  // namespace qswitch::sw
