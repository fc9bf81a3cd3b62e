// tests/tools/slirp_options_parse_test.cc: --slirp text and hostfwd specs into typed values.
// Defaults are checked against QEMU's documented ones (net/slirp.c), every key is set once, and
// every bad value must produce an error that names it while leaving the output untouched.
#include "tools/qswitch/config/slirp_options_parse.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace qswitch::tools {
namespace {

std::string v4(in_addr a) { return format_ipv4(a); }
std::string v6(const in6_addr& a) { return format_ipv6(a); }

slirp::SlirpOptions parse_ok(const std::string& text) {
  slirp::SlirpOptions o;
  std::string error;
  EXPECT_TRUE(parse_slirp_options(text, o, error)) << text << ": " << error;
  return o;
}

// Parses `text`, expects failure, returns the error; `out` must be untouched.
std::string parse_error(const std::string& text) {
  slirp::SlirpOptions o;
  o.mtu = 4242;  // a sentinel: a failed parse must not write
  std::string error;
  EXPECT_FALSE(parse_slirp_options(text, o, error)) << text;
  EXPECT_EQ(o.mtu, 4242u) << text;
  EXPECT_FALSE(error.empty()) << text;
  return error;
}

TEST(SlirpOptionsParseTest, EmptyTextGivesQemuDefaults) {
  const slirp::SlirpOptions o = parse_ok("");
  EXPECT_EQ(v4(o.net), "10.0.2.0");
  EXPECT_EQ(v4(o.netmask), "255.255.255.0");
  EXPECT_EQ(v4(o.host), "10.0.2.2");
  EXPECT_EQ(v4(o.dhcp_start), "10.0.2.15");
  EXPECT_EQ(v4(o.dns), "10.0.2.3");
  EXPECT_TRUE(o.hostname.empty());
  EXPECT_TRUE(o.domainname.empty());
  EXPECT_TRUE(o.dnssearch.empty());
  EXPECT_TRUE(o.tftp.empty());
  EXPECT_TRUE(o.bootfile.empty());
  EXPECT_FALSE(o.restrict);
  EXPECT_TRUE(o.ipv6);
  EXPECT_EQ(v6(o.ipv6_prefix), "fec0::");
  EXPECT_EQ(o.ipv6_prefix_len, 64);
  EXPECT_EQ(v6(o.ipv6_host), "fec0::2");
  EXPECT_EQ(v6(o.ipv6_dns), "fec0::3");
  EXPECT_EQ(o.mtu, 1500u);
  EXPECT_TRUE(o.hostfwd.empty());
  EXPECT_TRUE(o.leases.empty());
  EXPECT_EQ(o.max_leases_per_port, 8u);
  EXPECT_EQ(o.vlan, 1u);
}

// vlan= (qswitch's own key): the VLAN the port serves, independent of every other key.
TEST(SlirpOptionsParseTest, VlanTakesAVlanIdAndNothingElse) {
  EXPECT_EQ(parse_ok("vlan=10").vlan, 10u);
  EXPECT_EQ(parse_ok("vlan=1").vlan, 1u);
  EXPECT_EQ(parse_ok("net=10.0.20.0/24,vlan=4094").vlan, 4094u);
  EXPECT_EQ(v4(parse_ok("vlan=20,net=10.0.20.0/24").dhcp_start), "10.0.20.15");
  EXPECT_EQ(parse_error("vlan=4095"),
            "vlan=4095: \"4095\" is not a VLAN id (1..4094) (the VLAN this slirp port serves, "
            "e.g. vlan=10)");
  for (const char* bad : {"vlan=0", "vlan=", "vlan=ten", "vlan=+10", "vlan=00010"}) {
    const std::string error = parse_error(bad);
    EXPECT_EQ(error.rfind("vlan=", 0), 0u) << bad << ": " << error;
    EXPECT_NE(error.find("1..4094"), std::string::npos) << bad << ": " << error;
  }
  EXPECT_NE(parse_error("vlan=10,vlan=20").find("'vlan' given twice (vlan=10 and vlan=20)"),
            std::string::npos);
}

TEST(SlirpOptionsParseTest, DefaultSlirpOptionsMatchParsedDefaults) {
  const slirp::SlirpOptions d = slirp::default_slirp_options();
  const slirp::SlirpOptions p = parse_ok("");
  EXPECT_EQ(d.net.s_addr, p.net.s_addr);
  EXPECT_EQ(d.host.s_addr, p.host.s_addr);
  EXPECT_EQ(d.dns.s_addr, p.dns.s_addr);
  EXPECT_EQ(d.dhcp_start.s_addr, p.dhcp_start.s_addr);
}

TEST(SlirpOptionsParseTest, SetsEveryKey) {
  const slirp::SlirpOptions o = parse_ok(
      "net=10.1.0.0/16,host=10.1.0.1,dhcpstart=10.1.0.100,dns=10.1.0.53,hostname=guest1,"
      "domainname=lab.internal,dnssearch=a.internal,dnssearch=b.internal,tftp=/tmp,"
      "bootfile=pxelinux.0,restrict=on,ipv6=on,ipv6-net=fd00:1::/48,ipv6-host=fd00:1::1,"
      "ipv6-dns=fd00:1::53,mtu=9000,hostfwd=tcp::2222-:22,hostfwd=udp:0.0.0.0:5353-10.1.0.7:53,"
      "lease=52:54:00:00:00:01:10.1.0.20,lease=52:54:00:00:00:02:10.1.0.21,"
      "max-leases-per-port=32");
  EXPECT_EQ(v4(o.net), "10.1.0.0");
  EXPECT_EQ(v4(o.netmask), "255.255.0.0");
  EXPECT_EQ(v4(o.host), "10.1.0.1");
  EXPECT_EQ(v4(o.dhcp_start), "10.1.0.100");
  EXPECT_EQ(v4(o.dns), "10.1.0.53");
  EXPECT_EQ(o.hostname, "guest1");
  EXPECT_EQ(o.domainname, "lab.internal");
  ASSERT_EQ(o.dnssearch.size(), 2u);
  EXPECT_EQ(o.dnssearch[0], "a.internal");
  EXPECT_EQ(o.dnssearch[1], "b.internal");
  EXPECT_EQ(o.tftp, "/tmp");
  EXPECT_EQ(o.bootfile, "pxelinux.0");
  EXPECT_TRUE(o.restrict);
  EXPECT_TRUE(o.ipv6);
  EXPECT_EQ(v6(o.ipv6_prefix), "fd00:1::");
  EXPECT_EQ(o.ipv6_prefix_len, 48);
  EXPECT_EQ(v6(o.ipv6_host), "fd00:1::1");
  EXPECT_EQ(v6(o.ipv6_dns), "fd00:1::53");
  EXPECT_EQ(o.mtu, 9000u);
  ASSERT_EQ(o.hostfwd.size(), 2u);
  EXPECT_EQ(o.hostfwd[0].to_string(), "tcp:127.0.0.1:2222-:22");
  EXPECT_EQ(o.hostfwd[1].to_string(), "udp:0.0.0.0:5353-10.1.0.7:53");
  ASSERT_EQ(o.leases.size(), 2u);
  EXPECT_EQ(o.leases[0].mac.to_string(), "52:54:00:00:00:01");
  EXPECT_EQ(v4(o.leases[0].addr), "10.1.0.20");
  EXPECT_EQ(v4(o.leases[1].addr), "10.1.0.21");
  EXPECT_EQ(o.max_leases_per_port, 32u);
}

TEST(SlirpOptionsParseTest, LeaseTakesAnOptionalName) {
  const slirp::SlirpOptions o = parse_ok(
      "lease=52:54:00:00:00:01:10.0.2.20:web1,lease=52:54:00:00:00:02:10.0.2.21,"
      "lease=52:54:00:00:00:03:10.0.2.22:DB-2");
  ASSERT_EQ(o.leases.size(), 3u);
  EXPECT_EQ(o.leases[0].mac.to_string(), "52:54:00:00:00:01");
  EXPECT_EQ(v4(o.leases[0].addr), "10.0.2.20");
  EXPECT_EQ(o.leases[0].name, "web1");
  EXPECT_EQ(o.leases[1].name, "");
  EXPECT_EQ(o.leases[2].name, "DB-2");
}

TEST(SlirpOptionsParseTest, DnsRecordsRepeatAndTakeBothFamilies) {
  const slirp::SlirpOptions o = parse_ok(
      "dns-record=files=10.0.2.100,dns-record=files=fec0::100,"
      "dns-record=www.example.test=10.0.2.101");
  ASSERT_EQ(o.dns_records.size(), 3u);
  EXPECT_EQ(o.dns_records[0].name, "files");
  EXPECT_EQ(o.dns_records[0].addr.to_string(), "10.0.2.100");
  EXPECT_EQ(o.dns_records[1].addr.to_string(), "fec0::100");
  EXPECT_EQ(o.dns_records[2].name, "www.example.test");
}

TEST(SlirpOptionsParseTest, NetMovesTheDefaultAddressesAsQemuDoes) {
  const slirp::SlirpOptions o = parse_ok("net=192.168.76.0/24");
  EXPECT_EQ(v4(o.net), "192.168.76.0");
  EXPECT_EQ(v4(o.host), "192.168.76.2");
  EXPECT_EQ(v4(o.dns), "192.168.76.3");
  EXPECT_EQ(v4(o.dhcp_start), "192.168.76.15");
  // QEMU: net | (0.0.2.2 & ~mask), so a /16 puts the host at .2.2.
  const slirp::SlirpOptions b = parse_ok("net=172.20.0.0/16");
  EXPECT_EQ(v4(b.host), "172.20.2.2");
  EXPECT_EQ(v4(b.dns), "172.20.2.3");
  EXPECT_EQ(v4(b.dhcp_start), "172.20.2.15");
}

TEST(SlirpOptionsParseTest, NetAppliesFirstWhateverTheOrder) {
  const slirp::SlirpOptions o = parse_ok("host=10.9.9.1,net=10.9.9.0/24");
  EXPECT_EQ(v4(o.host), "10.9.9.1");
  EXPECT_EQ(v4(o.dns), "10.9.9.3");
}

TEST(SlirpOptionsParseTest, NetAcceptsADottedMaskAndMasksHostBits) {
  const slirp::SlirpOptions o = parse_ok("net=10.5.6.7/255.255.255.0");
  EXPECT_EQ(v4(o.net), "10.5.6.0");
  EXPECT_EQ(v4(o.netmask), "255.255.255.0");
  EXPECT_EQ(v4(o.host), "10.5.6.2");
}

TEST(SlirpOptionsParseTest, NetWithoutLengthUsesQemusClassfulMask) {
  EXPECT_EQ(v4(parse_ok("net=10.0.0.0").netmask), "255.0.0.0");
  EXPECT_EQ(v4(parse_ok("net=192.168.0.0").netmask), "255.255.0.0");
}

TEST(SlirpOptionsParseTest, Ipv6NetMovesIpv6Defaults) {
  const slirp::SlirpOptions o = parse_ok("ipv6-net=fd12:3456::/64");
  EXPECT_EQ(v6(o.ipv6_host), "fd12:3456::2");
  EXPECT_EQ(v6(o.ipv6_dns), "fd12:3456::3");
}

TEST(SlirpOptionsParseTest, BooleansTakeOnOffYesNo) {
  EXPECT_TRUE(parse_ok("restrict=yes").restrict);
  EXPECT_FALSE(parse_ok("restrict=no").restrict);
  EXPECT_FALSE(parse_ok("restrict=off").restrict);
  EXPECT_FALSE(parse_ok("ipv6=off").ipv6);
}

TEST(SlirpOptionsParseTest, DoubledCommaIsALiteralComma) {
  EXPECT_EQ(parse_ok("hostname=a,,b").hostname, "a,b");
}

TEST(SlirpOptionsParseTest, MaxLeasesPerPortBoundsAreInclusiveAndZeroMeansNoCap) {
  EXPECT_EQ(parse_ok("max-leases-per-port=0").max_leases_per_port, 0u);
  EXPECT_EQ(parse_ok("max-leases-per-port=1").max_leases_per_port, 1u);
  EXPECT_EQ(parse_ok("max-leases-per-port=65536").max_leases_per_port, 65536u);
}

TEST(SlirpOptionsParseTest, HostSocketCaps) {
  const slirp::SlirpOptions d = parse_ok("");
  EXPECT_FALSE(d.max_host_sockets.has_value());
  EXPECT_EQ(d.max_host_sockets_per_port, slirp::kDefaultMaxHostSocketsPerPort);
  // The switch-wide default: 4096, or half the fd limit when that is smaller.
  EXPECT_EQ(slirp::effective_max_host_sockets(d, 1u << 20), slirp::kDefaultMaxHostSockets);
  EXPECT_EQ(slirp::effective_max_host_sockets(d, 1024), 512u);
  EXPECT_EQ(slirp::effective_max_host_sockets(d, 1), 1u);
  const slirp::SlirpOptions o = parse_ok("max-host-sockets=100,max-host-sockets-per-port=0");
  EXPECT_EQ(o.max_host_sockets, 100u);
  EXPECT_EQ(slirp::effective_max_host_sockets(o, 64), 100u) << "a given value is kept";
  EXPECT_EQ(o.max_host_sockets_per_port, 0u);
  EXPECT_EQ(parse_ok("max-host-sockets=0").max_host_sockets, 0u);
  EXPECT_EQ(parse_ok("max-host-sockets=1048576").max_host_sockets, 1048576u);
  for (const char* bad : {"max-host-sockets=-1", "max-host-sockets=lots", "max-host-sockets=",
                          "max-host-sockets=1048577", "max-host-sockets-per-port=1e3"}) {
    const std::string error = parse_error(bad);
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(error.find(key), std::string::npos) << bad << ": " << error;
    EXPECT_NE(error.find("expected a number 0..1048576"), std::string::npos) << error;
  }
}

TEST(SlirpOptionsParseTest, MtuBoundsAreInclusive) {
  EXPECT_EQ(parse_ok("mtu=68").mtu, 68u);
  EXPECT_EQ(parse_ok("mtu=65520").mtu, 65520u);
}

struct BadCase {
  std::string text;
  std::string must_mention;
};

TEST(SlirpOptionsParseTest, EveryBadValueIsAnErrorNamingIt) {
  const BadCase cases[] = {
      {"net=10.0.2.0/33", "33"},
      {"net=10.0.2.0/3", "/3"},
      {"net=10.0.2/24", "10.0.2"},
      {"net=10.0.2.0/255.0.255.0", "255.0.255.0"},
      {"net=10.0.2.0/abc", "abc"},
      {"host=10.0.3.2", "10.0.3.2"},
      {"host=10.0.2.0", "network address"},
      {"host=10.0.2.255", "broadcast"},
      {"host=nothost", "nothost"},
      {"host=localhost", "localhost"},
      {"dns=10.0.2.2", "dns=10.0.2.2"},
      {"dns=10.0.2.255", "broadcast"},
      {"dns=10.9.2.3", "10.9.2.3"},
      {"dhcpstart=10.0.2.2", "dhcpstart=10.0.2.2"},
      {"dhcpstart=10.0.2.3", "dhcpstart=10.0.2.3"},
      {"dhcpstart=10.0.3.15", "10.0.3.15"},
      {"dhcpstart=10.0.2.255", "broadcast"},
      {"net=10.0.0.0/30", "broadcast"},  // the default dns lands on .3
      {"domainname=", "domainname"},
      {"domainname=a..b", "a..b"},
      {"dnssearch=bad..name", "bad..name"},
      {"dnssearch=", "dnssearch"},
      {"tftp=/nonexistent/qswitch-tftp", "/nonexistent/qswitch-tftp"},
      {"bootfile=", "bootfile"},
      {"restrict=maybe", "maybe"},
      {"ipv6=perhaps", "perhaps"},
      {"ipv6-net=fec0::/127", "127"},
      {"ipv6-net=zz::/64", "zz::"},
      {"ipv6-host=fd00::2", "fd00::2"},
      {"ipv6-dns=notv6", "notv6"},
      {"ipv6=off,ipv6-net=fd00::/64", "ipv6-net"},
      {"mtu=67", "mtu=67"},
      {"mtu=65521", "mtu=65521"},
      {"mtu=15x", "15x"},
      {"mtu=-1", "-1"},
      {"max-leases-per-port=65537", "max-leases-per-port=65537"},
      {"max-leases-per-port=-1", "max-leases-per-port=-1"},
      {"max-leases-per-port=8x", "8x"},
      {"max-leases-per-port=", "max-leases-per-port="},
      {"max-leases-per-port=4,max-leases-per-port=5", "max-leases-per-port"},
      {"hostfwd=tcp::99999-:22", "99999"},
      {"hostfwd=tcp::2222-10.0.3.4:22", "10.0.3.4"},
      {"hostfwd=tcp::2222-:22,hostfwd=tcp::2222-:23", "2222"},
      {"lease=52:54:00:00:00:01", "lease=52:54:00:00:00:01"},
      {"lease=01:00:5e:00:00:01:10.0.2.20", "01:00:5e:00:00:01"},
      {"lease=52:54:00:00:00:01:10.0.3.20", "10.0.3.20"},
      {"lease=52:54:00:00:00:01:10.0.2.2", "10.0.2.2"},
      {"lease=52:54:00:00:00:01:10.0.2.3", "10.0.2.3"},
      {"lease=zz:54:00:00:00:01:10.0.2.20", "zz:54:00:00:00:01"},
      {"lease=52:54:00:00:00:01:10.0.2.20,lease=52:54:00:00:00:01:10.0.2.21", "52:54:00:00:00:01"},
      {"lease=52:54:00:00:00:01:10.0.2.20,lease=52:54:00:00:00:02:10.0.2.20", "10.0.2.20"},
      {"host=10.0.2.4,host=10.0.2.5", "host"},
      {"lease=52:54:00:00:00:01:10.0.2.20:bad_name", "bad_name"},
      {"lease=52:54:00:00:00:01:10.0.2.20:-web", "-web"},
      {"lease=52:54:00:00:00:01:10.0.2.20:web.lab", "web.lab"},
      {"lease=52:54:00:00:00:01:10.0.2.20:" + std::string(64, 'a'), std::string(64, 'a')},
      {"lease=52:54:00:00:00:01:10.0.2.20:web,lease=52:54:00:00:00:02:10.0.2.21:WEB", "'WEB'"},
      {"dns-record=files", "dns-record=files"},
      {"dns-record=files=", "dns-record=files="},
      {"dns-record=files=10.0.2", "10.0.2"},
      {"dns-record=files=224.0.0.1", "224.0.0.1"},
      {"dns-record=files=0.0.0.0", "0.0.0.0"},
      {"dns-record=fi_les=10.0.2.100", "fi_les"},
      {"dns-record==10.0.2.100", "empty"},
      {"dns-record=a..b=10.0.2.100", "a..b"},
      {"dns-record=gateway=10.0.2.100", "built in"},
      {"dns-record=f=10.0.2.100,dns-record=F=10.0.2.100", "already"},
      {"restrict", "restrict"},
      {"net=10.0.2.0/24,", "empty"},
  };
  for (const BadCase& c : cases) {
    const std::string error = parse_error(c.text);
    EXPECT_NE(error.find(c.must_mention), std::string::npos)
        << "--slirp " << c.text << " gave: " << error;
  }
}

TEST(SlirpOptionsParseTest, HostnameOver255BytesIsRejected) {
  const std::string error = parse_error("hostname=" + std::string(256, 'h'));
  EXPECT_NE(error.find("hostname"), std::string::npos) << error;
}

TEST(SlirpOptionsParseTest, UnknownKeyIsNamedAndAcceptedKeysListed) {
  const std::string error = parse_error("net=10.0.2.0/24,hostfw=tcp::1-:2");
  EXPECT_NE(error.find("'hostfw'"), std::string::npos) << error;
  for (const char* key :
       {"vlan", "net", "host", "dhcpstart", "dns", "hostname", "domainname", "dnssearch", "tftp",
        "bootfile", "restrict", "ipv6-net", "ipv6-host", "ipv6-dns", "mtu", "hostfwd", "lease",
        "max-leases-per-port", "dns-record"}) {
    EXPECT_NE(error.find(key), std::string::npos) << key << " missing from: " << error;
  }
}

TEST(HostfwdParseTest, EmptyFieldsTakeTheDefaults) {
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("tcp::8080-:80", f, error)) << error;
  EXPECT_FALSE(f.udp);
  EXPECT_EQ(v4(f.host_addr), "127.0.0.1");
  EXPECT_EQ(f.host_port, 8080);
  EXPECT_EQ(f.guest_addr.s_addr, 0u);
  EXPECT_EQ(f.guest_port, 80);
  EXPECT_EQ(f.to_string(), "tcp:127.0.0.1:8080-:80");
}

