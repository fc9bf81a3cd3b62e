// tests/integration/tap_test.cc: a tap port in a network namespace the test creates.
// qswitch runs inside the namespace (`ip netns exec NS qswitch --tap qs0 ...`); its unix stream
// socket is in the per-test temp dir, reachable from here. The namespace's kernel owns
// 10.0.0.1/24 and fd00::1/64 on the tap; FrameClients on stream ports play guests (10.0.0.x,
// fd00::2): they ARP for it, then ping it over ICMPv6 (test_support::ndp_and_ping6).
// Needs root and iproute2: without them the tests FAIL saying so. The stuck-receiver test sends
// into the tap from a packet socket made inside the namespace (tests/integration/stuck_peer.h).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/stuck_peer.h"
#include "tests/support/frame_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/netns.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_frames.h"

namespace qswitch::integration {
namespace {

using namespace std::chrono_literals;
using test_support::FrameClient;
using test_support::ipv4;
using test_support::Mac;
using test_support::Netns;
using test_support::QswitchProcess;
using test_support::test_mac;

constexpr uint32_t kTapIp = ipv4(10, 0, 0, 1);
constexpr test_support::Ipv6 kTapIp6 = test_support::ipv6_ula(1);    // fd00::1/64 on qs0
constexpr test_support::Ipv6 kGuestIp6 = test_support::ipv6_ula(2);  // the FrameClient
constexpr char kAddTapIp6[] = "ip -6 addr add fd00::1/64 dev qs0 nodad";

class TapTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- qswitch stdout:\n"
                << sw_.stdout_text() << "--- qswitch stderr:\n"
                << sw_.stderr_text() << "---\n";
    }
    sw_.kill_now();
  }

  // A namespace (set up by `prepare` when given) and qswitch in it, listening on
  // unix:<tmp>/sw.sock, with `extra` arguments.
  ::testing::AssertionResult start(const std::vector<std::string>& extra,
                                   const std::string& prepare = "") {
    if (tmp_.path().empty()) return ::testing::AssertionFailure() << "no temp dir";
    ns_ = std::make_unique<Netns>("tap");
    if (!ns_->ok()) return ::testing::AssertionFailure() << ns_->error();
    if (!prepare.empty()) {
      const auto r = sh(prepare);
      if (!r) return r;
    }
    address_ = "unix:" + tmp_.file("sw.sock");
    std::vector<std::string> args = {"--no-slirp", "--listen", address_};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!sw_.start(ns_->launch_in(QSWITCH_BINARY, args, tmp_.file("qswitch.stderr")), 10000ms)) {
      return ::testing::AssertionFailure() << "qswitch did not start: " << sw_.error();
    }
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult sh(const std::string& script) {
    std::string error;
    if (!ns_->sh_ok(script, &error)) return ::testing::AssertionFailure() << error;
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult client(FrameClient* out) {
    std::string error;
    auto c = FrameClient::connect(address_, &error);
    if (!c) return ::testing::AssertionFailure() << "connect " << address_ << ": " << error;
    *out = std::move(*c);
    return ::testing::AssertionSuccess();
  }

  const test_support::PortStats* tap_stats(const test_support::StatsSnapshot& s) {
    for (const auto& [id, p] : s.ports) {
      if (p.peer == "tap:qs0") return &p;
    }
    return nullptr;
  }

  test_support::TempDir tmp_;
  std::unique_ptr<Netns> ns_;  // destroyed after sw_: qswitch is gone before the namespace
  QswitchProcess sw_;
  std::string address_;
};

