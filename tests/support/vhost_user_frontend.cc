// tests/support/vhost_user_frontend.cc: see vhost_user_frontend.h.
#include "tests/support/vhost_user_frontend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <utility>

namespace qswitch::test_support {

static_assert(std::endian::native == std::endian::little,
              "virtio 1.x rings are little-endian; this driver writes them in host order");

namespace {

using Clock = std::chrono::steady_clock;
using vu::Millis;

// Alignments of virtio 1.2 2.7 "Virtqueue Part Alignment".
constexpr uint64_t kDescAlign = 16;
constexpr uint64_t kAvailAlign = 2;
constexpr uint64_t kUsedAlign = 4;
constexpr uint32_t kIndirectTableSize = 32;  // two 16-byte descriptors, at a slot's start
// How often receive() looks at the used ring when no interrupt comes (the device may have
// suppressed it): a poll() slice, not a sleep.
constexpr Millis kRecheckSlice(10);

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

int time_left_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Ring indices shared with the device: 2-byte aligned by the layout, accessed atomically.
uint16_t load_acquire(const uint8_t* p) {
  return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(const_cast<uint8_t*>(p)))
      .load(std::memory_order_acquire);
}
void store_release(uint8_t* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(p)).store(v, std::memory_order_release);
}

// Virtio 1.2 2.7.10 (written out again: this file shares no code with the back-end).
bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

const char* request_text(uint32_t r) {
  switch (r) {
    case vu::kGetFeatures:
      return "GET_FEATURES";
    case vu::kSetFeatures:
      return "SET_FEATURES";
    case vu::kSetOwner:
      return "SET_OWNER";
    case vu::kSetMemTable:
      return "SET_MEM_TABLE";
    case vu::kSetVringNum:
      return "SET_VRING_NUM";
    case vu::kSetVringAddr:
      return "SET_VRING_ADDR";
    case vu::kSetVringBase:
      return "SET_VRING_BASE";
    case vu::kGetVringBase:
      return "GET_VRING_BASE";
    case vu::kSetVringKick:
      return "SET_VRING_KICK";
    case vu::kSetVringCall:
      return "SET_VRING_CALL";
    case vu::kSetVringErr:
      return "SET_VRING_ERR";
    case vu::kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case vu::kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case vu::kSetVringEnable:
      return "SET_VRING_ENABLE";
    default:
      return "request";
  }
}

// A reply's header checked against the request it should answer.
std::string check_reply(const VuReply& r, uint32_t request) {
  if (!r.ok()) return std::string(request_text(request)) + ": " + r.error;
  if (r.request != request)
    return std::string(request_text(request)) + ": reply is for request " +
           std::to_string(r.request);
  if ((r.flags & 0x3) != vu::kFlagVersion || (r.flags & vu::kFlagReply) == 0)
    return std::string(request_text(request)) + ": reply flags " + std::to_string(r.flags);
  return "";
}

}  // namespace

std::optional<uint64_t> VuReply::u64() const {
  if (!ok() || payload.size() != 8) return std::nullopt;
  uint64_t v;
  std::memcpy(&v, payload.data(), 8);
  return v;
}

// ---- Set-up ------------------------------------------------------------------------------------

VhostUserFrontend::VhostUserFrontend(const Options& options) : options_(options) {}

std::unique_ptr<VhostUserFrontend> VhostUserFrontend::create(const Options& options,
                                                             std::string* error) {
  std::unique_ptr<VhostUserFrontend> f(new VhostUserFrontend(options));
  std::string e = f->init();
  if (!e.empty()) {
    *error = e;
    return nullptr;
  }
  return f;
}

