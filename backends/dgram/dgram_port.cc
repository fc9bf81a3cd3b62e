// backends/dgram/dgram_port.cc: see the header.
#include "backends/dgram/dgram_port.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "backends/runtime/datagram_rx.h"
#include "backends/runtime/datagram_tx.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/socket_error.h"

namespace qswitch::backends {

using io::sockaddr_text;

namespace {
constexpr int kReadsPerWake = 8;
constexpr uint32_t kSendBatch = 64;
constexpr size_t kMaxPeers = 256;
// Used only while reading is paused and the socket has no port to wait on the loop's paused list.
constexpr uint64_t kRxRetryMs = 20;
constexpr uint64_t kPeerAgeCheckMs = 5000;
// EPOLLERR with no error to read, this many times in a row with no datagram in or out between
// them: something we cannot clear would wake the loop for ever, so the socket is given up.
constexpr int kMaxEmptyErrors = 16;

bool same_address(const sockaddr_storage& a, socklen_t alen, const sockaddr_storage& b,
                  socklen_t blen) {
  if (a.ss_family != b.ss_family) return false;
  switch (a.ss_family) {
    case AF_INET: {
      const auto& x = reinterpret_cast<const sockaddr_in&>(a);
      const auto& y = reinterpret_cast<const sockaddr_in&>(b);
      return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
    }
    case AF_INET6: {
      const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
      const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
      return x.sin6_port == y.sin6_port &&
             std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof x.sin6_addr) == 0;
    }
    default:
      return alen == blen && std::memcmp(&a, &b, alen) == 0;
  }
}

}  // namespace

class DgramPort;

// One datagram socket and the ports that use it (see the header).
class DgramSocket : public std::enable_shared_from_this<DgramSocket> {
 public:
  DgramSocket(SwitchLoop& loop, DgramConfig config, io::Fd fd, io::Fd send_fd);
  ~DgramSocket();

  // Connected and multicast sockets: their one port, created and adopted now.
  LoopPort* make_fixed_port(std::string peer);
  void close_ports(const std::string& reason);
  void forget(DgramPort& port);
  // Sends what `port` has queued; false when the port closed.
  void flush(DgramPort& port);
  const DgramConfig& config() const { return config_; }
  const DgramSocketCounters& counters() const { return counters_; }
  std::string bound() const;
  std::vector<sockaddr_storage> udp_addresses() const;

 private:
  void start();
  void on_poll(int status, int events);
  void on_send_poll(int status, int events);
  // A poll error on `fd` (fd_ or send_fd_): libuv has stopped that handle. Takes the socket's
  // error, counts it, and polls again; gives the socket up only when it is not usable.
  void on_socket_error(int fd);
  // An ICMP error about an earlier datagram: counted on the one port (or the socket), logged at
  // a limited rate. The port stays up.
  void note_unreachable(int err);
  // Closes every port and stops reading this socket for good.
  void give_up(const std::string& reason);
  void read_some();
  // Hands frames[0..count) of `port` to the switch; returns false to stop reading this wake.
  bool deliver(DgramPort* port, sw::Frame* frames, size_t count);
  // The port of the datagram's sender; with `create`, a learning socket makes one for a new
  // sender. nullptr: drop the datagram (counted here).
  DgramPort* port_for(const sockaddr_storage& from, socklen_t len, bool create);
  void pause_reading(bool paused);
  void update_poll();
  void want_write(DgramPort& port);
  // The loop's paused-port retry (every loop turn and every 20 ms while on the list): resumes
  // reading and retries output that met a full unix peer. True: still waiting.
  bool retry(DgramPort& port);
  bool can_resume_reading();
  // Puts a port of this socket on the loop's paused list to wait for reading to resume.
  void wait_on_loop();
  void on_retry();
  void on_age();

