// tools/qswitch/switchd.cc: see the header.
#include "tools/qswitch/switchd.h"

#include <unistd.h>

#include <csignal>

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

}  // namespace

Switchd::Switchd(const Options& options) : options_(options) {}

std::unique_ptr<Switchd> Switchd::create(const Options& options, std::string& error) {
  std::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  std::unique_ptr<Switchd> d(new Switchd(options));
  if (!d->start(error)) return nullptr;  // destroying d releases what was bound
  return d;
}

bool Switchd::start(std::string& error) {
  loop_ = std::make_unique<backends::SwitchLoop>(loop_config(options_));
  capture_ = std::make_unique<tools::CaptureHub>(loop_->uv(), loop_->fabric());
  if (options_.pcap && !capture_->start_file(*options_.pcap, error)) {
    error = "--pcap: " + error;
    return false;
  }
  endpoints_ = std::make_unique<Endpoints>(*loop_, &own_sockets_);
  if (!start_ports(error) || !start_slirp(error)) return false;
  register_commands();
  if (!start_control(error) || !start_metrics(error)) return false;
  for (const StreamEndpoint& ep : options_.connect) {
    endpoints_->add_connect(ep, ep.vlans, ep.security);
  }
  for (const backends::vhost_user::VhostUserSpec& v : options_.vhost_user) {
    if (v.dial) endpoints_->add_vhost_user(v, error);
  }
  return true;
}

bool Switchd::start_ports(std::string& error) {
  for (const StreamEndpoint& ep : options_.listen) {
    if (endpoints_->add_listen(ep, ep.vlans, error, ep.security).empty()) return false;
  }
  for (const backends::DgramConfig& d : options_.dgram) {
    if (endpoints_->add_dgram(d, error).empty()) return false;
  }
  for (const backends::vhost_user::VhostUserSpec& v : options_.vhost_user) {
    if (!v.dial && endpoints_->add_vhost_user(v, error).empty()) return false;
  }
  for (const backends::TapSpec& t : options_.taps) {
    std::string why;
    std::string name;  // the one asked for, or (fd=N) the one the kernel reported
    std::unique_ptr<backends::LoopPort> port = backends::open_tap_port(*loop_, t, why, &name);
    if (!port) {
      error = "--tap: " + why;
      return false;
    }
    port_lines_.push_back("tap " + name);
    loop_->adopt(std::move(port), t.vlans, t.security);
  }
  for (const backends::VxlanConfig& v : options_.vxlans) {
    std::string why;
    std::unique_ptr<backends::LoopPort> port =
        backends::open_vxlan_port(*loop_, v, why, &own_sockets_);
    if (!port) {
      error = "--vxlan: " + why;
      return false;
    }
    std::string line = "vxlan vni=" + std::to_string(v.vni) +
                       " local=" + io::sockaddr_text(backends::vxlan_bound_local(*port));
    for (const backends::VxlanRemote& r : v.remotes) {
      line += " remote=" + io::sockaddr_text(r.addr, r.len);
    }
    port_lines_.push_back(line);
    loop_->adopt(std::move(port), v.vlans, v.security);
  }
  return true;
}

// Each slirp port is its own libslirp instance on its VLAN. The options were checked as a set
// (check_slirp_ports: one per VLAN, no two forwards on one host socket); a host forward that
// still cannot bind (another program holds the port) fails the start, and what was made is
// released with the half-built daemon.
bool Switchd::start_slirp(std::string& error) {
  for (const slirp::SlirpOptions& options : options_.slirp) {
    std::string why;
    std::unique_ptr<slirp::SlirpPort> port =
        slirp::SlirpPort::create(*loop_, options, why, &own_sockets_);
    if (!port) {
      error = (options_.slirp.size() > 1 || options.vlan != sw::kDefaultVlan
                   ? "--slirp vlan=" + std::to_string(options.vlan) + ": "
                   : std::string("--slirp: ")) +
              why;
      return false;
    }
    slirp_ports_.push_back(port.get());
    loop_->adopt(std::move(port), sw::VlanMembership::access(options.vlan));
  }
  return true;
}

void Switchd::register_commands() {
  register_switch_commands(api_, *loop_, *endpoints_, &services_);
  register_capture_commands(api_, *capture_);
  register_attach_commands(api_, *loop_);
  register_slirp_commands(api_, slirp_ports_, loop_->uv());
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

void Switchd::run() {
  loop_->run();
  loop_->print_stats();
}

}  // namespace qswitch::tools
