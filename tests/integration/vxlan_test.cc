// tests/integration/vxlan_test.cc: the VXLAN port against Linux's own vxlan devices and against
// another qswitch, all inside network namespaces the tests create.
//
// Topologies
// - Kernel interop: namespace Q runs qswitch (underlay 10.1.1.1 on veth uq); namespace K has
//   the other end (uk, 10.1.1.2), a kernel vxlan device (id 42, dstport 4789, remote 10.1.1.1)
//   on bridge br0, and a veth from br0 to namespace H, the "host" 10.0.0.2/24 and fd00::2/64. A
//   FrameClient on a stream port of qswitch is 10.0.0.1 and fd00::1: it ARPs for H, then pings
//   it over ICMPv6 across VXLAN (test_support::ndp_and_ping6).
// - Two switches: namespaces A and B joined by a veth (10.2.0.1 / 10.2.0.2), a qswitch in each
//   with a VXLAN port to the other, a FrameClient on each.
// - Mesh: three qswitches in one namespace on 127.0.0.1/2/3, each with the other two as
//   remotes: split horizon keeps a broadcast from looping.
// - Stuck receiver (issue 9): one qswitch in a namespace on 127.0.0.1 whose remote, 127.0.0.2, is
//   a UDP socket of the test's made inside the namespace (tests/integration/stuck_peer.h).
// Crafted datagrams (bad flag, wrong VNI, runt, unknown sender) are sent from inside K by a
// forked child that setns()es there. Needs root, iproute2 and the vxlan/veth/bridge drivers:
// without them the tests FAIL saying so.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/stuck_peer.h"
#include "tests/support/control_client.h"
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

constexpr test_support::Ipv6 kGuestIp6 = test_support::ipv6_ula(1);  // the FrameClient
constexpr test_support::Ipv6 kHostIp6 = test_support::ipv6_ula(2);   // H, behind the bridge

// One qswitch inside a namespace, listening on unix:<dir>/<name>.sock.
struct Switch {
  QswitchProcess process;
  std::string address;
  FrameClient client;
};

class VxlanTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& s : switches_) {
      if (HasFailure()) {
        std::cerr << "--- " << s->address << " stdout:\n"
                  << s->process.stdout_text() << "--- stderr:\n"
                  << s->process.stderr_text() << "---\n";
      }
      s->process.kill_now();
    }
  }

  Netns& ns(const std::string& tag) {
    namespaces_.push_back(std::make_unique<Netns>(tag));
    return *namespaces_.back();
  }

  static ::testing::AssertionResult sh(const Netns& n, const std::string& script) {
    std::string error;
    if (!n.sh_ok(script, &error)) return ::testing::AssertionFailure() << error;
    return ::testing::AssertionSuccess();
  }

  // Starts qswitch in `n` with a unix listener and `extra`, and connects one client to it.
  ::testing::AssertionResult start(const Netns& n, const std::string& name,
                                   const std::vector<std::string>& extra, Switch** out) {
    if (tmp_.path().empty()) return ::testing::AssertionFailure() << "no temp dir";
    switches_.push_back(std::make_unique<Switch>());
    Switch& s = *switches_.back();
    s.address = "unix:" + tmp_.file(name + ".sock");
    std::vector<std::string> args = {"--no-slirp", "--listen", s.address};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!s.process.start(n.launch_in(QSWITCH_BINARY, args, tmp_.file(name + ".stderr")), 10000ms)) {
      return ::testing::AssertionFailure() << name << " did not start: " << s.process.error();
    }
    std::string error;
    auto c = FrameClient::connect(s.address, &error);
    if (!c) return ::testing::AssertionFailure() << "connect " << s.address << ": " << error;
    s.client = std::move(*c);
    *out = &s;
    return ::testing::AssertionSuccess();
  }

  static const test_support::PortStats* vxlan_stats(const test_support::StatsSnapshot& s) {
    for (const auto& [id, p] : s.ports) {
      if (p.peer.rfind("vxlan:", 0) == 0) return &p;
    }
    return nullptr;
  }

  // The kernel-interop topology (see the file comment); returns Q.
  ::testing::AssertionResult kernel_topology(Netns** q_out, Netns** k_out) {
    Netns& q = ns("q");
    Netns& k = ns("k");
    Netns& h = ns("h");
    for (Netns* n : {&q, &k, &h}) {
      if (!n->ok()) return ::testing::AssertionFailure() << n->error();
    }
    std::string error;
    if (!test_support::add_veth(q, "uq", k, "uk", &error) ||
        !test_support::add_veth(k, "hk", h, "hh", &error)) {
      return ::testing::AssertionFailure() << error;
    }
    auto r = sh(q, "ip addr add 10.1.1.1/24 dev uq && ip link set uq up");
    if (r) {
      r = sh(k,
             "ip addr add 10.1.1.2/24 dev uk && ip link set uk up && "
             "ip link add vx0 type vxlan id 42 dstport 4789 local 10.1.1.2 remote 10.1.1.1 dev uk "
             "|| { echo 'cannot create a kernel vxlan device (is the vxlan module available?)'; "
             "exit 1; }; "
             "ip link add br0 type bridge && ip link set vx0 master br0 && "
             "ip link set hk master br0 && ip link set vx0 up && ip link set hk up && "
             "ip link set br0 up");
    }
    if (r) {
      r = sh(h,
             "ip addr add 10.0.0.2/24 dev hh && ip -6 addr add fd00::2/64 dev hh nodad && "
             "ip link set hh up");
    }
    if (!r) return r;
    *q_out = &q;
    *k_out = &k;
    return ::testing::AssertionSuccess();
  }

  test_support::TempDir tmp_;
  // Destroyed after switches_ (declared first): every qswitch is gone before its namespace.
  std::vector<std::unique_ptr<Netns>> namespaces_;
  std::vector<std::unique_ptr<Switch>> switches_;
};

