// tools/qswitch/main.cc: the qswitch program. "qswitch ctl ..." is the control client (ctl.cc).
// Otherwise: parses the command line, raises the soft fd limit to the hard one, binds every
// listener, creates the slirp port and the control socket and starts every dialler (all or
// nothing: the first failure stops start-up with a message and removes what was bound), prints
// how a guest joins, then runs the loop until SIGINT/SIGTERM.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/capture/capture_hub.h"
#include "backends/control/control_server.h"
#include "backends/io/accept_watch.h"
#include "backends/io/own_endpoints.h"
#include "backends/metrics/metrics_server.h"
#include "backends/stream/stream_connector.h"
#include "backends/stream/stream_listener.h"
#include "backends/switch_loop.h"
#include "slirp/slirp_port.h"
#include "tools/qswitch/attach_commands.h"
#include "tools/qswitch/capture_commands.h"
#include "tools/qswitch/control_api.h"
#include "tools/qswitch/ctl.h"
#include "tools/qswitch/options.h"
#include "tools/qswitch/endpoints.h"
#include "tools/qswitch/exec.h"
#include "tools/qswitch/metrics_text.h"
#include "backends/tap/tap_port.h"
#include "backends/vxlan/vxlan_port.h"
#include "tools/qswitch/slirp_commands.h"
#include "tools/qswitch/socket_trust.h"
#include "tools/qswitch/switch_commands.h"

namespace {

using qswitch::io::Endpoint;

std::string random_guest_mac(std::mt19937_64& rng) {
  // 52:54:00 is QEMU's prefix; 0x52 has the locally administered bit set.
  const uint64_t r = rng();
  char buf[18];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", static_cast<unsigned>(r & 0xff),
                static_cast<unsigned>((r >> 8) & 0xff), static_cast<unsigned>((r >> 16) & 0xff));
  return buf;
}

std::string netdev_for(const Endpoint& ep, bool server) {
  const std::string mode = server ? "server=on" : "server=off";
  if (ep.kind == Endpoint::Kind::kUnix) {
    return "-netdev stream,id=n0," + mode + ",addr.type=unix,addr.path=" + ep.path;
  }
  return "-netdev stream,id=n0," + mode + ",addr.type=inet,addr.host=" + ep.host +
         ",addr.port=" + std::to_string(ep.port);
}

