// backends/runtime/io/socket_address.cc: non-blocking sockets for stream ports.
#include "backends/runtime/io/socket_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace qswitch::io {

namespace {

SocketResult fail(int err, std::string what) {
  SocketResult r;
  r.error = err;
  r.message = std::move(what) + ": " + std::strerror(err);
  return r;
}

bool make_unix_addr(const std::string& path, sockaddr_un& sun, socklen_t& len) {
  std::memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path) return false;
  std::memcpy(sun.sun_path, path.data(), path.size());
  len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  return true;
}

bool make_inet_addr(const SocketAddress& ep, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, ep.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(ep.port);
    len = sizeof *v4;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, ep.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(ep.port);
    len = sizeof *v6;
    return true;
  }
  return false;
}

// mkdir -p with 0700 for the directories we create; existing ones are left as they are.
void make_parent_dirs(const std::string& path) {
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
    const std::string dir = path.substr(0, at);
    ::mkdir(dir.c_str(), 0700);
  }
}

}  // namespace

std::string sockaddr_text(const sockaddr_storage& ss, socklen_t len) {
  char host[INET6_ADDRSTRLEN] = "";
  switch (ss.ss_family) {
    case AF_INET: {
      const auto& v4 = reinterpret_cast<const sockaddr_in&>(ss);
      inet_ntop(AF_INET, &v4.sin_addr, host, sizeof host);
      return std::string(host) + ":" + std::to_string(ntohs(v4.sin_port));
    }
    case AF_INET6: {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(ss);
      inet_ntop(AF_INET6, &v6.sin6_addr, host, sizeof host);
      return "[" + std::string(host) + "]:" + std::to_string(ntohs(v6.sin6_port));
    }
    case AF_UNIX: {
      const auto& un = reinterpret_cast<const sockaddr_un&>(ss);
      const size_t off = offsetof(sockaddr_un, sun_path);
      if (len <= off) return "(unnamed)";
      const size_t n = std::min<size_t>(len - off, sizeof un.sun_path);
      if (un.sun_path[0] == '\0') return "@" + std::string(un.sun_path + 1, n - 1);
      return std::string(un.sun_path, strnlen(un.sun_path, n));
    }
    default:
      return "(unknown address family)";
  }
}

std::string SocketAddress::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

int bind_unix(int fd, int type, const sockaddr_un& sun, socklen_t len, std::string& error) {
  const std::string path(sun.sun_path, strnlen(sun.sun_path, sizeof sun.sun_path));
  const auto* addr = reinterpret_cast<const sockaddr*>(&sun);
  auto failed = [&error](int err, const std::string& what) {
    error = what + ": " + std::strerror(err);
    return err;
  };
  make_parent_dirs(path);
  if (::bind(fd, addr, len) != 0) {
    if (errno != EADDRINUSE) return failed(errno, "bind " + path);
    // Something is there. A socket nobody answers on is a leftover of a crashed run: replace
    // it. One that answers is live: refuse.
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return failed(EADDRINUSE, path + " exists and is not a socket");
    }
    Fd probe = Fd::adopt(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    if (probe.valid() && ::connect(probe.get(), addr, len) == 0) {
      return failed(EADDRINUSE, path +
                                    " is in use by another process (is another qswitch "
                                    "running?)");
    }
    ::unlink(path.c_str());
    if (::bind(fd, addr, len) != 0) return failed(errno, "bind " + path);
  }
  ::chmod(path.c_str(), 0600);
  return 0;
}

SocketResult listen_on(const SocketAddress& ep) {
  if (ep.kind == SocketAddress::Kind::kUnix) {
    sockaddr_un sun;
    socklen_t len;
    if (!make_unix_addr(ep.path, sun, len))
      return fail(ENAMETOOLONG, "unix socket path " + ep.path);
    int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (raw < 0) return fail(errno, "socket");
    Fd fd = Fd::adopt(raw);
    SocketResult r;
    r.error = bind_unix(fd.get(), SOCK_STREAM, sun, len, r.message);
    if (r.error != 0) return r;
    if (::listen(fd.get(), SOMAXCONN) != 0) return fail(errno, "listen " + ep.path);
    r.fd = std::move(fd);
    return r;
  }
  sockaddr_storage ss;
  socklen_t len;
  if (!make_inet_addr(ep, ss, len)) return fail(EINVAL, "address " + ep.host);
  int raw = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (raw < 0) return fail(errno, "socket");
  Fd fd = Fd::adopt(raw);
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return fail(errno, "bind " + ep.to_string());
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) return fail(errno, "listen " + ep.to_string());
  SocketResult r;
  r.fd = std::move(fd);
  return r;
}

uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
}

uint16_t bound_port(int fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

SocketResult start_connect(const SocketAddress& ep) {
  sockaddr_storage ss;
  socklen_t len;
  int family;
  if (ep.kind == SocketAddress::Kind::kUnix) {
    auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
    if (!make_unix_addr(ep.path, *sun, len))
      return fail(ENAMETOOLONG, "unix socket path " + ep.path);
    family = AF_UNIX;
  } else {
    if (!make_inet_addr(ep, ss, len)) return fail(EINVAL, "address " + ep.host);
    family = ss.ss_family;
  }
  int raw = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (raw < 0) return fail(errno, "socket");
  SocketResult r;
  r.fd = Fd::adopt(raw);
  if (family != AF_UNIX) {
    const int one = 1;
    ::setsockopt(raw, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(raw, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    // A unix socket with a full backlog says EAGAIN; treat it as "try again later".
    if (errno == EINPROGRESS) {
      r.error = EINPROGRESS;
      return r;
    }
    return fail(errno, "connect " + ep.to_string());
  }
  return r;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

std::string peer_name(int fd, SocketAddress::Kind kind) {
  if (kind == SocketAddress::Kind::kUnix) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
      return "pid " + std::to_string(cred.pid);
    }
    return "unknown peer";
  }
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown peer";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
    port = ntohs(v4->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
  port = ntohs(v6->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

}  // namespace qswitch::io