std::string VhostUserFrontend::init() {
  const Options& o = options_;
  if (o.queue_size == 0 || o.queue_size > 32768 || !std::has_single_bit(o.queue_size))
    return "queue size not a power of 2 in 1..32768";
  if (o.rx_buffer_size < vu::kNetHdrSize) return "rx buffer smaller than the net header";
  if (o.tx_slot_size < kIndirectTableSize + vu::kNetHdrSize) return "tx slot too small";
  if (o.rx_buffer_count > o.queue_size) return "more rx buffers than the queue holds";
  rx_count_ = o.rx_buffer_count == 0 ? o.queue_size : o.rx_buffer_count;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  const bool two = o.memory_layout != MemoryLayout::kOneRegion;
  if (o.memory_size == 0 || o.memory_size % (two ? 2 * page : page) != 0)
    return "memory size not a multiple of the page size (of two pages for two regions)";

  const int fd_count = o.memory_layout == MemoryLayout::kTwoRegionsTwoFds ? 2 : 1;
  const uint64_t fd_size = o.memory_size / static_cast<uint64_t>(fd_count);
  std::vector<uint8_t*> maps;
  for (int i = 0; i < fd_count; ++i) {
    const int fd = memfd_create("qswitch-test-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return errno_text("memfd_create");
    memfds_.push_back(fd);
    if (ftruncate(fd, static_cast<off_t>(fd_size)) != 0) return errno_text("ftruncate");
    // As QEMU's memory-backend-memfd (seal=on, its default) does.
    if (o.seal_memory && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      return errno_text("fcntl F_ADD_SEALS");
    }
    void* m = mmap(nullptr, fd_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return errno_text("mmap");
    mappings_.emplace_back(m, fd_size);
    maps.push_back(static_cast<uint8_t*>(m));
  }
  switch (o.memory_layout) {
    case MemoryLayout::kOneRegion:
      regions_.push_back({o.guest_phys_base, o.memory_size, maps[0], memfds_[0], 0});
      break;
    case MemoryLayout::kTwoRegionsOneFd: {
      const uint64_t half = o.memory_size / 2;
      regions_.push_back({o.guest_phys_base, half, maps[0], memfds_[0], 0});
      regions_.push_back({o.guest_phys_base + half, half, maps[0] + half, memfds_[0], half});
      break;
    }
    case MemoryLayout::kTwoRegionsTwoFds: {
      const uint64_t half = o.memory_size / 2;
      regions_.push_back({o.guest_phys_base, half, maps[0], memfds_[0], 0});
      regions_.push_back({o.guest_phys_base + half, half, maps[1], memfds_[1], 0});
      break;
    }
  }
  bump_ = o.guest_phys_base;

  const uint64_t n = o.queue_size;
  for (Ring& r : rings_) {
    r.desc = alloc(16 * n, kDescAlign);
    r.avail = alloc(4 + 2 * n + 2, kAvailAlign);
    r.used = alloc(4 + 8 * n + 2, kUsedAlign);
    if (r.desc == 0 || r.avail == 0 || r.used == 0) return "guest memory too small for the rings";
    r.desc_host = host(r.desc, 16 * n);
    r.avail_host = host(r.avail, 4 + 2 * n + 2);
    r.used_host = host(r.used, 4 + 8 * n + 2);
    for (int* fd : {&r.kick, &r.call, &r.err}) {
      *fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (*fd < 0) return errno_text("eventfd");
    }
  }
  rx_pool_ = alloc(uint64_t{rx_count_} * o.rx_buffer_size, 16);
  // With two regions the TX buffers live in the second, so both regions carry frames.
  if (regions_.size() == 2) bump_ = std::max(bump_, regions_[1].gpa);
  options_.tx_slot_size = static_cast<uint32_t>(align_up(o.tx_slot_size, 16));
  tx_pool_ = alloc(n * options_.tx_slot_size, 16);
  if (rx_pool_ == 0 || tx_pool_ == 0) return "guest memory too small for the rx and tx buffers";
  tx_desc_count_.assign(n, 0);
  tx_second_.assign(n, 0);
  rx_posted_.assign(rx_count_, 0);
  return "";
}

VhostUserFrontend::~VhostUserFrontend() {
  close();
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(listen_path_.c_str());
  }
  for (Ring& r : rings_) {
    for (int fd : {r.kick, r.call, r.err})
      if (fd >= 0) ::close(fd);
  }
  for (auto& [base, size] : mappings_) munmap(base, size);
  for (int fd : memfds_) ::close(fd);
}

uint64_t VhostUserFrontend::alloc(uint64_t size, uint64_t align) {
  if (align == 0) align = 1;
  for (const Region& r : regions_) {
    const uint64_t end = r.gpa + r.size;
    if (bump_ >= end) continue;
    const uint64_t at = align_up(std::max(bump_, r.gpa), align);
    if (at < end && size <= end - at) {
      bump_ = at + size;
      return at;
    }
    bump_ = end;  // does not fit in the rest of this region: try the next one
  }
  return 0;
}

uint8_t* VhostUserFrontend::host(uint64_t gpa, uint64_t len) const {
  for (const Region& r : regions_) {
    if (gpa >= r.gpa && gpa - r.gpa < r.size && len <= r.size - (gpa - r.gpa))
      return r.host + (gpa - r.gpa);
  }
  return nullptr;
}

bool VhostUserFrontend::write_guest(uint64_t gpa, std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const Region* hit = nullptr;
    for (const Region& r : regions_)
      if (gpa >= r.gpa && gpa - r.gpa < r.size) hit = &r;
    if (hit == nullptr) return false;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(bytes.size() - done, hit->size - (gpa - hit->gpa)));
    std::memcpy(hit->host + (gpa - hit->gpa), bytes.data() + done, n);
    done += n;
    gpa += n;
  }
  return true;
}

