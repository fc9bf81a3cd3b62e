// slirp/loopback_target.h: which guest packets libslirp's NAT would carry to the host's own
// loopback, and to which port.
//
// Theory of operation
// - libslirp (4.7, socket.c sotranslate_out) connects a guest's TCP or UDP flow addressed to
//   the slirp host address (10.0.2.2) or to 255.255.255.255 to 127.0.0.1, and one addressed
//   anywhere in the IPv6 prefix (fec0::/64) or to ff02::1 to ::1, unless disable_host_loopback.
//   Older libslirp maps every address of the slirp network (except the DNS address) to
//   127.0.0.1. A guest may also simply name 127.0.0.1, 0.0.0.0, ::1 or :: (a v4-mapped
//   ::ffff:127.x as well): libslirp connects there as asked.
// - loopback_target() reads an Ethernet frame from a guest and, for an IPv4 or IPv6 TCP or UDP
//   packet to any of those destinations (the whole slirp network, to cover both behaviours),
//   returns its transport, whether it would reach the IPv6 loopback, and its destination port.
//   Anything else (ARP, ICMP, other destinations, IPv4 fragments after the first) gives nullopt:
//   it reaches no loopback socket by port.
// - Untrusted input: the IP header is read by parse_guest_packet() (slirp/guest_packet.h); a
//   packet libslirp would reject as malformed gives nullopt (libslirp drops it). The ports of a
//   fragmented IPv4 datagram are in its first fragment; a first fragment too short to hold both
//   ports is reported as `too_short` so the caller drops it (RFC 1858, the tiny fragment
//   attack).
// - No allocation; runs per guest frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "backends/runtime/io/own_sockets.h"
#include "slirp/guest_packet.h"
#include "slirp/slirp_options.h"

namespace qswitch::slirp {

struct LoopbackTarget {
  io::Transport transport = io::Transport::kTcp;
  bool ipv6 = false;       // reaches the IPv6 loopback (::1) rather than 127.0.0.1
  uint16_t port = 0;       // destination port
  bool too_short = false;  // a first IPv4 fragment without both ports: port is not known
};

std::optional<LoopbackTarget> loopback_target(const GuestPacket& packet,
                                              const SlirpOptions& options);
// The same, from the Ethernet frame.
std::optional<LoopbackTarget> loopback_target(const uint8_t* frame, size_t size,
                                              const SlirpOptions& options);

}  // namespace qswitch::slirp
