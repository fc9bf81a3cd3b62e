// tests/slirp/dns_names_test.cc: DnsNames, the sources of the slirp port's DNS names and the
// DnsTable built from them: domain, built-in names, static records, precedence, renames,
// conflicts, IPv6 filtering, name validation.
#include "slirp/dns_names.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qswitch::slirp {
namespace {

sw::IpAddress addr(const char* text) {
  const auto a = sw::IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(sw::IpAddress{});
}

sw::MacAddress mac(const char* text) {
  const auto m = sw::MacAddress::parse(text);
  EXPECT_TRUE(m.has_value()) << text;
  return m.value_or(sw::MacAddress{});
}

in_addr ip4(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a;
}

// The table's addresses of `name` as text, in order; empty when the name is not in the table.
std::vector<std::string> lookup(const DnsNames& n, const std::string& name) {
  for (const DnsName& d : n.table().names) {
    if (d.name != name) continue;
    std::vector<std::string> out;
    for (const sw::IpAddress& a : d.addresses) out.push_back(a.to_string());
    return out;
  }
  return {};
}

const DnsNames::Listed* listed(const DnsNames& n, const std::string& name) {
  static std::vector<DnsNames::Listed> rows;
  rows = n.list();
  for (const DnsNames::Listed& r : rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

using V = std::vector<std::string>;

TEST(DnsNamesTest, DefaultDomainAndBuiltInNames) {
  const DnsNames n(default_slirp_options());
  EXPECT_EQ(n.domain(), "qswitch.internal");
  EXPECT_EQ(n.table().domain, "qswitch.internal");
  EXPECT_EQ(lookup(n, "host.qswitch.internal"), (V{"10.0.2.2", "fec0::2"}));
  EXPECT_EQ(lookup(n, "gateway.qswitch.internal"), (V{"10.0.2.2", "fec0::2"}));
  EXPECT_EQ(lookup(n, "dns.qswitch.internal"), (V{"10.0.2.3", "fec0::3"}));
  ASSERT_FALSE(n.table().names.empty());
  EXPECT_EQ(n.table().names.front().name, "host.qswitch.internal");  // PTR 10.0.2.2 -> host
  ASSERT_EQ(n.table().reverse.size(), 2u);
  EXPECT_EQ(n.table().reverse[0].net.to_string(), "10.0.2.0");
  EXPECT_EQ(n.table().reverse[0].prefix_len, 24);
  EXPECT_EQ(n.table().reverse[1].net.to_string(), "fec0::");
  EXPECT_EQ(n.table().reverse[1].prefix_len, 64);
  ASSERT_NE(listed(n, "host.qswitch.internal"), nullptr);
  EXPECT_EQ(listed(n, "host.qswitch.internal")->source, NameSource::kHost);
}

TEST(DnsNamesTest, DomainNameOptionAndIpv6Off) {
  SlirpOptions o = default_slirp_options();
  o.domainname = "Lab.Example.";
  o.ipv6 = false;
  const DnsNames n(o);
  EXPECT_EQ(n.domain(), "lab.example");
  EXPECT_EQ(lookup(n, "host.lab.example"), (V{"10.0.2.2"}));
  EXPECT_EQ(n.table().reverse.size(), 1u);
  EXPECT_EQ(n.qualify("Web1"), "web1.lab.example");
  EXPECT_EQ(n.qualify("a.other.example."), "a.other.example");
  EXPECT_EQ(n.qualify("a.other.example"), "a.other.example");
}

TEST(DnsNamesTest, DhcpHostnameWithBoundLeaseIsInTheTable) {
  DnsNames n(default_slirp_options());
  const uint64_t before = n.generation();
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "Web1");
  EXPECT_TRUE(lookup(n, "web1.qswitch.internal").empty());  // no address yet
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  EXPECT_EQ(lookup(n, "web1.qswitch.internal"), (V{"10.0.2.15"}));
  EXPECT_GT(n.generation(), before);
  const DnsNames::Listed* row = listed(n, "web1.qswitch.internal");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->source, NameSource::kDhcpHostname);
  EXPECT_EQ(row->mac, mac("52:54:00:00:00:01"));
  n.lease_ended(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  EXPECT_TRUE(lookup(n, "web1.qswitch.internal").empty());
}

TEST(DnsNamesTest, FullHostnameUsesItsFirstLabel) {
  DnsNames n(default_slirp_options());
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "db.corp.example");
  EXPECT_EQ(lookup(n, "db.qswitch.internal"), (V{"10.0.2.15"}));
}

TEST(DnsNamesTest, RenameDropsTheOldName) {
  DnsNames n(default_slirp_options());
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "old");
  EXPECT_EQ(lookup(n, "old.qswitch.internal"), (V{"10.0.2.15"}));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "new");
  EXPECT_TRUE(lookup(n, "old.qswitch.internal").empty());
  EXPECT_EQ(lookup(n, "new.qswitch.internal"), (V{"10.0.2.15"}));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "");  // a REQUEST without option 12
  EXPECT_TRUE(lookup(n, "new.qswitch.internal").empty());
}