TEST(HostfwdParseTest, EmptyProtocolIsTcpAsInQemu) {
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("::8080-:80", f, error)) << error;
  EXPECT_FALSE(f.udp);
}

TEST(HostfwdParseTest, AllFieldsGiven) {
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("udp:0.0.0.0:0-10.0.2.20:53", f, error)) << error;
  EXPECT_TRUE(f.udp);
  EXPECT_EQ(v4(f.host_addr), "0.0.0.0");
  EXPECT_EQ(f.host_port, 0);  // QEMU allows 0: the kernel picks
  EXPECT_EQ(v4(f.guest_addr), "10.0.2.20");
  EXPECT_EQ(f.guest_port, 53);
  EXPECT_EQ(f.to_string(), "udp:0.0.0.0:0-10.0.2.20:53");
}

TEST(HostfwdParseTest, ToStringRoundTrips) {
  for (const char* spec : {"tcp:127.0.0.1:8080-10.0.2.15:80", "udp:0.0.0.0:53-:53"}) {
    slirp::HostForward f, g;
    std::string error;
    ASSERT_TRUE(parse_hostfwd(spec, f, error)) << error;
    EXPECT_EQ(f.to_string(), spec);
    ASSERT_TRUE(parse_hostfwd(f.to_string(), g, error)) << error;
    EXPECT_EQ(g.to_string(), spec);
  }
}

