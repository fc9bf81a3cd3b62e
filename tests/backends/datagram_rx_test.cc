// tests/backends/datagram_rx_test.cc: DatagramRx, the receive slots of datagram-like ports.
//
// Theory of operation
// - The test plays the port: it asks available(), writes "datagrams" into slot(i), makes frames
//   with frame(i, len) and advance()s, exactly as the header's usage note says; it plays the
//   output queues by taking and dropping chunk references on the frames (chunk_ref/chunk_unref).
// - Chunks are observed through the frames' RxChunk (refs, identity) and through available():
//   0 means every chunk of the receiver's pool is held. Slot bounds are checked by writing whole
//   slots (ASan reports a write outside the chunk) and reading the neighbours' prefixes.
#include "backends/runtime/datagram_rx.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <vector>

namespace qswitch::backends {
namespace {

using sw::Frame;
using sw::kPrefixSize;

// Writes a `len`-byte datagram with a recognisable pattern into slot i and makes its frame.
Frame receive(DatagramRx& rx, uint32_t i, uint32_t len, uint8_t salt) {
  uint8_t* s = rx.slot(i);
  for (uint32_t j = 0; j < len; ++j) s[j] = static_cast<uint8_t>(j * 5 + salt);
  return rx.frame(i, len);
}

bool has_pattern(const Frame& f, uint8_t salt) {
  for (uint32_t j = 0; j < f.size; ++j) {
    if (f.data()[j] != static_cast<uint8_t>(j * 5 + salt)) return false;
  }
  return true;
}

// Uses every free slot of the current chunk; returns the chunk.
sw::RxChunk* use_chunk(DatagramRx& rx) {
  const uint32_t n = rx.available();
  EXPECT_GT(n, 0u);
  sw::RxChunk* c = rx.frame(0, 14).chunk;
  rx.advance(n);
  return c;
}

TEST(DatagramRxTest, OffersEverySlotOfAFreshChunkEachWithRoomForTheLargestFrame) {
  DatagramRx rx(2);
  ASSERT_EQ(rx.available(), DatagramRx::kSlots);
  EXPECT_EQ(rx.available(), DatagramRx::kSlots) << "available() alone must not use slots";
  EXPECT_EQ(DatagramRx::slot_capacity(), sw::kMaxFrameSize);
  EXPECT_GE(DatagramRx::kStride, sw::kMaxWireSize);
  EXPECT_EQ(DatagramRx::kStride % 64, 0u);
  for (uint32_t i = 0; i + 1 < DatagramRx::kSlots; ++i) {
    EXPECT_EQ(rx.slot(i + 1) - rx.slot(i), static_cast<ptrdiff_t>(DatagramRx::kStride)) << i;
  }
  // The prefix room sits in front of every slot, inside the chunk.
  const Frame f = rx.frame(0, 64);
  ASSERT_NE(f.chunk, nullptr);
  EXPECT_EQ(f.wire, f.chunk->data);
  EXPECT_GE(f.chunk->capacity, DatagramRx::kStride * DatagramRx::kSlots);
}

TEST(DatagramRxTest, FrameWritesTheLengthPrefixAndViewsTheSlot) {
  DatagramRx rx(2);
  ASSERT_EQ(rx.available(), DatagramRx::kSlots);
  for (const uint32_t len : {sw::kMinFrameSize, 59u, 60u, 1514u, sw::kMaxFrameSize}) {
    const Frame f = receive(rx, 3, len, static_cast<uint8_t>(len));
    EXPECT_EQ(f.size, len);
    EXPECT_EQ(f.data(), rx.slot(3));
    EXPECT_EQ(f.wire, rx.slot(3) - kPrefixSize);
    EXPECT_EQ(sw::load_be32(f.wire), len) << "the prefix must say the frame's length";
    EXPECT_TRUE(has_pattern(f, static_cast<uint8_t>(len)));
  }
}

TEST(DatagramRxTest, AFullSlotDoesNotReachTheNextSlotsPrefix) {
  DatagramRx rx(2);
  ASSERT_EQ(rx.available(), DatagramRx::kSlots);
  const Frame next = receive(rx, 1, 100, 9);
  std::memset(rx.slot(0), 0xff, DatagramRx::slot_capacity());
  EXPECT_EQ(sw::load_be32(next.wire), 100u);
  EXPECT_TRUE(has_pattern(next, 9));
  // The last slot of a chunk can be filled completely (ASan: inside the chunk).
  const uint32_t last = DatagramRx::kSlots - 1;
  const Frame f = receive(rx, last, DatagramRx::slot_capacity(), 3);
  EXPECT_TRUE(has_pattern(f, 3));
}

TEST(DatagramRxTest, AdvanceHandsOutTheNextSlotsInOrder) {
  DatagramRx rx(2);
  ASSERT_EQ(rx.available(), 32u);
  uint8_t* fifth = rx.slot(5);
  rx.advance(5);
  EXPECT_EQ(rx.available(), 27u);
  EXPECT_EQ(rx.slot(0), fifth);
  rx.advance(0);
  EXPECT_EQ(rx.available(), 27u);
  rx.advance(26);
  EXPECT_EQ(rx.available(), 1u);
  // A frame made in the last slot of a chunk, then a new chunk for the next burst.
  const Frame f = receive(rx, 0, 64, 1);
  EXPECT_EQ(f.wire + DatagramRx::kStride, f.chunk->data + DatagramRx::kStride * 32);
  rx.advance(1);
  EXPECT_EQ(rx.available(), 32u);
}

TEST(DatagramRxTest, FramesStayValidInTheirChunkWhileOutputsHoldThem) {
  DatagramRx rx(4);
  ASSERT_EQ(rx.available(), 32u);
  std::vector<Frame> held;
  for (uint32_t i = 0; i < 32; ++i) {
    held.push_back(receive(rx, i, 60 + i, static_cast<uint8_t>(i)));
    sw::chunk_ref(held.back().chunk);  // an output queue keeps it
  }
  rx.advance(32);
  // The next bursts go to other chunks and do not touch the held frames.
  for (int burst = 0; burst < 3; ++burst) {
    const uint32_t n = rx.available();
    ASSERT_EQ(n, 32u) << burst;
    for (uint32_t i = 0; i < n; ++i) receive(rx, i, 1514, 0xee);
    EXPECT_NE(rx.frame(0, 14).chunk, held[0].chunk);
    rx.advance(n);
  }
  for (uint32_t i = 0; i < 32; ++i) {
    EXPECT_EQ(sw::load_be32(held[i].wire), 60 + i) << i;
    EXPECT_TRUE(has_pattern(held[i], static_cast<uint8_t>(i))) << i;
  }
  for (const Frame& f : held) sw::chunk_unref(f.chunk);
}

TEST(DatagramRxTest, AChunkReturnsToThePoolOnlyWhenEveryOutputHasReleasedIt) {
  DatagramRx rx(2);
  // Chunk A: two of its frames stay queued somewhere.
  ASSERT_EQ(rx.available(), 32u);
  const Frame a0 = receive(rx, 0, 64, 1);
  const Frame a31 = receive(rx, 31, 64, 2);
  sw::chunk_ref(a0.chunk);
  sw::chunk_ref(a31.chunk);
  uint8_t* a_first_slot = rx.slot(0);
  rx.advance(32);
  // Chunk B: one frame queued.
  ASSERT_EQ(rx.available(), 32u);
  const Frame b0 = receive(rx, 0, 64, 3);
  ASSERT_NE(b0.chunk, a0.chunk);
  sw::chunk_ref(b0.chunk);
  rx.advance(32);
  EXPECT_EQ(rx.available(), 0u) << "both chunks are held: the port must stop reading";
  EXPECT_EQ(rx.available(), 0u);
  sw::chunk_unref(a0.chunk);
  EXPECT_EQ(rx.available(), 0u) << "chunk A came back while a frame of it was still queued";
  sw::chunk_unref(a31.chunk);
  ASSERT_EQ(rx.available(), 32u) << "chunk A did not come back once all its frames were sent";
  EXPECT_EQ(rx.slot(0), a_first_slot) << "the recycled chunk is A";
  sw::chunk_unref(b0.chunk);
}

TEST(DatagramRxTest, ReusesItsChunkWhenNoOutputHoldsIt) {
  DatagramRx rx(1);
  sw::RxChunk* first = use_chunk(rx);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(use_chunk(rx), first) << "a one-chunk receiver must keep going when nobody holds it";
  }
}

class ReleasingPressure : public sw::ChunkPressure {
 public:
  void relieve(const sw::ChunkOwner& pool) override {
    ++calls;
    pools.push_back(&pool);
    for (sw::RxChunk* c : held) sw::chunk_unref(c);
    held.clear();
  }
  int calls = 0;
  std::vector<const sw::ChunkOwner*> pools;
  std::vector<sw::RxChunk*> held;  // the "output queues'" references
};

TEST(DatagramRxTest, AsksItsPressureHandlerForReliefWhenRunningShort) {
  DatagramRx rx(4);
  ReleasingPressure pressure;
  rx.set_pressure(&pressure);
  // An output that never sends keeps one frame of every chunk; relief copies them out (here:
  // drops the references), so the receiver never runs dry.
  for (int chunk = 0; chunk < 40; ++chunk) {
    const uint32_t n = rx.available();
    ASSERT_EQ(n, 32u) << "chunk " << chunk << ": the receiver ran dry";
    const Frame f = receive(rx, 0, 64, 1);
    sw::chunk_ref(f.chunk);
    pressure.held.push_back(f.chunk);
    rx.advance(n);
  }
  EXPECT_GT(pressure.calls, 0);
  for (const sw::ChunkOwner* p : pressure.pools) EXPECT_EQ(p, pressure.pools[0]);
  for (sw::RxChunk* c : pressure.held) sw::chunk_unref(c);
}

TEST(DatagramRxTest, WithoutReliefAnOutputThatNeverSendsStopsTheReceiver) {
  DatagramRx rx(4);
  std::vector<sw::RxChunk*> held;
  int chunks = 0;
  for (; chunks < 40; ++chunks) {
    const uint32_t n = rx.available();
    if (n == 0) break;
    const Frame f = receive(rx, 0, 64, 1);
    sw::chunk_ref(f.chunk);
    held.push_back(f.chunk);
    rx.advance(n);
  }
  EXPECT_EQ(chunks, 4);
  for (sw::RxChunk* c : held) sw::chunk_unref(c);
}

TEST(DatagramRxTest, FramesHeldByOutputsOutliveTheReceiver) {
  Frame kept;
  {
    DatagramRx rx(2);
    ASSERT_EQ(rx.available(), 32u);
    kept = receive(rx, 7, 300, 4);
    sw::chunk_ref(kept.chunk);
    rx.advance(8);
  }
  // The port closed; the frame is still queued elsewhere (ASan: not freed yet).
  EXPECT_EQ(kept.chunk->pool, nullptr);
  EXPECT_EQ(sw::load_be32(kept.wire), 300u);
  EXPECT_TRUE(has_pattern(kept, 4));
  sw::chunk_unref(kept.chunk);  // the last reference frees it (ASan: no leak)
}

// --- A real datagram socket: recvmmsg() into the slots, as the dgram port reads
// -------------------

// A unix datagram socket pair, both ends non-blocking, with room for the largest frames.
struct DgramPair {
  DgramPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    tx = fds[0];
    rx = fds[1];
    const int size = 1 << 20;
    ::setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  ~DgramPair() {
    ::close(tx);
    ::close(rx);
  }
  DgramPair(const DgramPair&) = delete;
  DgramPair& operator=(const DgramPair&) = delete;
  // Sends a `len`-byte datagram with the pattern of `salt` (len 0: an empty datagram).
  bool send(uint32_t len, uint8_t salt) const {
    std::vector<uint8_t> d(len);
    for (uint32_t j = 0; j < len; ++j) d[j] = static_cast<uint8_t>(j * 5 + salt);
    return ::send(tx, d.data(), d.size(), 0) == static_cast<ssize_t>(len);
  }
  int tx = -1;
  int rx = -1;
};

struct Burst {
  uint32_t received = 0;            // datagrams the burst consumed (slots to advance)
  std::vector<DatagramKind> kinds;  // per datagram, from its length and MSG_TRUNC
  std::vector<uint32_t> lengths;    // msg_len as the kernel reported it
  std::vector<Frame> frames;        // the frames made, in order
};

// One read burst as the port does it: available() slots, one recvmmsg, frame(i, len) for the
// datagrams that are frames, advance(received). `at_most` limits the burst (0: no limit).
Burst read_burst(DatagramRx& rx, int fd, uint32_t at_most = 0) {
  Burst b;
  uint32_t n = rx.available();
  if (at_most != 0) n = std::min(n, at_most);
  if (n == 0) return b;
  std::vector<iovec> iov(n);
  std::vector<mmsghdr> msgs(n);
  for (uint32_t i = 0; i < n; ++i) {
    iov[i] = iovec{rx.slot(i), DatagramRx::slot_capacity()};
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  const int got = ::recvmmsg(fd, msgs.data(), n, MSG_DONTWAIT, nullptr);
  if (got <= 0) {
    EXPECT_TRUE(got == 0 || errno == EAGAIN) << std::strerror(errno);
    return b;
  }
  b.received = static_cast<uint32_t>(got);
  for (uint32_t i = 0; i < b.received; ++i) {
    const uint32_t len = msgs[i].msg_len;
    const DatagramKind kind = classify_datagram(len, (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
    b.kinds.push_back(kind);
    b.lengths.push_back(len);
    if (kind == DatagramKind::kFrame) b.frames.push_back(rx.frame(i, len));
  }
  rx.advance(b.received);
  return b;
}

TEST(DatagramRxTest, RecvmmsgIntoTheSlotsMakesFramesOnlyOfFrameSizedDatagrams) {
  DgramPair p;
  DatagramRx rx(2);
  // Empty, runt, the smallest frame, padded-size frames, a full-size one: one burst.
  const std::vector<uint32_t> lens = {0,  1,    sw::kMinFrameSize - 1, sw::kMinFrameSize, 59,
                                      60, 1514, sw::kMaxFrameSize};
  for (size_t i = 0; i < lens.size(); ++i) {
    ASSERT_TRUE(p.send(lens[i], static_cast<uint8_t>(i)))
        << lens[i] << ": " << std::strerror(errno);
  }
  const Burst b = read_burst(rx, p.rx);
  ASSERT_EQ(b.received, lens.size()) << "every datagram takes one slot, bad ones too";
  EXPECT_EQ(b.lengths, lens);
  const std::vector<DatagramKind> want = {
      DatagramKind::kRunt,  DatagramKind::kRunt,  DatagramKind::kRunt,  DatagramKind::kFrame,
      DatagramKind::kFrame, DatagramKind::kFrame, DatagramKind::kFrame, DatagramKind::kFrame};
  EXPECT_EQ(b.kinds, want);
  ASSERT_EQ(b.frames.size(), 5u);
  for (size_t k = 0; k < b.frames.size(); ++k) {
    const uint32_t len = lens[k + 3];
    EXPECT_EQ(b.frames[k].size, len);
    EXPECT_EQ(sw::load_be32(b.frames[k].wire), len);
    EXPECT_TRUE(has_pattern(b.frames[k], static_cast<uint8_t>(k + 3))) << len;
  }
  // The slots of the bad datagrams were used up too: the next burst starts after them.
  EXPECT_EQ(rx.available(), DatagramRx::kSlots - lens.size());
}

TEST(DatagramRxTest, AnOversizeDatagramIsCutToTheSlotFlaggedAndNeverAFrame) {
  DgramPair p;
  DatagramRx rx(2);
  ASSERT_TRUE(p.send(sw::kMaxFrameSize + 1, 7)) << std::strerror(errno);
  ASSERT_TRUE(p.send(100, 8));
  const Burst b = read_burst(rx, p.rx);
  ASSERT_EQ(b.received, 2u);
  EXPECT_EQ(b.kinds[0], DatagramKind::kOversize);
  EXPECT_EQ(b.lengths[0], DatagramRx::slot_capacity()) << "the kernel cuts it to the slot";
  ASSERT_EQ(b.frames.size(), 1u);
  EXPECT_EQ(b.frames[0].size, 100u);
  EXPECT_TRUE(has_pattern(b.frames[0], 8)) << "the cut datagram spilled into the next slot";
  EXPECT_EQ(b.frames[0].wire, b.frames[0].chunk->data + DatagramRx::kStride)
      << "the good datagram is in the slot after the oversize one";
}

TEST(DatagramRxTest, BurstsFillASlotRunAcrossChunksKeepingOrder) {
  DgramPair p;
  DatagramRx rx(4);
  // 75 datagrams: bursts of at most 10 (as a short recvmmsg returns), frames kept by an
  // "output" so every chunk stays alive; a burst never crosses a chunk's end: it stops at the
  // chunk's last slot and the next one starts a fresh chunk.
  constexpr uint32_t kCount = 75;
  for (uint32_t i = 0; i < kCount; ++i) ASSERT_TRUE(p.send(60 + i, static_cast<uint8_t>(i)));
  std::vector<Frame> got;
  std::vector<sw::RxChunk*> chunks;
  for (int bursts = 0; got.size() < kCount && bursts < 100; ++bursts) {
    const uint32_t before = rx.available();
    ASSERT_GT(before, 0u);
    const Burst b = read_burst(rx, p.rx, 10);
    ASSERT_GT(b.received, 0u) << "datagrams left unread";
    EXPECT_LE(b.received, before) << "a burst went past the chunk's last slot";
    for (const Frame& f : b.frames) {
      sw::chunk_ref(f.chunk);
      if (chunks.empty() || chunks.back() != f.chunk) chunks.push_back(f.chunk);
      got.push_back(f);
    }
  }
  ASSERT_EQ(got.size(), kCount);
  for (uint32_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(got[i].size, 60 + i) << i;
    EXPECT_TRUE(has_pattern(got[i], static_cast<uint8_t>(i))) << i;
    // Datagram i sits in slot i % 32 of chunk i / 32.
    EXPECT_EQ(got[i].chunk, chunks[i / DatagramRx::kSlots]) << i;
    EXPECT_EQ(got[i].wire, got[i].chunk->data + DatagramRx::kStride * (i % DatagramRx::kSlots))
        << i;
  }
  EXPECT_EQ(chunks.size(), 3u);
  for (const Frame& f : got) sw::chunk_unref(f.chunk);
}

TEST(DatagramRxTest, ARefilledChunkTakesNewDatagramsOverTheOldSlots) {
  DgramPair p;
  DatagramRx rx(1);
  // One chunk, nobody holding it: after every slot was used it is refilled from slot 0.
  for (int round = 0; round < 3; ++round) {
    for (uint32_t i = 0; i < DatagramRx::kSlots; ++i) {
      ASSERT_TRUE(p.send(64 + round, static_cast<uint8_t>(round * 32 + i)));
    }
    const Burst b = read_burst(rx, p.rx);
    ASSERT_EQ(b.received, DatagramRx::kSlots) << "round " << round;
    for (uint32_t i = 0; i < b.frames.size(); ++i) {
      EXPECT_EQ(b.frames[i].size, 64u + round);
      EXPECT_TRUE(has_pattern(b.frames[i], static_cast<uint8_t>(round * 32 + i))) << i;
      EXPECT_EQ(b.frames[i].wire, b.frames[0].chunk->data + DatagramRx::kStride * i);
    }
  }
}

}  // namespace
}  // namespace qswitch::backends
