// backends/runtime/dialler.h: dials a unix or tcp socket, makes the connection a port (through
// the factory its owner gives: a stream port for --connect, a vhost-user port for --vhost-user
// connect:) and keeps dialling.
//
// Serves a QEMU started with "-netdev stream,server=on" or "-netdev socket,listen=", another
// qswitch, or a QEMU vhost-user chardev with server=on. QEMU 7.2's stream clients cannot
// reconnect, so qswitch is the side that redials: when
// the connection fails or the port closes, it waits (100 ms, doubling up to 5 s; reset once a
// connection is up) and tries again, forever. Each state change is logged once: connected,
// lost, and the first failure of an outage (not every retry).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends {

class Dialler {
 public:
  // Makes the port of a connected socket; `peer` is what its describe() should say.
  using PortFactory = std::function<std::unique_ptr<LoopPort>(io::Fd fd, std::string peer)>;

  // `id` names the dialler in ports' endpoint_id(); `vlans` and `security` are its ports'
  // (switch/vlan.h, switch/port_security.h). Dials at once.
  Dialler(SwitchLoop& loop, io::SocketAddress address, PortFactory factory, std::string id = {},
          const sw::VlanMembership& vlans = {}, const sw::PortSecurity& security = {});
  ~Dialler();
  Dialler(const Dialler&) = delete;
  Dialler& operator=(const Dialler&) = delete;

  const io::SocketAddress& address() const { return address_; }
  bool connected() const { return port_ != nullptr; }
  LoopPort* port() const { return port_; }
  // The VLANs of the port of each connection (switch/vlan.h).
  const sw::VlanMembership& vlans() const { return vlans_; }
  // The VLANs and port security of the ports of later connections (a reload changes them; the
  // caller applies them to port() itself).
  void set_vlans(const sw::VlanMembership& vlans) { vlans_ = vlans; }
  void set_security(const sw::PortSecurity& security) { security_ = security; }
  // Closes the connection for good (no redial): the connector is being removed.
  void close_port(const std::string& reason);

 private:
  void dial();
  void on_connect_ready();
  void connected_fd(io::Fd fd);
  void failed(const std::string& why);
  void schedule_retry();

  SwitchLoop& loop_;
  io::SocketAddress address_;
  PortFactory factory_;
  io::Fd pending_;
  io::UvHandle<uv_poll_t> poll_;
  bool polling_ = false;
  io::UvHandle<uv_timer_t> timer_;
  uint64_t backoff_ms_ = 0;
  bool outage_logged_ = false;
  LoopPort* port_ = nullptr;
  std::string id_;
  sw::VlanMembership vlans_;
  sw::PortSecurity security_;
};

}  // namespace qswitch::backends
