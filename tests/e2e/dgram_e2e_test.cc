// tests/e2e/dgram_e2e_test.cc: real QEMU guests on qswitch's datagram ports, pinging guests on
// stream ports of the same switch.
//
// Theory of operation: one switch per test with a stream listener and the --dgram sockets under
// test; guests join with QEMU's own datagram backends: -netdev dgram over unix sockets (the
// switch learns each guest's path), -netdev dgram over UDP on 127.0.0.1 (a connected pair of
// ports), the legacy -netdev socket,udp=,localaddr=, and a learning UDP socket. Every guest pings
// every other one (guest_lab.h), and the switch's counters, read back after SIGUSR1, show every
// port carried frames both ways with no bad datagram. The multicast backend runs inside a
// network namespace the test creates (multicast on its own lo), with qswitch and the multicast
// guests started inside it; a stream guest outside joins through the unix socket.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>

#include <nlohmann/json.hpp>

#include "tests/e2e/guest_lab.h"
#include "tests/support/control_client.h"
#include "tests/support/netns.h"

namespace qswitch::e2e {
namespace {

class DgramE2eTest : public GuestLabTest {};

// A UDP port on 127.0.0.1 that was free a moment ago.
uint16_t free_udp_port() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  uint16_t port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0) {
    port = ntohs(sin.sin_port);
  }
  if (fd >= 0) ::close(fd);
  return port;
}

std::string udp_netdev(uint16_t local, uint16_t remote) {
  return "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=" + std::to_string(local) +
         ",remote.type=inet,remote.host=127.0.0.1,remote.port=" + std::to_string(remote);
}

TEST_F(DgramE2eTest, UnixDgramGuestsPingAStreamGuest) {
  const std::string sock = dir_.file("sw.sock");
  const std::string dgram = dir_.file("sw.dgram");
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--listen", "unix:" + sock, "--dgram", "unix:" + dgram, "--guests", "2"}));
  // The second join line is for the datagram socket: use it as printed.
  ASSERT_EQ(qswitch_.join_lines().size(), 2u) << qswitch_.stdout_text();
  static const std::regex join(R"(^join with: -netdev (\S+) -device \S*mac=([0-9a-fA-F:]{17}))");
  std::smatch m;
  const std::string line = qswitch_.join_lines()[1];
  ASSERT_TRUE(std::regex_search(line, m, join)) << line;
  const std::string printed = m[1].str();
  EXPECT_NE(printed.find("dgram,id=n0,local.type=unix,local.path="), std::string::npos) << line;
  EXPECT_NE(printed.find(",remote.type=unix,remote.path=" + dgram), std::string::npos) << line;
  GuestOptions g2 = guest_options(2, printed);
  g2.mac = m[2].str();

  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(g2));
  ASSERT_NO_FATAL_FAILURE(start_guest(
      guest_options(3, "dgram,id=n0,local.type=unix,local.path=" + dir_.file("g3.dgram") +
                           ",remote.type=unix,remote.path=" + dgram)));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(3));
  // The datagram guests' ports are named by the paths QEMU bound.
  EXPECT_TRUE(qswitch_.wait_for_stderr("up: unixgram:" + dir_.file("g3.dgram"), 1s).has_value())
      << qswitch_.stderr_text();
  guests_.clear();
  ASSERT_TRUE(qswitch_.signal(SIGTERM));
  std::optional<int> status = qswitch_.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "qswitch did not exit within 10 s of SIGTERM";
  EXPECT_EQ(*status, 0) << qswitch_.stderr_text();
  struct stat st;
  EXPECT_NE(::stat(dgram.c_str(), &st), 0) << "qswitch left " << dgram << " behind";
}

