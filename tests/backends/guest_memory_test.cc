// tests/backends/guest_memory_test.cc: the vhost-user memory table: validation (the module's only
// semantic checks of a table: count, empty, wrap, overlap), guest-physical and frontend-address
// translation (one region, adjacent regions, holes, 64-bit wrap), and map() over memfds with an
// mmap_offset that is not page aligned.
#include "backends/vhost_user/guest_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace qswitch::backends::vhost_user {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// over_buffers() with every region's first byte at `host` (for tables that are refused, or whose
// regions the test does not read).
MemoryError over_one_buffer(std::span<const MemoryRegion> regions, uint8_t* host,
                            GuestMemory& out) {
  const std::vector<uint8_t*> hosts(regions.size(), host);
  return GuestMemory::over_buffers(regions, hosts, out);
}

// Three regions: A and B adjacent in guest-physical space (0x0..0x2000), C after a hole.
struct ThreeRegions {
  std::vector<uint8_t> a = std::vector<uint8_t>(0x1000);
  std::vector<uint8_t> b = std::vector<uint8_t>(0x1000);
  std::vector<uint8_t> c = std::vector<uint8_t>(0x2000);
  GuestMemory mem;

  ThreeRegions() {
    const MemoryRegion regions[] = {
        {0x0, 0x1000, 0x7f0000000000, 0},
        {0x1000, 0x1000, 0x7f0000100000, 0},
        {0x100000, 0x2000, 0x7f0000200000, 0},
    };
    uint8_t* const hosts[] = {a.data(), b.data(), c.data()};
    EXPECT_EQ(GuestMemory::over_buffers(regions, hosts, mem), MemoryError::kNone);
  }
};

TEST(GuestMemoryTest, TranslatesARangeInsideOneRegion) {
  ThreeRegions t;
  EXPECT_EQ(t.mem.region_count(), 3u);
  EXPECT_EQ(t.mem.region(1), (MemoryRegion{0x1000, 0x1000, 0x7f0000100000, 0}));
  EXPECT_EQ(t.mem.host(1), t.b.data());
  EXPECT_EQ(t.mem.gpa_to_host(0x10, 0x20), t.a.data() + 0x10);
  EXPECT_EQ(t.mem.gpa_to_host(0x1000, 0x1000), t.b.data());
  EXPECT_EQ(t.mem.gpa_to_host(0x101fff, 1), t.c.data() + 0x1fff);
  EXPECT_EQ(t.mem.gpa_to_host(0x100000, 0), t.c.data());
}

TEST(GuestMemoryTest, RefusesARangeThatLeavesItsRegionOrStartsInAHole) {
  ThreeRegions t;
  EXPECT_EQ(t.mem.gpa_to_host(0xff0, 0x20), nullptr);        // A into B: two regions
  EXPECT_EQ(t.mem.gpa_to_host(0x1ff0, 0x20), nullptr);       // B into the hole
  EXPECT_EQ(t.mem.gpa_to_host(0x2000, 1), nullptr);          // in the hole
  EXPECT_EQ(t.mem.gpa_to_host(0x102000, 0), nullptr);        // one past C
  EXPECT_EQ(t.mem.gpa_to_host(0x100001, kU64Max), nullptr);  // a length that wraps
  EXPECT_EQ(t.mem.gpa_to_host(kU64Max, 2), nullptr);
}

TEST(GuestMemoryTest, PrefixSaysHowMuchIsContiguous) {
  ThreeRegions t;
  uint64_t n = 99;
  EXPECT_EQ(t.mem.gpa_to_host_prefix(0xff0, 0x100, &n), t.a.data() + 0xff0);
  EXPECT_EQ(n, 0x10u);
  EXPECT_EQ(t.mem.gpa_to_host_prefix(0x10, 0x100, &n), t.a.data() + 0x10);
  EXPECT_EQ(n, 0x100u);
  EXPECT_EQ(t.mem.gpa_to_host_prefix(0x3000, 1, &n), nullptr);
  EXPECT_EQ(n, 0u);
}

