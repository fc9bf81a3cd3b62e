// tools/qswitch/services/endpoints.h: the switch's endpoints, by id. An endpoint is what ports
// come from: a stream listener ("listen-N", one port per guest it accepts), a dialler
// ("connect-N", one port while connected), a datagram socket ("dgram-N", one port per peer) or
// a vhost-user listener ("vhost-user-N", one port per front-end it accepts).
// That is the one meaning of "endpoint" in this code base (LoopPort::endpoint_id(), the
// "endpoint" of `ports`, `port.add` and `port.remove`); where a socket listens or dials is an
// io::SocketAddress, and the daemon's own bound sockets are io::OwnSockets.
// Start-up (--listen, --connect) and the control commands port.add / port.remove go through
// here, so a listener added at run time is the same kind of object as one given on the command
// line. Ids are "listen-N", "connect-N", "dgram-N" and "vhost-user-N", never reused while the
// switch runs. A unix socket to be bound in the default socket directory is bound only once that
// directory is known to be ours (created 0700 if missing; socket_trust.h). Each TCP listener and
// UDP datagram socket is registered in the daemon's io::OwnSockets for as long as it exists, so the
// slirp port keeps guests away from it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/dgram/dgram_port.h"
#include "backends/runtime/dialler.h"
#include "backends/runtime/io/own_sockets.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/listener.h"
#include "backends/runtime/switch_loop.h"
#include "backends/vhost_user/vhost_user_config.h"

namespace qswitch::tools {

class Endpoints {
 public:
  // `own` (may be null) must outlive this object.
  explicit Endpoints(backends::SwitchLoop& loop, io::OwnSockets* own = nullptr)
      : loop_(loop), own_(own) {}
  ~Endpoints();

  // The new id, or empty with `error` set (nothing is left bound).
  // The ports come on `vlans` (switch/vlan.h) with `security` (switch/port_security.h);
  // vhost-user and dgram ports with their spec's.
  std::string add_listen(const io::SocketAddress& ep, const sw::VlanMembership& vlans,
                         std::string& error, const sw::PortSecurity& security = {});
  std::string add_listen(const io::SocketAddress& ep, std::string& error) {
    return add_listen(ep, {}, error);
  }
  std::string add_connect(const io::SocketAddress& ep, const sw::VlanMembership& vlans = {},
                          const sw::PortSecurity& security = {});
  std::string add_vhost_user(const backends::vhost_user::VhostUserSpec& spec, std::string& error);
  std::string add_dgram(const backends::DgramConfig& config, std::string& error);
  // Removes a listener (disconnecting the guests it accepted) or a dialler (and its port).
  bool remove(const std::string& id, const std::string& reason, std::string& error);
  // Whether endpoint `id` exists (a reload asks: `port.remove` may have taken it).
  bool has(const std::string& id) const;
  // The dialler that owns port `port_id`, if any (so removing its port stops the redial).
  std::string connector_of(sw::PortId port_id) const;
  // A reload's in-place change (reload_plan.h): the VLANs and/or (non-null) port security of
  // endpoint `id`'s future ports and of its live ones (L2Switch::set_vlans / set_security: the
  // live ports' learned MACs are forgotten and learned again). False if there is no such
  // endpoint or it is a datagram socket (whose ports take their settings when made).
  bool set_membership(const std::string& id, const sw::VlanMembership* vlans,
                      const sw::PortSecurity* security);

  // Names from the lab file (`name = "..."` on a port table, [[guest]]), for the control API:
  // an endpoint's by its id, a port's of its own (tap, VXLAN, slirp) by its serial, a guest's
  // by its MAC (MacAddress::key()). Switchd sets them at start and after every reload.
  void set_names(std::map<std::string, std::string> by_endpoint,
                 std::map<uint64_t, std::string> by_serial,
                 std::map<uint64_t, std::string> guests) {
    endpoint_names_ = std::move(by_endpoint);
    serial_names_ = std::move(by_serial);
    guest_names_ = std::move(guests);
  }
  // The name of endpoint `endpoint` ("" for none) or, failing that, of the port `serial`.
  std::string name_of(const std::string& endpoint, uint64_t serial) const;
  // The [[guest]] name of `mac`, "" for none.
  std::string guest_name(const sw::MacAddress& mac) const;

  struct Listener {
    std::string id;
    std::unique_ptr<backends::Listener> listener;  // of stream ports
    io::OwnSockets::Registration registration;
  };
  struct VhostUser {
    std::string id;
    std::unique_ptr<backends::Listener> listener;  // of vhost-user ports
  };
  struct Connector {
    std::string id;
    std::unique_ptr<backends::Dialler> connector;  // a stream or (vhost-user-N) vhost-user port
  };
  struct Dgram {
    std::string id;
    std::unique_ptr<backends::DgramEndpoint> endpoint;
    std::vector<io::OwnSockets::Registration> registrations;
  };
  const std::vector<Listener>& listeners() const { return listeners_; }
  const std::vector<Dgram>& dgrams() const { return dgrams_; }
  const std::vector<Connector>& connectors() const { return connectors_; }
  const std::vector<VhostUser>& vhost_users() const { return vhost_users_; }

 private:
  // A listener on `ep` whose connections `factory` makes ports of, the socket directory checked
  // first; nullptr with `error` ("cannot listen<what> on ADDRESS: why").
  std::unique_ptr<backends::Listener> bind_listener(const io::SocketAddress& ep,
                                                    backends::Listener::PortFactory factory,
                                                    const char* what, std::string& error);

  backends::SwitchLoop& loop_;
  io::OwnSockets* own_;
  std::vector<Listener> listeners_;
  std::vector<Connector> connectors_;
  std::vector<Dgram> dgrams_;
  std::vector<VhostUser> vhost_users_;
  std::map<std::string, std::string> endpoint_names_;
  std::map<uint64_t, std::string> serial_names_;
  std::map<uint64_t, std::string> guest_names_;  // by MacAddress::key()
  unsigned next_dgram_ = 1;
  unsigned next_listen_ = 1;
  unsigned next_connect_ = 1;
  unsigned next_vhost_user_ = 1;
};

}  // namespace qswitch::tools
