// tests/integration/port_security_test.cc: port security on a running qswitch, over real
// sockets (switch/port_security.h): a port added with port-security=on sends from its first MAC
// only, no other port can take that MAC, its ARP must name it, every drop shows in its
// drop_mac_spoof counter, and `ports` shows what it holds. The IP half: a secured port that got a
// DHCP lease from the slirp port sends from that address only (its other IPv4 sources and ARP
// claims dropped, drop_ip_spoof), loses it when it releases the lease, and without a slirp port
// only its MACs are checked.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/dhcp_client.h"
#include "tests/support/ip_frames.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::ipv4;
using test_support::ipv4_to_string;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::make_udp_frame;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr uint32_t kGateway = ipv4(10, 0, 2, 2);
const test_support::DhcpExpect kExpect{.server_mac = kSlirpMac,
                                       .server_id = kGateway,
                                       .router = kGateway,
                                       .dns = ipv4(10, 0, 2, 3),
                                       .netmask = ipv4(255, 255, 255, 0)};

// A UDP broadcast from `mac`, IPv4 source `ip`, tagged with `seq` in its payload.
std::vector<uint8_t> udp_from(const Mac& mac, uint32_t ip, uint8_t seq) {
  const std::vector<uint8_t> payload(32, seq);
  return make_udp_frame(kBroadcastMac, mac, ip, ipv4(10, 0, 2, 255), 4000, 4001, payload);
}

// SLAAC's address for `mac` under fec0::/64 (libslirp's default prefix): RFC 4291 appendix A.
std::string slaac_of(const Mac& mac) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "fec0::%x:%x:%x:%x", ((mac[0] ^ 2) << 8) | mac[1],
                (mac[2] << 8) | 0xff, 0xfe00 | mac[3], (mac[4] << 8) | mac[5]);
  return buf;
}

class PortSecurityTest : public SwitchFixture {
 protected:
  ::testing::AssertionResult wait_spoofs(uint32_t id, uint64_t value) {
    return wait_port_counter(id, "drop_mac_spoof", value);
  }
  // Port `id`'s `ports` row.
  json port_row(uint32_t id) {
    for (const json& row : control_result(sw_, {{"cmd", "ports"}})) {
      if (row["id"] == id) return row;
    }
    ADD_FAILURE() << "no port " << id;
    return json();
  }
  // Waits until port `id`'s allowed addresses include (or no longer include) `address` from
  // `from`: 100 looks, each after a control round trip.
  ::testing::AssertionResult wait_allowed(uint32_t id, const std::string& address,
                                          const std::string& from, bool present) {
    json last;
    for (int i = 0; i < 100; ++i) {
      last = port_row(id)["port_security"];
      bool found = false;
      for (const json& a : last.value("addresses", json::array())) {
        found = found || (a.value("address", "") == address && a.value("from", "") == from);
      }
      if (found == present) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << address << " (" << from << ") " << (present ? "never appeared" : "stayed") << " in "
           << last.dump();
  }
  // No frame from `mac` reaches `client` within `window` (other frames, the slirp port's router
  // advertisements, are skipped).
  static ::testing::AssertionResult nothing_from(FrameClient& client, const Mac& mac,
                                                 Millis window = 300ms) {
    for (int i = 0; i < 100; ++i) {
      const RecvResult r = client.recv_frame(window);
      if (!r.ok()) return ::testing::AssertionSuccess();  // the window passed: silence
      if (r.frame.size() >= 12 && std::memcmp(r.frame.data() + 6, mac.data(), 6) == 0) {
        return ::testing::AssertionFailure() << "a frame from the secured port crossed";
      }
    }
    return ::testing::AssertionFailure() << "a flood of frames";
  }
  // The next frame from `mac` that reaches `client` (skipping others), or an empty one.
  static std::vector<uint8_t> next_from(FrameClient& client, const Mac& mac) {
    for (int i = 0; i < 100; ++i) {
      RecvResult r = client.recv_frame(3s);
      if (!r.ok()) return {};
      if (r.frame.size() >= 12 && std::memcmp(r.frame.data() + 6, mac.data(), 6) == 0) {
        return std::move(r.frame);
      }
    }
    return {};
  }
};

// An ARP request from `src` whose sender hardware address is `sender`.
std::vector<uint8_t> arp_request(const Mac& src, const Mac& sender) {
  std::vector<uint8_t> f(60, 0);
  std::memcpy(f.data(), kBroadcastMac.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  const uint8_t head[10] = {0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1};
  std::memcpy(f.data() + 12, head, sizeof head);
  std::memcpy(f.data() + 22, sender.data(), 6);
  f[28] = 10;  // sender IP 10.0.0.1, target 10.0.0.2
  f[31] = 1;
  f[38] = 10;
  f[41] = 2;
  return f;
}

TEST_F(PortSecurityTest, ASecuredPortKeepsItsOneMacAndNobodyElseGetsIt) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  const std::string secured = "unix:" + tmp_.path() + "/secured.sock";
  control_result(sw_, {{"cmd", "port.add"},
                       {"args", {{"mode", "listen"}, {"address", secured + ",port-security=on"}}}});
  std::vector<FrameClient> s, o;
  ASSERT_TRUE(connect_clients(1, &s, secured));
  ASSERT_TRUE(connect_clients(2, &o));
  ASSERT_TRUE(wait_port_count(3));
  const Mac a = test_mac(1), b = test_mac(2), other = test_mac(3);

  // Its first MAC crosses (to both others: a broadcast); a second one does not.
  ASSERT_TRUE(send_and_expect(s[0], o[0], kBroadcastMac, a, 100, 1));
  ASSERT_TRUE(o[1].recv_frame(3s).ok());
  uint32_t s_id = 0;
  ASSERT_TRUE(port_id(a, &s_id));
  ASSERT_TRUE(s[0].send_frame(make_frame(kBroadcastMac, b, 100, 2)));
  EXPECT_TRUE(wait_spoofs(s_id, 1));
  EXPECT_TRUE(expect_silence(o[0], "o[0]"));
  EXPECT_TRUE(expect_silence(o[1], "o[1]"));

  // Another port sending from the secured MAC is dropped; the MAC stays where it was.
  ASSERT_TRUE(send_and_expect(o[1], o[0], kBroadcastMac, other, 80, 3));
  ASSERT_TRUE(s[0].recv_frame(3s).ok());
  uint32_t o1_id = 0;
  ASSERT_TRUE(port_id(other, &o1_id));
  ASSERT_TRUE(o[1].send_frame(make_frame(kBroadcastMac, a, 100, 4)));
  EXPECT_TRUE(wait_spoofs(o1_id, 1));
  ASSERT_TRUE(send_and_expect(o[1], s[0], a, other, 120, 5));  // unicast to A: the secured port

  // ARP from the secured port must name its MAC.
  ASSERT_TRUE(s[0].send_frame(arp_request(a, b)));
  EXPECT_TRUE(wait_spoofs(s_id, 2));
  ASSERT_TRUE(s[0].send_frame(arp_request(a, a)));
  const RecvResult r = o[0].recv_frame(3s);
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.frame, arp_request(a, a));  // the spoofed one never came
  ASSERT_TRUE(o[1].recv_frame(3s).ok());

