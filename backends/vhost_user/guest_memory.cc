// backends/vhost_user/guest_memory.cc: the memory table's validation (the only one: the codec
// checks the message's shape, not what the regions mean) and translations (pure C++), and map(),
// the one function here that calls mmap.
#include "backends/vhost_user/guest_memory.h"

#include "backends/vhost_user/sigbus_guard.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <limits>

namespace qswitch::backends::vhost_user {

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// Whether [start, start + len) lies inside [base, base + size), written so nothing overflows.
bool range_inside(uint64_t base, uint64_t size, uint64_t start, uint64_t len) {
  if (start < base) return false;
  const uint64_t off = start - base;
  return off < size && len <= size - off;
}

}  // namespace

const char* memory_error_text(MemoryError e) {
  switch (e) {
    case MemoryError::kNone:
      return "ok";
    case MemoryError::kTooManyRegions:
      return "more memory regions than the 8 supported";
    case MemoryError::kEmptyRegion:
      return "a memory region of size 0";
    case MemoryError::kAddressWraps:
      return "a memory region that wraps around the 64-bit address space";
    case MemoryError::kOverlap:
      return "two memory regions overlap in guest-physical addresses";
    case MemoryError::kNoHostAddress:
      return "not one non-null host address per memory region";
    case MemoryError::kFdCountMismatch:
      return "not one file descriptor per memory region";
    case MemoryError::kMappingTooLarge:
      return "a memory region's mmap_offset + size does not fit in the address space";
    case MemoryError::kMmapFailed:
      return "mmap of a memory region failed";
    case MemoryError::kTooManyMappings:
      return "too many guest memory mappings in this process (4096)";
  }
  return "unknown memory error";
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    unmap();
    take(other);
  }
  return *this;
}

void GuestMemory::take(GuestMemory& other) {
  for (uint32_t i = 0; i < kMaxMemoryRegions; ++i) {
    slots_[i] = other.slots_[i];
    maps_[i] = other.maps_[i];
    other.slots_[i] = Slot{};
    other.maps_[i] = Mapping{};
  }
  count_ = other.count_;
  other.count_ = 0;
}

void GuestMemory::unmap() {
  for (Mapping& m : maps_) {
    unguard_mapping(m.guard);
    if (m.base != nullptr) ::munmap(m.base, m.size);
    m = Mapping{};
  }
  for (Slot& s : slots_) s = Slot{};
  count_ = 0;
}

bool GuestMemory::faulted() const {
  for (const Mapping& m : maps_) {
    if (mapping_faulted(m.guard)) return true;
  }
  return false;
}

MemoryError GuestMemory::validate(std::span<const MemoryRegion> regions) {
  if (regions.size() > kMaxMemoryRegions) return MemoryError::kTooManyRegions;
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemoryRegion& r = regions[i];
    if (r.memory_size == 0) return MemoryError::kEmptyRegion;
    const uint64_t last = r.memory_size - 1;
    if (last > kU64Max - r.guest_phys_addr || last > kU64Max - r.userspace_addr) {
      return MemoryError::kAddressWraps;
    }
    for (size_t j = 0; j < i; ++j) {
      const MemoryRegion& o = regions[j];
      // Last bytes, not ends: a region may end at 2^64 - 1.
      const uint64_t r_last = r.guest_phys_addr + last;
      const uint64_t o_last = o.guest_phys_addr + (o.memory_size - 1);
      if (r.guest_phys_addr <= o_last && o.guest_phys_addr <= r_last) return MemoryError::kOverlap;
    }
  }
  return MemoryError::kNone;
}

MemoryError GuestMemory::over_buffers(std::span<const MemoryRegion> regions,
                                      std::span<uint8_t* const> hosts, GuestMemory& out) {
  const MemoryError e = validate(regions);
  if (e != MemoryError::kNone) return e;
  if (hosts.size() != regions.size()) return MemoryError::kNoHostAddress;
  for (uint8_t* host : hosts) {
    if (host == nullptr) return MemoryError::kNoHostAddress;
  }
  out.unmap();
  for (size_t i = 0; i < regions.size(); ++i) out.slots_[i] = Slot{regions[i], hosts[i]};
  out.count_ = static_cast<uint32_t>(regions.size());
  return MemoryError::kNone;
}

