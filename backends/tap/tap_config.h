// backends/tap/tap_config.h: which tap device one --tap opens (a name or an inherited fd).
// No libuv here: options.h includes it; the port is in tap_port.h.
#pragma once

#include <string>

#include "switch/port_security.h"
#include "switch/vlan.h"

namespace qswitch::backends {

struct TapSpec {
  std::string name;           // interface name (at most 15 bytes); ignored when fd >= 0
  int fd = -1;                // an inherited tap fd, taken over by the port
  sw::VlanMembership vlans;   // switch/vlan.h
  sw::PortSecurity security;  // switch/port_security.h
};

}  // namespace qswitch::backends
