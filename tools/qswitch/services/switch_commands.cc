// tools/qswitch/services/switch_commands.cc: see the header.
//
// ports:       [{"id","kind","peer","endpoint","name","guests","state","macs":[..],"uptime_s",
//              "counters":{..}}], plus one {"id":null,"state":"connecting",...} row per dialler
//              that is not up. "name": the lab file's name of the port's endpoint (or of the
//              port itself: tap, VXLAN, slirp), null for none; "guests": the [[guest]] names of
//              the MACs learned on it.
// macs:        [{"mac","vlan","port","age_s","guest"}], by port then MAC (a hardware switch's
//              mac table); "guest": the [[guest]] name of the MAC, null for none.
// stats:       switch-wide counters and MAC table fill; "dgram_sockets": the counters of each
//              --dgram socket for datagrams that belong to no port; "listeners": each listening
//              socket (stream listeners, control, metrics) with its io::AcceptCounters, and
//              "accept_backoffs", their sum (times a listener ran out of fds and backed off).
// port.add:    {"mode":"listen"|"connect","address":"unix:PATH"|"tcp:HOST:PORT"} -> the endpoint;
//              {"mode":"dgram","address": a --dgram value} -> a datagram endpoint.
// port.remove: {"id": "3" | 3 | "listen-1" | "connect-2"}: a port id closes that port (a
//              dialled port removes its dialler, or it would come straight back); an endpoint id
//              removes the endpoint and disconnects its guests. Their MACs are forgotten.
#include "tools/qswitch/services/switch_commands.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tools/qswitch/config/config_parse.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/config/security_keys.h"
#include "tools/qswitch/config/vlan_keys.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

// A port's counters (kPortCounters, then its kind's own) as one object.
json counters_json(const backends::PortSnapshot& p) {
  json out = json::object();
  p.counters.for_each([&](const char* name, uint64_t v) { out[name] = v; });
  for (const backends::ExtraCounter& e : p.extra) out[e.info.name] = e.value;
  return out;
}

// What `ports` and `stats` (closed ports) say of every port: id, kind, peer, endpoint, counters.
json port_row(const backends::PortSnapshot& p) {
  return {{"id", p.id},
          {"kind", p.kind},
          {"peer", p.peer},
          {"endpoint", p.endpoint},
          {"counters", counters_json(p)}};
}

// The MAC table as forwarding sees it (aged entries not yet swept are left out), by port then
// MAC.
std::vector<sw::MacEntryView> live_macs(const sw::L2Switch& fabric, sw::Millis now) {
  std::vector<sw::MacEntryView> entries;
  fabric.macs().for_each([&](const sw::MacEntryView& e) {
    if (fabric.macs().lookup(e.mac, e.vlan, now) == e.port) entries.push_back(e);
  });
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.port != b.port ? a.port < b.port : a.mac.key() < b.mac.key();
  });
  return entries;
}

std::map<sw::PortId, std::vector<std::string>> macs_by_port(const sw::L2Switch& fabric,
                                                            sw::Millis now) {
  std::map<sw::PortId, std::vector<std::string>> out;
  for (const sw::MacEntryView& e : live_macs(fabric, now)) {
    out[e.port].push_back(e.mac.to_string());
  }
  return out;
}

// A port's VLAN membership: {"mode": "access", "vlan": N} or {"mode": "trunk", "tagged":
// "10,20-29", "native": N | null}.
json vlan_json(const sw::VlanMembership& m) {
  if (!m.trunk) return {{"mode", "access"}, {"vlan", m.untagged}};
  return {{"mode", "trunk"},
          {"tagged", m.tagged.to_string()},
          {"native", m.untagged != 0 ? json(m.untagged) : json(nullptr)}};
}

// A port's security (switch/port_security.h), null when it is not secured: its MACs, whether its
// IP sources are checked (in some VLAN: a slirp port serves it, or ip= was given) and the
// addresses it may send from besides link-local ones: {"address", "from": "ip=" | "dhcp" |
// "slaac", "vlan"} (no "vlan" for ip=, which holds in every VLAN).
json port_security_json(const backends::PortSnapshot& p, const sw::L2Switch& fabric) {
  if (!p.secured) return nullptr;
  json held = json::array();
  for (const sw::MacAddress& m : p.held_macs) held.push_back(m.to_string());
  json out = {{"max_macs", p.max_macs}, {"macs", std::move(held)}};
  const sw::Port* port = fabric.port(p.id);
  json addresses = json::array();
  if (port != nullptr) {
    for (const sw::L2Switch::AllowedAddress& a : fabric.allowed_addresses(*port)) {
      using Source = sw::L2Switch::AllowedAddress::Source;
      json row = {{"address", a.addr.to_string()},
                  {"from", a.source == Source::kGiven   ? "ip="
                           : a.source == Source::kLease ? "dhcp"
                                                        : "slaac"}};
      if (a.source != Source::kGiven) row["vlan"] = a.vlan;
      addresses.push_back(std::move(row));
    }
  }
  out["ip_check"] = port != nullptr && fabric.checks_ip(*port);
  out["addresses"] = std::move(addresses);
  return out;
}