bool VhostUserFrontend::read_guest(uint64_t gpa, std::span<uint8_t> out) const {
  size_t done = 0;
  while (done < out.size()) {
    const Region* hit = nullptr;
    for (const Region& r : regions_)
      if (gpa >= r.gpa && gpa - r.gpa < r.size) hit = &r;
    if (hit == nullptr) return false;
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(out.size() - done, hit->size - (gpa - hit->gpa)));
    std::memcpy(out.data() + done, hit->host + (gpa - hit->gpa), n);
    done += n;
    gpa += n;
  }
  return true;
}

uint32_t VhostUserFrontend::header_size() const {
  return (features_ & (vu::kFVersion1 | vu::kFMrgRxbuf)) != 0 ? 12 : 10;
}

// ---- Connection --------------------------------------------------------------------------------

std::string VhostUserFrontend::connect(const std::string& path, Millis timeout) {
  sockaddr_un sun{};
  if (path.empty() || path.size() >= sizeof sun.sun_path) return "unix path empty or too long";
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_text("socket");
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0) {
      adopt(fd);
      return "";
    }
    const int e = errno;
    ::close(fd);
    if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN) {
      errno = e;
      return errno_text(("connect " + path).c_str());
    }
    const int left = time_left_ms(deadline);
    if (left == 0) return "connect " + path + ": timed out (" + std::strerror(e) + ")";
    // Retry back-off while the listener is not there yet (bounded by the deadline).
    poll(nullptr, 0, std::min(left, 10));
  }
}

void VhostUserFrontend::adopt(int fd) {
  close();
  sock_ = fd;
  const int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

std::string VhostUserFrontend::listen(const std::string& path) {
  sockaddr_un sun{};
  if (path.empty() || path.size() >= sizeof sun.sun_path) return "unix path empty or too long";
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  if (listen_fd_ >= 0) return "already listening";
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno_text("socket");
  ::unlink(path.c_str());
  if (bind(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0 || ::listen(fd, 4) != 0) {
    std::string e = errno_text(("listen " + path).c_str());
    ::close(fd);
    return e;
  }
  listen_fd_ = fd;
  listen_path_ = path;
  return "";
}

std::string VhostUserFrontend::accept(Millis timeout) {
  if (listen_fd_ < 0) return "not listening";
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      adopt(fd);
      return "";
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return errno_text("accept");
    const int left = time_left_ms(deadline);
    if (left == 0) return "accept: timed out";
    pollfd p{listen_fd_, POLLIN, 0};
    poll(&p, 1, left);
  }
}

void VhostUserFrontend::close() {
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
}

// ---- Messages ----------------------------------------------------------------------------------

std::string VhostUserFrontend::send_message(uint32_t request, std::span<const uint8_t> payload,
                                            std::span<const int> fds, uint32_t extra_flags) {
  if (sock_ < 0) return std::string(request_text(request)) + ": not connected";
  std::vector<uint8_t> wire(vu::kHeaderSize + payload.size());
  put32(wire.data(), request);
  put32(wire.data() + 4, vu::kFlagVersion | extra_flags);
  put32(wire.data() + 8, static_cast<uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(wire.data() + vu::kHeaderSize, payload.data(), payload.size());
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<size_t>(fds.size(), 1)));
  const auto deadline = Clock::now() + options_.reply_timeout;
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < wire.size()) {
    iovec iov{wire.data() + sent, wire.size() - sent};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (!fds_sent) {
      mh.msg_control = control.data();
      mh.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = sendmsg(sock_, &mh, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      fds_sent = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const int left = time_left_ms(deadline);
      if (left == 0) return std::string(request_text(request)) + ": send timed out";
      pollfd p{sock_, POLLOUT, 0};
      poll(&p, 1, left);
      continue;
    }
    return errno_text(request_text(request));
  }
  ++counters_.messages_sent;
  return "";
}

