// tests/backends/virtqueue_test.cc: the split virtqueue's device side against rings laid out
// the way a guest's driver lays them out (virtio 1.2 section 2.7), in a fake guest memory of
// three regions: A and B adjacent in guest-physical space, C (the rings) after a hole.
#include "backends/vhost_user/virtqueue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "backends/vhost_user/guest_memory.h"

namespace qswitch::backends::vhost_user {
namespace {

constexpr uint64_t kGpaA = 0x0;
constexpr uint64_t kGpaB = 0x10000;  // right after A
constexpr uint64_t kGpaC = 0x100000;
constexpr uint64_t kHole = 0x40000;  // in no region
constexpr uint64_t kUaA = 0x7f0000000000;
constexpr uint64_t kUaB = 0x7f0000400000;
constexpr uint64_t kUaC = 0x7f0000800000;

struct TestGuest {
  std::vector<uint8_t> a = std::vector<uint8_t>(0x10000);
  std::vector<uint8_t> b = std::vector<uint8_t>(0x10000);
  std::vector<uint8_t> c = std::vector<uint8_t>(0x20000);
  GuestMemory mem;

  TestGuest() {
    const MemoryRegion regions[] = {
        {kGpaA, a.size(), kUaA, 0},
        {kGpaB, b.size(), kUaB, 0},
        {kGpaC, c.size(), kUaC, 0},
    };
    uint8_t* const hosts[] = {a.data(), b.data(), c.data()};
    EXPECT_EQ(GuestMemory::over_buffers(regions, hosts, mem), MemoryError::kNone);
  }
  uint8_t* at(uint64_t gpa) { return mem.gpa_to_host(gpa, 1); }
};

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// What a guest's driver does to a split ring: descriptor table, available ring (flags, idx,
// ring, used_event) and used ring (flags, idx, ring, avail_event) in region C.
class Driver {
 public:
  Driver(TestGuest& g, uint32_t num, uint16_t start_idx = 0)
      : g_(g), num_(num), start_(start_idx), avail_idx_(start_idx) {
    desc_ = kGpaC;
    avail_ = desc_ + 16ull * num;
    used_ = (avail_ + 6 + 2ull * num + 3) & ~3ull;
    put16(g_.at(avail_ + 2), start_idx);
    put16(g_.at(used_ + 2), start_idx);  // as after a long run
  }

  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    write_desc(desc_ + 16ull * i, addr, len, flags, next);
  }
  // Entry i of an indirect table at `table`.
  void table_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next = 0) {
    write_desc(table + 16ull * i, addr, len, flags, next);
  }
  void offer(uint16_t head) {
    put16(g_.at(avail_ + 4 + 2ull * (avail_idx_ % num_)), head);
    set_avail_idx(static_cast<uint16_t>(avail_idx_ + 1));
  }
  void set_avail_idx(uint16_t v) {
    avail_idx_ = v;
    put16(g_.at(avail_ + 2), v);
  }
  void set_avail_flags(uint16_t v) { put16(g_.at(avail_), v); }
  void set_used_event(uint16_t v) { put16(g_.at(avail_ + 4 + 2ull * num_), v); }
  uint16_t used_flags() { return get16(g_.at(used_)); }
  uint16_t used_idx() { return get16(g_.at(used_ + 2)); }
  uint16_t avail_event() { return get16(g_.at(used_ + 4 + 8ull * num_)); }
  // The used element written for ring index `idx` (mod num): {id, len}.
  std::pair<uint32_t, uint32_t> used_elem(uint16_t idx) {
    const uint8_t* e = g_.at(used_ + 4 + 8ull * (idx % num_));
    return {get32(e), get32(e + 4)};
  }
  VringConfig config(bool event_idx = false) const {
    return VringConfig{num_, ua(desc_), ua(avail_), ua(used_), start_, event_idx};
  }
  static uint64_t ua(uint64_t gpa_in_c) { return kUaC + (gpa_in_c - kGpaC); }

 private:
  void write_desc(uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t* d = g_.at(at);
    put64(d, addr);
    put32(d + 8, len);
    put16(d + 12, flags);
    put16(d + 14, next);
  }

  TestGuest& g_;
  uint32_t num_;
  uint16_t start_;
  uint16_t avail_idx_;
  uint64_t desc_ = 0;
  uint64_t avail_ = 0;
  uint64_t used_ = 0;
};

