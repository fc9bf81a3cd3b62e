// tests/switch/output_ring_test.cc: OutputRing, the bounded ring of queued output frames that
// StreamTxQueue and DatagramTx share (switch/output_ring.h), tested through its own API.
//
// Theory of operation
// - Frames are laid out in chunks of real ChunkPools the way receiving ports leave them (4-byte
//   big-endian prefix, then pattern bytes), with gaps of 0xee between frames when a test wants
//   them apart. The wire bytes every frame must keep (prefix included) are taken at lay-out
//   time; what the ring holds is read back through at(i): its wire view, size and chunk.
// - Chunk references are observed through RxChunk::refs, chunks going back to their pool through
//   ChunkPool::free_count() and acquire().
// - unpin(): after it, the sender's chunk is overwritten (as a sender reusing its chunk would), so
//   an entry still read from its chunk instead of its copy shows up as wrong bytes. Copies are
//   recognised by chunk == nullptr and a wire view outside every test chunk; "adjacent" means
//   entry i's wire bytes end where entry i + 1's begin.
// - The copy space is private: that pop() and clear() give it back is observed as unpin() still
//   copying everything, round after round, with the ring filled to its bound each time.
// - A random test drives push/unpin/pop/clear against a std::deque model (fixed seed, bounded
//   steps) and checks counts, bytes, references, contents and the copied prefix after each step.
#include "switch/output_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "switch/frame.h"
#include "tests/switch/queue_test_support.h"

namespace qswitch::sw {
namespace {

using test::lay_out;
using test::TestChunk;

// A frame's wire bytes: the length prefix, then the Ethernet bytes.
using Wire = std::vector<uint8_t>;

Wire wire_of(const Frame& f) { return Wire(f.wire, f.wire + kPrefixSize + f.size); }

std::vector<Wire> wires_of(const std::vector<Frame>& frames) {
  std::vector<Wire> all;
  for (const Frame& f : frames) all.push_back(wire_of(f));
  return all;
}

// What the ring holds at i, read through its wire view.
Wire wire_at(const OutputRing& r, size_t i) {
  const OutputRing::Entry& e = r.at(i);
  return Wire(e.wire, e.wire + kPrefixSize + e.size);
}

std::vector<Wire> wires(const OutputRing& r) {
  std::vector<Wire> all;
  for (size_t i = 0; i < r.count(); ++i) all.push_back(wire_at(r, i));
  return all;
}

bool in_chunk(const void* p, const RxChunk* c) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  return b >= c->data && b < c->data + c->capacity;
}

// True when entry i + 1's wire bytes start where entry i's end.
bool adjacent(const OutputRing& r, size_t i) {
  return r.at(i).wire + kPrefixSize + r.at(i).size == r.at(i + 1).wire;
}

uint64_t padded(uint32_t size) { return std::max(size, kPadFrameSize); }

TEST(OutputRingTest, AnEmptyRingHoldsNothing) {
  TestChunk c;
  OutputRing r(1 << 20);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.count(), 0u);
  EXPECT_EQ(r.queued_bytes(), 0u);
  EXPECT_EQ(r.max_bytes(), size_t{1 << 20});
  const OutputRing::Written w = r.pop(3);
  EXPECT_EQ(w.frames, 0u);
  EXPECT_EQ(w.bytes, 0u);
  EXPECT_EQ(r.clear(), 0u);
  EXPECT_EQ(r.unpin(c.pool), 0u);
  EXPECT_TRUE(r.empty());
}

TEST(OutputRingTest, PushKeepsTheWireViewAndTakesAChunkReference) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {1514, 14, 60, 100}, {0, 3, 0, 0});
  OutputRing r(1 << 20);
  for (size_t i = 0; i < frames.size(); ++i) {
    ASSERT_TRUE(r.push(frames[i]));
    EXPECT_EQ(c.chunk->refs, 2 + i) << "each queued frame holds one chunk reference";
  }
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(r.count(), 4u);
  EXPECT_EQ(r.queued_bytes(), size_t{1514 + 14 + 60 + 100}) << "the frames' own bytes, unpadded";
  for (size_t i = 0; i < frames.size(); ++i) {
    const OutputRing::Entry& e = r.at(i);
    EXPECT_EQ(e.wire, frames[i].wire) << "frame " << i << " was copied on push";
    EXPECT_EQ(e.size, frames[i].size) << i;
    EXPECT_EQ(e.chunk, c.chunk) << i;
    EXPECT_EQ(load_be32(e.wire), frames[i].size) << "the wire view starts at the prefix";
    EXPECT_EQ(wire_at(r, i), wire_of(frames[i])) << i;
  }
}

