// tests/e2e/slirp_ipv6_e2e_test.cc: IPv6 for every guest of a segment with a slirp port (issue
// 13, first slice): SLAAC addresses from the slirp port's router advertisements, guests pinging
// each other's SLAAC and link-local addresses, and a host forward from [::1]:PORT added with
// `qswitch ctl hostfwd add` reaching a guest's IPv6 service.
//
// Theory of operation: one qswitch (--slirp restrict=on: nothing leaves the host's loopback), two
// DHCP guests (tools/make-guest-image; the Debian cloud kernel autoconfigures eth0 from router
// advertisements, /init needs nothing for IPv6). Each guest waits until it holds a global address
// in ipv6-net (fec0::/64) and prints it and its link-local address; the guests ping each other's
// with busybox `ping -6`; one serves a marker with busybox nc, and the test reads it from [::1]
// through the forward. Network safety: traffic only inside the switch and on the host's loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/guest.h"
#include "tests/e2e/host_side.h"
#include "tests/e2e/subprocess.h"
#include "tests/support/loopback_port.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"

namespace qswitch::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test_support::LaunchOptions;
using test_support::QswitchProcess;
using test_support::TempDir;

constexpr auto kBootTimeout = 120s;
constexpr auto kCommandTimeout = 60s;

class SlirpIpv6E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = missing_e2e_prerequisites();
    ASSERT_EQ(missing, "") << "end-to-end tests need: " << missing;
    ASSERT_FALSE(dir_.path().empty()) << "cannot create a temp dir under /tmp";
    ASSERT_EQ(::access(qswitch_binary().c_str(), X_OK), 0)
        << "qswitch binary " << qswitch_binary() << " is missing (build target qswitch)";
  }

  void start_switch(const std::string& slirp_value) {
    sock_ = dir_.file("sw.sock");
    LaunchOptions options;
    options.binary = qswitch_binary();
    options.args = {"--listen", "unix:" + sock_, "--slirp=" + slirp_value};
    options.stderr_path = dir_.file("sw.log");
    ASSERT_TRUE(qswitch_.start(options, 10s)) << qswitch_.error();
    for (const std::string& line : qswitch_.stdout_lines()) {
      if (line.rfind("control unix:", 0) == 0) ctl_ = line.substr(std::strlen("control unix:"));
    }
    ASSERT_FALSE(ctl_.empty()) << "no 'control unix:' line:\n" << qswitch_.stdout_text();
  }

  void start_guest(int index) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:6e:00:%02x", index);
    GuestOptions options;
    options.name = "g" + std::to_string(index);
    options.ip_cidr = "dhcp";
    options.mac = mac;
    options.netdev = "stream,id=n0,server=off,addr.type=unix,addr.path=" + sock_;
    std::string error;
    std::unique_ptr<Guest> guest = Guest::start(options, dir_.path(), &error);
    ASSERT_NE(guest, nullptr) << error;
    guests_.push_back(std::move(guest));
  }

  CtlResult ctl(const std::vector<std::string>& args) {
    return run_ctl(ctl_, args, dir_.file("ctl." + std::to_string(++ctl_runs_) + ".err"));
  }

  // Waits (20 s at most) for the guest's SLAAC address in fec0::/64 (DAD done; the kernel calls
  // fec0:: "scope site") and returns {SLAAC, link-local}, "" where missing.
  std::pair<std::string, std::string> ipv6_addresses(Guest& g) {
    const CommandResult r = g.run(
        "n=0; while [ $n -lt 100 ] && ! ip -6 -o addr show dev eth0 | "
        "grep -v tentative | grep -q 'inet6 fec0:'; do sleep 0.2; n=$((n+1)); done; "
        "ip -6 -o addr show dev eth0",
        kCommandTimeout);
    EXPECT_TRUE(r.completed) << g.diagnostics();
    static const std::regex global(R"(inet6 (fec0:[0-9a-f:]+)/64 scope)");
    static const std::regex link(R"(inet6 (fe80:[0-9a-f:]+)/64 scope link)");
    std::smatch m;
    std::pair<std::string, std::string> out;
    if (std::regex_search(r.output, m, global)) out.first = m[1].str();
    if (std::regex_search(r.output, m, link)) out.second = m[1].str();
    std::cout << "[ ipv6     ] " << g.options().name << ": SLAAC " << out.first << ", link "
              << out.second << "\n";
    EXPECT_NE(out.first, "") << g.options().name << " has no SLAAC address in fec0::/64:\n"
                             << r.output << g.diagnostics();
    EXPECT_NE(out.second, "") << g.options().name << " has no link-local address:\n" << r.output;
    return out;
  }

  // `from` pings `target` over IPv6 (3 requests): the replies, -1 when ping printed no counts.
  int ping6_replies(Guest& from, const std::string& target, bool link_local) {
    const std::string cmd =
        "ping -6 -c 3 -i 0.2 -w 10 " + std::string(link_local ? "-I eth0 " : "") + target + " 2>&1";
    const CommandResult r = from.run(cmd, kCommandTimeout);
    EXPECT_TRUE(r.completed) << from.options().name << ": " << cmd << from.diagnostics();
    static const std::regex counts(R"((\d+) packets transmitted, (\d+) packets received)");
    std::smatch m;
    if (!std::regex_search(r.output, m, counts)) {
      ADD_FAILURE() << from.options().name << " " << cmd << ": " << r.output;
      return -1;
    }
    std::cout << "[ ping6    ] " << from.options().name << " -> " << target << ": " << m[2].str()
              << "/" << m[1].str() << "\n";
    return std::stoi(m[2].str());
  }

  TempDir dir_{"qs-slirp6-e2e-"};
  QswitchProcess qswitch_;
  std::string sock_;
  std::string ctl_;
  std::vector<std::unique_ptr<Guest>> guests_;  // after qswitch_: guests stop first
  int ctl_runs_ = 0;
};

