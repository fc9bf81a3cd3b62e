// tests/integration/vlan_test.cc: 802.1Q VLANs on a running qswitch, over real sockets: the
// forwarding matrix of access ports, a trunk and its native VLAN (which client gets which frame,
// tagged or not, byte for byte), the drops and their counters, per-VLAN learning, and what
// `ports`, `macs` and `vlans` say. Ports are placed with `port.add` and its VLAN keys.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
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

using Bytes = std::vector<uint8_t>;

// `frame` with an 802.1Q tag (TCI `tci`) after its MACs.
Bytes tagged(const Bytes& frame, uint16_t tci) {
  Bytes b(frame.size() + 4);
  std::copy(frame.begin(), frame.begin() + 12, b.begin());
  b[12] = 0x81;
  b[13] = 0x00;
  b[14] = static_cast<uint8_t>(tci >> 8);
  b[15] = static_cast<uint8_t>(tci);
  std::copy(frame.begin() + 12, frame.end(), b.begin() + 16);
  return b;
}

class VlanTest : public SwitchFixture {
 protected:
  // A listener at <tmp>/NAME.sock whose ports carry what `keys` says ("vlan=10").
  std::string add_listener(const std::string& name, const std::string& keys) {
    const std::string address = "unix:" + tmp_.path() + "/" + name + ".sock";
    control_result(sw_, {{"cmd", "port.add"},
                         {"args", {{"mode", "listen"}, {"address", address + "," + keys}}}});
    return address;
  }
  // Client `c` receives exactly `want`.
  ::testing::AssertionResult expect_frame(FrameClient& c, const std::string& who,
                                          const Bytes& want) {
    const RecvResult r = c.recv_frame(3s);
    if (!r.ok()) return ::testing::AssertionFailure() << who << ": " << to_string(r.status);
    if (r.frame != want) {
      return ::testing::AssertionFailure()
             << who << " got a " << r.frame.size() << "-byte frame, not the " << want.size()
             << "-byte frame expected (or other bytes)";
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(VlanTest, AccessPortsATrunkAndItsNativeVlanForwardAsAnEightOhTwoDotOneQBridge) {
  ASSERT_TRUE(start_switch());
  const std::string v10 = add_listener("v10", "vlan=10");
  const std::string v20 = add_listener("v20", "vlan=20");
  const std::string trunk = add_listener("trunk", "trunk=10,20,native=1");
  std::vector<FrameClient> a, b, t, d;
  ASSERT_TRUE(connect_clients(2, &a, v10));
  ASSERT_TRUE(connect_clients(1, &b, v20));
  ASSERT_TRUE(connect_clients(1, &t, trunk));
  ASSERT_TRUE(connect_clients(1, &d));  // the default listener: VLAN 1
  ASSERT_TRUE(wait_port_count(5));
  const Mac ma = test_mac(1), mb = test_mac(2), mt = test_mac(3), md = test_mac(4);

  // VLAN 10 from an access port: the other access port untagged, the trunk tagged 10.
  const Bytes f10 = make_frame(kBroadcastMac, ma, 200, 1);
  ASSERT_TRUE(a[0].send_frame(f10));
  EXPECT_TRUE(expect_frame(a[1], "a[1]", f10));
  EXPECT_TRUE(expect_frame(t[0], "trunk", tagged(f10, 10)));
  EXPECT_TRUE(expect_silence(b[0], "VLAN 20's client"));
  EXPECT_TRUE(expect_silence(d[0], "VLAN 1's client"));

  // Tagged 20 from the trunk, priority 5: VLAN 20's access port gets it untagged.
  const Bytes f20 = make_frame(kBroadcastMac, mt, 100, 2);
  ASSERT_TRUE(t[0].send_frame(tagged(f20, (5 << 13) | 20)));
  EXPECT_TRUE(expect_frame(b[0], "VLAN 20's client", f20));
  EXPECT_TRUE(expect_silence(a[1], "a[1]"));
  EXPECT_TRUE(expect_silence(d[0], "VLAN 1's client"));

  // Untagged from the trunk: its native VLAN 1.
  const Bytes f1 = make_frame(kBroadcastMac, mt, 60, 3);
  ASSERT_TRUE(t[0].send_frame(f1));
  EXPECT_TRUE(expect_frame(d[0], "VLAN 1's client", f1));
  EXPECT_TRUE(expect_silence(a[0], "a[0]"));

  // VLAN 1 toward the trunk leaves untagged (native); a small frame popped is padded to 60.
  const Bytes from_d = make_frame(kBroadcastMac, md, 80, 4);
  ASSERT_TRUE(d[0].send_frame(from_d));
  EXPECT_TRUE(expect_frame(t[0], "trunk", from_d));
  const Bytes small = make_frame(kBroadcastMac, mt, 50, 5);
  ASSERT_TRUE(t[0].send_frame(tagged(small, 20)));
  Bytes padded = small;
  padded.resize(60, 0);
  EXPECT_TRUE(expect_frame(b[0], "VLAN 20's client", padded));

  // Known unicast in VLAN 20 from b to the trunk's MAC: tagged, to the trunk only.
  const Bytes to_t = make_frame(mt, mb, 300, 6);
  ASSERT_TRUE(b[0].send_frame(to_t));
  EXPECT_TRUE(expect_frame(t[0], "trunk", tagged(to_t, 20)));

  // Drops, each counted on its port: a tag on an access port, a VLAN the trunk does not carry.
  uint32_t a_id = 0, t_id = 0;
  ASSERT_TRUE(port_id(ma, &a_id));
  ASSERT_TRUE(port_id(mt, &t_id));
  ASSERT_TRUE(a[0].send_frame(tagged(make_frame(kBroadcastMac, ma, 100, 7), 10)));
  ASSERT_TRUE(t[0].send_frame(tagged(make_frame(kBroadcastMac, mt, 100, 8), 30)));
  EXPECT_TRUE(wait_port_counter(a_id, "drop_vlan_tagged", 1));
  EXPECT_TRUE(wait_port_counter(t_id, "drop_vlan_not_member", 1));
  EXPECT_TRUE(expect_silence(a[1], "a[1]"));
  EXPECT_TRUE(expect_silence(b[0], "VLAN 20's client"));

  // What the control API says.
  for (const json& row : control_result(sw_, {{"cmd", "ports"}})) {
    if (row["id"] == t_id) {
      EXPECT_EQ(row["vlan"], json({{"mode", "trunk"}, {"tagged", "10,20"}, {"native", 1}})) << row;
    }
    if (row["id"] == a_id) {
      EXPECT_EQ(row["vlan"], json({{"mode", "access"}, {"vlan", 10}})) << row;
    }
  }
  // The trunk's MAC was seen in VLANs 20 and 1: two entries, one per VLAN, no move.
  int t_rows = 0;
  for (const json& row : control_result(sw_, {{"cmd", "macs"}})) {
    if (row["mac"] == mac_to_string(mt)) {
      ++t_rows;
      EXPECT_TRUE(row["vlan"] == 20 || row["vlan"] == 1) << row;
      EXPECT_EQ(row["port"], t_id);
    }
  }
  EXPECT_EQ(t_rows, 2);
  EXPECT_EQ(control_result(sw_, {{"cmd", "stats"}})["mac_moves"], 0);
  const json vlans = control_result(sw_, {{"cmd", "vlans"}});
  ASSERT_EQ(vlans.size(), 3u) << vlans;
  EXPECT_EQ(vlans[0]["vlan"], 1);
  EXPECT_EQ(vlans[1]["vlan"], 10);
  EXPECT_EQ(vlans[1]["untagged_ports"].size(), 2u) << vlans;
  EXPECT_EQ(vlans[1]["tagged_ports"], json::array({t_id})) << vlans;
  EXPECT_EQ(vlans[2]["vlan"], 20);
  EXPECT_EQ(vlans[2]["tagged_ports"], json::array({t_id})) << vlans;
}

TEST_F(VlanTest, PortAddRefusesBadVlanKeysAndAddsNothing) {
  ASSERT_TRUE(start_switch());
  std::string error;
  auto c = ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(c) << error;
  const std::string address = "unix:" + tmp_.path() + "/bad.sock";
  struct Case {
    json args;
    const char* says;
  };
  for (const Case& k :
       {Case{{{"mode", "listen"}, {"address", address + ",vlan=4095"}}, "(1..4094)"},
        Case{{{"mode", "listen"}, {"address", address}, {"vlan", 10}, {"trunk", "20"}},
             "exclude each other"},
        Case{{{"mode", "connect"}, {"address", address}, {"native", 3}}, "native=3"},
        Case{{{"mode", "dgram"}, {"address", "unix:" + tmp_.path() + "/d.sock"}, {"vlan", true}},
             "\"vlan\" must be"}}) {
    const test_support::LineResult r =
        c->request(json({{"cmd", "port.add"}, {"args", k.args}}).dump());
    ASSERT_TRUE(r.ok());
    const json reply = json::parse(r.line, nullptr, false);
    EXPECT_FALSE(reply.value("ok", true)) << r.line;
    EXPECT_NE(reply.value("error", std::string()).find(k.says), std::string::npos) << r.line;
  }
  const test_support::LineResult r = c->request(R"({"cmd":"ports"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(json::parse(r.line)["result"].size(), 0u) << r.line;  // nothing was added
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() + "/bad.sock"));
}

}  // namespace
}  // namespace qswitch::integration