  // `ports`: the secured port holds A, one MAC at most; the others are not secured.
  for (const json& row : control_result(sw_, {{"cmd", "ports"}})) {
    if (row["id"] == s_id) {
      EXPECT_EQ(row["port_security"], json({{"max_macs", 1},
                                            {"macs", {mac_to_string(a)}},
                                            {"ip_check", false},
                                            {"addresses", json::array()}}))
          << row;
    } else {
      EXPECT_TRUE(row["port_security"].is_null()) << row;
    }
  }
}

TEST_F(PortSecurityTest, AGivenMacIsHeldBeforeTheGuestSpeaksAndBadKeysAreRefused) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  const Mac given = test_mac(7);
  const std::string secured = "unix:" + tmp_.path() + "/given.sock";
  control_result(
      sw_, {{"cmd", "port.add"},
            {"args", {{"mode", "listen"}, {"address", secured}, {"mac", mac_to_string(given)}}}});
  std::vector<FrameClient> s, o;
  ASSERT_TRUE(connect_clients(1, &s, secured));
  ASSERT_TRUE(connect_clients(1, &o));
  ASSERT_TRUE(wait_port_count(2));
  ASSERT_TRUE(s[0].send_frame(make_frame(kBroadcastMac, test_mac(1), 100, 1)));  // not its MAC
  ASSERT_TRUE(send_and_expect(s[0], o[0], kBroadcastMac, given, 100, 2));
  std::string error;
  auto c = ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(c) << error;
  for (const json& args :
       {json{{"mode", "listen"}, {"address", secured + "2,max-macs=0"}},
        json{{"mode", "listen"}, {"address", secured + "3"}, {"port-security", "maybe"}},
        json{{"mode", "listen"}, {"address", secured + "4"}, {"mac", 5}}}) {
    const test_support::LineResult r =
        c->request(json({{"cmd", "port.add"}, {"args", args}}).dump());
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(json::parse(r.line).value("ok", true)) << r.line;
  }
  EXPECT_EQ(control_result(sw_, {{"cmd", "ports"}}).size(), 2u);  // nothing was added
}

