// switch/port_security.cc: see the header.
#include "switch/port_security.h"

#include <algorithm>

#include "switch/frame.h"

namespace qswitch::sw {

const char* security_drop_text(SecurityDrop why) {
  switch (why) {
    case SecurityDrop::kNotItsMac:
      return "a source MAC that is not one of the secured port's own";
    case SecurityDrop::kArpSenderMac:
      return "an ARP packet whose sender MAC is not the frame's source (or is cut short)";
    case SecurityDrop::kIpSource:
      return "an IP packet from an address the secured port was not given";
    case SecurityDrop::kArpSenderIp:
      return "an ARP packet claiming an IPv4 address the secured port was not given";
    case SecurityDrop::kNaTarget:
      return "a neighbour advertisement for an address the secured port was not given";
    case SecurityDrop::kIpUnreadable:
      return "an IPv4, ARP or IPv6 packet whose headers are cut short or run past what the "
             "switch reads";
  }
  return "?";
}

const char* security_drop_counter(SecurityDrop why) {
  return is_ip_drop(why) ? "drop_ip_spoof" : "drop_mac_spoof";
}

namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherArp = 0x0806;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kDhcpClientPort = 68;
constexpr uint16_t kDhcpServerPort = 67;
// IPv6 next headers (RFC 8200 section 4; AH: RFC 4302), ICMPv6 (RFC 4443), NA (RFC 4861).
constexpr uint8_t kHopByHop = 0, kRouting = 43, kFragment = 44, kAuth = 51, kIcmpv6 = 58,
                  kDestOptions = 60;
constexpr uint8_t kNeighborAdvert = 136;

IpVerdict drop(SecurityDrop why, const IpAddress& addr = {}) { return {false, why, addr}; }

bool allowed(const IpAddress& addr, const MacAddress& src, uint16_t vlan, const PortSecurity& s,
             const AddressBook& book) {
  return std::find(s.ips.begin(), s.ips.end(), addr) != s.ips.end() || book.gave(vlan, src, addr);
}

// RFC 791: the source, and for 0.0.0.0 a DHCP client message (RFC 2131 section 4.1).
IpVerdict check_ipv4(const uint8_t* d, uint32_t n, uint32_t l3, const MacAddress& src,
                     uint16_t vlan, const PortSecurity& s, const AddressBook& book) {
  if (n < l3 + 20) return drop(SecurityDrop::kIpUnreadable);
  const uint8_t* ip = d + l3;
  const IpAddress from = IpAddress::v4(ip + 12);
  if (from.is_unspecified()) {
    const uint32_t ihl = uint32_t{ip[0] & 0x0fu} * 4;
    const bool first = (load_be16(ip + 6) & 0x1fff) == 0;
    if (ihl >= 20 && first && ip[9] == kProtoUdp && n >= l3 + ihl + 4 &&
        load_be16(ip + ihl) == kDhcpClientPort && load_be16(ip + ihl + 2) == kDhcpServerPort) {
      return {};
    }
    return drop(SecurityDrop::kIpSource, from);
  }
  if (!allowed(from, src, vlan, s, book)) return drop(SecurityDrop::kIpSource, from);
  return {};
}

// RFC 826 for Ethernet and IPv4: htype 1, ptype 0x0800, hlen 6, plen 4; the sender IP at 14.
IpVerdict check_arp(const uint8_t* d, uint32_t n, uint32_t l3, const MacAddress& src, uint16_t vlan,
                    const PortSecurity& s, const AddressBook& book) {
  if (n < l3 + 28) return drop(SecurityDrop::kIpUnreadable);
  const uint8_t* a = d + l3;
  if (load_be16(a) != 1 || load_be16(a + 2) != kEtherIpv4 || a[4] != 6 || a[5] != 4) {
    return drop(SecurityDrop::kIpUnreadable);
  }
  const IpAddress sender = IpAddress::v4(a + 14);
  if (sender.is_unspecified() || allowed(sender, src, vlan, s, book)) return {};
  return drop(SecurityDrop::kArpSenderIp, sender);
}

// RFC 8200: the source, then the header chain up to an ICMPv6 neighbour advertisement's target.
IpVerdict check_ipv6(const uint8_t* d, uint32_t n, uint32_t l3, const MacAddress& src,
                     uint16_t vlan, const PortSecurity& s, const AddressBook& book) {
  if (n < l3 + 40) return drop(SecurityDrop::kIpUnreadable);
  const uint8_t* ip = d + l3;
  const IpAddress from = IpAddress::v6(ip + 8);
  if (!from.is_v6_link_local() && !from.is_unspecified() && !allowed(from, src, vlan, s, book)) {
    return drop(SecurityDrop::kIpSource, from);
  }
  uint8_t next = ip[6];
  uint32_t at = l3 + 40;
  for (uint32_t headers = 0; headers <= kMaxIpv6Headers; ++headers) {
    switch (next) {
      case kHopByHop:
      case kRouting:
      case kDestOptions:
      case kAuth: {
        if (headers == kMaxIpv6Headers || n < at + 2) return drop(SecurityDrop::kIpUnreadable);
        const uint32_t len =
            next == kAuth ? (uint32_t{d[at + 1]} + 2) * 4 : (uint32_t{d[at + 1]} + 1) * 8;
        next = d[at];
        at += len;
        break;
      }
      case kFragment:
        if (headers == kMaxIpv6Headers || n < at + 8) return drop(SecurityDrop::kIpUnreadable);
        if ((load_be16(d + at + 2) & 0xfff8) != 0) return {};  // a later fragment: no ICMPv6 header
        next = d[at];
        at += 8;
        break;
      case kIcmpv6: {
        if (n < at + 1) return drop(SecurityDrop::kIpUnreadable);
        if (d[at] != kNeighborAdvert) return {};
        if (n < at + 24) return drop(SecurityDrop::kIpUnreadable);
        const IpAddress target = IpAddress::v6(d + at + 8);
        if (target.is_v6_link_local() || allowed(target, src, vlan, s, book)) return {};
        return drop(SecurityDrop::kNaTarget, target);
      }
      default:
        return {};  // an upper layer, ESP or no next header: not a neighbour advertisement
    }
  }
  return drop(SecurityDrop::kIpUnreadable);
}

}  // namespace

IpVerdict check_ip(const uint8_t* d, uint32_t readable, uint32_t l3, const MacAddress& src,
                   uint16_t vlan, const PortSecurity& security, const AddressBook& book) {
  if (readable < l3) return {};  // no EtherType after a tag: classify() has dropped it already
  switch (load_be16(d + l3 - 2)) {
    case kEtherIpv4:
      return check_ipv4(d, readable, l3, src, vlan, security, book);
    case kEtherArp:
      return check_arp(d, readable, l3, src, vlan, security, book);
    case kEtherIpv6:
      return check_ipv6(d, readable, l3, src, vlan, security, book);
    default:
      return {};
  }
}

}  // namespace qswitch::sw
