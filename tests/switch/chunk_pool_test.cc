// tests/switch/chunk_pool_test.cc: ChunkPool recycling and pressure relief (switch/frame.h).
//
// Theory of operation
// - A test plays both sides of a receive chunk: the receiving port (which acquires chunks and
//   drops its reference when it moves on) and the output queues (extra references, chunk_ref).
// - The pressure handler is a test double that records each relieve() call with the pool's
//   available_count() at that moment, and can run an action: dropping the "queues'" references
//   (what StreamTxQueue::unpin() does once it has copied the frames) or calling acquire() again.
#include "switch/frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <vector>

namespace qswitch::sw {
namespace {

class RecordingPressure : public ChunkPressure {
 public:
  void relieve(const ChunkOwner& pool) override {
    const auto& chunk_pool = dynamic_cast<const ChunkPool&>(pool);
    pools.push_back(&chunk_pool);
    available_at_call.push_back(chunk_pool.available_count());
    if (action) action();
  }
  std::vector<const ChunkPool*> pools;
  std::vector<uint32_t> available_at_call;
  std::function<void()> action;
};

TEST(ChunkPoolTest, HandsOutUpToMaxChunksThenNothingAndRecyclesReleasedOnes) {
  ChunkPool pool(256, 3);
  EXPECT_EQ(pool.available_count(), 3u);
  std::vector<RxChunk*> held;
  for (int i = 0; i < 3; ++i) {
    RxChunk* c = pool.acquire();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->refs, 1u);
    EXPECT_EQ(c->capacity, 256u);
    EXPECT_EQ(c->pool, &pool);
    held.push_back(c);
  }
  EXPECT_EQ(pool.available_count(), 0u);
  EXPECT_EQ(pool.acquire(), nullptr);
  chunk_ref(held[1]);  // an output queue still holds a frame of it
  chunk_unref(held[1]);
  EXPECT_EQ(pool.acquire(), nullptr) << "a chunk still referenced went back to the pool";
  chunk_unref(held[1]);
  EXPECT_EQ(pool.available_count(), 1u);
  EXPECT_EQ(pool.acquire(), held[1]) << "a released chunk must be recycled, not reallocated";
  EXPECT_EQ(pool.allocated_count(), 3u);
  for (RxChunk* c : held) chunk_unref(c);
  EXPECT_EQ(pool.free_count(), 3u);
}

TEST(ChunkPoolTest, AsksForReliefOnceAQuarterOfItsChunksIsLeftAndNotBefore) {
  ChunkPool pool(64, 8);
  RecordingPressure pressure;
  pool.set_pressure(&pressure);
  std::vector<RxChunk*> held;
  // 8, 7, ..., 3 available: no relief.
  for (int i = 0; i < 6; ++i) {
    held.push_back(pool.acquire());
    ASSERT_NE(held.back(), nullptr);
    EXPECT_TRUE(pressure.pools.empty())
        << "relief asked with " << pool.available_count() + 1 << " of 8 chunks available";
  }
  // 2 of 8 available: a quarter. Relief comes before the chunk is handed out.
  held.push_back(pool.acquire());
  ASSERT_NE(held.back(), nullptr);
  ASSERT_EQ(pressure.pools.size(), 1u);
  EXPECT_EQ(pressure.pools[0], &pool);
  EXPECT_EQ(pressure.available_at_call[0], 2u);
  // Every further acquire while short asks again, including the one that gets nothing.
  held.push_back(pool.acquire());
  ASSERT_NE(held.back(), nullptr);
  EXPECT_EQ(pressure.available_at_call, (std::vector<uint32_t>{2, 1}));
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pressure.available_at_call, (std::vector<uint32_t>{2, 1, 0}));

  // Once chunks come back the pool is no longer short: no relief.
  for (RxChunk* c : held) chunk_unref(c);
  pressure.pools.clear();
  pressure.available_at_call.clear();
  RxChunk* c = pool.acquire();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(pressure.pools.empty()) << "relief asked with every chunk free";
  chunk_unref(c);
}

TEST(ChunkPoolTest, FreeChunksCountAsAvailableForRelief) {
  // Chunks allocated earlier and released are as good as never allocated ones.
  ChunkPool pool(64, 4);
  RecordingPressure pressure;
  pool.set_pressure(&pressure);
  std::vector<RxChunk*> held;
  for (int i = 0; i < 3; ++i) held.push_back(pool.acquire());
  for (RxChunk* c : held) chunk_unref(c);
  held.clear();
  EXPECT_EQ(pool.allocated_count(), 3u);
  EXPECT_EQ(pool.available_count(), 4u);
  for (int i = 0; i < 3; ++i) held.push_back(pool.acquire());
  EXPECT_TRUE(pressure.pools.empty());
  held.push_back(pool.acquire());  // 1 of 4 available
  EXPECT_EQ(pressure.available_at_call, (std::vector<uint32_t>{1}));
  for (RxChunk* c : held) chunk_unref(c);
}