TEST_F(SlirpIpv6E2eTest, GuestsGetSlaacPingEachOtherAndHostReachesOneThroughIpv6Hostfwd) {
  ASSERT_NO_FATAL_FAILURE(start_switch("restrict=on"));
  ASSERT_NO_FATAL_FAILURE(start_guest(1));
  ASSERT_NO_FATAL_FAILURE(start_guest(2));
  for (auto& g : guests_) {
    std::string error;
    ASSERT_TRUE(g->wait_ready(kBootTimeout, &error)) << error;
  }
  Guest& g1 = *guests_[0];
  Guest& g2 = *guests_[1];
  const auto [g1_global, g1_link] = ipv6_addresses(g1);
  const auto [g2_global, g2_link] = ipv6_addresses(g2);
  ASSERT_FALSE(g1_global.empty() || g2_global.empty() || g1_link.empty() || g2_link.empty());

  EXPECT_EQ(ping6_replies(g1, g2_global, false), 3);
  EXPECT_EQ(ping6_replies(g2, g1_global, false), 3);
  EXPECT_EQ(ping6_replies(g1, g2_link, true), 3);
  EXPECT_EQ(ping6_replies(g2, g1_link, true), 3);

  // g2 serves a marker on port 8000; the host reads it through [::1]:PORT.
  std::random_device rd;
  const std::string marker = "QS-V6FWD-" + std::to_string(rd() % 1000000000u);
  const CommandResult served =
      g2.run("timeout 120 nc -ll -p 8000 -e echo " + marker + " </dev/null >/dev/null 2>&1 &",
             kCommandTimeout);
  ASSERT_TRUE(served.completed && served.exit_code == 0) << served.output << g2.diagnostics();
  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string spec = "tcp:[::1]:" + std::to_string(port) + "-[" + g2_global + "]:8000";
  const CtlResult add = ctl({"hostfwd", "add", spec});
  ASSERT_EQ(add.exit_code, 0) << "hostfwd add " << spec << ": " << describe(add);
  const CtlResult list = ctl({"hostfwd", "list"});
  EXPECT_EQ(list.exit_code, 0) << describe(list);
  std::cout << "[ hostfwd  ] qswitch ctl hostfwd list:\n" << list.out;
  EXPECT_NE(list.out.find(g2_global), std::string::npos) << list.out;

  std::string data;
  int err = 0;
  for (int attempt = 0; attempt < 40 && data.find(marker) == std::string::npos; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(250ms);
    const TcpRead r = tcp_read_loopback(port, 5s, /*ipv6=*/true);
    data = r.data;
    err = r.connect_errno;
  }
  EXPECT_NE(data.find(marker), std::string::npos)
      << "[::1]:" << port << " -> " << g2_global << ":8000: "
      << (err != 0 ? std::string("connect: ") + std::strerror(err) : "read '" + data + "'")
      << g2.diagnostics();

  const CtlResult remove = ctl({"hostfwd", "remove", "tcp:[::1]:" + std::to_string(port)});
  EXPECT_EQ(remove.exit_code, 0) << describe(remove);
  EXPECT_EQ(tcp_read_loopback(port, 5s, /*ipv6=*/true).connect_errno, ECONNREFUSED)
      << "[::1]:" << port << " after hostfwd remove";
}

}  // namespace
}  // namespace qswitch::e2e
