// tools/qswitch/config/slirp_options_parse.h: the text of --slirp and of the control channel's
// hostfwd specs, parsed into slirp::SlirpOptions / slirp::HostForward.
//
// Theory of operation
// - The grammar is QEMU's "-netdev user" (net/slirp.c, net_init_slirp / net_slirp_init):
//   comma-separated key=value items with QEMU's key names, ",," standing for a literal comma
//   (QemuOpts). Parsing starts from slirp::default_slirp_options(); keys may come in any order,
//   and are applied in QEMU's order: net= first (which moves the host, DNS and first DHCP
//   address into the new net exactly as QEMU does: net | (0.0.2.2 & ~mask), .2.3, .2.15), then
//   the addresses, then the rest. Every value is checked before anything is returned: on error
//   `out` is untouched and `error` names the item ("host=10.0.3.2: ...") and says what would be
//   accepted.
// - Addresses are numeric only (inet_pton, dotted quad); nothing here ever looks a name up.
// - Deliberate difference from QEMU: a hostfwd with no host address binds 127.0.0.1, not every
//   interface; write 0.0.0.0 to listen on all of them.
#pragma once

#include <string>
#include <string_view>

#include "slirp/slirp_options.h"

namespace qswitch::tools {

// Keys: vlan (qswitch's own: the VLAN the port serves, 1..4094, default 1), net, host, dhcpstart,
// dns, hostname, domainname, dnssearch (repeatable), tftp, bootfile, restrict, ipv6, ipv6-net,
// ipv6-host, ipv6-dns, mtu, hostfwd (repeatable), lease (repeatable), max-leases-per-port
// (qswitch's own: DHCP addresses one switch port may hold, 0..65536, 0: no cap). An empty text
// gives the defaults.
bool parse_slirp_options(std::string_view text, slirp::SlirpOptions& out, std::string& error);

// "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" (QEMU's hostfwd). An empty protocol is
// tcp, an empty HOSTADDR is 127.0.0.1, an empty GUESTADDR is 0.0.0.0 (the first DHCP address,
// resolved by the slirp port). HOSTPORT 0..65535 (0: the kernel picks), GUESTPORT 1..65535.
// IPv6 (qswitch's own, QEMU has none): addresses in brackets, "tcp:[::1]:8080-[fec0::15]:80".
// Both sides are of one family (libslirp 4.7 forwards only within one); an IPv6 guest address
// is always given, and with it an empty HOSTADDR is [::1]. GUESTADDR may be a guest's MAC in
// brackets ("[52:54:00:12:34:56]": not IPv6 text, which never has six groups without "::"):
// the forward is then of the host side's family (no HOSTADDR: IPv4, 127.0.0.1) and by_mac. A
// bracketed host address must be bindable: not link-local, multicast or IPv4-mapped.
bool parse_hostfwd(std::string_view spec, slirp::HostForward& out, std::string& error);

// The key of a forward, for removal: "[tcp|udp]:[HOSTADDR]:HOSTPORT" (an empty HOSTADDR is
// 127.0.0.1; an IPv6 forward's key is written with its address, "tcp:[::1]:8080"). A full add spec
// is accepted too, and only its key is used. The guest fields of `out` are left zero.
bool parse_hostfwd_key(std::string_view spec, slirp::HostForward& out, std::string& error);

// A forward's guest address, when given (non-zero), must be a usable address of the segment:
// inside net, not its network or broadcast address, not the host or DNS address. An IPv6 one:
// ipv6=on, inside ipv6-net, not its network address, not ipv6-host or ipv6-dns. A guest by MAC
// is checked when the slirp port resolves it (only ipv6=on for an IPv6 forward here).
bool check_hostfwd_guest(const slirp::HostForward& fwd, const slirp::SlirpOptions& options,
                         std::string& error);

// "10.0.2.15"; "fec0::2".
std::string format_ipv4(in_addr addr);
std::string format_ipv6(const in6_addr& addr);

}  // namespace qswitch::tools