TEST_F(DgramE2eTest, UdpDgramAndLegacySocketUdpGuestsPingAStreamGuest) {
  const std::string sock = dir_.file("sw.sock");
  const uint16_t sw_a = free_udp_port(), guest_a = free_udp_port();
  const uint16_t sw_b = free_udp_port(), guest_b = free_udp_port();
  const uint16_t sw_c = free_udp_port();
  ASSERT_TRUE(sw_a && guest_a && sw_b && guest_b && sw_c) << "no free UDP port on 127.0.0.1";
  auto addr = [](uint16_t p) { return "127.0.0.1:" + std::to_string(p); };
  ASSERT_NO_FATAL_FAILURE(start_switch({
      "--listen",
      "unix:" + sock,
      // Connected: -netdev dgram with inet addresses.
      "--dgram",
      "udp:" + addr(sw_a) + "-" + addr(guest_a),
      // Connected: the legacy -netdev socket,udp=,localaddr=.
      "--dgram",
      "udp:" + addr(sw_b) + "-" + addr(guest_b),
      // Learning: the guest binds any port and the switch answers it there.
      "--dgram",
      "udp:" + addr(sw_c),
  }));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, udp_netdev(guest_a, sw_a))));
  ASSERT_NO_FATAL_FAILURE(start_guest(
      guest_options(3, "socket,id=n0,udp=" + addr(sw_b) + ",localaddr=" + addr(guest_b))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(4, udp_netdev(0, sw_c))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(4));
}

TEST_F(DgramE2eTest, MulticastGuestsInANamespacePingAStreamGuest) {
  test_support::Netns ns("mcast");
  ASSERT_TRUE(ns.ok()) << ns.error();
  std::string error;
  // A segment of our own: multicast on the namespace's loopback only.
  ASSERT_TRUE(
      ns.sh_ok("ip link set lo up && ip link set lo multicast on && "
               "ip route add 224.0.0.0/4 dev lo",
               &error))
      << error;
  const std::string sock = dir_.file("sw.sock");
  const std::string group = "230.0.0.1:" + std::to_string(20000 + ::getpid() % 20000);
  ASSERT_EQ(::access(qswitch_binary().c_str(), X_OK), 0) << qswitch_binary() << " is missing";
  LaunchOptions options = ns.launch_in(
      qswitch_binary(), {"--no-slirp", "--listen", "unix:" + sock, "--dgram", "mcast:" + group},
      dir_.file("qswitch.log"));
  ASSERT_TRUE(qswitch_.start(options, 10s)) << qswitch_.error();
  EXPECT_NE(qswitch_.stdout_text().find("dgram mcast:" + group + "\n"), std::string::npos)
      << qswitch_.stdout_text();

  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  for (int i = 2; i <= 3; ++i) {
    GuestOptions g = guest_options(i, "socket,id=n0,mcast=" + group);
    g.launcher = ns.exec_prefix();
    ASSERT_NO_FATAL_FAILURE(start_guest(g));
  }
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  std::optional<test_support::StatsSnapshot> stats = qswitch_.stats(5s);
  ASSERT_TRUE(stats.has_value()) << qswitch_.error();
  EXPECT_EQ(stats->ports.size(), 2u) << "the group is one port\n" << stats->text;
  // Our own frames come back from the group; were they taken in, the stream guest's MAC would
  // move to the multicast port.
  EXPECT_EQ(stats->switch_counters["mac_moves"], 0u) << stats->text;
  EXPECT_EQ(stats->switch_counters["dup_mac_events"], 0u) << stats->text;
  // ... and they did come back, and were counted as ours.
  auto ctl = test_support::ControlClient::connect(qswitch_.control(), &error);
  ASSERT_TRUE(ctl.has_value()) << error;
  const test_support::LineResult r = ctl->request(R"({"cmd":"stats"})");
  ASSERT_TRUE(r.ok()) << r.error;
  const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
  ASSERT_FALSE(reply.is_discarded()) << r.line;
  EXPECT_GT(reply["result"]["dgram_sockets"][0].value("drop_own", uint64_t{0}), 0u) << r.line;
  guests_.clear();
  ASSERT_TRUE(qswitch_.signal(SIGTERM));
  std::optional<int> status = qswitch_.wait_exit(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << qswitch_.stderr_text();
}

}  // namespace
}  // namespace qswitch::e2e