MemoryError GuestMemory::map(std::span<const MemoryRegion> regions, std::span<const int> fds,
                             GuestMemory& out, int* mmap_errno) {
  const MemoryError e = validate(regions);
  if (e != MemoryError::kNone) return e;
  if (fds.size() != regions.size()) return MemoryError::kFdCountMismatch;
  GuestMemory built;
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemoryRegion& r = regions[i];
    static_assert(sizeof(size_t) == sizeof(uint64_t), "a 64-bit host maps any uint64_t length");
    if (r.mmap_offset > kU64Max - r.memory_size) {
      return MemoryError::kMappingTooLarge;  // `built` unmaps what it holds
    }
    const size_t length = r.mmap_offset + r.memory_size;
    // From offset 0: mmap needs a page-aligned offset and QEMU's mmap_offset need not be one.
    void* base =
        ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);
    if (base == MAP_FAILED) {
      if (mmap_errno != nullptr) *mmap_errno = errno;
      return MemoryError::kMmapFailed;
    }
    const int guard = guard_mapping(base, length);
    built.maps_[i] = Mapping{base, length, guard};
    if (guard < 0) return MemoryError::kTooManyMappings;  // `built` unmaps it
    built.slots_[i] = Slot{r, static_cast<uint8_t*>(base) + r.mmap_offset};
    built.count_ = static_cast<uint32_t>(i + 1);
  }
  out = std::move(built);
  return MemoryError::kNone;
}

uint8_t* GuestMemory::gpa_to_host(uint64_t gpa, uint64_t len) const {
  for (uint32_t i = 0; i < count_; ++i) {
    const Slot& s = slots_[i];
    if (range_inside(s.region.guest_phys_addr, s.region.memory_size, gpa, len)) {
      return s.host + (gpa - s.region.guest_phys_addr);
    }
  }
  return nullptr;
}

uint8_t* GuestMemory::gpa_to_host_prefix(uint64_t gpa, uint64_t len, uint64_t* contiguous) const {
  for (uint32_t i = 0; i < count_; ++i) {
    const Slot& s = slots_[i];
    if (gpa < s.region.guest_phys_addr) continue;
    const uint64_t off = gpa - s.region.guest_phys_addr;
    if (off >= s.region.memory_size) continue;
    const uint64_t room = s.region.memory_size - off;
    *contiguous = len < room ? len : room;
    return s.host + off;
  }
  *contiguous = 0;
  return nullptr;
}

TranslateError GuestMemory::translate(uint64_t gpa, uint64_t len, iovec* out, uint32_t max,
                                      uint32_t* count) const {
  *count = 0;
  if (len == 0) return TranslateError::kNone;
  // A range past 2^64 would wrap to low addresses, which may well be mapped.
  if (len - 1 > kU64Max - gpa) return TranslateError::kOutsideMemory;
  uint32_t n = 0;
  while (len > 0) {
    uint64_t piece = 0;
    uint8_t* p = gpa_to_host_prefix(gpa, len, &piece);
    if (p == nullptr) return TranslateError::kOutsideMemory;
    if (n == max) return TranslateError::kTooManyPieces;
    out[n].iov_base = p;
    out[n].iov_len = static_cast<size_t>(piece);
    ++n;
    gpa += piece;  // cannot wrap: checked above
    len -= piece;
  }
  *count = n;
  return TranslateError::kNone;
}

uint8_t* GuestMemory::ua_to_host(uint64_t ua, uint64_t len) const {
  for (uint32_t i = 0; i < count_; ++i) {
    const Slot& s = slots_[i];
    if (range_inside(s.region.userspace_addr, s.region.memory_size, ua, len)) {
      return s.host + (ua - s.region.userspace_addr);
    }
  }
  return nullptr;
}

bool GuestMemory::holds_host_range(const void* p, size_t len) const {
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (uint32_t i = 0; i < count_; ++i) {
    const Slot& s = slots_[i];
    if (range_inside(reinterpret_cast<uintptr_t>(s.host), s.region.memory_size, a, len)) {
      return true;
    }
  }
  return false;
}

}  // namespace qswitch::backends::vhost_user