VuReply VhostUserFrontend::read_reply(Millis timeout) {
  VuReply r;
  if (sock_ < 0) {
    r.error = "not connected";
    return r;
  }
  const auto deadline = Clock::now() + timeout;
  // Reads exactly out.size() bytes before the deadline.
  auto read_exact = [&](std::span<uint8_t> out) -> std::string {
    size_t got = 0;
    while (got < out.size()) {
      const ssize_t n = recv(sock_, out.data() + got, out.size() - got, MSG_DONTWAIT);
      if (n > 0) {
        got += static_cast<size_t>(n);
        continue;
      }
      if (n == 0) return got == 0 ? "connection closed" : "connection closed mid-reply";
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return errno_text("recv");
      const int left = time_left_ms(deadline);
      if (left == 0) return "timed out waiting for a reply";
      pollfd p{sock_, POLLIN, 0};
      poll(&p, 1, left);
    }
    return "";
  };
  uint8_t head[vu::kHeaderSize];
  r.error = read_exact(head);
  if (!r.ok()) return r;
  r.request = get32(head);
  r.flags = get32(head + 4);
  const uint32_t size = get32(head + 8);
  if (size > vu::kMaxReplyPayload) {
    r.error = "reply payload size " + std::to_string(size) + " too large";
    return r;
  }
  r.payload.resize(size);
  r.error = read_exact(r.payload);
  return r;
}

std::string VhostUserFrontend::request_u64(uint32_t request, uint64_t* value) {
  std::string e = send_message(request, {});
  if (!e.empty()) return e;
  const VuReply r = read_reply(options_.reply_timeout);
  e = check_reply(r, request);
  if (!e.empty()) return e;
  if (!r.u64()) {
    return std::string(request_text(request)) + ": reply payload of " +
           std::to_string(r.payload.size()) + " bytes, want 8";
  }
  *value = *r.u64();
  return "";
}

std::string VhostUserFrontend::send_acked(uint32_t request, std::span<const uint8_t> payload,
                                          std::span<const int> fds, bool need_reply) {
  std::string e = send_message(request, payload, fds, need_reply ? vu::kFlagNeedReply : 0);
  if (!e.empty() || !need_reply) return e;
  const VuReply r = read_reply(options_.reply_timeout);
  e = check_reply(r, request);
  if (!e.empty()) return e;
  if (!r.u64()) return std::string(request_text(request)) + ": ack is not a u64";
  if (*r.u64() != 0) return std::string(request_text(request)) + ": back-end said it failed";
  return "";
}

std::string VhostUserFrontend::send_u64(uint32_t request, uint64_t value,
                                        std::span<const int> fds) {
  uint8_t p[8];
  put64(p, value);
  const bool ack = options_.need_reply_all && (protocol_ & vu::kPReplyAck) != 0;
  return send_acked(request, p, fds, ack);
}

std::string VhostUserFrontend::send_state(uint32_t request, uint32_t index, uint32_t num) {
  uint8_t p[8];
  put32(p, index);
  put32(p + 4, num);
  const bool ack = options_.need_reply_all && (protocol_ & vu::kPReplyAck) != 0;
  return send_acked(request, p, {}, ack);
}

// ---- Control plane -----------------------------------------------------------------------------

std::string VhostUserFrontend::handshake() {
  std::string e = request_u64(vu::kGetFeatures, &offered_features_);
  if (!e.empty()) return e;
  protocol_ = 0;
  offered_protocol_ = 0;
  const bool use_protocol =
      (offered_features_ & options_.wanted_features & vu::kFProtocolFeatures) != 0;
  if (use_protocol) {
    e = request_u64(vu::kGetProtocolFeatures, &offered_protocol_);
    if (!e.empty()) return e;
    const uint64_t want = offered_protocol_ & options_.wanted_protocol_features;
    uint8_t p[8];
    put64(p, want);
    e = send_message(vu::kSetProtocolFeatures, p);
    if (!e.empty()) return e;
    protocol_ = want;
  }
  const bool ack = options_.need_reply_all && (protocol_ & vu::kPReplyAck) != 0;
  e = send_acked(vu::kSetOwner, {}, {}, ack);
  if (!e.empty()) return e;
  uint64_t again = 0;
  e = request_u64(vu::kGetFeatures, &again);
  if (!e.empty()) return e;
  if (again != offered_features_) return "GET_FEATURES answered differently the second time";
  for (uint32_t q = 0; q < 2; ++q) {
    const int call[] = {rings_[q].call};
    const int err[] = {rings_[q].err};
    e = send_u64(vu::kSetVringCall, q, call);
    if (e.empty()) e = send_u64(vu::kSetVringErr, q, err);
    if (!e.empty()) return e;
  }
  if (use_protocol) {
    for (uint32_t q = 0; q < 2; ++q) {
      e = send_state(vu::kSetVringEnable, q, 1);
      if (!e.empty()) return e;
    }
  }
  return "";
}