  SwitchLoop& loop_;
  DgramConfig config_;
  io::Fd fd_;
  io::Fd send_fd_;  // multicast: frames leave from here, so our own come back recognisable
  sockaddr_storage
      send_addr_{};  // multicast: send_fd_'s address (looped-back frames from it are ours)
  socklen_t send_addr_len_ = 0;
  io::UvHandle<uv_poll_t> poll_;
  io::UvHandle<uv_poll_t> send_poll_;
  io::UvHandle<uv_timer_t> retry_timer_;
  io::UvHandle<uv_timer_t> age_timer_;
  int poll_events_ = 0;
  int send_poll_events_ = 0;
  DatagramRx rx_;
  std::vector<DgramPort*> ports_;    // kLearn: one per peer; otherwise at most one
  std::vector<DgramPort*> writers_;  // ports with output waiting for room
  DgramPort* last_port_ = nullptr;   // the last sender found: bursts come from one peer
  bool read_paused_ = false;
  DgramPort* pause_owner_ = nullptr;  // the port that waits on the loop's paused list for us
  sw::PortId throttled_by_ = sw::kNoPort;
  DgramSocketCounters counters_;
  io::RateLimit bad_log_{3, 10'000};
  io::RateLimit unreachable_log_{1, 10'000};
  int empty_errors_ = 0;  // poll errors in a row with nothing to read (see kMaxEmptyErrors)
  // recvmmsg/sendmmsg scratch, reused for every call (no allocation per frame).
  mmsghdr rmsgs_[DatagramRx::kSlots];
  iovec riov_[DatagramRx::kSlots];
  sockaddr_storage raddr_[DatagramRx::kSlots];
  mmsghdr smsgs_[kSendBatch];
  iovec siov_[kSendBatch][2];

  friend class DgramPort;
};

// A peer of a DgramSocket as a switch port.
class DgramPort final : public LoopPort {
 public:
  DgramPort(SwitchLoop& loop, std::shared_ptr<DgramSocket> socket, const sockaddr_storage* peer,
            socklen_t peer_len, std::string name)
      : LoopPort(loop),
        socket_(std::move(socket)),
        name_(std::move(name)),
        tx_(loop.config().queue_size),
        last_rx_(loop.now()) {
    if (peer != nullptr) {
      peer_ = *peer;
      peer_len_ = peer_len;
    }
    set_takes_split(true);  // sent with iovecs (DatagramTx::iov)
  }
  ~DgramPort() override = default;

  void enqueue(const sw::Frame& frame) override {
    if (closed()) return;
    queue_output(tx_, frame);
  }
  void flush() override {
    if (!closed()) socket_->flush(*this);
  }
  std::string describe() const override { return name_; }
  const char* kind() const override { return "dgram"; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }
  bool retry_paused_read() override { return socket_->retry(*this); }
  bool congested(sw::Millis now) override { return output_congested(tx_, now); }
  void release_chunks(const sw::ChunkOwner& pool) override { release_output(tx_, pool); }
  void for_each_extra_counter(const ExtraCounterFn& f) const override {
    f({"drop_unreachable",
       "Frames for the port lost because the peer was unreachable (an ICMP error, no route)."},
      drop_unreachable_);
    f({"drop_too_big", "Frames for the port too big for one datagram of its socket."},
      drop_too_big_);
  }

 private:
  uint64_t shutdown_io() override {
    socket_->forget(*this);
    const uint64_t dropped = tx_.clear();
    // The last port of a socket nobody else holds (a `qswitch exec` socketpair) closes it, but
    // not from inside its own callbacks: the loop destroys retired ports after the turn.
    return dropped;
  }

  friend class DgramSocket;
  std::shared_ptr<DgramSocket> socket_;
  std::string name_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = 0;  // 0: the socket is connected (send without an address)
  DatagramTx tx_;
  sw::Millis last_rx_;
  bool waiting_ = false;  // on the socket's writers_ list
  uint64_t drop_unreachable_ = 0;
  uint64_t drop_too_big_ = 0;
  io::RateLimit send_log_{1, 10'000};
};

DgramSocket::DgramSocket(SwitchLoop& loop, DgramConfig config, io::Fd fd, io::Fd send_fd)
    : loop_(loop), config_(std::move(config)), fd_(std::move(fd)), send_fd_(std::move(send_fd)) {
  std::memset(rmsgs_, 0, sizeof rmsgs_);
  std::memset(smsgs_, 0, sizeof smsgs_);
  rx_.set_pressure(&loop.fabric());
  uv_poll_init_socket(loop.uv(), poll_.get(), fd_.get());
  poll_.get()->data = this;
  if (send_fd_.valid()) {
    send_addr_len_ = sizeof send_addr_;
    ::getsockname(send_fd_.get(), reinterpret_cast<sockaddr*>(&send_addr_), &send_addr_len_);
    uv_poll_init_socket(loop.uv(), send_poll_.get(), send_fd_.get());
    send_poll_.get()->data = this;
  }
  uv_timer_init(loop.uv(), retry_timer_.get());
  retry_timer_.get()->data = this;
  uv_timer_init(loop.uv(), age_timer_.get());
  age_timer_.get()->data = this;
  if (config_.mode == DgramConfig::Mode::kLearn) {
    uv_timer_start(
        age_timer_.get(),
        [](uv_timer_t* h) {
          if (h->data != nullptr) static_cast<DgramSocket*>(h->data)->on_age();
        },
        kPeerAgeCheckMs, kPeerAgeCheckMs);
    uv_unref(age_timer_.handle());
  }
  update_poll();
}

DgramSocket::~DgramSocket() {
  poll_.close();
  send_poll_.close();
  retry_timer_.close();
  age_timer_.close();
  if (config_.family == AF_UNIX && config_.local_len > offsetof(sockaddr_un, sun_path)) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(config_.local);
    if (un.sun_path[0] != '\0') ::unlink(un.sun_path);
  }
}

std::string DgramSocket::bound() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return config_.name;
  if (config_.family == AF_UNIX) return "unix:" + sockaddr_text(ss, len);
  if (config_.mode == DgramConfig::Mode::kMulticast) {
    return "mcast:" + sockaddr_text(config_.local, config_.local_len);
  }
  std::string text = "udp:" + sockaddr_text(ss, len);
  if (config_.mode == DgramConfig::Mode::kConnected && config_.remote_len > 0) {
    text += "-" + sockaddr_text(config_.remote, config_.remote_len);
  }
  return text;
}

std::vector<sockaddr_storage> DgramSocket::udp_addresses() const {
  std::vector<sockaddr_storage> out;
  if (config_.family == AF_UNIX) return out;
  for (const io::Fd* fd : {&fd_, &send_fd_}) {
    if (!fd->valid()) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) out.push_back(ss);
  }
  return out;
}

