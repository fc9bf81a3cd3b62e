// switch/port_security.h: port security (issue 12): which source MACs a port may send from.
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
//   packets too short to hold that address, are dropped (drop_mac_spoof). Read from the frame's
//   head, so a guest cannot change what was checked after the decision (frame.h, split frames).
// - No allocation per frame: the held MACs live in a vector reserved for max_macs when security
//   is set (L2Switch::set_security).
#pragma once

#include <cstdint>
#include <vector>

#include "switch/mac_address.h"

namespace qswitch::sw {

inline constexpr uint32_t kMaxSecuredMacs = 64;

struct PortSecurity {
  bool enabled = false;
  uint32_t max_macs = 1;         // 1..kMaxSecuredMacs, at least macs.size()
  std::vector<MacAddress> macs;  // held from the start (given)
  bool operator==(const PortSecurity&) const = default;
};

// Why a secured port's frame was dropped.
enum class SecurityDrop : uint8_t {
  kNotItsMac,     // a source MAC beyond the port's own, max_macs reached
  kArpSenderMac,  // an ARP packet naming another sender hardware address, or cut short
};

const char* security_drop_text(SecurityDrop why);

}  // namespace qswitch::sw
