// tools/qswitch/switchd.cc: see the header.
#include "tools/qswitch/switchd.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <iterator>
#include <map>
#include <optional>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/log.h"
#include "backends/tap/tap_port.h"
#include "backends/vxlan/vxlan_port.h"
#include "tools/qswitch/config/config_parse.h"
#include "tools/qswitch/config/socket_trust.h"
#include "tools/qswitch/join_lines.h"
#include "tools/qswitch/services/attach_commands.h"
#include "tools/qswitch/services/capture_commands.h"
#include "tools/qswitch/services/metrics_text.h"
#include "tools/qswitch/services/slirp_commands.h"

namespace qswitch::tools {

namespace {

backends::LoopConfig loop_config(const Options& opt) {
  backends::LoopConfig config;
  config.fabric.mac.max_entries = opt.mac_max;
  config.fabric.mac.age_ms = sw::Millis{opt.mac_age_s} * 1000;
  config.queue_size = opt.queue_size;
  return config;
}

// One fd per port: take all the fds we may have (the listeners back off when they run out).
void raise_fd_limit() {
  uint64_t before = 0;
  const uint64_t limit = io::raise_fd_limit(&before);
  if (limit != before) {
    io::log_line("fd limit %llu (raised from %llu)", static_cast<unsigned long long>(limit),
                 static_cast<unsigned long long>(before));
  } else {
    io::log_line("fd limit %llu", static_cast<unsigned long long>(limit));
  }
}

size_t index_of(LabPortKind kind) { return static_cast<size_t>(kind); }

std::string item_text(const ReloadItem& item) {
  std::string text = item.label();
  for (size_t i = 0; i < item.what.size(); ++i) text += (i == 0 ? ": " : ", ") + item.what[i];
  return text;
}

nlohmann::json item_list(const std::vector<ReloadItem>& items) {
  nlohmann::json list = nlohmann::json::array();
  for (const ReloadItem& item : items) list.push_back(item_text(item));
  return list;
}

// "added 1, removed 1, changed 2, restarted 0, unchanged 3" (the SIGHUP log line).
std::string reload_summary(const nlohmann::json& result) {
  std::string text;
  for (const char* key : {"added", "removed", "changed", "restarted", "unchanged"}) {
    const size_t n = result.contains(key) ? result[key].size() : 0;
    text += (text.empty() ? "" : ", ") + std::string(key) + " " + std::to_string(n);
  }
  return text;
}

bool has_key(const std::vector<slirp::HostForward>& list, const slirp::HostForward& f) {
  return std::any_of(list.begin(), list.end(),
                     [&](const slirp::HostForward& g) { return f.same_host_socket(g); });
}

// Removes the live forward on `f`'s host socket (the port may have resolved its port 0).
bool remove_forward(slirp::SlirpPort& port, const slirp::HostForward& f, std::string& error) {
  for (const slirp::HostForward& live : port.hostfwds()) {
    if (!live.same_host_socket(f)) continue;
    // A copy: remove_hostfwd() changes the list `live` is in.
    return port.remove_hostfwd(slirp::HostForward(live), error);
  }
  return true;  // gone already (hostfwd.remove)
}

}  // namespace

Switchd::Switchd(LabFile lab, std::vector<std::string> argv)
    : lab_(std::move(lab)), argv_(std::move(argv)), running_(std::size(kLabPortKinds)) {}

std::unique_ptr<Switchd> Switchd::create(LabFile lab, std::vector<std::string> argv,
                                         std::string& error) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  std::unique_ptr<Switchd> d(new Switchd(std::move(lab), std::move(argv)));
  if (!d->start(error)) return nullptr;  // destroying d releases what was bound
  return d;
}

std::unique_ptr<Switchd> Switchd::create(const Options& options, std::string& error) {
  LabFile lab;
  lab.options = options;
  return create(std::move(lab), {}, error);
}

