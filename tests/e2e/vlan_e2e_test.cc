// tests/e2e/vlan_e2e_test.cc: 802.1Q VLANs with real guests (docs/vlans.md). Four guests on one
// qswitch: g1 and g2 on an access port of VLAN 10, g3 on VLAN 20 (with an address in VLAN 10's
// subnet too, so only the switch keeps it from g1), g4 on a trunk of 10 and 20 with the
// sub-interfaces eth0.10 and eth0.20 a Linux guest makes for itself. Guests within a VLAN ping,
// g1 never reaches g3, the trunk guest reaches both VLANs through its tagged sub-interfaces, and
// the switch's counters show tags pushed and popped.
#include <string>

#include "tests/e2e/guest_lab.h"
#include "tests/support/control_client.h"

namespace qswitch::e2e {
namespace {

using VlanE2eTest = GuestLabTest;

TEST_F(VlanE2eTest, AccessPortsKeepVlansApartAndATrunkGuestReachesBothWithItsOwnTags) {
  const std::string v10 = dir_.file("v10.sock");
  const std::string v20 = dir_.file("v20.sock");
  const std::string trunk = dir_.file("trunk.sock");
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--listen", "unix:" + v10 + ",vlan=10", "--listen", "unix:" + v20 + ",vlan=20",
                    "--listen", "unix:" + trunk + ",trunk=10,20", "--guests", "0"}));
  GuestOptions g1 = guest_options(1, unix_netdev(v10, false));
  g1.ip_cidr = "10.0.10.1/24";
  GuestOptions g2 = guest_options(2, unix_netdev(v10, false));
  g2.ip_cidr = "10.0.10.2/24";
  GuestOptions g3 = guest_options(3, unix_netdev(v20, false));
  g3.ip_cidr = "10.0.10.3/24";  // VLAN 10's subnet, on VLAN 20: only the switch separates them
  GuestOptions g4 = guest_options(4, unix_netdev(trunk, false));
  g4.ip_cidr = "10.0.99.4/24";  // eth0 itself: untagged, dropped by a trunk without native VLAN
  for (const GuestOptions* o : {&g1, &g2, &g3, &g4}) ASSERT_NO_FATAL_FAILURE(start_guest(*o));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  Guest& guest1 = *guests_[0];
  Guest& guest2 = *guests_[1];
  Guest& guest3 = *guests_[2];
  Guest& guest4 = *guests_[3];
  expect_ports_up(4);

  // g3's second address, in VLAN 20's own subnet; g4's tagged sub-interfaces.
  run_in(guest3, "ip addr add 10.0.20.3/24 dev eth0");
  const std::string vlan_setup =
      "for v in 10 20; do (ip link add link eth0 name eth0.$v type vlan id $v 2>/dev/null || "
      "vconfig add eth0 $v) && ip addr add 10.0.$v.4/24 dev eth0.$v && ip link set eth0.$v up "
      "|| echo QS-VLAN-FAILED $v; done; ip -o addr show | grep eth0\\.";
  const std::string setup = run_in(guest4, vlan_setup);
  ASSERT_EQ(setup.find("QS-VLAN-FAILED"), std::string::npos) << setup << guest4.diagnostics();
  ASSERT_NE(setup.find("10.0.10.4/24"), std::string::npos) << setup;
  ASSERT_NE(setup.find("10.0.20.4/24"), std::string::npos) << setup;

  EXPECT_EQ(ping_replies(guest1, "10.0.10.2"), 3);  // within VLAN 10
  EXPECT_EQ(ping_replies(guest1, "10.0.10.3"), 0);  // g3 is in VLAN 20: not one reply
  EXPECT_EQ(ping_replies(guest4, "10.0.10.1"), 3);  // the trunk guest, tagged 10
  EXPECT_EQ(ping_replies(guest4, "10.0.20.3"), 3);  // and tagged 20
  EXPECT_EQ(ping_replies(guest2, "10.0.10.4"), 3);  // back to the trunk guest from VLAN 10
  // g1's ARP table holds g2 (and g4) but never g3: its requests never reached VLAN 20.
  const std::string arp = run_in(guest1, "cat /proc/net/arp");
  EXPECT_NE(arp.find(guest2.options().mac), std::string::npos) << arp;
  EXPECT_EQ(arp.find(guest3.options().mac), std::string::npos) << arp;

  // The switch pushed tags toward the trunk and popped them toward the access ports.
  const auto stats = qswitch_.stats();
  ASSERT_TRUE(stats) << qswitch_.error();
  EXPECT_GT(stats->switch_counters.at("vlan_tag_pushes"), 0u) << stats->text;
  EXPECT_GT(stats->switch_counters.at("vlan_tag_pops"), 0u) << stats->text;
  std::string error;
  auto ctl = test_support::ControlClient::connect(qswitch_.control(), &error);
  ASSERT_TRUE(ctl) << error;
  const test_support::LineResult vlans = ctl->request(R"({"cmd":"vlans"})");
  ASSERT_TRUE(vlans.ok());
  std::cout << "[ vlans    ] " << vlans.line << "\n";
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(4));
}

}  // namespace
}  // namespace qswitch::e2e
