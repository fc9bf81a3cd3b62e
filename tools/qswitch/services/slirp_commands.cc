// tools/qswitch/services/slirp_commands.cc: the slirp ports' control commands. Each handler picks
// the port (the "vlan" argument, or the only one), parses and checks its arguments completely
// before it asks the port to change anything, so a bad request changes nothing; the port's own
// refusals (port in use, duplicate) come back as error replies.
#include "tools/qswitch/services/slirp_commands.h"

#include <algorithm>
#include <optional>
#include <string>

#include "slirp/dhcp_server.h"
#include "slirp/neighbours.h"
#include "switch/vlan.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/config/slirp_options_parse.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;
using SlirpPorts = std::vector<slirp::SlirpPort*>;

uint16_t vlan_of(const slirp::SlirpPort& p) { return p.vlans().untagged; }

// "VLAN 10", "VLANs 10 and 20", "VLANs 10, 20 and 30": the VLANs with a slirp port, ascending.
std::string vlans_text(const SlirpPorts& ports) {
  std::vector<uint16_t> ids;
  for (const slirp::SlirpPort* p : ports) ids.push_back(vlan_of(*p));
  std::sort(ids.begin(), ids.end());
  std::string s = ids.size() == 1 ? "VLAN " : "VLANs ";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) s += i + 1 == ids.size() ? " and " : ", ";
    s += std::to_string(ids[i]);
  }
  return s;
}

// The slirp port `args` is for: "vlan" names it, else it is the only one. nullptr with `error`.
slirp::SlirpPort* pick(const SlirpPorts& ports, const json& args, const std::string& cmd,
                       std::string& error) {
  if (ports.empty()) {
    error = "this switch has no slirp port (start qswitch with --slirp)";
    return nullptr;
  }
  const auto it = args.find("vlan");
  if (it == args.end()) {
    if (ports.size() == 1) return ports.front();
    error = cmd + ": this switch has slirp ports on " + vlans_text(ports) +
            ": say which with vlan=N (JSON: \"vlan\": N)";
    return nullptr;
  }
  uint16_t vlan = 0;
  std::string why;
  if (it->is_number_unsigned() && it->get<uint64_t>() <= sw::kMaxVlanId) {
    vlan = static_cast<uint16_t>(it->get<uint64_t>());
  } else if (it->is_string()) {
    if (!sw::parse_vlan_id(it->get_ref<const std::string&>(), vlan, why)) vlan = 0;
  }
  if (vlan < sw::kMinVlanId) {
    error = cmd + ": \"vlan\" is " + it->dump() +
            ", not a VLAN id (a number 1..4094); the slirp ports are on " + vlans_text(ports);
    return nullptr;
  }
  for (slirp::SlirpPort* p : ports) {
    if (vlan_of(*p) == vlan) return p;
  }
  error = cmd + ": no slirp port on VLAN " + std::to_string(vlan) + "; this switch has " +
          (ports.size() == 1 ? "one" : "them") + " on " + vlans_text(ports);
  return nullptr;
}

// A forward as listed; a guest address left to "the first DHCP address" is shown resolved.
json hostfwd_json(slirp::HostForward f, const slirp::SlirpOptions& options) {
  if (!f.ipv6 && f.guest_addr.s_addr == 0) f.guest_addr = options.dhcp_start;
  return json{{"proto", f.udp ? "udp" : "tcp"}, {"host_addr", f.host_addr_text()},
              {"host_port", f.host_port},       {"guest_addr", f.guest_addr_text()},
              {"guest_port", f.guest_port},     {"spec", f.to_string()}};
}

bool same_key(const slirp::HostForward& a, const slirp::HostForward& b) {
  return a.same_host_socket(b);
}

