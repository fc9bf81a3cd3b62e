// backends/runtime/listener.h: accepts connections on a unix or tcp socket; each one becomes a
// port at once, made by the factory its owner gives: a StreamPort for --listen (QEMU's
// "-netdev stream,server=off,addr.type=unix|inet" and "-netdev socket,connect="), a vhost-user
// port for --vhost-user unix:PATH (QEMU's vhost-user chardev, DPDK's virtio-user), as the
// Dialler (dialler.h) does for the other direction.
// Accepting goes through io::AcceptWatch (at most kAcceptsPerWake per wake-up; out of fds, the
// listener backs off and the pending connection stays in the backlog, counted in
// accept_counters()). TCP connections get TCP_NODELAY. The unix socket file is removed when the
// listener is destroyed.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends {

class Listener {
 public:
  // Makes the port of an accepted connection; `peer` is what its describe() should say.
  using PortFactory = std::function<std::unique_ptr<LoopPort>(io::Fd fd, std::string peer)>;

  // Binds now; on failure error() says why (and nothing is left behind).
  Listener(SwitchLoop& loop, io::SocketAddress address, PortFactory factory);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  bool ok() const { return fd_.valid(); }
  const std::string& error() const { return error_; }
  // The address as bound: a tcp port 0 is replaced by the port the kernel chose.
  const io::SocketAddress& address() const { return address_; }
  // Ports accepted here that are still up.
  const std::vector<LoopPort*>& ports() const { return ports_; }
  // Disconnects every peer accepted here (the listener is being removed).
  void close_ports(const std::string& reason);
  // Name given to the ports' endpoint_id().
  void set_id(std::string id) { id_ = std::move(id); }
  // The VLANs of the ports accepted from now on (switch/vlan.h).
  void set_vlans(const sw::VlanMembership& vlans) { vlans_ = vlans; }
  const sw::VlanMembership& vlans() const { return vlans_; }
  // The port security of the ports accepted from now on (switch/port_security.h).
  void set_security(const sw::PortSecurity& security) { security_ = security; }
  // Accepts, back-offs for lack of fds, ... (stats shows them).
  const io::AcceptCounters& accept_counters() const { return watch_.counters(); }

 private:
  void on_connection(io::Fd fd);

  SwitchLoop& loop_;
  io::SocketAddress address_;
  PortFactory factory_;
  io::Fd fd_;
  std::string error_;
  io::AcceptWatch watch_;  // after fd_: stops polling before the fd closes
  std::vector<LoopPort*> ports_;
  std::string id_;
  sw::VlanMembership vlans_;
  sw::PortSecurity security_;
};

}  // namespace qswitch::backends