constexpr uint16_t kN = kVirtqDescFNext;
constexpr uint16_t kW = kVirtqDescFWrite;
constexpr uint16_t kI = kVirtqDescFIndirect;

struct Fixture {
  TestGuest g;
  Driver d;
  Virtqueue q;
  iovec iov[16] = {};
  Chain chain;

  explicit Fixture(uint32_t num = 8, uint16_t start = 0, bool event_idx = false)
      : d(g, num, start) {
    chain.iov = iov;
    EXPECT_EQ(q.setup(g.mem, d.config(event_idx)), RingError::kNone);
  }
};

TEST(VirtqueueTest, PopsOneReadableDescriptorAndPushesItBack) {
  Fixture f;
  f.d.desc(3, kGpaA + 0x100, 64, 0);
  f.d.offer(3);
  EXPECT_EQ(f.q.available_count(), 1);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.head, 3);
  ASSERT_EQ(f.chain.readable_count, 1u);
  EXPECT_EQ(f.chain.writable_count, 0u);
  EXPECT_EQ(f.chain.iov[0].iov_base, f.g.a.data() + 0x100);
  EXPECT_EQ(f.chain.iov[0].iov_len, 64u);
  EXPECT_EQ(f.chain.readable_size, 64u);
  EXPECT_EQ(f.chain.descriptor_count, 1u);
  EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kEmpty);
  EXPECT_EQ(f.q.last_avail_idx(), 1);

  f.q.push_used(3, 0);
  EXPECT_EQ(f.d.used_idx(), 1);
  EXPECT_EQ(f.d.used_elem(0), std::make_pair(3u, 0u));
}

TEST(VirtqueueTest, UndoPopHandsTheSameChainOutAgain) {
  Fixture f(2);
  f.d.desc(0, kGpaA, 64, kW);
  f.d.desc(1, kGpaA + 64, 64, kW);
  f.d.offer(0);
  f.d.offer(1);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.head, 0);
  f.q.undo_pop();
  EXPECT_EQ(f.q.last_avail_idx(), 0);
  // Both chains can be in flight again: the undone one no longer counts.
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.head, 0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.head, 1);
  EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kEmpty);
  EXPECT_TRUE(f.q.ready());
}

TEST(VirtqueueTest, WalksAReadThenWriteChainInOrderFollowingNext) {
  Fixture f;
  f.d.desc(0, kGpaA + 0x10, 14, kN, 5);
  f.d.desc(5, kGpaA + 0x200, 100, kN, 2);
  f.d.desc(2, kGpaB + 0x40, 1500, kW);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  ASSERT_EQ(f.chain.readable_count, 2u);
  ASSERT_EQ(f.chain.writable_count, 1u);
  EXPECT_EQ(f.chain.readable()[0].iov_base, f.g.a.data() + 0x10);
  EXPECT_EQ(f.chain.readable()[0].iov_len, 14u);
  EXPECT_EQ(f.chain.readable()[1].iov_base, f.g.a.data() + 0x200);
  EXPECT_EQ(f.chain.writable()[0].iov_base, f.g.b.data() + 0x40);
  EXPECT_EQ(f.chain.writable()[0].iov_len, 1500u);
  EXPECT_EQ(f.chain.readable_size, 114u);
  EXPECT_EQ(f.chain.writable_size, 1500u);
  EXPECT_EQ(f.chain.descriptor_count, 3u);
}

TEST(VirtqueueTest, WrapsAroundThe16BitIndices) {
  Fixture f(4, 65533);
  EXPECT_EQ(f.q.used_idx(), 65533);
  uint16_t expect_used = 65533;
  for (int round = 0; round < 3; ++round) {
    // Three chains per round: indices cross 65535 -> 0 in the first round.
    for (uint16_t h = 0; h < 3; ++h) {
      f.d.desc(h, kGpaA + 0x1000 * h, 10 + h, kW);
      f.d.offer(h);
    }
    EXPECT_EQ(f.q.available_count(), 3);
    for (uint16_t h = 0; h < 3; ++h) {
      ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain) << round;
      EXPECT_EQ(f.chain.head, h);
      EXPECT_EQ(f.chain.writable_size, 10u + h);
      f.q.fill(h, f.chain.head, 100 + h);
    }
    EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kEmpty);
    f.q.flush(3);
    for (uint16_t h = 0; h < 3; ++h) {
      EXPECT_EQ(f.d.used_elem(static_cast<uint16_t>(expect_used + h)),
                std::make_pair(uint32_t{h}, 100u + h));
    }
    expect_used = static_cast<uint16_t>(expect_used + 3);
    EXPECT_EQ(f.d.used_idx(), expect_used);
  }
  EXPECT_EQ(f.q.last_avail_idx(), static_cast<uint16_t>(65533 + 9));
}

