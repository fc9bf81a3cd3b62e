// tests/e2e/net_e2e_test.cc: real QEMU guests on tap and VXLAN ports, with qswitch inside network
// namespaces the tests create (tests/support/netns.h).
//
// Theory of operation: qswitch runs in a namespace (`ip netns exec NS qswitch ...`); the guests
// run here and join through its unix stream socket in the test's temp dir (a path crosses
// namespaces). What is asserted is what was observed: the kernel's own ping inside a namespace,
// the guests' ping on their consoles, and qswitch's counters read back after SIGUSR1.
// - Tap: the namespace's address on the tap (10.0.0.1/24) pings guest g1.
// - Kernel VXLAN: namespace Q runs qswitch (underlay 10.1.1.1); K has a kernel vxlan device (id
//   42, dstport 4789) on bridge br0 with a veth to H, the host 10.0.0.2/24; g1 pings H.
// - Two switches: qswitch in A and in B joined by VXLAN over a veth; g1 on A, g2 on B ping.
// Guests: g<i> at 10.0.0.<10+i>/24 (guest_lab.h). Needs root, iproute2, vxlan/veth/bridge: the
// tests FAIL saying what is missing.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_lab.h"
#include "tests/support/netns.h"
#include "tests/support/qswitch_process.h"

namespace qswitch::e2e {
namespace {

using test_support::Netns;

// Pings from inside a namespace: busybox (busybox-static, already needed for the guest image).
const std::string kPing = "busybox ping";

class NetE2eTest : public GuestLabTest {
 protected:
  void TearDown() override {
    for (auto& s : switches_) {
      if (HasFailure()) std::cerr << "--- qswitch stderr:\n" << s->stderr_text() << "---\n";
      s->kill_now();
    }
  }

  Netns& ns(const std::string& tag) {
    namespaces_.push_back(std::make_unique<Netns>(tag));
    return *namespaces_.back();
  }

  static void sh(const Netns& n, const std::string& script) {
    std::string error;
    ASSERT_TRUE(n.sh_ok(script, &error)) << error;
  }

  // qswitch in `n`, listening on unix:<dir>/<name>.sock; returns that path.
  std::string start_in(const Netns& n, const std::string& name,
                       const std::vector<std::string>& extra) {
    const std::string path = dir_.file(name + ".sock");
    std::vector<std::string> args = {"--no-slirp", "--listen", "unix:" + path};
    args.insert(args.end(), extra.begin(), extra.end());
    switches_.push_back(std::make_unique<test_support::QswitchProcess>());
    auto& p = *switches_.back();
    EXPECT_TRUE(p.start(n.launch_in(qswitch_binary(), args, dir_.file(name + ".log")), 10s))
        << p.error();
    return path;
  }

  // Runs `command` on g's console; its exit code must be 0.
  static void expect_command_ok(Guest& g, const std::string& command) {
    CommandResult r = g.run(command, kPingTimeout);
    ASSERT_TRUE(r.completed) << command << " did not finish" << g.diagnostics();
    std::cout << "[ " << g.options().name << " ] " << command << "\n" << r.output;
    EXPECT_EQ(r.exit_code, 0) << command << ":\n" << r.output;
  }