TEST(GuestMemoryTest, SplitsABufferAcrossAdjacentRegionsIntoPieces) {
  ThreeRegions t;
  iovec iov[4];
  uint32_t count = 0;
  ASSERT_EQ(t.mem.translate(0xf00, 0x200, iov, 4, &count), TranslateError::kNone);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(iov[0].iov_base, t.a.data() + 0xf00);
  EXPECT_EQ(iov[0].iov_len, 0x100u);
  EXPECT_EQ(iov[1].iov_base, t.b.data());
  EXPECT_EQ(iov[1].iov_len, 0x100u);
  // Exactly the two whole regions.
  ASSERT_EQ(t.mem.translate(0x0, 0x2000, iov, 4, &count), TranslateError::kNone);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(iov[0].iov_len, 0x1000u);
  EXPECT_EQ(iov[1].iov_len, 0x1000u);
  // Length 0: no piece.
  ASSERT_EQ(t.mem.translate(0x5000000, 0, iov, 4, &count), TranslateError::kNone);
  EXPECT_EQ(count, 0u);
}

TEST(GuestMemoryTest, RefusesABufferCrossingAHoleOrNeedingTooManyPieces) {
  ThreeRegions t;
  iovec iov[4];
  uint32_t count = 0;
  EXPECT_EQ(t.mem.translate(0x1f00, 0x200, iov, 4, &count), TranslateError::kOutsideMemory);
  EXPECT_EQ(t.mem.translate(0x3000, 1, iov, 4, &count), TranslateError::kOutsideMemory);
  EXPECT_EQ(t.mem.translate(0xf00, 0x200, iov, 1, &count), TranslateError::kTooManyPieces);
  EXPECT_EQ(t.mem.translate(0x10, kU64Max, iov, 4, &count), TranslateError::kOutsideMemory);
}

TEST(GuestMemoryTest, TranslatesFrontendAddressesForRingsInsideOneRegion) {
  ThreeRegions t;
  EXPECT_EQ(t.mem.ua_to_host(0x7f0000200100, 0x100), t.c.data() + 0x100);
  EXPECT_EQ(t.mem.ua_to_host(0x7f0000000ff0, 0x20), nullptr);  // past A's end
  EXPECT_EQ(t.mem.ua_to_host(0x1000, 1), nullptr);             // a guest-physical address
}

TEST(GuestMemoryTest, HoldsHostRangeOnlyInsideARegion) {
  ThreeRegions t;
  EXPECT_TRUE(t.mem.holds_host_range(t.a.data(), 0x1000));
  EXPECT_FALSE(t.mem.holds_host_range(t.a.data() + 1, 0x1000));
}

TEST(GuestMemoryTest, RefusesBadTablesAndLeavesTheOldOneInPlace) {
  std::vector<uint8_t> buf(0x1000);
  GuestMemory mem;
  const MemoryRegion good[] = {{0x0, 0x1000, 0x1000, 0}};
  ASSERT_EQ(over_one_buffer(good, buf.data(), mem), MemoryError::kNone);

  const MemoryRegion empty[] = {{0x0, 0, 0x1000, 0}};
  EXPECT_EQ(over_one_buffer(empty, buf.data(), mem), MemoryError::kEmptyRegion);
  const MemoryRegion wraps[] = {{kU64Max - 0x10, 0x1000, 0x1000, 0}};
  EXPECT_EQ(over_one_buffer(wraps, buf.data(), mem), MemoryError::kAddressWraps);
  const MemoryRegion ua_wraps[] = {{0, 0x1000, kU64Max, 0}};
  EXPECT_EQ(over_one_buffer(ua_wraps, buf.data(), mem), MemoryError::kAddressWraps);
  const MemoryRegion overlap[] = {{0x0, 0x1000, 0x1000, 0}, {0xfff, 0x10, 0x9000, 0}};
  EXPECT_EQ(over_one_buffer(overlap, buf.data(), mem), MemoryError::kOverlap);
  EXPECT_EQ(over_one_buffer(good, nullptr, mem), MemoryError::kNoHostAddress);
  uint8_t* const two_hosts[] = {buf.data(), buf.data()};
  EXPECT_EQ(GuestMemory::over_buffers(good, two_hosts, mem), MemoryError::kNoHostAddress);
  EXPECT_EQ(GuestMemory::over_buffers(good, {}, mem), MemoryError::kNoHostAddress);
  std::vector<MemoryRegion> nine;
  for (uint64_t i = 0; i < 9; ++i) nine.push_back({i * 0x1000, 0x10, i * 0x1000, 0});
  EXPECT_EQ(over_one_buffer(nine, buf.data(), mem), MemoryError::kTooManyRegions);
  // Ends at the very top of the address space: accepted.
  const MemoryRegion top[] = {{kU64Max - 0xfff, 0x1000, 0x1000, 0}};
  GuestMemory top_mem;
  EXPECT_EQ(over_one_buffer(top, buf.data(), top_mem), MemoryError::kNone);
  EXPECT_EQ(top_mem.gpa_to_host(kU64Max, 1), buf.data() + 0xfff);

  EXPECT_EQ(mem.region_count(), 1u);
  EXPECT_EQ(mem.gpa_to_host(0x10, 1), buf.data() + 0x10);
  EXPECT_STREQ(memory_error_text(MemoryError::kOverlap),
               "two memory regions overlap in guest-physical addresses");
}

