// bench/relay/relay.cc: qswitch_relay, a minimal relay between two bench ports over the kind of
// sockets qswitch uses. It moves bytes and nothing else, so its rate is the most any userspace
// switch on those sockets can forward: bench/compare's "relay" column.
//
// Theory of operation
// - No MAC learning, no frame parsing, no queue beyond one buffer per direction: plain C++20 and
//   POSIX (no libuv, no qswitch library), one thread, one poll() loop, unix sockets only.
// - stream PATH_A PATH_B: binds and listens on two unix stream sockets, then prints "ready"
//   (flushed). A session is one client accepted on each; it copies bytes A->B and B->A like
//   socat (the bytes are QEMU stream framing, but the relay does not look at them). Each
//   direction has a 128 KiB ring: one recvmsg() takes as much as fits, one sendmsg() gives the
//   other side as much as it takes, at once (POLLOUT is asked for only after a short write or
//   EAGAIN). A side is read only while its ring has room, so a slow reader slows its sender and
//   memory stays bounded. EOF on a side: what it sent is still delivered, then the other side
//   gets shutdown(SHUT_WR); the session ends when both directions are done, or at once when a
//   side fails (reset, EPIPE). Then both connections are closed, bytes still in a ring are
//   counted as dropped, and the next pair of clients is accepted (bench/compare runs one
//   qswitch-bench per size against one relay). A client that connects while a session runs
//   waits in the listen backlog.
// - dgram PATH: one unix SOCK_DGRAM socket bound at PATH, then "ready". The first two distinct
//   bound source addresses become its peers (each bench port binds its own path and sends a
//   hello broadcast first); every datagram from one peer goes to the other's path with a
//   sendto-style address, as qswitch's learning socket (--dgram unix:PATH) sends. recvmmsg()
//   and sendmmsg() move up to 64 datagrams per call, straight from the receive slots. Dropped
//   and counted: datagrams from an unbound socket (no address to answer), from a third address
//   while both peers are still there, from a peer while the other is not known yet, and longer
//   than 65549 bytes (qswitch's largest frame: they arrive truncated).
// - Waiting for a full peer: the kernel queues at most net.unix.max_dgram_qlen (10) datagrams
//   on a socket from senders it is not connected to; past that, a non-blocking send gets
//   EAGAIN, and poll(POLLOUT) cannot wait for room: for a socket that is not connected to the
//   destination it reports only the socket's own send buffer, so it says "writable" at once and
//   a relay waiting on it would spin (qswitch retries every loop turn and every 20 ms instead,
//   backends/dgram/dgram_port.cc). So this socket is blocking with SO_SNDTIMEO 100 ms
//   (qswitch's kStuckMs): sendmmsg() sleeps in the kernel until the destination reads (Linux
//   net/unix/af_unix.c, unix_wait_for_peer(), woken by the reader), and a peer that takes
//   nothing for 100 ms costs the rest of the batch (drop_stuck). Reads use MSG_DONTWAIT; poll()
//   waits only when the socket is empty.
// - Peers go away (each qswitch-bench run binds new paths): a send that gets ECONNREFUSED or
//   ENOENT forgets that peer; a datagram from a third address makes the relay check the two it
//   knows, at most every 100 ms, by connect()ing a scratch socket to each (ECONNREFUSED or
//   ENOENT: gone; connect() sends nothing), and learn the newcomer into a freed slot.
// - The datagram socket gets 4 MiB SO_RCVBUF and SO_SNDBUF (capped by net.core.[rw]mem_max), as
//   qswitch's datagram sockets ask; the stream sockets keep the kernel's defaults, as qswitch's
//   stream ports do.
// - Signals: SIGTERM and SIGINT set a flag and write a byte to a self-pipe that every poll()
//   watches, so they are never missed; they also interrupt a blocked send (no SA_RESTART). The
//   relay then unlinks the paths it bound, prints its counters on stderr and exits 0. Every wait
//   but poll() for traffic is bounded.
// - Exit: 0 after SIGTERM or SIGINT; 1 when a socket cannot be set up or accept() fails (the
//   message names the path); 2 on a bad command line (the message names the argument).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qswitch::relay {