TEST(VirtqueueTest, FollowsAnIndirectTableWithReadableThenWritableEntries) {
  Fixture f;
  const uint64_t table = kGpaA + 0x3008;  // need not be aligned
  f.d.table_desc(table, 0, kGpaA + 0x100, 12, kN, 2);
  f.d.table_desc(table, 2, kGpaA + 0x200, 50, kN, 1);
  f.d.table_desc(table, 1, kGpaB + 0x300, 2000, kW);
  f.d.desc(4, table, 3 * 16, kI | kW);  // WRITE on the pointer is ignored
  f.d.offer(4);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.head, 4);
  ASSERT_EQ(f.chain.readable_count, 2u);
  ASSERT_EQ(f.chain.writable_count, 1u);
  EXPECT_EQ(f.chain.iov[0].iov_base, f.g.a.data() + 0x100);
  EXPECT_EQ(f.chain.iov[1].iov_base, f.g.a.data() + 0x200);
  EXPECT_EQ(f.chain.iov[2].iov_base, f.g.b.data() + 0x300);
  EXPECT_EQ(f.chain.readable_size, 62u);
  EXPECT_EQ(f.chain.writable_size, 2000u);
  EXPECT_EQ(f.chain.descriptor_count, 3u);
}

TEST(VirtqueueTest, AcceptsDirectDescriptorsFollowedByAnIndirectTable) {
  // virtio 1.2 2.7.5.3.2: zero or more chained descriptors, then one indirect.
  Fixture f;
  const uint64_t table = kGpaA + 0x4000;
  f.d.table_desc(table, 0, kGpaB, 300, kW);
  f.d.desc(0, kGpaA + 0x10, 20, kN, 1);
  f.d.desc(1, table, 16, kI);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.readable_size, 20u);
  EXPECT_EQ(f.chain.writable_size, 300u);
  EXPECT_EQ(f.chain.descriptor_count, 2u);
}

TEST(VirtqueueTest, ZeroLengthDescriptorsYieldNoPiece) {
  Fixture f;
  f.d.desc(0, kHole, 0, kN, 1);  // address never looked at
  f.d.desc(1, kGpaA, 8, kN, 2);
  f.d.desc(2, kGpaA, 0, kW);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.readable_count, 1u);
  EXPECT_EQ(f.chain.writable_count, 0u);
  EXPECT_EQ(f.chain.readable_size, 8u);
  EXPECT_EQ(f.chain.descriptor_count, 3u);
}

TEST(VirtqueueTest, SplitsABufferCrossingIntoTheAdjacentRegion) {
  Fixture f;
  f.d.desc(0, kGpaB - 0x10, 0x30, kW);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  ASSERT_EQ(f.chain.writable_count, 2u);
  EXPECT_EQ(f.chain.iov[0].iov_base, f.g.a.data() + 0xfff0);
  EXPECT_EQ(f.chain.iov[0].iov_len, 0x10u);
  EXPECT_EQ(f.chain.iov[1].iov_base, f.g.b.data());
  EXPECT_EQ(f.chain.iov[1].iov_len, 0x20u);
  EXPECT_EQ(f.chain.writable_size, 0x30u);
}

// One broken chain per case: the pop fails with the named error, and the queue stays failed.
struct BadChain {
  const char* what;
  std::function<void(Driver&)> lay_out;
  RingError want;
  size_t iov_capacity = 16;
};