TEST_F(TapTest, NamespaceKernelAnswersArpAndPingThroughACreatedTap) {
  ASSERT_TRUE(start({"--tap", "qs0"}));
  const std::string out = sw_.stdout_text();
  EXPECT_NE(out.find("tap qs0\n"), std::string::npos) << out;
  // qswitch created the tap, so it set the link up; the address is ours to add.
  ASSERT_TRUE(sh("ip link show qs0 | grep -q '<.*UP.*>'"));
  ASSERT_TRUE(sh(std::string("ip addr add 10.0.0.1/24 dev qs0 && ") + kAddTapIp6));
  const auto tap_mac = ns_->mac_of("qs0");
  ASSERT_TRUE(tap_mac.has_value());

  FrameClient c;
  ASSERT_TRUE(client(&c));
  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  Mac answered{};
  const std::string failure =
      test_support::arp_resolve(c, test_mac(1), ipv4(10, 0, 0, 2), kTapIp, 10s, &answered);
  ASSERT_EQ(failure, "");
  EXPECT_EQ(answered, *tap_mac);
  Mac advertised{};
  ASSERT_EQ(test_support::ndp_and_ping6(c, test_mac(1), kGuestIp6, kTapIp6, 10s, &advertised), "");
  EXPECT_EQ(advertised, *tap_mac);

  const auto stats = sw_.stats();
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  const auto* tap = tap_stats(*stats);
  ASSERT_NE(tap, nullptr) << stats->text;
  EXPECT_GE(tap->get("rx_frames"), 2u);  // ARP reply, echo reply
  EXPECT_GE(tap->get("tx_frames"), 2u);  // ARP request, echo request
}

TEST_F(TapTest, PersistentTapMadeByRootIsAttachedAsItIs) {
  // The how-to's one-time root step: a persistent tap, down, with an address.
  ASSERT_TRUE(start({"--tap", "qs0"}, std::string("ip tuntap add qs0 mode tap && "
                                                  "ip addr add 10.0.0.1/24 dev qs0 && ") +
                                          kAddTapIp6));
  // Left as it was: still down (qswitch only sets up taps it creates).
  ASSERT_TRUE(sh("! ip link show qs0 | grep -q '<.*,UP.*>'"));
  ASSERT_TRUE(sh("ip link set qs0 up"));
  FrameClient c;
  ASSERT_TRUE(client(&c));
  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  EXPECT_EQ(test_support::arp_resolve(c, test_mac(1), ipv4(10, 0, 0, 2), kTapIp, 10s), "");
  EXPECT_EQ(test_support::ndp_and_ping6(c, test_mac(1), kGuestIp6, kTapIp6, 10s), "");
}

TEST_F(TapTest, DeletedTapClosesOnlyItsPort) {
  ASSERT_TRUE(start({"--tap", "qs0"}));
  ASSERT_TRUE(sh(std::string("ip addr add 10.0.0.1/24 dev qs0 && ") + kAddTapIp6));
  FrameClient a, b;
  ASSERT_TRUE(client(&a));
  ASSERT_TRUE(client(&b));
  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  ASSERT_EQ(test_support::arp_resolve(a, test_mac(1), ipv4(10, 0, 0, 2), kTapIp, 10s), "");
  ASSERT_EQ(test_support::ndp_and_ping6(a, test_mac(1), kGuestIp6, kTapIp6, 10s), "");

  ASSERT_TRUE(sh("ip link del qs0"));
  bool closed = false;
  for (int i = 0; i < 500 && !closed; ++i) {  // polling `ports`, bounded (5 s and more)
    const auto live = sw_.stats();
    ASSERT_TRUE(live.has_value()) << sw_.error();
    closed = tap_stats(*live) == nullptr;
    if (!closed) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(closed) << "the tap port did not close";
  // The log's subject: the user is told once that the interface is gone.
  ASSERT_TRUE(sw_.wait_for_stderr("is gone", 2000ms).has_value()) << sw_.stderr_text();
  EXPECT_EQ(sw_.count_stderr_lines("is gone"), 1u);

  // The stream ports still forward, both ways, unicast after learning.
  b.drain(200ms);
  const auto f1 = test_support::make_frame(test_support::kBroadcastMac, test_mac(1), 100, 1);
  ASSERT_TRUE(a.send_frame(f1));
  auto r = b.recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 1u; }, 3000ms);
  ASSERT_TRUE(r.ok()) << test_support::to_string(r.status);
  ASSERT_TRUE(b.send_frame(test_support::make_frame(test_mac(1), test_mac(2), 100, 2)));
  r = a.recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 2u; }, 3000ms);
  ASSERT_TRUE(r.ok()) << test_support::to_string(r.status);
  EXPECT_TRUE(sw_.running());

  const auto live = sw_.stats();
  ASSERT_TRUE(live.has_value()) << sw_.error();
  EXPECT_EQ(tap_stats(*live), nullptr) << live->text;
  // A closed port's final counters are in `stats`' closed_ports: it lists the tap.
  const auto stats = sw_.stats();
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  bool closed_listed = false;
  for (const auto& p : stats->closed_ports) closed_listed |= p.peer == "tap:qs0";
  EXPECT_TRUE(closed_listed) << stats->text;
}

