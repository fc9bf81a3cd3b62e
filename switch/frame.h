// switch/frame.h: frames as views into receive chunks, and who owns those bytes.
//
// Theory of operation
// - Every port that receives writes frames into RxChunks it owns, each frame preceded by its
//   4-byte big-endian length (the QEMU net/stream.c framing). Stream ports get that layout for
//   free from the wire; datagram-like ports write the prefix themselves. So any frame can be sent
//   to a stream peer straight from the receiving port's memory, and runs of frames that were
//   adjacent on input stay adjacent for writev (no userspace copy between input and output).
// - A Frame is a view: `wire` points at the length prefix, `size` is the Ethernet frame's length.
//   It pins its chunk: whoever keeps a Frame beyond the call that handed it over takes a
//   reference (chunk_ref) and drops it (chunk_unref) when done. A chunk returns to its pool
//   when its count reaches zero.
// - A ChunkPool belongs to one receiving port. When the port goes away first, its chunks that
//   outputs still hold are orphaned and freed by the last unref, so closing a port never
//   invalidates frames queued elsewhere.
// - Nothing here allocates per frame: chunks are allocated at most `max_chunks` times per pool
//   and recycled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qswitch::sw {

// Ethernet frame sizes without FCS. QEMU's stream backend accepts up to NET_BUFSIZE (4096 +
// 65536) and virtio-net's largest frame is 65535 + 14 (MTU 65535 plus the Ethernet header).
inline constexpr uint32_t kMinFrameSize = 14;
inline constexpr uint32_t kMaxFrameSize = 65535 + 14;
inline constexpr uint32_t kPadFrameSize = 60;  // IEEE 802.3 minimum without FCS
inline constexpr uint32_t kPrefixSize = 4;
inline constexpr uint32_t kMaxWireSize = kPrefixSize + kMaxFrameSize;

class ChunkPool;

struct RxChunk {
  uint8_t* data = nullptr;
  uint32_t capacity = 0;  // bytes in `data`
  uint32_t refs = 0;
  ChunkPool* pool = nullptr;  // nullptr once orphaned
};

inline void chunk_ref(RxChunk* c) {
  if (c != nullptr) ++c->refs;
}
void chunk_unref(RxChunk* c);

struct Frame {
  const uint8_t* wire = nullptr;  // 4-byte big-endian length, then `size` bytes
  uint32_t size = 0;              // Ethernet frame length, kMinFrameSize..kMaxFrameSize
  RxChunk* chunk = nullptr;       // pins `wire`; nullptr for static storage

  const uint8_t* data() const { return wire + kPrefixSize; }
  const uint8_t* dst() const { return data(); }
  const uint8_t* src() const { return data() + 6; }
};

inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A receiving port's chunks. Chunks are `chunk_size` bytes of memory obtained without zeroing, so
// pages an idle port never touches cost no RSS.
class ChunkPool {
 public:
  ChunkPool(uint32_t chunk_size, uint32_t max_chunks);
  ~ChunkPool();  // frees idle chunks, orphans the ones still referenced
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // A chunk with refs == 1 held by the caller, or nullptr when all max_chunks are in use
  // (the caller stops reading: backpressure on that input only).
  RxChunk* acquire();
  uint32_t chunk_size() const { return chunk_size_; }
  uint32_t allocated_count() const { return static_cast<uint32_t>(all_.size()); }
  uint32_t free_count() const { return static_cast<uint32_t>(free_.size()); }

 private:
  friend void chunk_unref(RxChunk* c);
  void recycle(RxChunk* c) { free_.push_back(c); }

  uint32_t chunk_size_;
  uint32_t max_chunks_;
  std::vector<RxChunk*> all_;
  std::vector<RxChunk*> free_;
};

}  // namespace qswitch::sw