const char* state_name(slirp::DhcpServer::LeaseState s) {
  switch (s) {
    case slirp::DhcpServer::LeaseState::reserved:
      return "reserved";
    case slirp::DhcpServer::LeaseState::offered:
      return "offered";
    case slirp::DhcpServer::LeaseState::bound:
      return "bound";
    case slirp::DhcpServer::LeaseState::released:
      return "released";
  }
  return "unknown";
}

Reply hostfwd_add_command(const SlirpPorts& ports, const json& args) {
  const std::string cmd = "hostfwd.add";
  std::string error, spec;
  if (!check_arg_names(args, {"spec", "vlan"}, cmd, error)) return Reply::failure(error);
  // No slirp port, or no VLAN where one is needed: say so before judging the spec.
  slirp::SlirpPort* port = pick(ports, args, cmd, error);
  if (port == nullptr || !string_arg(args, "spec", cmd, spec, error)) {
    return Reply::failure(error);
  }
  slirp::SlirpPort& p = *port;
  slirp::HostForward f;
  if (!parse_hostfwd(spec, f, error) || !check_hostfwd_guest(f, p.options(), error)) {
    return Reply::failure(error);
  }
  // Another VLAN's slirp port on the same host socket: say whose, rather than "in use".
  for (const slirp::SlirpPort* other : ports) {
    if (other == port) continue;
    for (const slirp::HostForward& h : other->hostfwds()) {
      if (!hostfwds_clash(f, h)) continue;
      return Reply::failure("hostfwd '" + spec + "': " + (f.udp ? "udp" : "tcp") + " port " +
                            std::to_string(f.host_port) +
                            " on the host is forwarded by the slirp port on VLAN " +
                            std::to_string(vlan_of(*other)) + " already ('" + h.to_string() +
                            "'); give another host port");
    }
  }
  const size_t before = p.hostfwds().size();
  if (!p.add_hostfwd(f, error)) return Reply::failure("hostfwd '" + spec + "': " + error);
  // The port's entry (it may have resolved a port 0 or the guest address).
  const slirp::HostForward& added = p.hostfwds().size() > before ? p.hostfwds().back() : f;
  return Reply::success(hostfwd_json(added, p.options()));
}

Reply hostfwd_remove_command(const SlirpPorts& ports, const json& args) {
  const std::string cmd = "hostfwd.remove";
  std::string error, spec;
  if (!check_arg_names(args, {"spec", "vlan"}, cmd, error)) return Reply::failure(error);
  // No slirp port, or no VLAN where one is needed: say so before judging the spec.
  slirp::SlirpPort* port = pick(ports, args, cmd, error);
  if (port == nullptr || !string_arg(args, "spec", cmd, spec, error)) {
    return Reply::failure(error);
  }
  slirp::SlirpPort& p = *port;
  slirp::HostForward key;
  if (!parse_hostfwd_key(spec, key, error)) return Reply::failure(error);
  const slirp::HostForward* found = nullptr;
  std::string now;
  for (const slirp::HostForward& f : p.hostfwds()) {
    if (same_key(f, key)) found = &f;
    if (!now.empty()) now += ", ";
    now += f.to_string();
  }
  if (found == nullptr) {
    const std::string addr = key.ipv6 ? "[" + key.host_addr_text() + "]" : key.host_addr_text();
    return Reply::failure("hostfwd '" + spec + "': no forward on " + (key.udp ? "udp " : "tcp ") +
                          addr + ":" + std::to_string(key.host_port) +
                          "; forwards now: " + (now.empty() ? "none" : now));
  }
  const slirp::HostForward victim = *found;  // the list changes below
  if (!p.remove_hostfwd(victim, error)) return Reply::failure("hostfwd '" + spec + "': " + error);
  return Reply::success(hostfwd_json(victim, p.options()));
}

Reply hostfwd_list_command(const SlirpPorts& ports, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "hostfwd.list", error)) return Reply::failure(error);
  const slirp::SlirpPort* port = pick(ports, args, "hostfwd.list", error);
  if (port == nullptr) return Reply::failure(error);
  const slirp::SlirpPort& p = *port;
  json list = json::array();
  for (const slirp::HostForward& f : p.hostfwds()) list.push_back(hostfwd_json(f, p.options()));
  return Reply::success(std::move(list));
}