TEST_F(TapTest, FramesForADownLinkAreCountedAndThePortStays) {
  ASSERT_TRUE(start({"--tap", "qs0"}));
  ASSERT_TRUE(sh("ip addr add 10.0.0.1/24 dev qs0 && ip link set qs0 down"));
  FrameClient c;
  ASSERT_TRUE(client(&c));
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        c.send_frame(test_support::make_frame(test_support::kBroadcastMac, test_mac(1), 80, i)));
  }
  uint64_t link_down = 0;
  for (int i = 0; i < 50 && link_down < 3; ++i) {
    const auto stats = sw_.stats();
    ASSERT_TRUE(stats.has_value()) << sw_.error();
    const auto* tap = tap_stats(*stats);
    ASSERT_NE(tap, nullptr) << "the tap port closed: " << stats->text;
    ASSERT_TRUE(tap->has("tap_link_down")) << stats->text;
    link_down = tap->get("tap_link_down");
    if (link_down < 3) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(link_down, 3u);
  EXPECT_LE(sw_.count_stderr_lines("link is down"), 1u);  // rate-limited
  // The IPv6 address goes on once the link is up again (a link going down flushes it).
  ASSERT_TRUE(sh(std::string("ip link set qs0 up && ") + kAddTapIp6));
  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  EXPECT_EQ(test_support::arp_resolve(c, test_mac(1), ipv4(10, 0, 0, 2), kTapIp, 10s), "");
  EXPECT_EQ(test_support::ndp_and_ping6(c, test_mac(1), kGuestIp6, kTapIp6, 10s), "");
}