bool Switchd::start(std::string& error) {
  loop_ = std::make_unique<backends::SwitchLoop>(loop_config(options_));
  capture_ = std::make_unique<tools::CaptureHub>(loop_->uv(), loop_->fabric());
  if (options_.pcap && !capture_->start_file(*options_.pcap, error)) {
    error = "--pcap: " + error;
    return false;
  }
  endpoints_ = std::make_unique<Endpoints>(*loop_, &own_sockets_);
  for (const LabPortKind kind : kLabPortKinds) {
    running_[index_of(kind)].resize(lab_port_count(options_, kind));
  }
  if (!start_ports(error) || !start_slirp(error)) return false;
  register_commands();
  if (!start_control(error) || !start_metrics(error)) return false;
  // The diallers last: they may reach this switch's own sockets.
  for (const LabPortKind kind : {LabPortKind::kConnect, LabPortKind::kVhostUser}) {
    for (size_t i = 0; i < lab_port_count(options_, kind); ++i) {
      if (kind == LabPortKind::kVhostUser && !options_.vhost_user[i].dial) continue;
      Opened opened;
      if (!open_entry(kind, options_, i, opened, error)) return false;
      running_[index_of(kind)][i] = adopt(kind, options_, i, opened);
    }
  }
  publish_names();
  loop_->on_sighup([this] {
    // A success logs its own line (reload()).
    const Reply r = reload();
    if (!r.ok) io::log_line("SIGHUP: %s", r.error.c_str());
  });
  return true;
}

bool Switchd::start_ports(std::string& error) {
  for (const LabPortKind kind : {LabPortKind::kListen, LabPortKind::kDgram, LabPortKind::kVhostUser,
                                 LabPortKind::kTap, LabPortKind::kVxlan}) {
    for (size_t i = 0; i < lab_port_count(options_, kind); ++i) {
      if (kind == LabPortKind::kVhostUser && options_.vhost_user[i].dial) continue;
      Opened opened;
      if (!open_entry(kind, options_, i, opened, error)) return false;
      if (!opened.line.empty()) port_lines_.push_back(opened.line);
      running_[index_of(kind)][i] = adopt(kind, options_, i, opened);
    }
  }
  return true;
}

// Each slirp port is its own libslirp instance on its VLAN. The options were checked as a set
// (check_slirp_ports: one per VLAN, no two forwards on one host socket); a host forward that
// still cannot bind (another program holds the port) fails the start, and what was made is
// released with the half-built daemon.
bool Switchd::start_slirp(std::string& error) {
  for (size_t i = 0; i < options_.slirp.size(); ++i) {
    Opened opened;
    if (!open_entry(LabPortKind::kSlirp, options_, i, opened, error)) return false;
    running_[index_of(LabPortKind::kSlirp)][i] = adopt(LabPortKind::kSlirp, options_, i, opened);
  }
  refresh_slirp_ports();
  return true;
}

