// tools/qswitch-bench/bench_link.cc: connecting a bench port (unix, tcp, unixgram, udp, vde,
// socketpair). TCP/UDP hosts are numeric or "localhost" (mapped to 127.0.0.1): no name lookups.
// Datagram sockets ask for 4 MiB send and receive buffers (SO_*BUFFORCE when privileged, else
// capped by net.core.[rw]mem_max), so a burst of 64 large frames fits and the bench's own
// receive queue is not where frames are lost.
#include "tools/qswitch-bench/bench_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include <cstdlib>

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
      error =
          what + ": connect: " + (r == 0 ? std::string("timed out after 5 s") : errno_text(errno));
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

constexpr int kDgramBufferSize = 4 * 1024 * 1024;

void set_dgram_buffers(int fd) {
  int size = kDgramBufferSize;
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
}

// A numeric host (or localhost) and port as a sockaddr; false when the host is not numeric.
bool inet_address(const std::string& host_text, uint16_t port, sockaddr_storage& ss,
                  socklen_t& len) {
  std::string host = host_text == "localhost" ? "127.0.0.1" : host_text;
  ss = {};
  auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    len = sizeof *sin;
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    len = sizeof *sin6;
    return true;
  }
  return false;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());  // length checked by the caller
  return sun;
}

}  // namespace

BenchLink& BenchLink::operator=(BenchLink&& other) noexcept {
  if (this != &other) {
    reset();
    kind_ = std::exchange(other.kind_, Kind::kNone);
    fd_ = std::exchange(other.fd_, -1);
    ctl_fd_ = std::exchange(other.ctl_fd_, -1);
    vde_ = std::exchange(other.vde_, nullptr);
    bound_path_ = std::exchange(other.bound_path_, std::string());
    temp_dir_ = std::exchange(other.temp_dir_, std::string());
  }
  return *this;
}

void BenchLink::reset() {
#if QSWITCH_BENCH_HAVE_VDE
  if (vde_ != nullptr) vde_close(vde_);  // closes both of its sockets
#endif
  if (vde_ == nullptr && fd_ >= 0) close(fd_);
  if (!bound_path_.empty()) unlink(bound_path_.c_str());
  if (!temp_dir_.empty()) rmdir(temp_dir_.c_str());
  bound_path_.clear();
  temp_dir_.clear();
  kind_ = Kind::kNone;
  fd_ = -1;
  ctl_fd_ = -1;
  vde_ = nullptr;
}

namespace {

// unix:PATH, tcp:HOST:PORT: a connected stream socket (TCP_NODELAY), or -1 with `error`.
int open_stream(const PortAddr& addr, std::string& error) {
  if (addr.kind == AddrKind::kUnix) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, addr.path.data(), addr.path.size());  // length checked at parse
    return connect_socket(AF_UNIX, reinterpret_cast<sockaddr*>(&sun), sizeof sun, addr.text, error);
  }
  std::string host = addr.host == "localhost" ? "127.0.0.1" : addr.host;
  sockaddr_in sin{};
  sockaddr_in6 sin6{};
  int fd = -1;
  if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    sin.sin_port = htons(addr.port);
    fd = connect_socket(AF_INET, reinterpret_cast<sockaddr*>(&sin), sizeof sin, addr.text, error);
  } else if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) == 1) {
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(addr.port);
    fd =
        connect_socket(AF_INET6, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6, addr.text, error);
  } else {
    error = addr.text + ": HOST must be a numeric IPv4/IPv6 address or localhost";
    return -1;
  }
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// udp:[LHOST:LPORT-]HOST:PORT: a bound and connected UDP socket.
BenchLink open_udp(const PortAddr& addr, std::string& error) {
  sockaddr_storage remote{};
  socklen_t remote_len = 0;
  if (!inet_address(addr.host, addr.port, remote, remote_len)) {
    error = addr.text + ": HOST must be a numeric IPv4/IPv6 address or localhost";
    return {};
  }
  sockaddr_storage local{};
  socklen_t local_len = 0;
  std::string bind_host = addr.bind_host;
  if (bind_host.empty()) bind_host = remote.ss_family == AF_INET ? "127.0.0.1" : "::1";
  if (!inet_address(bind_host, addr.bind_port, local, local_len) ||
      local.ss_family != remote.ss_family) {
    error = addr.text + ": LHOST must be a numeric address of the same family as RHOST";
    return {};
  }
  int fd = socket(remote.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = addr.text + ": socket: " + errno_text(errno);
    return {};
  }
  BenchLink link = BenchLink::from_fd(BenchLink::Kind::kDgram, fd);
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), local_len) != 0) {
    error = addr.text + ": bind " + bind_host + ":" + std::to_string(addr.bind_port) + ": " +
            errno_text(errno);
    return {};
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&remote), remote_len) != 0) {
    error = addr.text + ": connect: " + errno_text(errno);
    return {};
  }
  set_dgram_buffers(fd);
  return link;
}

}  // namespace

