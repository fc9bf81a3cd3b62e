// tools/qswitch/services/slirp_commands.h: the slirp port's control commands (hostfwd.add,
// hostfwd.remove, hostfwd.list, usernet, dhcp.leases), registered on a ControlApi.
#pragma once

#include <uv.h>

#include "slirp/slirp_port.h"
#include "tools/qswitch/services/control_api.h"

namespace qswitch::tools {

// `port` must outlive `api`'s use of these commands. `loop`, when given, is the loop whose
// uv_now()/1000 is the DHCP server's clock (SlirpPort passes loop.now() / 1000): dhcp.leases
// then says how many seconds each offer or lease has left.
void register_slirp_commands(ControlApi& api, slirp::SlirpPort& port, uv_loop_t* loop = nullptr);

}  // namespace qswitch::tools