TEST(VirtqueueTest, RefusesEachKindOfBrokenChainForGood) {
  constexpr uint64_t t = kGpaA + 0x5000;  // an indirect table
  const std::vector<BadChain> cases = {
      {"head past the table", [](Driver& d) { d.offer(8); }, RingError::kHeadOutOfRange},
      {"next past the table",
       [](Driver& d) {
         d.desc(0, kGpaA, 4, kN, 8);
         d.offer(0);
       },
       RingError::kNextOutOfRange},
      {"self loop",
       [](Driver& d) {
         d.desc(0, kGpaA, 4, kN, 0);
         d.offer(0);
       },
       RingError::kChainTooLong},
      {"two-descriptor loop",
       [](Driver& d) {
         d.desc(0, kGpaA, 4, kN, 1);
         d.desc(1, kGpaA, 4, kN, 0);
         d.offer(0);
       },
       RingError::kChainTooLong},
      {"loop of zero-length descriptors",
       [](Driver& d) {
         d.desc(0, kGpaA, 0, kN, 1);
         d.desc(1, kGpaA, 0, kN, 0);
         d.offer(0);
       },
       RingError::kChainTooLong},
      {"loop inside an indirect table",
       [](Driver& d) {
         d.table_desc(t, 0, kGpaA, 4, kN, 1);
         d.table_desc(t, 1, kGpaA, 4, kN, 0);
         d.desc(0, t, 32, kI);
         d.offer(0);
       },
       RingError::kChainTooLong},
      {"next past an indirect table",
       [](Driver& d) {
         d.table_desc(t, 0, kGpaA, 4, kN, 2);
         d.desc(0, t, 32, kI);
         d.offer(0);
       },
       RingError::kNextOutOfRange},
      {"buffer in a hole",
       [](Driver& d) {
         d.desc(0, kHole, 4, 0);
         d.offer(0);
       },
       RingError::kBufferOutsideMemory},
      {"buffer from B into the hole",
       [](Driver& d) {
         d.desc(0, kGpaB + 0xfff0, 0x20, kW);
         d.offer(0);
       },
       RingError::kBufferOutsideMemory},
      {"buffer wrapping around 2^64",
       [](Driver& d) {
         d.desc(0, ~0ull - 3, 8, 0);
         d.offer(0);
       },
       RingError::kBufferOutsideMemory},
      {"readable after writable",
       [](Driver& d) {
         d.desc(0, kGpaA, 4, kN | kW, 1);
         d.desc(1, kGpaA, 4, 0);
         d.offer(0);
       },
       RingError::kReadableAfterWritable},
      {"readable after writable in an indirect table",
       [](Driver& d) {
         d.table_desc(t, 0, kGpaA, 4, kN | kW, 1);
         d.table_desc(t, 1, kGpaA, 4, 0);
         d.desc(0, t, 32, kI);
         d.offer(0);
       },
       RingError::kReadableAfterWritable},
      {"writable bytes past 2^32 - 1",
       [](Driver& d) {
         d.desc(0, kGpaA, 16, kN | kW, 1);
         d.desc(1, kGpaA, 0xfffffff0, kW);
         d.offer(0);
       },
       RingError::kLengthOverflow},
      {"more pieces than the iovec array holds",
       [](Driver& d) {
         for (uint16_t i = 0; i < 4; ++i) d.desc(i, kGpaB - 8, 16, kN, i + 1);  // 2 pieces each
         d.desc(4, kGpaA, 4, 0);
         d.offer(0);
       },
       RingError::kTooManyPieces, 4},
      {"indirect with NEXT",
       [](Driver& d) {
         d.table_desc(t, 0, kGpaA, 4, 0);
         d.desc(0, t, 16, kI | kN, 1);
         d.desc(1, kGpaA, 4, 0);
         d.offer(0);
       },
       RingError::kIndirectWithNext},
      {"indirect table of length 0",
       [](Driver& d) {
         d.desc(0, t, 0, kI);
         d.offer(0);
       },
       RingError::kIndirectBadLength},
      {"indirect table length not a multiple of 16",
       [](Driver& d) {
         d.desc(0, t, 24, kI);
         d.offer(0);
       },
       RingError::kIndirectBadLength},
      {"indirect table longer than the queue",
       [](Driver& d) {
         d.desc(0, t, 9 * 16, kI);
         d.offer(0);
       },
       RingError::kIndirectTooLarge},
      {"indirect table across two regions",
       [](Driver& d) {
         d.desc(0, kGpaB - 16, 32, kI);
         d.offer(0);
       },
       RingError::kIndirectOutsideMemory},
      {"nested indirect",
       [](Driver& d) {
         d.table_desc(t, 0, t + 0x100, 16, kI);
         d.desc(0, t, 16, kI);
         d.offer(0);
       },
       RingError::kNestedIndirect},
      {"avail idx more than num ahead", [](Driver& d) { d.set_avail_idx(9); },
       RingError::kAvailIdxTooFar},
      {"avail idx moved backwards", [](Driver& d) { d.set_avail_idx(0xffff); },
       RingError::kAvailIdxTooFar},
  };
  for (const BadChain& c : cases) {
    Fixture f(8);
    f.chain.iov = std::span<iovec>(f.iov, c.iov_capacity);
    c.lay_out(f.d);
    EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kError) << c.what;
    EXPECT_EQ(f.q.error(), c.want) << c.what << ": " << ring_error_text(f.q.error());
    EXPECT_FALSE(f.q.ready()) << c.what;
    // Final: a good chain afterwards is not looked at, and nothing is published.
    f.d.desc(7, kGpaA, 4, 0);
    f.d.offer(7);
    EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kError) << c.what;
    f.q.push_used(7, 4);
    EXPECT_EQ(f.d.used_idx(), 0) << c.what;
    EXPECT_EQ(f.q.available_count(), 0) << c.what;
  }
}

