// backends/vhost_user/guest_memory.h: a vhost-user guest's memory table (VHOST_USER_SET_MEM_TABLE)
// and the translation of the addresses a guest's rings carry into pointers in qswitch.
//
// Theory of operation
// - The frontend (QEMU) describes guest RAM as up to kMaxMemoryRegions regions, each a
//   vhost_user::MemoryRegion as the codec decodes it (vhost_user_msg.h): its guest-physical
//   address, its size, the address QEMU itself sees it at (userspace_addr, which
//   VHOST_USER_SET_VRING_ADDR uses for the rings) and an fd plus mmap_offset (QEMU's
//   docs/interop/vhost-user.rst, "Memory regions description"). A GuestMemory holds that table
//   and, per region, `host`: where the region's first byte is in this process.
// - Two ways to build one: over_buffers() takes the regions and, separately, one host address
//   per region that the caller already has (the tests and the fuzz targets use plain buffers;
//   nothing is unmapped), map() mmaps each region's fd MAP_SHARED. mmap_offset need not be page
//   aligned, so map() maps from file offset 0 for mmap_offset + memory_size bytes and adds
//   mmap_offset to the mapping's address (as QEMU's libvhost-user does). The GuestMemory owns
//   those mappings (munmap in the destructor); move-only. The fds stay the caller's: a mapping
//   outlives the fd it came from. map() does not compare a region with its fd's size (a region
//   past the end of its file faults, SIGBUS, when touched): whoever calls it checks that first.
//   A front-end that shrinks the file later would make the same fault: every mapping is
//   registered with the SIGBUS guard (sigbus_guard.h), which turns that fault into zeros and
//   faulted() true, for the port to close.
// - The one place the memory table's meaning is checked: the codec (vhost_user_msg.h) checks
//   only the message's shape (the region count against the payload size, one fd per region);
//   both ways in here check, before anything else: at most kMaxMemoryRegions, no empty region,
//   no range that wraps around 2^64 (guest-physical or userspace address), no two regions that
//   overlap in guest-physical space (userspace ranges may: QEMU may alias one block). A refused
//   table leaves `out` as it was, and the MemoryError says why.
// - Everything a guest hands over is untrusted. Every translation is overflow safe (a range is
//   tested as offset < size and length <= size - offset, never as addr + len) and answers
//   nullptr (or an error) rather than a pointer outside a region:
//     gpa_to_host(gpa, len)   the whole range inside ONE region (indirect descriptor tables, which
//                             the ring walker reads in place);
//     translate(gpa, len, ..) a buffer as iovec pieces, one per region it crosses: a buffer may
//                             span regions that are adjacent in guest-physical space (their host
//                             mappings are not adjacent, hence one piece each); a hole is an error;
//     ua_to_host(ua, len)     a ring, by QEMU's address: the whole ring inside one region.
// - A region lookup is a linear scan of at most 8 entries; nothing here allocates, and nothing but
//   map() and the destructor makes a system call. Nothing is counted here: the port counts
//   what a refused table or address costs (ring_errors).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "backends/vhost_user/vhost_user_msg.h"  // MemoryRegion, kMaxMemoryRegions

namespace qswitch::backends::vhost_user {

enum class MemoryError : uint8_t {
  kNone,
  kTooManyRegions,
  kEmptyRegion,
  kAddressWraps,     // guest_phys_addr + memory_size or userspace_addr + memory_size beyond 2^64
  kOverlap,          // two regions share guest-physical addresses
  kNoHostAddress,    // over_buffers(): not one non-null host address per region
  kFdCountMismatch,  // map(): not one fd per region
  kMappingTooLarge,  // map(): mmap_offset + memory_size does not fit
  kMmapFailed,       // map(): mmap() refused (errno in *mmap_errno)
  kTooManyMappings,  // map(): every slot of the SIGBUS guard is taken (sigbus_guard.h)
};
const char* memory_error_text(MemoryError e);

// translate()'s outcome.
enum class TranslateError : uint8_t {
  kNone,
  kOutsideMemory,  // some byte of the range is in no region
  kTooManyPieces,  // the range crosses more regions than `max` pieces
};

class GuestMemory {
 public:
  GuestMemory() = default;  // no regions: nothing translates
  ~GuestMemory() { unmap(); }
  GuestMemory(GuestMemory&& other) noexcept { take(other); }
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // A table over memory the caller owns and keeps alive: hosts[i] is where regions[i]'s first
  // byte is (mmap_offset is not used). Nothing is unmapped when `out` goes away.
  static MemoryError over_buffers(std::span<const MemoryRegion> regions,
                                  std::span<uint8_t* const> hosts, GuestMemory& out);
  // mmaps fds[i] (MAP_SHARED, read/write) for regions[i]. On failure nothing stays mapped, `out`
  // is untouched and, for kMmapFailed, *mmap_errno holds mmap's errno.
  static MemoryError map(std::span<const MemoryRegion> regions, std::span<const int> fds,
                         GuestMemory& out, int* mmap_errno);

  uint32_t region_count() const { return count_; }
  // Region i (< region_count()) as the frontend described it, and where its first byte is here.
  const MemoryRegion& region(uint32_t i) const { return slots_[i].region; }
  uint8_t* host(uint32_t i) const { return slots_[i].host; }

  // The host address of [gpa, gpa + len) when it lies inside one region (len 0: gpa inside a
  // region), else nullptr.
  uint8_t* gpa_to_host(uint64_t gpa, uint64_t len) const;
  // The host address of gpa and, in *contiguous, how many of the `len` bytes from there lie in
  // the same region (1..len, or 0 when len is 0); nullptr when gpa is in no region.
  uint8_t* gpa_to_host_prefix(uint64_t gpa, uint64_t len, uint64_t* contiguous) const;
  // [gpa, gpa + len) as host pieces out[0..*count), in order, one per region crossed (len 0:
  // no piece). Refuses a range with any byte outside memory, or needing more than `max` pieces;
  // out[] and *count are then unspecified.
  TranslateError translate(uint64_t gpa, uint64_t len, iovec* out, uint32_t max,
                           uint32_t* count) const;
  // The host address of the frontend's [ua, ua + len) when it lies inside one region.
  uint8_t* ua_to_host(uint64_t ua, uint64_t len) const;
  // Whether an access touched a page the front-end removed from under a mapping (it shrank the
  // file; sigbus_guard.h): the access read zeros, and the memory is not to be trusted any more.
  bool faulted() const;
  // Whether host bytes [p, p + len) lie inside one region (the fuzz target's invariant).
  bool holds_host_range(const void* p, size_t len) const;

 private:
  struct Slot {
    MemoryRegion region;
    uint8_t* host = nullptr;  // the region's first byte in this process
  };
  struct Mapping {
    void* base = nullptr;
    size_t size = 0;
    int guard = -1;  // its slot in the SIGBUS guard
  };
  // The table's semantic checks (the theory of operation's list), in that order.
  static MemoryError validate(std::span<const MemoryRegion> regions);
  void take(GuestMemory& other);
  void unmap();

  Slot slots_[kMaxMemoryRegions] = {};
  uint32_t count_ = 0;
  Mapping maps_[kMaxMemoryRegions] = {};  // what map() mapped (base nullptr: not ours)
};

}  // namespace qswitch::backends::vhost_user
