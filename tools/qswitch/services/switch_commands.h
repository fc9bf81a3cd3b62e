// tools/qswitch/services/switch_commands.h: control commands about the switch itself: ports, macs,
// stats, port.add, port.remove. Registered in the same ControlApi as the slirp commands.
#pragma once

#include "backends/runtime/switch_loop.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"
#include "tools/qswitch/services/endpoints.h"
#include "tools/qswitch/services/metrics_server.h"

namespace qswitch::tools {

// The listeners that are not switch endpoints, for `stats` (null: none, or not created yet).
struct ServiceSockets {
  const tools::ControlServer* control = nullptr;
  const tools::MetricsServer* metrics = nullptr;
};

// The VLAN and port security keys of a request that makes ports (port.add, port.attach): keys in
// `*address` ("unix:/x,vlan=10,port-security=on", taken out of it; null: none there) and the
// arguments "vlan", "trunk", "native" (numbers or strings), "port-security" (true/false or
// "on"/"off"), "mac" (a string or a list of them), "max-macs" (a number) and "ip" (a string
// or a list of them), together
// (vlan_keys.h, security_keys.h). False with `error` naming the key.
bool port_args(const nlohmann::json& args, std::string* address, sw::VlanMembership& vlans,
               sw::PortSecurity& security, std::string& error);
// The argument names port_args() reads.
inline constexpr const char* kPortArgNames[] = {"vlan", "trunk",    "native", "port-security",
                                                "mac",  "max-macs", "ip"};

// `services` (may be null) must outlive the commands; its pointers may change at any time.
void register_switch_commands(ControlApi& api, backends::SwitchLoop& loop, Endpoints& endpoints,
                              const ServiceSockets* services = nullptr);

}  // namespace qswitch::tools