TEST(DnsNamesTest, InvalidHostnamesAreIgnoredAndCounted) {
  DnsNames n(default_slirp_options());
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "good");
  for (const std::string& bad :
       {std::string("-bad"), std::string("bad-"), std::string("a_b"), std::string(64, 'x'),
        std::string("sp ace"), std::string("nul\0x", 5), std::string("\xff\xfe"),
        std::string(".lead")}) {
    n.set_dhcp_hostname(mac("52:54:00:00:00:01"), bad);
  }
  EXPECT_EQ(n.counters().invalid_hostnames, 8u);
  EXPECT_EQ(lookup(n, "good.qswitch.internal"), (V{"10.0.2.15"}));  // kept the valid one
  for (const DnsName& d : n.table().names) {
    std::string why;
    EXPECT_TRUE(dns_name_ok(d.name, why)) << d.name << ": " << why;
  }
}

TEST(DnsNamesTest, ConfiguredNamesWinOverDhcpHostnames) {
  SlirpOptions o = default_slirp_options();
  o.leases.push_back(Lease{mac("52:54:00:00:00:02"), ip4("10.0.2.50"), "Db"});
  DnsNames n(o);
  // The pinned address answers from the start.
  EXPECT_EQ(lookup(n, "db.qswitch.internal"), (V{"10.0.2.50"}));
  // Another guest claims "db" over DHCP: it loses, and the conflict is listed and counted.
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "db");
  EXPECT_EQ(lookup(n, "db.qswitch.internal"), (V{"10.0.2.50"}));
  ASSERT_EQ(n.conflicts().size(), 1u);
  EXPECT_EQ(n.conflicts()[0].name, "db.qswitch.internal");
  EXPECT_EQ(n.conflicts()[0].mac, mac("52:54:00:00:00:01"));
  EXPECT_EQ(n.conflicts()[0].source, NameSource::kDhcpHostname);
  EXPECT_EQ(n.conflicts()[0].holder_source, NameSource::kLease);
  EXPECT_EQ(n.counters().conflicts, 1u);
  // The lease's own guest sends another hostname: the configured name stays.
  n.lease_bound(mac("52:54:00:00:00:02"), addr("10.0.2.50"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:02"), "other");
  EXPECT_EQ(lookup(n, "db.qswitch.internal"), (V{"10.0.2.50"}));
  EXPECT_TRUE(lookup(n, "other.qswitch.internal").empty());
}

TEST(DnsNamesTest, LabAndExecNamesInOrderOfPrecedence) {
  DnsNames n(default_slirp_options());
  const sw::MacAddress m = mac("52:54:00:00:00:03");
  n.lease_bound(m, addr("10.0.2.16"));
  n.set_dhcp_hostname(m, "fromdhcp");
  EXPECT_EQ(lookup(n, "fromdhcp.qswitch.internal"), (V{"10.0.2.16"}));
  n.set_exec_name(m, "fromexec");
  EXPECT_TRUE(lookup(n, "fromdhcp.qswitch.internal").empty());
  EXPECT_EQ(lookup(n, "fromexec.qswitch.internal"), (V{"10.0.2.16"}));
  ASSERT_NE(listed(n, "fromexec.qswitch.internal"), nullptr);
  EXPECT_EQ(listed(n, "fromexec.qswitch.internal")->source, NameSource::kExec);
  n.set_guests(NameSource::kLab, {{m, "fromlab", addr("10.0.2.40")}});
  EXPECT_TRUE(lookup(n, "fromexec.qswitch.internal").empty());
  EXPECT_EQ(lookup(n, "fromlab.qswitch.internal"), (V{"10.0.2.40", "10.0.2.16"}));
  // The lab file drops the guest: the exec name is back.
  n.set_guests(NameSource::kLab, {});
  EXPECT_EQ(lookup(n, "fromexec.qswitch.internal"), (V{"10.0.2.16"}));
}

TEST(DnsNamesTest, LabAddressOutsideTheNetIsNotAnswered) {
  DnsNames n(default_slirp_options());
  n.set_guests(NameSource::kLab, {{mac("52:54:00:00:00:04"), "far", addr("10.0.20.10")},
                                  {mac("52:54:00:00:00:05"), "bad_name", addr("10.0.2.41")}});
  EXPECT_TRUE(lookup(n, "far.qswitch.internal").empty());
  ASSERT_NE(listed(n, "far.qswitch.internal"), nullptr);  // listed, without addresses
  EXPECT_EQ(n.counters().invalid_names, 1u);
}

TEST(DnsNamesTest, FirstDhcpHolderKeepsTheNameUntilItLetsGo) {
  DnsNames n(default_slirp_options());
  const sw::MacAddress a = mac("52:54:00:00:00:0a");
  const sw::MacAddress b = mac("52:54:00:00:00:0b");
  n.lease_bound(a, addr("10.0.2.20"));
  n.set_dhcp_hostname(a, "web");
  n.lease_bound(b, addr("10.0.2.21"));
  n.set_dhcp_hostname(b, "web");
  EXPECT_EQ(lookup(n, "web.qswitch.internal"), (V{"10.0.2.20"}));
  ASSERT_EQ(n.conflicts().size(), 1u);
  EXPECT_EQ(n.conflicts()[0].mac, b);
  EXPECT_EQ(n.conflicts()[0].holder_mac, a);
  // b renews with the same name: still one conflict counted.
  n.set_dhcp_hostname(b, "web");
  EXPECT_EQ(n.counters().conflicts, 1u);
  // a's lease ends: b gets the name.
  n.lease_ended(a, addr("10.0.2.20"));
  EXPECT_EQ(lookup(n, "web.qswitch.internal"), (V{"10.0.2.21"}));
  EXPECT_TRUE(n.conflicts().empty());
  // a comes back with the same name: b keeps it now.
  n.lease_bound(a, addr("10.0.2.20"));
  EXPECT_EQ(lookup(n, "web.qswitch.internal"), (V{"10.0.2.21"}));
  EXPECT_EQ(n.counters().conflicts, 2u);
}

TEST(DnsNamesTest, StaticRecordsAddAndRemove) {
  SlirpOptions o = default_slirp_options();
  o.dns_records.push_back(DnsRecord{"files", addr("10.0.2.100")});
  o.dns_records.push_back(DnsRecord{"files", addr("fec0::100")});
  o.dns_records.push_back(DnsRecord{"www.example.test", addr("10.0.2.101")});
  DnsNames n(o);
  EXPECT_EQ(lookup(n, "files.qswitch.internal"), (V{"10.0.2.100", "fec0::100"}));
  EXPECT_EQ(lookup(n, "www.example.test"), (V{"10.0.2.101"}));
  ASSERT_NE(listed(n, "files.qswitch.internal"), nullptr);
  EXPECT_EQ(listed(n, "files.qswitch.internal")->source, NameSource::kStatic);

  std::string error;
  EXPECT_TRUE(n.add_static("Extra", addr("10.0.2.102"), error)) << error;
  EXPECT_EQ(lookup(n, "extra.qswitch.internal"), (V{"10.0.2.102"}));
  EXPECT_FALSE(n.add_static("extra", addr("10.0.2.102"), error));
  EXPECT_NE(error.find("already"), std::string::npos) << error;
  EXPECT_FALSE(n.add_static("bad_name", addr("10.0.2.103"), error));
  EXPECT_NE(error.find("bad_name"), std::string::npos) << error;
  EXPECT_NE(error.find("letters, digits"), std::string::npos) << error;
  EXPECT_FALSE(n.add_static("gateway", addr("10.0.2.103"), error));
  EXPECT_NE(error.find("built in"), std::string::npos) << error;
  EXPECT_FALSE(n.add_static("x", sw::IpAddress{}, error));

  EXPECT_TRUE(n.remove_static("files", addr("10.0.2.100"), error)) << error;
  EXPECT_EQ(lookup(n, "files.qswitch.internal"), (V{"fec0::100"}));
  EXPECT_FALSE(n.remove_static("files", addr("10.0.2.100"), error));
  EXPECT_NE(error.find("no record 10.0.2.100"), std::string::npos) << error;
  EXPECT_TRUE(n.remove_static("files", std::nullopt, error)) << error;
  EXPECT_TRUE(lookup(n, "files.qswitch.internal").empty());
  EXPECT_FALSE(n.remove_static("files", std::nullopt, error));
  EXPECT_NE(error.find("no static record named 'files.qswitch.internal'"), std::string::npos)
      << error;
}

TEST(DnsNamesTest, StaticRecordBeatsAGuestOfTheSameName) {
  DnsNames n(default_slirp_options());
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "files");
  EXPECT_EQ(lookup(n, "files.qswitch.internal"), (V{"10.0.2.15"}));
  std::string error;
  ASSERT_TRUE(n.add_static("files", addr("10.0.2.100"), error)) << error;
  EXPECT_EQ(lookup(n, "files.qswitch.internal"), (V{"10.0.2.100"}));
  ASSERT_EQ(n.conflicts().size(), 1u);
  EXPECT_EQ(n.conflicts()[0].holder_source, NameSource::kStatic);
}

