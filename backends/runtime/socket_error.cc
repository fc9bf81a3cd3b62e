// backends/runtime/socket_error.cc: see the header.
#include "backends/runtime/socket_error.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

namespace qswitch::backends {

namespace {
constexpr int kMaxErrQueue = 64;  // bounds one call; the rest comes with the next EPOLLERR
}  // namespace

SocketError take_socket_error(int fd) {
  SocketError out;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    out.error = errno;
    return out;
  }
  out.readable = true;
  out.error = err;
  int domain = 0;
  len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return out;
  // Only inet sockets have an error queue; a unix socket would hand out a real datagram for
  // MSG_ERRQUEUE.
  if (domain != AF_INET && domain != AF_INET6) return out;
  uint8_t data[64];
  uint8_t control[256];
  for (int i = 0; i < kMaxErrQueue; ++i) {
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) break;
    out.queued += 1;
  }
  return out;
}

bool is_unreachable_error(int error) {
  switch (error) {
    case ECONNREFUSED:  // port unreachable
    case EHOSTUNREACH:  // host unreachable, time exceeded
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case ENONET:
    case EACCES:  // administratively prohibited
    case EPERM:
    case EPROTO:       // parameter problem
    case ENOPROTOOPT:  // protocol unreachable
    case EOPNOTSUPP:   // source route failed
    case EMSGSIZE:     // fragmentation needed / packet too big
    case ETIMEDOUT:
    case ECONNRESET:
      return true;
    default:
      return false;
  }
}

bool is_peer_gone_error(int error) {
  return error == ECONNREFUSED || error == ENOENT || error == ENOTCONN || error == ECONNRESET ||
         error == EPIPE;
}

}  // namespace qswitch::backends
