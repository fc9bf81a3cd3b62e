// tests/integration/slirp_neighbours_test.cc: the IPv6 addresses the slirp port saw guests use
// (slirp/neighbours.h), as the control API shows them: `neighbours` and the `ipv6` column of
// `dhcp.leases`, with no guest: a FrameClient on the listener stands in for one.
//
// The client takes a DHCP lease, then asks libslirp's router (fec0::2) for its MAC with a
// neighbour solicitation from its SLAAC address, and waits for the advertisement: the slirp port
// handles a port's frames in order, so once the answer is there the solicitation has been seen.
// A DAD probe for a second address is then sent, with the same kind of barrier after it. Host
// forwards to a guest by MAC resolve to what the switch knows of it when added. The slirp ports
// run with restrict=on: nothing here leaves the switch (forwards bind the host's loopback).
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/dhcp_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/loopback_port.h"
#include "tests/support/netns.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::DhcpExpect;
using test_support::ipv4;
using test_support::Ipv6;
using test_support::mac_to_string;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr Mac kGuestMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
// fec0::5054:ff:fe12:3456, the SLAAC address of kGuestMac under the default ipv6-net.
constexpr Ipv6 kGuestSlaac = {0xfe, 0xc0, 0, 0,    0,    0,    0,    0,
                              0x50, 0x54, 0, 0xff, 0xfe, 0x12, 0x34, 0x56};
constexpr Ipv6 kRouter = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};     // fec0::2
constexpr Ipv6 kProbed = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99};  // fec0::99

const DhcpExpect kExpect{.server_mac = kSlirpMac,
                         .server_id = ipv4(10, 0, 2, 2),
                         .router = ipv4(10, 0, 2, 2),
                         .dns = ipv4(10, 0, 2, 3),
                         .netmask = ipv4(255, 255, 255, 0)};

// A DAD probe (RFC 4862 5.4.2): a neighbour solicitation for `target` from ::, to the target's
// solicited-node group, without a source link-layer option.
std::vector<uint8_t> dad_probe(const Mac& mac, const Ipv6& target) {
  std::vector<uint8_t> f = test_support::make_neighbor_solicitation(mac, Ipv6{}, target);
  // make_neighbor_solicitation adds a source link-layer option (8 bytes): drop it, and fix the
  // payload length and the checksum (over the pseudo-header, RFC 4443 2.3).
  f.resize(f.size() - 8);
  const size_t icmp_size = f.size() - 54;
  f[18] = static_cast<uint8_t>(icmp_size >> 8);
  f[19] = static_cast<uint8_t>(icmp_size);
  f[56] = f[57] = 0;
  uint32_t sum = 0;
  for (size_t i = 22; i < 54; i += 2) sum += (uint32_t{f[i]} << 8) | f[i + 1];  // addresses
  sum += static_cast<uint32_t>(icmp_size) + 58;
  for (size_t i = 54; i < f.size(); i += 2) sum += (uint32_t{f[i]} << 8) | f[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const auto check = static_cast<uint16_t>(~sum);
  f[56] = static_cast<uint8_t>(check >> 8);
  f[57] = static_cast<uint8_t>(check);
  return f;
}

std::vector<std::string> sorted(const json& list) {
  std::vector<std::string> v;
  for (const json& a : list) v.push_back(a.is_string() ? a.get<std::string>() : a.dump());
  std::sort(v.begin(), v.end());
  return v;
}
const std::vector<std::string> kBoth = {"fec0::5054:ff:fe12:3456", "fec0::99"};

class SlirpNeighboursTest : public SwitchFixture {
 protected:
  // libslirp answers a solicitation for fec0::2 from `from` (the barrier; see the top).
  ::testing::AssertionResult solicit_router(FrameClient& c, const Ipv6& from) {
    if (!c.send_frame(test_support::make_neighbor_solicitation(kGuestMac, from, kRouter))) {
      return ::testing::AssertionFailure() << "send NS: " << c.last_error();
    }
    const RecvResult r = c.recv_frame_matching(
        [](const std::vector<uint8_t>& f) {
          const auto m = test_support::parse_icmp6(f);
          return m && m->type == 136 && m->target == kRouter;
        },
        5s);
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "no neighbour advertisement for fec0::2: " << to_string(r.status);
    }
    return ::testing::AssertionSuccess();
  }

  ControlSession control_{sw_};
};

