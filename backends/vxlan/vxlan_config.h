// backends/vxlan/vxlan_config.h: one --vxlan port's VNI, local address and remotes. No libuv
// here: options.h includes it; the port is in vxlan_port.h.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "switch/port_security.h"
#include "switch/vlan.h"

namespace qswitch::backends {

struct VxlanRemote {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

struct VxlanConfig {
  uint32_t vni = 0;          // 0..16777215
  sockaddr_storage local{};  // bound address; port 0 picks one (shown by describe())
  socklen_t local_len = 0;
  std::vector<VxlanRemote> remotes;  // same family as local; at least one, at most kVxlanMaxRemotes
  // The port's VLANs (switch/vlan.h): vlan=N puts the VNI on VLAN N, as a hardware VTEP maps a
  // VNI to a VLAN (frames inside VXLAN are untagged).
  sw::VlanMembership vlans;
  sw::PortSecurity security;  // switch/port_security.h (for every remote's frames together)
};

inline constexpr size_t kVxlanMaxRemotes = 64;

}  // namespace qswitch::backends