namespace {

constexpr int kExitUsage = 2;
constexpr size_t kRingSize = size_t{128} * 1024;  // bytes per stream direction
constexpr unsigned kBatch = 64;                   // datagrams per recvmmsg()/sendmmsg()
constexpr size_t kMaxDatagram = 65549;            // qswitch's largest frame (switch/frame.h)
constexpr int kStuckMs = 100;                     // longest wait for a full datagram peer
constexpr int64_t kProbeIntervalNs = 100'000'000;
constexpr int kBufferSize = 4 << 20;
constexpr int kMaxIntr = 8;  // EINTRs in a row before a datagram batch is given up

// ---- process-wide: the stop flag and its self-pipe --------------------------------------------

volatile sig_atomic_t g_stop = 0;
int g_wake_fd = -1;  // write end of the self-pipe

void on_stop_signal(int /*sig*/) {
  g_stop = 1;
  const int saved = errno;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_wake_fd, &byte, 1);  // full pipe: already woken
  errno = saved;
}

// A file descriptor this object owns (closed once, when it goes).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// A unix socket path this process bound: unlinked when it goes.
class BoundPath {
 public:
  BoundPath() = default;
  ~BoundPath() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  BoundPath(const BoundPath&) = delete;
  BoundPath& operator=(const BoundPath&) = delete;
  void set(std::string path) { path_ = std::move(path); }

 private:
  std::string path_;
};

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());  // 1..107 bytes, checked by parse_args
  return sun;
}

void grow_buffers(int fd) {
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kBufferSize, sizeof kBufferSize);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kBufferSize, sizeof kBufferSize);
}

// A unix socket of `type` bound at `path`, or an invalid Fd with a message printed. An existing
// path is an error, not replaced: the relay removes only what it created.
Fd bind_socket(int type, const std::string& path, BoundPath& bound) {
  Fd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    std::fprintf(stderr, "qswitch_relay: socket for %s: %s\n", path.c_str(), std::strerror(errno));
    return {};
  }
  const sockaddr_un sun = unix_address(path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0) {
    const int err = errno;
    std::fprintf(stderr, "qswitch_relay: bind %s: %s%s\n", path.c_str(), std::strerror(err),
                 err == EADDRINUSE ? " (remove it, or give a path that does not exist)" : "");
    return {};
  }
  bound.set(path);
  return fd;
}

void print_ready() {
  std::fputs("ready\n", stdout);
  std::fflush(stdout);
}

// ---- stream mode ------------------------------------------------------------------------------

// Bytes on their way from one side to the other: a ring of kRingSize bytes (a power of two).
class Ring {
 public:
  size_t used() const { return static_cast<size_t>(tail_ - head_); }
  size_t room() const { return kRingSize - used(); }
  // The free space (for recvmsg) or the data (for sendmsg) as one or two iovecs; returns how many.
  int free_iov(std::array<iovec, 2>& iov) { return span(tail_, room(), iov); }
  int data_iov(std::array<iovec, 2>& iov) { return span(head_, used(), iov); }
  void produced(size_t n) { tail_ += n; }
  void consumed(size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;  // empty: start over, so one iovec is the usual case
  }
  void clear() { head_ = tail_ = 0; }

 private:
  int span(uint64_t from, size_t n, std::array<iovec, 2>& iov) {
    const size_t at = static_cast<size_t>(from % kRingSize);
    const size_t first = std::min(n, kRingSize - at);
    iov[0] = {buf_.get() + at, first};
    iov[1] = {buf_.get(), n - first};
    return n > first ? 2 : 1;
  }