BenchLink BenchLink::open_unixgram(const PortAddr& addr, std::string& error) {
  BenchLink link;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = addr.text + ": socket: " + errno_text(errno);
    return link;
  }
  link.kind_ = Kind::kDgram;
  link.fd_ = fd;  // from here on, link.reset() cleans up whatever was made
  std::string local = addr.bind_path;
  if (local.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/qswitch-bench.XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      error = addr.text + ": mkdtemp " + dir + ": " + errno_text(errno);
      link.reset();
      return link;
    }
    link.temp_dir_ = dir;
    local = dir + "/port.sock";
    if (local.size() > 107) {
      error = addr.text + ": temp path " + local + " is longer than 107 bytes (set TMPDIR)";
      link.reset();
      return link;
    }
  }
  sockaddr_un lsun = unix_address(local);
  if (bind(fd, reinterpret_cast<sockaddr*>(&lsun), sizeof lsun) != 0) {
    error = addr.text + ": bind " + local + ": " + errno_text(errno);
    link.reset();
    return link;
  }
  link.bound_path_ = local;
  sockaddr_un rsun = unix_address(addr.path);
  if (connect(fd, reinterpret_cast<sockaddr*>(&rsun), sizeof rsun) != 0) {
    error = addr.text + ": connect " + addr.path + ": " + errno_text(errno) +
            " (is the switch's datagram socket there?)";
    link.reset();
    return link;
  }
  set_dgram_buffers(fd);
  return link;
}

BenchLink BenchLink::open_vde(const PortAddr& addr, std::string& error) {
  BenchLink link;
#if QSWITCH_BENCH_HAVE_VDE
  std::string url = addr.path;
  char descr[] = "qswitch-bench";
  VDECONN* conn = vde_open(url.data(), descr, nullptr);
  if (conn == nullptr) {
    error = addr.text + ": vde_open: " + errno_text(errno);
    return link;
  }
  link.kind_ = Kind::kVde;
  link.vde_ = conn;
  link.fd_ = vde_datafd(conn);
  link.ctl_fd_ = vde_ctlfd(conn);
  if (!set_nonblocking(link.fd_)) {
    error = addr.text + ": cannot make the VDE data socket nonblocking: " + errno_text(errno);
    link.reset();
  }
#else
  error = addr.text + ": this qswitch-bench was built without libvdeplug (libvdeplug-dev)";
#endif
  return link;
}

BenchLink open_link(const PortAddr& addr, std::string& error) {
  switch (addr.kind) {
    case AddrKind::kUnix:
    case AddrKind::kTcp: {
      const int fd = open_stream(addr, error);
      return fd < 0 ? BenchLink{} : BenchLink::from_fd(BenchLink::Kind::kStream, fd);
    }
    case AddrKind::kUnixgram:
      return BenchLink::open_unixgram(addr, error);
    case AddrKind::kUdp:
      return open_udp(addr, error);
    case AddrKind::kVde:
      return BenchLink::open_vde(addr, error);
  }
  error = addr.text + ": unknown address kind";
  return {};
}

bool open_direct_pair(bool dgram, BenchLink& a, BenchLink& b, std::string& error) {
  int sv[2];
  int type = dgram ? SOCK_DGRAM : SOCK_STREAM;
  if (socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    error = std::string("socketpair: ") + errno_text(errno);
    return false;
  }
  BenchLink::Kind kind = dgram ? BenchLink::Kind::kDgram : BenchLink::Kind::kStream;
  a = BenchLink::from_fd(kind, sv[0]);
  b = BenchLink::from_fd(kind, sv[1]);
  if (dgram) {
    set_dgram_buffers(sv[0]);
    set_dgram_buffers(sv[1]);
  }
  return true;
}

}  // namespace qswitch::tools
