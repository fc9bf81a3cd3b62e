// tests/switch/copy_ring_test.cc: CopyRing, the FIFO byte ring an output queue copies frames into
// when a sender runs short of receive chunks (switch/frame.h).
//
// Theory of operation
// - Every copy is made from a distinct byte pattern and checked byte for byte, for every copy
//   still held, after every operation: a copy placed over a live one, or a pop that releases the
//   wrong bytes, shows up as changed contents (and under ASan, a copy outside the buffer as an
//   error).
// - A ring built with capacity C has room for C + kMaxWireSize bytes (the constructor's
//   promise: C bytes of copies plus one largest frame lost to wrapping). The wrap tests choose C
//   so that the room is a round 100000 bytes and place copies at known offsets from the first.
// - The random test drives thousands of push/pop sequences against a std::deque model holding
//   the expected bytes and the pointer each push returned. It checks the contents, FIFO order,
//   empty()/allocated() after each step, and that a push is never refused while the bytes held
//   plus the new copy fit in C (what StreamTxQueue and DatagramTx size their rings by).
#include "switch/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace qswitch::sw {
namespace {

std::vector<uint8_t> pattern(size_t size, uint32_t seed) {
  std::vector<uint8_t> b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<uint8_t>(seed * 131 + i * 7 + (i >> 8) + 1);
  return b;
}

struct Held {
  const uint8_t* copy;
  std::vector<uint8_t> bytes;
};

// True when every held copy still has its bytes.
bool intact(const std::deque<Held>& held) {
  for (const Held& h : held) {
    if (!std::equal(h.bytes.begin(), h.bytes.end(), h.copy)) return false;
  }
  return true;
}

// Capacity argument for a ring with exactly 100000 bytes of room.
constexpr size_t kRoom = 100'000;
constexpr size_t kCapacityForRoom = kRoom - kMaxWireSize;

TEST(CopyRingTest, StartsEmptyWithoutABuffer) {
  CopyRing r(1 << 20);
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.allocated()) << "a ring that never copied must cost no memory";
}

TEST(CopyRingTest, PushCopiesTheBytesAndPopReleasesThemInFifoOrder) {
  CopyRing r(4096);
  std::vector<uint8_t> a = pattern(100, 1);
  const std::vector<uint8_t> b = pattern(1, 2);
  const std::vector<uint8_t> c = pattern(3000, 3);
  const std::vector<uint8_t> a_before = a;
  const uint8_t* ca = r.push(a.data(), a.size());
  ASSERT_NE(ca, nullptr);
  EXPECT_TRUE(r.allocated());
  EXPECT_FALSE(r.empty());
  const uint8_t* cb = r.push(b.data(), b.size());
  const uint8_t* cc = r.push(c.data(), c.size());
  ASSERT_NE(cb, nullptr);
  ASSERT_NE(cc, nullptr);
  EXPECT_NE(ca, a.data()) << "push() must copy, not alias";
  // Copies are bumped at the back: consecutive copies are adjacent (StreamTxQueue's coalescing
  // relies on it).
  EXPECT_EQ(cb, ca + a.size());
  EXPECT_EQ(cc, cb + b.size());
  // The copy is independent of its source.
  std::fill(a.begin(), a.end(), 0);
  EXPECT_TRUE(std::equal(a_before.begin(), a_before.end(), ca));

  std::deque<Held> held = {{ca, a_before}, {cb, b}, {cc, c}};
  while (!held.empty()) {
    r.pop(held.front().copy, held.front().bytes.size());
    held.pop_front();
    EXPECT_TRUE(intact(held)) << "a pop disturbed a copy still held";
    EXPECT_EQ(r.empty(), held.empty());
  }
  EXPECT_FALSE(r.allocated()) << "an emptied ring must free its buffer";
}