// The cases the codec's validate_memory_regions() was tested with before the checks moved here.
TEST(GuestMemoryTest, AcceptsQemuLikeTablesAndTheEmptyTable) {
  std::vector<uint8_t> buf(0x10);
  const MemoryRegion qemu[] = {{0, 0xa0000, 0x7f0000000000, 0},
                               {0xc0000, 0x40000, 0x7f00000c0000, 0xc0000},
                               {0x100000000, 0x40000000, 0x7f0040000000, 0}};
  GuestMemory mem;
  EXPECT_EQ(over_one_buffer(qemu, buf.data(), mem), MemoryError::kNone);
  EXPECT_EQ(mem.region_count(), 3u);
  EXPECT_EQ(over_one_buffer({}, buf.data(), mem), MemoryError::kNone);
  EXPECT_EQ(mem.region_count(), 0u);
  EXPECT_EQ(mem.gpa_to_host(0, 0), nullptr);
}

TEST(GuestMemoryTest, RefusesAnEmptyRegionAfterAGoodOne) {
  std::vector<uint8_t> buf(0x10);
  const MemoryRegion r[] = {{0, 4096, 0x1000, 0}, {8192, 0, 0x3000, 0}};
  GuestMemory mem;
  EXPECT_EQ(over_one_buffer(r, buf.data(), mem), MemoryError::kEmptyRegion);
}

TEST(GuestMemoryTest, RefusesGuestAndUserspaceRangesWrappingPast2To64) {
  std::vector<uint8_t> buf(0x10);
  GuestMemory mem;
  const MemoryRegion gpa[] = {{0xfffffffffffff000, 0x2000, 0x1000, 0}};
  EXPECT_EQ(over_one_buffer(gpa, buf.data(), mem), MemoryError::kAddressWraps);
  const MemoryRegion user[] = {{0, 0x2000, 0xffffffffffffffff, 0}};
  EXPECT_EQ(over_one_buffer(user, buf.data(), mem), MemoryError::kAddressWraps);
  // A wrap in the second region, the first one fine.
  const MemoryRegion second[] = {{0, 0x1000, 0x1000, 0}, {0x2000, 0x2000, kU64Max - 0xfff, 0}};
  EXPECT_EQ(over_one_buffer(second, buf.data(), mem), MemoryError::kAddressWraps);
}