void VhostUserFrontend::lay_out_rings() {
  const uint32_t n = options_.queue_size;
  for (Ring& r : rings_) {
    std::memset(r.desc_host, 0, 16 * n);
    std::memset(r.avail_host, 0, 4 + 2 * n + 2);
    std::memset(r.used_host, 0, 4 + 8 * n + 2);
    r.avail_idx = r.published_idx = r.last_used = 0;
  }
  tx_free_.clear();
  for (uint32_t i = n; i-- > 0;) tx_free_.push_back(static_cast<uint16_t>(i));
  std::fill(tx_desc_count_.begin(), tx_desc_count_.end(), 0);
  std::fill(rx_posted_.begin(), rx_posted_.end(), 0);
  tx_in_flight_ = 0;
}

std::string VhostUserFrontend::start() {
  if (sock_ < 0) return "start: not connected";
  // PROTOCOL_FEATURES stays in when both sides have it, as QEMU keeps it (vhost-user.rst).
  features_ = offered_features_ & options_.wanted_features;
  std::string e = send_u64(vu::kSetFeatures, features_);
  if (!e.empty()) return e;

  lay_out_rings();
  std::vector<uint8_t> table(8 + 32 * regions_.size(), 0);
  put32(table.data(), static_cast<uint32_t>(regions_.size()));
  std::vector<int> fds;
  for (size_t i = 0; i < regions_.size(); ++i) {
    uint8_t* p = table.data() + 8 + 32 * i;
    const Region& r = regions_[i];
    put64(p, r.gpa);
    put64(p + 8, r.size);
    put64(p + 16, reinterpret_cast<uint64_t>(r.host));
    put64(p + 24, r.mmap_offset);
    fds.push_back(r.fd);
  }
  e = send_acked(vu::kSetMemTable, table, fds, (protocol_ & vu::kPReplyAck) != 0);
  if (!e.empty()) return e;

  for (uint32_t q = 0; q < 2; ++q) {
    const Ring& r = rings_[q];
    e = send_state(vu::kSetVringNum, q, options_.queue_size);
    if (e.empty()) e = send_state(vu::kSetVringBase, q, 0);
    if (e.empty()) {
      uint8_t a[40] = {};
      put32(a, q);
      put64(a + 8, reinterpret_cast<uint64_t>(r.desc_host));
      put64(a + 16, reinterpret_cast<uint64_t>(r.used_host));
      put64(a + 24, reinterpret_cast<uint64_t>(r.avail_host));
      const bool ack = options_.need_reply_all && (protocol_ & vu::kPReplyAck) != 0;
      e = send_acked(vu::kSetVringAddr, a, {}, ack);
    }
    const int kick[] = {r.kick};
    const int call[] = {r.call};
    if (e.empty()) e = send_u64(vu::kSetVringKick, q, kick);
    if (e.empty()) e = send_u64(vu::kSetVringCall, q, call);
    if (!e.empty()) return e;
  }
  started_ = true;
  for (uint32_t i = 0; i < rx_count_; ++i) post_rx(static_cast<uint16_t>(i));
  publish(vu::kRxQueue);
  return "";
}

std::string VhostUserFrontend::stop(std::array<uint32_t, 2>* bases) {
  for (uint32_t q = 0; q < 2; ++q) {
    uint8_t p[8];
    put32(p, q);
    put32(p + 4, 0);
    std::string e = send_message(vu::kGetVringBase, p);
    if (!e.empty()) return e;
    const VuReply r = read_reply(options_.reply_timeout);
    e = check_reply(r, vu::kGetVringBase);
    if (!e.empty()) return e;
    if (r.payload.size() != 8)
      return "GET_VRING_BASE: reply payload of " + std::to_string(r.payload.size()) + " bytes";
    if (get32(r.payload.data()) != q)
      return "GET_VRING_BASE: reply for vring " + std::to_string(get32(r.payload.data()));
    if (bases != nullptr) (*bases)[q] = get32(r.payload.data() + 4);
  }
  started_ = false;
  return "";
}

// ---- Rings -------------------------------------------------------------------------------------

void VhostUserFrontend::write_desc(uint32_t q, uint16_t index, uint64_t addr, uint32_t len,
                                   uint16_t flags, uint16_t next) {
  uint8_t* d = rings_[q].desc_host + 16 * uint64_t{index % options_.queue_size};
  put64(d, addr);
  put32(d + 8, len);
  put16(d + 12, flags);
  put16(d + 14, next);
}