  std::vector<std::unique_ptr<Netns>> namespaces_;  // deleted after the switches stop
  std::vector<std::unique_ptr<test_support::QswitchProcess>> switches_;
};

TEST_F(NetE2eTest, NamespaceAddressOnATapPingsAGuest) {
  Netns& n = ns("e2etap");
  ASSERT_TRUE(n.ok()) << n.error();
  const std::string sock = start_in(n, "tap", {"--tap", "qs0"});
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(sh(n, "ip addr add 10.0.0.1/24 dev qs0 && ip link set qs0 up"));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  // busybox's ping (busybox-static is a dependency already; iputils may be absent).
  const auto ping = n.sh(kPing + " -c 3 -W 5 10.0.0.11", std::chrono::seconds(40));
  std::cout << "[ ns ping  ]\n" << ping.output;
  EXPECT_TRUE(ping.ok()) << ping.output;
  EXPECT_NE(ping.output.find("3 packets transmitted, 3 packets received"), std::string::npos)
      << ping.output;
  // And the other way: the guest reaches the namespace.
  ASSERT_NO_FATAL_FAILURE(expect_command_ok(*guests_[0], "ping -c 2 -i 0.2 -w 20 10.0.0.1"));
}

TEST_F(NetE2eTest, GuestPingsAHostBehindAKernelVxlanBridge) {
  Netns& q = ns("e2eq");
  Netns& k = ns("e2ek");
  Netns& h = ns("e2eh");
  for (Netns* n : {&q, &k, &h}) ASSERT_TRUE(n->ok()) << n->error();
  std::string error;
  ASSERT_TRUE(test_support::add_veth(q, "uq", k, "uk", &error)) << error;
  ASSERT_TRUE(test_support::add_veth(k, "hk", h, "hh", &error)) << error;
  ASSERT_NO_FATAL_FAILURE(sh(q, "ip addr add 10.1.1.1/24 dev uq && ip link set uq up"));
  ASSERT_NO_FATAL_FAILURE(
      sh(k,
         "ip addr add 10.1.1.2/24 dev uk && ip link set uk up && "
         "ip link add vx0 type vxlan id 42 dstport 4789 local 10.1.1.2 remote 10.1.1.1 dev uk && "
         "ip link add br0 type bridge && ip link set vx0 master br0 && "
         "ip link set hk master br0 && ip link set vx0 up && ip link set hk up && "
         "ip link set br0 up"));
  ASSERT_NO_FATAL_FAILURE(sh(h, "ip addr add 10.0.0.2/24 dev hh && ip link set hh up"));
  const std::string sock =
      start_in(q, "q", {"--vxlan", "vni=42,local=10.1.1.1:4789,remote=10.1.1.2"});
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_command_ok(*guests_[0], "ping -c 3 -i 0.2 -w 20 10.0.0.2"));
  const auto back = h.sh(kPing + " -c 2 -W 5 10.0.0.11", std::chrono::seconds(30));
  EXPECT_TRUE(back.ok()) << back.output;
  EXPECT_NE(back.output.find("2 packets transmitted, 2 packets received"), std::string::npos)
      << back.output;
  const auto stats = switches_[0]->stats(5s);
  ASSERT_TRUE(stats.has_value()) << switches_[0]->error();
  bool seen = false;
  for (const auto& [id, p] : stats->ports) {
    if (p.peer.rfind("vxlan:", 0) != 0) continue;
    seen = true;
    EXPECT_GE(p.get("rx_frames"), 3u) << stats->text;
    EXPECT_GE(p.get("tx_frames"), 3u) << stats->text;
  }
  EXPECT_TRUE(seen) << stats->text;
}

TEST_F(NetE2eTest, GuestsOnTwoSwitchesJoinedByVxlanPingEachOther) {
  Netns& a = ns("e2ea");
  Netns& b = ns("e2eb");
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  std::string error;
  ASSERT_TRUE(test_support::add_veth(a, "ua", b, "ub", &error)) << error;
  ASSERT_NO_FATAL_FAILURE(sh(a, "ip addr add 10.2.0.1/24 dev ua && ip link set ua up"));
  ASSERT_NO_FATAL_FAILURE(sh(b, "ip addr add 10.2.0.2/24 dev ub && ip link set ub up"));
  const std::string sa = start_in(a, "a", {"--vxlan", "vni=7,local=10.2.0.1,remote=10.2.0.2"});
  const std::string sb = start_in(b, "b", {"--vxlan", "vni=7,local=10.2.0.2,remote=10.2.0.1"});
  ASSERT_FALSE(HasFailure());
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sa, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sb, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
}

}  // namespace
}  // namespace qswitch::e2e