Reply slirp_sockets_command(const SlirpPorts& slirp_ports, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "slirp.sockets", error)) return Reply::failure(error);
  const slirp::SlirpPort* port = pick(slirp_ports, args, "slirp.sockets", error);
  if (port == nullptr) return Reply::failure(error);
  const slirp::HostSocketCounts c = port->host_sockets();
  json ports = json::array();
  for (const slirp::HostSocketCounts::Holder& h : c.by_port) {
    json row{{"sockets", h.sockets}};
    // The port's id while it is up; a closed port's sockets stay until libslirp expires or
    // closes them.
    if (h.port != sw::kNoPort) {
      row["port"] = h.port;
    } else {
      row["port"] = nullptr;
    }
    ports.push_back(std::move(row));
  }
  return Reply::success(json{{"open", c.open},
                             {"max_host_sockets", c.max},
                             {"max_host_sockets_per_port", c.max_per_port},
                             {"ports", std::move(ports)}});
}

Reply usernet_command(const SlirpPorts& ports, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "usernet", error)) return Reply::failure(error);
  const slirp::SlirpPort* port = pick(ports, args, "usernet", error);
  if (port == nullptr) return Reply::failure(error);
  return Reply::success(json{{"text", port->connection_info()}});
}

// The IPv6 addresses the port saw `mac` use (slirp/neighbours.h), as text.
json ipv6_json(const slirp::SlirpPort& p, const sw::MacAddress& mac) {
  json list = json::array();
  for (const sw::IpAddress& a : p.neighbours().addresses(mac)) list.push_back(a.to_string());
  return list;
}

Reply dhcp_leases_command(const SlirpPorts& ports, uv_loop_t* loop, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "dhcp.leases", error)) return Reply::failure(error);
  slirp::SlirpPort* port = pick(ports, args, "dhcp.leases", error);
  if (port == nullptr) return Reply::failure(error);
  port->expire_neighbours();
  const slirp::SlirpPort& p = *port;
  const int64_t now_s = loop != nullptr ? static_cast<int64_t>(uv_now(loop) / 1000) : 0;
  json list = json::array();
  for (const slirp::DhcpServer::Lease& l : p.dhcp().leases()) {
    json row{{"mac", l.mac.to_string()},
             {"ip", format_ipv4(l.addr)},
             {"pinned", l.pinned},
             {"state", state_name(l.state)},
             {"ipv6", ipv6_json(p, l.mac)}};
    if (!l.hostname.empty()) row["hostname"] = l.hostname;
    // The port holding it, while that port is up.
    if (const sw::PortId id = l.held ? p.live_port(l.port) : sw::kNoPort; id != sw::kNoPort) {
      row["port"] = id;
    }
    if (loop != nullptr && l.expires_s != 0) {
      row["expires_in_s"] = l.expires_s > now_s ? l.expires_s - now_s : 0;
    }
    list.push_back(std::move(row));
  }
  return Reply::success(std::move(list));
}

// "addr": an IPv4 or IPv6 address text; `error` names the value otherwise.
bool addr_arg(const json& args, const std::string& cmd, sw::IpAddress& out, std::string& error) {
  std::string text;
  if (!string_arg(args, "addr", cmd, text, error)) return false;
  const auto a = sw::IpAddress::parse(text);
  if (!a) {
    error = cmd + ": \"addr\" is '" + text +
            "', not an IPv4 or IPv6 address (e.g. 10.0.2.100 or fec0::100)";
    return false;
  }
  out = *a;
  return true;
}