bool Switchd::open_entry(LabPortKind kind, const Options& o, size_t i, Opened& out,
                         std::string& error) {
  switch (kind) {
    case LabPortKind::kListen:
      out.endpoint =
          endpoints_->add_listen(o.listen[i], o.listen[i].vlans, error, o.listen[i].security);
      return !out.endpoint.empty();
    case LabPortKind::kConnect:
      out.endpoint =
          endpoints_->add_connect(o.connect[i], o.connect[i].vlans, o.connect[i].security);
      return true;
    case LabPortKind::kDgram:
      out.endpoint = endpoints_->add_dgram(o.dgram[i], error);
      return !out.endpoint.empty();
    case LabPortKind::kVhostUser:
      out.endpoint = endpoints_->add_vhost_user(o.vhost_user[i], error);
      return !out.endpoint.empty();
    case LabPortKind::kTap: {
      std::string why;
      std::string name;  // the one asked for, or (fd=N) the one the kernel reported
      out.port = backends::open_tap_port(*loop_, o.taps[i], why, &name);
      if (!out.port) {
        error = "--tap: " + why;
        return false;
      }
      out.line = "tap " + name;
      return true;
    }
    case LabPortKind::kVxlan: {
      const backends::VxlanConfig& v = o.vxlans[i];
      std::string why;
      out.port = backends::open_vxlan_port(*loop_, v, why, &own_sockets_);
      if (!out.port) {
        error = "--vxlan: " + why;
        return false;
      }
      out.line = "vxlan vni=" + std::to_string(v.vni) +
                 " local=" + io::sockaddr_text(backends::vxlan_bound_local(*out.port));
      for (const backends::VxlanRemote& r : v.remotes) {
        out.line += " remote=" + io::sockaddr_text(r.addr, r.len);
      }
      return true;
    }
    case LabPortKind::kSlirp: {
      const slirp::SlirpOptions& options = o.slirp[i];
      std::string why;
      std::unique_ptr<slirp::SlirpPort> port =
          slirp::SlirpPort::create(*loop_, options, why, &own_sockets_);
      if (!port) {
        error = (o.slirp.size() > 1 || options.vlan != sw::kDefaultVlan
                     ? "--slirp vlan=" + std::to_string(options.vlan) + ": "
                     : std::string("--slirp: ")) +
                why;
        return false;
      }
      out.slirp = port.get();
      out.port = std::move(port);
      return true;
    }
  }
  return false;
}

Switchd::Handle Switchd::adopt(LabPortKind kind, const Options& o, size_t i, Opened& opened) {
  Handle h;
  h.endpoint = opened.endpoint;
  if (!opened.port) return h;
  switch (kind) {
    case LabPortKind::kTap:
      h.serial = loop_->adopt(std::move(opened.port), o.taps[i].vlans, o.taps[i].security).serial();
      break;
    case LabPortKind::kVxlan:
      h.serial =
          loop_->adopt(std::move(opened.port), o.vxlans[i].vlans, o.vxlans[i].security).serial();
      break;
    case LabPortKind::kSlirp:
      h.serial = loop_->adopt(std::move(opened.port), sw::VlanMembership::access(o.slirp[i].vlan))
                     .serial();
      h.slirp = opened.slirp;
      break;
    default:
      break;
  }
  return h;
}

backends::LoopPort* Switchd::port_by_serial(uint64_t serial) const {
  backends::LoopPort* found = nullptr;
  if (serial == 0) return nullptr;
  loop_->for_each_port([&](backends::LoopPort& p) {
    if (p.serial() == serial) found = &p;
  });
  return found;
}

bool Switchd::live(const Handle& h) const {
  if (!h.endpoint.empty()) return endpoints_->has(h.endpoint);
  return port_by_serial(h.serial) != nullptr;
}

void Switchd::stop(const Handle& h, const std::string& reason) {
  std::string ignored;  // an endpoint `port.remove` took already
  if (!h.endpoint.empty()) endpoints_->remove(h.endpoint, reason, ignored);
  if (backends::LoopPort* p = port_by_serial(h.serial)) p->close(reason);
}

void Switchd::refresh_slirp_ports() {
  slirp_ports_.clear();
  for (const Handle& h : running_[index_of(LabPortKind::kSlirp)]) {
    if (h.slirp != nullptr && port_by_serial(h.serial) != nullptr) slirp_ports_.push_back(h.slirp);
  }
  // DNS names of guests on ports `qswitch exec --name` made (slirp_port.h).
  const ExecNames* exec = &exec_names_;
  for (slirp::SlirpPort* p : slirp_ports_) {
    p->set_port_namer([exec](uint64_t serial) { return exec->find(serial); });
  }
}

