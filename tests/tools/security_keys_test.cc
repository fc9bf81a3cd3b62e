// tests/tools/security_keys_test.cc: the port-security=, mac=, max-macs= and ip= keys
// (tools/qswitch/config/security_keys.h): taken out of a port spec, resolved to a
// sw::PortSecurity, every bad value and contradiction refused by name.
#include "tools/qswitch/config/security_keys.h"

#include <gtest/gtest.h>

#include <string>

namespace qswitch::tools {
namespace {

struct Taken {
  bool ok = false;
  std::string rest;
  sw::PortSecurity security;
  std::string error;
};

Taken take(std::string_view text) {
  Taken t;
  SecurityKeys keys;
  t.ok = take_security_keys(text, t.rest, keys, t.error) && keys.resolve(t.security, t.error);
  return t;
}

sw::MacAddress mac(const char* text) { return *sw::MacAddress::parse(text); }

TEST(SecurityKeysTest, WithoutKeysThePortIsNotSecured) {
  const Taken t = take("unix:/tmp/a.sock,vlan=10");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/a.sock,vlan=10");
  EXPECT_FALSE(t.security.enabled);
}

TEST(SecurityKeysTest, PortSecurityOnHoldsTheFirstMacSeen) {
  const Taken t = take("port-security=on,unix:/tmp/a.sock");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/a.sock");
  EXPECT_TRUE(t.security.enabled);
  EXPECT_EQ(t.security.max_macs, 1u);
  EXPECT_TRUE(t.security.macs.empty());
}

TEST(SecurityKeysTest, GivenMacsAndMaxMacsTurnItOn) {
  Taken t = take("unix:/tmp/a.sock,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02,vlan=10");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/a.sock,vlan=10");
  EXPECT_TRUE(t.security.enabled);
  EXPECT_EQ(t.security.macs,
            (std::vector<sw::MacAddress>{mac("52:54:00:00:00:01"), mac("52:54:00:00:00:02")}));
  EXPECT_EQ(t.security.max_macs, 2u);
  t = take("unix:/tmp/a.sock,max-macs=4");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_TRUE(t.security.enabled);
  EXPECT_EQ(t.security.max_macs, 4u);
  t = take("unix:/tmp/a.sock,port-security=off");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_FALSE(t.security.enabled);
}

TEST(SecurityKeysTest, IpAddressesAreRepeatableBothFamiliesAndTurnItOn) {
  const Taken t = take("unix:/tmp/a.sock,ip=10.0.2.50,vlan=10,ip=FEC0::50");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/a.sock,vlan=10");
  EXPECT_TRUE(t.security.enabled);
  EXPECT_EQ(t.security.max_macs, 1u);
  EXPECT_EQ(t.security.ips, (std::vector<sw::IpAddress>{*sw::IpAddress::parse("10.0.2.50"),
                                                        *sw::IpAddress::parse("fec0::50")}));
}

TEST(SecurityKeysTest, AtMostKMaxSecuredIpsAddresses) {
  std::string spec = "unix:/x";
  for (uint32_t i = 0; i < sw::kMaxSecuredIps; ++i) spec += ",ip=10.0.3." + std::to_string(i + 1);
  EXPECT_TRUE(take(spec).ok);
  const Taken t = take(spec + ",ip=10.0.4.1");
  EXPECT_FALSE(t.ok);
  EXPECT_NE(t.error.find("ip=10.0.4.1: at most 64 ip= addresses per port"), std::string::npos)
      << t.error;
}

TEST(SecurityKeysTest, RefusesBadValuesAndContradictionsNamingTheKey) {
  struct Case {
    const char* spec;
    const char* says;
  };
  for (const Case& c :
       {Case{"unix:/x,port-security=yes", "port-security=yes: expected on or off"},
        Case{"unix:/x,mac=01:00:5e:00:00:01", "mac=01:00:5e:00:00:01: expected a unicast MAC"},
        Case{"unix:/x,mac=nope", "mac=nope"},
        Case{"unix:/x,max-macs=0", "max-macs=0: expected a number of MACs from 1 to 64"},
        Case{"unix:/x,max-macs=65", "from 1 to 64"},
        Case{"unix:/x,max-macs=1,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02",
             "max-macs=1 is fewer than the 2 MACs"},
        Case{"unix:/x,port-security=off,mac=52:54:00:00:00:01", "port-security=off contradicts"},
        Case{"unix:/x,port-security=on,port-security=on", "given twice"},
        Case{"unix:/x,mac=52:54:00:00:00:01,mac=52:54:00:00:00:01", "given twice"},
        Case{"unix:/x,ip=10.0.2",
             "ip=10.0.2: expected a unicast IPv4 or IPv6 address like "
             "10.0.2.15 or fec0::15"},
        Case{"unix:/x,ip=10.0.2.15/24", "ip=10.0.2.15/24: expected a unicast"},
        Case{"unix:/x,ip=0.0.0.0", "ip=0.0.0.0: expected a unicast"},
        Case{"unix:/x,ip=224.0.0.1", "ip=224.0.0.1: expected a unicast"},
        Case{"unix:/x,ip=255.255.255.255", "expected a unicast"},
        Case{"unix:/x,ip=ff02::1", "ip=ff02::1: expected a unicast"},
        Case{"unix:/x,ip=fe80::1",
             "ip=fe80::1: link-local IPv6 addresses (fe80::/10) are always "
             "allowed"},
        Case{"unix:/x,ip=10.0.2.15,ip=10.0.2.15", "ip=10.0.2.15: this address is given twice"},
        Case{"unix:/x,port-security=off,ip=10.0.2.15", "port-security=off contradicts ip="}}) {
    const Taken t = take(c.spec);
    EXPECT_FALSE(t.ok) << c.spec;
    EXPECT_NE(t.error.find(c.says), std::string::npos) << c.spec << ": " << t.error;
  }
}

}  // namespace
}  // namespace qswitch::tools
