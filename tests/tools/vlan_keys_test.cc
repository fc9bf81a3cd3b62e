// tests/tools/vlan_keys_test.cc: the vlan=, trunk= and native= keys every way of making a port
// takes (tools/qswitch/config/vlan_keys.h): taken out of a port spec among the kind's own keys,
// a trunk list's comma-separated items, every contradiction and bad value refused by name.
#include "tools/qswitch/config/vlan_keys.h"

#include <gtest/gtest.h>

#include <string>

namespace qswitch::tools {
namespace {

struct Taken {
  bool ok = false;
  std::string rest;
  sw::VlanMembership vlans;
  std::string error;
};

Taken take(std::string_view text) {
  Taken t;
  t.vlans = sw::VlanMembership::access(99);  // must be replaced on success
  t.ok = take_vlan_keys(text, t.rest, t.vlans, t.error);
  return t;
}

sw::VlanSet set(std::string_view text) {
  sw::VlanSet s;
  std::string error;
  EXPECT_TRUE(sw::parse_vlan_list(text, s, error)) << error;
  return s;
}

TEST(VlanKeysTest, WithoutKeysTheSpecIsUntouchedAndThePortOnVlan1) {
  for (const char* spec :
       {"unix:/tmp/a.sock", "tcp:127.0.0.1:5000", "mcast:230.0.0.1:1234,localaddr=127.0.0.1",
        "vni=42,local=127.0.0.1,remote=127.0.0.2", "unix:/tmp/a,,b"}) {
    const Taken t = take(spec);
    ASSERT_TRUE(t.ok) << spec << ": " << t.error;
    EXPECT_EQ(t.rest, spec);
    EXPECT_EQ(t.vlans, sw::VlanMembership::access(1)) << spec;
  }
}

TEST(VlanKeysTest, TakesAnAccessVlanFromAnywhereInTheSpec) {
  Taken t = take("unix:/tmp/lab.sock,vlan=10");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/lab.sock");
  EXPECT_EQ(t.vlans, sw::VlanMembership::access(10));
  t = take("vni=42,vlan=20,local=127.0.0.1,remote=127.0.0.2");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "vni=42,local=127.0.0.1,remote=127.0.0.2");
  EXPECT_EQ(t.vlans, sw::VlanMembership::access(20));
  t = take("vlan=4094,fd=3");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "fd=3");
  EXPECT_EQ(t.vlans, sw::VlanMembership::access(4094));
}

TEST(VlanKeysTest, ATrunkListRunsOverCommasUntilTheNextKey) {
  Taken t = take("unix:/tmp/t.sock,trunk=10,20-29,native=1");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/tmp/t.sock");
  EXPECT_EQ(t.vlans, sw::VlanMembership::make_trunk(set("10,20-29"), 1));
  t = take("mcast:230.0.0.1:1234,trunk=10,30,localaddr=127.0.0.1");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "mcast:230.0.0.1:1234,localaddr=127.0.0.1");
  EXPECT_EQ(t.vlans, sw::VlanMembership::make_trunk(set("10,30")));
  EXPECT_EQ(t.vlans.untagged, 0);  // no native VLAN: untagged frames are dropped
  t = take("native=5,unix:/x,trunk=7");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(t.rest, "unix:/x");
  EXPECT_EQ(t.vlans, sw::VlanMembership::make_trunk(set("7"), 5));
}

TEST(VlanKeysTest, RefusesBadValuesAndContradictionsNamingTheKey) {
  struct Case {
    const char* spec;
    const char* says;
  };
  for (const Case& c :
       {Case{"unix:/x,vlan=0", "vlan=0: \"0\" is not a VLAN id (1..4094)"},
        Case{"unix:/x,vlan=4095", "(1..4094)"}, Case{"unix:/x,vlan=ten", "vlan=ten"},
        Case{"unix:/x,vlan=", "vlan=: \"\" is not a VLAN id (1..4094)"},
        Case{"unix:/x,trunk=", "trunk=: an empty VLAN list"}, Case{"unix:/x,trunk=10,5000", "5000"},
        Case{"unix:/x,trunk=30-20", "empty range"},
        Case{"unix:/x,vlan=10,trunk=20", "exclude each other"},
        Case{"unix:/x,vlan=10,native=1", "exclude each other"},
        Case{"unix:/x,native=1", "native=1: a native VLAN is a trunk's"},
        Case{"unix:/x,vlan=10,vlan=20", "vlan= is given twice"},
        Case{"unix:/x,trunk=10,trunk=20", "trunk= is given twice"},
        Case{"unix:/x,trunk=10,native=0", "native=0"}}) {
    const Taken t = take(c.spec);
    EXPECT_FALSE(t.ok) << c.spec;
    EXPECT_NE(t.error.find(c.says), std::string::npos) << c.spec << ": " << t.error;
    EXPECT_EQ(t.vlans, sw::VlanMembership::access(99)) << c.spec << ": changed on error";
  }
}

TEST(VlanKeysTest, KeysOneByOneResolveAsTheSpecDoes) {
  VlanKeys k;
  std::string error;
  ASSERT_TRUE(k.set("trunk", "10,20", error)) << error;
  ASSERT_TRUE(k.set("native", "3", error)) << error;
  sw::VlanMembership m;
  ASSERT_TRUE(k.resolve(m, error)) << error;
  EXPECT_EQ(m, sw::VlanMembership::make_trunk(set("10,20"), 3));
  EXPECT_EQ(m.to_string(), "trunk 10,20 native 3");
  VlanKeys none;
  ASSERT_TRUE(none.resolve(m, error));
  EXPECT_EQ(m, sw::VlanMembership::access(1));
  EXPECT_FALSE(none.any());
  VlanKeys bad;
  EXPECT_FALSE(bad.set("colour", "10", error));
  EXPECT_NE(error.find("expected vlan=, trunk= or native="), std::string::npos) << error;
}

}  // namespace
}  // namespace qswitch::tools