TEST(VirtqueueTest, AcceptsAvailIdxExactlyNumAhead) {
  Fixture f(4);
  for (uint16_t i = 0; i < 4; ++i) {
    f.d.desc(i, kGpaA, 4, 0);
    f.d.offer(i);
  }
  EXPECT_EQ(f.q.available_count(), 4);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kEmpty);
}

TEST(VirtqueueTest, RefusesMoreThanNumChainsInFlight) {
  // Four chains held by the device; a fifth head can only be one made available twice.
  Fixture f(4);
  for (uint16_t i = 0; i < 4; ++i) {
    f.d.desc(i, kGpaA, 4, 0);
    f.d.offer(i);
  }
  for (int i = 0; i < 4; ++i) ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  f.q.push_used(0, 0);  // one back: one more may come
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  f.d.offer(1);
  EXPECT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kError);
  EXPECT_EQ(f.q.error(), RingError::kTooManyInFlight);
}

TEST(VirtqueueTest, AcceptsAChainOfExactlyNumDescriptors) {
  Fixture f(8);
  for (uint16_t i = 0; i < 8; ++i) f.d.desc(i, kGpaA + i, 1, i < 7 ? kN : 0, i + 1);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.chain.descriptor_count, 8u);
  EXPECT_EQ(f.chain.readable_count, 8u);
}

TEST(VirtqueueTest, SetupRefusesBadSizesMisalignedAndOutOfMemoryRings) {
  TestGuest g;
  Driver d(g, 8);
  Virtqueue q;
  Chain chain;
  EXPECT_EQ(q.pop(chain), Virtqueue::Pop::kError);  // not set up
  EXPECT_EQ(q.error(), RingError::kNotSetUp);
  VringConfig c = d.config();
  for (uint32_t num : {0u, 3u, 12u, 65536u}) {
    c = d.config();
    c.num = num;
    EXPECT_EQ(q.setup(g.mem, c), RingError::kBadQueueSize) << num;
  }
  c = d.config();
  c.desc_addr += 8;
  EXPECT_EQ(q.setup(g.mem, c), RingError::kMisalignedRing);
  c = d.config();
  c.avail_addr += 1;
  EXPECT_EQ(q.setup(g.mem, c), RingError::kMisalignedRing);
  c = d.config();
  c.used_addr += 2;
  EXPECT_EQ(q.setup(g.mem, c), RingError::kMisalignedRing);
  c = d.config();
  c.used_addr = kUaC + g.c.size() - 8;  // the used ring runs past C
  EXPECT_EQ(q.setup(g.mem, c), RingError::kRingOutsideMemory);
  c = d.config();
  c.desc_addr = kGpaC;  // a guest-physical address is not the frontend's
  EXPECT_EQ(q.setup(g.mem, c), RingError::kRingOutsideMemory);
  EXPECT_FALSE(q.ready());
  EXPECT_EQ(q.setup(g.mem, d.config()), RingError::kNone);
  EXPECT_TRUE(q.ready());
  EXPECT_EQ(q.num(), 8u);
}

