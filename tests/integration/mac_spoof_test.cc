// tests/integration/mac_spoof_test.cc: a guest cannot take the MAC of one of the switch's own
// ports. The slirp gateway's MAC (52:55:0a:00:02:02 for 10.0.2.2) is pinned to the slirp port: a
// frame from a guest with that source is dropped and counted (drop_mac_spoof), and traffic to
// the gateway still goes to the gateway, not to the guest that pretended to be it.
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/ip_frames.h"

namespace qswitch::integration {
namespace {

using test_support::ipv4;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2

class MacSpoofTest : public SwitchFixture {};

// Defect: learning moved the gateway's MAC to whichever port sent from it last, so a guest that
// sent one frame from 52:55:0a:00:02:02 received every other guest's traffic to the gateway.
TEST_F(MacSpoofTest, GuestCannotTakeTheGatewaysMac) {
  ASSERT_TRUE(start_switch({"--slirp", "restrict=on"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(2, &c));
  const Mac victim = test_mac(1);
  const Mac spoofer = test_mac(2);
  ASSERT_TRUE(c[1].send_frame(make_frame(kBroadcastMac, spoofer, 64, 1)));
  // The victim ARPs for the gateway and gets slirp's answer (this also proves the victim's port
  // is attached and its MAC learned).
  ASSERT_TRUE(c[0].send_frame(
      test_support::make_arp_request(victim, ipv4(10, 0, 2, 15), ipv4(10, 0, 2, 2))));
  RecvResult reply = c[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return test_support::frame_src(f) == kSlirpMac; }, 5s);
  ASSERT_TRUE(reply.ok()) << "no ARP reply from the gateway: " << to_string(reply.status);

  // The spoofer sends from the gateway's MAC, several times.
  for (uint32_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(c[1].send_frame(make_frame(kBroadcastMac, kSlirpMac, 64, 100 + i)));
  }
  // Wait until the switch has taken all six of the spoofer's frames (frames on two sockets have
  // no order between them).
  uint64_t spoofer_rx = 0;
  for (int i = 0; i < 100 && spoofer_rx < 6; ++i) {
    spoofer_rx = port_counter(port_with_mac(sw_, spoofer), "rx_frames");
    if (spoofer_rx < 6) std::this_thread::sleep_for(20ms);  // polling a counter, bounded
  }
  ASSERT_EQ(spoofer_rx, 6u) << "the switch did not take the spoofer's frames";
  // The victim sends to the gateway's MAC: the spoofer must not get it. A frame the victim sends
  // after it, to the spoofer's own MAC, marks the end: everything before it has been switched.
  ASSERT_TRUE(c[0].send_frame(make_frame(kSlirpMac, victim, 64, 200)));
  ASSERT_TRUE(c[0].send_frame(make_frame(spoofer, victim, 64, 201)));
  size_t skipped = 0;
  bool got_gateway_frame = false;
  RecvResult end = c[1].recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        if (test_support::frame_dst(f) == kSlirpMac) got_gateway_frame = true;
        return test_support::frame_seq(f) == 201u;
      },
      5s, &skipped);
  ASSERT_TRUE(end.ok()) << "the spoofer's own frame did not arrive: " << to_string(end.status);
  EXPECT_FALSE(got_gateway_frame) << "the spoofer received a frame addressed to the gateway";
  // The victim did not see the spoofed frames either (they were dropped, not flooded).
  RecvResult leaked = c[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        return test_support::frame_src(f) == kSlirpMac && test_support::frame_seq(f).has_value() &&
               *test_support::frame_seq(f) >= 100u && *test_support::frame_seq(f) < 105u;
      },
      300ms);
  EXPECT_EQ(leaked.status, RecvResult::Status::kTimeout) << "a spoofed frame was forwarded";

  const nlohmann::json spoofer_row = port_with_mac(sw_, spoofer);
  EXPECT_EQ(port_counter(spoofer_row, "drop_mac_spoof"), 5u) << spoofer_row.dump();
  const nlohmann::json slirp = port_of_kind(sw_, "slirp");
  ASSERT_TRUE(slirp.is_object());
  EXPECT_NE(std::find(slirp["macs"].begin(), slirp["macs"].end(), mac_to_string(kSlirpMac)),
            slirp["macs"].end())
      << "the gateway's MAC is not on the slirp port: " << slirp.dump();
  EXPECT_EQ(control_result(sw_, {{"cmd", "stats"}}).value("mac_spoofs", uint64_t{0}), 5u);
}

}  // namespace
}  // namespace qswitch::integration
