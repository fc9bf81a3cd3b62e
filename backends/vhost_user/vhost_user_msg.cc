// backends/vhost_user/vhost_user_msg.cc: see the header.
#include "backends/vhost_user/vhost_user_msg.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace qswitch::backends::vhost_user {
namespace {

// How a request's payload is laid out; decides the payload sizes it may have.
enum class Layout {
  kNone,          // 0 bytes
  kU64,           // 8
  kVringState,    // 8
  kVringAddr,     // 40
  kMemoryTable,   // 8 + 32 * count, count 1..8
  kMemoryRegion,  // 40: padding u64, region
  kVringFile,     // 8: u64 index | no-fd flag
  kConfig,        // 12 + size, size 0..256
};

// Which fds it takes.
enum class FdRule {
  kNone,
  kOne,
  kZeroOrOne,  // REM_MEM_REG: "the back-end MAY accept messages with one file descriptor"
  kPerRegion,  // SET_MEM_TABLE
  kVringFile,  // one, unless the no-fd bit is set
};

struct RequestSpec {
  const char* name;
  bool accepted;
  Layout layout;
  FdRule fds;
};

constexpr uint32_t kLastRequest = 40;
// Indexed by request number; vhost-user.rst "Front-end message types".
constexpr RequestSpec kSpecs[kLastRequest + 1] = {
    {"unknown", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GET_FEATURES", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_FEATURES", true, Layout::kU64, FdRule::kNone},
    {"VHOST_USER_SET_OWNER", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_RESET_OWNER", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_MEM_TABLE", true, Layout::kMemoryTable, FdRule::kPerRegion},
    {"VHOST_USER_SET_LOG_BASE", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_LOG_FD", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_VRING_NUM", true, Layout::kVringState, FdRule::kNone},
    {"VHOST_USER_SET_VRING_ADDR", true, Layout::kVringAddr, FdRule::kNone},
    {"VHOST_USER_SET_VRING_BASE", true, Layout::kVringState, FdRule::kNone},
    {"VHOST_USER_GET_VRING_BASE", true, Layout::kVringState, FdRule::kNone},
    {"VHOST_USER_SET_VRING_KICK", true, Layout::kVringFile, FdRule::kVringFile},
    {"VHOST_USER_SET_VRING_CALL", true, Layout::kVringFile, FdRule::kVringFile},
    {"VHOST_USER_SET_VRING_ERR", true, Layout::kVringFile, FdRule::kVringFile},
    {"VHOST_USER_GET_PROTOCOL_FEATURES", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_PROTOCOL_FEATURES", true, Layout::kU64, FdRule::kNone},
    {"VHOST_USER_GET_QUEUE_NUM", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_VRING_ENABLE", true, Layout::kVringState, FdRule::kNone},
    {"VHOST_USER_SEND_RARP", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_NET_SET_MTU", true, Layout::kU64, FdRule::kNone},
    {"VHOST_USER_SET_BACKEND_REQ_FD", true, Layout::kNone, FdRule::kOne},
    {"VHOST_USER_IOTLB_MSG", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_VRING_ENDIAN", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GET_CONFIG", true, Layout::kConfig, FdRule::kNone},
    {"VHOST_USER_SET_CONFIG", true, Layout::kConfig, FdRule::kNone},
    {"VHOST_USER_CREATE_CRYPTO_SESSION", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_CLOSE_CRYPTO_SESSION", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_POSTCOPY_ADVISE", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_POSTCOPY_LISTEN", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_POSTCOPY_END", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GET_INFLIGHT_FD", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_SET_INFLIGHT_FD", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GPU_SET_SOCKET", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_RESET_DEVICE", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_VRING_KICK", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GET_MAX_MEM_SLOTS", true, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_ADD_MEM_REG", true, Layout::kMemoryRegion, FdRule::kOne},
    {"VHOST_USER_REM_MEM_REG", true, Layout::kMemoryRegion, FdRule::kZeroOrOne},
    {"VHOST_USER_SET_STATUS", false, Layout::kNone, FdRule::kNone},
    {"VHOST_USER_GET_STATUS", false, Layout::kNone, FdRule::kNone},
};

const RequestSpec& spec_of(uint32_t request) {
  return request <= kLastRequest ? kSpecs[request] : kSpecs[0];
}

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
void store32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, sizeof v); }
void store64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, sizeof v); }

MemoryRegion load_region(const uint8_t* p) {
  return MemoryRegion{load64(p), load64(p + 8), load64(p + 16), load64(p + 24)};
}

std::string named(uint32_t request) {
  const RequestSpec& s = spec_of(request);
  if (request == 0 || request > kLastRequest) return "request " + std::to_string(request);
  return std::string(s.name);
}

std::string hex(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[v & 0xf]);
    v >>= 4;
  } while (v != 0);
  return "0x" + out;
}