void Switchd::publish_names() {
  std::map<std::string, std::string> by_endpoint;
  std::map<uint64_t, std::string> by_serial;
  for (const LabPortKind kind : kLabPortKinds) {
    const std::vector<std::string>& names = lab_port_names(lab_.names, kind);
    const std::vector<Handle>& handles = running_[index_of(kind)];
    for (size_t i = 0; i < handles.size() && i < names.size(); ++i) {
      if (names[i].empty()) continue;
      if (!handles[i].endpoint.empty()) by_endpoint[handles[i].endpoint] = names[i];
      if (handles[i].serial != 0) by_serial[handles[i].serial] = names[i];
    }
  }
  std::map<uint64_t, std::string> guests;
  std::vector<slirp::DnsNames::Guest> dns_guests;
  for (const LabGuest& g : lab_.guests) {
    guests[g.mac.key()] = g.name;
    // A static address ("A.B.C.D/LEN") answers too; "dhcp" ones come with their lease.
    std::optional<sw::IpAddress> ip;
    if (!g.ip.empty() && g.ip != "dhcp") ip = sw::IpAddress::parse(g.ip.substr(0, g.ip.find('/')));
    dns_guests.push_back(slirp::DnsNames::Guest{g.mac, g.name, ip});
  }
  endpoints_->set_names(std::move(by_endpoint), std::move(by_serial), std::move(guests));
  // Every slirp port answers for the lab's guests by name (slirp/dns_names.h).
  for (slirp::SlirpPort* p : slirp_ports_) p->set_guest_names(dns_guests);
}

void Switchd::register_commands() {
  register_switch_commands(api_, *loop_, *endpoints_, &services_);
  register_capture_commands(api_, *capture_);
  register_attach_commands(api_, *loop_, &exec_names_);
  register_slirp_commands(api_, slirp_ports_, loop_->uv());
  api_.add("reload",
           "read the lab file (--config) again and apply what changed: ports added, removed, "
           "restarted or changed in place (VLANs, port security, slirp host forwards and DNS "
           "records, names); "
           "the rest keeps running untouched. An invalid file changes nothing",
           [this](const nlohmann::json& args) {
             std::string error;
             if (!check_arg_names(args, {}, "reload", error)) return Reply::failure(error);
             return reload();
           });
}

bool Switchd::start_control(std::string& error) {
  if (options_.control_disabled) return true;
  const std::string path = options_.control ? options_.control->path
                                            : control_path_for_pid(static_cast<int>(::getpid()));
  std::string why;
  if (!trust_socket_dir_for(path, DirUse::kCreate, why)) {
    error = "cannot create the control socket " + path + ": " + why;
    return false;
  }
  tools::ControlHandlers handlers;
  ControlApi& api = api_;
  handlers.line_fds = [&api](std::string_view line, std::vector<io::Fd>& fds,
                             tools::Takeover& takeover) {
    return api.handle_line(line, &takeover, &fds);
  };
  handlers.too_long = [&api](size_t limit) { return api.too_long_reply(limit); };
  handlers.busy = [&api](size_t max) { return api.busy_reply(max); };
  handlers.too_many_fds = [&api](size_t limit) { return api.too_many_fds_reply(limit); };
  control_ = std::make_unique<tools::ControlServer>(loop_->uv(), path, std::move(handlers));
  if (!control_->ok()) {
    error = "cannot create the control socket " + path + ": " + control_->error() +
            " (--control sets another path, --control none disables it)";
    return false;
  }
  services_.control = control_.get();
  return true;
}

bool Switchd::start_metrics(std::string& error) {
  if (!options_.metrics) return true;
  backends::SwitchLoop& sl = *loop_;
  metrics_ = std::make_unique<tools::MetricsServer>(
      loop_->uv(), *options_.metrics, [&sl] { return tools::render_metrics(sl.snapshot()); });
  if (!metrics_->ok()) {
    error = "cannot serve metrics on " + options_.metrics->to_string() + ": " + metrics_->error();
    return false;
  }
  metrics_registration_ =
      own_sockets_.add(io::Transport::kTcp, metrics_->bound().host.c_str(), metrics_->bound().port);
  if (options_.metrics->host != "127.0.0.1" && options_.metrics->host != "::1") {
    io::log_line("warning: metrics on %s can be read by anyone who can reach that address",
                 metrics_->bound().to_string().c_str());
  }
  services_.metrics = metrics_.get();
  return true;
}

