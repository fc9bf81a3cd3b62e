// tools/qswitch/switchd.h: the qswitch daemon as one object. It owns the loop, every port and
// endpoint, the capture hub, the control API and its socket, and the metrics server.
//
// Theory of operation
// - create() starts everything in the order qswitch always has: raise the fd limit, the loop,
//   --pcap, the --listen and --dgram sockets, the taps, the VXLAN ports, the slirp ports (one
//   per VLAN, each an access port of its VLAN), the control commands and socket, the metrics
//   server, then the --connect diallers. All or nothing: the first failure returns nullptr with the
//   message, and what was already bound is released (unix socket files removed) as the half-built
//   object is destroyed.
// - print_join_lines() says where it listens and how a guest joins, then "ready"; tests parse
//   these lines, so their text is fixed (join_lines.h).
// - run() runs the loop until SIGINT/SIGTERM and prints the port counters.
// - Destruction order is the members' declaration order, reversed (see the members).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/runtime/io/own_sockets.h"
#include "backends/runtime/switch_loop.h"
#include "slirp/slirp_port.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/services/capture_hub.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"
#include "tools/qswitch/services/endpoints.h"
#include "tools/qswitch/services/metrics_server.h"
#include "tools/qswitch/services/switch_commands.h"

namespace qswitch::tools {

class Switchd {
 public:
  // The running daemon, or nullptr with `error` set (without the "qswitch: " prefix).
  static std::unique_ptr<Switchd> create(const Options& options, std::string& error);
  ~Switchd() = default;
  Switchd(const Switchd&) = delete;
  Switchd& operator=(const Switchd&) = delete;

  // "listening ...", "connecting ...", "dgram ...", "tap ...", "vxlan ...", "control ...",
  // "metrics ...", a "slirp ..." line per slirp port (ending " vlan=N" when N is not 1),
  // `options.guests` "join with: ..." lines, then "ready".
  void print_join_lines(std::FILE* out) const;
  // Until SIGINT/SIGTERM; then the per-port counters go to stderr.
  void run();

 private:
  explicit Switchd(const Options& options);
  bool start(std::string& error);
  bool start_ports(std::string& error);
  bool start_slirp(std::string& error);
  void register_commands();
  bool start_control(std::string& error);
  bool start_metrics(std::string& error);

  const Options options_;
  // Members are destroyed in the reverse of this order; each comment says why it sits where
  // it does.
  // Outlives everything that registers in it (listeners, datagram and VXLAN sockets, metrics).
  io::OwnSockets own_sockets_;
  // The loop owns every port (tap, VXLAN and slirp ones directly): destroyed after all that
  // refers to it.
  std::unique_ptr<backends::SwitchLoop> loop_;
  std::unique_ptr<Endpoints> endpoints_;
  // After the control server (capture sessions came from it), before the endpoints and loop.
  std::unique_ptr<tools::CaptureHub> capture_;
  std::vector<slirp::SlirpPort*> slirp_ports_;  // owned by loop_; in options_.slirp's order
  std::vector<std::string> port_lines_;         // "tap qs0", "vxlan vni=..": printed before "ready"
  // The commands; their handlers refer to the loop, endpoints, capture and services_. Outlives
  // the control server, which calls them.
  ControlApi api_;
  std::unique_ptr<tools::ControlServer> control_;
  std::unique_ptr<tools::MetricsServer> metrics_;
  io::OwnSockets::Registration metrics_registration_;
  // Points at control_ and metrics_: destroyed first, so no command sees a dead server.
  ServiceSockets services_;
};

}  // namespace qswitch::tools