TEST_F(VxlanTest, HostBehindAKernelVxlanBridgeAnswersPing) {
  Netns* q = nullptr;
  Netns* k = nullptr;
  ASSERT_TRUE(kernel_topology(&q, &k));
  Switch* s = nullptr;
  ASSERT_TRUE(start(*q, "q", {"--vxlan", "vni=42,local=10.1.1.1:4789,remote=10.1.1.2"}, &s));
  const std::string out = s->process.stdout_text();
  EXPECT_NE(out.find("vxlan vni=42 local=10.1.1.1:4789 remote=10.1.1.2:4789\n"), std::string::npos)
      << out;

  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  EXPECT_EQ(
      test_support::arp_resolve(s->client, test_mac(1), ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 15s),
      "");
  EXPECT_EQ(test_support::ndp_and_ping6(s->client, test_mac(1), kGuestIp6, kHostIp6, 15s), "");
  // A second ping: the kernel's FDB and ours have learned, unicast both ways.
  EXPECT_EQ(
      test_support::arp_resolve(s->client, test_mac(1), ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 10s),
      "");
  EXPECT_EQ(
      test_support::ndp_and_ping6(s->client, test_mac(1), kGuestIp6, kHostIp6, 10s, nullptr, 2),
      "");
  // The kernel learned our guest's MAC behind 10.1.1.1.
  EXPECT_TRUE(sh(*k, "bridge fdb show dev vx0 | grep -q '02:71:00:00:00:01 dst 10.1.1.1'"));

  const auto stats = s->process.stats();
  ASSERT_TRUE(stats.has_value()) << s->process.error();
  const auto* vx = vxlan_stats(*stats);
  ASSERT_NE(vx, nullptr) << stats->text;
  EXPECT_GE(vx->get("rx_frames"), 3u);
  EXPECT_GE(vx->get("tx_frames"), 3u);
  EXPECT_EQ(vx->get("vxlan_bad_header"), 0u);
  EXPECT_EQ(vx->get("vxlan_unknown_remote"), 0u);
}

