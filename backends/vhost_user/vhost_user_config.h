// backends/vhost_user/vhost_user_config.h: where a vhost-user endpoint is (--vhost-user,
// `port add vhost-user`), as the parsers above see it: free of uv.h.
#pragma once

#include "backends/runtime/io/socket_address.h"
#include "switch/port_security.h"
#include "switch/vlan.h"

namespace qswitch::backends::vhost_user {

struct VhostUserSpec {
  io::SocketAddress address;  // always a unix socket: vhost-user passes fds
  // false (unix:PATH): qswitch listens, QEMU's chardev dials (-chardev socket,path=PATH);
  // true (connect:PATH): QEMU listens (-chardev socket,path=PATH,server=on) and qswitch dials,
  // redialling when the connection ends (backends/runtime/dialler.h).
  bool dial = false;
  sw::VlanMembership vlans;   // of the port (switch/vlan.h)
  sw::PortSecurity security;  // of the port (switch/port_security.h)
};

}  // namespace qswitch::backends::vhost_user