Reply dns_add_command(const SlirpPorts& ports, const json& args) {
  const std::string cmd = "dns.add";
  std::string error, name;
  if (!check_arg_names(args, {"name", "addr", "vlan"}, cmd, error)) return Reply::failure(error);
  slirp::SlirpPort* port = pick(ports, args, cmd, error);
  sw::IpAddress addr;
  if (port == nullptr || !string_arg(args, "name", cmd, name, error) ||
      !addr_arg(args, cmd, addr, error)) {
    return Reply::failure(error);
  }
  if (!port->add_dns_record(name, addr, error)) return Reply::failure(cmd + ": " + error);
  return Reply::success(json{
      {"name", port->dns_names().qualify(name)}, {"addr", addr.to_string()}, {"source", "static"}});
}

Reply dns_remove_command(const SlirpPorts& ports, const json& args) {
  const std::string cmd = "dns.remove";
  std::string error, name;
  if (!check_arg_names(args, {"name", "addr", "vlan"}, cmd, error)) return Reply::failure(error);
  slirp::SlirpPort* port = pick(ports, args, cmd, error);
  if (port == nullptr || !string_arg(args, "name", cmd, name, error)) {
    return Reply::failure(error);
  }
  std::optional<sw::IpAddress> addr;
  if (args.contains("addr")) {
    sw::IpAddress a;
    if (!addr_arg(args, cmd, a, error)) return Reply::failure(error);
    addr = a;
  }
  if (!port->remove_dns_record(name, addr, error)) return Reply::failure(cmd + ": " + error);
  json result{{"name", port->dns_names().qualify(name)}};
  if (addr) result["addr"] = addr->to_string();
  return Reply::success(std::move(result));
}

Reply dns_list_command(const SlirpPorts& ports, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "dns.list", error)) return Reply::failure(error);
  const slirp::SlirpPort* port = pick(ports, args, "dns.list", error);
  if (port == nullptr) return Reply::failure(error);
  const slirp::DnsNames& names = port->dns_names();
  json list = json::array();
  for (const slirp::DnsNames::Listed& l : names.list()) {
    json addrs = json::array();
    for (const sw::IpAddress& a : l.addresses) addrs.push_back(a.to_string());
    json row{{"name", l.name},
             {"addresses", std::move(addrs)},
             {"source", slirp::name_source_text(l.source)}};
    if (l.mac) row["mac"] = l.mac->to_string();
    list.push_back(std::move(row));
  }
  // The claims that lost: the name is another's (dns_names.h, "Conflicts").
  for (const slirp::DnsNames::Conflict& c : names.conflicts()) {
    json row{{"name", c.name},
             {"addresses", json::array()},
             {"source", slirp::name_source_text(c.source)}};
    if (c.source != slirp::NameSource::kStatic) row["mac"] = c.mac.to_string();
    std::string holder = slirp::name_source_text(c.holder_source);
    if (c.holder_mac) holder += " " + c.holder_mac->to_string();
    row["conflict"] = "held by " + holder;
    list.push_back(std::move(row));
  }
  return Reply::success(std::move(list));
}

// Every MAC the port saw use IPv6, with its addresses and the switch port it is on now.
Reply neighbours_command(const SlirpPorts& ports, uv_loop_t* loop, const json& args) {
  std::string error;
  if (!check_arg_names(args, {"vlan"}, "neighbours", error)) return Reply::failure(error);
  slirp::SlirpPort* port = pick(ports, args, "neighbours", error);
  if (port == nullptr) return Reply::failure(error);
  port->expire_neighbours();
  const slirp::SlirpPort& p = *port;
  // The table's clock is the loop's (SwitchLoop::now()).
  const int64_t now_ms = loop != nullptr ? static_cast<int64_t>(uv_now(loop)) : 0;
  const auto seconds_since = [now_ms](int64_t ms) {
    return ms < now_ms ? (now_ms - ms) / 1000 : 0;
  };
  json list = json::array();
  for (const slirp::Neighbours::Entry& e : p.neighbours().entries()) {
    json ipv6 = json::array();
    json seen = json::array();
    for (const slirp::Neighbours::Seen& s : e.addresses) {
      ipv6.push_back(s.address.to_string());
      seen.push_back(json{{"address", s.address.to_string()},
                          {"tentative", s.tentative},
                          {"age_s", seconds_since(s.last_seen_ms)},
                          {"first_seen_s", seconds_since(s.first_seen_ms)}});
    }
    json row{{"mac", e.mac.to_string()},
             {"vlan", vlan_of(p)},
             {"ipv6", std::move(ipv6)},
             {"seen", std::move(seen)}};
    const sw::PortId id = p.port_of(e.mac);
    row["port"] = id != sw::kNoPort ? json(id) : json(nullptr);
    list.push_back(std::move(row));
  }
  return Reply::success(std::move(list));
}

}  // namespace