json accept_row(const std::string& endpoint, const std::string& address,
                const io::AcceptCounters& counters) {
  json row = {{"endpoint", endpoint}, {"address", address}};
  counters.for_each([&](const char* name, uint64_t v) { row[name] = v; });
  return row;
}

json name_json(const std::string& name) { return name.empty() ? json(nullptr) : json(name); }

// A `ports` row's lab file names: "name", its endpoint's (or its own: a tap, VXLAN or slirp
// port's) `name = "..."`, null for none; "guests", the [[guest]] names of the MACs it learned.
void add_names(json& row, const Endpoints& endpoints, const std::string& endpoint, uint64_t serial,
               const std::vector<std::string>& macs) {
  row["name"] = name_json(endpoints.name_of(endpoint, serial));
  json guests = json::array();
  for (const std::string& text : macs) {
    const std::optional<sw::MacAddress> mac = sw::MacAddress::parse(text);
    if (!mac) continue;
    const std::string guest = endpoints.guest_name(*mac);
    if (!guest.empty()) guests.push_back(guest);
  }
  row["guests"] = std::move(guests);
}

// ports: the live ports, then one "connecting" row per dialler that is not up.
Reply ports_command(backends::SwitchLoop& loop, const Endpoints& endpoints, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "ports", error)) return Reply::failure(error);
  const backends::SwitchSnapshot snap = loop.snapshot();
  auto macs = macs_by_port(loop.fabric(), snap.now);
  json rows = json::array();
  for (const backends::PortSnapshot& p : snap.ports) {
    json row = port_row(p);
    add_names(row, endpoints, p.endpoint, p.serial, macs[p.id]);
    row["state"] = "up";
    row["macs"] = macs[p.id];
    row["vlan"] = vlan_json(p.vlans);
    row["port_security"] = port_security_json(p, loop.fabric());
    row["uptime_s"] = (snap.now - p.up_since) / 1000;
    row["queued_bytes"] = p.queued_bytes;
    rows.push_back(std::move(row));
  }
  for (const Endpoints::Connector& c : endpoints.connectors()) {
    if (c.connector->connected()) continue;
    rows.push_back({{"id", nullptr},
                    {"kind", "stream"},
                    {"peer", c.connector->address().to_string() + " (dialled)"},
                    {"endpoint", c.id},
                    {"name", name_json(endpoints.name_of(c.id, 0))},
                    {"guests", json::array()},
                    {"state", "connecting"},
                    {"macs", json::array()},
                    {"uptime_s", 0},
                    {"queued_bytes", 0},
                    {"counters", json::object()}});
  }
  return Reply::success(std::move(rows));
}

// macs: the table, each entry with "guest", the [[guest]] name of its MAC (null: none).
Reply macs_command(backends::SwitchLoop& loop, const Endpoints& endpoints, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "macs", error)) return Reply::failure(error);
  const sw::Millis now = loop.now();
  json rows = json::array();
  for (const sw::MacEntryView& e : live_macs(loop.fabric(), now)) {
    rows.push_back({{"mac", e.mac.to_string()},
                    {"vlan", e.vlan},
                    {"port", e.port},
                    {"age_s", (now - e.last_seen) / 1000},
                    {"guest", name_json(endpoints.guest_name(e.mac))}});
  }
  return Reply::success(std::move(rows));
}

