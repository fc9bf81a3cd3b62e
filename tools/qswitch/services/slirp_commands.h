// tools/qswitch/services/slirp_commands.h: the slirp ports' control commands (hostfwd.add,
// hostfwd.remove, hostfwd.list, usernet, dhcp.leases, slirp.sockets, dns.add, dns.remove,
// dns.list), registered on a ControlApi.
//
// A switch has a slirp port per VLAN at most. Every command takes an optional argument "vlan"
// (a number 1..4094; a string of digits too, as `qswitch ctl ... vlan=N` sends it) that picks
// the VLAN's port; without it the command goes to the only slirp port, and on a switch with
// several it is an error naming their VLANs. A switch with none answers each with an error
// saying so.
#pragma once

#include <uv.h>

#include <vector>

#include "slirp/slirp_port.h"
#include "tools/qswitch/services/control_api.h"

namespace qswitch::tools {

// `ports` (each on its own VLAN, adopted: SlirpPort::vlans() says which) must outlive `api`'s
// use of these commands; none: the commands answer "no slirp port". `loop`, when given, is the
// loop whose uv_now()/1000 is the DHCP server's clock (SlirpPort passes loop.now() / 1000):
// dhcp.leases then says how many seconds each offer or lease has left.
void register_slirp_commands(ControlApi& api, const std::vector<slirp::SlirpPort*>& ports,
                             uv_loop_t* loop = nullptr);
// One slirp port.
void register_slirp_commands(ControlApi& api, slirp::SlirpPort& port, uv_loop_t* loop = nullptr);

}  // namespace qswitch::tools
