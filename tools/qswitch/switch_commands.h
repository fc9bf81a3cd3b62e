// tools/qswitch/switch_commands.h: control commands about the switch itself: ports, macs,
// stats, port.add, port.remove. Registered in the same ControlApi as the slirp commands.
#pragma once

#include "backends/switch_loop.h"
#include "tools/qswitch/control_api.h"
#include "tools/qswitch/endpoints.h"

namespace qswitch::tools {

void register_switch_commands(ControlApi& api, backends::SwitchLoop& loop, Endpoints& endpoints);

}  // namespace qswitch::tools