void Switchd::print_join_lines(std::FILE* out) const {
  for (const auto& l : endpoints_->listeners()) {
    std::fprintf(out, "listening %s\n", l.listener->address().to_string().c_str());
  }
  for (const auto& c : endpoints_->connectors()) {
    if (c.id.rfind("vhost-user-", 0) == 0) {
      std::fprintf(out, "vhost-user connect:%s\n", c.connector->address().path.c_str());
    } else {
      std::fprintf(out, "connecting %s\n", c.connector->address().to_string().c_str());
    }
  }
  for (const auto& d : endpoints_->dgrams()) {
    std::fprintf(out, "dgram %s\n", d.endpoint->bound().c_str());
  }
  for (const auto& v : endpoints_->vhost_users()) {
    std::fprintf(out, "vhost-user %s\n", v.listener->address().to_string().c_str());
  }
  for (const std::string& line : port_lines_) std::fprintf(out, "%s\n", line.c_str());
  if (control_) std::fprintf(out, "control unix:%s\n", control_->path().c_str());
  if (metrics_) std::fprintf(out, "metrics %s\n", metrics_->bound().to_string().c_str());
  for (const slirp::SlirpPort* p : slirp_ports_) {
    const uint16_t vlan = p->vlans().untagged;
    std::fprintf(out, "%s%s\n", p->describe().c_str(),
                 vlan == sw::kDefaultVlan ? "" : (" vlan=" + std::to_string(vlan)).c_str());
  }
  // Guests take turns over the listeners, then the datagram sockets (in start-up order, which
  // is options_.dgram's), then the vhost-user sockets.
  const auto& listeners = endpoints_->listeners();
  const auto& dgrams = endpoints_->dgrams();
  const auto& vhost_users = endpoints_->vhost_users();
  const size_t ways = listeners.size() + dgrams.size() + vhost_users.size();
  if (!vhost_users.empty() && options_.guests > 0) {
    std::fprintf(out,
                 "vhost-user guests: size=%s must equal the guest's -m (or leave -m out); "
                 "vectors=0 is for TCG (QEMU 7.2 crashes with MSI-X there), drop it under KVM\n",
                 kVhostUserMemory);
  }
  for (uint32_t g = 0; g < options_.guests && ways > 0; ++g) {
    const size_t way = g % ways;
    const sw::MacAddress mac = random_guest_mac();
    std::string netdev;
    std::string device_options;
    if (way < listeners.size()) {
      netdev = stream_netdev(listeners[way].listener->address(), false);
    } else if (way >= listeners.size() + dgrams.size()) {
      const size_t i = way - listeners.size() - dgrams.size();
      netdev = vhost_user_netdev(vhost_users[i].listener->address());
      device_options = kVhostUserTcgDevice;
    } else {
      const size_t i = way - listeners.size();
      const std::vector<sockaddr_storage> udp = dgrams[i].endpoint->udp_addresses();
      netdev = dgram_netdev(options_.dgram[i], udp.empty() ? sockaddr_storage{} : udp.front(), mac);
    }
    std::fprintf(out, "%s\n", join_line(netdev, mac, device_options).c_str());
  }
  std::fprintf(out, "ready\n");
  std::fflush(out);
}