TEST(OutputRingTest, PopReleasesTheOldestFramesAndCountsThemPaddedTo60) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {14, 59, 60, 61, 1514});
  OutputRing r(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(r.push(f));
  ASSERT_EQ(c.chunk->refs, 6u);

  // pop(0): a send that took nothing releases nothing.
  const OutputRing::Written none = r.pop(0);
  EXPECT_EQ(none.frames, 0u);
  EXPECT_EQ(none.bytes, 0u);
  EXPECT_EQ(r.count(), 5u);
  EXPECT_EQ(c.chunk->refs, 6u);

  const OutputRing::Written w = r.pop(2);
  EXPECT_EQ(w.frames, 2u);
  EXPECT_EQ(w.bytes, uint64_t{60 + 60}) << "14 and 59 bytes count as 60 each (tx_bytes)";
  EXPECT_EQ(c.chunk->refs, 4u) << "popped frames must release their chunk reference";
  EXPECT_EQ(r.count(), 3u);
  EXPECT_EQ(r.queued_bytes(), size_t{60 + 61 + 1514});
  EXPECT_EQ(r.at(0).wire, frames[2].wire) << "the oldest frame left is the third pushed";
  EXPECT_EQ(wires(r), wires_of({frames[2], frames[3], frames[4]}));

  // pop() beyond count() pops what there is.
  const OutputRing::Written rest = r.pop(10);
  EXPECT_EQ(rest.frames, 3u);
  EXPECT_EQ(rest.bytes, uint64_t{60 + 61 + 1514});
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.queued_bytes(), 0u);
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(OutputRingTest, TheByteBoundIsExactAndARefusalLeavesTheRingUnchanged) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {1000, 1000, 1001, 1000, 14});
  OutputRing r(3000);
  EXPECT_TRUE(r.push(frames[0]));
  EXPECT_TRUE(r.push(frames[1]));
  const std::vector<Wire> before = wires(r);
  EXPECT_FALSE(r.push(frames[2])) << "3001 bytes queued would pass the bound";
  EXPECT_EQ(r.count(), 2u);
  EXPECT_EQ(r.queued_bytes(), 2000u);
  EXPECT_EQ(c.chunk->refs, 3u) << "a refused frame must not keep a chunk reference";
  EXPECT_EQ(wires(r), before);
  EXPECT_EQ(r.at(1).wire, frames[1].wire);

  EXPECT_TRUE(r.push(frames[3])) << "exactly max_bytes fits";
  EXPECT_EQ(r.queued_bytes(), 3000u);
  EXPECT_FALSE(r.push(frames[4])) << "a full ring refuses even the smallest frame";
  EXPECT_EQ(r.count(), 3u);
  EXPECT_EQ(r.queued_bytes(), 3000u);
  EXPECT_EQ(c.chunk->refs, 4u);
  EXPECT_EQ(wires(r), wires_of({frames[0], frames[1], frames[3]}));

  // pop() makes room for exactly what it released.
  EXPECT_EQ(r.pop(1).frames, 1u);
  EXPECT_FALSE(r.push(frames[2])) << "1001 bytes into 1000 bytes of room";
  EXPECT_EQ(c.chunk->refs, 3u);
  EXPECT_TRUE(r.push(frames[0]));
  EXPECT_EQ(r.queued_bytes(), 3000u);
  EXPECT_EQ(wires(r), wires_of({frames[1], frames[3], frames[0]}));
  EXPECT_EQ(r.clear(), 3u);
  EXPECT_EQ(c.chunk->refs, 1u);

  // A frame larger than max_bytes never fits, even in an empty ring.
  OutputRing small(999);
  EXPECT_FALSE(small.push(frames[0]));
  EXPECT_TRUE(small.empty());
  EXPECT_EQ(small.queued_bytes(), 0u);
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(OutputRingTest, EntryCapNeverRefuses64ByteFramesBeforeMaxBytes) {
  // The entry cap is at least max_bytes / 64 entries: frames of 64 bytes and more are bounded by
  // bytes alone (max_bytes up to 4 MiB; beyond that 65536 entries, see EntryCapIsAtMost65536).
  for (uint32_t size : {64u, 65u, 1514u}) {
    const size_t frames_count = 1050;
    std::vector<uint32_t> sizes(frames_count + 1, size);
    std::vector<uint8_t> mem(sizes.size() * (size + kPrefixSize));
    const std::vector<Frame> frames = lay_out(mem.data(), mem.size(), nullptr, sizes);
    OutputRing r(frames_count * size);
    size_t accepted = 0;
    while (accepted < frames_count && r.push(frames[accepted])) ++accepted;
    EXPECT_EQ(accepted, frames_count) << size << "-byte frame refused with " << r.queued_bytes()
                                      << " of " << r.max_bytes() << " bytes queued";
    EXPECT_EQ(r.queued_bytes(), r.max_bytes());
    EXPECT_FALSE(r.push(frames[frames_count]))
        << "max_bytes exceeded with " << size << "-byte frames";
    EXPECT_EQ(r.count(), frames_count);
  }
}