TEST_F(PortSecurityTest, ASecuredPortSendsOnlyFromTheAddressTheSlirpPortsDhcpLeasedIt) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  const std::string secured = "unix:" + tmp_.path() + "/secured.sock";
  control_result(sw_, {{"cmd", "port.add"},
                       {"args", {{"mode", "listen"}, {"address", secured + ",port-security=on"}}}});
  std::vector<FrameClient> s, o;
  ASSERT_TRUE(connect_clients(1, &s, secured));
  const Mac a = test_mac(1);
  std::string why;
  const std::optional<test_support::DhcpExchange> ex =
      test_support::run_dhcp_exchange(s[0], a, 0x5ec0001u, false, kExpect, 5s, &why);
  ASSERT_TRUE(ex.has_value()) << why;
  const uint32_t leased = ex->address();
  EXPECT_EQ(ipv4_to_string(leased), "10.0.2.15");
  uint32_t s_id = 0;
  ASSERT_TRUE(port_id(a, &s_id));
  // `ports` shows what it may use: its lease and its SLAAC address, checked.
  ASSERT_TRUE(wait_allowed(s_id, "10.0.2.15", "dhcp", true));
  const json security = port_row(s_id)["port_security"];
  EXPECT_EQ(security["ip_check"], true) << security;
  EXPECT_EQ(security["addresses"],
            json::array({{{"address", "10.0.2.15"}, {"from", "dhcp"}, {"vlan", 1}},
                         {{"address", slaac_of(a)}, {"from", "slaac"}, {"vlan", 1}}}))
      << security;

  ASSERT_TRUE(connect_clients(1, &o));
  ASSERT_TRUE(wait_port_count(3));  // slirp, s, o
  // From its lease: crosses.
  ASSERT_TRUE(s[0].send_frame(udp_from(a, leased, 1)));
  EXPECT_EQ(next_from(o[0], a), udp_from(a, leased, 1));
  // From another address, and an ARP reply claiming the gateway's: dropped and counted.
  ASSERT_TRUE(s[0].send_frame(udp_from(a, ipv4(10, 0, 2, 99), 2)));
  EXPECT_TRUE(wait_port_counter(s_id, "drop_ip_spoof", 1));
  ASSERT_TRUE(s[0].send_frame(test_support::make_arp_reply(a, kGateway, test_mac(2), leased)));
  EXPECT_TRUE(wait_port_counter(s_id, "drop_ip_spoof", 2));
  EXPECT_TRUE(nothing_from(o[0], a));
  // Its own ARP crosses.
  ASSERT_TRUE(s[0].send_frame(test_support::make_arp_request(a, leased, kGateway)));
  const std::vector<uint8_t> arp = test_support::make_arp_request(a, leased, kGateway);
  std::vector<uint8_t> got = next_from(o[0], a);
  ASSERT_GE(got.size(), arp.size());
  got.resize(arp.size());  // the client pads it to 60 bytes
  EXPECT_EQ(got, arp);
  EXPECT_EQ(port_row(s_id)["counters"]["drop_mac_spoof"], 0u);
  EXPECT_EQ(control_result(sw_, {{"cmd", "stats"}})["ip_spoofs"], 2u);

  // It releases the lease: the address is no longer its.
  test_support::DhcpClientMessage release;
  release.mac = a;
  release.xid = 0x5ec0002u;
  release.type = test_support::DhcpType::kRelease;
  release.ciaddr = leased;
  release.server_id = kGateway;
  ASSERT_TRUE(s[0].send_frame(test_support::make_dhcp_frame(release)));
  EXPECT_EQ(next_from(o[0], a), test_support::make_dhcp_frame(release));  // from 0.0.0.0: DHCP
  ASSERT_TRUE(wait_allowed(s_id, "10.0.2.15", "dhcp", false));
  ASSERT_TRUE(s[0].send_frame(udp_from(a, leased, 3)));
  EXPECT_TRUE(wait_port_counter(s_id, "drop_ip_spoof", 3));
  EXPECT_TRUE(nothing_from(o[0], a));
}

