// tests/fuzz/slirp_options_fuzz.cc: parse_slirp_options (the --slirp value, QEMU's "-netdev
// user" grammar with ",," for a literal comma) on arbitrary text, then what the slirp port
// derives from the result: DhcpConfig::from and a DhcpServer (the option 119 search list encoder
// runs on the parsed dnssearch names).
//
// Checked: a failure leaves `out` untouched and says why; an accepted text gives options that
// hold together as the parser promises: a contiguous netmask of 4..30 bits, host, dns and
// dhcpstart inside the net (not its network or broadcast address) and distinct, every hostfwd's
// guest accepted by check_hostfwd_guest and no two on one host socket (port 0 aside), pinned
// leases inside the net, unicast, one per MAC and per address, mtu 68..65520, hostname,
// domainname and bootfile free of control characters, IPv6 host and DNS inside the IPv6 prefix;
// the DHCP pool runs from dhcpstart to the address before the broadcast address; no NUL byte in
// an accepted text (it cannot come from a command line, and inet_pton would stop at it).
#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "slirp/dhcp_server.h"
#include "slirp/slirp_options.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/slirp_options_parse.h"

namespace {

using qswitch::slirp::SlirpOptions;

uint32_t h(in_addr a) { return ntohl(a.s_addr); }

bool printable(const std::string& s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

bool in6_prefix(const in6_addr& a, const in6_addr& p, int len) {
  for (int bit = 0; bit < len; ++bit) {
    const int m = 0x80 >> (bit % 8);
    if ((a.s6_addr[bit / 8] & m) != (p.s6_addr[bit / 8] & m)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  SlirpOptions out;
  out.hostname = "untouched";
  out.mtu = 7;
  std::string error;
  if (!qswitch::tools::parse_slirp_options(text, out, error)) {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(out.hostname == "untouched" && out.mtu == 7 && out.hostfwd.empty());
    return 0;
  }
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  const uint32_t mask = h(out.netmask);
  int bits = 0;
  while (bits < 32 && (mask & (0x80000000u >> bits)) != 0) ++bits;
  FUZZ_CHECK(bits >= 4 && bits <= 30);
  FUZZ_CHECK(mask == (0xffffffffu << (32 - bits)));
  const uint32_t net = h(out.net);
  FUZZ_CHECK((net & ~mask) == 0);
  const uint32_t bcast = net | ~mask;
  for (in_addr a : {out.host, out.dns, out.dhcp_start}) {
    FUZZ_CHECK((h(a) & mask) == net && h(a) != net && h(a) != bcast);
  }
  FUZZ_CHECK(out.host.s_addr != out.dns.s_addr);
  FUZZ_CHECK(out.dhcp_start.s_addr != out.host.s_addr && out.dhcp_start.s_addr != out.dns.s_addr);
  FUZZ_CHECK(out.mtu >= 68 && out.mtu <= 65520);
  FUZZ_CHECK(out.hostname.size() <= 255 && printable(out.hostname));
  FUZZ_CHECK(printable(out.domainname) && out.domainname.size() <= 253);
  FUZZ_CHECK(out.bootfile.size() <= 127 && printable(out.bootfile));
  for (const std::string& d : out.dnssearch)
    FUZZ_CHECK(!d.empty() && d.size() <= 253 && printable(d));
  if (out.ipv6) {
    FUZZ_CHECK(out.ipv6_prefix_len <= 126);
    FUZZ_CHECK(in6_prefix(out.ipv6_host, out.ipv6_prefix, out.ipv6_prefix_len));
    FUZZ_CHECK(in6_prefix(out.ipv6_dns, out.ipv6_prefix, out.ipv6_prefix_len));
  }
  std::set<std::tuple<bool, std::string, uint16_t>> sockets;  // udp, "[::1]"/"127.0.0.1", port
  for (const auto& f : out.hostfwd) {
    std::string why;
    FUZZ_CHECK(qswitch::tools::check_hostfwd_guest(f, out, why));
    FUZZ_CHECK(f.guest_port >= 1);
    if (f.host_port != 0)
      FUZZ_CHECK(sockets
                     .insert({f.udp, f.ipv6 ? "[" + f.host_addr_text() + "]" : f.host_addr_text(),
                              f.host_port})
                     .second);
  }
  std::set<uint64_t> macs;
  std::set<uint32_t> addrs;
  for (const auto& l : out.leases) {
    FUZZ_CHECK(!l.mac.is_multicast() && !l.mac.is_zero());
    FUZZ_CHECK(macs.insert(l.mac.key()).second && addrs.insert(l.addr.s_addr).second);
    FUZZ_CHECK((h(l.addr) & mask) == net && h(l.addr) != net && h(l.addr) != bcast);
    FUZZ_CHECK(l.addr.s_addr != out.host.s_addr && l.addr.s_addr != out.dns.s_addr);
  }
  const qswitch::sw::MacAddress gw{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  const auto dhcp = qswitch::slirp::DhcpConfig::from(out, gw);
  FUZZ_CHECK(h(dhcp.pool_first) <= h(dhcp.pool_last) && h(dhcp.pool_last) == bcast - 1);
  qswitch::slirp::DhcpServer server(dhcp);
  FUZZ_CHECK(server.leases().size() == out.leases.size());
  return 0;
}
