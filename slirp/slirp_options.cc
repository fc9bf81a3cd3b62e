// slirp/slirp_options.cc: QEMU's "-netdev user" defaults (net/slirp.c, net_slirp_init: 10.0.2.0/24,
// host .2, DNS .3, first DHCP address .15, IPv6 fec0::/64 with host ::2 and DNS ::3, restrict
// off, IPv6 on) as typed values, and the text form of a host forward. Parsing text into these is
// tools/' job (tools/qswitch/config/slirp_options_parse.h).
#include "slirp/slirp_options.h"

#include <arpa/inet.h>

namespace qswitch::slirp {

namespace {

in_addr v4(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  return a;
}

in6_addr fec0_with_last_byte(uint8_t last) {
  in6_addr a{};
  a.s6_addr[0] = 0xfe;
  a.s6_addr[1] = 0xc0;
  a.s6_addr[15] = last;
  return a;
}

std::string dotted(in_addr a) {
  char buf[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string text6(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

}  // namespace

SlirpOptions default_slirp_options() {
  SlirpOptions o;
  o.net = v4(0x0a000200);         // 10.0.2.0
  o.netmask = v4(0xffffff00);     // 255.255.255.0
  o.host = v4(0x0a000202);        // 10.0.2.2
  o.dhcp_start = v4(0x0a00020f);  // 10.0.2.15
  o.dns = v4(0x0a000203);         // 10.0.2.3
  o.restrict = false;
  o.ipv6 = true;
  o.ipv6_prefix = fec0_with_last_byte(0);  // fec0::
  o.ipv6_prefix_len = 64;
  o.ipv6_host = fec0_with_last_byte(2);  // fec0::2
  o.ipv6_dns = fec0_with_last_byte(3);   // fec0::3
  o.mtu = 1500;
  return o;
}

uint32_t effective_max_host_sockets(const SlirpOptions& options, uint64_t fd_limit) {
  if (options.max_host_sockets) return *options.max_host_sockets;
  const uint64_t half = fd_limit / 2;
  return half < kDefaultMaxHostSockets ? static_cast<uint32_t>(half > 0 ? half : 1)
                                       : kDefaultMaxHostSockets;
}

std::string HostForward::host_addr_text() const {
  return ipv6 ? text6(host_addr6) : dotted(host_addr);
}

std::string HostForward::guest_addr_text() const {
  if (ipv6) return text6(guest_addr6);
  return guest_addr.s_addr != 0 ? dotted(guest_addr) : "";
}

bool HostForward::same_host_socket(const HostForward& other) const {
  if (udp != other.udp || ipv6 != other.ipv6 || host_port != other.host_port) return false;
  return ipv6 ? IN6_ARE_ADDR_EQUAL(&host_addr6, &other.host_addr6)
              : host_addr.s_addr == other.host_addr.s_addr;
}

bool HostForward::host_any() const {
  return ipv6 ? IN6_IS_ADDR_UNSPECIFIED(&host_addr6) : host_addr.s_addr == INADDR_ANY;
}

std::string HostForward::to_string() const {
  // A guest address of 0.0.0.0 ("the first DHCP address") prints empty, as the user wrote it;
  // the host address always prints, because empty there means 127.0.0.1, not 0.0.0.0. IPv6
  // addresses print in brackets.
  std::string s = udp ? "udp:" : "tcp:";
  s += ipv6 ? "[" + host_addr_text() + "]" : host_addr_text();
  s += ':';
  s += std::to_string(host_port);
  s += '-';
  if (by_mac) {
    s += "[" + guest_mac.to_string() + "]";
  } else if (!guest_name.empty()) {
    s += guest_name;
  } else {
    s += ipv6 ? "[" + guest_addr_text() + "]" : guest_addr_text();
  }
  s += ':';
  s += std::to_string(guest_port);
  return s;
}

}  // namespace qswitch::slirp
