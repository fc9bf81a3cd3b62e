// tools/qswitch/config/dgram_options.h: the --dgram value as a typed backends::DgramConfig.
//   unix:PATH                            learning: each sender's address becomes a port
//   udp:HOST:PORT                        learning over UDP
//   udp:LHOST:LPORT-RHOST:RPORT          connected: one port, one peer
//   mcast:GROUP:PORT[,localaddr=ADDR]    one port on an IPv4 multicast group
// Hosts are numeric ("[::1]" for IPv6); qswitch never resolves names.
#pragma once

#include <optional>
#include <string>

#include "backends/dgram/dgram_config.h"

namespace qswitch::tools {

std::optional<backends::DgramConfig> parse_dgram_spec(const std::string& text, std::string& error);
// The path of a unix --dgram, empty for the others.
std::string dgram_unix_path(const backends::DgramConfig& config);

}  // namespace qswitch::tools
