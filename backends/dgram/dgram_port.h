// backends/dgram/dgram_port.h: QEMU "-netdev dgram" and "-netdev socket,udp=|mcast=" ports:
// one Ethernet frame per datagram, no length prefix.
//
// Theory of operation
// - A DgramSocket is one non-blocking datagram socket on the loop. Reading is batched: one
//   recvmmsg() fills up to DatagramRx::kSlots slots of a receive chunk (zero copy: the switch
//   forwards views into those slots), and up to kReadsPerWake batches run per wake-up so one
//   busy socket cannot starve the others. Writing is batched too: each port's queued frames
//   leave in sendmmsg() calls of up to kSendBatch datagrams.
// - Which port a datagram belongs to depends on the socket's mode:
//   * connected: one port, one peer (a socketpair end from `qswitch exec`, or a UDP socket
//     with a fixed remote: `--dgram udp:LOCAL-REMOTE`, QEMU's `-netdev dgram` with inet
//     addresses and the legacy `-netdev socket,udp=,localaddr=`).
//   * learning (`--dgram unix:PATH`, `--dgram udp:LOCAL` with no remote): each source address
//     that sends a valid frame becomes a port of its own, and its frames go back to that address
//     (QEMU binds its local path and sends to ours; we reply to its path). At most 256
//     peers per socket; a learned peer that sent nothing for the MAC age is closed, and a unix
//     peer whose path is gone (ECONNREFUSED/ENOENT on send) is closed at once.
//   * multicast (`--dgram mcast:GROUP:PORT`): the group is one shared segment and one port.
//     The socket joins the group (bound to GROUP:PORT with SO_REUSEADDR, as QEMU's
//     net/socket.c does, so QEMU guests on the same host share the port); frames are sent from
//     a second socket bound to an ephemeral port, and datagrams from that address (our own,
//     looped back) are ignored.
// - Untrusted input: a datagram shorter than 14 bytes (including an empty one) or longer than
//   65549 (MSG_TRUNC) is dropped and counted (drop_bad_length on the peer's port, or on the
//   socket when no port exists yet), with a rate-limited log line; the port stays up.
// - ICMP errors (backends/runtime/socket_error.h): a connected UDP socket whose peer is not up yet
//   gets "port unreachable" back for what it sent, as a pending socket error that epoll reports
//   as EPOLLERR (and libuv as UV_EBADF, stopping the poll handle) or that the next recv/send
//   returns. It is taken (SO_ERROR), counted (drop_unreachable on the port, or on the socket
//   when it has many peers), logged at a limited rate, and the socket is polled again: the port
//   stays up and carries frames as soon as the peer answers. Only a unix socketpair whose other
//   end closed, or a socket that cannot be read at all, closes its ports.
// - Never sends an empty datagram (DatagramTx pads to 60 bytes, frames are >= 14).
// - Flow control as the stream ports: a port whose queue is over half full while its peer still
//   takes datagrams is congested(); a peer that stops reading (EAGAIN for kStuckMs) is not, and
//   its frames are dropped (drop_queue_full).
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "backends/dgram/dgram_config.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/switch_loop.h"
#include "switch/counters.h"

namespace qswitch::backends {

class DgramSocket;

// Counters of a socket that belong to no port (datagrams from no known peer); see
// kDgramSocketCounters for the meaning of each.
struct DgramSocketCounters {
  uint64_t drop_bad_length = 0;
  uint64_t drop_peer_limit = 0;
  uint64_t drop_own = 0;
  uint64_t drop_unbound = 0;
  uint64_t drop_unreachable = 0;

  // f(name, value) for each counter, in kDgramSocketCounters order.
  template <typename F>
  void for_each(F&& f) const;
};

inline constexpr sw::CounterField<DgramSocketCounters> kDgramSocketCounters[] = {
    {"drop_bad_length", "Runt, empty or oversize datagrams from a peer with no port.",
     &DgramSocketCounters::drop_bad_length},
    {"drop_peer_limit", "Datagrams from a new peer while the socket had 256 ports.",
     &DgramSocketCounters::drop_peer_limit},
    {"drop_own", "The socket's own multicast datagrams, looped back.",
     &DgramSocketCounters::drop_own},
    {"drop_unbound", "Datagrams from an unbound unix socket (no address to answer).",
     &DgramSocketCounters::drop_unbound},
    {"drop_unreachable", "ICMP errors on a socket of many peers (learning).",
     &DgramSocketCounters::drop_unreachable},
};

template <typename F>
void DgramSocketCounters::for_each(F&& f) const {
  sw::for_each_counter(*this, kDgramSocketCounters, f);
}

// One --dgram: binds the socket, creates the ports (now for connected and multicast sockets,
// on first contact for learning ones), closes them all and removes a unix path when destroyed.
class DgramEndpoint {
 public:
  static std::unique_ptr<DgramEndpoint> open(SwitchLoop& loop, const DgramConfig& config,
                                             std::string& error);
  ~DgramEndpoint();
  DgramEndpoint(const DgramEndpoint&) = delete;
  DgramEndpoint& operator=(const DgramEndpoint&) = delete;

  const std::string& name() const;
  // The bound address as text ("udp:127.0.0.1:40112" with the real port when 0 was asked).
  std::string bound() const;
  // The addresses of its UDP sockets (two for multicast: the group's and the sending socket's);
  // none for a unix socket.
  std::vector<sockaddr_storage> udp_addresses() const;
  const DgramSocketCounters& counters() const;
  // Closes every port of this socket (used when the endpoint is removed).
  void close_ports(const std::string& reason);

  explicit DgramEndpoint(std::shared_ptr<DgramSocket> socket);

 private:
  std::shared_ptr<DgramSocket> socket_;
};

// A port on an already connected datagram socket (a socketpair end handed over by
// `qswitch exec`). `fd` is made non-blocking. The port owns the socket and is adopted by the
// loop on `vlans`; returns nullptr with `error` set when fd is not a datagram socket.
LoopPort* adopt_connected_dgram(SwitchLoop& loop, io::Fd fd, std::string peer, std::string& error,
                                const sw::VlanMembership& vlans = {},
                                const sw::PortSecurity& security = {});

}  // namespace qswitch::backends