LoopPort* DgramSocket::make_fixed_port(std::string peer) {
  const sockaddr_storage* to = nullptr;
  socklen_t to_len = 0;
  if (config_.mode == DgramConfig::Mode::kMulticast) {
    to = &config_.local;  // the group
    to_len = config_.local_len;
  }
  auto port = std::make_unique<DgramPort>(loop_, shared_from_this(), to, to_len, std::move(peer));
  DgramPort* p = port.get();
  p->set_endpoint_id(config_.endpoint_id);
  ports_.push_back(p);
  loop_.adopt(std::move(port), config_.vlans, config_.security);
  return p;
}

void DgramSocket::close_ports(const std::string& reason) {
  std::vector<DgramPort*> ports = ports_;  // close() calls forget()
  for (DgramPort* p : ports) p->close(reason);
}

void DgramSocket::forget(DgramPort& port) {
  ports_.erase(std::remove(ports_.begin(), ports_.end(), &port), ports_.end());
  writers_.erase(std::remove(writers_.begin(), writers_.end(), &port), writers_.end());
  if (last_port_ == &port) last_port_ = nullptr;
  if (throttled_by_ == port.id()) throttled_by_ = sw::kNoPort;
  if (pause_owner_ == &port) {
    pause_owner_ = nullptr;
    if (read_paused_) wait_on_loop();  // another port waits, or the fallback timer
  }
  update_poll();
}

void DgramSocket::wait_on_loop() {
  pause_owner_ = nullptr;
  for (DgramPort* p : ports_) {
    if (!p->closed()) {
      pause_owner_ = p;
      break;
    }
  }
  if (pause_owner_ != nullptr) {
    loop_.pause_read(*pause_owner_);
  } else if (!uv_is_active(retry_timer_.handle())) {
    uv_timer_start(
        retry_timer_.get(),
        [](uv_timer_t* h) {
          if (h->data != nullptr) static_cast<DgramSocket*>(h->data)->on_retry();
        },
        kRxRetryMs, 0);
  }
}

bool DgramSocket::can_resume_reading() {
  if (throttled_by_ != sw::kNoPort) {
    sw::Port* by = loop_.fabric().port(throttled_by_);
    if (by != nullptr && by->congested(loop_.now())) return false;
    throttled_by_ = sw::kNoPort;
  }
  return rx_.available() > 0;
}