void VhostUserFrontend::break_tx(HostileTx kind) {
  constexpr uint32_t kTx = vu::kTxQueue;
  // Two descriptor indices no chain in flight uses (when there are two free ones).
  const uint16_t a = tx_free_.empty() ? 0 : tx_free_.back();
  const uint16_t b = tx_free_.size() < 2 ? static_cast<uint16_t>((a + 1) % options_.queue_size)
                                         : tx_free_[tx_free_.size() - 2];
  const uint64_t slot = tx_pool_ + uint64_t{a} * options_.tx_slot_size;
  switch (kind) {
    case HostileTx::kOutsideMemory:
      write_desc(kTx, a, options_.guest_phys_base + options_.memory_size, 64, 0, 0);
      push_avail(kTx, a);
      break;
    case HostileTx::kLoop:
      write_desc(kTx, a, slot, 0, vu::kDescNext, b);
      write_desc(kTx, b, slot, 0, vu::kDescNext, a);
      push_avail(kTx, a);
      break;
    case HostileTx::kIndirectBadLength:
      write_desc(kTx, a, slot, 17, vu::kDescIndirect, 0);
      push_avail(kTx, a);
      break;
    case HostileTx::kAvailIdxTooFar:
      set_avail_idx(kTx, static_cast<uint16_t>(rings_[kTx].avail_idx + options_.queue_size + 1));
      break;
  }
  kick(kTx);
}

void VhostUserFrontend::push_avail(uint32_t q, uint16_t head) {
  Ring& r = rings_[q];
  put16(r.avail_host + 4 + 2 * uint64_t{r.avail_idx % options_.queue_size}, head);
  ++r.avail_idx;
  r.published_idx = r.avail_idx;
  store_release(r.avail_host + 2, r.avail_idx);
}

void VhostUserFrontend::set_avail_idx(uint32_t q, uint16_t idx) {
  rings_[q].avail_idx = rings_[q].published_idx = idx;
  store_release(rings_[q].avail_host + 2, idx);
}

uint16_t VhostUserFrontend::avail_idx(uint32_t q) const { return rings_[q].avail_idx; }

bool VhostUserFrontend::shrink_memory() {
  bool ok = true;
  for (const int fd : memfds_) ok = ::ftruncate(fd, 0) == 0 && ok;
  return ok;
}

void VhostUserFrontend::kick(uint32_t q) {
  const uint64_t one = 1;
  if (write(rings_[q].kick, &one, sizeof one) == sizeof one) ++counters_.kicks;
}

uint16_t VhostUserFrontend::used_idx(uint32_t q) const {
  return load_acquire(rings_[q].used_host + 2);
}