TEST(GuestMemoryTest, RefusesOverlapsFromBelowAndInsideButNotAdjacencyOrUserspaceAliases) {
  std::vector<uint8_t> buf(0x10);
  GuestMemory mem;
  const MemoryRegion below[] = {{0x1000, 0x1000, 0x10000, 0}, {0x0, 0x1001, 0x20000, 0}};
  EXPECT_EQ(over_one_buffer(below, buf.data(), mem), MemoryError::kOverlap);
  const MemoryRegion inside[] = {{0x0, 0x10000, 0x10000, 0}, {0x4000, 0x10, 0x30000, 0}};
  EXPECT_EQ(over_one_buffer(inside, buf.data(), mem), MemoryError::kOverlap);
  // Adjacent is fine; the same userspace range twice (an alias) is fine.
  const MemoryRegion adjacent[] = {{0x0, 0x1000, 0x10000, 0}, {0x1000, 0x1000, 0x10000, 0}};
  EXPECT_EQ(over_one_buffer(adjacent, buf.data(), mem), MemoryError::kNone);
}

TEST(GuestMemoryTest, MapsMemfdsWithAnUnalignedOffsetAndMovesTheMapping) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const int fd = ::memfd_create("qswitch-guest-memory-test", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<uint8_t> pattern(static_cast<size_t>(page) * 2);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_EQ(::write(fd, pattern.data(), pattern.size()), static_cast<ssize_t>(pattern.size()));

  const MemoryRegion regions[] = {{0x40000, 0x1000, 0x7f0000000000, 100}};
  const int fds[] = {fd};
  GuestMemory mem;
  int err = 0;
  ASSERT_EQ(GuestMemory::map(regions, fds, mem, &err), MemoryError::kNone) << err;
  ::close(fd);  // the mapping stays
  const uint8_t* p = mem.gpa_to_host(0x40000, 0x1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], pattern[100]);
  EXPECT_EQ(p[0xfff], pattern[100 + 0xfff]);
  EXPECT_EQ(mem.ua_to_host(0x7f0000000010, 1), p + 0x10);

  // Shared: a write through the mapping is what another mapping of the fd would see; moving
  // keeps the mapping, and the moved-from table translates nothing.
  GuestMemory moved = std::move(mem);
  EXPECT_EQ(mem.region_count(), 0u);  // NOLINT(bugprone-use-after-move): the documented state
  EXPECT_EQ(mem.gpa_to_host(0x40000, 1), nullptr);
  EXPECT_EQ(moved.gpa_to_host(0x40000, 1), p);
  EXPECT_EQ(p[1], pattern[101]);
}

TEST(GuestMemoryTest, MapRefusesAMissingFdAndABadFdWithoutMappingAnything) {
  const MemoryRegion regions[] = {{0x0, 0x1000, 0x1000, 0}, {0x1000, 0x1000, 0x2000, 0}};
  GuestMemory mem;
  int err = 0;
  const int one_fd[] = {-1};
  EXPECT_EQ(GuestMemory::map(regions, one_fd, mem, &err), MemoryError::kFdCountMismatch);
  const int bad_fds[] = {-1, -1};
  EXPECT_EQ(GuestMemory::map(regions, bad_fds, mem, &err), MemoryError::kMmapFailed);
  EXPECT_EQ(err, EBADF);
  EXPECT_EQ(mem.region_count(), 0u);
  const MemoryRegion huge[] = {{0x0, 0x1000, 0x1000, kU64Max - 0x10}};
  const int fd[] = {-1};
  EXPECT_EQ(GuestMemory::map(huge, fd, mem, &err), MemoryError::kMappingTooLarge);
  // mmap_offset + memory_size past 2^64 (the codec's old validate_memory_regions() case).
  const MemoryRegion off[] = {{0, 0x2000, 0x1000, 0xfffffffffffffff0}};
  EXPECT_EQ(GuestMemory::map(off, fd, mem, &err), MemoryError::kMappingTooLarge);
  // The semantic checks come first: an overlapping table is refused before any fd is looked at.
  const MemoryRegion overlap[] = {{0x0, 0x1000, 0x1000, 0}, {0x800, 0x1000, 0x2000, 0}};
  EXPECT_EQ(GuestMemory::map(overlap, one_fd, mem, &err), MemoryError::kOverlap);
  EXPECT_EQ(mem.region_count(), 0u);
}

}  // namespace
}  // namespace qswitch::backends::vhost_user