bool DgramSocket::retry(DgramPort& port) {
  auto keep = shared_from_this();
  bool waiting = false;
  if (port.waiting_ && config_.family == AF_UNIX && config_.mode == DgramConfig::Mode::kLearn) {
    port.waiting_ = false;
    writers_.erase(std::remove(writers_.begin(), writers_.end(), &port), writers_.end());
    flush(port);
    if (port.closed()) return false;
    waiting = port.waiting_;
  }
  if (read_paused_ && pause_owner_ == &port) {
    if (can_resume_reading()) {
      read_paused_ = false;
      pause_owner_ = nullptr;
      update_poll();
      read_some();  // what queued up meanwhile: do not wait for the next poll
    } else {
      waiting = true;
    }
  }
  return waiting;
}

void DgramSocket::update_poll() {
  const int events = read_paused_ ? 0 : UV_READABLE;
  bool want_out = false;
  const bool out_by_poll = config_.family != AF_UNIX || config_.mode != DgramConfig::Mode::kLearn;
  if (out_by_poll) {
    for (DgramPort* p : writers_) want_out = want_out || p->waiting_;
  }
  const int out = want_out ? UV_WRITABLE : 0;
  auto cb = [](uv_poll_t* h, int status, int ev) {
    if (h->data != nullptr) static_cast<DgramSocket*>(h->data)->on_poll(status, ev);
  };
  if (send_fd_.valid()) {
    io::set_poll_events(poll_.get(), poll_events_, events, cb);
    io::set_poll_events(send_poll_.get(), send_poll_events_, out,
                        [](uv_poll_t* h, int status, int ev) {
                          if (h->data != nullptr)
                            static_cast<DgramSocket*>(h->data)->on_send_poll(status, ev);
                        });
  } else {
    io::set_poll_events(poll_.get(), poll_events_, events | out, cb);
  }
}

void DgramSocket::on_poll(int status, int events) {
  auto keep = shared_from_this();  // a port closing in here may hold the last reference
  if (status < 0) {
    // EPOLLERR: libuv has stopped the handle and reports UV_EBADF (src/unix/poll.c). On a UDP
    // socket that is an ICMP error about an earlier datagram, not a broken socket.
    poll_events_ = 0;
    on_socket_error(fd_.get());
    return;
  }
  if ((events & UV_WRITABLE) != 0) on_send_poll(0, UV_WRITABLE);
  if ((events & UV_READABLE) != 0) read_some();
}

void DgramSocket::on_socket_error(int fd) {
  const SocketError e = take_socket_error(fd);
  if (!e.readable) {
    give_up(std::string("socket error: ") + std::strerror(e.error));
    return;
  }
  if (e.error != 0 && config_.family == AF_UNIX && config_.mode == DgramConfig::Mode::kConnected &&
      is_peer_gone_error(e.error)) {
    give_up(std::string("peer gone: ") + std::strerror(e.error));  // a socketpair's other end
    return;
  }
  if (e.error != 0 || e.queued > 0) {
    empty_errors_ = 0;
    note_unreachable(e.error != 0 ? e.error : EHOSTUNREACH);
  } else if (++empty_errors_ > kMaxEmptyErrors) {
    give_up("poll keeps reporting an error that the socket does not hold");
    return;
  }
  update_poll();  // starts the handle libuv stopped
}

void DgramSocket::note_unreachable(int err) {
  DgramPort* port =
      config_.mode != DgramConfig::Mode::kLearn && !ports_.empty() ? ports_.front() : nullptr;
  if (port != nullptr) {
    port->drop_unreachable_ += 1;
  } else {
    counters_.drop_unreachable += 1;
  }
  if (unreachable_log_.allow(loop_.now())) {
    const uint64_t suppressed = unreachable_log_.take_suppressed();
    io::log_line(
        "%s: a datagram was refused on the way: %s (is the peer up yet?); counted in "
        "drop_unreachable, the port stays up%s",
        config_.name.c_str(), std::strerror(err),
        suppressed == 0 ? "" : (" (" + std::to_string(suppressed) + " more)").c_str());
  }
}

void DgramSocket::give_up(const std::string& reason) {
  io::log_line("%s: %s", config_.name.c_str(), reason.c_str());
  close_ports(reason);
  read_paused_ = true;  // for good: nothing reads this socket again
  update_poll();
}

void DgramSocket::on_send_poll(int status, int events) {
  auto keep = shared_from_this();
  if (status < 0) {
    // The multicast sending socket's EPOLLERR (its handle is stopped, as above).
    send_poll_events_ = 0;
    on_socket_error(send_fd_.get());
    return;
  }
  if ((events & UV_WRITABLE) == 0) return;
  std::vector<DgramPort*> writers;
  writers.swap(writers_);
  for (DgramPort* p : writers) p->waiting_ = false;
  for (DgramPort* p : writers) {
    if (!p->closed()) flush(*p);
  }
  update_poll();
}