void register_slirp_commands(ControlApi& api, const std::vector<slirp::SlirpPort*>& ports,
                             uv_loop_t* loop) {
  // Each handler keeps its own copy of the list (a few pointers); Switchd registers them again
  // when a reload adds, restarts or removes a slirp port.
  const std::string which =
      "; \"vlan\": N picks the slirp port of VLAN N (needed when there are several)";
  api.add("hostfwd.add",
          "forward a host port to a guest: {\"spec\": \"[tcp|udp]:[HOSTADDR]:HOSTPORT-"
          "[GUESTADDR]:GUESTPORT\"}" +
              which,
          [ports](const json& args) { return hostfwd_add_command(ports, args); });
  api.add("hostfwd.remove",
          "stop forwarding a host port: {\"spec\": \"[tcp|udp]:[HOSTADDR]:HOSTPORT\"}" + which,
          [ports](const json& args) { return hostfwd_remove_command(ports, args); });
  api.add("hostfwd.list", "the host forwards, one per row" + which,
          [ports](const json& args) { return hostfwd_list_command(ports, args); });
  api.add("usernet", "libslirp's connection table (QEMU's \"info usernet\")" + which,
          [ports](const json& args) { return usernet_command(ports, args); });
  api.add(
      "slirp.sockets",
      "the host sockets guests have open through NAT: in all, the caps, per switch port" + which,
      [ports](const json& args) { return slirp_sockets_command(ports, args); });
  api.add("dhcp.leases",
          "every MAC's DHCP address, pinned or not, its state, the port holding it and the "
          "host name it sent, and the IPv6 addresses it was seen using" +
              which,
          [ports, loop](const json& args) { return dhcp_leases_command(ports, loop, args); });
  api.add("dns.add",
          "a static DNS record: {\"name\": NAME (short: NAME.<domain>, or full), \"addr\": "
          "IPv4 or IPv6}; several records for one name add addresses" +
              which,
          [ports](const json& args) { return dns_add_command(ports, args); });
  api.add("dns.remove",
          "remove a static DNS record: {\"name\": NAME, \"addr\": ADDR (optional: every "
          "address of NAME)}" +
              which,
          [ports](const json& args) { return dns_remove_command(ports, args); });
  api.add("dns.list",
          "every DNS name the slirp port answers for, its addresses and where it comes from "
          "(host, static, lease, lab, exec, dhcp-hostname), and the claims that lost a name" +
              which,
          [ports](const json& args) { return dns_list_command(ports, args); });
  api.add("neighbours",
          "every MAC seen using IPv6 on the slirp port's segment: its addresses (tentative: "
          "only probed for so far), when seen, and the switch port it is on now" +
              which,
          [ports, loop](const json& args) { return neighbours_command(ports, loop, args); });
}

void register_slirp_commands(ControlApi& api, slirp::SlirpPort& port, uv_loop_t* loop) {
  register_slirp_commands(api, std::vector<slirp::SlirpPort*>{&port}, loop);
}

}  // namespace qswitch::tools