TEST(OutputRingTest, EntryCapBoundsTinyFrames) {
  // 14-byte frames: the byte bound alone would admit 1050; the entry cap (max_bytes / 64, grown
  // by doubling) stops them earlier, but not before max_bytes / 64.
  TestChunk c;
  const size_t frames_count = 1050;
  const std::vector<Frame> frames = lay_out(c, std::vector<uint32_t>(frames_count, kMinFrameSize));
  const size_t max_bytes = frames_count * kMinFrameSize;
  OutputRing r(max_bytes);
  size_t accepted = 0;
  while (accepted < frames_count && r.push(frames[accepted])) ++accepted;
  EXPECT_GE(accepted, max_bytes / 64);
  EXPECT_LT(accepted, 2 * max_bytes / 64) << "more than max_bytes / 64 doubled once";
  EXPECT_LT(accepted, frames_count) << "no entry cap: 14-byte frames filled max_bytes";
  EXPECT_LT(r.queued_bytes(), r.max_bytes());
  // The refusal at the cap leaves the ring as it was.
  EXPECT_EQ(r.count(), accepted);
  EXPECT_EQ(r.queued_bytes(), accepted * kMinFrameSize);
  EXPECT_EQ(c.chunk->refs, 1 + accepted);
  EXPECT_EQ(r.at(accepted - 1).wire, frames[accepted - 1].wire);
  // Popping one frame makes room for one more, and no more.
  EXPECT_EQ(r.pop(1).frames, 1u);
  EXPECT_TRUE(r.push(frames[accepted]));
  EXPECT_FALSE(r.push(frames[accepted + 1]));
  EXPECT_EQ(r.count(), accepted);
  EXPECT_EQ(c.chunk->refs, 1 + accepted);
  EXPECT_EQ(r.at(0).wire, frames[1].wire);
  EXPECT_EQ(r.at(accepted - 1).wire, frames[accepted].wire);
  EXPECT_EQ(r.clear(), accepted);
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(OutputRingTest, EntryCapIsAtMost65536) {
  // A huge max_bytes still caps entries at 65536 (bookkeeping bounded for a stuck peer).
  std::vector<uint8_t> mem(kPrefixSize + kMinFrameSize);
  const std::vector<Frame> frames = lay_out(mem.data(), mem.size(), nullptr, {kMinFrameSize});
  OutputRing r(size_t{1} << 33);
  size_t accepted = 0;
  while (accepted < 65537 && r.push(frames[0])) ++accepted;
  EXPECT_EQ(accepted, 65536u);
  EXPECT_EQ(r.count(), 65536u);
  EXPECT_EQ(r.queued_bytes(), size_t{65536} * kMinFrameSize);
  EXPECT_EQ(r.at(65535).wire, frames[0].wire);
}

TEST(OutputRingTest, GrowsBeyondItsInitialEntriesAndWrapsKeepingOrder) {
  TestChunk c;
  std::vector<uint32_t> sizes;
  for (int i = 0; i < 3000; ++i) sizes.push_back(60 + static_cast<uint32_t>(i % 7));
  const std::vector<Frame> frames = lay_out(c, sizes);
  OutputRing r(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(r.push(f)) << "refused at count " << r.count();
  EXPECT_EQ(r.count(), frames.size());
  EXPECT_EQ(c.chunk->refs, 1 + frames.size());
  EXPECT_EQ(wires(r), wires_of(frames));

  // Pop half, push them again so the ring wraps, then check the whole order again.
  EXPECT_EQ(r.pop(1500).frames, 1500u);
  for (size_t i = 0; i < 1500; ++i) ASSERT_TRUE(r.push(frames[i]));
  std::vector<Frame> want(frames.begin() + 1500, frames.end());
  want.insert(want.end(), frames.begin(), frames.begin() + 1500);
  ASSERT_EQ(r.count(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(r.at(i).wire, want[i].wire) << i;
  EXPECT_EQ(wires(r), wires_of(want));
  EXPECT_EQ(r.clear(), want.size());
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(OutputRingTest, GrowsWhileWrappedKeepingOrder) {
  // Fill the first 64 entries, pop 40 and push 40 more (they wrap to the front of the storage),
  // then push once more: the ring grows while its oldest entry is not at the front.
  TestChunk c;
  std::vector<uint32_t> sizes;
  for (int i = 0; i < 200; ++i) sizes.push_back(14 + static_cast<uint32_t>(i % 90));
  const std::vector<Frame> frames = lay_out(c, sizes);
  OutputRing r(1 << 20);
  std::deque<Frame> model;
  size_t next = 0;
  auto push = [&](size_t n) {
    for (size_t i = 0; i < n; ++i) {
      const Frame& f = frames[next++ % frames.size()];
      ASSERT_TRUE(r.push(f));
      model.push_back(f);
    }
  };
  auto pop = [&](size_t n) {
    EXPECT_EQ(r.pop(n).frames, n);
    for (size_t i = 0; i < n; ++i) model.pop_front();
  };
  push(64);
  pop(40);
  push(40);
  push(1);  // grows with a wrapped ring
  ASSERT_EQ(r.count(), 65u);
  EXPECT_EQ(wires(r), wires_of({model.begin(), model.end()}));
  // And again at the later doublings (to 128, 256 and 512 entries), from varied heads.
  size_t most = 0;
  for (int round = 1; round <= 30; ++round) {
    push(static_cast<size_t>(round) * 5);
    most = std::max(most, model.size());
    pop(model.size() / 3);
    ASSERT_EQ(wires(r), wires_of({model.begin(), model.end()})) << "round " << round;
    for (size_t i = 0; i < model.size(); ++i) ASSERT_EQ(r.at(i).wire, model[i].wire) << i;
  }
  EXPECT_GT(most, 256u);
  EXPECT_EQ(c.chunk->refs, 1 + model.size());
  EXPECT_EQ(r.clear(), model.size());
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(OutputRingTest, EntryStorageNeverShrinksOnceGrown) {
  // 1024 entries: storage doubled from 64 to exactly 1024 entries, every one in use, so their
  // addresses are all of it. Emptying and refilling the ring (from other heads) reuses the same
  // storage: no allocation per frame once warm.
  constexpr size_t kEntries = 1024;
  std::vector<uint8_t> mem(kPrefixSize + 100);
  const std::vector<Frame> frames = lay_out(mem.data(), mem.size(), nullptr, {100});
  OutputRing r(1 << 20);
  for (size_t i = 0; i < kEntries; ++i) ASSERT_TRUE(r.push(frames[0]));
  std::set<const OutputRing::Entry*> storage;
  for (size_t i = 0; i < r.count(); ++i) storage.insert(&r.at(i));
  ASSERT_EQ(storage.size(), kEntries);
  EXPECT_EQ(r.clear(), kEntries);
  for (size_t round = 0; round < 5; ++round) {
    for (size_t i = 0; i < 300 + 100 * round; ++i) ASSERT_TRUE(r.push(frames[0]));
    r.pop(200);  // move the head
    while (r.count() < kEntries) ASSERT_TRUE(r.push(frames[0]));
    for (size_t i = 0; i < r.count(); ++i) {
      ASSERT_EQ(storage.count(&r.at(i)), 1u) << "round " << round << ", entry " << i;
    }
    EXPECT_EQ(r.clear(), kEntries);
  }
}

TEST(OutputRingTest, ClearDropsEverythingAndReleasesChunkReferences) {
  ChunkPool pool(16 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  const std::vector<Frame> frames =
      lay_out(chunk->data, chunk->capacity, chunk, {100, 20, 1514, 60});
  OutputRing r(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(r.push(f));
  EXPECT_EQ(chunk->refs, 5u);
  EXPECT_EQ(r.clear(), 4u) << "clear() says how many frames it dropped (drop_port_closed)";
  EXPECT_EQ(chunk->refs, 1u);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.count(), 0u);
  EXPECT_EQ(r.queued_bytes(), 0u);
  EXPECT_EQ(r.clear(), 0u);

  // The ring is usable again, from a clean start, with the whole of max_bytes.
  ASSERT_TRUE(r.push(frames[1]));
  EXPECT_EQ(r.count(), 1u);
  EXPECT_EQ(r.at(0).wire, frames[1].wire);
  EXPECT_EQ(r.queued_bytes(), 20u);
  EXPECT_EQ(r.clear(), 1u);
  chunk_unref(chunk);  // the receiving port's own reference
  EXPECT_EQ(chunk->refs, 0u);
  EXPECT_EQ(pool.free_count(), 1u) << "the chunk did not return to its pool";
}

TEST(OutputRingTest, TheDestructorReleasesChunkReferencesOfFramesAndCopies) {
  TestChunk p;
  ChunkPool pool(16 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  const std::vector<Frame> fp = lay_out(p, {200, 20});
  const std::vector<Frame> fo = lay_out(chunk->data, chunk->capacity, chunk, {100, 30});
  {
    OutputRing r(1 << 20);
    for (const Frame& f : {fp[0], fo[0], fp[1], fo[1]}) ASSERT_TRUE(r.push(f));
    EXPECT_EQ(chunk->refs, 3u);
    EXPECT_EQ(p.chunk->refs, 3u);
    EXPECT_EQ(r.unpin(p.pool), 3u);  // copies fp[0], fo[0], fp[1]; fo[1] stays in its chunk
    EXPECT_EQ(chunk->refs, 2u);
    EXPECT_EQ(p.chunk->refs, 1u);
    chunk_unref(chunk);  // only the ring holds the chunk now
    EXPECT_EQ(pool.free_count(), 0u);
  }
  EXPECT_EQ(pool.free_count(), 1u) << "the destructor did not release the last frame's chunk";
  EXPECT_EQ(chunk->refs, 0u);
  EXPECT_EQ(p.chunk->refs, 1u);
}

// --- unpin(): copying frames out of a sender's chunks --------------------------------------------

TEST(OutputRingTest, UnpinCopiesTheFramesUpToTheLastOneInThePoolAndNoFurther) {
  TestChunk p;  // the sender that runs short
  TestChunk o;  // another sender
  const std::vector<Frame> fp = lay_out(p, {100, 20});
  const std::vector<Frame> fo = lay_out(o, {300, 400, 500, 600}, {}, 7);
  const std::vector<Frame> order = {fo[0], fp[0], fo[1], fp[1], fo[2], fo[3]};
  OutputRing r(1 << 20);
  for (const Frame& f : order) ASSERT_TRUE(r.push(f));
  const std::vector<Wire> want = wires_of(order);
  ASSERT_EQ(p.chunk->refs, 3u);
  ASSERT_EQ(o.chunk->refs, 5u);

  EXPECT_EQ(r.unpin(p.pool), 4u) << "the frames up to fp[1], the last of the pool, are copied";
  EXPECT_EQ(p.chunk->refs, 1u) << "the ring still pins the sender's chunk";
  EXPECT_EQ(o.chunk->refs, 3u) << "fo[0] and fo[1] were copied, fo[2] and fo[3] were not";
  EXPECT_EQ(r.count(), order.size());
  EXPECT_EQ(r.queued_bytes(), size_t{100 + 20 + 300 + 400 + 500 + 600});
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);  // the sender reuses its chunk
  EXPECT_EQ(wires(r), want) << "unpin changed the bytes queued (prefix included)";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(r.at(i).chunk, nullptr) << i;
    EXPECT_FALSE(in_chunk(r.at(i).wire, p.chunk)) << i;
    EXPECT_FALSE(in_chunk(r.at(i).wire, o.chunk)) << i;
    EXPECT_EQ(r.at(i).size, order[i].size) << i;
  }
  for (size_t i = 0; i + 1 < 4; ++i) EXPECT_TRUE(adjacent(r, i)) << "copies " << i << ", " << i + 1;
  EXPECT_EQ(r.at(4).wire, fo[2].wire) << "a frame after the last one of the pool was copied";
  EXPECT_EQ(r.at(4).chunk, o.chunk);
  EXPECT_EQ(r.at(5).wire, fo[3].wire);
  EXPECT_EQ(r.at(5).chunk, o.chunk);

  // Nothing more of the pool is queued: a second unpin copies nothing.
  EXPECT_EQ(r.unpin(p.pool), 0u);
  EXPECT_EQ(o.chunk->refs, 3u);
  // The other pool's remaining frames: the copying resumes at the first frame not yet copied
  // (2 frames, not 6), and the new copies follow the earlier ones in memory.
  EXPECT_EQ(r.unpin(o.pool), 2u);
  EXPECT_EQ(o.chunk->refs, 1u);
  std::memset(o.chunk->data, 0xdd, o.chunk->capacity);
  EXPECT_EQ(wires(r), want);
  for (size_t i = 0; i + 1 < order.size(); ++i) EXPECT_TRUE(adjacent(r, i)) << i;

  const OutputRing::Written w = r.pop(order.size());
  EXPECT_EQ(w.frames, order.size());
  EXPECT_EQ(w.bytes, uint64_t{100 + 60 + 300 + 400 + 500 + 600}) << "a copy is padded too";
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.queued_bytes(), 0u);
}

TEST(OutputRingTest, UnpinCopiesOnlyThePrefixUpToThePoolsLastFrame) {
  // The pool's only frame is first: one copy, the rest stays zero copy. Then a frame of the pool
  // behind frames of another: the copied prefix grows to it, and stays a prefix after pops.
  TestChunk p;
  TestChunk o;
  const std::vector<Frame> fp = lay_out(p, {80, 90});
  const std::vector<Frame> fo = lay_out(o, {300, 400, 500}, {}, 3);
  const std::vector<Wire> want = wires_of({fo[1], fo[2], fp[1]});
  OutputRing r(1 << 20);
  for (const Frame& f : {fp[0], fo[0], fo[1]}) ASSERT_TRUE(r.push(f));
  EXPECT_EQ(r.unpin(p.pool), 1u);
  EXPECT_EQ(r.at(0).chunk, nullptr);
  EXPECT_EQ(r.at(1).wire, fo[0].wire);
  EXPECT_EQ(r.at(2).wire, fo[1].wire);
  EXPECT_EQ(o.chunk->refs, 3u);
  EXPECT_EQ(p.chunk->refs, 1u);

  ASSERT_TRUE(r.push(fo[2]));
  ASSERT_TRUE(r.push(fp[1]));
  EXPECT_EQ(r.pop(2).frames, 2u);  // the copy of fp[0] and fo[0]
  EXPECT_EQ(r.unpin(p.pool), 3u) << "fo[1], fo[2] and fp[1]";
  EXPECT_EQ(p.chunk->refs, 1u);
  EXPECT_EQ(o.chunk->refs, 1u);
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
  std::memset(o.chunk->data, 0xcc, o.chunk->capacity);
  ASSERT_EQ(r.count(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(r.at(i).chunk, nullptr) << i;
  EXPECT_TRUE(adjacent(r, 0));
  EXPECT_TRUE(adjacent(r, 1));
  EXPECT_EQ(wires(r), want);
}

TEST(OutputRingTest, UnpinOfAPoolWithNoQueuedFramesCopiesNothing) {
  TestChunk p;
  TestChunk o;
  OutputRing r(1 << 20);
  EXPECT_EQ(r.unpin(p.pool), 0u) << "empty ring";
  const std::vector<Frame> fp = lay_out(p, {200});
  const std::vector<Frame> fo = lay_out(o, {300, 20});
  // A frame of the pool that already left does not count either.
  ASSERT_TRUE(r.push(fp[0]));
  for (const Frame& f : fo) ASSERT_TRUE(r.push(f));
  EXPECT_EQ(r.pop(1).frames, 1u);
  EXPECT_EQ(p.chunk->refs, 1u);
  EXPECT_EQ(r.unpin(p.pool), 0u);
  EXPECT_EQ(o.chunk->refs, 3u);
  ASSERT_EQ(r.count(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.at(i).wire, fo[i].wire) << "still zero copy";
    EXPECT_EQ(r.at(i).chunk, o.chunk) << i;
  }
  EXPECT_EQ(r.queued_bytes(), 320u);
  EXPECT_EQ(r.clear(), 2u);
  EXPECT_EQ(o.chunk->refs, 1u);
}

TEST(OutputRingTest, UnpinAlsoCopiesStaticFramesBeforeThePoolsLastFrame) {
  // Every frame from the first not yet copied to the pool's last one is copied, whatever holds
  // it: a frame in static storage (no chunk) in between is copied too; one after is not.
  TestChunk p;
  std::vector<uint8_t> mem(1024);
  const std::vector<Frame> fs = lay_out(mem.data(), mem.size(), nullptr, {40, 70}, {}, 9);
  const std::vector<Frame> fp = lay_out(p, {100});
  OutputRing r(1 << 20);
  for (const Frame& f : {fs[0], fp[0], fs[1]}) ASSERT_TRUE(r.push(f));
  const std::vector<Wire> want = wires_of({fs[0], fp[0], fs[1]});
  EXPECT_EQ(r.unpin(p.pool), 2u);
  EXPECT_EQ(p.chunk->refs, 1u);
  EXPECT_FALSE(in_chunk(r.at(0).wire, p.chunk));
  EXPECT_NE(r.at(0).wire, fs[0].wire) << "the static frame before the pool's frame was copied";
  EXPECT_EQ(r.at(2).wire, fs[1].wire) << "the static frame after it was not";
  EXPECT_TRUE(adjacent(r, 0));
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
  EXPECT_EQ(wires(r), want);
  EXPECT_EQ(r.pop(3).bytes, uint64_t{60 + 100 + 70});
}

TEST(OutputRingTest, UnpinCopiesFramesThatWereApartInTheirChunkIntoAdjacentMemory) {
  TestChunk p;
  const std::vector<Frame> fp = lay_out(p, {60, 1514, 100, 14, 61}, {0, 9, 3, 1, 5});
  OutputRing r(1 << 20);
  for (const Frame& f : fp) ASSERT_TRUE(r.push(f));
  const std::vector<Wire> want = wires_of(fp);
  for (size_t i = 0; i + 1 < fp.size(); ++i) EXPECT_FALSE(adjacent(r, i)) << "layout " << i;
  EXPECT_EQ(r.unpin(p.pool), fp.size());
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
  for (size_t i = 0; i + 1 < fp.size(); ++i) EXPECT_TRUE(adjacent(r, i)) << i;
  EXPECT_EQ(wires(r), want);
  // Copies of a later unpin() continue the run.
  const std::vector<Frame> more = lay_out(p, {200, 300}, {7, 7}, 5);
  for (const Frame& f : more) ASSERT_TRUE(r.push(f));
  EXPECT_EQ(r.unpin(p.pool), 2u);
  for (size_t i = 0; i + 1 < r.count(); ++i) EXPECT_TRUE(adjacent(r, i)) << i;
  EXPECT_EQ(wire_at(r, 5), wires_of(more)[0]);
}

TEST(OutputRingTest, UnpinLetsTheChunkGoBackToItsPool) {
  ChunkPool pool(64 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  const std::vector<Frame> frames = lay_out(chunk->data, chunk->capacity, chunk, {1000, 30});
  const std::vector<Wire> want = wires_of(frames);
  OutputRing r(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(r.push(f));
  chunk_unref(chunk);  // the receiving port moved on; only the ring holds the chunk
  EXPECT_EQ(chunk->refs, 2u);
  EXPECT_EQ(pool.acquire(), nullptr) << "the ring pins the pool's only chunk";
  EXPECT_EQ(r.unpin(pool), 2u);
  EXPECT_EQ(pool.free_count(), 1u) << "the chunk did not return to its pool";
  RxChunk* again = pool.acquire();
  ASSERT_EQ(again, chunk);
  std::memset(again->data, 0xcc, again->capacity);  // reused for new input
  EXPECT_EQ(wires(r), want);
  const OutputRing::Written w = r.pop(2);
  EXPECT_EQ(w.frames, 2u);
  EXPECT_EQ(w.bytes, uint64_t{1000 + 60});
  EXPECT_EQ(again->refs, 1u) << "popping the copies must not touch the chunk";
  chunk_unref(again);
  EXPECT_EQ(pool.free_count(), 1u);
}

TEST(OutputRingTest, PopAndClearAfterUnpinGiveTheCopySpaceBack) {
  // Each round fills the ring to its bound, copies everything out, then pops or drops it. If
  // popped or dropped copies kept their space, the copy space (one full ring plus one largest
  // frame) would refuse copies by the third round, and unpin() would copy fewer frames.
  TestChunk p;
  constexpr size_t kFrames = 40;
  const size_t max_bytes = kFrames * 1514;
  OutputRing r(max_bytes);
  std::deque<Wire> model;
  for (int round = 0; round < 50; ++round) {
    const std::vector<Frame> frames =
        lay_out(p, std::vector<uint32_t>(kFrames, 1514), {}, static_cast<uint32_t>(round));
    const size_t leftover = r.count();
    for (size_t i = leftover; i < kFrames; ++i) {
      ASSERT_TRUE(r.push(frames[i])) << "round " << round;
      model.push_back(wire_of(frames[i]));
    }
    ASSERT_EQ(r.queued_bytes(), max_bytes);
    ASSERT_EQ(r.unpin(p.pool), kFrames - leftover) << "round " << round << ": copy refused";
    ASSERT_EQ(p.chunk->refs, 1u);
    std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
    ASSERT_EQ(wires(r), std::vector<Wire>(model.begin(), model.end())) << "round " << round;
    switch (round % 3) {
      case 0:
        ASSERT_EQ(r.pop(kFrames).frames, kFrames);
        model.clear();
        break;
      case 1:
        r.pop(kFrames / 3);
        ASSERT_EQ(r.clear(), kFrames - kFrames / 3);
        model.clear();
        break;
      default:
        r.pop(kFrames - 1);  // one copy stays into the next round
        ASSERT_EQ(r.count(), 1u);
        model.erase(model.begin(), model.end() - 1);
        break;
    }
  }
  r.clear();
  EXPECT_TRUE(r.empty());
}

TEST(OutputRingTest, UnpinNeverRefusesACopyWithTheRingFullOfFramesUpToTheLargest) {
  // The copy space holds everything the ring may hold plus one largest frame lost to a wrap:
  // whatever mix of sizes fills the ring (up to kMaxFrameSize) and however much left before,
  // unpin() copies every queued frame.
  for (const size_t max_bytes : {size_t{kMaxFrameSize}, size_t{300000}}) {
    TestChunk p(512 * 1024);
    OutputRing r(max_bytes);
    std::mt19937 rng(11);
    std::deque<Wire> model;
    size_t unpinned = 0;
    for (int round = 0; round < 150; ++round) {
      // Every queued frame is a copy at this point: the chunk can be laid out afresh.
      std::vector<uint32_t> sizes;
      size_t room = p.chunk->capacity;
      for (;;) {
        const int kind = std::uniform_int_distribution<int>(0, 9)(rng);
        const uint32_t size =
            kind < 4   ? std::uniform_int_distribution<uint32_t>(kMinFrameSize, 100)(rng)
            : kind < 7 ? std::uniform_int_distribution<uint32_t>(1000, 9018)(rng)
            : kind < 9 ? std::uniform_int_distribution<uint32_t>(30000, kMaxFrameSize)(rng)
                       : kMaxFrameSize;
        if (kPrefixSize + size > room) break;
        room -= kPrefixSize + size;
        sizes.push_back(size);
      }
      const std::vector<Frame> frames = lay_out(p, sizes, {}, static_cast<uint32_t>(round));
      const size_t copied_before = r.count();
      for (const Frame& f : frames) {
        if (!r.push(f)) break;
        model.push_back(wire_of(f));
      }
      const size_t pushed = r.count() - copied_before;
      ASSERT_EQ(r.unpin(p.pool), pushed) << "max_bytes " << max_bytes << ", round " << round;
      unpinned += pushed;
      ASSERT_EQ(p.chunk->refs, 1u);
      std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
      ASSERT_EQ(wires(r), std::vector<Wire>(model.begin(), model.end()))
          << "max_bytes " << max_bytes << ", round " << round;
      const size_t n = std::uniform_int_distribution<size_t>(0, r.count())(rng);
      ASSERT_EQ(r.pop(n).frames, n);
      model.erase(model.begin(), model.begin() + static_cast<ptrdiff_t>(n));
    }
    EXPECT_GT(unpinned, 150u);
  }
}

TEST(OutputRingTest, UnpinCopiesARingFullUpToItsEntryCapWithEveryPrefix) {
  // The copy space holds every queued frame with its prefix: a ring at its entry cap, mostly
  // tiny frames and large ones making up most of max_bytes, needs more than max_bytes plus one
  // largest frame of copies, and unpin() still copies it whole; again after part of it left and
  // the copies wrap.
  constexpr size_t kMaxBytes = 2 * 1024 * 1024;  // entry cap 2 MiB / 64 = 32768
  constexpr size_t kCap = kMaxBytes / 64;
  TestChunk p(4 * 1024 * 1024);
  OutputRing r(kMaxBytes);
  std::deque<Wire> model;
  for (int round = 0; round < 3; ++round) {
    // Every queued frame is a copy at this point: the chunk can be laid out afresh.
    std::vector<uint32_t> sizes;
    for (size_t i = r.count(); i < kCap; ++i) sizes.push_back(i % 482 == 481 ? 24108 : 14);
    const std::vector<Frame> frames = lay_out(p, sizes, {}, static_cast<uint32_t>(round));
    for (const Frame& f : frames) {
      ASSERT_TRUE(r.push(f)) << "round " << round << ", count " << r.count();
      model.push_back(wire_of(f));
    }
    ASSERT_EQ(r.count(), kCap);
    ASSERT_FALSE(r.push(frames.back())) << "the entry cap is max_bytes / 64";
    ASSERT_LT(r.queued_bytes() + frames.back().size, kMaxBytes) << "bytes are not the bound here";
    ASSERT_GT(r.queued_bytes() + kCap * kPrefixSize, kMaxBytes + kMaxWireSize)
        << "the test needs more copy space than max_bytes and one largest frame";
    ASSERT_EQ(r.unpin(p.pool), frames.size()) << "round " << round << ": a copy was refused";
    ASSERT_EQ(p.chunk->refs, 1u);
    std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
    ASSERT_TRUE(wires(r) == std::vector<Wire>(model.begin(), model.end())) << "round " << round;
    const size_t n = kCap / 3 + 1000 * static_cast<size_t>(round);
    ASSERT_EQ(r.pop(n).frames, n);
    model.erase(model.begin(), model.begin() + static_cast<ptrdiff_t>(n));
  }
}

TEST(OutputRingTest, RandomPushUnpinPopAndClearMatchADequeModel) {
  constexpr size_t kPools = 3;
  constexpr size_t kFramesPerPool = 48;
  std::mt19937 rng(123);
  std::vector<std::unique_ptr<TestChunk>> chunks;
  std::vector<Frame> frames;
  std::vector<size_t> frame_pool;
  std::vector<uint8_t> static_mem(16 * 1024);
  std::uniform_int_distribution<uint32_t> size_dist(kMinFrameSize, 1514);
  for (size_t k = 0; k <= kPools; ++k) {
    std::vector<uint32_t> sizes, gaps;
    for (size_t i = 0; i < (k < kPools ? kFramesPerPool : 8); ++i) {
      sizes.push_back(i % 5 == 0 ? kMinFrameSize + static_cast<uint32_t>(i % 46) : size_dist(rng));
      gaps.push_back(i % 7 == 0 ? 5 : 0);
    }
    std::vector<Frame> laid;
    if (k < kPools) {
      chunks.push_back(std::make_unique<TestChunk>());
      laid = lay_out(*chunks.back(), sizes, gaps, static_cast<uint32_t>(k * 13));
    } else {
      laid = lay_out(static_mem.data(), static_mem.size(), nullptr, sizes, gaps, 77);
    }
    for (const Frame& f : laid) {
      frames.push_back(f);
      frame_pool.push_back(k);
    }
  }
  // Frames are pushed repeatedly, so chunks are never overwritten here: the tests above check
  // that copies do not read their chunk. This one checks order, counts, references and contents.
  const std::vector<Wire> want_of = wires_of(frames);
  OutputRing r(24 * 1024);  // entry cap 512
  std::deque<test::QueuedModel> model;
  uint64_t copied_total = 0;
  uint64_t refused = 0;
  uint64_t cleared = 0;
  std::uniform_int_distribution<int> op(0, 99);
  for (int step = 0; step < 6000; ++step) {
    // Phases of filling (mostly pushes) and draining (mostly pops), so the ring both runs full
    // and empties.
    const bool filling = (step / 300) % 2 == 0;
    int o = op(rng);
    if (!filling && o < 55) o = 70 + o % 27;
    if (filling && o >= 70 && o < 97 && o % 3 != 0) o = o % 55;
    size_t queued = 0;
    for (const test::QueuedModel& m : model) queued += frames[m.frame].size;
    if (o < 55) {
      const size_t i = std::uniform_int_distribution<size_t>(0, frames.size() - 1)(rng);
      const bool fits = queued + frames[i].size <= r.max_bytes() && model.size() < 512;
      ASSERT_EQ(r.push(frames[i]), fits) << "step " << step;
      if (fits) {
        model.push_back({i, frame_pool[i], false});
      } else {
        ++refused;
      }
    } else if (o < 70) {
      const size_t k = std::uniform_int_distribution<size_t>(0, kPools - 1)(rng);
      const size_t want = test::unpin_model(model, k);
      ASSERT_EQ(r.unpin(chunks[k]->pool), want) << "step " << step;
      copied_total += want;
    } else if (o < 97) {
      const size_t n = std::uniform_int_distribution<size_t>(0, 8)(rng);
      const OutputRing::Written w = r.pop(n);
      uint64_t want_frames = 0;
      uint64_t want_bytes = 0;
      while (want_frames < n && !model.empty()) {
        ++want_frames;
        want_bytes += padded(frames[model.front().frame].size);
        model.pop_front();
      }
      ASSERT_EQ(w.frames, want_frames) << "step " << step;
      ASSERT_EQ(w.bytes, want_bytes) << "step " << step;
    } else {
      ASSERT_EQ(r.clear(), model.size()) << "step " << step;
      model.clear();
      ++cleared;
    }
    queued = 0;
    for (const test::QueuedModel& m : model) queued += frames[m.frame].size;
    ASSERT_EQ(r.count(), model.size()) << "step " << step;
    ASSERT_EQ(r.empty(), model.empty()) << "step " << step;
    ASSERT_EQ(r.queued_bytes(), queued) << "step " << step;
    for (size_t k = 0; k < kPools; ++k) {
      uint32_t pins = 0;
      for (const test::QueuedModel& m : model) pins += (m.pool == k && !m.copied) ? 1 : 0;
      ASSERT_EQ(chunks[k]->chunk->refs, 1 + pins) << "pool " << k << ", step " << step;
    }
    size_t breaks = 0;  // consecutive copies not adjacent: at most one, where the copies wrap
    for (size_t i = 0; i < model.size(); ++i) {
      const OutputRing::Entry& e = r.at(i);
      const Frame& f = frames[model[i].frame];
      ASSERT_EQ(wire_at(r, i), want_of[model[i].frame]) << "entry " << i << ", step " << step;
      ASSERT_EQ(e.wire == f.wire, !model[i].copied) << "entry " << i << ", step " << step;
      ASSERT_EQ(e.chunk, model[i].copied ? nullptr : f.chunk) << "entry " << i << ", step " << step;
      if (i > 0 && model[i].copied && !adjacent(r, i - 1)) ++breaks;
    }
    ASSERT_LE(breaks, 1u) << "step " << step;
  }
  EXPECT_GT(copied_total, 500u);
  EXPECT_GT(refused, 0u) << "the ring never filled";
  EXPECT_GT(cleared, 0u);
  r.clear();
  for (const auto& c : chunks) EXPECT_EQ(c->chunk->refs, 1u);
}

// push_burst() is push() frame by frame up to the first refusal: the same entries (runs
// included), counts, bytes and chunk references, for bursts of runs broken by gaps, other chunks,
// static frames, short frames and split frames, into rings that fill up (byte bound and entry
// cap) and are popped and unpinned in between.
TEST(OutputRingTest, PushContinuingJoinsTheLastRunUpToItsLongestAndKeepsTheBounds) {
  // 1000-byte frames back to back: 65 of them (65 * 1004 wire bytes) fit one run of at most
  // kMaxWireSize, the 66th starts an entry of its own.
  TestChunk c(128 * 1024);
  const std::vector<Frame> f = lay_out(c, std::vector<uint32_t>(70, 1000));
  OutputRing ring(100 * 1000, /*merge_runs=*/true);
  ASSERT_TRUE(ring.push(f[0]));
  for (size_t i = 1; i < 66; ++i) ASSERT_TRUE(ring.push_continuing(f[i])) << i;
  EXPECT_EQ(ring.count(), 2u);
  EXPECT_EQ(ring.at(0).frames, 65u);
  EXPECT_EQ(ring.at(1).wire, f[65].wire);
  EXPECT_EQ(ring.frames(), 66u);
  EXPECT_EQ(ring.queued_bytes(), 66u * 1000u);
  EXPECT_EQ(c.chunk->refs, 1u + 2u);
  // The byte bound holds as in push(): 100 frames' worth, then a refusal that changes nothing.
  for (size_t i = 66; i < 70; ++i) ASSERT_TRUE(ring.push_continuing(f[i]));
  OutputRing small(3 * 1000, /*merge_runs=*/true);
  ASSERT_TRUE(small.push(f[0]));
  ASSERT_TRUE(small.push_continuing(f[1]));
  ASSERT_TRUE(small.push_continuing(f[2]));
  EXPECT_FALSE(small.push_continuing(f[3]));
  EXPECT_EQ(small.frames(), 3u);
  EXPECT_EQ(small.at(0).frames, 3u);
  EXPECT_EQ(small.queued_bytes(), 3000u);
  const OutputRing::Written w = small.pop(1);
  EXPECT_EQ(w.frames, 3u);
  EXPECT_EQ(w.bytes, 3000u);
}

TEST(OutputRingTest, PushBurstIsPushFrameByFrameUpToTheFirstRefusal) {
  std::mt19937 rng(7);
  TestChunk c1, c2;
  std::vector<uint8_t> static_mem(64 * 1024);
  std::vector<uint8_t> tails(kMaxFrameSize, 0x5a);  // what unpin() copies of a split frame's tail
  c1.chunk->tail = tails.data();
  c2.chunk->tail = tails.data();
  std::uniform_int_distribution<uint32_t> size_dist(kMinFrameSize, 300);
  auto lay = [&](uint8_t* mem, size_t mem_size, RxChunk* chunk, uint32_t salt) {
    std::vector<uint32_t> sizes, gaps;
    for (int i = 0; i < 400; ++i) {
      sizes.push_back(i % 9 == 0 ? kMinFrameSize + static_cast<uint32_t>(i % 40) : size_dist(rng));
      gaps.push_back(i % 23 == 0 ? 3 : 0);
    }
    return lay_out(mem, mem_size, chunk, sizes, gaps, salt);
  };
  const std::vector<Frame> pool[3] = {lay(c1.chunk->data, c1.chunk->capacity, c1.chunk, 1),
                                      lay(c2.chunk->data, c2.chunk->capacity, c2.chunk, 2),
                                      lay(static_mem.data(), static_mem.size(), nullptr, 3)};
  OutputRing one(16 * 1024, /*merge_runs=*/true);  // entry cap 256
  OutputRing burst(16 * 1024, /*merge_runs=*/true);
  size_t refusals = 0;
  size_t joined = 0;
  for (int step = 0; step < 3000; ++step) {
    // A burst: mostly a stretch of consecutive frames of one source, sometimes mixed.
    std::vector<Frame> frames;
    const size_t n = std::uniform_int_distribution<size_t>(1, 40)(rng);
    const size_t src = std::uniform_int_distribution<size_t>(0, 2)(rng);
    size_t at = std::uniform_int_distribution<size_t>(0, 399)(rng);
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 8 == 0) {
        frames.push_back(pool[rng() % 3][rng() % 400]);
      } else {
        frames.push_back(pool[src][at]);
        at = (at + 1) % 400;
      }
      if (rng() % 50 == 0 && frames.back().chunk != nullptr && frames.back().size > kSplitHead) {
        frames.back().head = kSplitHead;  // as if split (its tail is never read here)
      }
    }
    size_t want = 0;
    while (want < frames.size() && one.push(frames[want])) ++want;
    const size_t got = burst.push_burst(frames);
    ASSERT_EQ(got, want) << "step " << step;
    if (want < frames.size()) ++refusals;
    ASSERT_EQ(burst.count(), one.count()) << "step " << step;
    ASSERT_EQ(burst.frames(), one.frames()) << "step " << step;
    ASSERT_EQ(burst.queued_bytes(), one.queued_bytes()) << "step " << step;
    for (size_t i = 0; i < one.count(); ++i) {
      const OutputRing::Entry& a = one.at(i);
      const OutputRing::Entry& b = burst.at(i);
      ASSERT_EQ(b.size, a.size) << "entry " << i << ", step " << step;
      ASSERT_EQ(b.frames, a.frames) << "entry " << i << ", step " << step;
      ASSERT_EQ(b.head, a.head) << "entry " << i << ", step " << step;
      ASSERT_EQ(b.chunk, a.chunk) << "entry " << i << ", step " << step;
      if (a.chunk != nullptr || b.chunk != nullptr) {
        ASSERT_EQ(b.wire, a.wire) << "entry " << i << ", step " << step;
      }
      joined += a.frames > 1 ? 1 : 0;
    }
    const size_t pops = std::uniform_int_distribution<size_t>(0, 6)(rng);
    const OutputRing::Written wa = one.pop(pops);
    const OutputRing::Written wb = burst.pop(pops);
    ASSERT_EQ(wb.frames, wa.frames) << "step " << step;
    ASSERT_EQ(wb.bytes, wa.bytes) << "step " << step;
    if (step % 97 == 0) {
      ASSERT_EQ(burst.unpin(c1.pool), one.unpin(c1.pool)) << "step " << step;
    }
  }
  EXPECT_GT(refusals, 100u) << "the rings never filled";
  EXPECT_GT(joined, 1000u) << "few runs were made";
  // Each ring holds one reference per entry of its own, so both hold the same number.
  const uint32_t held = c1.chunk->refs + c2.chunk->refs;
  one.clear();
  burst.clear();
  EXPECT_EQ(c1.chunk->refs + c2.chunk->refs, 2u);
  EXPECT_GT(held, 2u);
}

}  // namespace
}  // namespace qswitch::sw