// The payload sizes a layout allows: [lo, hi] with a step (memory table: 32 per region).
std::string expected_sizes(Layout layout) {
  switch (layout) {
    case Layout::kNone:
      return "0";
    case Layout::kU64:
    case Layout::kVringState:
    case Layout::kVringFile:
      return "8";
    case Layout::kVringAddr:
    case Layout::kMemoryRegion:
      return "40";
    case Layout::kMemoryTable:
      return "8 + 32 per region, 1..8 regions";
    case Layout::kConfig:
      return "12..268";
  }
  return "?";
}

bool size_fits(Layout layout, uint32_t size) {
  switch (layout) {
    case Layout::kNone:
      return size == 0;
    case Layout::kU64:
    case Layout::kVringState:
    case Layout::kVringFile:
      return size == 8;
    case Layout::kVringAddr:
      return size == kVringAddrSize;
    case Layout::kMemoryRegion:
      return size == kSingleMemoryRegionSize;
    case Layout::kMemoryTable:
      return size >= kMemoryTableHeaderSize + kMemoryRegionSize &&
             size <= kMemoryTableHeaderSize + kMaxMemoryRegions * kMemoryRegionSize &&
             (size - kMemoryTableHeaderSize) % kMemoryRegionSize == 0;
    case Layout::kConfig:
      return size >= kConfigHeaderSize && size <= kConfigHeaderSize + kMaxConfigSize;
  }
  return false;
}

std::string fd_count(uint32_t n) { return std::to_string(n) + (n == 1 ? " fd" : " fds"); }

size_t write_header(Request request, uint32_t size, std::span<uint8_t> out) {
  if (out.size() < kHeaderSize + size_t{size}) return 0;
  store32(out.data(), static_cast<uint32_t>(request));
  store32(out.data() + 4, kReplyFlags);
  store32(out.data() + 8, size);
  return kHeaderSize + size_t{size};
}

}  // namespace

const char* request_name(Request request) { return spec_of(static_cast<uint32_t>(request)).name; }

std::span<uint8_t> MessageReader::write_space() {
  if (failed_) return {};
  return {buf_.data() + have_, need_ - have_};
}

FdList MessageReader::take_pending_fds() { return std::exchange(fds_, FdList{}); }

ReadResult MessageReader::fail(std::string error, std::span<const int> extra_fds) {
  ReadResult r;
  r.status = ReadResult::Status::kError;
  if (!failed_) {
    failed_ = true;
    error_ = std::move(error);
  }
  r.error = error_;
  r.fds_to_close.assign(fds_.fd.begin(), fds_.fd.begin() + fds_.count);
  r.fds_to_close.insert(r.fds_to_close.end(), extra_fds.begin(), extra_fds.end());
  fds_ = FdList{};
  return r;
}

ReadResult MessageReader::commit(size_t n, std::span<const int> fds) {
  if (failed_) return fail({}, fds);
  if (n > need_ - have_) {
    return fail("read of " + std::to_string(n) + " bytes past the " +
                    std::to_string(need_ - have_) + " bytes asked for",
                fds);
  }
  have_ += static_cast<uint32_t>(n);
  if (fds.size() > kMaxFds - fds_.count) {
    return fail((have_ >= 4 ? named(load32(buf_.data())) : std::string("a message")) + ": " +
                    fd_count(static_cast<uint32_t>(fds_.count + fds.size())) + ", at most " +
                    std::to_string(kMaxFds),
                fds);
  }
  for (int fd : fds) fds_.fd[fds_.count++] = fd;
  if (have_ < need_) return {};
  if (need_ == kHeaderSize) {
    ReadResult r = check_header();
    if (r.status == ReadResult::Status::kError) return r;
    if (need_ > have_) return r;  // the payload comes next
  }
  return finish();
}

