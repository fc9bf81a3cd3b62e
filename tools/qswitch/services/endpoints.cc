// tools/qswitch/services/endpoints.cc: see the header.
#include "tools/qswitch/services/endpoints.h"

#include <algorithm>

#include "backends/stream/stream_port.h"
#include "backends/vhost_user/vhost_user_port.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/socket_trust.h"

namespace qswitch::tools {

namespace {

// What a listener or a dialler makes of a connection (backends/runtime/listener.h, dialler.h).
backends::Listener::PortFactory stream_port_factory(backends::SwitchLoop& loop) {
  return [&loop](io::Fd fd, std::string peer) -> std::unique_ptr<backends::LoopPort> {
    return std::make_unique<backends::StreamPort>(loop, std::move(fd), std::move(peer));
  };
}

backends::Listener::PortFactory vhost_user_port_factory(backends::SwitchLoop& loop) {
  return [&loop](io::Fd fd, std::string peer) {
    return backends::vhost_user::make_vhost_user_port(loop, std::move(fd),
                                                      "vhost-user " + std::move(peer));
  };
}

}  // namespace

Endpoints::~Endpoints() {
  dgrams_.clear();
  vhost_users_.clear();
  connectors_.clear();
  listeners_.clear();
}

std::unique_ptr<backends::Listener> Endpoints::bind_listener(
    const io::SocketAddress& ep, backends::Listener::PortFactory factory, const char* what,
    std::string& error) {
  if (ep.kind == io::SocketAddress::Kind::kUnix &&
      !trust_socket_dir_for(ep.path, DirUse::kCreate, error)) {
    error = std::string("cannot listen") + what + " on " + ep.to_string() + ": " + error;
    return nullptr;
  }
  auto l = std::make_unique<backends::Listener>(loop_, ep, std::move(factory));
  if (!l->ok()) {
    error = std::string("cannot listen") + what + " on " + ep.to_string() + ": " + l->error();
    return nullptr;
  }
  return l;
}

std::string Endpoints::add_listen(const io::SocketAddress& ep, const sw::VlanMembership& vlans,
                                  std::string& error, const sw::PortSecurity& security) {
  auto l = bind_listener(ep, stream_port_factory(loop_), "", error);
  if (!l) return "";
  std::string id = "listen-" + std::to_string(next_listen_++);
  l->set_id(id);
  l->set_vlans(vlans);
  l->set_security(security);
  io::OwnSockets::Registration r;
  if (own_ != nullptr && l->address().kind == io::SocketAddress::Kind::kTcp) {
    r = own_->add(io::Transport::kTcp, l->address().host.c_str(), l->address().port);
  }
  listeners_.push_back({id, std::move(l), std::move(r)});
  return id;
}

std::string Endpoints::add_vhost_user(const backends::vhost_user::VhostUserSpec& spec,
                                      std::string& error) {
  const io::SocketAddress& ep = spec.address;
  if (spec.dial) {
    std::string id = "vhost-user-" + std::to_string(next_vhost_user_++);
    connectors_.push_back(
        {id, std::make_unique<backends::Dialler>(loop_, ep, vhost_user_port_factory(loop_), id,
                                                 spec.vlans, spec.security)});
    return id;
  }
  if (ep.kind != io::SocketAddress::Kind::kUnix) {
    error =
        "vhost-user listens on unix sockets only (it passes file descriptors): " + ep.to_string();
    return "";
  }
  auto l = bind_listener(ep, vhost_user_port_factory(loop_), " for vhost-user", error);
  if (!l) return "";
  std::string id = "vhost-user-" + std::to_string(next_vhost_user_++);
  l->set_id(id);
  l->set_vlans(spec.vlans);
  l->set_security(spec.security);
  vhost_users_.push_back({id, std::move(l)});
  return id;
}

std::string Endpoints::add_connect(const io::SocketAddress& ep, const sw::VlanMembership& vlans,
                                   const sw::PortSecurity& security) {
  std::string id = "connect-" + std::to_string(next_connect_++);
  // The id, VLANs and security must be set before the first dial, which the constructor starts.
  connectors_.push_back({id, std::make_unique<backends::Dialler>(
                                 loop_, ep, stream_port_factory(loop_), id, vlans, security)});
  return id;
}

std::string Endpoints::add_dgram(const backends::DgramConfig& config, std::string& error) {
  backends::DgramConfig c = config;
  c.endpoint_id = "dgram-" + std::to_string(next_dgram_);
  std::string why;
  const std::string path = dgram_unix_path(config);
  if (!path.empty() && !trust_socket_dir_for(path, DirUse::kCreate, why)) {
    error = "cannot open --dgram " + config.name + ": " + why;
    return "";
  }
  auto d = backends::DgramEndpoint::open(loop_, c, why);
  if (!d) {
    error = "cannot open --dgram " + config.name + ": " + why;
    return "";
  }
  ++next_dgram_;
  std::vector<io::OwnSockets::Registration> regs;
  if (own_ != nullptr) {
    for (const sockaddr_storage& a : d->udp_addresses()) {
      regs.push_back(own_->add(io::Transport::kUdp, a));
    }
  }
  dgrams_.push_back({c.endpoint_id, std::move(d), std::move(regs)});
  return c.endpoint_id;
}

bool Endpoints::remove(const std::string& id, const std::string& reason, std::string& error) {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (listeners_[i].id == id) {
      listeners_[i].listener->close_ports(reason);
      listeners_.erase(listeners_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  for (size_t i = 0; i < vhost_users_.size(); ++i) {
    if (vhost_users_[i].id == id) {
      vhost_users_[i].listener->close_ports(reason);
      vhost_users_.erase(vhost_users_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  for (size_t i = 0; i < connectors_.size(); ++i) {
    if (connectors_[i].id == id) {
      connectors_[i].connector->close_port(reason);
      connectors_.erase(connectors_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  for (size_t i = 0; i < dgrams_.size(); ++i) {
    if (dgrams_[i].id == id) {
      dgrams_[i].endpoint->close_ports(reason);
      dgrams_.erase(dgrams_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  error = "no endpoint '" + id +
          "' (see ports: endpoints are listen-N, connect-N, dgram-N and vhost-user-N)";
  return false;
}

bool Endpoints::set_membership(const std::string& id, const sw::VlanMembership* vlans,
                               const sw::PortSecurity* security) {
  bool found = false;
  for (Listener& l : listeners_) {
    if (l.id != id) continue;
    if (vlans != nullptr) l.listener->set_vlans(*vlans);
    if (security != nullptr) l.listener->set_security(*security);
    found = true;
  }
  for (VhostUser& v : vhost_users_) {
    if (v.id != id) continue;
    if (vlans != nullptr) v.listener->set_vlans(*vlans);
    if (security != nullptr) v.listener->set_security(*security);
    found = true;
  }
  for (Connector& c : connectors_) {
    if (c.id != id) continue;
    if (vlans != nullptr) c.connector->set_vlans(*vlans);
    if (security != nullptr) c.connector->set_security(*security);
    found = true;
  }
  if (!found) return false;
  sw::L2Switch& fabric = loop_.fabric();
  const sw::Millis now = loop_.now();
  loop_.for_each_port([&](backends::LoopPort& p) {
    if (p.endpoint_id() != id) return;
    if (vlans != nullptr) fabric.set_vlans(p, *vlans, now);
    if (security != nullptr) fabric.set_security(p, *security);
  });
  return true;
}

bool Endpoints::has(const std::string& id) const {
  const auto is = [&id](const auto& e) { return e.id == id; };
  return std::any_of(listeners_.begin(), listeners_.end(), is) ||
         std::any_of(vhost_users_.begin(), vhost_users_.end(), is) ||
         std::any_of(connectors_.begin(), connectors_.end(), is) ||
         std::any_of(dgrams_.begin(), dgrams_.end(), is);
}

std::string Endpoints::name_of(const std::string& endpoint, uint64_t serial) const {
  if (auto it = endpoint_names_.find(endpoint); !endpoint.empty() && it != endpoint_names_.end()) {
    return it->second;
  }
  if (auto it = serial_names_.find(serial); it != serial_names_.end()) return it->second;
  return "";
}

std::string Endpoints::guest_name(const sw::MacAddress& mac) const {
  const auto it = guest_names_.find(mac.key());
  return it == guest_names_.end() ? std::string() : it->second;
}

std::string Endpoints::connector_of(sw::PortId port_id) const {
  for (const Connector& c : connectors_) {
    if (c.connector->port() != nullptr && c.connector->port()->id() == port_id) return c.id;
  }
  return "";
}

}  // namespace qswitch::tools
