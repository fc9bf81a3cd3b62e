// slirp/loopback_target.cc: see the header.
#include "slirp/loopback_target.h"

#include <arpa/inet.h>

#include <cstring>

namespace qswitch::slirp {

namespace {

// An IPv4 destination (host order) that libslirp connects to the host's loopback.
bool v4_reaches_loopback(uint32_t dst, const SlirpOptions& o) {
  const uint32_t mask = ntohl(o.netmask.s_addr);
  const uint32_t net = ntohl(o.net.s_addr) & mask;
  return (dst & mask) == net || dst == 0xffffffffu || (dst >> 24) == 127 || dst == 0;
}

bool in_prefix(const uint8_t* a, const in6_addr& prefix, unsigned len) {
  const unsigned bytes = len / 8;
  if (std::memcmp(a, prefix.s6_addr, bytes) != 0) return false;
  const unsigned bits = len % 8;
  if (bits == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a[bytes] & mask) == (prefix.s6_addr[bytes] & mask);
}

std::optional<LoopbackTarget> l4_target(const GuestPacket& p, bool ipv6) {
  if (p.proto != kIpProtoTcp && p.proto != kIpProtoUdp) return std::nullopt;
  LoopbackTarget t;
  t.transport = p.proto == kIpProtoTcp ? io::Transport::kTcp : io::Transport::kUdp;
  t.ipv6 = ipv6;
  if (p.l4_size < 4) {
    t.too_short = true;
    return t;
  }
  t.port = load_be16(p.l4 + 2);
  return t;
}

}  // namespace

std::optional<LoopbackTarget> loopback_target(const GuestPacket& p, const SlirpOptions& options) {
  if (!p.first_fragment) return std::nullopt;
  if (!p.ipv6) {
    if (!v4_reaches_loopback(load_be32(p.dst), options)) return std::nullopt;
    return l4_target(p, false);
  }
  in6_addr a;
  std::memcpy(a.s6_addr, p.dst, 16);
  if (IN6_IS_ADDR_V4MAPPED(&a)) {
    // libslirp's IPv6 socket connects to the IPv4 address inside.
    if (!v4_reaches_loopback(load_be32(p.dst + 12), options)) return std::nullopt;
    return l4_target(p, false);
  }
  static const uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const bool reaches = in_prefix(p.dst, options.ipv6_prefix, options.ipv6_prefix_len) ||
                       std::memcmp(p.dst, kAllNodes, 16) == 0 || IN6_IS_ADDR_LOOPBACK(&a) ||
                       IN6_IS_ADDR_UNSPECIFIED(&a);
  if (!reaches) return std::nullopt;
  return l4_target(p, true);
}

std::optional<LoopbackTarget> loopback_target(const uint8_t* frame, size_t size,
                                              const SlirpOptions& options) {
  const std::optional<GuestPacket> p = parse_guest_packet(frame, size);
  if (!p) return std::nullopt;
  return loopback_target(*p, options);
}

}  // namespace qswitch::slirp