TEST(HostfwdParseTest, BadSpecsAreErrorsNamingTheBadPart) {
  const BadCase cases[] = {
      {"sctp::80-:80", "sctp"},
      {"tcp:8080-:80", "tcp:8080-:80"},
      {"tcp::8080:80", "'-'"},
      {"tcp:localhost:8080-:80", "localhost"},
      {"tcp::65536-:80", "65536"},
      {"tcp::-1-:80", "tcp::-1-:80"},
      {"tcp::8080-:0", "guest port '0'"},
      {"tcp::8080-:65536", "65536"},
      {"tcp::8080-10.0.2:80", "10.0.2"},
      {"tcp::8080-", "tcp::8080-"},
      {"tcp::0x50-:80", "0x50"},
      {"", "expected"},
  };
  for (const BadCase& c : cases) {
    slirp::HostForward f;
    f.host_port = 4242;
    std::string error;
    EXPECT_FALSE(parse_hostfwd(c.text, f, error)) << c.text;
    EXPECT_EQ(f.host_port, 4242) << c.text;
    EXPECT_NE(error.find(c.must_mention), std::string::npos) << c.text << " gave: " << error;
    EXPECT_NE(error.find("expected"), std::string::npos) << c.text << " gave: " << error;
  }
}

TEST(HostfwdParseTest, KeyForRemoveTakesProtoAddrPort) {
  slirp::HostForward k;
  std::string error;
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080", k, error)) << error;
  EXPECT_FALSE(k.udp);
  EXPECT_EQ(v4(k.host_addr), "127.0.0.1");
  EXPECT_EQ(k.host_port, 8080);
  ASSERT_TRUE(parse_hostfwd_key("udp:0.0.0.0:53", k, error)) << error;
  EXPECT_TRUE(k.udp);
  EXPECT_EQ(v4(k.host_addr), "0.0.0.0");
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080-:80", k, error)) << error;  // the add spec works too
  EXPECT_EQ(k.host_port, 8080);
  EXPECT_EQ(k.guest_port, 0);
  EXPECT_FALSE(parse_hostfwd_key("tcp:8080", k, error));
  EXPECT_NE(error.find("tcp:8080"), std::string::npos) << error;
  EXPECT_FALSE(parse_hostfwd_key("tcp::http", k, error));
  EXPECT_NE(error.find("http"), std::string::npos) << error;
}