// vlans: every VLAN some port carries, with the ports that carry it untagged (access ports, a
// trunk's native VLAN) and tagged, and its live MAC entries.
Reply vlans_command(backends::SwitchLoop& loop, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "vlans", error)) return Reply::failure(error);
  const backends::SwitchSnapshot snap = loop.snapshot();
  struct Vlan {
    std::vector<sw::PortId> untagged;
    std::vector<sw::PortId> tagged;
    size_t macs = 0;
  };
  std::map<uint16_t, Vlan> vlans;
  for (const backends::PortSnapshot& p : snap.ports) {
    if (p.vlans.untagged != 0) vlans[p.vlans.untagged].untagged.push_back(p.id);
    if (p.vlans.trunk)
      p.vlans.tagged.for_each([&](uint16_t v) { vlans[v].tagged.push_back(p.id); });
  }
  for (const sw::MacEntryView& e : live_macs(loop.fabric(), snap.now)) ++vlans[e.vlan].macs;
  json rows = json::array();
  for (const auto& [id, v] : vlans) {
    rows.push_back({{"vlan", id},
                    {"untagged_ports", v.untagged},
                    {"tagged_ports", v.tagged},
                    {"macs", v.macs}});
  }
  return Reply::success(std::move(rows));
}

// Each datagram socket's counters of datagrams dropped before they belonged to a port (a runt
// from an unknown sender, our own multicast frames, ...).
json dgram_socket_rows(const Endpoints& endpoints) {
  json rows = json::array();
  for (const Endpoints::Dgram& d : endpoints.dgrams()) {
    json row = {{"endpoint", d.id},
                {"name", name_json(endpoints.name_of(d.id, 0))},
                {"address", d.endpoint->bound()}};
    d.endpoint->counters().for_each([&](const char* name, uint64_t v) { row[name] = v; });
    rows.push_back(std::move(row));
  }
  return rows;
}

// Every listening socket (stream listeners, control, metrics) with its accept counters.
json listener_rows(const Endpoints& endpoints, const ServiceSockets* services) {
  json rows = json::array();
  for (const Endpoints::Listener& l : endpoints.listeners()) {
    rows.push_back(
        accept_row(l.id, l.listener->address().to_string(), l.listener->accept_counters()));
    rows.back()["name"] = name_json(endpoints.name_of(l.id, 0));
  }
  for (const Endpoints::VhostUser& v : endpoints.vhost_users()) {
    rows.push_back(
        accept_row(v.id, v.listener->address().to_string(), v.listener->accept_counters()));
    rows.back()["name"] = name_json(endpoints.name_of(v.id, 0));
  }
  if (services != nullptr && services->control != nullptr) {
    rows.push_back(accept_row("control", "unix:" + services->control->path(),
                              services->control->accept_counters()));
  }
  if (services != nullptr && services->metrics != nullptr) {
    rows.push_back(accept_row("metrics", services->metrics->bound().to_string(),
                              services->metrics->accept_counters()));
  }
  return rows;
}

Reply stats_command(backends::SwitchLoop& loop, const Endpoints& endpoints,
                    const ServiceSockets* services, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "stats", error)) return Reply::failure(error);
  const backends::SwitchSnapshot snap = loop.snapshot();
  json listeners = listener_rows(endpoints, services);
  uint64_t accept_backoffs = 0;
  for (const json& row : listeners) accept_backoffs += row["accept_backoffs"].get<uint64_t>();
  json result = {{"ports", snap.port_count()},
                 {"mac_entries", snap.mac_entries},
                 {"mac_capacity", snap.mac_capacity}};
  snap.counters.for_each([&](const char* name, uint64_t v) { result[name] = v; });
  result["queued_bytes"] = snap.queued_bytes();
  result["dgram_sockets"] = dgram_socket_rows(endpoints);
  result["accept_backoffs"] = accept_backoffs;
  result["listeners"] = std::move(listeners);
  // The last ports that closed, oldest first, as the stats text has them ("stats closed port
  // ..."): a port closed for a protocol error is explained here.
  json closed = json::array();
  for (const backends::PortSnapshot& p : snap.closed_ports) closed.push_back(port_row(p));
  result["closed_ports"] = std::move(closed);
  return Reply::success(std::move(result));
}

