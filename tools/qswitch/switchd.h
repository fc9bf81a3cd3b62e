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
// - reload() (the `reload` control command, and SIGHUP) applies the lab file again: the same
//   command line is parsed once more (parse_configuration: the --config file read anew, the
//   rest of argv on top), the result diffed against the running configuration by identity
//   (reload_plan.h), and the plan applied: first everything new that binds a socket or opens a
//   device is made (if one fails, what was made is released and nothing changes), then
//   removals, restarts, in-place changes (VLANs, port security, slirp host forwards and DNS
//   records, names), and
//   the new ports join. An invalid file or a setting that cannot change live changes nothing.
//   Only what came from the configuration is managed: endpoints added by `port.add` stay.
//   `running_` ties each configured port to what runs it (an endpoint id, a port serial, a
//   slirp port), in the order of lab_.options' lists.
// - Destruction order is the members' declaration order, reversed (see the members).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "backends/runtime/io/own_sockets.h"
#include "backends/runtime/switch_loop.h"
#include "slirp/slirp_port.h"
#include "tools/qswitch/config/lab_file.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/services/attach_commands.h"
#include "tools/qswitch/services/capture_hub.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"
#include "tools/qswitch/services/endpoints.h"
#include "tools/qswitch/services/metrics_server.h"
#include "tools/qswitch/services/reload_plan.h"
#include "tools/qswitch/services/switch_commands.h"

namespace qswitch::tools {

class Switchd {
 public:
  // The running daemon, or nullptr with `error` set (without the "qswitch: " prefix). `argv`
  // is the command line `lab` came from (parse_configuration), kept for reload(); a switch
  // made from bare Options cannot reload.
  static std::unique_ptr<Switchd> create(LabFile lab, std::vector<std::string> argv,
                                         std::string& error);
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
  // Reads the configuration again and applies what changed (see the theory above). The reply
  // of the `reload` command: {"config", "added", "removed", "changed", "restarted",
  // "unchanged"}, each a list of "KIND IDENTITY[: what]" texts; or an error saying why, when
  // nothing was changed.
  Reply reload();

 private:
  // What runs one configured port: an endpoint (listen, connect, dgram, vhost-user), a port of
  // its own (tap, VXLAN: its serial) or a slirp port.
  struct Handle {
    std::string endpoint;
    uint64_t serial = 0;
    slirp::SlirpPort* slirp = nullptr;
  };
  // What open_entry() made: an endpoint (already live), or a port not yet adopted.
  struct Opened {
    std::string endpoint;
    std::unique_ptr<backends::LoopPort> port;
    slirp::SlirpPort* slirp = nullptr;  // port, when it is a slirp port
    std::string line;                   // "tap qs0", "vxlan vni=..": printed before "ready"
  };

  Switchd(LabFile lab, std::vector<std::string> argv);
  bool start(std::string& error);
  bool start_ports(std::string& error);
  bool start_slirp(std::string& error);
  void register_commands();
  bool start_control(std::string& error);
  bool start_metrics(std::string& error);
  // Opens entry `i` of `kind` in `o`; adopt() makes it run. False with `error`.
  bool open_entry(LabPortKind kind, const Options& o, size_t i, Opened& out, std::string& error);
  Handle adopt(LabPortKind kind, const Options& o, size_t i, Opened& opened);
  Handle change_in_place(const ReloadItem& item, const Options& o,
                         std::vector<std::string>& failures);
  bool live(const Handle& h) const;
  void stop(const Handle& h, const std::string& reason);
  backends::LoopPort* port_by_serial(uint64_t serial) const;
  // The names the control API shows (Endpoints::set_names), from lab_ and running_.
  void publish_names();
  void refresh_slirp_ports();

  LabFile lab_;  // the running configuration
  const Options& options_ = lab_.options;
  std::vector<std::string> argv_;             // what it came from; empty: no reload
  std::vector<std::vector<Handle>> running_;  // by LabPortKind, aligned with lab_.options
  // Members are destroyed in the reverse of this order; each comment says why it sits where
  // it does.
  // Outlives everything that registers in it (listeners, datagram and VXLAN sockets, metrics).
  io::OwnSockets own_sockets_;
  // The `qswitch exec --name` names of attached ports (their close hooks erase theirs): outlives
  // the loop; the slirp ports ask it for their DNS names.
  ExecNames exec_names_;
  // The loop owns every port (tap, VXLAN and slirp ones directly): destroyed after all that
  // refers to it.
  std::unique_ptr<backends::SwitchLoop> loop_;
  std::unique_ptr<Endpoints> endpoints_;
  // After the control server (capture sessions came from it), before the endpoints and loop.
  std::unique_ptr<tools::CaptureHub> capture_;
  std::vector<slirp::SlirpPort*>
      slirp_ports_;                      // owned by loop_; the live ones, in options_.slirp's order
  std::vector<std::string> port_lines_;  // "tap qs0", "vxlan vni=..": printed before "ready"
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