// vlan= maps the VNI to one VLAN, as a hardware VTEP does: the host behind the kernel's vxlan
// device answers a client on an access port of VLAN 10, untagged both ways, and the client on
// VLAN 1 (the default listener) reaches nothing through the VXLAN port.
TEST_F(VxlanTest, AVniMapsToOneVlan) {
  Netns* q = nullptr;
  Netns* k = nullptr;
  ASSERT_TRUE(kernel_topology(&q, &k));
  Switch* s = nullptr;
  const std::string v10 = "unix:" + tmp_.file("v10.sock");
  ASSERT_TRUE(start(*q, "q",
                    {"--listen", v10 + ",vlan=10", "--vxlan",
                     "vni=42,vlan=10,local=10.1.1.1:4789,remote=10.1.1.2"},
                    &s));
  std::string error;
  auto in_vlan10 = FrameClient::connect(v10, &error);
  ASSERT_TRUE(in_vlan10) << error;
  EXPECT_EQ(
      test_support::arp_resolve(*in_vlan10, test_mac(2), ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 15s),
      "");
  EXPECT_EQ(test_support::ndp_and_ping6(*in_vlan10, test_mac(2), kGuestIp6, kHostIp6, 15s), "");
  // VLAN 1's client: its ARP request never leaves through the VXLAN port, no answer comes.
  EXPECT_NE(
      test_support::arp_resolve(s->client, test_mac(1), ipv4(10, 0, 0, 3), ipv4(10, 0, 0, 2), 2s),
      "");
  const auto stats = s->process.stats();
  ASSERT_TRUE(stats.has_value()) << s->process.error();
  const auto* vx = vxlan_stats(*stats);
  ASSERT_NE(vx, nullptr) << stats->text;
  EXPECT_GE(vx->get("rx_frames"), 2u);
  // Only VLAN 10's frames went out: the ARP request, the neighbour solicitation, the echo.
  EXPECT_LE(vx->get("tx_frames"), 4u) << stats->text;
  // The kernel learned VLAN 10's guest behind us, never VLAN 1's.
  EXPECT_TRUE(sh(*k, "bridge fdb show dev vx0 | grep -q '02:71:00:00:00:02 dst 10.1.1.1'"));
  EXPECT_TRUE(sh(*k, "! bridge fdb show dev vx0 | grep -q '02:71:00:00:00:01'"));
}

