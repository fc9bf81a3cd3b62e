// tests/integration/port_security_test.cc: port security on a running qswitch, over real
// sockets (switch/port_security.h): a port added with port-security=on sends from its first MAC
// only, no other port can take that MAC, its ARP must name it, every drop shows in its
// drop_mac_spoof counter, and `ports` shows what it holds.
#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

class PortSecurityTest : public SwitchFixture {
 protected:
  ::testing::AssertionResult wait_spoofs(uint32_t id, uint64_t value) {
    return wait_port_counter(id, "drop_mac_spoof", value);
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
      EXPECT_EQ(row["port_security"], json({{"max_macs", 1}, {"macs", {mac_to_string(a)}}})) << row;
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

}  // namespace
}  // namespace qswitch::integration