TEST(HostfwdParseTest, GuestAddressMustBeAGuestOfTheSegment) {
  const slirp::SlirpOptions o = slirp::default_slirp_options();
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("tcp::8080-10.0.2.2:80", f, error));
  EXPECT_FALSE(check_hostfwd_guest(f, o, error));
  EXPECT_NE(error.find("10.0.2.2"), std::string::npos) << error;
  ASSERT_TRUE(parse_hostfwd("tcp::8080-:80", f, error));
  EXPECT_TRUE(check_hostfwd_guest(f, o, error));
  ASSERT_TRUE(parse_hostfwd("tcp::8080-10.0.2.99:80", f, error));
  EXPECT_TRUE(check_hostfwd_guest(f, o, error));
}

TEST(HostfwdParseTest, Ipv6SidesInBrackets) {
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("tcp:[::1]:8080-[fec0::5054:ff:fe12:3456]:80", f, error)) << error;
  EXPECT_TRUE(f.ipv6);
  EXPECT_FALSE(f.udp);
  EXPECT_EQ(v6(f.host_addr6), "::1");
  EXPECT_EQ(f.host_port, 8080);
  EXPECT_EQ(v6(f.guest_addr6), "fec0::5054:ff:fe12:3456");
  EXPECT_EQ(f.guest_port, 80);
  EXPECT_EQ(f.host_addr_text(), "::1");
  EXPECT_EQ(f.guest_addr_text(), "fec0::5054:ff:fe12:3456");
  EXPECT_EQ(f.to_string(), "tcp:[::1]:8080-[fec0::5054:ff:fe12:3456]:80");
  // Every host address form: the wildcard, a global one, and none (loopback of the guest's
  // family, ::1); udp and the empty protocol.
  ASSERT_TRUE(parse_hostfwd("udp:[::]:53-[fec0::15]:53", f, error)) << error;
  EXPECT_TRUE(f.udp && f.ipv6 && f.host_any());
  EXPECT_EQ(f.to_string(), "udp:[::]:53-[fec0::15]:53");
  ASSERT_TRUE(parse_hostfwd(":[2001:db8::7]:22-[fd00::15]:22", f, error)) << error;
  EXPECT_FALSE(f.udp);
  EXPECT_EQ(f.to_string(), "tcp:[2001:db8::7]:22-[fd00::15]:22");
  ASSERT_TRUE(parse_hostfwd("tcp::8080-[fec0::15]:80", f, error)) << error;
  EXPECT_TRUE(f.ipv6);
  EXPECT_EQ(f.to_string(), "tcp:[::1]:8080-[fec0::15]:80");
  EXPECT_EQ(f.host_addr.s_addr, 0u);
  // Round trip.
  slirp::HostForward g;
  ASSERT_TRUE(parse_hostfwd(f.to_string(), g, error)) << error;
  EXPECT_TRUE(g.same_host_socket(f));
  EXPECT_EQ(g.to_string(), f.to_string());
  // IPv4 and IPv6 forwards on one port are different host sockets.
  slirp::HostForward h;
  ASSERT_TRUE(parse_hostfwd("tcp::8080-:80", h, error)) << error;
  EXPECT_FALSE(h.same_host_socket(f));
}