TEST(VirtqueueTest, SetupRefusesARingMisalignedInHostMemory) {
  // mmap_offset 2 keeps the frontend's address aligned but not ours.
  std::vector<uint8_t> buf(0x10000 + 16);
  uint8_t* base = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) % 16) % 16;
  GuestMemory mem;
  const MemoryRegion regions[] = {{0x0, 0x8000, 0x10000, 2}};
  uint8_t* const hosts[] = {base + 2};
  ASSERT_EQ(GuestMemory::over_buffers(regions, hosts, mem), MemoryError::kNone);
  Virtqueue q;
  EXPECT_EQ(q.setup(mem, VringConfig{8, 0x10000, 0x10100, 0x10200, 0, false}),
            RingError::kMisalignedRing);
}

TEST(VirtqueueTest, UsedEntriesAppearOnlyWhenFlushed) {
  Fixture f;
  for (uint16_t i = 0; i < 3; ++i) {
    f.d.desc(i, kGpaA, 4, kW);
    f.d.offer(i);
  }
  for (int i = 0; i < 3; ++i) ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  f.q.fill(0, 2, 40);
  f.q.fill(1, 0, 41);
  EXPECT_EQ(f.d.used_idx(), 0);
  EXPECT_EQ(f.d.used_elem(0), std::make_pair(2u, 40u));  // written, not yet published
  f.q.flush(2);
  EXPECT_EQ(f.d.used_idx(), 2);
  EXPECT_EQ(f.d.used_elem(1), std::make_pair(0u, 41u));
  f.q.push_used(1, 42);
  EXPECT_EQ(f.d.used_idx(), 3);
  EXPECT_EQ(f.d.used_elem(2), std::make_pair(1u, 42u));
}

TEST(VirtqueueTest, NeedEventMatchesTheSpecFormula) {
  struct Case {
    uint16_t event, new_idx, old_idx;
    bool want;
  };
  const Case cases[] = {
      {0, 1, 0, true},   // the driver asked at 0; we went 0 -> 1
      {1, 1, 0, false},  // asked at 1: only once idx passes 1
      {1, 2, 0, true},
      {5, 3, 1, false},           // not reached yet
      {5, 6, 5, true},            // just past
      {5, 7, 6, false},           // already passed before this batch
      {0xffff, 0, 0xfffe, true},  // crossing 65535 -> 0
      {0xffff, 0xffff, 0xfffe, false},
      {2, 2, 2, false},           // nothing new
      {0xfffe, 3, 0xfff0, true},  // a batch over the wrap containing the event
  };
  for (const Case& c : cases) {
    EXPECT_EQ(vring_need_event(c.event, c.new_idx, c.old_idx), c.want)
        << c.event << " " << c.new_idx << " " << c.old_idx;
  }
}

TEST(VirtqueueTest, InterruptsFollowUsedEventWithEventIdx) {
  Fixture f(8, 0, true);
  for (uint16_t i = 0; i < 8; ++i) {
    f.d.desc(i, kGpaA, 4, kW);
    f.d.offer(i);
  }
  for (int i = 0; i < 8; ++i) ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  f.d.set_used_event(3);  // "interrupt me once entry 3 is used"
  f.q.push_used(0, 4);
  EXPECT_TRUE(f.q.need_notify());  // the first is always signalled
  f.q.push_used(1, 4);
  EXPECT_FALSE(f.q.need_notify());  // idx 2: not past 3
  f.q.push_used(2, 4);
  f.q.push_used(3, 4);
  EXPECT_TRUE(f.q.need_notify());  // idx 2 -> 4 passed 3
  f.q.push_used(4, 4);
  EXPECT_FALSE(f.q.need_notify());  // 3 was passed before
  f.d.set_used_event(4);
  f.q.push_used(5, 4);
  EXPECT_FALSE(f.q.need_notify());  // 5 -> 6: 4 was passed before this batch
  f.d.set_used_event(6);
  f.q.push_used(6, 4);
  f.q.push_used(7, 4);
  EXPECT_TRUE(f.q.need_notify());  // 6 -> 8 passes 6
}

