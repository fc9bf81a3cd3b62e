// slirp/slirp_options.h: the slirp port's settings as typed values. Names and defaults follow
// QEMU's "-netdev user" (docs/system/invocation, net/slirp.c) so a user's knowledge carries over,
// with one deliberate difference: a hostfwd with no host address binds 127.0.0.1, not every
// interface. Text is parsed into these in tools/ (tools/qswitch/config/slirp_options_parse.h).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "switch/ip_address.h"
#include "switch/mac_address.h"
#include "switch/vlan.h"

namespace qswitch::slirp {

struct HostForward {
  bool udp = false;
  // Both sides are IPv6 (host_addr6, guest_addr6; added with slirp_add_hostxfwd), else both are
  // IPv4 (host_addr, guest_addr). libslirp 4.7 rewrites a forwarded connection's source only
  // within one family, so a forward never mixes them.
  bool ipv6 = false;
  in_addr host_addr{};  // default 127.0.0.1
  in6_addr host_addr6{};
  uint16_t host_port = 0;
  in_addr guest_addr{};    // 0.0.0.0: QEMU's default, the first DHCP address (dhcpstart)
  in6_addr guest_addr6{};  // always given (no IPv6 default guest)
  uint16_t guest_port = 0;
  // The guest side named a guest by MAC ("[52:54:00:12:34:56]:80"): the slirp port resolves it
  // when the forward is added (SlirpPort::add_hostfwd: the MAC's DHCP address, or for an IPv6
  // forward the address in ipv6-net it was seen using) and keeps the MAC for to_string().
  bool by_mac = false;
  sw::MacAddress guest_mac;
  // The guest side named a guest by its DNS name ("web1:80", "web1.qswitch.internal:80"; lower
  // case, as given): resolved the same way from the slirp port's DNS names (slirp/dns_names.h:
  // the name's address of the forward's family) when the forward is added. Empty: not by name.
  std::string guest_name;
  // "tcp:127.0.0.1:8080-10.0.2.15:80" or "tcp:[::1]:8080-[fec0::15]:80", the form the parser
  // accepts.
  std::string to_string() const;
  // "127.0.0.1", "::1"; "10.0.2.15" ("" for 0.0.0.0), "fec0::15".
  std::string host_addr_text() const;
  std::string guest_addr_text() const;
  // Both bind the same host socket: protocol, family, address and port.
  bool same_host_socket(const HostForward& other) const;
  // The host address is the family's wildcard (0.0.0.0 or ::).
  bool host_any() const;
};

struct Lease {
  sw::MacAddress mac;
  in_addr addr{};
  std::string name;  // lease=MAC:IP:NAME: the guest's DNS name (a label), "" for none
};

// dns-record=NAME=ADDR: a static DNS record of the slirp port's responder (slirp/dns_names.h).
struct DnsRecord {
  std::string name;  // as given: a label (NAME.<domain>) or a dotted full name
  sw::IpAddress addr;
};

// A switch port may hold this many DHCP addresses at once (offered or bound, pinned ones not
// counted): enough for a guest that runs a few containers or VMs of its own, too few for one
// guest inventing MACs to take the pool (max-leases-per-port=, 0: no cap).
inline constexpr uint32_t kDefaultMaxLeasesPerPort = 8;

// Host sockets (UDP flows, TCP connections, pings) that guests may have libslirp open at once
// (slirp/host_sockets.h): for the whole switch, by default this many or half the process's fd
// limit, whichever is smaller; per switch port, this many. A guest at its port's cap cannot
// take the others' share, and none of them can take the process's fds.
inline constexpr uint32_t kDefaultMaxHostSockets = 4096;
inline constexpr uint32_t kDefaultMaxHostSocketsPerPort = 1024;

struct SlirpOptions {
  // The VLAN this slirp port serves, as an access port (vlan=, 1..4094): its gateway MAC is
  // pinned there, its DHCP pool and host forwards are that VLAN's. One slirp port per VLAN.
  uint16_t vlan = sw::kDefaultVlan;
  in_addr net{};           // network address, default 10.0.2.0
  in_addr netmask{};       // default 255.255.255.0 (from net=10.0.2.0/24)
  in_addr host{};          // the gateway, default 10.0.2.2 (the host's loopback seen from guests)
  in_addr dhcp_start{};    // default 10.0.2.15
  in_addr dns{};           // default 10.0.2.3
  std::string hostname;    // DHCP option 12 offered to guests, empty: none
  std::string domainname;  // DHCP option 15 and the DNS domain; empty: kDefaultDnsDomain
  std::vector<std::string> dnssearch;  // DHCP option 119
  std::string tftp;                    // directory served over TFTP at the host address, empty: off
  std::string bootfile;                // DHCP boot file name
  bool restrict = false;               // guests reach only the host address's services and hostfwds
  bool ipv6 = true;
  in6_addr ipv6_prefix{};  // default fec0::
  uint8_t ipv6_prefix_len = 64;
  in6_addr ipv6_host{};  // default fec0::2
  in6_addr ipv6_dns{};   // default fec0::3
  uint32_t mtu = 1500;   // slirp's interface MTU (libslirp if_mtu), 68..65520
  std::vector<HostForward> hostfwd;
  std::vector<Lease> leases;                                // lease=MAC:IP, pinned DHCP addresses
  std::vector<DnsRecord> dns_records;                       // dns-record=NAME=ADDR
  uint32_t max_leases_per_port = kDefaultMaxLeasesPerPort;  // 0: no cap
  // max-host-sockets=; nullopt: the default above (effective_max_host_sockets()); 0: no cap.
  std::optional<uint32_t> max_host_sockets;
  uint32_t max_host_sockets_per_port = kDefaultMaxHostSocketsPerPort;  // 0: no cap
};

// max_host_sockets as given, or the default for a process whose fd limit is `fd_limit`.
uint32_t effective_max_host_sockets(const SlirpOptions& options, uint64_t fd_limit);

// The defaults above, filled in (in_addr has no constexpr constructor from a dotted string).
SlirpOptions default_slirp_options();

}  // namespace qswitch::slirp