void DgramSocket::pause_reading(bool paused) {
  read_paused_ = paused;
  update_poll();
  if (paused && pause_owner_ == nullptr) wait_on_loop();
}

void DgramSocket::on_retry() {
  auto keep = shared_from_this();
  if (!read_paused_ || pause_owner_ != nullptr) return;
  if (can_resume_reading()) {
    read_paused_ = false;
    update_poll();
  } else {
    wait_on_loop();
  }
}

void DgramSocket::on_age() {
  auto keep = shared_from_this();
  const sw::Millis age = loop_.config().fabric.mac.age_ms;
  const sw::Millis now = loop_.now();
  std::vector<DgramPort*> idle;
  for (DgramPort* p : ports_) {
    if (now - p->last_rx_ > age) idle.push_back(p);
  }
  for (DgramPort* p : idle) {
    p->close("no datagram from this peer for " + std::to_string(age / 1000) + " s");
  }
}

DgramPort* DgramSocket::port_for(const sockaddr_storage& from, socklen_t len, bool create) {
  switch (config_.mode) {
    case DgramConfig::Mode::kConnected:
      return ports_.empty() ? nullptr : ports_.front();
    case DgramConfig::Mode::kMulticast:
      if (send_addr_len_ > 0 && same_address(from, len, send_addr_, send_addr_len_)) {
        counters_.drop_own += 1;  // our own frame, looped back by the group
        return nullptr;
      }
      return ports_.empty() ? nullptr : ports_.front();
    case DgramConfig::Mode::kLearn:
      break;
  }
  if (last_port_ != nullptr && same_address(from, len, last_port_->peer_, last_port_->peer_len_)) {
    return last_port_;
  }
  for (DgramPort* p : ports_) {
    if (same_address(from, len, p->peer_, p->peer_len_)) return last_port_ = p;
  }
  if (!create) return nullptr;
  if (config_.family == AF_UNIX && len <= offsetof(sockaddr_un, sun_path)) {
    // An unbound sender cannot be answered.
    counters_.drop_unbound += 1;
    if (bad_log_.allow(loop_.now())) {
      io::log_line(
          "%s: datagram from an unbound socket dropped (a peer must bind a path of its "
          "own to be answered, as QEMU's -netdev dgram local.path= does)",
          config_.name.c_str());
    }
    return nullptr;
  }
  if (ports_.size() >= kMaxPeers) {
    counters_.drop_peer_limit += 1;
    if (bad_log_.allow(loop_.now())) {
      io::log_line("%s: new peer %s refused: %zu peers already (dropping its frames)",
                   config_.name.c_str(), sockaddr_text(from, len).c_str(), kMaxPeers);
    }
    return nullptr;
  }
  const std::string scheme = config_.family == AF_UNIX ? "unixgram:" : "udp:";
  auto port = std::make_unique<DgramPort>(loop_, shared_from_this(), &from, len,
                                          scheme + sockaddr_text(from, len));
  DgramPort* p = port.get();
  p->set_endpoint_id(config_.endpoint_id);
  ports_.push_back(p);
  loop_.adopt(std::move(port), config_.vlans, config_.security);
  return last_port_ = p;
}

bool DgramSocket::deliver(DgramPort* port, sw::Frame* frames, size_t count) {
  if (port == nullptr || count == 0 || port->closed()) return true;
  port->last_rx_ = loop_.now();
  const sw::PortId congested = loop_.fabric().receive(*port, {frames, count}, loop_.now());
  if (congested != sw::kNoPort && throttled_by_ == sw::kNoPort) {
    throttled_by_ = congested;
    port->counters().rx_throttled += 1;
    return false;
  }
  return true;
}