TEST_F(VxlanTest, BadDatagramsAreDroppedAndCountedAndNothingElseNotices) {
  Netns* q = nullptr;
  Netns* k = nullptr;
  ASSERT_TRUE(kernel_topology(&q, &k));
  ASSERT_TRUE(sh(*k, "ip addr add 10.1.1.3/24 dev uk"));  // an address no --vxlan remote names
  Switch* s = nullptr;
  ASSERT_TRUE(start(*q, "q", {"--vxlan", "vni=42,local=10.1.1.1:4789,remote=10.1.1.2"}, &s));
  FrameClient other;
  {
    std::string error;
    auto c = FrameClient::connect(s->address, &error);
    ASSERT_TRUE(c) << error;
    other = std::move(*c);
  }

  // Built before the fork: the child only makes syscalls.
  const auto inner = test_support::make_frame(test_mac(1), test_mac(50), 64, 1);
  auto datagram = [&](uint8_t flags, uint32_t vni, size_t inner_size) {
    std::vector<uint8_t> d(8 + inner_size, 0);
    d[0] = flags;
    d[4] = static_cast<uint8_t>(vni >> 16);
    d[5] = static_cast<uint8_t>(vni >> 8);
    d[6] = static_cast<uint8_t>(vni);
    std::memcpy(d.data() + 8, inner.data(), std::min(inner_size, inner.size()));
    return d;
  };
  const auto no_i_flag = datagram(0x00, 42, inner.size());
  const auto wrong_vni = datagram(0x08, 43, inner.size());
  const auto runt = datagram(0x08, 42, 10);
  const auto from_stranger = datagram(0x08, 42, inner.size());
  auto send_from = [](const char* src_ip, const std::vector<uint8_t>& bytes) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, src_ip, &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(4789);
    inet_pton(AF_INET, "10.1.1.1", &dst.sin_addr);
    const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) == 0 &&
                    ::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&dst),
                             sizeof(dst)) == static_cast<ssize_t>(bytes.size());
    if (fd >= 0) ::close(fd);
    return ok;
  };
  const int rc = k->in_netns([&] {
    bool ok = send_from("10.1.1.2", no_i_flag);
    ok = send_from("10.1.1.2", wrong_vni) && ok;
    ok = send_from("10.1.1.2", runt) && ok;
    ok = send_from("10.1.1.3", from_stranger) && ok;
    return ok ? 0 : 1;
  });
  ASSERT_EQ(rc, 0) << "sending crafted datagrams from inside " << k->name() << " failed";

  const test_support::PortStats* vx = nullptr;
  std::optional<test_support::StatsSnapshot> stats;
  for (int i = 0; i < 50; ++i) {
    stats = s->process.stats();
    ASSERT_TRUE(stats.has_value()) << s->process.error();
    vx = vxlan_stats(*stats);
    ASSERT_NE(vx, nullptr) << "the vxlan port closed: " << stats->text;
    if (vx->get("vxlan_unknown_remote") + vx->get("drop_bad_length") + vx->get("vxlan_bad_header") +
            vx->get("vxlan_wrong_vni") >=
        4) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(vx->has("vxlan_bad_header")) << stats->text;
  EXPECT_EQ(vx->get("vxlan_bad_header"), 1u) << stats->text;
  EXPECT_EQ(vx->get("vxlan_wrong_vni"), 1u) << stats->text;
  EXPECT_EQ(vx->get("drop_bad_length"), 1u) << stats->text;
  EXPECT_EQ(vx->get("vxlan_unknown_remote"), 1u) << stats->text;
  // rx_frames is not asserted: the kernel side may send its own frames (IPv6 router
  // solicitations, MLD) at any time. That no crafted frame was forwarded is checked below by
  // their source MAC.
  EXPECT_GE(s->process.count_stderr_lines("dropped a datagram from"), 1u);
  // Nothing reached the guests.
  size_t got = 0;
  for (FrameClient* c : {&s->client, &other}) {
    auto r = c->recv_frame_matching(
        [](const std::vector<uint8_t>& f) { return test_support::frame_src(f) == test_mac(50); },
        300ms);
    got += r.ok() ? 1 : 0;
  }
  EXPECT_EQ(got, 0u);
  // Everything else still works: the stream ports, and the path to H across VXLAN.
  ASSERT_TRUE(
      other.send_frame(test_support::make_frame(test_support::kBroadcastMac, test_mac(2), 80, 9)));
  auto r = s->client.recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 9u; }, 3000ms);
  EXPECT_TRUE(r.ok()) << test_support::to_string(r.status);
  // The echo is ICMPv6: what is tested is forwarding through the port, the echo family is
  // incidental (IPv4 ICMP replies can fail machine-wide with a kernel ICMP socket leak).
  EXPECT_EQ(
      test_support::arp_resolve(s->client, test_mac(1), ipv4(10, 0, 0, 1), ipv4(10, 0, 0, 2), 15s),
      "");
  EXPECT_EQ(test_support::ndp_and_ping6(s->client, test_mac(1), kGuestIp6, kHostIp6, 15s), "");
}