// Issue 9: a receiver that never reads holds nobody back, with the tap as the sender. The tap
// port reads frames into receive chunks of its own (DatagramRx); before the fix, once S's queue
// held a broadcast from each of them, the switch stopped reading the tap for good. A is a packet
// socket on the tap inside the namespace: what it sends, the tap hands to qswitch.
TEST_F(TapTest, TapSenderKeepsGoingPastAStreamReceiverThatNeverReads) {
  ASSERT_TRUE(start({"--tap", "qs0"}));
  FrameClient b;
  ASSERT_TRUE(client(&b));
  FrameClient s;
  {
    std::string error;
    auto c = FrameClient::connect(address_, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    ASSERT_TRUE(c) << error;
    s = std::move(*c);
  }
  const Mac ma = test_mac(1), mb = test_mac(2), ms = test_mac(3);
  auto from = [](const Mac& src) {
    return [src](const std::vector<uint8_t>& f) { return test_support::frame_src(f) == src; };
  };
  // B and S make themselves known; from here on S never reads.
  ASSERT_TRUE(b.send_frame(test_support::make_frame(test_support::kBroadcastMac, mb, 64, 1)));
  ASSERT_TRUE(s.send_frame(test_support::make_frame(test_support::kBroadcastMac, ms, 64, 2)));
  ASSERT_TRUE(b.recv_frame_matching(from(ms), 3000ms).ok()) << "B did not see S's broadcast";

  std::string error;
  sockaddr_storage to{};
  const int fd = stuck::in_netns_thread(
      ns_->name(),
      [&to](std::string* why) {
        const int ifindex = static_cast<int>(::if_nametoindex("qs0"));
        const int sock = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // sends only
        if (ifindex == 0 || sock < 0) {
          *why = std::string("packet socket on qs0: ") + std::strerror(errno);
          if (sock >= 0) ::close(sock);
          return -1;
        }
        auto& ll = reinterpret_cast<sockaddr_ll&>(to);
        ll.sll_family = AF_PACKET;
        ll.sll_ifindex = ifindex;
        ll.sll_protocol = htons(test_support::kTestEthertype);
        ll.sll_halen = 6;
        return sock;
      },
      &error);
  ASSERT_GE(fd, 0) << error;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const stuck::SendFrames send_a = stuck::datagram_sender(fd, {}, to, sizeof(sockaddr_ll));
  std::vector<std::vector<uint8_t>> first = {
      test_support::make_frame(test_support::kBroadcastMac, ma, 64, 0x30000000)};
  ASSERT_TRUE(send_a(first, 2000ms, &error)) << error;
  ASSERT_TRUE(b.recv_frame_matching(from(ma), 3000ms).ok()) << "B did not see A's broadcast";

  const stuck::Traffic t;
  const stuck::Outcome o = stuck::run_windowed(send_a, b, ma, mb, t);
  stuck::expect_everything_arrived(o, t);
  const auto rows = stuck::ports(sw_.control(), &error);
  ASSERT_TRUE(rows.is_array()) << error;
  const auto row = stuck::row_with_mac(rows, ms);
  ASSERT_TRUE(row.is_object()) << "no port has learned S's MAC: " << rows.dump();
  EXPECT_GT(stuck::counter(row, "drop_queue_full").value_or(0), 0u)
      << "S's queue never overflowed: " << row.dump();
  EXPECT_GT(stuck::counter(row, "tx_copied").value_or(0), 0u)
      << "S's queue never let go of the tap's receive chunks: " << row.dump();
}

// Taps exchange large TCP segments with the kernel (IFF_VNET_HDR and TUNSETOFFLOAD, as QEMU's
// tap backend does): a TCP transfer between two namespaces linked by qswitch's two taps crosses
// as the kernel's large segments, whole (no software cut), and completes.
TEST_F(TapTest, LargeTcpSegmentsCrossBetweenTwoTapsWhole) {
  ASSERT_TRUE(start({"--tap", "qs0", "--tap", "qs1"}));
  Netns peer("tapb");
  ASSERT_TRUE(peer.ok()) << peer.error();
  ASSERT_TRUE(sh("ip link set qs1 netns " + peer.name() + " && ip addr add 10.0.0.1/24 dev qs0"));
  std::string error;
  ASSERT_TRUE(
      peer.sh_ok("ip link set lo up && ip addr add 10.0.0.2/24 dev qs1 && "
                 "ip link set qs1 up",
                 &error))
      << error;
  // The server ends by itself after one client, or after 60 s (timeout) if none comes.
  ASSERT_TRUE(peer.sh_ok("timeout 60 iperf3 -s -1 >/dev/null 2>&1 &", &error)) << error;
  ASSERT_TRUE(
      peer.sh_ok("i=0; while [ $i -lt 100 ] && ! ss -ltn | grep -q ':5201 '; do "
                 "i=$((i+1)); sleep 0.05; done; ss -ltn | grep -q ':5201 '",
                 &error))
      << "iperf3 server: " << error;
  const test_support::CommandOutcome client =
      ns_->sh("timeout 60 iperf3 -c 10.0.0.2 -n 64M -f m", 70000ms);
  std::cout << client.output;
  ASSERT_TRUE(client.ok()) << client.output;
  EXPECT_NE(client.output.find("iperf Done."), std::string::npos) << client.output;

  const auto stats = sw_.stats();
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  const test_support::PortStats* sender = nullptr;
  const test_support::PortStats* receiver = nullptr;
  for (const auto& [id, p] : stats->ports) {
    if (p.peer == "tap:qs0") sender = &p;
    if (p.peer == "tap:qs1") receiver = &p;
  }
  ASSERT_TRUE(sender != nullptr && receiver != nullptr) << stats->text;
  EXPECT_GT(sender->get("tap_gso_frames"), 0u) << stats->text;
  EXPECT_EQ(sender->get("tap_bad_offload"), 0u) << stats->text;
  EXPECT_EQ(receiver->get("tap_bad_offload"), 0u) << stats->text;
  // iperf3 ends with some data still in flight: most of it, in frames far larger than the MTU.
  EXPECT_GT(receiver->get("tx_bytes"), 32u << 20) << stats->text;
  EXPECT_LT(receiver->get("tx_frames") * 3000, receiver->get("tx_bytes")) << stats->text;
  // Whole: the receiving tap takes the kernel's large segments, nothing was cut.
  EXPECT_EQ(stats->switch_counters.count("gso_cut") ? stats->switch_counters.at("gso_cut") : 1u, 0u)
      << stats->text;
}

}  // namespace
}  // namespace qswitch::integration