TEST(HostfwdParseTest, Ipv6BadSpecsNameTheBadPart) {
  const BadCase cases[] = {
      // One family per forward.
      {"tcp:[::1]:8080-:80", "one family"},
      {"tcp:[::1]:8080-10.0.2.15:80", "'10.0.2.15' is not"},
      {"tcp:127.0.0.1:8080-[fec0::15]:80", "one family"},
      {"tcp:0.0.0.0:8080-[fec0::15]:80", "host side is IPv4"},
      // Brackets: IPv6 only, closed, followed by ':'.
      {"tcp:[127.0.0.1]:8080-[fec0::15]:80", "'[127.0.0.1]' is not a numeric IPv6"},
      {"tcp:[::1:8080-[fec0::15]:80", "expected"},
      {"tcp:[::1]8080-[fec0::15]:80", "expected"},
      {"tcp:[::1]:8080-[fec0::15:80", "guest side"},
      {"tcp:[::1]:8080-[fec0::15]80", "guest side"},
      {"tcp:[::1]:8080-[10.0.2.15]:80", "'[10.0.2.15]' is not a numeric IPv6"},
      {"tcp:[]:8080-[fec0::15]:80", "'[]'"},
      {"tcp:[::1]:8080-[]:80", "'[]'"},
      {"tcp:[::1]:80:80-[fec0::15]:80", "expected"},
      {"tcp:[::1]:8080-[fec0::15]:80]", "guest side"},
      // Unbracketed IPv6 is a hint, not a guess.
      {"tcp::8080-fec0::15:80",
       "guest side 'fec0::15:80' is not [GUESTADDR]:GUESTPORT; an IPv6 "
       "address goes in brackets"},
      {"tcp:::1:8080-[fec0::15]:80", "an IPv6 address goes in brackets"},
      // Host addresses that cannot be bound.
      {"tcp:[fe80::1]:8080-[fec0::15]:80", "link-local"},
      {"tcp:[ff02::1]:8080-[fec0::15]:80", "multicast"},
      {"tcp:[::ffff:127.0.0.1]:8080-[fec0::15]:80", "IPv4-mapped"},
      {"tcp:[localhost]:8080-[fec0::15]:80", "localhost"},
      // Ports as before.
      {"tcp:[::1]:65536-[fec0::15]:80", "65536"},
      {"tcp:[::1]:8080-[fec0::15]:0", "guest port '0'"},
  };
  for (const BadCase& c : cases) {
    slirp::HostForward f;
    f.host_port = 4242;
    std::string error;
    EXPECT_FALSE(parse_hostfwd(c.text, f, error)) << c.text;
    EXPECT_EQ(f.host_port, 4242) << c.text;
    EXPECT_NE(error.find(c.must_mention), std::string::npos) << c.text << " gave: " << error;
    EXPECT_NE(error.find("expected"), std::string::npos) << c.text << " gave: " << error;
    EXPECT_NE(error.find(c.text), std::string::npos) << c.text << " gave: " << error;
  }
}