TEST_F(VxlanTest, TwoSwitchesInTwoNamespacesForwardBetweenTheirStreamPorts) {
  Netns& a = ns("a");
  Netns& b = ns("b");
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  std::string error;
  ASSERT_TRUE(test_support::add_veth(a, "ua", b, "ub", &error)) << error;
  ASSERT_TRUE(sh(a, "ip addr add 10.2.0.1/24 dev ua && ip link set ua up"));
  ASSERT_TRUE(sh(b, "ip addr add 10.2.0.2/24 dev ub && ip link set ub up"));
  Switch* sa = nullptr;
  Switch* sb = nullptr;
  ASSERT_TRUE(start(a, "a", {"--vxlan", "vni=7,local=10.2.0.1:4789,remote=10.2.0.2:4789"}, &sa));
  ASSERT_TRUE(start(b, "b", {"--vxlan", "vni=7,local=10.2.0.2:4789,remote=10.2.0.1:4789"}, &sb));

  const Mac ma = test_mac(1);
  const Mac mb = test_mac(2);
  auto seq_is = [](uint32_t want) {
    return [want](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == want; };
  };
  ASSERT_TRUE(
      sa->client.send_frame(test_support::make_frame(test_support::kBroadcastMac, ma, 100, 1)));
  auto r = sb->client.recv_frame_matching(seq_is(1), 5000ms);
  ASSERT_TRUE(r.ok()) << "broadcast A->B: " << test_support::to_string(r.status);
  EXPECT_TRUE(test_support::frame_is_intact(r.frame, 100));
  ASSERT_TRUE(sb->client.send_frame(test_support::make_frame(ma, mb, 1400, 2)));
  r = sa->client.recv_frame_matching(seq_is(2), 5000ms);
  ASSERT_TRUE(r.ok()) << "unicast B->A: " << test_support::to_string(r.status);
  EXPECT_TRUE(test_support::frame_is_intact(r.frame, 1400));
  ASSERT_TRUE(sa->client.send_frame(test_support::make_frame(mb, ma, 60, 3)));
  r = sb->client.recv_frame_matching(seq_is(3), 5000ms);
  ASSERT_TRUE(r.ok()) << "unicast A->B: " << test_support::to_string(r.status);
}

TEST_F(VxlanTest, MeshOfThreeSwitchesDeliversABroadcastOnceAndUnicastToOneRemote) {
  Netns& m = ns("mesh");
  ASSERT_TRUE(m.ok()) << m.error();
  Switch* s[3] = {};
  for (int i = 0; i < 3; ++i) {
    std::string spec = "vni=99,local=127.0.0." + std::to_string(i + 1) + ":4789";
    for (int j = 0; j < 3; ++j) {
      if (j != i) spec += ",remote=127.0.0." + std::to_string(j + 1) + ":4789";
    }
    ASSERT_TRUE(start(m, "m" + std::to_string(i + 1), {"--vxlan", spec}, &s[i]));
  }
  const Mac mac[3] = {test_mac(1), test_mac(2), test_mac(3)};
  auto from = [](const Mac& src) {
    return [src](const std::vector<uint8_t>& f) { return test_support::frame_src(f) == src; };
  };
  // A broadcast from 1 reaches 2 and 3 exactly once, and never comes back to 1.
  ASSERT_TRUE(s[0]->client.send_frame(
      test_support::make_frame(test_support::kBroadcastMac, mac[0], 64, 1)));
  for (int i = 1; i < 3; ++i) {
    auto r = s[i]->client.recv_frame_matching(from(mac[0]), 5000ms);
    ASSERT_TRUE(r.ok()) << "switch " << i + 1 << ": " << test_support::to_string(r.status);
    r = s[i]->client.recv_frame_matching(from(mac[0]), 500ms);
    EXPECT_FALSE(r.ok()) << "switch " << i + 1 << " got the broadcast twice (a loop)";
  }
  EXPECT_FALSE(s[0]->client.recv_frame_matching(from(mac[0]), 300ms).ok()) << "echoed back";

  // 2 answers 1 by unicast: switch 2 learned mac[0] behind 127.0.0.1, so only 1 gets it; switch 3,
  // which never saw mac[1], would flood it to its client if it had received it.
  ASSERT_TRUE(s[1]->client.send_frame(test_support::make_frame(mac[0], mac[1], 64, 2)));
  auto r = s[0]->client.recv_frame_matching(from(mac[1]), 5000ms);
  ASSERT_TRUE(r.ok()) << test_support::to_string(r.status);
  // 1 answers 2: switch 1 learned mac[1] behind 127.0.0.2.
  ASSERT_TRUE(s[0]->client.send_frame(test_support::make_frame(mac[1], mac[0], 64, 3)));
  r = s[1]->client.recv_frame_matching(from(mac[0]), 5000ms);
  ASSERT_TRUE(r.ok()) << test_support::to_string(r.status);
  EXPECT_FALSE(s[2]->client
                   .recv_frame_matching(
                       [](const std::vector<uint8_t>& f) {
                         return test_support::frame_seq(f) == 2u ||
                                test_support::frame_seq(f) == 3u;
                       },
                       500ms)
                   .ok())
      << "switch 3 got a unicast meant for another switch";
}

