// switch/port_security.h: port security (issue 12): which source MACs and IP addresses a port may
// send from.
//
// Theory of operation
// - Opt in per port (PortSecurity::enabled). A secured port may send only from its own MACs:
//   the ones given up front (the MAC `qswitch exec --mac` or a join line gave its guest, `mac=`),
//   then the first ones it sends from, up to max_macs in all (default 1: one guest, one MAC).
//   A frame from any other source is dropped (drop_mac_spoof) and reported through
//   L2Switch::Events::on_port_security, which rate-limits its warning.
// - A secured port's MACs are pinned in the MAC table in each VLAN it uses them (MacTable::pin):
//   no other port can take them, and they never age; they go when the port goes or its security
//   or VLANs change. A MAC pinned by another port (the slirp gateway's, another secured guest's)
//   cannot become a secured port's own: the frame is dropped as the pin says.
// - ARP: a secured port's ARP packets must name its source MAC as the sender hardware address
//   (an ARP reply claiming another station's MAC is how traffic is stolen); others, and ARP
//   packets too short to hold that address, are dropped (drop_mac_spoof).
// - IP (check_ip()): in a VLAN the switch gives addresses in (a slirp port serves it:
//   address_book.h), or on a port with `ip=` addresses (PortSecurity::ips), a secured port's
//   frames may carry only the addresses it was given, in the frame's VLAN (after its tag):
//   - IPv4: the source is one of `ips` or the frame's source MAC's DHCP lease; 0.0.0.0 only for
//     a DHCP client message (UDP 68 -> 67, the first fragment).
//   - ARP: Ethernet/IPv4 only; the sender IP is allowed as above, or 0.0.0.0 (an RFC 5227
//     probe).
//   - IPv6: the source is link-local (fe80::/10), :: (duplicate address detection), one of
//     `ips`, or the MAC's SLAAC address under the VLAN's slirp prefix. A neighbour advertisement
//     (ICMPv6 136, RFC 4861 section 4.4) must be for a link-local target or an allowed one; to
//     find it the switch walks the extension headers (hop-by-hop, routing, destination options,
//     fragment, AH; at most kMaxIpv6Headers of them), and a frame whose headers run past what
//     it may read is dropped rather than guessed at. A non-first fragment holds no ICMPv6
//     header: its source is checked, nothing more.
//   - Other EtherTypes pass as before (only the MAC is checked).
//   Every IP drop counts drop_ip_spoof and goes through on_port_security naming the address.
//   In a VLAN without a slirp port, on a port without `ip=`, nothing is known to check against:
//   only MACs are checked there, and `ports` says so (L2Switch::checks_ip()).
// - Every check reads the frame's head only: for a frame lent out of a guest's memory (frame.h,
//   split frames) that is the copy of its first bytes (at least kSplitHead), so a guest cannot
//   change what was checked after the decision.
// - No allocation per frame: the held MACs live in a vector reserved for max_macs when security
//   is set (L2Switch::set_security); check_ip() reads and compares.
#pragma once

#include <cstdint>
#include <vector>

#include "switch/address_book.h"
#include "switch/ip_address.h"
#include "switch/mac_address.h"

namespace qswitch::sw {

inline constexpr uint32_t kMaxSecuredMacs = 64;
inline constexpr uint32_t kMaxSecuredIps = 64;
// Extension headers check_ip() walks before an IPv6 frame counts as unreadable.
inline constexpr uint32_t kMaxIpv6Headers = 8;

struct PortSecurity {
  bool enabled = false;
  uint32_t max_macs = 1;         // 1..kMaxSecuredMacs, at least macs.size()
  std::vector<MacAddress> macs;  // held from the start (given)
  std::vector<IpAddress> ips;    // ip=: addresses it may use besides what the switch gave it
  bool operator==(const PortSecurity&) const = default;
};

// Why a secured port's frame was dropped.
enum class SecurityDrop : uint8_t {
  kNotItsMac,     // a source MAC beyond the port's own, max_macs reached
  kArpSenderMac,  // an ARP packet naming another sender hardware address, or cut short
  kIpSource,      // an IPv4 or IPv6 source address the port was not given
  kArpSenderIp,   // an ARP packet claiming an IPv4 address the port was not given
  kNaTarget,      // a neighbour advertisement for an address the port was not given
  kIpUnreadable,  // IPv4/ARP/IPv6 headers cut short, or running past what the switch may read
};

const char* security_drop_text(SecurityDrop why);
// The counter a drop goes to: "drop_mac_spoof" or "drop_ip_spoof".
const char* security_drop_counter(SecurityDrop why);
inline bool is_ip_drop(SecurityDrop why) {
  return why != SecurityDrop::kNotItsMac && why != SecurityDrop::kArpSenderMac;
}

struct IpVerdict {
  bool ok = true;
  SecurityDrop why = SecurityDrop::kIpSource;
  IpAddress addr;  // the address that was refused (kNone when unreadable)
};

// The IP half (see the theory above) of a secured port's frame: `d` is the frame's head, of which
// `readable` bytes may be read; `l3` the offset after its EtherType (14, or 18 behind a tag);
// `src` its source MAC; `vlan` its VLAN.
IpVerdict check_ip(const uint8_t* d, uint32_t readable, uint32_t l3, const MacAddress& src,
                   uint16_t vlan, const PortSecurity& security, const AddressBook& book);

}  // namespace qswitch::sw