ReadResult MessageReader::check_header() {
  const uint32_t request = load32(buf_.data());
  const uint32_t flags = load32(buf_.data() + 4);
  const uint32_t size = load32(buf_.data() + 8);
  const RequestSpec& spec = spec_of(request);
  if ((flags & kVersionMask) != kVersion) {
    return fail(named(request) + ": flags " + hex(flags) + ": version " +
                    std::to_string(flags & kVersionMask) + ", expected 1",
                {});
  }
  if ((flags & kFlagReply) != 0) {
    return fail(named(request) + ": flags " + hex(flags) + ": REPLY set on a front-end request",
                {});
  }
  if (request == 0 || request > kLastRequest) {
    return fail("unknown request " + std::to_string(request), {});
  }
  if (!spec.accepted) {
    return fail(named(request) + " (" + std::to_string(request) +
                    ") is not supported: not offered in our features or protocol features",
                {});
  }
  if (size > kMaxPayloadSize) {
    return fail(named(request) + ": payload size " + std::to_string(size) +
                    " larger than any request's (" + std::to_string(kMaxPayloadSize) + ")",
                {});
  }
  if (!size_fits(spec.layout, size)) {
    return fail(named(request) + ": payload size " + std::to_string(size) + ", expected " +
                    expected_sizes(spec.layout),
                {});
  }
  need_ = kHeaderSize + size;
  return {};
}

ReadResult MessageReader::finish() {
  const uint32_t request = load32(buf_.data());
  const RequestSpec& spec = spec_of(request);
  const uint8_t* p = buf_.data() + kHeaderSize;
  const uint32_t size = need_ - kHeaderSize;
  const std::string name = spec.name;
  ReadResult r;
  Message& m = r.message;
  m.request = static_cast<Request>(request);
  m.flags = load32(buf_.data() + 4);
  m.size = size;
  uint32_t fds_wanted = 0;
  bool fds_exact = true;  // false: at most fds_wanted
  switch (spec.layout) {
    case Layout::kNone:
      break;
    case Layout::kU64:
      m.payload = load64(p);
      break;
    case Layout::kVringState:
      m.payload = VringState{load32(p), load32(p + 4)};
      break;
    case Layout::kVringAddr:
      m.payload = VringAddr{load32(p),      load32(p + 4),  load64(p + 8),
                            load64(p + 16), load64(p + 24), load64(p + 32)};
      break;
    case Layout::kMemoryTable: {
      const uint32_t count = load32(p);
      const uint32_t holds = (size - kMemoryTableHeaderSize) / kMemoryRegionSize;
      if (count == 0 || count > kMaxMemoryRegions) {
        return fail(name + ": region count " + std::to_string(count) + ", expected 1.." +
                        std::to_string(kMaxMemoryRegions),
                    {});
      }
      if (count != holds) {
        return fail(name + ": region count " + std::to_string(count) + " but the payload holds " +
                        std::to_string(holds),
                    {});
      }
      MemoryTable t;
      t.count = count;
      for (uint32_t i = 0; i < count; ++i) {
        t.regions[i] = load_region(p + kMemoryTableHeaderSize + size_t{i} * kMemoryRegionSize);
      }
      m.payload = t;
      fds_wanted = count;
      break;
    }
    case Layout::kMemoryRegion:
      m.payload = load_region(p + 8);
      break;
    case Layout::kVringFile: {
      const uint64_t v = load64(p);
      if ((v & ~(kVringIndexMask | kVringNoFd)) != 0) {
        return fail(name + ": payload " + hex(v) + " has bits set above bit 8", {});
      }
      const VringFile f{static_cast<uint32_t>(v & kVringIndexMask), (v & kVringNoFd) != 0};
      m.payload = f;
      fds_wanted = f.no_fd ? 0 : 1;
      break;
    }
    case Layout::kConfig: {
      DeviceConfig c;
      c.offset = load32(p);
      c.size = load32(p + 4);
      c.flags = load32(p + 8);
      if (c.size != size - kConfigHeaderSize) {
        return fail(name + ": config size " + std::to_string(c.size) + " but the payload holds " +
                        std::to_string(size - kConfigHeaderSize),
                    {});
      }
      std::copy_n(p + kConfigHeaderSize, c.size, c.bytes.begin());
      m.payload = c;
      break;
    }
  }
  switch (spec.fds) {
    case FdRule::kNone:
      break;
    case FdRule::kOne:
      fds_wanted = 1;
      break;
    case FdRule::kZeroOrOne:
      fds_wanted = 1;
      fds_exact = false;
      break;
    case FdRule::kPerRegion:
    case FdRule::kVringFile:
      break;  // set from the payload above
  }
  if (fds_exact ? fds_.count != fds_wanted : fds_.count > fds_wanted) {
    std::string why;
    if (fds_wanted == 0 && spec.fds == FdRule::kNone) {
      why = fd_count(fds_.count) + " on a request that takes none";
    } else if (spec.fds == FdRule::kVringFile) {
      why = fds_wanted == 0 ? fd_count(fds_.count) + " with the no-fd flag (bit 8) set"
                            : fd_count(fds_.count) + " without the no-fd flag (bit 8), expected 1";
    } else {
      why = fd_count(fds_.count) + ", expected " + (fds_exact ? "" : "at most ") +
            std::to_string(fds_wanted) +
            (spec.fds == FdRule::kPerRegion ? " (one per region)" : "");
    }
    return fail(name + ": " + why, {});
  }
  m.fds = std::exchange(fds_, FdList{});
  r.status = ReadResult::Status::kMessage;
  have_ = 0;
  need_ = kHeaderSize;
  return r;
}