Reply Switchd::reload() {
  if (argv_.empty() || !options_.config) {
    return Reply::failure(
        "reload: this qswitch was started without --config, so there is no lab file to read "
        "again (start it with --config FILE)");
  }
  const std::string& file = *options_.config;
  std::vector<const char*> argv;
  for (const std::string& a : argv_) argv.push_back(a.c_str());
  LabFileResult parsed = parse_configuration(static_cast<int>(argv.size()), argv.data());
  if (!parsed.lab) return Reply::failure("reload: " + parsed.error + "; nothing was changed");
  LabFile next = std::move(*parsed.lab);
  ReloadPlan plan = plan_reload(lab_, next);
  if (!plan.error.empty()) return Reply::failure("reload: " + file + ": " + plan.error);
  // A configured port that is not running (closed after an error, taken by port.remove, or a
  // restart that failed) starts again, with the new settings.
  for (std::vector<ReloadItem>* list : {&plan.unchanged, &plan.changed}) {
    for (auto it = list->begin(); it != list->end();) {
      if (live(running_[index_of(it->kind)][it->old_index])) {
        ++it;
        continue;
      }
      it->what = {"was not running"};
      it->hostfwd_add.clear();
      it->hostfwd_remove.clear();
      plan.restarted.push_back(std::move(*it));
      it = list->erase(it);
    }
  }
  const Options& o = next.options;
  std::vector<std::vector<Handle>> handles(std::size(kLabPortKinds));
  for (const LabPortKind kind : kLabPortKinds)
    handles[index_of(kind)].resize(lab_port_count(o, kind));

  // 1. Everything new that binds or opens, before anything changes: on the first failure, what
  //    was made is released and the running switch is as it was. New host forwards on host
  //    sockets no removed forward frees go here too.
  std::vector<std::pair<const ReloadItem*, Opened>> opened;
  std::vector<std::pair<slirp::SlirpPort*, slirp::HostForward>> forwards_added;
  std::string error;
  const auto undo = [&](const std::string& why) {
    for (auto& [item, made] : opened) {
      std::string ignored;
      if (!made.endpoint.empty()) endpoints_->remove(made.endpoint, "reload failed", ignored);
    }
    for (auto& [port, f] : forwards_added) {
      std::string ignored;
      remove_forward(*port, f, ignored);
    }
    return Reply::failure("reload: " + file + ": " + why + "; nothing was changed");
  };
  for (const ReloadItem& item : plan.added) {
    Opened made;
    if (!open_entry(item.kind, o, item.new_index, made, error)) {
      return undo("cannot start " + item.label() + ": " + error);
    }
    opened.emplace_back(&item, std::move(made));
  }
  for (const ReloadItem& item : plan.changed) {
    slirp::SlirpPort* port = running_[index_of(item.kind)][item.old_index].slirp;
    if (port == nullptr) continue;
    for (const slirp::HostForward& f : item.hostfwd_add) {
      if (has_key(item.hostfwd_remove, f)) continue;
      if (!port->add_hostfwd(f, error)) {
        return undo(item.label() + ": hostfwd '" + f.to_string() + "': " + error);
      }
      forwards_added.emplace_back(port, f);
    }
  }

  // 2. Removals, then restarts (stopped, then started with the new settings).
  const std::string reason = "removed by reload of " + file;
  for (const ReloadItem& item : plan.removed) {
    stop(running_[index_of(item.kind)][item.old_index], reason);
  }
  std::vector<std::string> failures;
  for (const ReloadItem& item : plan.restarted) {
    stop(running_[index_of(item.kind)][item.old_index], "restarted by reload of " + file);
    Opened made;
    if (!open_entry(item.kind, o, item.new_index, made, error)) {
      failures.push_back("cannot restart " + item.label() + ": " + error + " (it is stopped)");
      continue;
    }
    handles[index_of(item.kind)][item.new_index] = adopt(item.kind, o, item.new_index, made);
  }

  // 3. In-place changes; unchanged ports keep their handles.
  for (const ReloadItem& item : plan.unchanged) {
    handles[index_of(item.kind)][item.new_index] = running_[index_of(item.kind)][item.old_index];
  }
  for (const ReloadItem& item : plan.changed) {
    handles[index_of(item.kind)][item.new_index] = change_in_place(item, o, failures);
  }

  // 4. The new ports join.
  for (auto& [item, made] : opened) {
    handles[index_of(item->kind)][item->new_index] = adopt(item->kind, o, item->new_index, made);
  }
  lab_ = std::move(next);
  running_ = std::move(handles);
  refresh_slirp_ports();
  register_slirp_commands(api_, slirp_ports_, loop_->uv());
  publish_names();
  nlohmann::json result = {{"config", file},
                           {"added", item_list(plan.added)},
                           {"removed", item_list(plan.removed)},
                           {"changed", item_list(plan.changed)},
                           {"restarted", item_list(plan.restarted)},
                           {"unchanged", item_list(plan.unchanged)}};
  if (!failures.empty()) {
    std::string text;
    for (const std::string& f : failures) text += (text.empty() ? "" : "; ") + f;
    return Reply::failure("reload: " + file + ": applied, except: " + text + " (" +
                          reload_summary(result) + ")");
  }
  io::log_line("reload of %s: %s", file.c_str(), reload_summary(result).c_str());
  return Reply::success(std::move(result));
}