TEST(HostfwdParseTest, Ipv6KeyForRemove) {
  slirp::HostForward k;
  std::string error;
  ASSERT_TRUE(parse_hostfwd_key("tcp:[::1]:8080", k, error)) << error;
  EXPECT_TRUE(k.ipv6);
  EXPECT_EQ(v6(k.host_addr6), "::1");
  EXPECT_EQ(k.host_port, 8080);
  ASSERT_TRUE(parse_hostfwd_key("udp:[::]:53", k, error)) << error;
  EXPECT_TRUE(k.udp && k.ipv6 && k.host_any());
  // The add spec works too; an empty host with an IPv6 guest is [::1] there as well.
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080-[fec0::15]:80", k, error)) << error;
  EXPECT_TRUE(k.ipv6);
  EXPECT_EQ(v6(k.host_addr6), "::1");
  EXPECT_EQ(k.guest_port, 0);
  EXPECT_EQ(v6(k.guest_addr6), "::");
  // Without a guest side, an empty host address is 127.0.0.1: [::1] is written out.
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080", k, error)) << error;
  EXPECT_FALSE(k.ipv6);
  EXPECT_FALSE(parse_hostfwd_key("tcp:[::1]8080", k, error));
  EXPECT_NE(error.find("[::1]8080"), std::string::npos) << error;
  EXPECT_FALSE(parse_hostfwd_key("tcp:::1:8080", k, error));
  EXPECT_NE(error.find("an IPv6 address goes in brackets, e.g. [::1]:8080"), std::string::npos)
      << error;
  EXPECT_FALSE(parse_hostfwd_key("tcp:[fe80::1]:8080", k, error));
  EXPECT_NE(error.find("link-local"), std::string::npos) << error;
}

