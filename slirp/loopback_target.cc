// slirp/loopback_target.cc: see the header.
#include "slirp/loopback_target.h"

#include <arpa/inet.h>

#include <cstring>

namespace qswitch::slirp {

namespace {

constexpr size_t kEthHeader = 14;
constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

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

std::optional<LoopbackTarget> l4_target(uint8_t proto, const uint8_t* l4, size_t l4_size,
                                        bool ipv6) {
  if (proto != kProtoTcp && proto != kProtoUdp) return std::nullopt;
  LoopbackTarget t;
  t.transport = proto == kProtoTcp ? io::Transport::kTcp : io::Transport::kUdp;
  t.ipv6 = ipv6;
  if (l4_size < 4) {
    t.too_short = true;
    return t;
  }
  t.port = be16(l4 + 2);
  return t;
}

}  // namespace

std::optional<LoopbackTarget> loopback_target(const uint8_t* frame, size_t size,
                                              const SlirpOptions& options) {
  if (size < kEthHeader) return std::nullopt;
  const uint16_t type = be16(frame + 12);
  const uint8_t* ip = frame + kEthHeader;
  const size_t avail = size - kEthHeader;
  if (type == kEthertypeIpv4) {
    // As libslirp's ip_input: a header that does not fit, or a total length past the frame, is
    // dropped there.
    if (avail < 20 || (ip[0] >> 4) != 4) return std::nullopt;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    const size_t total = be16(ip + 2);
    if (ihl < 20 || ihl > avail || total < ihl || total > avail) return std::nullopt;
    if ((be16(ip + 6) & 0x1fff) != 0) return std::nullopt;  // not the first fragment
    if (!v4_reaches_loopback(be32(ip + 16), options)) return std::nullopt;
    return l4_target(ip[9], ip + ihl, total - ihl, false);
  }
  if (type == kEthertypeIpv6) {
    if (avail < 40 || (ip[0] >> 4) != 6) return std::nullopt;
    const uint8_t* dst = ip + 24;
    const size_t payload = be16(ip + 4);
    const size_t l4_size = payload < avail - 40 ? payload : avail - 40;
    in6_addr a;
    std::memcpy(a.s6_addr, dst, 16);
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      // libslirp's IPv6 socket connects to the IPv4 address inside.
      if (!v4_reaches_loopback(be32(dst + 12), options)) return std::nullopt;
      return l4_target(ip[6], ip + 40, l4_size, false);
    }
    static const uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const bool reaches = in_prefix(dst, options.ipv6_prefix, options.ipv6_prefix_len) ||
                         std::memcmp(dst, kAllNodes, 16) == 0 || IN6_IS_ADDR_LOOPBACK(&a) ||
                         IN6_IS_ADDR_UNSPECIFIED(&a);
    if (!reaches) return std::nullopt;
    return l4_target(ip[6], ip + 40, l4_size, true);
  }
  return std::nullopt;
}

}  // namespace qswitch::slirp