  std::unique_ptr<uint8_t[]> buf_ = std::make_unique<uint8_t[]>(kRingSize);
  uint64_t head_ = 0;  // bytes sent so far
  uint64_t tail_ = 0;  // bytes received so far
};

struct StreamSide {
  std::string path;
  Fd listener;
  Fd conn;
  bool eof = false;          // its read side is done (EOF)
  bool out_blocked = false;  // the last send to it was short: wait for POLLOUT
  bool shut = false;         // shutdown(SHUT_WR) sent to it
};

class StreamRelay {
 public:
  StreamRelay(std::string path_a, std::string path_b) {
    sides_[0].path = std::move(path_a);
    sides_[1].path = std::move(path_b);
  }

  // Binds and listens on both paths; false with a message printed.
  bool open() {
    for (size_t i = 0; i < 2; ++i) {
      StreamSide& s = sides_[i];
      s.listener = bind_socket(SOCK_STREAM | SOCK_NONBLOCK, s.path, bound_[i]);
      if (!s.listener.valid()) return false;
      if (::listen(s.listener.get(), 4) != 0) {
        std::fprintf(stderr, "qswitch_relay: listen %s: %s\n", s.path.c_str(),
                     std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  // Relays sessions until a stop signal; false when accept() failed.
  bool run(int wake_fd) {
    while (g_stop == 0) {
      std::array<pollfd, 3> fds{};
      fds[2] = {wake_fd, POLLIN, 0};
      for (size_t i = 0; i < 2; ++i) {
        const StreamSide& s = sides_[i];
        if (!s.conn.valid()) {
          fds[i] = {s.listener.get(), POLLIN, 0};
          continue;
        }
        const short events =
            static_cast<short>((want_read(i) ? POLLIN : 0) | (want_write(i) ? POLLOUT : 0));
        // Nothing wanted: not polled at all, so a hang-up there cannot wake the loop in vain.
        fds[i] = {events != 0 ? s.conn.get() : -1, events, 0};
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "qswitch_relay: poll: %s\n", std::strerror(errno));
        return false;
      }
      for (size_t i = 0; i < 2; ++i) {
        if (!sides_[i].conn.valid() && (fds[i].revents & POLLIN) != 0 && !accept_side(i)) {
          return false;
        }
      }
      bool failed = false;
      for (size_t from = 0; from < 2 && !failed; ++from) {
        failed = !move(from, 1 - from, fds[from].revents, fds[1 - from].revents);
      }
      if (failed || session_done()) end_session();
    }
    return true;
  }

  void print_counters() const {
    std::fprintf(stderr,
                 "qswitch_relay: stream sessions=%llu bytes_a_to_b=%llu bytes_b_to_a=%llu "
                 "dropped_bytes=%llu\n",
                 static_cast<unsigned long long>(sessions_),
                 static_cast<unsigned long long>(bytes_[0]),
                 static_cast<unsigned long long>(bytes_[1]),
                 static_cast<unsigned long long>(dropped_bytes_));
  }

 private:
  static constexpr short kReadable = POLLIN | POLLHUP | POLLERR;
  static constexpr short kWritable = POLLOUT | POLLHUP | POLLERR;

  bool want_read(size_t i) const {
    return sides_[i].conn.valid() && !sides_[i].eof && rings_[i].room() > 0;
  }
  bool want_write(size_t i) const {
    return sides_[i].conn.valid() && sides_[i].out_blocked && rings_[1 - i].used() > 0;
  }

  bool accept_side(size_t i) {
    StreamSide& s = sides_[i];
    const int fd = ::accept4(s.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return true;
      std::fprintf(stderr, "qswitch_relay: accept on %s: %s\n", s.path.c_str(),
                   std::strerror(errno));
      return false;
    }
    s.conn = Fd(fd);
    s.eof = s.out_blocked = s.shut = false;
    if (sides_[1 - i].conn.valid()) ++sessions_;
    return true;
  }

  // One turn of the direction from -> to: read what fits, write what the other side takes, and
  // pass an EOF on once all is delivered. False when a side failed (the session ends).
  bool move(size_t from, size_t to, short from_revents, short to_revents) {
    StreamSide& src = sides_[from];
    StreamSide& dst = sides_[to];
    Ring& ring = rings_[from];
    std::array<iovec, 2> iov{};
    if (want_read(from) && (from_revents & kReadable) != 0) {
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = static_cast<size_t>(ring.free_iov(iov));
      const ssize_t n = ::recvmsg(src.conn.get(), &msg, MSG_DONTWAIT);
      if (n > 0) {
        ring.produced(static_cast<size_t>(n));
      } else if (n == 0) {
        src.eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return false;
      }
    }
    if (dst.conn.valid() && ring.used() > 0 &&
        (!dst.out_blocked || (to_revents & kWritable) != 0)) {
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = static_cast<size_t>(ring.data_iov(iov));
      const size_t want = ring.used();
      const ssize_t n = ::sendmsg(dst.conn.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        ring.consumed(static_cast<size_t>(n));
        bytes_[from] += static_cast<uint64_t>(n);
        dst.out_blocked = static_cast<size_t>(n) < want;  // a short write: its buffer is full
      } else if (errno == EAGAIN || errno == EINTR) {
        dst.out_blocked = true;
      } else {
        return false;
      }
    }
    if (src.eof && ring.used() == 0 && dst.conn.valid() && !dst.shut) {
      ::shutdown(dst.conn.get(), SHUT_WR);
      dst.shut = true;
    }
    // A side that has gone while the other never came: nothing to wait for.
    return !(src.eof && !dst.conn.valid());
  }

  bool session_done() const {
    return sides_[0].conn.valid() && sides_[1].conn.valid() && sides_[0].eof && sides_[1].eof &&
           rings_[0].used() == 0 && rings_[1].used() == 0;
  }

  void end_session() {
    for (size_t i = 0; i < 2; ++i) {
      dropped_bytes_ += rings_[i].used();
      rings_[i].clear();
      sides_[i].conn.reset();
      sides_[i].eof = sides_[i].out_blocked = sides_[i].shut = false;
    }
  }

  std::array<StreamSide, 2> sides_;
  std::array<Ring, 2> rings_;  // rings_[i]: bytes from side i to the other
  std::array<BoundPath, 2> bound_;
  uint64_t sessions_ = 0;
  std::array<uint64_t, 2> bytes_{};  // delivered, by the side they came from
  uint64_t dropped_bytes_ = 0;
};

// ---- dgram mode -------------------------------------------------------------------------------

struct Peer {
  sockaddr_un addr{};
  socklen_t len = 0;  // 0: not known
  bool known() const { return len != 0; }
  bool is(const sockaddr_un& a, socklen_t alen) const {
    return len == alen && std::memcmp(&addr, &a, len) == 0;
  }
};

// The address as text for a log line: the path, or "@name" for an abstract address.
std::string peer_text(const Peer& p) {
  const size_t n = p.len - offsetof(sockaddr_un, sun_path);
  std::string text(p.addr.sun_path, n);
  if (!text.empty() && text[0] == '\0') text[0] = '@';
  while (!text.empty() && text.back() == '\0') text.pop_back();
  return text;
}

// Whether something is still bound at the peer's address: connect() a scratch socket to it (no
// datagram is sent). EPERM (it is connected to someone else, e.g. to us) still means it is there.
bool peer_alive(const Peer& p) {
  Fd probe(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return true;  // cannot tell: keep it
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&p.addr), p.len) == 0) return true;
  return errno != ECONNREFUSED && errno != ENOENT && errno != ENOTDIR;
}

struct DgramCounters {
  uint64_t forwarded = 0;
  uint64_t drop_unbound = 0;
  uint64_t drop_third_peer = 0;
  uint64_t drop_no_peer = 0;
  uint64_t drop_oversize = 0;
  uint64_t drop_stuck = 0;
  uint64_t drop_peer_gone = 0;
  uint64_t drop_send_error = 0;
};

class DgramRelay {
 public:
  explicit DgramRelay(std::string path) : path_(std::move(path)) {
    for (unsigned i = 0; i < kBatch; ++i) {
      riov_[i] = {slots_.get() + i * kSlotSize, kSlotSize};
    }
  }