TEST(CopyRingTest, ACopyThatDoesNotFitAtTheEndGoesToTheFrontAndPopsAccountForTheWrap) {
  CopyRing r(kCapacityForRoom);
  std::deque<Held> held;
  auto push = [&](size_t size, uint32_t seed) -> const uint8_t* {
    std::vector<uint8_t> b = pattern(size, seed);
    const uint8_t* p = r.push(b.data(), b.size());
    if (p != nullptr) held.push_back({p, std::move(b)});
    return p;
  };
  auto pop = [&] {
    r.pop(held.front().copy, held.front().bytes.size());
    held.pop_front();
  };

  // Four copies of 24000 bytes: [0, 96000) used, 4000 bytes left at the end.
  const uint8_t* p1 = push(24000, 1);
  ASSERT_NE(p1, nullptr);
  for (uint32_t i = 2; i <= 4; ++i) ASSERT_NE(push(24000, i), nullptr);
  const uint8_t* p2 = held[1].copy;
  EXPECT_EQ(held[3].copy, p1 + 72000);
  EXPECT_EQ(push(24000, 5), nullptr) << "no room at the end and none at the front";
  EXPECT_EQ(held.size(), 4u);
  EXPECT_TRUE(intact(held));

  // Releasing the first copy frees the front: the next one wraps there, skipping the 4000 bytes
  // at the end.
  pop();
  EXPECT_EQ(push(24000, 5), p1) << "the copy that did not fit at the end must go to the front";
  EXPECT_TRUE(intact(held));
  EXPECT_EQ(push(1, 6), nullptr) << "wrapped and full: the front caught up with the oldest copy";

  pop();  // [24000, 48000) is free now
  EXPECT_EQ(push(24000, 7), p2);
  pop();
  pop();  // only the two copies after the wrap are left; [48000, 96000) and the 4000 are free
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(push(48000, 8), p1 + 48000) << "the gap between the wrapped copies and the end";
  EXPECT_EQ(push(1, 9), nullptr);
  EXPECT_TRUE(intact(held));

  // Releasing the first copy after the wrap gives back the skipped end too: the ring is no
  // longer wrapped and 4000 bytes fit at the end again.
  pop();
  EXPECT_EQ(push(4000, 10), p1 + 96000) << "the end skipped by the wrap must be usable again";
  EXPECT_TRUE(intact(held));

  while (!held.empty()) {
    EXPECT_FALSE(r.empty());
    pop();
    EXPECT_TRUE(intact(held));
  }
  EXPECT_TRUE(r.empty()) << "pop accounting after a wrap left bytes in use";
  EXPECT_FALSE(r.allocated());
}

TEST(CopyRingTest, AFullRingRefusesACopyAndKeepsWhatItHolds) {
  CopyRing r(kCapacityForRoom);
  std::deque<Held> held;
  for (uint32_t i = 0; i < 1000; ++i) {
    std::vector<uint8_t> b = pattern(1518, i);
    const uint8_t* p = r.push(b.data(), b.size());
    if (p == nullptr) break;
    held.push_back({p, std::move(b)});
  }
  EXPECT_EQ(held.size(), kRoom / 1518) << "every copy that fits before the end must be taken";
  const std::vector<uint8_t> more = pattern(1518, 999);
  EXPECT_EQ(r.push(more.data(), more.size()), nullptr);
  EXPECT_EQ(r.push(more.data(), 1518 + 64), nullptr);
  EXPECT_TRUE(intact(held)) << "a refused push changed the ring";
  // One pop makes room for one more (at the front).
  r.pop(held.front().copy, held.front().bytes.size());
  const uint8_t* front = held.front().copy;
  held.pop_front();
  const uint8_t* p = r.push(more.data(), more.size());
  EXPECT_EQ(p, front);
  held.push_back({p, more});
  EXPECT_TRUE(intact(held));
  while (!held.empty()) {
    r.pop(held.front().copy, held.front().bytes.size());
    held.pop_front();
  }
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.allocated());
}

TEST(CopyRingTest, AnEmptiedRingFreesItsBufferAndCanBeUsedAgain) {
  CopyRing r(10'000);
  for (uint32_t round = 0; round < 3; ++round) {
    std::deque<Held> held;
    for (uint32_t i = 0; i < 5; ++i) {
      std::vector<uint8_t> b = pattern(700 + i, round * 10 + i);
      const uint8_t* p = r.push(b.data(), b.size());
      ASSERT_NE(p, nullptr) << "round " << round;
      held.push_back({p, std::move(b)});
    }
    EXPECT_TRUE(r.allocated());
    EXPECT_TRUE(intact(held)) << "round " << round;
    while (!held.empty()) {
      r.pop(held.front().copy, held.front().bytes.size());
      held.pop_front();
    }
    EXPECT_TRUE(r.empty()) << "round " << round;
    EXPECT_FALSE(r.allocated()) << "round " << round;
  }
}

TEST(CopyRingTest, TakesTheLargestFrameEvenWhenBuiltWithNoCapacity) {
  CopyRing r(0);
  const std::vector<uint8_t> big = pattern(kMaxWireSize, 4);
  const uint8_t* p = r.push(big.data(), big.size());
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), p));
  EXPECT_EQ(r.push(big.data(), 1), nullptr);
  r.pop(p, big.size());
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.allocated());
}