TEST(VirtqueueTest, InterruptsFollowNoInterruptFlagWithoutEventIdx) {
  Fixture f;
  f.d.desc(0, kGpaA, 4, kW);
  f.d.offer(0);
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  f.q.push_used(0, 4);
  EXPECT_TRUE(f.q.need_notify());
  f.d.set_avail_flags(kVirtqAvailFNoInterrupt);
  EXPECT_FALSE(f.q.need_notify());
}

TEST(VirtqueueTest, KicksAreSuppressedByUsedFlagsWithoutEventIdx) {
  Fixture f;
  f.q.disable_notification();
  EXPECT_EQ(f.d.used_flags(), kVirtqUsedFNoNotify);
  EXPECT_FALSE(f.q.enable_notification());  // nothing arrived
  EXPECT_EQ(f.d.used_flags(), 0);
  // A buffer that arrives while kicks are off: enable says so (the lost-wakeup re-check).
  f.q.disable_notification();
  f.d.desc(0, kGpaA, 4, 0);
  f.d.offer(0);
  EXPECT_TRUE(f.q.enable_notification());
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_FALSE(f.q.enable_notification());
}

TEST(VirtqueueTest, AvailEventTracksWhatWasPoppedWithEventIdx) {
  Fixture f(8, 100, true);
  for (uint16_t i = 0; i < 3; ++i) {
    f.d.desc(i, kGpaA, 4, 0);
    f.d.offer(i);
  }
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.d.avail_event(), 101);  // no kick for entries we have not reached
  f.q.disable_notification();
  ASSERT_EQ(f.q.pop(f.chain), Virtqueue::Pop::kChain);
  EXPECT_EQ(f.d.avail_event(), 101);  // disabled: not advanced
  // Enabling asks for a kick at the next new entry (103, the avail idx last read), even with
  // one entry still unpopped; nothing new arrived since.
  EXPECT_FALSE(f.q.enable_notification());
  EXPECT_EQ(f.d.avail_event(), 103);
  f.d.desc(3, kGpaA, 4, 0);
  f.d.offer(3);
  EXPECT_TRUE(f.q.enable_notification());
}

// Receive buffers for the mergeable tests: chain first + k is one descriptor of `sizes[k]`
// writable bytes at B + 0x1000 * (first + k).
void offer_rx_buffers(Driver& d, uint16_t first, const std::vector<uint32_t>& sizes) {
  for (uint16_t k = 0; k < sizes.size(); ++k) {
    const uint16_t h = first + k;
    const uint64_t at = kGpaB + 0x1000ull * h;
    d.desc(h, at, sizes[k], kW);
    d.offer(h);
  }
}

std::vector<uint8_t> frame_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + 1);
  return v;
}

TEST(VirtqueueTest, MergeableRxSpreadsAFrameOverExactlyEnoughBuffers) {
  Fixture f;
  offer_rx_buffers(f.d, 0, {100, 100, 100});
  const std::vector<uint8_t> frame = frame_bytes(288);  // 12 + 288 = 300
  const ConstPiece pieces[] = {
      {frame.data(), 200}, {frame.data() + 200, 0}, {frame.data() + 200, 88}};
  uint8_t hdr[kNetHdrMrgSize] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xee};
  const Virtqueue::RxPut r = f.q.put_rx_mergeable(hdr, pieces, 0, f.chain);
  ASSERT_EQ(r.status, Virtqueue::RxStatus::kDone);
  EXPECT_EQ(r.buffers, 3);
  f.q.flush(r.buffers);
  EXPECT_EQ(f.d.used_idx(), 3);
  for (uint16_t h = 0; h < 3; ++h) EXPECT_EQ(f.d.used_elem(h), std::make_pair(uint32_t{h}, 100u));
  const uint8_t* b = f.g.b.data();
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(get16(b + kNetHdrNumBuffersOffset), 3);
  // The frame follows the header and continues in the next buffers.
  std::vector<uint8_t> got(b + 12, b + 100);
  got.insert(got.end(), b + 0x1000, b + 0x1000 + 100);
  got.insert(got.end(), b + 0x2000, b + 0x2000 + 100);
  EXPECT_EQ(got, frame);
}

