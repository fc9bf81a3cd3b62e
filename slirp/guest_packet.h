// slirp/guest_packet.h: the IP header of a frame a guest sends to the slirp port, read as
// libslirp's ip_input / ip6_input would read it, for the port's checks before slirp_input
// (slirp/loopback_target.h, slirp/host_sockets.h).
//
// Theory of operation
// - parse_guest_packet() reads an Ethernet frame and, for IPv4 or IPv6, returns where its
//   addresses and transport header are. Anything else (ARP, a header that does not fit, an IPv4
//   total length past the frame: packets libslirp drops as malformed) gives nullopt.
// - IPv4 fragments: `first_fragment` is false for every fragment but the one at offset 0, which
//   alone holds the transport header (libslirp's reassembly cannot replace it with a later one).
//   libslirp handles no IPv6 extension headers (ip6_input takes TCP, UDP and ICMPv6 as the next
//   header only), so an IPv6 packet is always its own first fragment.
// - Untrusted input: every pointer returned lies inside the frame; l4_size is what is there,
//   bounded by the IP header's own length field. No allocation; runs per guest frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "switch/frame.h"

namespace qswitch::slirp {

inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoIcmp6 = 58;

struct GuestPacket {
  bool ipv6 = false;
  const uint8_t* src = nullptr;  // 4 or 16 bytes, network order
  const uint8_t* dst = nullptr;
  uint8_t proto = 0;  // IPv4 protocol / IPv6 next header
  bool first_fragment = true;
  const uint8_t* l4 = nullptr;  // the transport header (meaningful when first_fragment)
  size_t l4_size = 0;
};

std::optional<GuestPacket> parse_guest_packet(const uint8_t* frame, size_t size);

using sw::load_be16;  // switch/frame.h
using sw::load_be32;

}  // namespace qswitch::slirp