TEST(HostfwdParseTest, AGuestByMacTakesTheHostSidesFamily) {
  slirp::SlirpOptions o = slirp::default_slirp_options();
  slirp::HostForward f;
  std::string error;
  // No host address: IPv4 on 127.0.0.1; the address is the slirp port's to find.
  ASSERT_TRUE(parse_hostfwd("tcp::8080-[52:54:00:12:34:56]:80", f, error)) << error;
  EXPECT_TRUE(f.by_mac);
  EXPECT_FALSE(f.ipv6);
  EXPECT_EQ(f.guest_mac.to_string(), "52:54:00:12:34:56");
  EXPECT_EQ(v4(f.host_addr), "127.0.0.1");
  EXPECT_EQ(f.guest_addr.s_addr, 0u);
  EXPECT_EQ(f.guest_port, 80);
  EXPECT_EQ(f.to_string(), "tcp:127.0.0.1:8080-[52:54:00:12:34:56]:80");
  EXPECT_TRUE(check_hostfwd_guest(f, o, error)) << error;
  // An IPv6 host side: an IPv6 forward.
  ASSERT_TRUE(parse_hostfwd("udp:[::1]:5353-[52-54-00-12-34-56]:53", f, error)) << error;
  EXPECT_TRUE(f.by_mac && f.ipv6 && f.udp);
  EXPECT_EQ(f.to_string(), "udp:[::1]:5353-[52:54:00:12:34:56]:53");
  slirp::HostForward g;
  ASSERT_TRUE(parse_hostfwd(f.to_string(), g, error)) << error;
  EXPECT_EQ(g.to_string(), f.to_string());
  EXPECT_TRUE(check_hostfwd_guest(f, o, error)) << error;
  o.ipv6 = false;
  EXPECT_FALSE(check_hostfwd_guest(f, o, error));
  EXPECT_NE(error.find("ipv6=off"), std::string::npos) << error;
  // Not a guest's MAC.
  EXPECT_FALSE(parse_hostfwd("tcp::8080-[01:00:5e:00:00:01]:80", f, error));
  EXPECT_NE(error.find("not a unicast MAC"), std::string::npos) << error;
  // Neither IPv6 nor a MAC: the message names both.
  EXPECT_FALSE(parse_hostfwd("tcp::8080-[52:54:00:12:34]:80", f, error));
  EXPECT_NE(error.find("nor a guest's MAC"), std::string::npos) << error;
  // The key for remove is the host side's, as ever.
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080-[52:54:00:12:34:56]:80", f, error)) << error;
  EXPECT_FALSE(f.by_mac);
  EXPECT_EQ(f.host_port, 8080);
}

TEST(HostfwdParseTest, AGuestByNameTakesTheHostSidesFamily) {
  slirp::SlirpOptions o = slirp::default_slirp_options();
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("tcp::8080-Web1:80", f, error)) << error;
  EXPECT_EQ(f.guest_name, "web1");
  EXPECT_FALSE(f.by_mac || f.ipv6);
  EXPECT_EQ(v4(f.host_addr), "127.0.0.1");
  EXPECT_EQ(f.guest_addr.s_addr, 0u);
  EXPECT_EQ(f.to_string(), "tcp:127.0.0.1:8080-web1:80");
  EXPECT_TRUE(check_hostfwd_guest(f, o, error)) << error;
  // A full name, and an IPv6 host side: an IPv6 forward to the name's AAAA.
  ASSERT_TRUE(parse_hostfwd("udp:[::1]:5353-web1.qswitch.internal.:53", f, error)) << error;
  EXPECT_TRUE(f.ipv6 && f.udp);
  EXPECT_EQ(f.guest_name, "web1.qswitch.internal");
  EXPECT_EQ(f.to_string(), "udp:[::1]:5353-web1.qswitch.internal:53");
  slirp::HostForward g;
  ASSERT_TRUE(parse_hostfwd(f.to_string(), g, error)) << error;
  EXPECT_EQ(g.to_string(), f.to_string());
  o.ipv6 = false;
  EXPECT_FALSE(check_hostfwd_guest(f, o, error));
  EXPECT_NE(error.find("by name, and this slirp port has ipv6=off"), std::string::npos) << error;
  // Not a host name: the message says why; digits and dots stay an address error.
  EXPECT_FALSE(parse_hostfwd("tcp::8080-web_1:80", f, error));
  EXPECT_NE(error.find("guest name 'web_1'"), std::string::npos) << error;
  EXPECT_FALSE(parse_hostfwd("tcp::8080-10.0.2:80", f, error));
  EXPECT_NE(error.find("not a numeric IPv4 address"), std::string::npos) << error;
  // The key for remove is the host side's.
  ASSERT_TRUE(parse_hostfwd_key("tcp::8080-web1:80", f, error)) << error;
  EXPECT_TRUE(f.guest_name.empty());
  EXPECT_EQ(f.host_port, 8080);
}

