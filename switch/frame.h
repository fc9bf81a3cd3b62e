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
// - A port that stops reading must not keep another port's input: frames queued to it pin the
//   sender's chunks. So a pool that runs short (at most a quarter of its chunks left) asks its
//   ChunkPressure (the switch) to relieve it before handing out a chunk: every output queue copies
//   the frames it holds in that pool's chunks into memory of its own (a CopyRing) and lets go of
//   the chunks. Zero copy stays the normal case; the copy is paid only by queues that sit on a
//   sender's memory while it runs out. A pool whose port goes away asks for the same relief for
//   the chunks still held, so a stuck queue cannot keep a whole chunk per departed port.
// - Split frames (zero copy out of a vhost-user guest's memory): a frame may leave its bytes
//   where the sender has them. Then `chunk` is a loan (one per frame, its ChunkOwner is the
//   sending port) and only the frame's first `head` bytes follow the prefix, in the loan's own
//   memory; the other size - head bytes are at chunk->tail, in the sender's (guest) memory. Every
//   decision the switch and the ports make reads the head (MACs, VLAN tag, IP headers: the head
//   holds at least kSplitHead bytes), a copy the guest cannot change afterwards; the tail is
//   payload, written out as it is at the time of the write. Only ports that say they take split
//   frames (Port::takes_split(): they write with iovecs) get them; for any other the switch makes
//   one contiguous copy per frame. When the last reference goes, the owner gives the guest its
//   buffer back. An owner's loans are relieved like a pool's chunks (output queues copy them).
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
// The least a split frame's head holds (see the theory above): an Ethernet header with two VLAN
// tags, an IPv6 header and a TCP header with options.
inline constexpr uint32_t kSplitHead = 128;

class ChunkOwner;

// Who relieves a pool that runs short of free chunks (the switch: see L2Switch::relieve()).
class ChunkPressure {
 public:
  virtual ~ChunkPressure() = default;
  // Release, by copying what they hold, every chunk of `pool` that output queues still pin.
  virtual void relieve(const ChunkOwner& pool) = 0;
};

struct RxChunk {
  uint8_t* data = nullptr;
  uint32_t capacity = 0;  // bytes in `data`
  uint32_t refs = 0;
  ChunkOwner* pool = nullptr;     // nullptr once orphaned (a ChunkPool's chunk only)
  const uint8_t* tail = nullptr;  // a loan: where its split frame goes on (see the theory)
};

// Whom a chunk goes back to when its last reference goes: a ChunkPool, or a port that lends
// split frames (the theory above).
class ChunkOwner {
 public:
  virtual void recycle(RxChunk* c) = 0;

 protected:
  ~ChunkOwner() = default;
};

inline void chunk_ref(RxChunk* c) {
  if (c != nullptr) ++c->refs;
}
// A chunk whose last reference went: back to its pool, or freed when orphaned.
void chunk_release(RxChunk* c);
// Inline: every queued frame drops one reference when it leaves; only the last one calls out.
inline void chunk_unref(RxChunk* c) {
  if (c != nullptr && --c->refs == 0) chunk_release(c);
}

// What a frame still needs done before it is an ordinary frame: a TCP segment larger than the
// MTU that a guest left to "hardware" segmentation (virtio-net's HOST_TSO4/6; switch/offload.h
// holds the full state, its checks and the software fallback). All zero for an ordinary frame.
// A port that takes such frames whole says so (Port::offload_caps()); toward any other the
// switch cuts them (L2Switch), so no port kind needs a case of its own.
struct FrameOffload {
  static constexpr uint8_t kGsoTcpV4 = 1;
  static constexpr uint8_t kGsoTcpV6 = 2;
  static constexpr uint8_t kGsoEcn = 0x80;  // with a type: the guest's TCP uses ECN
  static constexpr uint8_t kNeedsCsum = 1;  // flags: the TCP checksum is left to complete

  uint16_t gso_size = 0;  // payload bytes per segment
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
  uint8_t gso = 0;  // 0: none; kGsoTcpV4 or kGsoTcpV6, | kGsoEcn
  uint8_t flags = 0;
  bool any() const { return gso != 0; }
  bool operator==(const FrameOffload&) const = default;
};

