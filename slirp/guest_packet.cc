// slirp/guest_packet.cc: see the header.
#include "slirp/guest_packet.h"

namespace qswitch::slirp {

namespace {
constexpr size_t kEthHeader = 14;
constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
}  // namespace

std::optional<GuestPacket> parse_guest_packet(const uint8_t* frame, size_t size) {
  if (size < kEthHeader) return std::nullopt;
  const uint16_t type = load_be16(frame + 12);
  const uint8_t* ip = frame + kEthHeader;
  const size_t avail = size - kEthHeader;
  GuestPacket p;
  if (type == kEthertypeIpv4) {
    // As libslirp's ip_input: a header that does not fit, or a total length past the frame, is
    // dropped there.
    if (avail < 20 || (ip[0] >> 4) != 4) return std::nullopt;
    const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
    const size_t total = load_be16(ip + 2);
    if (ihl < 20 || ihl > avail || total < ihl || total > avail) return std::nullopt;
    p.ipv6 = false;
    p.src = ip + 12;
    p.dst = ip + 16;
    p.proto = ip[9];
    p.first_fragment = (load_be16(ip + 6) & 0x1fff) == 0;
    p.l4 = ip + ihl;
    p.l4_size = total - ihl;
    return p;
  }
  if (type == kEthertypeIpv6) {
    if (avail < 40 || (ip[0] >> 4) != 6) return std::nullopt;
    const size_t payload = load_be16(ip + 4);
    p.ipv6 = true;
    p.src = ip + 8;
    p.dst = ip + 24;
    p.proto = ip[6];
    p.first_fragment = true;
    p.l4 = ip + 40;
    p.l4_size = payload < avail - 40 ? payload : avail - 40;
    return p;
  }
  return std::nullopt;
}

}  // namespace qswitch::slirp