  // Binds PATH (blocking, SO_SNDTIMEO kStuckMs, 4 MiB buffers); false with a message printed.
  bool open() {
    fd_ = bind_socket(SOCK_DGRAM, path_, bound_);
    if (!fd_.valid()) return false;
    grow_buffers(fd_.get());
    const timeval timeout{0, suseconds_t{kStuckMs} * 1000};
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout) != 0) {
      std::fprintf(stderr, "qswitch_relay: SO_SNDTIMEO on %s: %s\n", path_.c_str(),
                   std::strerror(errno));
      return false;
    }
    return true;
  }

  // Relays until a stop signal; false when the socket cannot be read.
  bool run(int wake_fd) {
    while (g_stop == 0) {
      const int got = receive();
      if (got > 0) {
        forward(static_cast<unsigned>(got));
        continue;
      }
      if (got < 0) return false;
      std::array<pollfd, 2> fds{{{fd_.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}}};
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) {
        std::fprintf(stderr, "qswitch_relay: poll: %s\n", std::strerror(errno));
        return false;
      }
    }
    return true;
  }

  void print_counters() const {
    const DgramCounters& c = counters_;
    std::fprintf(stderr,
                 "qswitch_relay: dgram forwarded=%llu drop_unbound=%llu drop_third_peer=%llu "
                 "drop_no_peer=%llu drop_oversize=%llu drop_stuck=%llu drop_peer_gone=%llu "
                 "drop_send_error=%llu\n",
                 static_cast<unsigned long long>(c.forwarded),
                 static_cast<unsigned long long>(c.drop_unbound),
                 static_cast<unsigned long long>(c.drop_third_peer),
                 static_cast<unsigned long long>(c.drop_no_peer),
                 static_cast<unsigned long long>(c.drop_oversize),
                 static_cast<unsigned long long>(c.drop_stuck),
                 static_cast<unsigned long long>(c.drop_peer_gone),
                 static_cast<unsigned long long>(c.drop_send_error));
  }

 private:
  static constexpr size_t kSlotSize = kMaxDatagram;  // a longer datagram shows as MSG_TRUNC

  // One recvmmsg() without waiting: datagrams received, 0 when none, -1 on a socket error.
  int receive() {
    for (unsigned i = 0; i < kBatch; ++i) {
      msghdr& h = rmsgs_[i].msg_hdr;
      h = {};
      h.msg_name = &raddr_[i];
      h.msg_namelen = sizeof raddr_[i];
      h.msg_iov = &riov_[i];
      h.msg_iovlen = 1;
    }
    const int got = ::recvmmsg(fd_.get(), rmsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (got >= 0) return got;
    if (errno == EAGAIN || errno == EINTR) return 0;
    std::fprintf(stderr, "qswitch_relay: recvmmsg on %s: %s\n", path_.c_str(),
                 std::strerror(errno));
    return -1;
  }

  // Sorts the batch by destination (order kept per destination) and sends each part.
  void forward(unsigned got) {
    std::array<unsigned, 2> count{};
    for (unsigned i = 0; i < got; ++i) {
      const msghdr& h = rmsgs_[i].msg_hdr;
      if (h.msg_namelen <= offsetof(sockaddr_un, sun_path)) {
        counters_.drop_unbound += 1;  // an unbound sender: no address to answer
        continue;
      }
      if ((h.msg_flags & MSG_TRUNC) != 0) {
        counters_.drop_oversize += 1;
        continue;
      }
      const int from = peer_for(raddr_[i], h.msg_namelen);
      if (from < 0) {
        counters_.drop_third_peer += 1;
        continue;
      }
      const unsigned to = 1 - static_cast<unsigned>(from);
      if (!peers_[to].known()) {
        counters_.drop_no_peer += 1;
        continue;
      }
      siov_[to][count[to]] = {riov_[i].iov_base, rmsgs_[i].msg_len};
      count[to] += 1;
    }
    for (unsigned to = 0; to < 2; ++to) send_to(to, count[to]);
  }

  // The peer index of a source address, learning it into a free slot; -1 for a third address.
  int peer_for(const sockaddr_un& a, socklen_t len) {
    for (int i = 0; i < 2; ++i) {
      if (peers_[i].is(a, len)) return i;
    }
    if (peers_[0].known() && peers_[1].known()) {
      const int64_t now = monotonic_ns();
      if (now - last_probe_ns_ < kProbeIntervalNs) return -1;
      last_probe_ns_ = now;
      for (int i = 0; i < 2; ++i) {
        if (!peer_alive(peers_[i])) forget(i, "gone");
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (!peers_[i].known()) {
        peers_[i].addr = a;
        peers_[i].len = len;
        std::fprintf(stderr, "qswitch_relay: peer %d is %s\n", i, peer_text(peers_[i]).c_str());
        return i;
      }
    }
    return -1;
  }

  void forget(int i, const char* why) {
    std::fprintf(stderr, "qswitch_relay: peer %d (%s) %s: forgotten\n", i,
                 peer_text(peers_[i]).c_str(), why);
    peers_[i] = {};
  }

  // Sends siov_[to][0..n) to peer `to`. sendmmsg() waits up to kStuckMs for each datagram the
  // peer has no room for; what is left after a timeout is dropped.
  void send_to(unsigned to, unsigned n) {
    unsigned done = 0;
    int intr = 0;
    while (done < n) {
      for (unsigned i = done; i < n; ++i) {
        msghdr& h = smsgs_[i - done].msg_hdr;
        h = {};
        h.msg_name = &peers_[to].addr;
        h.msg_namelen = peers_[to].len;
        h.msg_iov = &siov_[to][i];
        h.msg_iovlen = 1;
      }
      const int sent = ::sendmmsg(fd_.get(), smsgs_.data(), n - done, MSG_NOSIGNAL);
      if (sent > 0) {
        done += static_cast<unsigned>(sent);
        counters_.forwarded += static_cast<uint64_t>(sent);
        continue;
      }
      const int err = errno;
      if (err == EINTR && g_stop == 0 && ++intr < kMaxIntr) continue;
      if (err == EAGAIN || err == EINTR) {
        counters_.drop_stuck += n - done;  // no room for kStuckMs (or stopping)
        return;
      }
      if (err == ECONNREFUSED || err == ENOENT || err == ENOTDIR) {
        counters_.drop_peer_gone += n - done;
        forget(static_cast<int>(to), std::strerror(err));
        return;
      }
      counters_.drop_send_error += 1;  // EMSGSIZE, ENOBUFS, ...: this datagram only
      done += 1;
    }
  }

  std::string path_;
  Fd fd_;
  BoundPath bound_;
  std::array<Peer, 2> peers_;
  int64_t last_probe_ns_ = INT64_MIN / 2;
  DgramCounters counters_;
  std::unique_ptr<uint8_t[]> slots_ = std::make_unique<uint8_t[]>(kBatch * kSlotSize);
  std::array<mmsghdr, kBatch> rmsgs_{};
  std::array<iovec, kBatch> riov_{};
  std::array<sockaddr_un, kBatch> raddr_{};
  std::array<mmsghdr, kBatch> smsgs_{};
  std::array<std::array<iovec, kBatch>, 2> siov_{};  // per destination peer
};

// ---- command line and main --------------------------------------------------------------------

constexpr const char* kUsage =
    "usage: qswitch_relay stream PATH_A PATH_B\n"
    "       qswitch_relay dgram PATH\n"
    "A minimal relay for bench/compare: the ceiling of any userspace switch on these sockets.\n"
    "  stream PATH_A PATH_B  listen on two unix stream sockets, take one client on each, and\n"
    "                        copy bytes between them (then take the next pair)\n"
    "  dgram PATH            bind a unix datagram socket, learn the first two bound senders,\n"
    "                        and send each one's datagrams to the other\n"
    "Prints \"ready\" once bound; SIGTERM or SIGINT: unlink the paths, print counters, exit 0.\n"
    "Exit: 0 after a signal, 1 when a socket cannot be set up, 2 on bad usage.\n";

struct Args {
  bool stream = false;
  std::vector<std::string> paths;
};

int usage_error(const std::string& why) {
  std::fprintf(stderr, "qswitch_relay: %s\n%s", why.c_str(), kUsage);
  return kExitUsage;
}

// 0 with `args` filled, or the exit status after printing usage (0 for --help).
int parse_args(int argc, char** argv, Args& args) {
  if (argc < 2) return usage_error("missing mode: expected stream or dgram");
  const std::string_view mode = argv[1];
  if (mode == "--help" || mode == "-h") {
    std::fputs(kUsage, stdout);
    return -1;
  }
  size_t want = 0;
  if (mode == "stream") {
    args.stream = true;
    want = 2;
  } else if (mode == "dgram") {
    want = 1;
  } else {
    return usage_error("bad mode '" + std::string(mode) + "': expected stream or dgram");
  }
  for (int i = 2; i < argc; ++i) args.paths.emplace_back(argv[i]);
  if (args.paths.size() != want) {
    return usage_error(std::string(mode) + " takes " + (want == 2 ? "two paths" : "one path") +
                       ", got " + std::to_string(args.paths.size()) +
                       (args.paths.size() > want ? " (extra: '" + args.paths[want] + "')" : ""));
  }
  for (const std::string& p : args.paths) {
    // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
    if (p.empty() || p.size() > 107 || p.find('\0') != std::string::npos || p[0] == '-') {
      return usage_error("bad path '" + p + "': expected a socket path of 1..107 bytes");
    }
  }
  if (args.stream && args.paths[0] == args.paths[1]) {
    return usage_error("bad path '" + args.paths[1] + "': PATH_B must differ from PATH_A");
  }
  return 0;
}

// SIGTERM and SIGINT stop the relay through the self-pipe; SIGPIPE is ignored (sends use
// MSG_NOSIGNAL anyway). False with a message printed.
bool install_signals(Fd& wake_read, Fd& wake_write) {
  std::array<int, 2> pipe_fds{};
  if (::pipe2(pipe_fds.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    std::fprintf(stderr, "qswitch_relay: pipe: %s\n", std::strerror(errno));
    return false;
  }
  wake_read = Fd(pipe_fds[0]);
  wake_write = Fd(pipe_fds[1]);
  g_wake_fd = wake_write.get();
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked send returns and the loop sees g_stop
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}

template <typename Relay>
int serve(Relay& relay, int wake_fd) {
  if (!relay.open()) return 1;
  print_ready();
  const bool ok = relay.run(wake_fd);
  relay.print_counters();
  return ok ? 0 : 1;
}

}  // namespace

}  // namespace qswitch::relay

int main(int argc, char** argv) {
  using namespace qswitch::relay;
  Args args;
  if (const int rc = parse_args(argc, argv, args); rc != 0) return rc < 0 ? 0 : rc;
  Fd wake_read;
  Fd wake_write;
  if (!install_signals(wake_read, wake_write)) return 1;
  if (args.stream) {
    StreamRelay relay(args.paths[0], args.paths[1]);
    return serve(relay, wake_read.get());
  }
  DgramRelay relay(args.paths[0]);
  return serve(relay, wake_read.get());
}
