// tests/fuzz/vhost_user_msg_fuzz.cc: the vhost-user control-message reader
// (backends/vhost_user/vhost_user_msg.h) fed as the port's recvmsg() loop feeds it: reads of
// arbitrary size capped at write_space(), each with 0..10 fds attached; each decoded memory table
// then goes to GuestMemory (guest_memory.h), which holds the table's semantic checks.
//
// Input (FuzzedDataProvider): per read, its size and its fd count (from the back), then its bytes
// (from the front). The fds are fake numbers (1000, 1001, ...) the target owns: nothing is ever
// closed, each number is handed to the reader once, and the target tracks where each one is.
//
// Checked besides the sanitizers:
// - write_space() is never larger than the rest of a message (<= kMaxMessageSize), and empty
//   exactly when the reader has failed;
// - a yielded message is the bytes read since the previous one: header fields as on the wire,
//   12 + size bytes in all, a payload of the type and size its request takes (memory table:
//   8 + 32 * count, one fd per region; config: 12 + its size; u64 value as on the wire);
// - every fd comes back exactly once: in a message, in an error's fds_to_close or from
//   take_pending_fds() at the end; none is invented, none is lost;
// - after an error nothing more is yielded, the error text stays the same, and the fds of later
//   commits come straight back;
// - GuestMemory's verdict on a decoded memory table (over_buffers(); map() with fds of -1, which
//   fails in mmap if nothing is refused first) is a reference's in 128-bit arithmetic, error
//   kind included; encode_config_reply() of a decoded config access fits kMaxReplySize.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "backends/vhost_user/guest_memory.h"
#include "backends/vhost_user/vhost_user_msg.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace qswitch::backends::vhost_user;

uint32_t load32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t load64(const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

using U128 = unsigned __int128;
constexpr U128 kTwoTo64 = U128{1} << 64;

// Reference for GuestMemory's semantic checks (guest_memory.h), in its order: wide arithmetic,
// no early tricks.
MemoryError reference_verdict(std::span<const MemoryRegion> r) {
  if (r.size() > kMaxMemoryRegions) return MemoryError::kTooManyRegions;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i].memory_size == 0) return MemoryError::kEmptyRegion;
    if (U128{r[i].guest_phys_addr} + r[i].memory_size > kTwoTo64 ||
        U128{r[i].userspace_addr} + r[i].memory_size > kTwoTo64) {
      return MemoryError::kAddressWraps;
    }
    for (size_t j = 0; j < i; ++j) {
      const U128 a0 = r[i].guest_phys_addr, a1 = a0 + r[i].memory_size;
      const U128 b0 = r[j].guest_phys_addr, b1 = b0 + r[j].memory_size;
      if (a0 < b1 && b0 < a1) return MemoryError::kOverlap;
    }
  }
  return MemoryError::kNone;
}

// A decoded table through GuestMemory, as the port will hand it over.
void check_guest_memory(const MemoryTable& t) {
  const MemoryError want = reference_verdict(t.view());
  // over_buffers(): every host address a dummy byte (nothing is translated).
  static uint8_t dummy;
  std::array<uint8_t*, kMaxMemoryRegions> hosts{};
  hosts.fill(&dummy);
  GuestMemory mem;
  const MemoryError got =
      GuestMemory::over_buffers(t.view(), std::span(hosts.data(), t.count), mem);
  FUZZ_CHECK(got == want);
  FUZZ_CHECK(mem.region_count() == (got == MemoryError::kNone ? t.count : 0));
  if (got == MemoryError::kNone) {
    for (uint32_t i = 0; i < t.count; ++i) FUZZ_CHECK(mem.region(i) == t.regions[i]);
  }
  // map(): after those checks, region 0's mmap_offset + memory_size must fit in 64 bits, then
  // mmap() refuses fd -1 (EBADF) before any later region is looked at.
  std::array<int, kMaxMemoryRegions> fds{};
  fds.fill(-1);
  GuestMemory mapped;
  int err = 0;
  MemoryError want_map = want;
  if (want == MemoryError::kNone) {
    const MemoryRegion& r0 = t.regions[0];
    want_map = U128{r0.mmap_offset} + r0.memory_size >= kTwoTo64 ? MemoryError::kMappingTooLarge
                                                                 : MemoryError::kMmapFailed;
  }
  FUZZ_CHECK(GuestMemory::map(t.view(), std::span(fds.data(), t.count), mapped, &err) == want_map);
  FUZZ_CHECK(mapped.region_count() == 0);
}

