// tests/backends/datagram_rx_test.cc: DatagramRx, the receive slots of datagram-like ports.
//
// Theory of operation
// - The test plays the port: it asks available(), writes "datagrams" into slot(i), makes frames
//   with frame(i, len) and advance()s, exactly as the header's usage note says; it plays the
//   output queues by taking and dropping chunk references on the frames (chunk_ref/chunk_unref).
// - Chunks are observed through the frames' RxChunk (refs, identity) and through available():
//   0 means every chunk of the receiver's pool is held. Slot bounds are checked by writing whole
//   slots (ASan reports a write outside the chunk) and reading the neighbours' prefixes.
#include "backends/dgram/datagram_rx.h"

#include <gtest/gtest.h>

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
  void relieve(const sw::ChunkPool& pool) override {
    ++calls;
    pools.push_back(&pool);
    for (sw::RxChunk* c : held) sw::chunk_unref(c);
    held.clear();
  }
  int calls = 0;
  std::vector<const sw::ChunkPool*> pools;
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
  for (const sw::ChunkPool* p : pressure.pools) EXPECT_EQ(p, pressure.pools[0]);
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

}  // namespace
}  // namespace qswitch::backends
