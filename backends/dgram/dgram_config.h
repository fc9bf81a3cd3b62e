// backends/dgram/dgram_config.h: what one --dgram socket is (mode, addresses, name), as the
// command line and port.add give it. No libuv here: options.h includes it; the port is in
// dgram_port.h.
#pragma once

#include <sys/socket.h>

#include <string>

#include "switch/port_security.h"
#include "switch/vlan.h"

namespace qswitch::backends {

struct DgramConfig {
  enum class Mode { kLearn, kConnected, kMulticast };
  Mode mode = Mode::kLearn;
  int family = AF_UNIX;      // AF_UNIX, AF_INET or AF_INET6
  sockaddr_storage local{};  // bound address (the group and port for kMulticast)
  socklen_t local_len = 0;
  sockaddr_storage remote{};  // kConnected: the peer
  socklen_t remote_len = 0;
  sockaddr_storage mcast_if{};  // kMulticast: interface address (AF_INET, any = default)
  std::string name;             // how it is shown: "unix:/run/sw.dgram", "udp:127.0.0.1:5000"
  std::string endpoint_id;      // set on every port of the socket ("dgram-1"), may be empty
  sw::VlanMembership vlans;     // of every port of the socket (switch/vlan.h)
  sw::PortSecurity security;    // of every port of the socket (switch/port_security.h)
};

}  // namespace qswitch::backends