TEST(DnsNamesTest, Ipv6OnlyGlobalAddressesInsideThePrefix) {
  DnsNames n(default_slirp_options());
  const sw::MacAddress m = mac("52:54:00:00:00:01");
  n.set_dhcp_hostname(m, "six");
  n.set_ipv6(m, {addr("fe80::5054:ff:fe00:1"), addr("2001:db8::1"), addr("fec0::5054:ff:fe00:1"),
                 addr("ff02::1"), addr("10.0.2.15")});
  // A name with only IPv6 addresses claims it too.
  EXPECT_EQ(lookup(n, "six.qswitch.internal"), (V{"fec0::5054:ff:fe00:1"}));
  n.lease_bound(m, addr("10.0.2.15"));
  EXPECT_EQ(lookup(n, "six.qswitch.internal"), (V{"10.0.2.15", "fec0::5054:ff:fe00:1"}));
  n.set_ipv6(m, {});
  EXPECT_EQ(lookup(n, "six.qswitch.internal"), (V{"10.0.2.15"}));
}

TEST(DnsNamesTest, NameValidation) {
  std::string why;
  for (const std::string& ok : {std::string("a"), std::string("web1"), std::string("WEB-1"),
                                std::string("a.b.c"), std::string("x."), std::string(63, 'a')}) {
    EXPECT_TRUE(dns_name_ok(ok, why)) << ok << ": " << why;
  }
  EXPECT_FALSE(dns_name_ok(std::string(64, 'a'), why));
  EXPECT_FALSE(dns_name_ok("", why));
  EXPECT_FALSE(dns_name_ok("a..b", why));
  EXPECT_NE(why.find("empty label"), std::string::npos) << why;
  EXPECT_FALSE(dns_name_ok("-a", why));
  EXPECT_FALSE(dns_name_ok("a-", why));
  EXPECT_FALSE(dns_name_ok("a_b", why));
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  EXPECT_FALSE(dns_name_ok(long_name, why));
  EXPECT_NE(why.find("at most 253"), std::string::npos) << why;
}

TEST(DnsNamesTest, UnchangedInputDoesNotBumpTheGeneration) {
  DnsNames n(default_slirp_options());
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "same");
  const uint64_t g = n.generation();
  n.set_dhcp_hostname(mac("52:54:00:00:00:01"), "same");
  n.lease_bound(mac("52:54:00:00:00:01"), addr("10.0.2.15"));
  EXPECT_EQ(n.generation(), g);
}

}  // namespace
}  // namespace qswitch::slirp