void DgramSocket::read_some() {
  const bool want_from = config_.mode != DgramConfig::Mode::kConnected;
  for (int wake = 0; wake < kReadsPerWake; ++wake) {
    const uint32_t n = rx_.available();
    if (n == 0) {
      // Every receive chunk is still queued on some output: stop reading (the kernel queues, then
      // drops, further datagrams) until the outputs drain.
      if (!ports_.empty()) ports_.front()->counters().rx_paused += 1;
      pause_reading(true);
      return;
    }
    for (uint32_t i = 0; i < n; ++i) {
      riov_[i] = iovec{rx_.slot(i), DatagramRx::slot_capacity()};
      msghdr& h = rmsgs_[i].msg_hdr;
      h.msg_iov = &riov_[i];
      h.msg_iovlen = 1;
      h.msg_name = want_from ? &raddr_[i] : nullptr;
      h.msg_namelen = want_from ? sizeof raddr_[i] : 0;
      h.msg_control = nullptr;
      h.msg_controllen = 0;
      h.msg_flags = 0;
    }
    const int got = ::recvmmsg(fd_.get(), rmsgs_, n, MSG_DONTWAIT, nullptr);
    if (got < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EINTR) return;
      if (config_.family != AF_UNIX && is_unreachable_error(err)) {
        // The pending ICMP error of an earlier datagram, handed to this receive: the socket is
        // fine, the datagrams behind it are still there.
        note_unreachable(err);
        continue;
      }
      if (config_.family == AF_UNIX && config_.mode == DgramConfig::Mode::kConnected &&
          is_peer_gone_error(err)) {
        give_up(std::string("peer gone: ") + std::strerror(err));
        return;
      }
      give_up(std::string("receive error: ") + std::strerror(err));
      return;
    }
    if (got > 0) empty_errors_ = 0;
    sw::Frame* burst = loop_.burst().data();
    size_t run = 0;
    DgramPort* run_port = nullptr;
    bool stop = false;
    for (int i = 0; i < got; ++i) {
      const msghdr& h = rmsgs_[i].msg_hdr;
      const socklen_t from_len = want_from ? h.msg_namelen : 0;
      const uint32_t len = rmsgs_[i].msg_len;
      const bool truncated = (h.msg_flags & MSG_TRUNC) != 0;
      const bool bad = classify_datagram(len, truncated) != DatagramKind::kFrame;
      DgramPort* port = port_for(raddr_[i], from_len, false);
      if (port == nullptr && !bad && config_.mode == DgramConfig::Mode::kLearn) {
        // A new sender: the frames before it are forwarded first, so they do not reach a port
        // that did not exist when they were sent. A bad datagram never creates a port.
        if (!deliver(run_port, burst, run)) stop = true;
        run = 0;
        run_port = nullptr;
        port = port_for(raddr_[i], from_len, true);
      }
      if (bad) {
        if (port != nullptr) {
          port->counters().drop_bad_length += 1;
        } else {
          counters_.drop_bad_length += 1;
        }
        if (bad_log_.allow(loop_.now())) {
          io::log_line("%s: %s datagram (%u bytes%s) from %s dropped: a frame is %u..%u bytes",
                       config_.name.c_str(), truncated ? "oversize" : "short", len,
                       truncated ? " or more" : "",
                       port != nullptr ? port->describe().c_str() : "an unknown peer",
                       sw::kMinFrameSize, sw::kMaxFrameSize);
        }
        continue;
      }
      if (port == nullptr) continue;
      if (port != run_port) {
        if (!deliver(run_port, burst, run)) stop = true;
        run = 0;
        run_port = port;
      }
      burst[run++] = rx_.frame(static_cast<uint32_t>(i), len);
    }
    if (!deliver(run_port, burst, run)) stop = true;
    rx_.advance(static_cast<uint32_t>(got));
    if (stop) {
      pause_reading(true);
      return;
    }
    if (static_cast<uint32_t>(got) < n) return;  // drained
  }
}

void DgramSocket::want_write(DgramPort& port) {
  if (!port.waiting_) {
    port.waiting_ = true;
    writers_.push_back(&port);
  }
  const bool out_by_poll = config_.family != AF_UNIX || config_.mode != DgramConfig::Mode::kLearn;
  if (out_by_poll) {
    update_poll();
  } else {
    // A unix socket that sends to many peers cannot poll for "this peer has room" (POLLOUT
    // reports only our own buffer): retry on every loop turn, and every 20 ms, until it goes.
    loop_.pause_read(port);
  }
}

