// tests/fuzz/virtqueue_fuzz.cc: the vhost-user split virtqueue's device side (Virtqueue) and the
// memory table it translates through (GuestMemory), driven by a hostile guest: random memory
// layouts, descriptor tables, indirect tables and available rings, then pops, used entries,
// mergeable receive fills and notification calls in any order.
//
// Input (FuzzedDataProvider, numbers only, from the back): the layout (data regions, queue size,
// ring placement, EVENT_IDX, start indices), the descriptor table (each descriptor aimed inside
// a region, at an indirect table written in place, at a random address, or empty), the
// available ring, then up to 64 operations. The ring region sits at a fixed guest-physical
// address; the data regions are adjacent, apart, or anywhere.
//
// Checked besides the sanitizers: a refused memory table is refused for a named reason; every
// iovec a chain holds lies inside one region of the fake guest memory; a chain's readable and
// writable sizes are the sums of its pieces; it visits at most num descriptors; pieces fit the
// caller's array; once an error is reported every later pop reports it; put_rx_mergeable()
// consumes exactly `buffers` chains when done and none otherwise; the used idx in guest memory
// is what the queue published; translate() pieces add up to the length asked for.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "backends/vhost_user/guest_memory.h"
#include "backends/vhost_user/virtqueue.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace qswitch::backends::vhost_user;

constexpr uint64_t kRingGpa = 0x100000000;  // the ring region's guest-physical address
constexpr uint64_t kRingUa = 0x7f0000000000;
constexpr uint32_t kRingRegionSize = 0x3000;  // holds the rings of a 256-entry queue
constexpr uint32_t kMaxDataRegions = 3;
constexpr uint32_t kMaxDataRegionSize = 0x4000;
constexpr uint32_t kMaxIov = 64;
constexpr int kMaxOps = 64;

struct Layout {
  std::vector<uint8_t> ring = std::vector<uint8_t>(kRingRegionSize);
  std::vector<std::vector<uint8_t>> data;
  std::vector<MemoryRegion> regions;
  std::vector<uint8_t*> hosts;  // hosts[i]: where regions[i]'s first byte is
  uint32_t num = 0;
  uint64_t desc_off = 0, avail_off = 0, used_off = 0;
};

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void write_desc(uint8_t* at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
  std::memcpy(at, &addr, 8);
  std::memcpy(at + 8, &len, 4);
  std::memcpy(at + 12, &flags, 2);
  std::memcpy(at + 14, &next, 2);
}

class Guest {
 public:
  Guest(FuzzedDataProvider& in, Layout& l) : in_(in), l_(l) {}

  // One descriptor; kind 1 (an indirect table, written now with leaf descriptors) only when
  // `table_allowed`.
  void descriptor(uint8_t* at, bool table_allowed) {
    const int kind = in_.ConsumeIntegralInRange<int>(0, 3);
    uint16_t flags = in_.ConsumeIntegralInRange<uint16_t>(0, 7);
    const uint16_t next = in_.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(l_.num));
    uint64_t addr = 0;
    uint32_t len = 0;
    switch (kind) {
      case 0:
      case 1: {
        const size_t r = in_.ConsumeIntegralInRange<size_t>(0, l_.data.size() - 1);
        const auto size = static_cast<uint32_t>(l_.data[r].size());
        const uint32_t off = in_.ConsumeIntegralInRange<uint32_t>(0, size);
        addr = l_.regions[r + 1].guest_phys_addr + off;
        if (kind == 0 || !table_allowed) {
          len = in_.ConsumeIntegralInRange<uint32_t>(0, size + 64);
          break;
        }
        flags |= kVirtqDescFIndirect;
        const uint32_t entries = in_.ConsumeIntegralInRange<uint32_t>(0, l_.num + 1);
        len = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<uint32_t>(0, 0x400) : entries * 16;
        for (uint32_t e = 0; e < entries && uint64_t{off} + 16 * (e + 1) <= size; ++e) {
          descriptor(l_.data[r].data() + off + 16 * e, false);
        }
        break;
      }
      case 2:
        addr = in_.ConsumeIntegral<uint64_t>();
        len = in_.ConsumeIntegral<uint32_t>();
        break;
      default:
        break;
    }
    write_desc(at, addr, len, flags, next);
  }

  // Makes `count` more heads available after avail idx.
  void offer(uint16_t count) {
    uint8_t* avail = l_.ring.data() + l_.avail_off;
    uint16_t idx = get16(avail + 2);
    for (uint16_t k = 0; k < count; ++k, ++idx) {
      put16(avail + 4 + 2 * (idx & (l_.num - 1)),
            in_.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(l_.num)));
    }
    put16(avail + 2, idx);
  }

 private:
  FuzzedDataProvider& in_;
  Layout& l_;
};