size_t encode_u64_reply(Request request, uint64_t value, std::span<uint8_t> out) {
  const size_t n = write_header(request, kU64Size, out);
  if (n != 0) store64(out.data() + kHeaderSize, value);
  return n;
}

size_t encode_vring_state_reply(Request request, VringState state, std::span<uint8_t> out) {
  const size_t n = write_header(request, kVringStateSize, out);
  if (n != 0) {
    store32(out.data() + kHeaderSize, state.index);
    store32(out.data() + kHeaderSize + 4, state.num);
  }
  return n;
}

size_t encode_reply_ack(Request request, bool success, std::span<uint8_t> out) {
  return encode_u64_reply(request, success ? 0 : 1, out);
}

size_t encode_config_reply(const DeviceConfig& request, std::span<const uint8_t> config_space,
                           std::span<uint8_t> out) {
  const bool fits = request.size <= kMaxConfigSize && request.offset <= config_space.size() &&
                    request.size <= config_space.size() - request.offset;
  if (!fits) return write_header(Request::kGetConfig, 0, out);
  const size_t n = write_header(Request::kGetConfig, kConfigHeaderSize + request.size, out);
  if (n != 0) {
    uint8_t* p = out.data() + kHeaderSize;
    store32(p, request.offset);
    store32(p + 4, request.size);
    store32(p + 8, request.flags);
    std::copy_n(config_space.data() + request.offset, request.size, p + kConfigHeaderSize);
  }
  return n;
}

std::array<uint8_t, kNetConfigSize> encode_net_config(const NetConfig& config) {
  std::array<uint8_t, kNetConfigSize> out{};
  std::copy(config.mac.begin(), config.mac.end(), out.begin());
  const auto le16 = [&out](size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v);
    out[at + 1] = static_cast<uint8_t>(v >> 8);
  };
  le16(6, config.status);
  le16(8, config.max_virtqueue_pairs);
  le16(10, config.mtu);
  return out;
}

}  // namespace qswitch::backends::vhost_user
