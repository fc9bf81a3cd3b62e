// tests/tools/security_keys_test.cc: the port-security=, mac= and max-macs= keys
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
        Case{"unix:/x,mac=52:54:00:00:00:01,mac=52:54:00:00:00:01", "given twice"}}) {
    const Taken t = take(c.spec);
    EXPECT_FALSE(t.ok) << c.spec;
    EXPECT_NE(t.error.find(c.says), std::string::npos) << c.spec << ": " << t.error;
  }
}

}  // namespace
}  // namespace qswitch::tools