TEST(HostfwdParseTest, Ipv6GuestAddressMustBeAGuestOfTheIpv6Net) {
  slirp::SlirpOptions o = slirp::default_slirp_options();
  slirp::HostForward f;
  std::string error;
  ASSERT_TRUE(parse_hostfwd("tcp:[::1]:8080-[fec0::5054:ff:fe12:3456]:80", f, error));
  EXPECT_TRUE(check_hostfwd_guest(f, o, error)) << error;
  const struct {
    const char* spec;
    const char* must_mention;
  } cases[] = {
      {"tcp:[::1]:8080-[fd00::15]:80", "outside ipv6-net fec0::/64"},
      {"tcp:[::1]:8080-[fec0::]:80", "network address"},
      {"tcp:[::1]:8080-[fec0::2]:80", "ipv6-host"},
      {"tcp:[::1]:8080-[fec0::3]:80", "ipv6-dns"},
      {"tcp:[::1]:8080-[fec0:0:0:1::15]:80", "outside"},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(parse_hostfwd(c.spec, f, error)) << c.spec << ": " << error;
    EXPECT_FALSE(check_hostfwd_guest(f, o, error)) << c.spec;
    EXPECT_NE(error.find(c.must_mention), std::string::npos) << c.spec << " gave: " << error;
    EXPECT_NE(error.find("SLAAC"), std::string::npos) << c.spec << " gave: " << error;
  }
  o.ipv6 = false;
  ASSERT_TRUE(parse_hostfwd("tcp:[::1]:8080-[fec0::15]:80", f, error));
  EXPECT_FALSE(check_hostfwd_guest(f, o, error));
  EXPECT_NE(error.find("ipv6=off"), std::string::npos) << error;
  // In --slirp (and so the lab file's [[slirp]] hostfwd strings), with the port's own ipv6-net.
  const slirp::SlirpOptions p = parse_ok(
      "ipv6-net=fd00:1::/64,hostfwd=tcp:[::1]:8080-[fd00:1::15]:80,"
      "hostfwd=tcp::8080-:80,hostfwd=udp::8080-[fd00:1::15]:53");
  ASSERT_EQ(p.hostfwd.size(), 3u);
  EXPECT_EQ(p.hostfwd[0].to_string(), "tcp:[::1]:8080-[fd00:1::15]:80");
  EXPECT_EQ(p.hostfwd[2].to_string(), "udp:[::1]:8080-[fd00:1::15]:53");
  EXPECT_NE(parse_error("hostfwd=tcp:[::1]:8080-[fec0::15]:80,ipv6-net=fd00:1::/64")
                .find("outside ipv6-net fd00:1::/64"),
            std::string::npos);
  EXPECT_NE(parse_error("hostfwd=tcp:[::1]:8080-[fec0::15]:80,hostfwd=tcp::8080-[fec0::16]:81")
                .find("tcp [::1]:8080 is already forwarded"),
            std::string::npos);
  EXPECT_NE(parse_error("ipv6=off,hostfwd=tcp:[::1]:8080-[fec0::15]:80").find("ipv6=off"),
            std::string::npos);
}

// Found by tests/fuzz/hostfwd_spec_fuzz and slirp_options_fuzz: text after a NUL byte was
// silently ignored (inet_pton and stat stop at it), so "tcp::8080-10.0.2.2\0junk:80" was a
// forward to 10.0.2.2. Such text can only come from a JSON string on the control socket; it is
// refused, whatever field holds the NUL.
TEST(SlirpOptionsParseTest, NulByteAnywhereIsRefused) {
  using namespace std::string_literals;
  for (const std::string& text :
       {"host=10.0.2.2\0x"s, "ipv6-net=fd00::/64,ipv6-host=fd00::\0\0\02"s, "tftp=/tmp\0/x"s,
        "hostfwd=tcp::8080-:80\0"s, "\0"s}) {
    EXPECT_NE(parse_error(text).find("NUL"), std::string::npos) << text;
  }
  for (const std::string& spec :
       {"tcp::08-10.0.2.2\0:80"s, "tcp:127.0.0.1\0:80-:22"s, "udp::53-:53\0"s}) {
    slirp::HostForward f;
    f.guest_port = 4242;
    std::string error;
    EXPECT_FALSE(parse_hostfwd(spec, f, error)) << spec;
    EXPECT_NE(error.find("NUL"), std::string::npos) << error;
    EXPECT_EQ(f.guest_port, 4242) << spec;
    EXPECT_FALSE(parse_hostfwd_key(spec, f, error)) << spec;
  }
  slirp::HostForward k;
  std::string error;
  EXPECT_FALSE(parse_hostfwd_key("tcp:127.0.0.1:80\0"s, k, error));
}

}  // namespace
}  // namespace qswitch::tools