TEST(VirtqueueTest, MergeableRxConsumesNothingWhenBuffersAreShort) {
  Fixture f;
  offer_rx_buffers(f.d, 0, {100, 100});
  const std::vector<uint8_t> frame = frame_bytes(250);
  const ConstPiece pieces[] = {{frame.data(), 250}};
  const uint8_t hdr[kNetHdrMrgSize] = {};
  Virtqueue::RxPut r = f.q.put_rx_mergeable(hdr, pieces, 0, f.chain);
  EXPECT_EQ(r.status, Virtqueue::RxStatus::kNoRoom);
  EXPECT_EQ(f.q.last_avail_idx(), 0);
  EXPECT_EQ(f.q.available_count(), 2);
  EXPECT_EQ(f.d.used_idx(), 0);
  // One more buffer: now it fits, in the same buffers.
  offer_rx_buffers(f.d, 2, {100});
  r = f.q.put_rx_mergeable(hdr, pieces, 0, f.chain);
  ASSERT_EQ(r.status, Virtqueue::RxStatus::kDone);
  EXPECT_EQ(r.buffers, 3);
  f.q.flush(r.buffers);
  EXPECT_EQ(f.d.used_elem(2), std::make_pair(2u, 62u));  // 262 = 100 + 100 + 62
  EXPECT_EQ(f.q.last_avail_idx(), 3);
}

TEST(VirtqueueTest, MergeableRxBatchesFramesBeforeOneFlush) {
  Fixture f;
  offer_rx_buffers(f.d, 0, {64, 64, 64});
  const std::vector<uint8_t> frame = frame_bytes(52);  // 12 + 52: one buffer each
  const ConstPiece pieces[] = {{frame.data(), 52}};
  const uint8_t hdr[kNetHdrMrgSize] = {};
  uint32_t filled = 0;
  for (int i = 0; i < 3; ++i) {
    const Virtqueue::RxPut r = f.q.put_rx_mergeable(hdr, pieces, filled, f.chain);
    ASSERT_EQ(r.status, Virtqueue::RxStatus::kDone);
    EXPECT_EQ(r.buffers, 1);
    filled += r.buffers;
  }
  EXPECT_EQ(f.q.put_rx_mergeable(hdr, pieces, filled, f.chain).status,
            Virtqueue::RxStatus::kNoRoom);
  f.q.flush(filled);
  EXPECT_EQ(f.d.used_idx(), 3);
  for (uint16_t h = 0; h < 3; ++h) EXPECT_EQ(f.d.used_elem(h), std::make_pair(uint32_t{h}, 64u));
}

TEST(VirtqueueTest, MergeableRxWritesNumBuffersWhereverTheHeaderLands) {
  // The first chain's header is split over two descriptors: 11 bytes, then the rest.
  Fixture f;
  f.d.desc(0, kGpaB, 11, kW | kN, 1);
  f.d.desc(1, kGpaB + 0x100, 30, kW);
  f.d.offer(0);
  offer_rx_buffers(f.d, 2, {40});
  const std::vector<uint8_t> frame = frame_bytes(50);  // 62 bytes: 41 + 21
  const ConstPiece pieces[] = {{frame.data(), 50}};
  const uint8_t hdr[kNetHdrMrgSize] = {};
  const Virtqueue::RxPut r = f.q.put_rx_mergeable(hdr, pieces, 0, f.chain);
  ASSERT_EQ(r.status, Virtqueue::RxStatus::kDone);
  ASSERT_EQ(r.buffers, 2);
  const uint8_t* b = f.g.b.data();
  EXPECT_EQ(b[10], 2);     // num_buffers low byte: the first descriptor's last byte
  EXPECT_EQ(b[0x100], 0);  // high byte: the second descriptor's first
  EXPECT_EQ(b[0x101], frame[0]);
  f.q.flush(2);
  EXPECT_EQ(f.d.used_elem(0), std::make_pair(0u, 41u));
  EXPECT_EQ(f.d.used_elem(1), std::make_pair(2u, 21u));
}

TEST(VirtqueueTest, MergeableRxBufferSmallerThanTheHeaderIsARingError) {
  Fixture f;
  offer_rx_buffers(f.d, 0, {8});
  const uint8_t hdr[kNetHdrMrgSize] = {};
  const Virtqueue::RxPut r = f.q.put_rx_mergeable(hdr, {}, 0, f.chain);
  EXPECT_EQ(r.status, Virtqueue::RxStatus::kError);
  EXPECT_EQ(f.q.error(), RingError::kRxBufferTooSmall);
}

}  // namespace
}  // namespace qswitch::backends::vhost_user
