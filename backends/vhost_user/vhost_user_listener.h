// backends/vhost_user/vhost_user_listener.h: a unix socket where vhost-user front-ends connect
// (QEMU's `-chardev socket,path=P -netdev vhost-user,chardev=...`, DPDK's virtio-user); each
// connection becomes a vhost-user port (vhost_user_port.h) at once, before any message.
// Accepting goes through io::AcceptWatch, as the stream listener does (at most kAcceptsPerWake
// per wake-up; out of fds it backs off, counted in accept_counters()). vhost-user runs over unix
// sockets only (its fds travel as SCM_RIGHTS). The socket file is removed when the listener is
// destroyed.
#pragma once

#include <string>
#include <vector>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends::vhost_user {

class VhostUserListener {
 public:
  // Binds now; on failure error() says why (and nothing is left behind). `address` must be a
  // unix socket address.
  VhostUserListener(SwitchLoop& loop, io::SocketAddress address);
  ~VhostUserListener();
  VhostUserListener(const VhostUserListener&) = delete;
  VhostUserListener& operator=(const VhostUserListener&) = delete;

  bool ok() const { return fd_.valid(); }
  const std::string& error() const { return error_; }
  const io::SocketAddress& address() const { return address_; }
  // Ports accepted here that are still up.
  const std::vector<LoopPort*>& ports() const { return ports_; }
  // Disconnects every front-end accepted here (the listener is being removed).
  void close_ports(const std::string& reason);
  // Name given to the ports' endpoint_id().
  void set_id(std::string id) { id_ = std::move(id); }
  const io::AcceptCounters& accept_counters() const { return watch_.counters(); }

 private:
  void on_connection(io::Fd fd);

  SwitchLoop& loop_;
  io::SocketAddress address_;
  io::Fd fd_;
  std::string error_;
  io::AcceptWatch watch_;  // after fd_: stops polling before the fd closes
  std::vector<LoopPort*> ports_;
  std::string id_;
};

}  // namespace qswitch::backends::vhost_user
