// tools/qswitch_bench/bench_link.cc: connecting a bench port (unix, tcp, vde, socketpair).
// TCP hosts are numeric or "localhost" (mapped to 127.0.0.1): no name lookups.
#include "tools/qswitch_bench/bench_link.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#if QSWITCH_BENCH_HAVE_VDE
extern "C" {  // libvdeplug.h has no extern "C" of its own
#include <libvdeplug.h>
}
#endif

namespace qswitch::tools {

namespace {

constexpr int kConnectTimeoutMs = 5000;

[[maybe_unused]] bool set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::string errno_text(int err) { return std::strerror(err); }

// Nonblocking connect bounded by kConnectTimeoutMs. Returns the fd or -1 with `error` set.
int connect_socket(int family, const sockaddr* sa, socklen_t len, const std::string& what,
                   std::string& error) {
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = what + ": socket: " + errno_text(errno);
    return -1;
  }
  if (connect(fd, sa, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      error = what + ": connect: " + errno_text(errno);
      close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int r = poll(&p, 1, kConnectTimeoutMs);
    if (r <= 0) {
      error = what + ": connect: " + (r == 0 ? std::string("timed out after 5 s")
                                             : errno_text(errno));
      close(fd);
      return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0) {
      error = what + ": connect: " + errno_text(soerr);
      close(fd);
      return -1;
    }
  }
  return fd;
}

}  // namespace

BenchLink& BenchLink::operator=(BenchLink&& other) noexcept {
  if (this != &other) {
    reset();
    kind_ = std::exchange(other.kind_, Kind::kNone);
    fd_ = std::exchange(other.fd_, -1);
    ctl_fd_ = std::exchange(other.ctl_fd_, -1);
    vde_ = std::exchange(other.vde_, nullptr);
  }
  return *this;
}

void BenchLink::reset() {
#if QSWITCH_BENCH_HAVE_VDE
  if (vde_ != nullptr) vde_close(vde_);  // closes both of its sockets
#endif
  if (vde_ == nullptr && fd_ >= 0) close(fd_);
  kind_ = Kind::kNone;
  fd_ = -1;
  ctl_fd_ = -1;
  vde_ = nullptr;
}

BenchLink open_link(const PortAddr& addr, std::string& error) {
  BenchLink link;
  switch (addr.kind) {
    case AddrKind::kUnix: {
      sockaddr_un sun{};
      sun.sun_family = AF_UNIX;
      std::memcpy(sun.sun_path, addr.path.data(), addr.path.size());  // length checked at parse
      int fd = connect_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&sun), sizeof sun, addr.text,
                              error);
      if (fd < 0) return link;
      link.kind_ = BenchLink::Kind::kStream;
      link.fd_ = fd;
      return link;
    }
    case AddrKind::kTcp: {
      std::string host = addr.host == "localhost" ? "127.0.0.1" : addr.host;
      sockaddr_in sin{};
      sockaddr_in6 sin6{};
      int fd = -1;
      if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) == 1) {
        sin.sin_family = AF_INET;
        sin.sin_port = htons(addr.port);
        fd = connect_socket(AF_INET, reinterpret_cast<sockaddr*>(&sin), sizeof sin, addr.text,
                            error);
      } else if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) == 1) {
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(addr.port);
        fd = connect_socket(AF_INET6, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6, addr.text,
                            error);
      } else {
        error = addr.text + ": HOST must be a numeric IPv4/IPv6 address or localhost";
        return link;
      }
      if (fd < 0) return link;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      link.kind_ = BenchLink::Kind::kStream;
      link.fd_ = fd;
      return link;
    }
    case AddrKind::kVde: {
#if QSWITCH_BENCH_HAVE_VDE
      std::string url = addr.path;
      char descr[] = "qswitch-bench";
      VDECONN* conn = vde_open(url.data(), descr, nullptr);
      if (conn == nullptr) {
        error = addr.text + ": vde_open: " + errno_text(errno);
        return link;
      }
      link.kind_ = BenchLink::Kind::kVde;
      link.vde_ = conn;
      link.fd_ = vde_datafd(conn);
      link.ctl_fd_ = vde_ctlfd(conn);
      if (!set_nonblocking(link.fd_)) {
        error = addr.text + ": cannot make the VDE data socket nonblocking: " + errno_text(errno);
        link.reset();
      }
      return link;
#else
      error = addr.text + ": this qswitch-bench was built without libvdeplug (libvdeplug-dev)";
      return link;
#endif
    }
  }
  error = addr.text + ": unknown address kind";
  return link;
}

bool open_direct_pair(BenchLink& a, BenchLink& b, std::string& error) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string("socketpair: ") + errno_text(errno);
    return false;
  }
  a = BenchLink::from_stream_fd(sv[0]);
  b = BenchLink::from_stream_fd(sv[1]);
  return true;
}

}  // namespace qswitch::tools