Reply port_add_command(Endpoints& endpoints, const json& args) {
  std::string error, mode, address;
  if (!check_arg_names(
          args,
          {"mode", "address", "vlan", "trunk", "native", "port-security", "mac", "max-macs", "ip"},
          "port.add", error) ||
      !string_arg(args, "mode", "port.add", mode, error) ||
      !string_arg(args, "address", "port.add", address, error)) {
    return Reply::failure(error);
  }
  sw::VlanMembership vlans;
  sw::PortSecurity security;
  if (!port_args(args, &address, vlans, security, error)) {
    return Reply::failure("port.add: " + error);
  }
  if (mode == "dgram") {
    auto spec = parse_dgram_spec(address, error);
    if (!spec) return Reply::failure("port.add: address " + error);
    spec->vlans = vlans;
    spec->security = security;
    const std::string id = endpoints.add_dgram(*spec, error);
    if (id.empty()) return Reply::failure("port.add: " + error);
    return Reply::success({{"endpoint", id},
                           {"mode", mode},
                           {"address", endpoints.dgrams().back().endpoint->bound()}});
  }
  if (mode != "listen" && mode != "connect" && mode != "vhost-user") {
    return Reply::failure("port.add: mode '" + mode +
                          "': expected listen, connect, dgram or vhost-user");
  }
  if (mode == "vhost-user") {
    auto spec = parse_vhost_user_spec(address, error);
    if (!spec) return Reply::failure("port.add: address " + error);
    spec->vlans = vlans;
    spec->security = security;
    const std::string id = endpoints.add_vhost_user(*spec, error);
    if (id.empty()) return Reply::failure("port.add: " + error);
    return Reply::success({{"endpoint", id},
                           {"mode", mode},
                           {"address", (spec->dial ? "connect:" : "unix:") + spec->address.path}});
  }
  auto addr = parse_socket_address(address, error);
  if (!addr) return Reply::failure("port.add: address " + error);
  if (mode == "listen") {
    const std::string id = endpoints.add_listen(*addr, vlans, error, security);
    if (id.empty()) return Reply::failure("port.add: " + error);
    const auto& bound = endpoints.listeners().back().listener->address();
    return Reply::success({{"endpoint", id},
                           {"mode", mode},
                           {"address", bound.to_string()},
                           {"vlan", vlan_json(vlans)}});
  }
  const std::string id = endpoints.add_connect(*addr, vlans, security);
  return Reply::success({{"endpoint", id},
                         {"mode", mode},
                         {"address", addr->to_string()},
                         {"vlan", vlan_json(vlans)}});
}

// Closes port `port_id` (`id` as the request wrote it); a dialled port takes its dialler with it
// (or it would come straight back).
Reply remove_port(backends::SwitchLoop& loop, Endpoints& endpoints, sw::PortId port_id,
                  const std::string& id, const std::string& reason) {
  backends::LoopPort* lp = loop.port(port_id);
  if (lp == nullptr) return Reply::failure("port.remove: no port " + id + " (see ports)");
  if (std::string(lp->kind()) == "slirp") {
    return Reply::failure("port.remove: port " + id +
                          " is the slirp port; it cannot be removed at run time");
  }
  const std::string peer = lp->describe();
  const std::string dialler = endpoints.connector_of(port_id);
  if (!dialler.empty()) {
    std::string error;
    if (!endpoints.remove(dialler, reason, error)) return Reply::failure(error);
    return Reply::success({{"removed", port_id}, {"peer", peer}, {"endpoint", dialler}});
  }
  lp->close(reason);
  return Reply::success({{"removed", port_id}, {"peer", peer}});
}

Reply port_remove_command(backends::SwitchLoop& loop, Endpoints& endpoints, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"id"}, "port.remove", error)) return Reply::failure(error);
  if (!args.is_object() || !args.contains("id")) {
    return Reply::failure(
        "port.remove: missing \"id\": a port id or an endpoint id (listen-N, connect-N, dgram-N, "
        "vhost-user-N)");
  }
  std::string id;
  const json& v = args["id"];
  if (v.is_number_unsigned()) {
    id = std::to_string(v.get<uint64_t>());
  } else if (v.is_string()) {
    id = v.get<std::string>();
  } else {
    return Reply::failure("port.remove: \"id\" must be a port number or an endpoint id");
  }
  const std::optional<uint64_t> number =
      id.size() < 10 ? parse_decimal(id) : std::nullopt;  // else an endpoint id
  const std::string reason = "removed by control request";
  if (number) return remove_port(loop, endpoints, static_cast<sw::PortId>(*number), id, reason);
  if (!endpoints.remove(id, reason, error)) {
    return Reply::failure("port.remove: " + error);
  }
  return Reply::success({{"removed", id}});
}

}  // namespace