// Every piece inside guest memory, the sizes their sums, the count bounded.
void check_chain(const GuestMemory& mem, const Chain& c, uint32_t num, size_t capacity) {
  FUZZ_CHECK(c.descriptor_count <= num);
  FUZZ_CHECK(size_t{c.readable_count} + c.writable_count <= capacity);
  FUZZ_CHECK(c.head < num);
  uint64_t readable = 0, writable = 0;
  for (const iovec& v : c.readable()) {
    FUZZ_CHECK(v.iov_len > 0 && mem.holds_host_range(v.iov_base, v.iov_len));
    readable += v.iov_len;
  }
  for (const iovec& v : c.writable()) {
    FUZZ_CHECK(v.iov_len > 0 && mem.holds_host_range(v.iov_base, v.iov_len));
    writable += v.iov_len;
  }
  FUZZ_CHECK(readable == c.readable_size && writable == c.writable_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Layout l;
  const uint32_t data_regions = in.ConsumeIntegralInRange<uint32_t>(1, kMaxDataRegions);
  l.num = 1u << in.ConsumeIntegralInRange<uint32_t>(0, 8);
  // Placement: the standard layout (each part aligned, one after the other) or anywhere.
  l.desc_off = 0;
  l.avail_off = l.desc_off + 16ull * l.num;
  l.used_off = (l.avail_off + 6 + 2ull * l.num + 3) & ~3ull;
  if (in.ConsumeBool()) {
    l.desc_off = in.ConsumeIntegralInRange<uint64_t>(0, kRingRegionSize);
    l.avail_off = in.ConsumeIntegralInRange<uint64_t>(0, kRingRegionSize);
    l.used_off = in.ConsumeIntegralInRange<uint64_t>(0, kRingRegionSize);
  }
  const bool event_idx = in.ConsumeBool();
  const auto last_avail = in.ConsumeIntegral<uint16_t>();
  const auto used_start = in.ConsumeIntegral<uint16_t>();

  l.regions.push_back({kRingGpa, kRingRegionSize, kRingUa, 0});
  l.hosts.push_back(l.ring.data());
  uint64_t end = 0;  // where the previous data region ended
  for (uint32_t r = 0; r < data_regions; ++r) {
    const uint32_t rsize = in.ConsumeIntegralInRange<uint32_t>(1, kMaxDataRegionSize);
    uint64_t gpa = end;  // adjacent
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
      case 1:
        gpa = end + in.ConsumeIntegralInRange<uint32_t>(0, 0x10000);
        break;
      case 2:
        gpa = in.ConsumeIntegral<uint64_t>();
        break;
      default:
        break;
    }
    l.data.emplace_back(rsize, 0);
    l.regions.push_back({gpa, rsize, kRingUa + 0x1000000ull * (r + 1), 0});
    end = gpa + rsize;
  }
  for (std::vector<uint8_t>& d : l.data) l.hosts.push_back(d.data());  // l.data is final

  GuestMemory mem;
  const MemoryError me = GuestMemory::over_buffers(l.regions, l.hosts, mem);
  if (me != MemoryError::kNone) {
    FUZZ_CHECK(me == MemoryError::kOverlap || me == MemoryError::kAddressWraps);
    return 0;
  }

  // translate() against the table, on an address near a data region.
  {
    const size_t r = in.ConsumeIntegralInRange<size_t>(0, l.data.size() - 1);
    const uint64_t gpa = l.regions[r + 1].guest_phys_addr +
                         in.ConsumeIntegralInRange<uint64_t>(0, 2 * kMaxDataRegionSize) -
                         kMaxDataRegionSize / 2;
    const uint64_t len = in.ConsumeIntegralInRange<uint64_t>(0, 3 * kMaxDataRegionSize);
    iovec pieces[4];
    uint32_t count = 0;
    if (mem.translate(gpa, len, pieces, 4, &count) == TranslateError::kNone) {
      uint64_t total = 0;
      for (uint32_t i = 0; i < count; ++i) {
        FUZZ_CHECK(mem.holds_host_range(pieces[i].iov_base, pieces[i].iov_len));
        total += pieces[i].iov_len;
      }
      FUZZ_CHECK(total == len);
      FUZZ_CHECK(len == 0 || mem.gpa_to_host(gpa, len) == nullptr || count == 1);
    }
  }

  Guest guest(in, l);
  // The rings, where they fit in the ring region (setup() refuses the others).
  const uint64_t desc_end = l.desc_off + 16ull * l.num;
  if (desc_end <= kRingRegionSize) {
    for (uint32_t i = 0; i < l.num; ++i) {
      guest.descriptor(l.ring.data() + l.desc_off + 16ull * i, true);
    }
  }
  const bool avail_fits = l.avail_off + 6 + 2ull * l.num <= kRingRegionSize;
  if (avail_fits) put16(l.ring.data() + l.avail_off + 2, last_avail);
  if (l.used_off + 6 + 8ull * l.num <= kRingRegionSize) {
    put16(l.ring.data() + l.used_off + 2, used_start);
  }

  Virtqueue q;
  const VringConfig config{
      l.num,    kRingUa + l.desc_off, kRingUa + l.avail_off, kRingUa + l.used_off, last_avail,
      event_idx};
  if (q.setup(mem, config) != RingError::kNone) {
    Chain c;
    FUZZ_CHECK(q.pop(c) == Virtqueue::Pop::kError);
    return 0;
  }
  FUZZ_CHECK(q.used_idx() == used_start);
  guest.offer(in.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(l.num + 1)));

  static uint8_t frame[3000];
  static bool frame_ready = false;
  if (!frame_ready) {
    for (size_t i = 0; i < sizeof frame; ++i) frame[i] = static_cast<uint8_t>(i);
    frame_ready = true;
  }
  iovec iov[kMaxIov];
  bool failed = false;
  const uint8_t* used = l.ring.data() + l.used_off;
  for (int op = 0; op < kMaxOps && in.remaining_bytes() > 0; ++op) {
    Chain chain;
    chain.iov = std::span<iovec>(iov, in.ConsumeIntegralInRange<size_t>(1, kMaxIov));
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: {
        const uint16_t before = q.last_avail_idx();
        const Virtqueue::Pop p = q.pop(chain);
        if (failed) FUZZ_CHECK(p == Virtqueue::Pop::kError);
        if (p == Virtqueue::Pop::kChain) {
          check_chain(mem, chain, l.num, chain.iov.size());
          FUZZ_CHECK(q.last_avail_idx() == static_cast<uint16_t>(before + 1));
          q.push_used(chain.head, chain.writable_size);
          FUZZ_CHECK(get16(used + 2) == q.used_idx());
        } else {
          FUZZ_CHECK(q.last_avail_idx() == before);
        }
        if (p == Virtqueue::Pop::kError) {
          FUZZ_CHECK(q.error() != RingError::kNone && !q.ready());
          failed = true;
        }
        break;
      }
      case 1: {
        const uint32_t len = in.ConsumeIntegralInRange<uint32_t>(0, sizeof frame);
        const uint32_t cut = in.ConsumeIntegralInRange<uint32_t>(0, len);
        const ConstPiece pieces[] = {{frame, cut}, {frame + cut, len - cut}};
        uint8_t hdr[kNetHdrMrgSize] = {};
        const uint16_t before = q.last_avail_idx();
        const Virtqueue::RxPut r = q.put_rx_mergeable(hdr, pieces, 0, chain);
        if (failed) FUZZ_CHECK(r.status == Virtqueue::RxStatus::kError);
        if (r.status == Virtqueue::RxStatus::kDone) {
          FUZZ_CHECK(r.buffers >= 1 && r.buffers <= l.num);
          FUZZ_CHECK(q.last_avail_idx() == static_cast<uint16_t>(before + r.buffers));
          q.flush(r.buffers);
          FUZZ_CHECK(get16(used + 2) == q.used_idx());
        } else {
          FUZZ_CHECK(r.buffers == 0);
        }
        if (r.status == Virtqueue::RxStatus::kNoRoom) FUZZ_CHECK(q.last_avail_idx() == before);
        if (r.status == Virtqueue::RxStatus::kError) failed = true;
        break;
      }
      case 2:
        if (avail_fits) {
          put16(l.ring.data() + l.avail_off, in.ConsumeIntegralInRange<uint16_t>(0, 1));
          put16(l.ring.data() + l.avail_off + 4 + 2 * l.num, in.ConsumeIntegral<uint16_t>());
        }
        (void)q.need_notify();
        break;
      case 3:
        q.disable_notification();
        break;
      case 4:
        (void)q.enable_notification();
        break;
      default: {
        guest.offer(in.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(l.num)));
        const uint32_t i = in.ConsumeIntegralInRange<uint32_t>(0, l.num - 1);
        if (desc_end <= kRingRegionSize) {
          guest.descriptor(l.ring.data() + l.desc_off + 16ull * i, true);
        }
        break;
      }
    }
    if (failed) FUZZ_CHECK(!q.ready());
  }
  return 0;
}
