// tools/qswitch/services/slirp_commands.cc: the slirp port's control commands. Each handler parses
// and checks its arguments completely before it asks the port to change anything, so a bad request
// changes nothing; the port's own refusals (port in use, duplicate) come back as error replies.
#include "tools/qswitch/services/slirp_commands.h"

#include "slirp/dhcp_server.h"
#include "tools/qswitch/config/slirp_options_parse.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

// A forward as listed; a guest address left to "the first DHCP address" is shown resolved.
json hostfwd_json(slirp::HostForward f, const slirp::SlirpOptions& options) {
  if (f.guest_addr.s_addr == 0) f.guest_addr = options.dhcp_start;
  return json{{"proto", f.udp ? "udp" : "tcp"}, {"host_addr", format_ipv4(f.host_addr)},
              {"host_port", f.host_port},       {"guest_addr", format_ipv4(f.guest_addr)},
              {"guest_port", f.guest_port},     {"spec", f.to_string()}};
}

bool same_key(const slirp::HostForward& a, const slirp::HostForward& b) {
  return a.udp == b.udp && a.host_addr.s_addr == b.host_addr.s_addr && a.host_port == b.host_port;
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

Reply hostfwd_add_command(slirp::SlirpPort& p, const json& args) {
  const std::string cmd = "hostfwd.add";
  std::string error, spec;
  if (!check_arg_names(args, {"spec"}, cmd, error) || !string_arg(args, "spec", cmd, spec, error)) {
    return Reply::failure(error);
  }
  slirp::HostForward f;
  if (!parse_hostfwd(spec, f, error) || !check_hostfwd_guest(f, p.options(), error)) {
    return Reply::failure(error);
  }
  const size_t before = p.hostfwds().size();
  if (!p.add_hostfwd(f, error)) return Reply::failure("hostfwd '" + spec + "': " + error);
  // The port's entry (it may have resolved a port 0 or the guest address).
  const slirp::HostForward& added = p.hostfwds().size() > before ? p.hostfwds().back() : f;
  return Reply::success(hostfwd_json(added, p.options()));
}

Reply hostfwd_remove_command(slirp::SlirpPort& p, const json& args) {
  const std::string cmd = "hostfwd.remove";
  std::string error, spec;
  if (!check_arg_names(args, {"spec"}, cmd, error) || !string_arg(args, "spec", cmd, spec, error)) {
    return Reply::failure(error);
  }
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
    return Reply::failure("hostfwd '" + spec + "': no forward on " + (key.udp ? "udp " : "tcp ") +
                          format_ipv4(key.host_addr) + ":" + std::to_string(key.host_port) +
                          "; forwards now: " + (now.empty() ? "none" : now));
  }
  const slirp::HostForward victim = *found;  // the list changes below
  if (!p.remove_hostfwd(victim, error)) return Reply::failure("hostfwd '" + spec + "': " + error);
  return Reply::success(hostfwd_json(victim, p.options()));
}

Reply hostfwd_list_command(slirp::SlirpPort& p, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "hostfwd.list", error)) return Reply::failure(error);
  json list = json::array();
  for (const slirp::HostForward& f : p.hostfwds()) list.push_back(hostfwd_json(f, p.options()));
  return Reply::success(std::move(list));
}

Reply slirp_sockets_command(slirp::SlirpPort& p, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "slirp.sockets", error)) return Reply::failure(error);
  const slirp::HostSocketCounts c = p.host_sockets();
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

Reply dhcp_leases_command(slirp::SlirpPort& p, uv_loop_t* loop, const json& args) {
  std::string error;
  if (!check_arg_names(args, {}, "dhcp.leases", error)) return Reply::failure(error);
  const int64_t now_s = loop != nullptr ? static_cast<int64_t>(uv_now(loop) / 1000) : 0;
  json list = json::array();
  for (const slirp::DhcpServer::Lease& l : p.dhcp().leases()) {
    json row{{"mac", l.mac.to_string()},
             {"ip", format_ipv4(l.addr)},
             {"pinned", l.pinned},
             {"state", state_name(l.state)}};
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

}  // namespace

void register_slirp_commands(ControlApi& api, slirp::SlirpPort& port, uv_loop_t* loop) {
  slirp::SlirpPort* p = &port;
  api.add("hostfwd.add",
          "forward a host port to a guest: {\"spec\": \"[tcp|udp]:[HOSTADDR]:HOSTPORT-"
          "[GUESTADDR]:GUESTPORT\"}",
          [p](const json& args) { return hostfwd_add_command(*p, args); });
  api.add("hostfwd.remove",
          "stop forwarding a host port: {\"spec\": \"[tcp|udp]:[HOSTADDR]:HOSTPORT\"}",
          [p](const json& args) { return hostfwd_remove_command(*p, args); });
  api.add("hostfwd.list", "the host forwards, one per row",
          [p](const json& args) { return hostfwd_list_command(*p, args); });
  api.add("usernet", "libslirp's connection table (QEMU's \"info usernet\")",
          [p](const json& args) {
            std::string error;
            if (!check_arg_names(args, {}, "usernet", error)) return Reply::failure(error);
            return Reply::success(json{{"text", p->connection_info()}});
          });
  api.add("slirp.sockets",
          "the host sockets guests have open through NAT: in all, the caps, per switch port",
          [p](const json& args) { return slirp_sockets_command(*p, args); });
  api.add("dhcp.leases",
          "every MAC's DHCP address, pinned or not, its state and the port holding it",
          [p, loop](const json& args) { return dhcp_leases_command(*p, loop, args); });
}

}  // namespace qswitch::tools