struct Frame {
  const uint8_t* wire = nullptr;  // 4-byte big-endian length, then `size` bytes (split: `head`)
  uint32_t size = 0;              // Ethernet frame length, kMinFrameSize..kMaxFrameSize
  uint32_t head = 0;              // 0: whole; else split: bytes at data(), >= kSplitHead
  RxChunk* chunk = nullptr;       // pins `wire`; nullptr for static storage
  FrameOffload offload;           // zero but for a large TCP segment a guest left to cut

  const uint8_t* data() const { return wire + kPrefixSize; }
  const uint8_t* dst() const { return data(); }
  const uint8_t* src() const { return data() + 6; }
  bool split() const { return head != 0; }
  // A split frame's other size - head bytes (in the sender's memory).
  const uint8_t* tail() const { return chunk->tail; }
};

static_assert(sizeof(Frame) == 32);

// Big-endian (network order) loads and stores, for every parser of wire bytes.
inline void store_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline uint16_t load_be16(const uint8_t* p) {
  return static_cast<uint16_t>((uint16_t{p[0]} << 8) | uint16_t{p[1]});
}
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
class ChunkPool final : public ChunkOwner {
 public:
  ChunkPool(uint32_t chunk_size, uint32_t max_chunks);
  // Relieves itself (when it has a pressure handler, which must outlive it), frees idle chunks,
  // orphans the ones still referenced.
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // A chunk with refs == 1 held by the caller, or nullptr when all max_chunks are in use
  // (the caller stops reading: backpressure on that input only). When at most a quarter of the
  // chunks are left, the pressure handler (if any) is asked to relieve the pool first.
  RxChunk* acquire();
  void set_pressure(ChunkPressure* pressure) { pressure_ = pressure; }
  uint32_t chunk_size() const { return chunk_size_; }
  uint32_t max_chunks() const { return max_chunks_; }
  uint32_t allocated_count() const { return static_cast<uint32_t>(all_.size()); }
  uint32_t free_count() const { return static_cast<uint32_t>(free_.size()); }
  // Chunks acquire() can still hand out without relief.
  uint32_t available_count() const { return free_count() + max_chunks_ - allocated_count(); }

 private:
  void recycle(RxChunk* c) override { free_.push_back(c); }

  uint32_t chunk_size_;
  uint32_t max_chunks_;
  std::vector<RxChunk*> all_;
  std::vector<RxChunk*> free_;
  ChunkPressure* pressure_ = nullptr;
  bool relieving_ = false;
};

// Memory an output queue owns for the frames it copied out of senders' chunks (see the theory
// above). A FIFO byte ring: the queue copies frames in queue order and releases them in the same
// order, so allocation is a bump at the back and release a bump at the front; a frame that does
// not fit before the end starts again at the beginning. The buffer is allocated on first use and
// freed when the ring empties (a queue that never had to copy costs nothing).
class CopyRing {
 public:
  // Room for `capacity` bytes of copies (plus one largest frame lost to wrapping).
  explicit CopyRing(size_t capacity) : capacity_(capacity + kMaxWireSize) {}
  ~CopyRing() { delete[] buf_; }
  CopyRing(const CopyRing&) = delete;
  CopyRing& operator=(const CopyRing&) = delete;

  // Copies `size` bytes, then `more_size` bytes from `more` (a split frame's tail), to the back
  // of the ring as one copy; nullptr when they do not fit.
  const uint8_t* push(const uint8_t* bytes, size_t size, const uint8_t* more = nullptr,
                      size_t more_size = 0);
  // The oldest copy, `copy` (as push() returned it) of `size` bytes, is no longer needed.
  void pop(const uint8_t* copy, size_t size);
  bool empty() const { return used_ == 0; }
  bool allocated() const { return buf_ != nullptr; }

 private:
  size_t capacity_;
  uint8_t* buf_ = nullptr;
  size_t head_ = 0;  // offset of the oldest copy
  size_t tail_ = 0;  // offset where the next copy goes (if it fits)
  size_t used_ = 0;  // bytes between head_ and tail_, wrap waste included
};

}  // namespace qswitch::sw