// The -netdev for a guest of a --dgram endpoint; `mac` makes a unix guest's own path unique.
std::string dgram_netdev_for(const qswitch::backends::DgramConfig& c, const std::string& bound,
                             const std::string& mac) {
  using qswitch::backends::DgramConfig;
  if (c.family == AF_UNIX) {
    const std::string path = bound.substr(5);  // "unix:PATH"
    std::string tag = mac.substr(9);
    for (char& ch : tag) {
      if (ch == ':') ch = '-';
    }
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    return "-netdev dgram,id=n0,local.type=unix,local.path=" + dir + "guest-" + tag +
           ".dgram,remote.type=unix,remote.path=" + path;
  }
  if (c.mode == DgramConfig::Mode::kMulticast) {
    return "-netdev socket,id=n0,mcast=" + bound.substr(6);  // "mcast:GROUP:PORT"
  }
  // udp:LOCAL or udp:LOCAL-REMOTE: the guest sends to our LOCAL and binds our REMOTE (or any
  // port, which a learning socket answers).
  const std::string spec = bound.substr(4);
  const size_t dash = spec.find('-');
  const std::string ours = spec.substr(0, dash);
  const std::string theirs = dash == std::string::npos ? "" : spec.substr(dash + 1);
  auto split = [](const std::string& hp, std::string& host, std::string& port) {
    const size_t colon = hp.rfind(':');
    host = hp.substr(0, colon);
    port = hp.substr(colon + 1);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  };
  std::string oh, op, th, tp;
  split(ours, oh, op);
  if (theirs.empty()) {
    th = oh;
    tp = "0";
  } else {
    split(theirs, th, tp);
  }
  return "-netdev dgram,id=n0,local.type=inet,local.host=" + th + ",local.port=" + tp +
         ",remote.type=inet,remote.host=" + oh + ",remote.port=" + op;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qswitch;
  if (argc >= 2 && std::string(argv[1]) == "ctl") return tools::run_ctl(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "exec") return tools::run_exec(argc - 1, argv + 1);
  tools::ParseResult parsed = tools::parse_options(argc, argv);
  if (!parsed.options) {
    std::fprintf(stderr, "qswitch: %s\n", parsed.error.c_str());
    return 2;
  }
  const tools::Options& opt = *parsed.options;
  if (opt.help) {
    std::fputs(tools::usage_text(), stdout);
    return 0;
  }
  if (opt.version) {
    std::printf("qswitch %s\n", qswitch::kVersion);
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);
  {
    // One fd per port: take all the fds we may have (the listeners back off when they run out).
    uint64_t before = 0;
    const uint64_t limit = io::raise_fd_limit(&before);
    if (limit != before) {
      io::log_line("fd limit %llu (raised from %llu)", static_cast<unsigned long long>(limit),
                   static_cast<unsigned long long>(before));
    } else {
      io::log_line("fd limit %llu", static_cast<unsigned long long>(limit));
    }
  }

  backends::LoopConfig config;
  config.fabric.mac.max_entries = opt.mac_max;
  config.fabric.mac.age_ms = sw::Millis{opt.mac_age_s} * 1000;
  config.queue_size = opt.queue_size;
  // The daemon's own loopback/wildcard TCP and UDP sockets, which the slirp port keeps guests
  // away from. Declared before everything that registers in it, so it outlives them all.
  io::OwnEndpoints own_endpoints;
  auto loop = std::make_unique<backends::SwitchLoop>(config);
  auto capture = std::make_unique<backends::CaptureHub>(loop->uv(), loop->fabric());
  if (opt.pcap) {
    std::string error;
    if (!capture->start_file(*opt.pcap, error)) {
      std::fprintf(stderr, "qswitch: --pcap: %s\n", error.c_str());
      return 1;
    }
  }

  auto endpoints = std::make_unique<tools::Endpoints>(*loop, &own_endpoints);
  for (const Endpoint& ep : opt.listen) {
    std::string error;
    if (endpoints->add_listen(ep, error).empty()) {
      // Destroying `endpoints` removes the sockets already bound: nothing half-started.
      std::fprintf(stderr, "qswitch: %s\n", error.c_str());
      return 1;
    }
  }
  for (const backends::DgramConfig& d : opt.dgram) {
    std::string error;
    if (endpoints->add_dgram(d, error).empty()) {
      std::fprintf(stderr, "qswitch: %s\n", error.c_str());
      return 1;
    }
  }
  std::vector<std::string> port_lines;  // "tap qs0", "vxlan vni=..": printed before "ready"
  for (const backends::TapSpec& t : opt.taps) {
    std::string error;
    std::unique_ptr<backends::LoopPort> port = backends::open_tap_port(*loop, t, error);
    if (!port) {
      std::fprintf(stderr, "qswitch: --tap: %s\n", error.c_str());
      return 1;
    }
    port_lines.push_back("tap " + port->describe().substr(port->describe().find(':') + 1));
    loop->adopt(std::move(port));
  }
  for (const backends::VxlanConfig& v : opt.vxlans) {
    std::string error;
    std::unique_ptr<backends::LoopPort> port =
        backends::open_vxlan_port(*loop, v, error, &own_endpoints);
    if (!port) {
      std::fprintf(stderr, "qswitch: --vxlan: %s\n", error.c_str());
      return 1;
    }
    const sockaddr_storage bound = backends::vxlan_bound_local(*port);
    std::string line = "vxlan vni=" + std::to_string(v.vni) +
                       " local=" + io::sockaddr_text(bound);
    for (const backends::VxlanRemote& r : v.remotes) {
      line += " remote=" + io::sockaddr_text(r.addr, r.len);
    }
    port_lines.push_back(line);
    loop->adopt(std::move(port));
  }
  slirp::SlirpPort* slirp_port = nullptr;
  if (opt.slirp) {
    std::string error;
    std::unique_ptr<slirp::SlirpPort> port =
        slirp::SlirpPort::create(*loop, *opt.slirp, error, &own_endpoints);
    if (!port) {
      std::fprintf(stderr, "qswitch: --slirp: %s\n", error.c_str());
      return 1;
    }
    slirp_port = port.get();
    loop->adopt(std::move(port));
  }

  tools::ControlApi api;
  tools::ServiceSockets services;  // filled in below, once they exist
  tools::register_switch_commands(api, *loop, *endpoints, &services);
  tools::register_capture_commands(api, *capture);
  tools::register_attach_commands(api, *loop);
  if (slirp_port != nullptr) {
    tools::register_slirp_commands(api, *slirp_port, loop->uv());
  } else {
    for (const char* name : {"hostfwd.add", "hostfwd.remove", "hostfwd.list", "usernet",
                             "dhcp.leases", "slirp.sockets"}) {
      api.add(name, "needs a slirp port (this switch has none)", [](const nlohmann::json&) {
        return tools::Reply::failure("this switch has no slirp port (start qswitch with --slirp)");
      });
    }
  }
  std::unique_ptr<backends::ControlServer> control;
  if (!opt.control_disabled) {
    const std::string path =
        opt.control ? opt.control->path : tools::control_path_for_pid(static_cast<int>(::getpid()));
    std::string error;
    if (!tools::trust_socket_dir_for(path, tools::DirUse::kCreate, error)) {
      std::fprintf(stderr, "qswitch: cannot create the control socket %s: %s\n", path.c_str(),
                   error.c_str());
      return 1;
    }
    backends::ControlHandlers handlers;
    handlers.line_fds = [&api](std::string_view line, std::vector<io::Fd>& fds,
                               backends::Handoff& handoff) {
      return api.handle_line(line, &handoff, &fds);
    };
    handlers.too_long = [&api](size_t limit) { return api.too_long_reply(limit); };
    handlers.busy = [&api](size_t max) { return api.busy_reply(max); };
    handlers.too_many_fds = [&api](size_t limit) { return api.too_many_fds_reply(limit); };
    control = std::make_unique<backends::ControlServer>(loop->uv(), path, std::move(handlers));
    if (!control->ok()) {
      std::fprintf(stderr, "qswitch: cannot create the control socket %s: %s (--control sets "
                   "another path, --control none disables it)\n",
                   path.c_str(), control->error().c_str());
      return 1;
    }
  }

  services.control = control.get();

  std::unique_ptr<backends::MetricsServer> metrics;
  io::OwnEndpoints::Registration metrics_registration;
  if (opt.metrics) {
    backends::SwitchLoop& sl = *loop;
    metrics = std::make_unique<backends::MetricsServer>(
        loop->uv(), *opt.metrics, [&sl] { return tools::render_metrics(sl.snapshot()); });
    if (!metrics->ok()) {
      std::fprintf(stderr, "qswitch: cannot serve metrics on %s: %s\n",
                   opt.metrics->to_string().c_str(), metrics->error().c_str());
      return 1;
    }
    metrics_registration = own_endpoints.add(io::Transport::kTcp,
                                             metrics->bound().host.c_str(), metrics->bound().port);
    if (opt.metrics->host != "127.0.0.1" && opt.metrics->host != "::1") {
      io::log_line("warning: metrics on %s can be read by anyone who can reach that address",
                   metrics->bound().to_string().c_str());
    }
  }

  services.metrics = metrics.get();

  for (const Endpoint& ep : opt.connect) endpoints->add_connect(ep);

  for (const auto& l : endpoints->listeners()) {
    std::printf("listening %s\n", l.listener->endpoint().to_string().c_str());
  }
  for (const auto& c : endpoints->connectors()) {
    std::printf("connecting %s\n", c.connector->endpoint().to_string().c_str());
  }
  for (const auto& d : endpoints->dgrams()) {
    std::printf("dgram %s\n", d.endpoint->bound().c_str());
  }
  for (const std::string& line : port_lines) std::printf("%s\n", line.c_str());
  if (control) std::printf("control unix:%s\n", control->path().c_str());
  if (metrics) std::printf("metrics %s\n", metrics->bound().to_string().c_str());
  if (slirp_port != nullptr) std::printf("%s\n", slirp_port->describe().c_str());
  std::random_device seed;
  std::mt19937_64 rng((uint64_t{seed()} << 32) ^ seed());
  const auto& listeners = endpoints->listeners();
  const auto& dgrams = endpoints->dgrams();
  const size_t ways = listeners.size() + dgrams.size();
  for (uint32_t g = 0; g < opt.guests && ways > 0; ++g) {
    const size_t way = g % ways;
    const std::string mac = random_guest_mac(rng);
    const std::string netdev =
        way < listeners.size()
            ? netdev_for(listeners[way].listener->endpoint(), false)
            : dgram_netdev_for(opt.dgram[way - listeners.size()],
                               dgrams[way - listeners.size()].endpoint->bound(), mac);
    std::printf("join with: %s -device virtio-net-pci,netdev=n0,mac=%s\n", netdev.c_str(),
                mac.c_str());
  }
  std::printf("ready\n");
  std::fflush(stdout);

  loop->run();
  loop->print_stats();
  services = {};
  control.reset();
  metrics.reset();
  capture.reset();  // after the control server (sessions came from it), before the loop
  endpoints.reset();
  loop.reset();
  return 0;
}