void VhostUserFrontend::set_used_event(uint32_t q) {
  // used_event: the avail ring's last field (2.7.6); the fence orders it before our next look
  // at used->idx (Linux's virtio_store_mb).
  const Ring& r = rings_[q];
  std::atomic_ref<uint16_t>(
      *reinterpret_cast<uint16_t*>(r.avail_host + 4 + 2 * uint64_t{options_.queue_size}))
      .store(r.last_used, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool VhostUserFrontend::publish(uint32_t q) {
  Ring& r = rings_[q];
  const uint16_t old_idx = r.published_idx;
  const uint16_t new_idx = r.avail_idx;
  if (old_idx == new_idx) return false;
  store_release(r.avail_host + 2, new_idx);
  r.published_idx = new_idx;
  // The device's view must be read after our store is visible (2.7.13.4).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool want;
  if ((features_ & vu::kFEventIdx) != 0) {
    const uint16_t avail_event = load_acquire(r.used_host + 4 + 8 * uint64_t{options_.queue_size});
    want = need_event(avail_event, new_idx, old_idx);
  } else {
    want = (load_acquire(r.used_host) & vu::kUsedNoNotify) == 0;
  }
  if (!want) {
    ++counters_.kicks_suppressed;
    return false;
  }
  kick(q);
  return true;
}

bool VhostUserFrontend::read_eventfd(int fd) {
  uint64_t v = 0;
  return read(fd, &v, sizeof v) == sizeof v;
}

uint32_t VhostUserFrontend::drain_calls() {
  uint32_t got = 0;
  for (Ring& r : rings_) {
    if (read_eventfd(r.call)) {
      ++got;
      ++counters_.interrupts;
    }
  }
  return got;
}

bool VhostUserFrontend::vring_error_signalled(uint32_t q) { return read_eventfd(rings_[q].err); }

// ---- TX ----------------------------------------------------------------------------------------

std::string VhostUserFrontend::queue_tx(std::span<const uint8_t> frame,
                                        const SendOptions& options) {
  if (!started_) return "send: device not started";
  const uint32_t hdr = header_size();
  if (frame.size() > options_.tx_slot_size - kIndirectTableSize - hdr)
    return "send: frame of " + std::to_string(frame.size()) + " bytes larger than a tx slot";
  const size_t need = options.layout == TxLayout::kHeaderThenFrame ? 2 : 1;
  if (tx_free_.size() < need) reclaim_tx();
  if (tx_free_.size() < need) return "send: no free tx descriptor";
  const uint16_t head = tx_free_.back();
  tx_free_.pop_back();
  const uint64_t slot = tx_pool_ + uint64_t{head} * options_.tx_slot_size;
  const uint64_t hdr_at = slot + kIndirectTableSize;
  const uint64_t frame_at = hdr_at + hdr;
  write_guest(hdr_at, std::span<const uint8_t>(options.header.data(), hdr));
  write_guest(frame_at, frame);
  last_tx_frame_gpa_ = frame_at;
  const auto frame_len = static_cast<uint32_t>(frame.size());
  constexpr uint32_t kTx = vu::kTxQueue;
  switch (options.layout) {
    case TxLayout::kOneDescriptor:
      write_desc(kTx, head, hdr_at, hdr + frame_len, 0, 0);
      tx_desc_count_[head] = 1;
      break;
    case TxLayout::kHeaderThenFrame: {
      const uint16_t second = tx_free_.back();
      tx_free_.pop_back();
      write_desc(kTx, head, hdr_at, hdr, vu::kDescNext, second);
      write_desc(kTx, second, frame_at, frame_len, 0, 0);
      tx_desc_count_[head] = 2;
      tx_second_[head] = second;
      break;
    }
    case TxLayout::kIndirect: {
      uint8_t table[kIndirectTableSize] = {};
      put64(table, hdr_at);
      put32(table + 8, hdr);
      put16(table + 12, vu::kDescNext);
      put16(table + 14, 1);
      put64(table + 16, frame_at);
      put32(table + 24, frame_len);
      write_guest(slot, table);
      write_desc(kTx, head, slot, kIndirectTableSize, vu::kDescIndirect, 0);
      tx_desc_count_[head] = 1;
      break;
    }
  }
  Ring& r = rings_[kTx];
  put16(r.avail_host + 4 + 2 * uint64_t{r.avail_idx % options_.queue_size}, head);
  ++r.avail_idx;
  ++tx_in_flight_;
  ++counters_.frames_sent;
  return "";
}

bool VhostUserFrontend::flush_tx() { return publish(vu::kTxQueue); }

std::string VhostUserFrontend::send(std::span<const uint8_t> frame, const SendOptions& options) {
  std::string e = queue_tx(frame, options);
  if (e.empty()) flush_tx();
  return e;
}

uint32_t VhostUserFrontend::reclaim_tx() {
  Ring& r = rings_[vu::kTxQueue];
  if (read_eventfd(r.call)) ++counters_.interrupts;
  uint32_t got = 0;
  const uint16_t end = used_idx(vu::kTxQueue);
  // At most queue_size entries can be new; more means a broken device: stop there.
  for (uint32_t i = 0; r.last_used != end && i < options_.queue_size; ++i) {
    const uint8_t* e = r.used_host + 4 + 8 * uint64_t{r.last_used % options_.queue_size};
    const uint32_t id = get32(e);
    ++r.last_used;
    if (id >= options_.queue_size || tx_desc_count_[id] == 0) continue;  // not ours: ignore
    tx_free_.push_back(static_cast<uint16_t>(id));
    if (tx_desc_count_[id] == 2) tx_free_.push_back(tx_second_[id]);
    tx_desc_count_[id] = 0;
    --tx_in_flight_;
    ++got;
  }
  counters_.tx_reclaimed += got;
  set_used_event(vu::kTxQueue);
  return got;
}

// ---- RX ----------------------------------------------------------------------------------------

void VhostUserFrontend::post_rx(uint16_t buffer) {
  Ring& r = rings_[vu::kRxQueue];
  write_desc(vu::kRxQueue, buffer, rx_pool_ + uint64_t{buffer} * options_.rx_buffer_size,
             options_.rx_buffer_size, vu::kDescWrite, 0);
  put16(r.avail_host + 4 + 2 * uint64_t{r.avail_idx % options_.queue_size}, buffer);
  ++r.avail_idx;
  rx_posted_[buffer] = 1;
}

uint16_t VhostUserFrontend::rx_pending() const {
  return static_cast<uint16_t>(used_idx(vu::kRxQueue) - rings_[vu::kRxQueue].last_used);
}

VhostUserFrontend::Received VhostUserFrontend::receive(Millis timeout) {
  Received out;
  const auto deadline = Clock::now() + timeout;
  Ring& r = rings_[vu::kRxQueue];
  auto fail = [&](std::string why) {
    out.status = Received::Status::kError;
    out.error = std::move(why);
    return out;
  };
  if (!started_) return fail("receive: device not started");
  const uint32_t hdr = header_size();
  const uint32_t n = options_.queue_size;
  const bool mergeable = (features_ & vu::kFMrgRxbuf) != 0;
  for (;;) {
    const uint16_t pending = rx_pending();
    if (pending > n) return fail("used ring: idx more than the queue size ahead");
    uint16_t want = 1;
    if (pending > 0) {
      const uint8_t* e = r.used_host + 4 + 8 * uint64_t{r.last_used % n};
      const uint32_t id = get32(e);
      const uint32_t len = get32(e + 4);
      if (id >= rx_count_ || rx_posted_[id] == 0)
        return fail("used ring: id " + std::to_string(id) + " is not a posted rx buffer");
      if (len < hdr || len > options_.rx_buffer_size)
        return fail("used ring: length " + std::to_string(len) + " outside the buffer");
      if (mergeable) {
        uint8_t nb[2];
        read_guest(rx_pool_ + uint64_t{id} * options_.rx_buffer_size + 10, nb);
        want = static_cast<uint16_t>(nb[0] | (nb[1] << 8));
        if (want == 0 || want > rx_count_)
          return fail("num_buffers " + std::to_string(want) + " in the header");
      }
    }
    if (pending > 0 && pending >= want) break;
    const int left = time_left_ms(deadline);
    if (left == 0) {
      if (pending > 0)
        return fail("only " + std::to_string(pending) + " of " + std::to_string(want) +
                    " buffers of a frame arrived");
      out.status = Received::Status::kTimeout;
      out.error = "timed out waiting for a frame";
      return out;
    }
    pollfd p{r.call, POLLIN, 0};
    if (poll(&p, 1, std::min<int>(left, static_cast<int>(kRecheckSlice.count()))) > 0 &&
        read_eventfd(r.call))
      ++counters_.interrupts;
  }
  // The used entries of one frame: copy out, then give the buffers back.
  uint16_t buffers = 0;
  const uint16_t first = r.last_used;
  const uint16_t count = [&] {
    if (!mergeable) return uint16_t{1};
    uint8_t nb[2];
    const uint32_t id = get32(r.used_host + 4 + 8 * uint64_t{first % n});
    read_guest(rx_pool_ + uint64_t{id} * options_.rx_buffer_size + 10, nb);
    return static_cast<uint16_t>(nb[0] | (nb[1] << 8));
  }();
  for (uint16_t i = 0; i < count; ++i) {
    const uint8_t* e = r.used_host + 4 + 8 * uint64_t{static_cast<uint16_t>(first + i) % n};
    const uint32_t id = get32(e);
    const uint32_t len = get32(e + 4);
    if (id >= rx_count_ || rx_posted_[id] == 0)
      return fail("used ring: id " + std::to_string(id) + " is not a posted rx buffer");
    if (len > options_.rx_buffer_size || (i == 0 && len < hdr))
      return fail("used ring: length " + std::to_string(len) + " outside the buffer");
    const uint64_t at = rx_pool_ + uint64_t{id} * options_.rx_buffer_size;
    uint32_t skip = 0;
    if (i == 0) {
      read_guest(at, std::span<uint8_t>(out.header.data(), hdr));
      skip = hdr;
    }
    const size_t old = out.frame.size();
    out.frame.resize(old + (len - skip));
    read_guest(at + skip, std::span<uint8_t>(out.frame.data() + old, len - skip));
    rx_posted_[id] = 0;
    ++buffers;
  }
  r.last_used = static_cast<uint16_t>(first + count);
  for (uint16_t i = 0; i < count; ++i) {
    const uint32_t id = get32(r.used_host + 4 + 8 * uint64_t{static_cast<uint16_t>(first + i) % n});
    post_rx(static_cast<uint16_t>(id));
  }
  set_used_event(vu::kRxQueue);
  publish(vu::kRxQueue);
  // The interrupt that announced these entries (or later ones: the used ring is always looked
  // at before waiting, so no frame waits on a drained signal).
  if (read_eventfd(r.call)) ++counters_.interrupts;
  out.status = Received::Status::kFrame;
  out.buffers = buffers;
  ++counters_.frames_received;
  return out;
}

}  // namespace qswitch::test_support
