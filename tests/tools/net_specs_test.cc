// tests/tools/net_specs_test.cc: --tap and --vxlan values into typed specs, and the errors that
// name what was wrong (and what --dgram and --listen/--connect refuse).
#include "tools/qswitch/config/net_specs.h"

#include "backends/runtime/io/socket_address.h"
#include "backends/vxlan/vxlan_port.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/options.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

namespace qswitch::tools {
namespace {

std::string text(const sockaddr_storage& a) { return io::sockaddr_text(a); }

TEST(NetSpecsTest, TapNameIsTaken) {
  std::string error;
  const auto spec = parse_tap_spec("qs0", error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->name, "qs0");
  EXPECT_EQ(spec->fd, -1);
}

TEST(NetSpecsTest, TapFdIsTaken) {
  std::string error;
  const auto spec = parse_tap_spec("fd=7", error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->fd, 7);
}

TEST(NetSpecsTest, BadTapValuesAreRefusedWithTheValueNamed) {
  for (const char* bad : {"", ".", "..", "a/b", "a:b", "has space", "sixteen-chars-xx",
                          "fd=", "fd=-1", "fd=x", "fd=99999999999"}) {
    std::string error;
    EXPECT_FALSE(parse_tap_spec(bad, error)) << bad;
    EXPECT_NE(error.find(bad), std::string::npos) << bad << ": " << error;
    EXPECT_NE(error.find("fd=N"), std::string::npos) << error;
  }
}

TEST(NetSpecsTest, VxlanWithDefaultsAndSeveralRemotes) {
  std::string error;
  const auto c =
      parse_vxlan_spec("vni=42,local=10.1.1.1,remote=10.1.1.2,remote=10.1.1.3:5000", error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->vni, 42u);
  EXPECT_EQ(text(c->local), "10.1.1.1:4789");
  EXPECT_EQ(c->local_len, sizeof(sockaddr_in));
  ASSERT_EQ(c->remotes.size(), 2u);
  EXPECT_EQ(text(c->remotes[0].addr), "10.1.1.2:4789");
  EXPECT_EQ(text(c->remotes[1].addr), "10.1.1.3:5000");
  EXPECT_EQ(c->remotes[1].len, sizeof(sockaddr_in));
  EXPECT_EQ(backends::to_string(*c),
            "vni=42 local=10.1.1.1:4789 remote=10.1.1.2:4789 remote=10.1.1.3:5000");
}

TEST(NetSpecsTest, VxlanKeysInAnyOrderAndVniBounds) {
  std::string error;
  auto c = parse_vxlan_spec("remote=127.0.0.2:4790,local=127.0.0.1:0,vni=16777215", error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->vni, 16777215u);
  EXPECT_EQ(text(c->local), "127.0.0.1:0");
  c = parse_vxlan_spec("vni=0,local=127.0.0.1:4789,remote=127.0.0.2", error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->vni, 0u);
}

TEST(NetSpecsTest, VxlanIpv6InBrackets) {
  std::string error;
  const auto c = parse_vxlan_spec("vni=7,local=[::1]:4789,remote=[fd00::2],remote=fd00::3", error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->local.ss_family, AF_INET6);
  EXPECT_EQ(c->local_len, sizeof(sockaddr_in6));
  EXPECT_EQ(text(c->local), "[::1]:4789");
  ASSERT_EQ(c->remotes.size(), 2u);
  EXPECT_EQ(text(c->remotes[0].addr), "[fd00::2]:4789");
  EXPECT_EQ(text(c->remotes[1].addr), "[fd00::3]:4789");
}

struct BadVxlan {
  const char* spec;
  const char* mentions;  // the error must contain this
};

TEST(NetSpecsTest, BadVxlanValuesAreRefusedWithTheItemNamed) {
  const BadVxlan cases[] = {
      {"vni=16777216,local=10.0.0.1,remote=10.0.0.2", "vni=16777216"},
      {"vni=-1,local=10.0.0.1,remote=10.0.0.2", "vni=-1"},
      {"vni=x,local=10.0.0.1,remote=10.0.0.2", "0..16777215"},
      {"local=10.0.0.1,remote=10.0.0.2", "missing vni=N"},
      {"vni=1,remote=10.0.0.2", "missing local="},
      {"vni=1,local=10.0.0.1", "missing remote="},
      {"vni=1,local=host.example,remote=10.0.0.2", "local=host.example"},
      {"vni=1,local=10.0.0.1:70000,remote=10.0.0.2", "0..65535"},
      {"vni=1,local=10.0.0.1:,remote=10.0.0.2", "empty port"},
      {"vni=1,local=10.0.0.1,remote=10.0.0.2:0", "remote=10.0.0.2:0"},
      {"vni=1,local=10.0.0.1,remote=0.0.0.0", "unspecified"},
      {"vni=1,local=10.0.0.1,remote=10.0.0.2,remote=10.0.0.2:4789", "twice"},
      {"vni=1,local=10.0.0.1,remote=[::1]", "family"},
      {"vni=1,local=[::1,remote=[::2]", "']'"},
      {"vni=1,local=10.0.0.1,remote=10.0.0.2,colour=blue", "unknown key 'colour'"},
      {"vni=1,,local=10.0.0.1,remote=10.0.0.2", "not key=value"},
      {"vni=1,vni=2,local=10.0.0.1,remote=10.0.0.2", "twice"},
      {"", "not key=value"},
  };
  for (const BadVxlan& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_vxlan_spec(c.spec, error)) << c.spec;
    EXPECT_NE(error.find(c.mentions), std::string::npos) << c.spec << " -> " << error;
  }
}

TEST(NetSpecsTest, AtMost64Remotes) {
  std::string spec = "vni=1,local=10.0.0.1";
  for (int i = 1; i <= 65; ++i) spec += ",remote=10.0.1." + std::to_string(i);
  std::string error;
  EXPECT_FALSE(parse_vxlan_spec(spec, error));
  EXPECT_NE(error.find("at most 64"), std::string::npos) << error;
}

// Found by tests/fuzz/net_specs_fuzz and dgram_spec_fuzz: text after a NUL byte was silently
// ignored (inet_pton, strtoull and the socket calls stop at it). Such text can only come from a
// JSON string on the control socket (port.add); it is refused.
TEST(NetSpecsTest, NulByteAnywhereIsRefused) {
  using namespace std::string_literals;
  std::string error;
  EXPECT_FALSE(parse_vxlan_spec("local=::,vni=1,remote=::1\0\0"s, error));
  EXPECT_NE(error.find("NUL"), std::string::npos) << error;
  EXPECT_FALSE(parse_vxlan_spec("vni=1,local=10.0.0.1\0x,remote=10.0.0.2"s, error));
  EXPECT_FALSE(parse_tap_spec("qs\0"s, error));
  for (const std::string& spec :
       {"mcast:230.0.0.1:12\0004,localaddr=127.0.0.1"s, "unix:/tmp/a\0b"s, "udp:127.0.0.1:5000\0"s,
        "udp:127.0.0.1:5000-127.0.0.1\0:5001"s, "mcast:230.0.0.1:1234,localaddr=127.0.0.1\0x"s}) {
    error.clear();
    EXPECT_FALSE(parse_dgram_spec(spec, error)) << spec;
    EXPECT_NE(error.find("NUL"), std::string::npos) << error;
  }
  for (const std::string& spec :
       {"unix:/tmp/a\0b"s, "tcp:127.0.0.1\0junk:80"s, "tcp:127.0.0.1:8\0"s}) {
    error.clear();
    EXPECT_FALSE(parse_socket_address(spec, error)) << spec;
    EXPECT_NE(error.find("NUL"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace qswitch::tools
