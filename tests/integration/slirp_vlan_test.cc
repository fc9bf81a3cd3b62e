// tests/integration/slirp_vlan_test.cc: a slirp port per VLAN (issue 12, slice 3), as guests and
// the control socket see it, with no guest: `qswitch --listen unix:A,vlan=10 --listen
// unix:B,vlan=20 --slirp vlan=10,net=10.0.10.0/24 --slirp vlan=20,net=10.0.20.0/24`, a
// FrameClient on each listener standing in for a guest of its VLAN.
//
// What is asserted is what crossed real sockets (DHCP replies and their addresses, libslirp's ARP
// and SYN for a host forward's guest, a host TCP connection to the forward) and the control
// API's replies. A guest "sees nothing of the other VLAN" is checked with a barrier, not a wait:
// the guest ARPs for its own gateway and every frame that reached it before the reply is looked
// at (its port's output is one ordered queue, so anything leaked earlier would be there). Both
// slirp ports run with restrict=on: nothing here needs NAT to the outside, and host forwards
// still work there (QEMU's restrict=on leaves explicit forwards alone).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/dhcp_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/loopback_port.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::DhcpExpect;
using test_support::ipv4;
using test_support::ipv4_to_string;
using test_support::mac_to_string;

// libslirp's MAC for its host address: 52:55 then the address.
constexpr Mac kGatewayMac10 = {0x52, 0x55, 0x0a, 0x00, 0x0a, 0x02};  // 10.0.10.2
constexpr Mac kGatewayMac20 = {0x52, 0x55, 0x0a, 0x00, 0x14, 0x02};  // 10.0.20.2
constexpr Mac kGuestMac10 = {0x02, 0x71, 0x00, 0x00, 0x10, 0x01};
constexpr Mac kGuestMac20 = {0x02, 0x71, 0x00, 0x00, 0x20, 0x01};

const DhcpExpect kExpect10{.server_mac = kGatewayMac10,
                           .server_id = ipv4(10, 0, 10, 2),
                           .router = ipv4(10, 0, 10, 2),
                           .dns = ipv4(10, 0, 10, 3),
                           .netmask = ipv4(255, 255, 255, 0)};
const DhcpExpect kExpect20{.server_mac = kGatewayMac20,
                           .server_id = ipv4(10, 0, 20, 2),
                           .router = ipv4(10, 0, 20, 2),
                           .dns = ipv4(10, 0, 20, 3),
                           .netmask = ipv4(255, 255, 255, 0)};

// A connected TCP socket to 127.0.0.1:`port` (blocking connect: the loopback answers at once);
// -1 when refused.
int tcp_connect(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

class SlirpVlanTest : public SwitchFixture {
 protected:
  ::testing::AssertionResult start() {
    a_ = "unix:" + tmp_.file("a.sock");
    b_ = "unix:" + tmp_.file("b.sock");
    return start_switch({"--listen", a_ + ",vlan=10", "--listen", b_ + ",vlan=20", "--slirp",
                         "vlan=10,net=10.0.10.0/24,restrict=on", "--slirp",
                         "vlan=20,net=10.0.20.0/24,restrict=on", "--guests", "0"},
                        false);
  }

  // A stand-in guest on listener `address`.
  ::testing::AssertionResult join(const std::string& address, FrameClient* out) {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(1, &c, address); !r) return r;
    *out = std::move(c[0]);
    return ::testing::AssertionSuccess();
  }

  // The error of a request that must fail; "" (and a failure) otherwise.
  std::string error_of(const json& request) {
    const json reply = control_.reply_to(request);
    if (!reply.is_object() || reply.value("ok", true) || !reply.contains("error")) {
      ADD_FAILURE() << request.dump() << " should fail: " << reply.dump();
      return "";
    }
    return reply["error"].get<std::string>();
  }

  // Sends an ARP request for `gateway` from (`mac`, `ip`) on `c` and returns every frame that
  // arrived before libslirp's reply (the barrier, see the top of the file).
  static ::testing::AssertionResult frames_before_arp_reply(
      FrameClient& c, const Mac& mac, uint32_t ip, uint32_t gateway,
      std::vector<std::vector<uint8_t>>* seen) {
    if (!c.send_frame(test_support::make_arp_request(mac, ip, gateway))) {
      return ::testing::AssertionFailure() << "send ARP: " << c.last_error();
    }
    std::string why;
    const RecvResult r = c.recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          auto arp = test_support::parse_arp(f, &why);
          if (arp && arp->op == 2 && arp->sender_ip == gateway) return true;
          seen->push_back(f);
          return false;
        },
        5s);
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "no ARP reply from " << ipv4_to_string(gateway) << ": " << to_string(r.status);
    }
    return ::testing::AssertionSuccess();
  }

  // `qswitch ctl --sock CONTROL WORDS...` to completion: its exit status, stdout and stderr.
  struct Ctl {
    std::optional<int> status;
    std::string out;
    std::string err;
  };
  Ctl run_ctl(std::vector<std::string> words) {
    words.insert(words.begin(), {"ctl", "--sock", sw_.control()});
    QswitchProcess p;
    LaunchOptions o = launch_options(std::move(words));
    o.stderr_path = tmp_.file("ctl-" + std::to_string(ctl_runs_++) + ".stderr");
    Ctl c;
    if (!p.launch(o)) {
      c.err = p.error();
      return c;
    }
    c.status = p.wait_exit(5s);
    c.out = p.stdout_text();
    c.err = p.stderr_text();
    return c;
  }

  std::string a_;
  std::string b_;
  int ctl_runs_ = 0;
  ControlSession control_{sw_};
};