TEST(ChunkPoolTest, APoolOfFewerThanFourChunksAsksOnlyWhenNoneIsLeft) {
  ChunkPool pool(64, 2);
  RecordingPressure pressure;
  pool.set_pressure(&pressure);
  RxChunk* a = pool.acquire();
  RxChunk* b = pool.acquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(pressure.pools.empty());
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pressure.available_at_call, (std::vector<uint32_t>{0}));
  chunk_unref(a);
  chunk_unref(b);
}

TEST(ChunkPoolTest, AHandlerThatReleasesChunksMakesAcquireSucceedAgain) {
  ChunkPool pool(64, 4);
  RecordingPressure pressure;
  // The "output queues" hold one reference to each chunk; relief copies and drops them.
  std::vector<RxChunk*> queued;
  pressure.action = [&] {
    for (RxChunk* c : queued) chunk_unref(c);
    queued.clear();
  };
  for (int i = 0; i < 4; ++i) {
    RxChunk* c = pool.acquire();
    ASSERT_NE(c, nullptr);
    chunk_ref(c);  // an output queue took a frame of it
    queued.push_back(c);
    chunk_unref(c);  // the receiving port moved on
  }
  EXPECT_EQ(pool.available_count(), 0u);

  // Without a handler the pool is exhausted for as long as the queues hold on.
  EXPECT_EQ(pool.acquire(), nullptr);
  pool.set_pressure(&pressure);
  RxChunk* c = pool.acquire();
  ASSERT_NE(c, nullptr) << "relief released every chunk, yet acquire() failed";
  EXPECT_EQ(c->refs, 1u);
  EXPECT_EQ(pressure.pools.size(), 1u);
  EXPECT_TRUE(queued.empty());
  EXPECT_EQ(pool.available_count(), 3u);
  EXPECT_EQ(pool.allocated_count(), 4u) << "relief must recycle chunks, not allocate more";
  chunk_unref(c);
}

TEST(ChunkPoolTest, AHandlerThatCannotReleaseAnythingLeavesAcquireFailing) {
  ChunkPool pool(64, 4);
  RecordingPressure pressure;
  pool.set_pressure(&pressure);
  std::vector<RxChunk*> held;
  for (int i = 0; i < 4; ++i) held.push_back(pool.acquire());
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pool.acquire(), nullptr);
  // Asked with 1 left (the fourth acquire), then with none left twice.
  EXPECT_EQ(pressure.available_at_call, (std::vector<uint32_t>{1, 0, 0}));
  for (RxChunk* c : held) chunk_unref(c);
}

TEST(ChunkPoolTest, AcquireFromInsideReliefDoesNotAskForReliefAgain) {
  ChunkPool pool(64, 4);
  RecordingPressure pressure;
  pool.set_pressure(&pressure);
  std::vector<RxChunk*> held;
  int depth = 0;
  int max_depth = 0;
  RxChunk* inner = nullptr;
  pressure.action = [&] {
    ++depth;
    max_depth = std::max(max_depth, depth);
    if (inner == nullptr) inner = pool.acquire();  // re-enters acquire() on the same pool
    --depth;
  };
  for (int i = 0; i < 3; ++i) held.push_back(pool.acquire());
  // 1 of 4 left: relief runs, and its own acquire() takes the last chunk without recursing.
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(pressure.pools.size(), 1u) << "acquire() inside relieve() asked for relief again";
  EXPECT_EQ(max_depth, 1);
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->refs, 1u);
  // Relief is possible again afterwards.
  chunk_unref(inner);
  RxChunk* again = pool.acquire();
  EXPECT_EQ(pressure.pools.size(), 2u);
  EXPECT_EQ(again, inner);
  held.push_back(again);
  for (RxChunk* c : held) chunk_unref(c);
}

TEST(ChunkPoolTest, DestroyingThePoolOrphansReferencedChunksUntilTheirLastUnref) {
  RxChunk* kept = nullptr;
  {
    ChunkPool pool(64, 2);
    kept = pool.acquire();
    ASSERT_NE(kept, nullptr);
    RxChunk* idle = pool.acquire();
    chunk_unref(idle);
    kept->data[0] = 0x5a;
  }
  EXPECT_EQ(kept->pool, nullptr);
  EXPECT_EQ(kept->data[0], 0x5a);  // still readable (ASan: not freed)
  chunk_unref(kept);               // frees it (ASan: no leak)
}

}  // namespace
}  // namespace qswitch::sw