TEST_F(SlirpNeighboursTest, ListsTheAddressesAGuestUsedAndTheLeaseShowsThem) {
  ASSERT_TRUE(start_switch({"--slirp", "restrict=on"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  std::string why;
  ASSERT_TRUE(
      test_support::run_dhcp_exchange(c[0], kGuestMac, 0x6e000001u, false, kExpect, 5s, &why))
      << why;
  // Nothing IPv6 yet.
  json rows = control_.result_of({{"cmd", "neighbours"}});
  ASSERT_TRUE(rows.is_array()) << rows.dump();
  EXPECT_TRUE(rows.empty()) << rows.dump();

  ASSERT_TRUE(solicit_router(c[0], kGuestSlaac));
  ASSERT_TRUE(c[0].send_frame(dad_probe(kGuestMac, kProbed)));
  ASSERT_TRUE(solicit_router(c[0], kGuestSlaac));  // the probe has been seen too

  rows = control_.result_of({{"cmd", "neighbours"}});
  ASSERT_EQ(rows.size(), 1u) << rows.dump();
  const json& row = rows[0];
  EXPECT_EQ(row.value("mac", ""), mac_to_string(kGuestMac)) << row.dump();
  // By first seen, then address: both may fall in one millisecond.
  EXPECT_EQ(sorted(row["ipv6"]), kBoth) << row.dump();
  ASSERT_EQ(row["seen"].size(), 2u) << row.dump();
  for (const json& s : row["seen"]) {
    // The probed address was never used: tentative; the solicitation's source was.
    EXPECT_EQ(s.value("tentative", false), s.value("address", "") == "fec0::99") << row.dump();
  }
  EXPECT_EQ(row.value("vlan", 0), 1) << row.dump();
  uint32_t port = 0;
  ASSERT_TRUE(port_id(kGuestMac, &port));
  EXPECT_EQ(row["port"], port) << row.dump();

  const json leases = control_.result_of({{"cmd", "dhcp.leases"}});
  ASSERT_EQ(leases.size(), 1u) << leases.dump();
  EXPECT_EQ(leases[0].value("ip", ""), "10.0.2.15") << leases.dump();
  EXPECT_EQ(sorted(leases[0]["ipv6"]), kBoth) << leases.dump();
}

TEST_F(SlirpNeighboursTest, AnIpv6OffSlirpPortLearnsNothing) {
  ASSERT_TRUE(start_switch({"--slirp", "restrict=on,ipv6=off"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  std::string why;
  ASSERT_TRUE(
      test_support::run_dhcp_exchange(c[0], kGuestMac, 0x6e000002u, false, kExpect, 5s, &why))
      << why;
  // No router answers over IPv6 here: the barrier is a second DHCP exchange (the slirp port
  // handles the port's frames in order).
  ASSERT_TRUE(
      c[0].send_frame(test_support::make_neighbor_solicitation(kGuestMac, kGuestSlaac, kRouter)));
  ASSERT_TRUE(
      test_support::run_dhcp_exchange(c[0], kGuestMac, 0x6e000003u, false, kExpect, 5s, &why))
      << why;
  const json rows = control_.result_of({{"cmd", "neighbours"}});
  ASSERT_TRUE(rows.is_array()) << rows.dump();
  EXPECT_TRUE(rows.empty()) << rows.dump();
  const json leases = control_.result_of({{"cmd", "dhcp.leases"}});
  ASSERT_EQ(leases.size(), 1u) << leases.dump();
  EXPECT_EQ(leases[0]["ipv6"], json::array()) << leases.dump();
}

TEST_F(SlirpNeighboursTest, AHostForwardToAGuestByMacGoesToItsAddressOnceItHasOne) {
  const uint16_t pinned_port = test_support::free_loopback_tcp_port();
  ASSERT_NE(pinned_port, 0);
  // A pinned lease resolves at start, before the guest has asked for anything.
  ASSERT_TRUE(
      start_switch({"--slirp", "restrict=on,lease=52:54:00:12:34:58:10.0.2.50,hostfwd=tcp::" +
                                   std::to_string(pinned_port) + "-[52:54:00:12:34:58]:80"}));
  json list = control_.result_of({{"cmd", "hostfwd.list"}});
  ASSERT_EQ(list.size(), 1u) << list.dump();
  EXPECT_EQ(list[0].value("guest_addr", ""), "10.0.2.50") << list.dump();
  EXPECT_EQ(list[0].value("spec", ""),
            "tcp:127.0.0.1:" + std::to_string(pinned_port) + "-[52:54:00:12:34:58]:80")
      << list.dump();

  const uint16_t port4 = test_support::free_loopback_tcp_port();
  const uint16_t port6 = test_support::free_loopback_tcp_port();
  ASSERT_TRUE(port4 != 0 && port6 != 0);
  const std::string spec4 = "tcp::" + std::to_string(port4) + "-[52:54:00:12:34:56]:80";
  const std::string spec6 = "tcp:[::1]:" + std::to_string(port6) + "-[52:54:00:12:34:56]:80";
  // Nothing known about the guest yet: refused, saying why.
  json reply = control_.reply_to({{"cmd", "hostfwd.add"}, {"args", {{"spec", spec4}}}});
  EXPECT_FALSE(reply.value("ok", true)) << reply.dump();
  EXPECT_NE(reply.value("error", "").find("has no DHCP address yet"), std::string::npos)
      << reply.dump();
  reply = control_.reply_to({{"cmd", "hostfwd.add"}, {"args", {{"spec", spec6}}}});
  EXPECT_FALSE(reply.value("ok", true)) << reply.dump();
  EXPECT_NE(reply.value("error", "").find("has not been seen using an address in ipv6-net"),
            std::string::npos)
      << reply.dump();

  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  std::string why;
  ASSERT_TRUE(
      test_support::run_dhcp_exchange(c[0], kGuestMac, 0x6e000004u, false, kExpect, 5s, &why))
      << why;
  ASSERT_TRUE(solicit_router(c[0], kGuestSlaac));
  const json added4 = control_.result_of({{"cmd", "hostfwd.add"}, {"args", {{"spec", spec4}}}});
  EXPECT_EQ(added4.value("guest_addr", ""), "10.0.2.15") << added4.dump();
  EXPECT_EQ(added4.value("spec", ""),
            "tcp:127.0.0.1:" + std::to_string(port4) + "-[52:54:00:12:34:56]:80")
      << added4.dump();
  const json added6 = control_.result_of({{"cmd", "hostfwd.add"}, {"args", {{"spec", spec6}}}});
  EXPECT_EQ(added6.value("guest_addr", ""), "fec0::5054:ff:fe12:3456") << added6.dump();
  EXPECT_EQ(added6.value("host_addr", ""), "::1") << added6.dump();
  list = control_.result_of({{"cmd", "hostfwd.list"}});
  EXPECT_EQ(list.size(), 3u) << list.dump();
  // Removed by its host socket, as every forward.
  EXPECT_TRUE(control_
                  .result_of({{"cmd", "hostfwd.remove"},
                              {"args", {{"spec", "tcp:[::1]:" + std::to_string(port6)}}}})
                  .is_object());
}

}  // namespace
}  // namespace qswitch::integration
