// tools/qswitch/config/options.h: the qswitch command line as typed values.
// Everything is parsed and checked here, up front; a bad value is an error that names it and
// says what would be accepted, and nothing starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/dgram/dgram_config.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/tap/tap_config.h"
#include "backends/vhost_user/vhost_user_config.h"
#include "backends/vxlan/vxlan_config.h"
#include "slirp/slirp_options.h"

namespace qswitch::tools {

// A --listen or --connect address, with the VLANs (",vlan=10", vlan_keys.h) and port security
// (",port-security=on", security_keys.h) of its ports.
struct StreamEndpoint : io::SocketAddress {
  sw::VlanMembership vlans;
  sw::PortSecurity security;
};

struct Options {
  // Every port option takes the VLAN keys (vlan_keys.h) and the port security keys
  // (security_keys.h): each spec carries its `vlans` and `security`.
  std::vector<StreamEndpoint> listen;
  std::vector<StreamEndpoint> connect;
  // --dgram: datagram sockets (QEMU -netdev dgram, -netdev socket,udp=|mcast=).
  std::vector<backends::DgramConfig> dgram;
  // --vhost-user unix:PATH | connect:PATH (backends/vhost_user/).
  std::vector<backends::vhost_user::VhostUserSpec> vhost_user;
  std::vector<backends::TapSpec> taps;        // --tap NAME | fd=N
  std::vector<backends::VxlanConfig> vxlans;  // --vxlan vni=N,local=..,remote=..
  uint32_t mac_age_s = 300;
  uint32_t mac_max = 4096;
  uint64_t queue_size = 1 << 20;
  uint32_t guests = 2;
  // The slirp ports, one per VLAN (SlirpOptions::vlan, each VLAN at most once; check_slirp_ports
  // below): one on VLAN 1 with no arguments at all (zero configuration), or one per --slirp.
  std::vector<slirp::SlirpOptions> slirp;
  bool no_slirp = false;  // --no-slirp (a lab file's `slirp = false`): none, even then
  // The control socket: --control, else beside the first unix listener, else (set by main)
  // control_path_for_pid(). Unset with --control none.
  std::optional<io::SocketAddress> control;
  bool control_disabled = false;
  // --metrics tcp:HOST:PORT: Prometheus text on GET /metrics.
  std::optional<io::SocketAddress> metrics;
  // --pcap FILE: capture the whole switch from start.
  std::optional<std::string> pcap;
  bool help = false;
  bool version = false;
  // --config FILE: a lab file (lab_file.h) under the rest of the command line. --check: print
  // the resolved configuration and exit.
  std::optional<std::string> config;
  bool check = false;
};

struct ParseResult {
  std::optional<Options> options;
  std::string error;  // set when options is empty
};

ParseResult parse_options(int argc, const char* const* argv);
// The command line on top of `base` (what a lab file said, before any default): a port option
// adds a port, a single-value option replaces the base's value (--control none its control
// socket); a --slirp replaces the base's slirp port of the same VLAN and adds one for another,
// --no-slirp removes them all; then the defaults, as above.
ParseResult parse_options(int argc, const char* const* argv, const Options& base);
// One option by its long name ("listen", "mac-age"), applied to `o` as the command line applies
// it, without the defaults; the lab file sets its values through this, so a file and argv accept
// the same text. An error names the option as "--NAME"; "" when applied.
std::string apply_option_value(Options& o, std::string_view name, const std::string& value);
// The slirp ports as a set: each VLAN at most once, and no two host forwards of different slirp
// ports on one host socket (same protocol and port, same address or one of them 0.0.0.0: the
// second bind would fail at start). "" when they fit together, else what clashes, naming both
// ports as "--slirp vlan=N".
std::string check_slirp_ports(const std::vector<slirp::SlirpOptions>& ports);
// Whether two host forwards would bind the same host socket (the check above, for one pair).
bool hostfwds_clash(const slirp::HostForward& a, const slirp::HostForward& b);
// "unix:PATH" or "tcp:HOST:PORT" ("tcp:[::1]:PORT" for IPv6). nullopt + error text otherwise.
std::optional<io::SocketAddress> parse_socket_address(const std::string& text, std::string& error);
// --vhost-user and `port add vhost-user`: "unix:PATH" (listen) or "connect:PATH" (dial).
std::optional<backends::vhost_user::VhostUserSpec> parse_vhost_user_spec(const std::string& text,
                                                                         std::string& error);
// default_socket_dir()/default.sock: $XDG_RUNTIME_DIR/qswitch/default.sock, or
// /tmp/qswitch-$UID/default.sock (socket_trust.h checks that directory before use).
std::string default_socket_path();
// The control socket beside a switch socket: DIR/NAME.sock -> DIR/NAME.ctl (other names get
// ".ctl" appended). default_control_path() is the one beside default_socket_path().
std::string control_path_for(const std::string& socket_path);
std::string default_control_path();
// For a switch with no unix listener: DEFAULT_DIR/qswitch-PID.ctl.
std::string control_path_for_pid(int pid);
const char* usage_text();

}  // namespace qswitch::tools