TEST(CopyRingTest, ACopyLargerThanTheRingIsRefusedWithoutKeepingABuffer) {
  CopyRing r(0);
  const std::vector<uint8_t> too_big = pattern(kMaxWireSize + 1, 5);
  EXPECT_EQ(r.push(too_big.data(), too_big.size()), nullptr);
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.allocated()) << "an empty ring holds a buffer after a refused push";
}

// The bytes held plus a new copy fit in the capacity the ring was built with: the push must
// succeed, however the ring is wrapped. Checked with random sizes and random interleavings.
TEST(CopyRingTest, RandomPushesAndPopsMatchADequeModel) {
  for (const size_t capacity : {size_t{0}, size_t{5'000}, size_t{100'000}, size_t{300'000}}) {
    CopyRing r(capacity);
    std::mt19937 rng(static_cast<uint32_t>(capacity) + 11);
    std::uniform_int_distribution<int> op(0, 99);
    std::uniform_int_distribution<size_t> small(1, 2000);
    std::uniform_int_distribution<size_t> large(1, kMaxWireSize);
    std::deque<Held> held;
    size_t held_bytes = 0;
    uint32_t seed = 0;
    uint64_t refused = 0;
    uint64_t emptied = 0;
    for (int step = 0; step < 20'000; ++step) {
      // Phases of mostly pushes and mostly pops, so the ring both runs full (and wraps) and
      // empties.
      const int push_percent = (step / 500) % 2 == 0 ? 75 : 25;
      const bool push = held.empty() || op(rng) < push_percent;
      if (push) {
        const size_t size = op(rng) < 90 ? small(rng) : large(rng);
        std::vector<uint8_t> b = pattern(size, ++seed);
        const uint8_t* p = r.push(b.data(), b.size());
        if (p == nullptr) {
          ++refused;
          ASSERT_GT(held_bytes + size, capacity)
              << "refused " << size << " bytes with " << held_bytes << " held of " << capacity
              << " (step " << step << ")";
          ASSERT_EQ(r.empty(), held.empty());
        } else {
          ASSERT_TRUE(std::equal(b.begin(), b.end(), p)) << "step " << step;
          held.push_back({p, std::move(b)});
          held_bytes += size;
        }
      } else {
        r.pop(held.front().copy, held.front().bytes.size());
        held_bytes -= held.front().bytes.size();
        held.pop_front();
      }
      ASSERT_EQ(r.empty(), held.empty()) << "step " << step;
      if (held.empty()) {
        ++emptied;
        ASSERT_FALSE(r.allocated()) << "step " << step;
      } else {
        ASSERT_TRUE(r.allocated()) << "step " << step;
      }
      // Checking every copy every step is quadratic; the newest and oldest always, all of
      // them every 64 steps.
      if (step % 64 == 0) {
        ASSERT_TRUE(intact(held)) << "step " << step;
      } else if (!held.empty()) {
        ASSERT_TRUE(
            std::equal(held.front().bytes.begin(), held.front().bytes.end(), held.front().copy))
            << "step " << step;
        ASSERT_TRUE(
            std::equal(held.back().bytes.begin(), held.back().bytes.end(), held.back().copy))
            << "step " << step;
      }
    }
    EXPECT_GT(refused, 0u) << "capacity " << capacity << ": the ring never filled";
    EXPECT_GT(emptied, 0u) << "capacity " << capacity << ": the ring never emptied";
    while (!held.empty()) {
      r.pop(held.front().copy, held.front().bytes.size());
      held.pop_front();
      ASSERT_TRUE(intact(held));
    }
    EXPECT_TRUE(r.empty());
    EXPECT_FALSE(r.allocated());
  }
}

}  // namespace
}  // namespace qswitch::sw
