// tools/qswitch/config/net_specs.h: the --tap and --vxlan values as typed backends specs.
//   --tap NAME                 a tap interface name (1..15 bytes, no '/', ':' or whitespace,
//                              not "." or ".."), as Linux's dev_valid_name() accepts
//   --tap fd=N                 an inherited tap fd (N >= 0)
//   --vxlan vni=N,local=ADDR[:PORT],remote=ADDR[:PORT][,remote=...]
//                              vni 0..16777215, local required, 1..64 remotes, every port
//                              defaults to 4789 (RFC 7348's IANA port); local port 0 lets the
//                              kernel pick. Addresses are numeric IPv4 ("10.1.1.1:4789") or IPv6
//                              in brackets ("[fd00::1]:4789", "[fd00::1]"); all of one family.
// Errors name the bad item and say what would be accepted. Nothing here resolves a name.
#pragma once

#include <optional>
#include <string>

#include "backends/tap/tap_config.h"
#include "backends/vxlan/vxlan_config.h"

namespace qswitch::tools {

std::optional<backends::TapSpec> parse_tap_spec(const std::string& text, std::string& error);
std::optional<backends::VxlanConfig> parse_vxlan_spec(const std::string& text, std::string& error);

}  // namespace qswitch::tools
