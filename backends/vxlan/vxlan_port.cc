// backends/vxlan/vxlan_port.cc: see the header.
#include "backends/vxlan/vxlan_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "backends/runtime/datagram_rx.h"
#include "backends/runtime/datagram_tx.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/polled_port.h"
#include "backends/runtime/socket_error.h"
#include "backends/vxlan/vxlan_header.h"
#include "switch/mac_table.h"

namespace qswitch::backends {

using io::sockaddr_text;

namespace {

constexpr int kReadsPerWake = 4;
constexpr uint32_t kRxBatch = DatagramRx::kSlots;
constexpr unsigned kSendBatch = 64;
constexpr int kMaxSendCallsPerFlush = 64;  // bounds one flush; the rest waits for POLLOUT/next turn
constexpr sw::Millis kExpireIntervalMs = 1000;
constexpr int kSocketBufferSize = 4 << 20;
// EPOLLERR with no error to read, this many times in a row with no datagram in between: the
// port is closed rather than woken for ever.
constexpr int kMaxEmptyErrors = 16;

bool same_ip(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  }
  if (a.ss_family == AF_INET6) {
    return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                       &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, 16) == 0;
  }
  return false;
}

socklen_t family_len(int family) {
  return family == AF_INET ? sizeof(sockaddr_in) : family == AF_INET6 ? sizeof(sockaddr_in6) : 0;
}