void check_message(const Message& m, const std::vector<uint8_t>& raw) {
  FUZZ_CHECK(raw.size() == kHeaderSize + size_t{m.size});
  FUZZ_CHECK(load32(raw.data()) == static_cast<uint32_t>(m.request));
  FUZZ_CHECK(load32(raw.data() + 4) == m.flags);
  FUZZ_CHECK(load32(raw.data() + 8) == m.size);
  FUZZ_CHECK((m.flags & kVersionMask) == kVersion && (m.flags & kFlagReply) == 0);
  FUZZ_CHECK(m.fds.count <= kMaxFds);
  const uint8_t* p = raw.data() + kHeaderSize;
  if (std::holds_alternative<std::monostate>(m.payload)) {
    FUZZ_CHECK(m.size == 0);
  } else if (const auto* v = std::get_if<uint64_t>(&m.payload)) {
    FUZZ_CHECK(m.size == 8 && *v == load64(p) && m.fds.count == 0);
  } else if (const auto* s = std::get_if<VringState>(&m.payload)) {
    FUZZ_CHECK(m.size == 8 && s->index == load32(p) && s->num == load32(p + 4));
    FUZZ_CHECK(m.fds.count == 0);
  } else if (const auto* a = std::get_if<VringAddr>(&m.payload)) {
    FUZZ_CHECK(m.size == 40 && a->index == load32(p) && a->log_guest_addr == load64(p + 32));
    FUZZ_CHECK(m.fds.count == 0);
  } else if (const auto* t = std::get_if<MemoryTable>(&m.payload)) {
    FUZZ_CHECK(t->count >= 1 && t->count <= kMaxMemoryRegions);
    FUZZ_CHECK(m.size == 8 + 32 * t->count && t->count == load32(p));
    FUZZ_CHECK(m.fds.count == t->count);
    for (uint32_t i = 0; i < t->count; ++i) {
      FUZZ_CHECK(t->regions[i].guest_phys_addr == load64(p + 8 + 32 * i));
      FUZZ_CHECK(t->regions[i].mmap_offset == load64(p + 8 + 32 * i + 24));
    }
    check_guest_memory(*t);
  } else if (const auto* r = std::get_if<MemoryRegion>(&m.payload)) {
    FUZZ_CHECK(m.size == 40 && r->guest_phys_addr == load64(p + 8));
    FUZZ_CHECK(m.request == Request::kAddMemReg ? m.fds.count == 1 : m.fds.count <= 1);
  } else if (const auto* f = std::get_if<VringFile>(&m.payload)) {
    const uint64_t v = load64(p);
    FUZZ_CHECK(m.size == 8 && f->index == (v & kVringIndexMask) && (v >> 9) == 0);
    FUZZ_CHECK(f->no_fd == ((v & kVringNoFd) != 0));
    FUZZ_CHECK(m.fds.count == (f->no_fd ? 0u : 1u));
  } else if (const auto* c = std::get_if<DeviceConfig>(&m.payload)) {
    FUZZ_CHECK(c->size <= kMaxConfigSize && m.size == kConfigHeaderSize + c->size);
    FUZZ_CHECK(std::memcmp(c->bytes.data(), p + kConfigHeaderSize, c->size) == 0);
    FUZZ_CHECK(m.fds.count == 0);
    uint8_t out[kMaxReplySize];
    const auto space = encode_net_config({});
    const size_t n = encode_config_reply(*c, space, out);
    FUZZ_CHECK(n == kHeaderSize || n == kHeaderSize + kConfigHeaderSize + c->size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  MessageReader reader;
  std::set<int> held;  // fds the reader has and has not given back
  int next_fd = 1000;
  std::vector<uint8_t> raw;  // the bytes of the message under assembly
  std::string error;
  const auto give_back = [&held](std::span<const int> fds) {
    for (int fd : fds) FUZZ_CHECK(held.erase(fd) == 1);  // known, and only once
  };
  for (int reads = 0; reads < 4096 && in.remaining_bytes() > 0; ++reads) {
    const size_t want = in.ConsumeIntegralInRange<size_t>(0, 300);
    const int nfds = in.ConsumeIntegralInRange<int>(0, 10);
    const std::span<uint8_t> space = reader.write_space();
    FUZZ_CHECK(space.size() <= kMaxMessageSize);
    FUZZ_CHECK(space.empty() == reader.failed());
    const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(std::min(want, space.size()));
    if (!bytes.empty()) std::memcpy(space.data(), bytes.data(), bytes.size());
    std::vector<int> fds;
    for (int i = 0; i < nfds; ++i) {
      fds.push_back(next_fd);
      held.insert(next_fd++);
    }
    raw.insert(raw.end(), bytes.begin(), bytes.end());
    const bool failed_before = reader.failed();
    const ReadResult r = reader.commit(bytes.size(), fds);
    switch (r.status) {
      case ReadResult::Status::kNeedMore:
        FUZZ_CHECK(!failed_before);
        FUZZ_CHECK(raw.size() < kMaxMessageSize);
        break;
      case ReadResult::Status::kMessage:
        FUZZ_CHECK(!failed_before);
        check_message(r.message, raw);
        give_back(r.message.fds.view());
        raw.clear();
        break;
      case ReadResult::Status::kError:
        FUZZ_CHECK(!r.error.empty());
        if (failed_before) {
          FUZZ_CHECK(r.error == error);
          FUZZ_CHECK(r.fds_to_close == fds);  // later fds come straight back
        }
        error = r.error;
        FUZZ_CHECK(reader.failed() && reader.error() == error);
        give_back(r.fds_to_close);
        break;
    }
  }
  const FdList pending = reader.take_pending_fds();
  give_back(pending.view());
  FUZZ_CHECK(held.empty());  // every fd handed out exactly once
  return 0;
}
