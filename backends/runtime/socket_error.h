// backends/runtime/socket_error.h: what an error on a datagram socket means and how to take it.
//
// Theory of operation
// - A UDP socket learns of an ICMP error about one of its earlier datagrams (port or host
//   unreachable, ...) as a pending socket error: a connected socket always (RFC 1122 section
//   4.1.3.3), an unconnected one only with IP_RECVERR, which qswitch does not set. epoll reports it
//   as EPOLLERR; libuv turns that into status UV_EBADF and stops the poll handle
//   (libuv src/unix/poll.c, uv__poll_io). The error is also returned, once, by the next
//   recv or send on the socket.
// - None of that means the socket is broken: the peer is not up yet (the usual order is the
//   switch first, QEMU later), or a route is missing for a while. take_socket_error() reads and
//   clears the error (getsockopt SO_ERROR) and empties the error queue; the caller counts it and
//   starts polling again.
// - A unix datagram socket connected to one peer (a `qswitch exec` socketpair) gets ECONNRESET
//   when that peer closes: gone for good. peer_gone() tells that case apart.
#pragma once

namespace qswitch::backends {

struct SocketError {
  bool readable = false;  // false: getsockopt failed (not a socket any more): errno in `error`
  int error = 0;          // the pending error, 0 when there was none
  int queued = 0;         // entries taken from the error queue (MSG_ERRQUEUE)
};

// Reads and clears the socket's pending error and empties its error queue (bounded).
SocketError take_socket_error(int fd);

// An error a UDP socket reports about an earlier datagram (ICMP, RFC 1122 section 4.1.3.3,
// Linux icmp_err_convert): the peer or the path, not the socket.
bool is_unreachable_error(int error);

// A unix socket's peer is gone for good (closed, or its path removed).
bool is_peer_gone_error(int error);

}  // namespace qswitch::backends