class VxlanPort final : public PolledPort {
 public:
  VxlanPort(SwitchLoop& loop, io::Fd fd, const VxlanConfig& config, const sockaddr_storage& bound)
      : PolledPort(loop, std::move(fd), FdKind::kSocket),
        vni_(config.vni),
        bound_(bound),
        remotes_(config.remotes),
        macs_(sw::MacTableConfig{loop.config().fabric.mac.max_entries,
                                 loop.config().fabric.mac.age_ms, 10'000, 0}),
        tx_(loop.config().queue_size) {
    encode_vxlan_header(vni_, tx_header_);
    rx_.set_pressure(&loop.fabric());
    describe_ = "vxlan:vni=" + std::to_string(vni_) + ",local=" + sockaddr_text(bound_);
    set_takes_split(true);  // sent with iovecs (DatagramTx::iov); remotes picked by the head
  }

  const sockaddr_storage& bound() const { return bound_; }
  void set_registration(io::OwnSockets::Registration r) { registration_ = std::move(r); }

  void enqueue(const sw::Frame& frame) override {
    if (closed()) return;
    queue_output(tx_, frame);
  }

  void flush() override;

  std::string describe() const override { return describe_; }
  const char* kind() const override { return "vxlan"; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }

  bool congested(sw::Millis now) override { return output_congested(tx_, now); }
  void release_chunks(const sw::ChunkOwner& pool) override { release_output(tx_, pool); }

  void for_each_extra_counter(const ExtraCounterFn& f) const override {
    f({"vxlan_bad_header", "Datagrams dropped for a VXLAN header without the I flag."},
      bad_header_);
    f({"vxlan_wrong_vni", "Datagrams dropped for a VNI other than the port's."}, wrong_vni_);
    f({"vxlan_unknown_remote", "Datagrams dropped because their sender is not one of the remotes."},
      unknown_remote_);
    f({"vxlan_send_errors", "Datagrams to a remote refused on sending, or later by ICMP."},
      send_errors_);
    f({"vxlan_tx_datagrams",
       "Datagrams sent to the remotes (a flooded frame goes to each remote)."},
      tx_datagrams_);
  }

 private:
  uint64_t drop_output() override {
    registration_.reset();
    partial_sent_ = 0;
    return tx_.clear();
  }
  bool can_read() override { return rx_.available() != 0; }

  void on_poll_error(int /*status*/) override {
    // EPOLLERR: libuv has stopped the handle (src/unix/poll.c). On a UDP socket that is an
    // ICMP error about an earlier datagram (backends/runtime/socket_error.h): a remote that is
    // not up, or no route for now. Count it and poll again; only an unusable socket closes.
    const SocketError e = take_socket_error(fd());
    if (!e.readable) {
      close(std::string("socket error: ") + std::strerror(e.error));
      return;
    }
    if (e.error != 0 || e.queued > 0) {
      empty_errors_ = 0;
      note_send_error(e.error != 0 ? e.error : EHOSTUNREACH);
    } else if (++empty_errors_ > kMaxEmptyErrors) {
      close("poll keeps reporting an error that the socket does not hold");
      return;
    }
    repoll();
  }

  void read_some() override;
  // A datagram sent earlier was refused on the way (reported late, by ICMP): counted with the
  // send errors, logged at a limited rate.
  void note_send_error(int err) {
    send_errors_ += 1;
    if (send_error_log_.allow(loop_.now())) {
      io::log_line("port %u %s: a datagram sent earlier was refused: %s (is the remote up?)", id(),
                   describe_.c_str(), std::strerror(err));
    }
  }
  // Classifies message i of a receive batch; true when it is a valid frame of this segment.
  // `remote` is the sender's index.
  bool accept(uint32_t i, const mmsghdr& msg, uint32_t& frame_len, int& remote);
  void forward(uint32_t count);
  // Remote index for a source address, or -1.
  int find_remote(const sockaddr_storage& from) const {
    int ip_match = -1;
    for (size_t r = 0; r < remotes_.size(); ++r) {
      if (!same_ip(remotes_[r].addr, from)) continue;
      if (io::port_of(remotes_[r].addr) == io::port_of(from)) return static_cast<int>(r);
      if (ip_match < 0) ip_match = static_cast<int>(r);
    }
    return ip_match;
  }
  // The one remote a frame goes to, or -1 for every remote.
  int unicast_remote(const uint8_t* frame, sw::Millis now) const {
    if ((frame[0] & 0x01) != 0) return -1;  // broadcast / multicast
    const sw::PortId r = macs_.lookup(sw::MacAddress::from_wire(frame), 0, now);
    return r == sw::kNoPort || r >= remotes_.size() ? -1 : static_cast<int>(r);
  }
  void log_drop(const char* what, const sockaddr_storage& from) {
    if (!rx_drop_log_.allow(loop_.now())) return;
    const uint64_t suppressed = rx_drop_log_.take_suppressed();
    io::log_line(
        "port %u %s: dropped a datagram from %s: %s%s", id(), describe_.c_str(),
        sockaddr_text(from).c_str(), what,
        suppressed == 0 ? "" : (" (" + std::to_string(suppressed) + " more suppressed)").c_str());
  }

  io::OwnSockets::Registration registration_;  // our bound address, while the socket is open
  uint32_t vni_;
  sockaddr_storage bound_;
  std::vector<VxlanRemote> remotes_;
  std::string describe_;
  sw::MacTable macs_;
  sw::Millis last_expire_ = 0;
  DatagramRx rx_;
  DatagramTx tx_;
  size_t partial_sent_ = 0;  // remotes the head frame (a flood) already went to
  int empty_errors_ = 0;     // poll errors in a row with nothing to read (kMaxEmptyErrors)

  // Receive scratch: one header, source address and iovec pair per message.
  uint8_t rx_headers_[kRxBatch][kVxlanHeaderSize];
  sockaddr_storage rx_from_[kRxBatch];
  iovec rx_iov_[kRxBatch][2];
  mmsghdr rx_msgs_[kRxBatch];
  // Send scratch.
  uint8_t tx_header_[kVxlanHeaderSize];
  iovec tx_iov_[kSendBatch][3];
  mmsghdr tx_msgs_[kSendBatch];

  uint64_t bad_header_ = 0;
  uint64_t wrong_vni_ = 0;
  uint64_t unknown_remote_ = 0;
  uint64_t send_errors_ = 0;
  uint64_t tx_datagrams_ = 0;
  io::RateLimit rx_drop_log_{5, 10'000};
  io::RateLimit send_error_log_{3, 10'000};
};

void VxlanPort::read_some() {
  for (int round = 0; round < kReadsPerWake; ++round) {
    const uint32_t n = rx_.available();
    if (n == 0) {
      out_of_chunks();
      return;
    }
    for (uint32_t i = 0; i < n; ++i) {
      rx_iov_[i][0] = iovec{rx_headers_[i], kVxlanHeaderSize};
      rx_iov_[i][1] = iovec{rx_.slot(i), DatagramRx::slot_capacity()};
      msghdr& h = rx_msgs_[i].msg_hdr;
      h = msghdr{};
      h.msg_name = &rx_from_[i];
      h.msg_namelen = sizeof(rx_from_[i]);
      h.msg_iov = rx_iov_[i];
      h.msg_iovlen = 2;
      rx_msgs_[i].msg_len = 0;
    }
    const int got = ::recvmmsg(fd(), rx_msgs_, n, MSG_DONTWAIT, nullptr);
    if (got < 0) {
      const int err = errno;
      // A UDP socket reports errors of earlier sends here (ICMP unreachable); it stays usable.
      if (err != EAGAIN && err != EINTR) note_send_error(err);
      return;
    }
    if (got > 0) empty_errors_ = 0;
    uint32_t frames = 0;
    const sw::Millis now = loop_.now();
    for (uint32_t i = 0; i < static_cast<uint32_t>(got); ++i) {
      uint32_t len = 0;
      int remote = -1;
      if (!accept(i, rx_msgs_[i], len, remote)) continue;
      loop_.burst()[frames++] = rx_.frame(i, len);
      // Learn the inner source on the remote it came from (the switch itself drops a multicast
      // source: drop_bad_source).
      const uint8_t* src = rx_.slot(i) + 6;
      if ((src[0] & 0x01) == 0) {
        macs_.learn(sw::MacAddress::from_wire(src), 0, static_cast<sw::PortId>(remote), now);
      }
    }
    rx_.advance(static_cast<uint32_t>(got));
    if (now - last_expire_ >= kExpireIntervalMs) {
      last_expire_ = now;
      macs_.expire(now);
    }
    forward(frames);
    if (closed() || throttled_by() != sw::kNoPort) return;
    if (static_cast<uint32_t>(got) < n) return;  // drained the socket
  }
}

bool VxlanPort::accept(uint32_t i, const mmsghdr& msg, uint32_t& frame_len, int& remote) {
  const sockaddr_storage& from = rx_from_[i];
  remote = find_remote(from);
  if (remote < 0) {
    unknown_remote_ += 1;
    log_drop("not a configured remote", from);
    return false;
  }
  const VxlanRx rx = check_vxlan_datagram(rx_headers_[i], msg.msg_len,
                                          (msg.msg_hdr.msg_flags & MSG_TRUNC) != 0, vni_);
  switch (rx.check) {
    case VxlanRxCheck::kOversize:
    case VxlanRxCheck::kRunt:
      counters_.drop_bad_length += 1;
      log_drop(rx.check == VxlanRxCheck::kOversize ? "oversize datagram"
                                                   : "runt (inner frame under 14 bytes)",
               from);
      return false;
    case VxlanRxCheck::kNoIFlag:
      bad_header_ += 1;
      log_drop("VXLAN header without the I flag", from);  // RFC 7348 section 5
      return false;
    case VxlanRxCheck::kWrongVni:
      wrong_vni_ += 1;
      log_drop(("VNI " + std::to_string(rx.vni) + ", not ours").c_str(), from);
      return false;
    case VxlanRxCheck::kFrame:
      break;
  }
  frame_len = rx.frame_len;
  return true;
}

void VxlanPort::forward(uint32_t count) {
  if (count == 0 || closed()) return;
  const sw::PortId congested =
      loop_.fabric().receive(*this, loop_.burst().first(count), loop_.now());
  if (congested != sw::kNoPort && throttled_by() == sw::kNoPort) throttle(congested);
}

void VxlanPort::flush() {
  if (closed()) return;
  const sw::Millis now = loop_.now();
  for (int call = 0; call < kMaxSendCallsPerFlush && !tx_.empty(); ++call) {
    // Build one batch: frames from the head of the queue, one message per (frame, remote).
    unsigned m = 0;
    for (size_t i = 0; i < tx_.count() && m < kSendBatch; ++i) {
      const int only = (i == 0 && partial_sent_ > 0) ? -1 : unicast_remote(tx_.data(i), now);
      const size_t first = only >= 0 ? static_cast<size_t>(only) : (i == 0 ? partial_sent_ : 0);
      const size_t last = only >= 0 ? first + 1 : remotes_.size();
      for (size_t r = first; r < last && m < kSendBatch; ++r) {
        iovec frame_iov[2];
        const int parts = tx_.iov(i, frame_iov);
        tx_iov_[m][0] = iovec{tx_header_, kVxlanHeaderSize};
        tx_iov_[m][1] = frame_iov[0];
        if (parts == 2) tx_iov_[m][2] = frame_iov[1];
        msghdr& h = tx_msgs_[m].msg_hdr;
        h = msghdr{};
        h.msg_name = const_cast<sockaddr_storage*>(&remotes_[r].addr);
        h.msg_namelen = remotes_[r].len;
        h.msg_iov = tx_iov_[m];
        h.msg_iovlen = 1 + static_cast<size_t>(parts);
        ++m;
      }
    }
    int sent = ::sendmmsg(fd(), tx_msgs_, m, MSG_DONTWAIT);
    bool short_batch = false;
    if (sent < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EINTR) break;
      // The first datagram was refused (unreachable, too big for UDP...): drop it, go on.
      send_errors_ += 1;
      if (send_error_log_.allow(now)) {
        const auto* to = static_cast<const sockaddr_storage*>(tx_msgs_[0].msg_hdr.msg_name);
        io::log_line("port %u %s: sending to %s failed: %s (datagram dropped)", id(),
                     describe_.c_str(), sockaddr_text(*to).c_str(), std::strerror(err));
      }
      sent = 1;
    } else {
      tx_datagrams_ += static_cast<uint64_t>(sent);
      if (sent > 0) output_progressed();
      // Fewer taken than offered: the socket is most likely full (the next call would say).
      short_batch = static_cast<unsigned>(sent) < m;
    }
    // Retire the frames whose every datagram went out; remember where a cut flood stopped.
    for (int k = 0; k < sent; ++k) {
      const int only = partial_sent_ > 0 ? -1 : unicast_remote(tx_.data(0), now);
      const size_t need = only >= 0 ? 1 : remotes_.size();
      partial_sent_ += 1;
      if (partial_sent_ >= need) {
        partial_sent_ = 0;
        const DatagramTx::Written w = tx_.pop(1);
        counters_.tx_frames += w.frames;
        counters_.tx_bytes += w.bytes;
      }
    }
    if (short_batch) break;
  }
  set_want_write(!tx_.empty());
}

}  // namespace

std::string to_string(const VxlanConfig& config) {
  std::string s = "vni=" + std::to_string(config.vni) + " local=" + sockaddr_text(config.local);
  for (const VxlanRemote& r : config.remotes) s += " remote=" + sockaddr_text(r.addr);
  return s;
}

std::unique_ptr<LoopPort> open_vxlan_port(SwitchLoop& loop, const VxlanConfig& config,
                                          std::string& error, io::OwnSockets* own) {
  if (config.vni > kVxlanMaxVni) {
    error = "vxlan vni " + std::to_string(config.vni) + " is outside 0.." +
            std::to_string(kVxlanMaxVni);
    return nullptr;
  }
  const int family = config.local.ss_family;
  if (family != AF_INET && family != AF_INET6) {
    error = "vxlan local address must be IPv4 or IPv6";
    return nullptr;
  }
  if (config.remotes.empty() || config.remotes.size() > kVxlanMaxRemotes) {
    error = "vxlan needs 1.." + std::to_string(kVxlanMaxRemotes) + " remotes, got " +
            std::to_string(config.remotes.size());
    return nullptr;
  }
  VxlanConfig cfg = config;
  for (VxlanRemote& r : cfg.remotes) {
    if (r.addr.ss_family != family) {
      error = "vxlan remote " + sockaddr_text(r.addr) + " is not of the local address's family (" +
              sockaddr_text(config.local) + ")";
      return nullptr;
    }
    r.len = family_len(family);
  }
  io::Fd fd = io::Fd::adopt(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    error = std::string("vxlan socket: ") + std::strerror(errno);
    return nullptr;
  }
  const int one = 1;
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Larger buffers absorb bursts; the kernel caps them at rmem_max/wmem_max (not an error).
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &kSocketBufferSize, sizeof(kSocketBufferSize));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&config.local), family_len(family)) < 0) {
    const int err = errno;
    error = "cannot bind vxlan local " + sockaddr_text(config.local) + ": " + std::strerror(err);
    if (err == EADDRINUSE) {
      error +=
          " (another socket, e.g. a kernel vxlan device with this dstport, holds it; pick "
          "another local port)";
    } else if (err == EADDRNOTAVAIL) {
      error += " (local must be an address of this host)";
    }
    return nullptr;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_len) < 0) {
    error = std::string("vxlan getsockname: ") + std::strerror(errno);
    return nullptr;
  }
  auto port = std::make_unique<VxlanPort>(loop, std::move(fd), cfg, bound);
  if (own != nullptr) port->set_registration(own->add(io::Transport::kUdp, bound));
  return port;
}

sockaddr_storage vxlan_bound_local(const LoopPort& port) {
  if (const auto* v = dynamic_cast<const VxlanPort*>(&port)) return v->bound();
  return sockaddr_storage{};
}

}  // namespace qswitch::backends