// Issue 9: a receiver that never reads holds nobody back, with the VXLAN port as the sender. The
// VXLAN port reads into receive chunks of its own (DatagramRx); before the fix, once S's queue
// held a broadcast from each of them, the switch stopped reading the VXLAN socket for good. A is
// a UDP socket in the namespace at the configured remote, 127.0.0.2:4789, sending VXLAN
// datagrams (VNI 42) to qswitch at 127.0.0.1:4789; B and S are stream clients.
TEST_F(VxlanTest, VxlanSenderKeepsGoingPastAStreamReceiverThatNeverReads) {
  Netns& n = ns("stuck");
  ASSERT_TRUE(n.ok()) << n.error();
  Switch* q = nullptr;
  ASSERT_TRUE(start(n, "q", {"--vxlan", "vni=42,local=127.0.0.1:4789,remote=127.0.0.2:4789"}, &q));
  FrameClient& b = q->client;
  FrameClient s;
  {
    std::string error;
    auto c = FrameClient::connect(q->address, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    ASSERT_TRUE(c) << error;
    s = std::move(*c);
  }
  const Mac ma = test_mac(1), mb = test_mac(2), ms = test_mac(3);
  auto from = [](const Mac& src) {
    return [src](const std::vector<uint8_t>& f) { return test_support::frame_src(f) == src; };
  };
  // B and S make themselves known; from here on S never reads (nor does A read what qswitch
  // floods to the remote).
  ASSERT_TRUE(b.send_frame(test_support::make_frame(test_support::kBroadcastMac, mb, 64, 1)));
  ASSERT_TRUE(s.send_frame(test_support::make_frame(test_support::kBroadcastMac, ms, 64, 2)));
  ASSERT_TRUE(b.recv_frame_matching(from(ms), 3000ms).ok()) << "B did not see S's broadcast";

  std::string error;
  const int fd = stuck::in_netns_thread(
      n.name(),
      [](std::string* why) {
        const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in local{};
        local.sin_family = AF_INET;
        local.sin_port = htons(4789);
        inet_pton(AF_INET, "127.0.0.2", &local.sin_addr);
        sockaddr_in remote = local;
        inet_pton(AF_INET, "127.0.0.1", &remote.sin_addr);
        if (sock < 0 || ::bind(sock, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
            ::connect(sock, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
          *why = std::string("UDP socket at 127.0.0.2:4789: ") + std::strerror(errno);
          if (sock >= 0) ::close(sock);
          return -1;
        }
        return sock;
      },
      &error);
  ASSERT_GE(fd, 0) << error;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // RFC 7348 section 5: flags with the I bit, 24 reserved bits, the VNI, 8 reserved bits.
  const std::vector<uint8_t> header = {0x08, 0, 0, 0, 0, 0, 42, 0};
  const stuck::SendFrames send_a = stuck::datagram_sender(fd, header);
  std::vector<std::vector<uint8_t>> first = {
      test_support::make_frame(test_support::kBroadcastMac, ma, 64, 0x30000000)};
  ASSERT_TRUE(send_a(first, 2000ms, &error)) << error;
  ASSERT_TRUE(b.recv_frame_matching(from(ma), 3000ms).ok()) << "B did not see A's broadcast";

  const stuck::Traffic t;
  const stuck::Outcome o = stuck::run_windowed(send_a, b, ma, mb, t);
  stuck::expect_everything_arrived(o, t);
  const auto rows = stuck::ports(q->process.control(), &error);
  ASSERT_TRUE(rows.is_array()) << error;
  const auto row = stuck::row_with_mac(rows, ms);
  ASSERT_TRUE(row.is_object()) << "no port has learned S's MAC: " << rows.dump();
  EXPECT_GT(stuck::counter(row, "drop_queue_full").value_or(0), 0u)
      << "S's queue never overflowed: " << row.dump();
  EXPECT_GT(stuck::counter(row, "tx_copied").value_or(0), 0u)
      << "S's queue never let go of the VXLAN port's receive chunks: " << row.dump();
}

// A remote that is not there (nothing bound on its port) or not reachable at all (no route) never
// closes the VXLAN port: the datagrams are refused and counted, and the other remote still gets
// every frame, on the same port, once it comes up.
TEST_F(VxlanTest, UnreachableRemotesDoNotCloseThePort) {
  Netns& m = ns("unreach");
  ASSERT_TRUE(m.ok()) << m.error();
  Switch* a = nullptr;
  ASSERT_TRUE(start(
      m, "a", {"--vxlan", "vni=5,local=127.0.0.1:4789,remote=127.0.0.2:4789,remote=10.99.0.1:4789"},
      &a));
  std::string error;
  auto ctl = test_support::ControlClient::connect(a->process.control(), &error);
  ASSERT_TRUE(ctl.has_value()) << error;
  auto vxlan_row = [&]() {
    const test_support::LineResult r = ctl->request(R"({"cmd":"ports"})");
    const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
    if (reply.is_object() && reply.contains("result")) {
      for (const nlohmann::json& row : reply["result"]) {
        if (row.value("kind", "") == "vxlan") return row;
      }
    }
    return nlohmann::json();
  };
  const nlohmann::json before = vxlan_row();
  ASSERT_TRUE(before.is_object()) << "no vxlan port";
  const Mac ma = test_mac(1), mb = test_mac(2);
  // Broadcasts while 127.0.0.2 is down (port unreachable) and 10.99.0.1 has no route.
  uint64_t errors = 0;
  for (int i = 0; i < 50 && errors == 0; ++i) {
    ASSERT_TRUE(a->client.send_frame(test_support::make_frame(test_support::kBroadcastMac, ma, 64,
                                                              100 + static_cast<uint32_t>(i))));
    for (int polls = 0; polls < 20 && errors == 0; ++polls) {
      const nlohmann::json row = vxlan_row();
      ASSERT_TRUE(row.is_object()) << "the vxlan port closed";
      errors = row["counters"].value("vxlan_send_errors", uint64_t{0});
      if (errors == 0) std::this_thread::sleep_for(10ms);
    }
  }
  EXPECT_GT(errors, 0u) << "no send error counted for a remote without a route";
  // The other remote comes up: A's frames reach it, on the same port of A.
  Switch* b = nullptr;
  ASSERT_TRUE(start(m, "b", {"--vxlan", "vni=5,local=127.0.0.2:4789,remote=127.0.0.1:4789"}, &b));
  ASSERT_TRUE(
      a->client.send_frame(test_support::make_frame(test_support::kBroadcastMac, ma, 64, 1)));
  auto r = b->client.recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 1u; }, 5000ms);
  ASSERT_TRUE(r.ok()) << "A's broadcast did not reach B: " << test_support::to_string(r.status);
  ASSERT_TRUE(b->client.send_frame(test_support::make_frame(ma, mb, 64, 2)));
  r = a->client.recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 2u; }, 5000ms);
  ASSERT_TRUE(r.ok()) << "B's unicast did not reach A: " << test_support::to_string(r.status);
  const nlohmann::json after = vxlan_row();
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after["id"], before["id"]) << "the vxlan port was replaced";
}

}  // namespace
}  // namespace qswitch::integration