bool port_args(const json& args, std::string* address, sw::VlanMembership& vlans,
               sw::PortSecurity& security, std::string& error) {
  VlanKeys keys;
  SecurityKeys secure;
  std::string rest;
  std::string without_security;
  if (address != nullptr && (!take_security_keys(*address, without_security, secure, error) ||
                             !take_vlan_keys(without_security, rest, keys, error))) {
    return false;
  }
  if (auto it = args.find("port-security"); it != args.end()) {
    if (!it->is_boolean() && !it->is_string()) {
      error = "\"port-security\" must be true, false, \"on\" or \"off\"";
      return false;
    }
    const std::string value =
        it->is_boolean() ? (it->get<bool>() ? "on" : "off") : it->get<std::string>();
    if (!secure.set("port-security", value, error)) return false;
  }
  if (auto it = args.find("mac"); it != args.end()) {
    const json list = it->is_array() ? *it : json::array({*it});
    for (const json& m : list) {
      if (!m.is_string()) {
        error = "\"mac\" must be a MAC or a list of MACs (strings)";
        return false;
      }
      if (!secure.set("mac", m.get<std::string>(), error)) return false;
    }
  }
  if (auto it = args.find("ip"); it != args.end()) {
    const json list = it->is_array() ? *it : json::array({*it});
    for (const json& a : list) {
      if (!a.is_string()) {
        error = "\"ip\" must be an IPv4 or IPv6 address or a list of them (strings)";
        return false;
      }
      if (!secure.set("ip", a.get<std::string>(), error)) return false;
    }
  }
  if (auto it = args.find("max-macs"); it != args.end()) {
    if (!it->is_number_unsigned()) {
      error = "\"max-macs\" must be a number from 1 to " + std::to_string(sw::kMaxSecuredMacs);
      return false;
    }
    if (!secure.set("max-macs", std::to_string(it->get<uint64_t>()), error)) return false;
  }
  if (!secure.resolve(security, error)) return false;
  for (const char* key : {"vlan", "trunk", "native"}) {
    auto it = args.find(key);
    if (it == args.end()) continue;
    std::string value;
    if (it->is_number_unsigned()) {
      value = std::to_string(it->get<uint64_t>());
    } else if (it->is_string()) {
      value = it->get<std::string>();
    } else {
      error = std::string("\"") + key + "\" must be a VLAN id or list (a number or a string)";
      return false;
    }
    if (!keys.set(key, value, error)) return false;
  }
  if (!keys.resolve(vlans, error)) return false;
  if (address != nullptr) *address = std::move(rest);
  return true;
}

void register_switch_commands(ControlApi& api, backends::SwitchLoop& loop, Endpoints& endpoints,
                              const ServiceSockets* services) {
  api.add("ports", "every port: kind, peer, state, learned MACs, counters, uptime",
          [&loop, &endpoints](const json& args) { return ports_command(loop, endpoints, args); });
  api.add("macs", "the MAC address table: MAC, VLAN, port, age in seconds",
          [&loop, &endpoints](const json& args) { return macs_command(loop, endpoints, args); });
  api.add("vlans",
          "every VLAN a port carries: the ports carrying it untagged and tagged, its MAC entries",
          [&loop](const json& args) { return vlans_command(loop, args); });
  api.add("stats",
          "switch-wide counters, MAC table fill and evictions, duplicate-MAC warnings, the "
          "counters of datagram sockets that belong to no port, and the final counters of the "
          "last ports that closed",
          [&loop, &endpoints, services](const json& args) {
            return stats_command(loop, endpoints, services, args);
          });
  api.add("port.add",
          "add a listener, a dialler, a datagram socket or a vhost-user socket: {\"mode\": "
          "\"listen\"|\"connect\", \"address\": \"unix:PATH\"|\"tcp:HOST:PORT\"}, {\"mode\": "
          "\"dgram\", \"address\": \"unix:PATH\"|\"udp:...\"|\"mcast:...\"} or {\"mode\": "
          "\"vhost-user\", \"address\": \"unix:PATH\"|\"connect:PATH\"}; its ports' VLANs: "
          "\"vlan\": N (access), or \"trunk\": \"10,20-29\" and \"native\": N, or the same "
          "keys in the address (\"unix:PATH,vlan=10\")",
          [&endpoints](const json& args) { return port_add_command(endpoints, args); });
  api.add(
      "port.remove",
      "disconnect a port, or remove an endpoint and its guests: {\"id\": PORT | "
      "\"listen-N\" | \"connect-N\" | \"dgram-N\" | \"vhost-user-N\"}",
      [&loop, &endpoints](const json& args) { return port_remove_command(loop, endpoints, args); });
}

}  // namespace qswitch::tools