TEST_F(SlirpVlanTest, EachSlirpPortIsAnAccessPortOfItsVlanAndSaysSo) {
  ASSERT_TRUE(start());
  const std::string out = sw_.stdout_text();
  EXPECT_NE(out.find("slirp net=10.0.10.0/24 host=10.0.10.2 restrict=on vlan=10\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("slirp net=10.0.20.0/24 host=10.0.20.2 restrict=on vlan=20\n"),
            std::string::npos)
      << out;
  // `ports`: two slirp ports, each an access port of its VLAN with its own gateway MAC.
  const json rows = control_.result_of({{"cmd", "ports"}});
  std::vector<std::pair<uint16_t, std::string>> slirps;
  for (const json& row : rows) {
    if (row.value("kind", "") != "slirp") continue;
    ASSERT_EQ(row["vlan"].value("mode", ""), "access") << row.dump();
    ASSERT_EQ(row["macs"].size(), 1u) << row.dump();
    slirps.emplace_back(row["vlan"].value("vlan", 0), row["macs"][0].get<std::string>());
  }
  EXPECT_EQ(slirps, (std::vector<std::pair<uint16_t, std::string>>{
                        {10, mac_to_string(kGatewayMac10)}, {20, mac_to_string(kGatewayMac20)}}))
      << rows.dump();
}

TEST_F(SlirpVlanTest, GuestsGetAddressesFromTheirOwnVlansPoolAndLeasesAreListedPerVlan) {
  ASSERT_TRUE(start());
  FrameClient g10, g20;
  ASSERT_TRUE(join(a_, &g10));
  ASSERT_TRUE(join(b_, &g20));
  std::string why;
  const auto ex10 =
      test_support::run_dhcp_exchange(g10, kGuestMac10, 0x1010, false, kExpect10, 5s, &why);
  ASSERT_TRUE(ex10) << "VLAN 10: " << why;
  EXPECT_EQ(ipv4_to_string(ex10->address()), "10.0.10.15");
  const auto ex20 =
      test_support::run_dhcp_exchange(g20, kGuestMac20, 0x2020, false, kExpect20, 5s, &why);
  ASSERT_TRUE(ex20) << "VLAN 20: " << why;
  EXPECT_EQ(ipv4_to_string(ex20->address()), "10.0.20.15");

  // Nothing of VLAN 20's DHCP reached the VLAN 10 guest, and the other way round.
  for (auto [c, mac, ip, gateway, other_gateway] :
       {std::tuple{&g10, kGuestMac10, ipv4(10, 0, 10, 15), ipv4(10, 0, 10, 2), kGatewayMac20},
        std::tuple{&g20, kGuestMac20, ipv4(10, 0, 20, 15), ipv4(10, 0, 20, 2), kGatewayMac10}}) {
    std::vector<std::vector<uint8_t>> seen;
    ASSERT_TRUE(frames_before_arp_reply(*c, mac, ip, gateway, &seen));
    for (const auto& f : seen) {
      EXPECT_NE(test_support::frame_src(f), other_gateway)
          << "a frame of the other VLAN's slirp port reached " << mac_to_string(mac);
    }
  }

  // dhcp.leases per VLAN: each lists only its own guest. "vlan" as a number (JSON) or a string
  // (what `qswitch ctl dhcp leases vlan=10` sends).
  const json leases10 = control_.result_of({{"cmd", "dhcp.leases"}, {"args", {{"vlan", 10}}}});
  ASSERT_EQ(leases10.size(), 1u) << leases10.dump();
  EXPECT_EQ(leases10[0].value("mac", ""), mac_to_string(kGuestMac10));
  EXPECT_EQ(leases10[0].value("ip", ""), "10.0.10.15");
  EXPECT_EQ(leases10[0].value("state", ""), "bound");
  const json leases20 = control_.result_of({{"cmd", "dhcp.leases"}, {"args", {{"vlan", "20"}}}});
  ASSERT_EQ(leases20.size(), 1u) << leases20.dump();
  EXPECT_EQ(leases20[0].value("mac", ""), mac_to_string(kGuestMac20));
  EXPECT_EQ(leases20[0].value("ip", ""), "10.0.20.15");
  // The lease names the guest's own switch port (the DHCP origin lookup is in its VLAN).
  const auto port10 = sw_.port_id_for_mac(mac_to_string(kGuestMac10));
  ASSERT_TRUE(port10);
  EXPECT_EQ(leases10[0].value("port", -1), static_cast<int64_t>(*port10)) << leases10.dump();
}

TEST_F(SlirpVlanTest, AHostForwardReachesOnlyItsVlansGuest) {
  ASSERT_TRUE(start());
  FrameClient g10, g20;
  ASSERT_TRUE(join(a_, &g10));
  ASSERT_TRUE(join(b_, &g20));
  // Both guests known to the switch, in their VLANs.
  std::vector<std::vector<uint8_t>> ignored;
  ASSERT_TRUE(
      frames_before_arp_reply(g10, kGuestMac10, ipv4(10, 0, 10, 15), ipv4(10, 0, 10, 2), &ignored));
  ASSERT_TRUE(
      frames_before_arp_reply(g20, kGuestMac20, ipv4(10, 0, 20, 15), ipv4(10, 0, 20, 2), &ignored));

  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  const json added = control_.result_of(
      {{"cmd", "hostfwd.add"}, {"args", {{"spec", "tcp::" + p + "-:80"}, {"vlan", 20}}}});
  EXPECT_EQ(added.value("spec", ""), "tcp:127.0.0.1:" + p + "-10.0.20.15:80") << added.dump();
  EXPECT_EQ(control_.result_of({{"cmd", "hostfwd.list"}, {"args", {{"vlan", 10}}}}), json::array());
  const json list20 = control_.result_of({{"cmd", "hostfwd.list"}, {"args", {{"vlan", 20}}}});
  ASSERT_EQ(list20.size(), 1u) << list20.dump();
  // The same host port on the other VLAN's slirp port: refused, naming the VLAN that has it.
  const std::string clash =
      error_of({{"cmd", "hostfwd.add"}, {"args", {{"spec", "tcp::" + p + "-:80"}, {"vlan", 10}}}});
  EXPECT_NE(clash.find("forwarded by the slirp port on VLAN 20"), std::string::npos) << clash;

  // A host connection to the forward: VLAN 20's slirp port sends the guest at 10.0.20.15 its SYN
  // to port 80 (answering its ARP for 10.0.20.15 if it asks: the guest's own ARP above may have
  // taught it the guest's MAC already).
  const int fd = tcp_connect(port);
  ASSERT_GE(fd, 0) << "connect to the forward on 127.0.0.1:" << p;
  std::string why;
  const RecvResult r = g20.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        if (auto arp = test_support::parse_arp(f, &why);
            arp && arp->op == 1 && arp->target_ip == ipv4(10, 0, 20, 15)) {
          EXPECT_EQ(arp->sender_mac, kGatewayMac20);
          g20.send_frame(test_support::make_arp_reply(kGuestMac20, ipv4(10, 0, 20, 15),
                                                      arp->sender_mac, arp->sender_ip));
          return false;
        }
        auto seg = test_support::parse_tcp_frame(f, &why);
        return seg && seg->dst_port == 80 && (seg->flags & test_support::kTcpSyn) != 0;
      },
      8s);
  ASSERT_TRUE(r.ok()) << "no SYN to 10.0.20.15:80: " << to_string(r.status);
  EXPECT_EQ(test_support::frame_src(r.frame), kGatewayMac20);
  const auto syn = test_support::parse_tcp_frame(r.frame, &why);
  EXPECT_EQ(ipv4_to_string(syn->ip_dst), "10.0.20.15");
  EXPECT_EQ(syn->eth_dst, kGuestMac20);
  ::close(fd);

  // The VLAN 10 guest saw none of it: no ARP for the forward's guest, no segment, nothing from
  // VLAN 20's gateway.
  std::vector<std::vector<uint8_t>> seen;
  ASSERT_TRUE(
      frames_before_arp_reply(g10, kGuestMac10, ipv4(10, 0, 10, 15), ipv4(10, 0, 10, 2), &seen));
  for (const auto& f : seen) {
    EXPECT_NE(test_support::frame_src(f), kGatewayMac20) << "VLAN 20's slirp port reached VLAN 10";
    EXPECT_FALSE(test_support::parse_tcp_frame(f, &why).has_value())
        << "a TCP segment reached the VLAN 10 guest";
  }

  // Removed from VLAN 20's port: the list is empty again.
  control_.result_of(
      {{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::" + p}, {"vlan", "20"}}}});
  EXPECT_EQ(control_.result_of({{"cmd", "hostfwd.list"}, {"args", {{"vlan", 20}}}}), json::array());
}

// Without a VLAN, a command on a switch with two slirp ports cannot know which: an error naming
// the VLANs; a VLAN without a slirp port, or not a VLAN id, is named too.
TEST_F(SlirpVlanTest, ACommandWithoutAVlanNamesTheVlansThatHaveASlirpPort) {
  ASSERT_TRUE(start());
  for (const char* cmd : {"hostfwd.list", "dhcp.leases", "usernet", "slirp.sockets", "hostfwd.add",
                          "hostfwd.remove"}) {
    json request = {{"cmd", cmd}};
    if (std::string(cmd) == "hostfwd.add") request["args"] = {{"spec", "tcp::1-:80"}};
    if (std::string(cmd) == "hostfwd.remove") request["args"] = {{"spec", "tcp::1"}};
    const std::string e = error_of(request);
    EXPECT_NE(e.find("this switch has slirp ports on VLANs 10 and 20: say which with vlan=N"),
              std::string::npos)
        << cmd << ": " << e;
  }
  EXPECT_EQ(error_of({{"cmd", "dhcp.leases"}, {"args", {{"vlan", 30}}}}),
            "dhcp.leases: no slirp port on VLAN 30; this switch has them on VLANs 10 and 20");
  const std::string bad = error_of({{"cmd", "usernet"}, {"args", {{"vlan", 4095}}}});
  EXPECT_NE(bad.find("not a VLAN id (a number 1..4094)"), std::string::npos) << bad;
  EXPECT_NE(error_of({{"cmd", "usernet"}, {"args", {{"vlan", "ten"}}}}).find("not a VLAN id"),
            std::string::npos);
  // With the VLAN, each command answers.
  for (const char* cmd : {"hostfwd.list", "dhcp.leases", "usernet", "slirp.sockets"}) {
    control_.result_of({{"cmd", cmd}, {"args", {{"vlan", 10}}}});
  }

  // The same through `qswitch ctl`: vlan=N after the command, or beside a hostfwd spec.
  Ctl c = run_ctl({"dhcp", "leases"});
  EXPECT_EQ(c.status, std::optional<int>(1)) << c.out << c.err;
  EXPECT_NE(c.err.find("slirp ports on VLANs 10 and 20: say which with vlan=N"), std::string::npos)
      << c.err;
  c = run_ctl({"dhcp", "leases", "vlan=10"});
  EXPECT_EQ(c.status, std::optional<int>(0)) << c.err;
  EXPECT_EQ(c.out, "(none)\n");
  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  c = run_ctl({"hostfwd", "add", "tcp::" + p + "-:80", "vlan=10"});
  EXPECT_EQ(c.status, std::optional<int>(0)) << c.err;
  c = run_ctl({"hostfwd", "list", "vlan=10"});
  EXPECT_NE(c.out.find("tcp:127.0.0.1:" + p + "-10.0.10.15:80"), std::string::npos) << c.out;
  c = run_ctl({"hostfwd", "remove", "vlan=10", "tcp::" + p});
  EXPECT_EQ(c.status, std::optional<int>(0)) << c.err;
  EXPECT_EQ(control_.result_of({{"cmd", "hostfwd.list"}, {"args", {{"vlan", 10}}}}), json::array());
}

// Two --slirp for one VLAN: nothing starts, and the error names both.
TEST_F(SlirpVlanTest, TwoSlirpPortsForOneVlanAreRefusedBeforeAnythingStarts) {
  QswitchProcess p;
  LaunchOptions o =
      launch_options({"--listen", "unix:" + tmp_.file("c.sock") + ",vlan=10", "--slirp",
                      "vlan=10,net=10.0.10.0/24", "--slirp", "vlan=10,net=10.0.11.0/24"});
  o.stderr_path = tmp_.file("refused.stderr");
  ASSERT_TRUE(p.launch(o)) << p.error();
  EXPECT_EQ(p.wait_exit(5s), std::optional<int>(2));
  EXPECT_NE(p.stderr_text().find("'--slirp vlan=10,net=10.0.10.0/24' and '--slirp "
                                 "vlan=10,net=10.0.11.0/24' are both for VLAN 10"),
            std::string::npos)
      << p.stderr_text();
  EXPECT_EQ(p.stdout_text().find("ready"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(tmp_.file("c.sock")));
}

}  // namespace
}  // namespace qswitch::integration