void DgramSocket::flush(DgramPort& port) {
  if (port.waiting_) return;  // waiting for room: the writable callback flushes it
  const int out_fd = send_fd_.valid() ? send_fd_.get() : fd_.get();
  while (!port.tx_.empty()) {
    const uint32_t n = static_cast<uint32_t>(std::min<size_t>(port.tx_.count(), kSendBatch));
    for (uint32_t i = 0; i < n; ++i) {
      msghdr& h = smsgs_[i].msg_hdr;
      h.msg_iov = siov_[i];
      h.msg_iovlen = static_cast<size_t>(port.tx_.iov(i, siov_[i]));
      h.msg_name = port.peer_len_ > 0 ? &port.peer_ : nullptr;
      h.msg_namelen = port.peer_len_;
      h.msg_control = nullptr;
      h.msg_controllen = 0;
      h.msg_flags = 0;
    }
    const int sent = ::sendmmsg(out_fd, smsgs_, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent > 0) {
      empty_errors_ = 0;
      port.output_progressed();
      const DatagramTx::Written w = port.tx_.pop(static_cast<size_t>(sent));
      port.counters().tx_frames += w.frames;
      port.counters().tx_bytes += w.bytes;
      continue;
    }
    const int err = sent < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == ENOBUFS) {
      want_write(port);
      return;
    }
    if (err == EMSGSIZE) {
      // Larger than this socket can carry (a UDP datagram holds at most 65507 bytes over IPv4):
      // only this frame is lost.
      const uint32_t size = port.tx_.size(0);
      port.tx_.pop(1);
      port.drop_too_big_ += 1;
      if (port.send_log_.allow(loop_.now())) {
        io::log_line("port %u: frame of %u bytes too big for %s: dropped", port.id(), size,
                     config_.name.c_str());
      }
      continue;
    }
    if (is_peer_gone_error(err) && config_.family == AF_UNIX) {
      // The peer's socket is closed or its path removed: it is gone for good.
      port.close(std::string("peer gone: ") + std::strerror(err));
      return;
    }
    // UDP: an ICMP error from an earlier datagram (the peer is not up yet) or no route. Keep the
    // port; what was queued is lost.
    const uint64_t dropped = port.tx_.clear();
    port.drop_unreachable_ += dropped;
    if (port.send_log_.allow(loop_.now())) {
      io::log_line("port %u: sending to %s failed: %s (%llu frames dropped)", port.id(),
                   port.describe().c_str(), std::strerror(err),
                   static_cast<unsigned long long>(dropped));
    }
    return;
  }
}

// ---- construction --------------------------------------------------------------------------