TEST_F(PortSecurityTest, ALeaseHoldsInTheVlanOfTheSlirpPortThatGaveIt) {
  // Two slirp ports, VLAN 10 and VLAN 20; the secured guest is on VLAN 10.
  ASSERT_TRUE(start_switch({"--slirp", "vlan=10,net=10.0.10.0/24,restrict=on", "--slirp",
                            "vlan=20,net=10.0.20.0/24,restrict=on"}));
  const std::string secured = "unix:" + tmp_.path() + "/secured10.sock";
  const std::string plain = "unix:" + tmp_.path() + "/plain10.sock";
  control_result(
      sw_,
      {{"cmd", "port.add"},
       {"args", {{"mode", "listen"}, {"address", secured + ",vlan=10"}, {"port-security", true}}}});
  control_result(
      sw_, {{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", plain + ",vlan=10"}}}});
  std::vector<FrameClient> s, o;
  ASSERT_TRUE(connect_clients(1, &s, secured));
  const Mac a = test_mac(1);
  const test_support::DhcpExpect expect10{.server_mac = {0x52, 0x55, 0x0a, 0x00, 0x0a, 0x02},
                                          .server_id = ipv4(10, 0, 10, 2),
                                          .router = ipv4(10, 0, 10, 2),
                                          .dns = ipv4(10, 0, 10, 3),
                                          .netmask = ipv4(255, 255, 255, 0)};
  std::string why;
  const std::optional<test_support::DhcpExchange> ex =
      test_support::run_dhcp_exchange(s[0], a, 0x5ec1001u, false, expect10, 5s, &why);
  ASSERT_TRUE(ex.has_value()) << why;
  ASSERT_EQ(ipv4_to_string(ex->address()), "10.0.10.15");
  uint32_t s_id = 0;
  ASSERT_TRUE(port_id(a, &s_id));
  ASSERT_TRUE(wait_allowed(s_id, "10.0.10.15", "dhcp", true));
  const json security = port_row(s_id)["port_security"];
  EXPECT_EQ(security["addresses"][0],
            json({{"address", "10.0.10.15"}, {"from", "dhcp"}, {"vlan", 10}}))
      << security;
  ASSERT_TRUE(connect_clients(1, &o, plain));
  ASSERT_TRUE(wait_port_count(4));  // two slirp ports, s, o
  ASSERT_TRUE(s[0].send_frame(udp_from(a, ex->address(), 1)));
  EXPECT_EQ(next_from(o[0], a), udp_from(a, ex->address(), 1));
  // VLAN 20's first address is not its (nor anything VLAN 20's slirp port gave).
  ASSERT_TRUE(s[0].send_frame(udp_from(a, ipv4(10, 0, 20, 15), 2)));
  EXPECT_TRUE(wait_port_counter(s_id, "drop_ip_spoof", 1));
  EXPECT_TRUE(nothing_from(o[0], a));
}

TEST_F(PortSecurityTest, WithoutASlirpPortOnlyMacsAreCheckedUnlessIpIsGiven) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  const std::string plain = "unix:" + tmp_.path() + "/plain.sock";
  const std::string given = "unix:" + tmp_.path() + "/given.sock";
  control_result(sw_, {{"cmd", "port.add"},
                       {"args", {{"mode", "listen"}, {"address", plain + ",port-security=on"}}}});
  control_result(sw_, {{"cmd", "port.add"},
                       {"args", {{"mode", "listen"}, {"address", given}, {"ip", "192.0.2.7"}}}});
  std::vector<FrameClient> p, g, o;
  ASSERT_TRUE(connect_clients(1, &p, plain));
  ASSERT_TRUE(connect_clients(1, &g, given));
  ASSERT_TRUE(connect_clients(1, &o));
  ASSERT_TRUE(wait_port_count(3));
  const Mac a = test_mac(1), b = test_mac(2);
  ASSERT_TRUE(p[0].send_frame(udp_from(a, ipv4(192, 0, 2, 50), 1)));
  EXPECT_EQ(next_from(o[0], a), udp_from(a, ipv4(192, 0, 2, 50), 1));
  uint32_t p_id = 0, g_id = 0;
  ASSERT_TRUE(port_id(a, &p_id));
  const json plain_security = port_row(p_id)["port_security"];
  EXPECT_EQ(plain_security["ip_check"], false) << plain_security;
  EXPECT_EQ(plain_security["addresses"], json::array()) << plain_security;

  ASSERT_TRUE(g[0].send_frame(udp_from(b, ipv4(192, 0, 2, 7), 2)));
  EXPECT_EQ(next_from(o[0], b), udp_from(b, ipv4(192, 0, 2, 7), 2));
  ASSERT_TRUE(port_id(b, &g_id));
  ASSERT_TRUE(g[0].send_frame(udp_from(b, ipv4(192, 0, 2, 8), 3)));
  EXPECT_TRUE(wait_port_counter(g_id, "drop_ip_spoof", 1));
  EXPECT_TRUE(nothing_from(o[0], b));
  const json given_security = port_row(g_id)["port_security"];
  EXPECT_EQ(given_security["ip_check"], true) << given_security;
  EXPECT_EQ(given_security["addresses"], json::array({{{"address", "192.0.2.7"}, {"from", "ip="}}}))
      << given_security;
}

}  // namespace
}  // namespace qswitch::integration