// A `changed` item: the new VLANs and port security to the endpoint and its live ports (or to a
// tap or VXLAN port), a slirp port's forwards removed and added (the new ones on host sockets
// no removed forward frees were added before anything changed). Failures go to `failures`.
Switchd::Handle Switchd::change_in_place(const ReloadItem& item, const Options& o,
                                         std::vector<std::string>& failures) {
  std::string error;
  Handle h = running_[index_of(item.kind)][item.old_index];
  const bool vlans = std::find(item.what.begin(), item.what.end(), "vlan") != item.what.end();
  const bool security =
      std::find(item.what.begin(), item.what.end(), "port-security") != item.what.end();
  const sw::VlanMembership v = lab_port_vlans(o, item.kind, item.new_index);
  const sw::PortSecurity sec = lab_port_security(o, item.kind, item.new_index);
  if (!h.endpoint.empty() && (vlans || security)) {
    endpoints_->set_membership(h.endpoint, vlans ? &v : nullptr, security ? &sec : nullptr);
  } else if (backends::LoopPort* p = port_by_serial(h.serial); p != nullptr && h.slirp == nullptr) {
    if (vlans) loop_->fabric().set_vlans(*p, v, loop_->now());
    if (security) loop_->fabric().set_security(*p, sec);
  }
  if (h.slirp == nullptr) return h;
  // Static DNS records: the file's old ones go (one removed with `ctl dns remove` already is
  // gone), its new ones come (one added with `ctl dns add` already is there).
  for (const slirp::DnsRecord& r : item.dns_record_remove) {
    if (h.slirp->dns_names().has_static(r.name, r.addr)) {
      h.slirp->remove_dns_record(r.name, r.addr, error);
    }
  }
  for (const slirp::DnsRecord& r : item.dns_record_add) {
    if (h.slirp->dns_names().has_static(r.name, r.addr)) continue;
    if (!h.slirp->add_dns_record(r.name, r.addr, error)) {
      failures.push_back(item.label() + ": dns-record '" + r.name + "=" + r.addr.to_string() +
                         "': " + error);
    }
  }
  for (const slirp::HostForward& f : item.hostfwd_remove) {
    if (!remove_forward(*h.slirp, f, error)) {
      failures.push_back(item.label() + ": hostfwd '" + f.to_string() + "': " + error);
    }
  }
  for (const slirp::HostForward& f : item.hostfwd_add) {
    if (!has_key(item.hostfwd_remove, f)) continue;  // added already, in reload()
    if (!h.slirp->add_hostfwd(f, error)) {
      failures.push_back(item.label() + ": hostfwd '" + f.to_string() + "': " + error);
    }
  }
  return h;
}

void Switchd::run() {
  loop_->run();
  loop_->print_stats();
}

}  // namespace qswitch::tools