namespace {

struct Opened {
  io::Fd fd;
  io::Fd send_fd;
};

bool fail(std::string& error, const std::string& what, int err) {
  error = what + ": " + std::strerror(err);
  return false;
}

void grow_buffers(int fd) {
  // Room for bursts: the kernel's default (~208 KiB) holds few 64 KiB frames.
  const int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

bool open_multicast(const DgramConfig& c, Opened& out, std::string& error) {
  // As QEMU's net/socket.c: the receiving socket binds the group's address and port with
  // SO_REUSEADDR, so every member on this host shares it, and joins the group.
  const auto& group = reinterpret_cast<const sockaddr_in&>(c.local);
  const auto& ifaddr = reinterpret_cast<const sockaddr_in&>(c.mcast_if);
  out.fd = io::Fd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!out.fd.valid()) return fail(error, "socket", errno);
  const int one = 1;
  ::setsockopt(out.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(out.fd.get(), reinterpret_cast<const sockaddr*>(&group), sizeof group) != 0) {
    return fail(error, "bind " + c.name, errno);
  }
  ip_mreq mreq{};
  mreq.imr_multiaddr = group.sin_addr;
  mreq.imr_interface = ifaddr.sin_addr;
  if (::setsockopt(out.fd.get(), IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) != 0) {
    return fail(error,
                "join multicast group " + c.name +
                    " (is multicast enabled on an interface with a route to 224.0.0.0/4?)",
                errno);
  }
  const int zero = 0;
  ::setsockopt(out.fd.get(), IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  grow_buffers(out.fd.get());
  // The sending socket: an ephemeral port of its own, so our frames that the group loops back
  // to the receiving socket are recognised by their source and ignored.
  out.send_fd = io::Fd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!out.send_fd.valid()) return fail(error, "socket", errno);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  src.sin_addr = ifaddr.sin_addr;
  if (::bind(out.send_fd.get(), reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
    return fail(error, "bind the sending socket of " + c.name, errno);
  }
  if (ifaddr.sin_addr.s_addr != INADDR_ANY) {
    ::setsockopt(out.send_fd.get(), IPPROTO_IP, IP_MULTICAST_IF, &ifaddr.sin_addr,
                 sizeof ifaddr.sin_addr);
  }
  const unsigned char loop_on = 1;  // QEMU guests on this host must hear us
  ::setsockopt(out.send_fd.get(), IPPROTO_IP, IP_MULTICAST_LOOP, &loop_on, sizeof loop_on);
  const unsigned char ttl = 1;
  ::setsockopt(out.send_fd.get(), IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
  grow_buffers(out.send_fd.get());
  return true;
}

bool open_socket(const DgramConfig& c, Opened& out, std::string& error) {
  if (c.mode == DgramConfig::Mode::kMulticast) return open_multicast(c, out, error);
  out.fd = io::Fd::adopt(::socket(c.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!out.fd.valid()) return fail(error, "socket", errno);
  if (c.family == AF_UNIX) {
    if (io::bind_unix(out.fd.get(), SOCK_DGRAM, reinterpret_cast<const sockaddr_un&>(c.local),
                      c.local_len, error) != 0) {
      return false;
    }
  } else if (::bind(out.fd.get(), reinterpret_cast<const sockaddr*>(&c.local), c.local_len) != 0) {
    return fail(error, "bind " + c.name, errno);
  }
  if (c.mode == DgramConfig::Mode::kConnected &&
      ::connect(out.fd.get(), reinterpret_cast<const sockaddr*>(&c.remote), c.remote_len) != 0) {
    return fail(error, "connect " + c.name, errno);
  }
  grow_buffers(out.fd.get());
  return true;
}

}  // namespace

std::unique_ptr<DgramEndpoint> DgramEndpoint::open(SwitchLoop& loop, const DgramConfig& config,
                                                   std::string& error) {
  Opened opened;
  if (!open_socket(config, opened, error)) {
    if (config.family == AF_UNIX && opened.fd.valid()) {
      // Bound and then failed (connect): remove the path we created.
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      if (::getsockname(opened.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0 &&
          len > offsetof(sockaddr_un, sun_path)) {
        ::unlink(reinterpret_cast<const sockaddr_un&>(ss).sun_path);
      }
    }
    return nullptr;
  }
  auto socket =
      std::make_shared<DgramSocket>(loop, config, std::move(opened.fd), std::move(opened.send_fd));
  auto endpoint = std::make_unique<DgramEndpoint>(socket);
  if (config.mode != DgramConfig::Mode::kLearn) socket->make_fixed_port(socket->bound());
  return endpoint;
}

DgramEndpoint::DgramEndpoint(std::shared_ptr<DgramSocket> socket) : socket_(std::move(socket)) {}

DgramEndpoint::~DgramEndpoint() {
  if (socket_) socket_->close_ports("endpoint removed");
}

const std::string& DgramEndpoint::name() const { return socket_->config().name; }
std::string DgramEndpoint::bound() const { return socket_->bound(); }
std::vector<sockaddr_storage> DgramEndpoint::udp_addresses() const {
  return socket_->udp_addresses();
}
const DgramSocketCounters& DgramEndpoint::counters() const { return socket_->counters(); }
void DgramEndpoint::close_ports(const std::string& reason) { socket_->close_ports(reason); }

LoopPort* adopt_connected_dgram(SwitchLoop& loop, io::Fd fd, std::string peer, std::string& error,
                                const sw::VlanMembership& vlans, const sw::PortSecurity& security) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    error = std::string("not a socket: ") + std::strerror(errno);
    return nullptr;
  }
  if (type != SOCK_DGRAM) {
    error = "not a datagram socket (SOCK_DGRAM expected)";
    return nullptr;
  }
  sockaddr_storage ss{};
  socklen_t sslen = sizeof ss;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &sslen);
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    error = std::string("cannot make the socket non-blocking: ") + std::strerror(errno);
    return nullptr;
  }
  ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
  grow_buffers(fd.get());
  DgramConfig config;
  config.mode = DgramConfig::Mode::kConnected;
  config.family = ss.ss_family == AF_UNSPEC ? AF_UNIX : ss.ss_family;
  config.name = peer;
  config.vlans = vlans;
  config.security = security;
  // local_len stays 0: nothing of ours to unlink.
  auto socket = std::make_shared<DgramSocket>(loop, std::move(config), std::move(fd), io::Fd());
  return socket->make_fixed_port(std::move(peer));
}

}  // namespace qswitch::backends
