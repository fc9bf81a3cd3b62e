// tools/qswitch-bench/bench_port.cc: the per-port send/receive loops (see bench_port.h).
#include "tools/qswitch-bench/bench_port.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#if QSWITCH_BENCH_HAVE_VDE
extern "C" {  // libvdeplug.h has no extern "C" of its own
#include <libvdeplug.h>
}
#endif

namespace qswitch::tools {

namespace {

constexpr size_t kTxChunkSize = size_t{256} * 1024;
constexpr size_t kRxReadSize = size_t{1024} * 1024;
constexpr uint32_t kMaxWireSize = 4 + kBenchMaxFrameSize;
constexpr int kIdlePollMs = 5;
constexpr int kHelloTimeoutMs = 2000;
constexpr int kVdeBurst = 64;
constexpr int kRxReadsPerTurn = 8;

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

// Datagram errors: ECONNREFUSED means no socket at the switch's address (unix), or an ICMP port
// unreachable came back (udp): say so rather than just "Connection refused".
std::string dgram_error(const char* call, int err) {
  std::string text = std::string(call) + ": " + std::strerror(err);
  if (err == ECONNREFUSED) text += " (no socket is bound at the switch's address)";
  return text;
}

}  // namespace

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

BenchPort::BenchPort(const PortPlan& plan, BenchLink link, RunShared& shared)
    : plan_(plan),
      link_(std::move(link)),
      shared_(shared),
      tx_pattern_(plan.size - tag_size(plan.vlan)),
      rx_seq_(static_cast<uint32_t>(plan.rx_from.size())),
      wire_size_(4 + plan.size) {
  // What arrives from each sender: one body pattern per distinct untagged size first, then the
  // views that point into them (rx_patterns_ does not change after this).
  const uint32_t port_count = static_cast<uint32_t>(plan_.rx_from.size());
  auto sends_here = [&](uint32_t j) { return j < 64 && ((plan_.senders >> j) & 1) != 0; };
  std::vector<uint32_t> pattern_sizes;  // rx_patterns_[i] is built for pattern_sizes[i]
  uint32_t max_rx_size = 0;
  for (uint32_t j = 0; j < port_count; ++j) {
    if (!sends_here(j)) continue;
    const RxFrom& from = plan_.rx_from[j];
    max_rx_size = std::max(max_rx_size, from.size);
    if (std::find(pattern_sizes.begin(), pattern_sizes.end(), from.sent_size) ==
        pattern_sizes.end()) {
      pattern_sizes.push_back(from.sent_size);
    }
  }
  rx_patterns_.reserve(pattern_sizes.size());
  for (uint32_t sent_size : pattern_sizes) rx_patterns_.emplace_back(sent_size);
  rx_views_.assign(port_count, SenderView{});
  for (uint32_t j = 0; j < port_count; ++j) {
    if (!sends_here(j)) continue;
    const RxFrom& from = plan_.rx_from[j];
    size_t p = std::find(pattern_sizes.begin(), pattern_sizes.end(), from.sent_size) -
               pattern_sizes.begin();
    rx_views_[j] = SenderView{from.size, from.sent_size, &rx_patterns_[p]};
  }
  view_.own = port_mac(plan_.index);
  view_.vlan = plan_.vlan;
  view_.senders = plan_.senders;
  view_.from = rx_views_;

  for (uint32_t to : plan_.send_to) tx_macs_.push_back(port_mac(to));
  next_tx_seq_.assign(plan_.send_to.size(), 0);
  const Mac first_dst = tx_macs_.empty() ? kBroadcastMac : tx_macs_[0];

  if (link_.kind() == BenchLink::Kind::kStream) {
    size_t slots = std::max<size_t>(4, kTxChunkSize / wire_size_);
    if (plan_.sends()) {
      tx_buf_.assign(slots * wire_size_, 0);
      for (size_t i = 0; i < slots; ++i) {
        uint8_t* w = tx_buf_.data() + i * wire_size_;
        put_be32(w, plan_.size);
        fill_frame_header(w + 4, first_dst, plan_.index, FrameKind::kData, plan_.vlan);
      }
    }
    rx_buf_.assign(kRxReadSize + kMaxWireSize, 0);
  } else if (link_.kind() == BenchLink::Kind::kDgram) {
    if (plan_.sends()) {
      tx_buf_.assign(size_t{kDgramBurst} * plan_.size, 0);
      tx_msgs_.assign(kDgramBurst, mmsghdr{});
      tx_iov_.assign(kDgramBurst, iovec{});
      for (unsigned i = 0; i < kDgramBurst; ++i) {
        uint8_t* f = tx_buf_.data() + size_t{i} * plan_.size;
        fill_frame_header(f, first_dst, plan_.index, FrameKind::kData, plan_.vlan);
        tx_iov_[i] = iovec{f, plan_.size};
        tx_msgs_[i].msg_hdr.msg_iov = &tx_iov_[i];
        tx_msgs_[i].msg_hdr.msg_iovlen = 1;
      }
    }
    rx_slot_size_ = std::max({plan_.size, max_rx_size, kBenchMinFrameSize}) + 64;
    rx_buf_.assign(size_t{kDgramBurst} * rx_slot_size_, 0);
    rx_msgs_.assign(kDgramBurst, mmsghdr{});
    rx_iov_.assign(kDgramBurst, iovec{});
    for (unsigned i = 0; i < kDgramBurst; ++i) {
      rx_iov_[i] = iovec{rx_buf_.data() + size_t{i} * rx_slot_size_, rx_slot_size_};
      rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
      rx_msgs_[i].msg_hdr.msg_iovlen = 1;
    }
  } else {
    if (plan_.sends()) {
      tx_buf_.assign(plan_.size, 0);
      fill_frame_header(tx_buf_.data(), first_dst, plan_.index, FrameKind::kData, plan_.vlan);
    }
    rx_buf_.assign(kMaxWireSize, 0);
  }
}

void BenchPort::fail(std::string why) {
  if (result_.error.empty()) result_.error = std::move(why);
  shared_.failed.store(true, std::memory_order_release);
}

void BenchPort::note_phase(Phase to) {
  for (int p = noted_ + 1; p <= static_cast<int>(to) && p < kPhaseCount; ++p) {
    result_.at_phase[p] = totals_;
    noted_ = p;
  }
  count_foreign_ = to >= Phase::kMeasure;
}

void BenchPort::run() {
  switch (link_.kind()) {
    case BenchLink::Kind::kVde:
      run_vde();
      break;
    case BenchLink::Kind::kDgram:
      run_dgram();
      break;
    default:
      run_stream();
      break;
  }
  // A port that failed early never saw the later phases: nothing happened on it since.
  note_phase(Phase::kStop);
  result_.final = totals_;
  result_.gap_lost = rx_seq_.gap_lost();
  result_.reordered = rx_seq_.reordered();
  result_.rx_by_sender = rx_seq_.received();
  tx_done_.store(true, std::memory_order_release);
}

void BenchPort::fill_next_frame(uint8_t* frame) {
  const size_t d = tx_turn_;
  if (tx_macs_.size() > 1) set_frame_destination(frame, tx_macs_[d]);
  fill_frame_data(frame, plan_.size, plan_.index, next_tx_seq_[d]++, tx_pattern_, plan_.vlan);
  tx_turn_ = d + 1 == tx_macs_.size() ? 0 : d + 1;
}

void BenchPort::refill_tx() {
  size_t slots = tx_buf_.size() / wire_size_;
  for (size_t i = 0; i < slots; ++i) fill_next_frame(tx_buf_.data() + i * wire_size_ + 4);
  tx_len_ = tx_buf_.size();
  tx_off_ = 0;
}

void BenchPort::on_frame(const uint8_t* frame, uint32_t size) {
  FrameCheck check = classify_frame(frame, size, view_);
  switch (check.verdict) {
    case Verdict::kData:
      ++totals_.rx_frames;
      totals_.rx_bytes += size;
      rx_seq_.on_data(check.sender, check.seq);
      return;
    case Verdict::kHello:
      ++result_.hellos;
      return;
    case Verdict::kForeign:
      if (count_foreign_) ++result_.foreign;
      return;
    case Verdict::kCorrupt:
      ++result_.corrupt;
      return;
  }
}

bool BenchPort::parse_stream() {
  const uint8_t* p = rx_buf_.data();
  size_t avail = rx_fill_;
  size_t pos = 0;
  while (avail - pos >= 4) {
    uint32_t len = get_be32(p + pos);
    if (len < 14 || len > kBenchMaxFrameSize) {
      fail("protocol error: frame length " + std::to_string(len) + " outside 14..65549");
      return false;
    }
    if (avail - pos < 4 + size_t{len}) break;
    on_frame(p + pos + 4, len);
    pos += 4 + size_t{len};
  }
  if (pos > 0) {
    std::memmove(rx_buf_.data(), rx_buf_.data() + pos, avail - pos);
    rx_fill_ = avail - pos;
  }
  return true;
}

bool BenchPort::send_hello_stream() {
  uint8_t wire[4 + kBenchMinFrameSize] = {};
  put_be32(wire, kBenchMinFrameSize);
  fill_frame_header(wire + 4, kBroadcastMac, plan_.index, FrameKind::kHello, plan_.vlan);
  BodyPattern hello_pattern(kBenchMinFrameSize - tag_size(plan_.vlan));
  fill_frame_data(wire + 4, kBenchMinFrameSize, plan_.index, 0, hello_pattern, plan_.vlan);
  size_t off = 0;
  int64_t deadline = monotonic_ns() + int64_t{kHelloTimeoutMs} * 1'000'000;
  while (off < sizeof wire) {
    ssize_t n = send(link_.fd(), wire + off, sizeof wire - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EINTR && !would_block(errno)) {
      fail(std::string("sending hello: ") + std::strerror(errno));
      return false;
    }
    if (monotonic_ns() > deadline) {
      fail("sending hello: socket not writable for 2 s");
      return false;
    }
    pollfd pfd{link_.fd(), POLLOUT, 0};
    poll(&pfd, 1, 10);
  }
  return true;
}

bool BenchPort::next_phase(Phase& ph) {
  ph = shared_.phase.load(std::memory_order_acquire);
  if (static_cast<int>(ph) > noted_) note_phase(ph);
  return ph != Phase::kStop && !shared_.failed.load(std::memory_order_relaxed);
}

void BenchPort::run_stream() {
  if (!send_hello_stream()) return;
  hello_sent_.store(true, std::memory_order_release);
  const int fd = link_.fd();
  while (true) {
    Phase ph;
    if (!next_phase(ph)) break;

    bool progress = false;
    short events = POLLIN;
    if (plan_.sends()) {
      bool pending = tx_off_ < tx_len_;
      bool sending =
          ph == Phase::kWarmup || ph == Phase::kMeasure || (ph == Phase::kDrain && pending);
      if (ph == Phase::kDrain && !pending) tx_done_.store(true, std::memory_order_release);
      if (sending) {
        if (!pending) refill_tx();
        ssize_t n =
            send(fd, tx_buf_.data() + tx_off_, tx_len_ - tx_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          tx_off_ += static_cast<size_t>(n);
          tx_bytes_ += static_cast<uint64_t>(n);
          totals_.tx_frames = tx_bytes_ / wire_size_;
          progress = true;
        } else if (n < 0 && would_block(errno)) {
          events |= POLLOUT;
        } else if (n < 0 && errno != EINTR) {
          fail(std::string("send: ") + std::strerror(errno));
          break;
        }
      }
    }

    // Receive before sending more, until the socket is empty (at most kRxReadsPerTurn reads):
    // a port that also sends must not let its input back up into the switch.
    bool broken = false;
    for (int k = 0; k < kRxReadsPerTurn; ++k) {
      ssize_t n = recv(fd, rx_buf_.data() + rx_fill_, rx_buf_.size() - rx_fill_, MSG_DONTWAIT);
      if (n > 0) {
        rx_fill_ += static_cast<size_t>(n);
        last_rx_ns_.store(monotonic_ns(), std::memory_order_relaxed);
        if (!parse_stream()) {
          broken = true;
          break;
        }
        progress = true;
        continue;
      }
      if (n == 0) {
        fail("peer closed the connection");
        broken = true;
      } else if (errno == EINTR) {
        continue;
      } else if (!would_block(errno)) {
        fail(std::string("recv: ") + std::strerror(errno));
        broken = true;
      }
      break;
    }
    if (broken) break;

    if (!progress) {
      pollfd pfd{fd, events, 0};
      poll(&pfd, 1, kIdlePollMs);
    }
  }
}

// The hello broadcast on a link that sends one frame per call (datagram socket, VDE):
// `send_one(frame, size)` is the send; `error_text(errno)` says what failed.
template <typename Send, typename ErrorText>
bool BenchPort::send_hello_frame(Send send_one, ErrorText error_text, const char* socket_kind) {
  uint8_t frame[kBenchMinFrameSize] = {};
  fill_frame_header(frame, kBroadcastMac, plan_.index, FrameKind::kHello, plan_.vlan);
  BodyPattern hello_pattern(kBenchMinFrameSize - tag_size(plan_.vlan));
  fill_frame_data(frame, kBenchMinFrameSize, plan_.index, 0, hello_pattern, plan_.vlan);
  int64_t deadline = monotonic_ns() + int64_t{kHelloTimeoutMs} * 1'000'000;
  while (true) {
    ssize_t n = send_one(frame, sizeof frame);
    if (n >= 0) return true;
    if (errno != EINTR && !would_block(errno) && errno != ENOBUFS) {
      fail("sending hello: " + error_text(errno));
      return false;
    }
    if (monotonic_ns() > deadline) {
      fail(std::string("sending hello: ") + socket_kind + " socket not writable for 2 s");
      return false;
    }
    pollfd pfd{link_.fd(), POLLOUT, 0};
    poll(&pfd, 1, 10);
  }
}

bool BenchPort::send_hello_dgram() {
  const int fd = link_.fd();
  return send_hello_frame(
      [fd](const uint8_t* f, size_t n) { return send(fd, f, n, MSG_NOSIGNAL | MSG_DONTWAIT); },
      [](int err) { return dgram_error("send", err); }, "datagram");
}

void BenchPort::refill_dgram() {
  for (unsigned i = 0; i < kDgramBurst; ++i) {
    fill_next_frame(tx_buf_.data() + size_t{i} * plan_.size);
  }
  tx_ready_ = kDgramBurst;
  tx_sent_ = 0;
}

int BenchPort::receive_dgram() {
  const int fd = link_.fd();
  int got = 0;
  for (int k = 0; k < kRxReadsPerTurn; ++k) {
    int n = recvmmsg(fd, rx_msgs_.data(), kDgramBurst, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (would_block(errno)) return got;
      fail(dgram_error("recvmmsg", errno));
      return -1;
    }
    got += n;
    last_rx_ns_.store(monotonic_ns(), std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
      const uint8_t* slot = static_cast<const uint8_t*>(rx_iov_[i].iov_base);
      uint32_t len = rx_msgs_[i].msg_len;
      // Longer than the slot: report the slot size, which no bench frame has.
      if ((rx_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) len = rx_slot_size_;
      if (len < 14) {
        if (count_foreign_) ++result_.foreign;
        continue;
      }
      on_frame(slot, len);
    }
    if (static_cast<unsigned>(n) < kDgramBurst) return got;  // the socket is empty
  }
  return got;
}

void BenchPort::run_dgram() {
  if (!send_hello_dgram()) return;
  hello_sent_.store(true, std::memory_order_release);
  const int fd = link_.fd();
  while (true) {
    Phase ph;
    if (!next_phase(ph)) break;

    bool progress = false;
    bool nap = false;  // ENOBUFS: poll() would say writable at once, so wait a little instead
    short events = POLLIN;
    if (plan_.sends() && (ph == Phase::kWarmup || ph == Phase::kMeasure)) {
      if (tx_sent_ == tx_ready_) refill_dgram();
      int n = sendmmsg(fd, tx_msgs_.data() + tx_sent_, tx_ready_ - tx_sent_,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        tx_sent_ += static_cast<unsigned>(n);
        totals_.tx_frames += static_cast<uint64_t>(n);
        progress = true;
      } else if (n < 0 && would_block(errno)) {
        events |= POLLOUT;
      } else if (n < 0 && errno == ENOBUFS) {
        nap = true;
      } else if (n < 0 && errno != EINTR) {
        fail(dgram_error("sendmmsg", errno));
        break;
      }
    } else if (plan_.sends() && ph == Phase::kDrain) {
      tx_done_.store(true, std::memory_order_release);
    }

    int got = receive_dgram();
    if (got < 0) break;
    if (got > 0) progress = true;

    if (!progress) {
      pollfd pfd{fd, nap ? short{POLLIN} : events, 0};
      poll(&pfd, 1, nap ? 1 : kIdlePollMs);
    }
  }
}

#if QSWITCH_BENCH_HAVE_VDE

bool BenchPort::send_hello_vde() {
  VDECONN* conn = link_.vde();
  return send_hello_frame([conn](const uint8_t* f, size_t n) { return vde_send(conn, f, n, 0); },
                          [](int err) { return std::string("vde_send: ") + std::strerror(err); },
                          "vde");
}

void BenchPort::run_vde() {
  if (!send_hello_vde()) return;
  hello_sent_.store(true, std::memory_order_release);
  VDECONN* conn = link_.vde();
  bool frame_ready = false;  // tx_buf_ holds the next frame, filled, not yet sent
  while (true) {
    Phase ph;
    if (!next_phase(ph)) break;

    bool progress = false;
    bool nap = false;  // ENOBUFS: poll() would say writable at once, so wait a little instead
    short events = POLLIN;
    if (plan_.sends() && (ph == Phase::kWarmup || ph == Phase::kMeasure)) {
      for (int k = 0; k < kVdeBurst; ++k) {
        if (!frame_ready) {
          fill_next_frame(tx_buf_.data());
          frame_ready = true;
        }
        ssize_t n = vde_send(conn, tx_buf_.data(), plan_.size, 0);
        if (n >= 0) {
          ++totals_.tx_frames;
          frame_ready = false;
          progress = true;
          continue;
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) {
          events |= POLLOUT;
        } else if (errno == ENOBUFS) {
          nap = true;
        } else {
          fail(std::string("vde_send: ") + std::strerror(errno));
          return;
        }
        break;
      }
    } else if (plan_.sends() && ph == Phase::kDrain) {
      tx_done_.store(true, std::memory_order_release);
    }

    for (int k = 0; k < kVdeBurst; ++k) {
      ssize_t n = vde_recv(conn, rx_buf_.data(), rx_buf_.size(), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (would_block(errno)) break;
        fail(std::string("vde_recv: ") + std::strerror(errno));
        return;
      }
      progress = true;
      last_rx_ns_.store(monotonic_ns(), std::memory_order_relaxed);
      if (n < 14) {
        if (count_foreign_) ++result_.foreign;
        continue;
      }
      on_frame(rx_buf_.data(), static_cast<uint32_t>(n));
    }

    if (!progress) {
      pollfd pfd[2] = {{link_.fd(), nap ? short{POLLIN} : events, 0}, {link_.ctl_fd(), POLLIN, 0}};
      int r = poll(pfd, 2, nap ? 1 : kIdlePollMs);
      if (r > 0 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        char buf[256];
        ssize_t c = recv(link_.ctl_fd(), buf, sizeof buf, MSG_DONTWAIT);
        if (c == 0 || (c < 0 && !would_block(errno) && errno != EINTR)) {
          fail("vde switch closed the control connection");
          return;
        }
      }
    }
  }
}

#else

bool BenchPort::send_hello_vde() {
  fail("built without libvdeplug");
  return false;
}
void BenchPort::run_vde() { send_hello_vde(); }

#endif

}  // namespace qswitch::tools
