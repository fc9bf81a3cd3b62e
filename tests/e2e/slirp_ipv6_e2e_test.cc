// tests/e2e/slirp_ipv6_e2e_test.cc: IPv6 for every guest of a segment with a slirp port (issue
// 13, first slice): SLAAC addresses from the slirp port's router advertisements, guests pinging
// each other's SLAAC and link-local addresses, and a host forward from [::1]:PORT added with
// `qswitch ctl hostfwd add` reaching a guest's IPv6 service.
//
// Later slices: `qswitch ctl neighbours` and `dhcp leases` show the addresses the guests hold
// (as their own `ip -6 addr` prints them); a guest reaches a listener on the host's [::1] through
// NAT6 (fec0::2, restrict=off: libslirp's restrict=on drops a guest's connections to the host);
// `ipv6=off` leaves a guest without an IPv6 route or global address; host forwards to a guest by
// its MAC (IPv4 and IPv6) reach its service.
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

#include <algorithm>
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
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/host_side.h"
#include "tests/e2e/subprocess.h"
#include "tests/support/loopback_port.h"

namespace qswitch::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kCommandTimeout = 60s;

class SlirpIpv6E2eTest : public E2eTest {
 protected:
  void start_switch(const std::string& slirp_value) {
    start_slirp_switch(qswitch_, "sw", slirp_value, &sock_, &ctl_);
  }

  void start_guest(int index) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:6e:00:%02x", index);
    GuestOptions options;
    options.name = "g" + std::to_string(index);
    options.ip_cidr = "dhcp";
    options.mac = mac;
    options.netdev = unix_netdev(sock_, false);
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

  // The "result" of `qswitch ctl --json ...`'s reply (null json when it is not there).
  static nlohmann::json json_result(const CtlResult& r) {
    const nlohmann::json reply = nlohmann::json::parse(r.out, nullptr, false);
    if (!reply.is_object() || !reply.contains("result")) return nlohmann::json();
    return reply["result"];
  }

  // `qswitch ctl --json neighbours` until `mac` lists every address of `want` (20 s at most):
  // its row, or a null json (and a failure) when the time ran out.
  nlohmann::json neighbour_row(const std::string& mac, const std::vector<std::string>& want) {
    std::string last;
    const auto deadline = Clock::now() + 20s;
    for (int attempt = 0; attempt < 100 && Clock::now() < deadline; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(200ms);
      const CtlResult r = ctl({"--json", "neighbours"});
      if (r.exit_code != 0) {
        last = describe(r);
        continue;
      }
      last = r.out;
      const nlohmann::json rows = json_result(r);
      if (!rows.is_array()) continue;
      for (const nlohmann::json& row : rows) {
        if (row.value("mac", "") != mac || !row.contains("ipv6")) continue;
        const nlohmann::json& have = row["ipv6"];
        if (std::all_of(want.begin(), want.end(), [&](const std::string& a) {
              return std::find(have.begin(), have.end(), a) != have.end();
            })) {
          return row;
        }
      }
    }
    ADD_FAILURE() << "ctl neighbours never listed all of the guest's addresses for " << mac
                  << "; last reply: " << last;
    return nlohmann::json();
  }

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

TEST_F(SlirpIpv6E2eTest, CtlNeighboursAndDhcpLeasesShowTheAddressesTheGuestsHold) {
  const auto t0 = Clock::now();
  ASSERT_NO_FATAL_FAILURE(start_switch("restrict=on"));
  ASSERT_NO_FATAL_FAILURE(start_guest(1));
  ASSERT_NO_FATAL_FAILURE(start_guest(2));
  for (auto& g : guests_) {
    std::string error;
    ASSERT_TRUE(g->wait_ready(kBootTimeout, &error)) << error;
  }
  for (auto& g : guests_) {
    const auto [global, link] = ipv6_addresses(*g);
    ASSERT_FALSE(global.empty() || link.empty());
    // The guest talks to the router from its SLAAC address: the address is then in use, not
    // only probed for (duplicate address detection names it before).
    EXPECT_EQ(ping6_replies(*g, "fec0::2", false), 3);
    const std::string mac = g->options().mac;
    const nlohmann::json row = neighbour_row(mac, {global, link});
    ASSERT_FALSE(row.is_null());
    std::cout << "[ neighbour] " << g->options().name << ": " << row.dump() << "\n";
    for (const nlohmann::json& seen : row["seen"]) {
      if (seen.value("address", "") == global) {
        EXPECT_FALSE(seen.value("tentative", true)) << row.dump();
      }
    }
    // The switch port the MAC table has it on.
    EXPECT_TRUE(row["port"].is_number()) << row.dump();

    const CtlResult leases = ctl({"--json", "dhcp", "leases"});
    ASSERT_EQ(leases.exit_code, 0) << describe(leases);
    const nlohmann::json rows = json_result(leases);
    bool found = false;
    for (const nlohmann::json& l : rows) {
      if (l.value("mac", "") != mac) continue;
      found = true;
      EXPECT_EQ(l.value("ip", ""), g->ip()) << l.dump();
      const nlohmann::json& v6 = l["ipv6"];
      EXPECT_NE(std::find(v6.begin(), v6.end(), global), v6.end()) << l.dump();
      EXPECT_NE(std::find(v6.begin(), v6.end(), link), v6.end()) << l.dump();
    }
    EXPECT_TRUE(found) << mac << " has no lease: " << leases.out;
  }
  const CtlResult table = ctl({"neighbours"});
  EXPECT_EQ(table.exit_code, 0) << describe(table);
  std::cout << "[ ctl      ] qswitch ctl neighbours:\n" << table.out;
  const CtlResult leases = ctl({"dhcp", "leases"});
  std::cout << "[ ctl      ] qswitch ctl dhcp leases:\n" << leases.out;

  // Host forwards to g2 by its MAC, over IPv4 and IPv6: each reaches g2's service.
  Guest& g2 = *guests_[1];
  std::random_device rd;
  const std::string marker = "QS-BYMAC-" + std::to_string(rd() % 1000000000u);
  const CommandResult served =
      g2.run("timeout 120 nc -ll -p 8000 -e echo " + marker + " </dev/null >/dev/null 2>&1 &",
             kCommandTimeout);
  ASSERT_TRUE(served.completed && served.exit_code == 0) << served.output << g2.diagnostics();
  for (const bool v6 : {false, true}) {
    const uint16_t port = test_support::free_loopback_tcp_port();
    ASSERT_NE(port, 0);
    const std::string spec = std::string(v6 ? "tcp:[::1]:" : "tcp::") + std::to_string(port) +
                             "-[" + g2.options().mac + "]:8000";
    const CtlResult add = ctl({"hostfwd", "add", spec});
    ASSERT_EQ(add.exit_code, 0) << "hostfwd add " << spec << ": " << describe(add);
    std::cout << "[ hostfwd  ] " << spec << ":\n" << add.out;
    std::string data;
    for (int attempt = 0; attempt < 40 && data.find(marker) == std::string::npos; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(250ms);
      data = tcp_read_loopback(port, 5s, v6).data;
    }
    EXPECT_NE(data.find(marker), std::string::npos) << spec << ": read '" << data << "'";
  }
  std::cout << "[ time     ] " << std::chrono::duration<double>(Clock::now() - t0).count()
            << " s\n";
}

TEST_F(SlirpIpv6E2eTest, AGuestReachesAListenerOnTheHostsIpv6LoopbackThroughNat6) {
  const auto t0 = Clock::now();
  // restrict=off: libslirp's restrict=on drops a guest's connection to the host. The guest
  // talks only to fec0::2, which libslirp connects to the host's ::1.
  ASSERT_NO_FATAL_FAILURE(start_switch("restrict=off"));
  ASSERT_NO_FATAL_FAILURE(start_guest(1));
  std::string error;
  ASSERT_TRUE(guests_[0]->wait_ready(kBootTimeout, &error)) << error;
  Guest& g = *guests_[0];
  ASSERT_FALSE(ipv6_addresses(g).first.empty());

  const int listener = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = in6addr_loopback;
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0)
      << "bind [::1]:0: " << std::strerror(errno);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const uint16_t port = ntohs(sa.sin6_port);

  std::random_device rd;
  const std::string marker = "QS-NAT6-" + std::to_string(rd() % 1000000000u);
  const std::string token =
      g.send("echo " + marker + " | timeout 20 nc fec0::2 " + std::to_string(port) + " 2>&1");
  pollfd pfd{listener, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, 30'000);
  ASSERT_EQ(ready, 1) << "no connection on [::1]:" << port << " within 30 s"
                      << g.wait_result(token, 5s).output << g.diagnostics();
  sockaddr_in6 peer{};
  socklen_t peer_len = sizeof peer;
  const int conn = ::accept(listener, reinterpret_cast<sockaddr*>(&peer), &peer_len);
  ASSERT_GE(conn, 0) << std::strerror(errno);
  char peer_text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, &peer.sin6_addr, peer_text, sizeof peer_text);
  std::string data;
  const auto deadline = Clock::now() + 10s;
  while (data.find(marker) == std::string::npos && Clock::now() < deadline) {
    pollfd c{conn, POLLIN, 0};
    if (::poll(&c, 1, 1000) != 1) continue;
    char buf[512];
    const ssize_t n = ::read(conn, buf, sizeof buf);
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(conn);
  ::close(listener);
  const CommandResult r = g.wait_result(token, kCommandTimeout);
  std::cout << "[ nat6     ] [::1]:" << port << " got '" << data.substr(0, data.find('\n'))
            << "' from " << peer_text << "\n";
  EXPECT_NE(data.find(marker), std::string::npos)
      << "[::1]:" << port << " read '" << data << "'; guest: " << r.output;
  // libslirp's own socket on the host: a loopback address.
  EXPECT_EQ(std::string(peer_text), "::1");
  std::cout << "[ time     ] " << std::chrono::duration<double>(Clock::now() - t0).count()
            << " s\n";
}

TEST_F(SlirpIpv6E2eTest, Ipv6OffGivesAGuestNoIpv6RouteAndNoGlobalAddress) {
  const auto t0 = Clock::now();
  ASSERT_NO_FATAL_FAILURE(start_switch("restrict=on,ipv6=off"));
  ASSERT_NO_FATAL_FAILURE(start_guest(1));
  std::string error;
  ASSERT_TRUE(guests_[0]->wait_ready(kBootTimeout, &error)) << error;
  Guest& g = *guests_[0];
  // The barrier: the guest sends a router solicitation when its link-local address is ready,
  // and another one 4 s later only if no advertisement answered (RFC 4861 6.3.7; Linux stops
  // soliciting once one arrives). Two solicitations sent: nobody advertised.
  const CommandResult rs = g.run(
      "n=0; while [ $n -lt 150 ] && [ \"$(awk '/Icmp6OutRouterSolicits/ {print $2}' "
      "/proc/net/snmp6)\" -lt 2 ]; do sleep 0.2; n=$((n+1)); done; "
      "grep -E 'Icmp6(OutRouterSolicits|InRouterAdvertisements)' /proc/net/snmp6; "
      "echo ROUTES; ip -6 route show; echo ADDRS; ip -6 addr show dev eth0",
      kCommandTimeout);
  ASSERT_TRUE(rs.completed) << g.diagnostics();
  std::cout << "[ ipv6=off ] " << rs.output << "\n";
  static const std::regex solicits(R"(Icmp6OutRouterSolicits\s+(\d+))");
  static const std::regex adverts(R"(Icmp6InRouterAdvertisements\s+(\d+))");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(rs.output, m, solicits)) << rs.output;
  EXPECT_GE(std::stoi(m[1].str()), 2) << rs.output;
  ASSERT_TRUE(std::regex_search(rs.output, m, adverts)) << rs.output;
  EXPECT_EQ(m[1].str(), "0") << rs.output;
  const std::string routes = rs.output.substr(rs.output.find("ROUTES"));
  EXPECT_EQ(routes.find("default"), std::string::npos) << rs.output;
  EXPECT_EQ(rs.output.find("scope global"), std::string::npos) << rs.output;
  EXPECT_EQ(rs.output.find("fec0:"), std::string::npos) << rs.output;
  EXPECT_NE(rs.output.find("scope link"), std::string::npos) << "no link-local address?\n"
                                                             << rs.output;

  const CommandResult ping = g.run("ping -6 -c 1 -w 3 fec0::2 2>&1; echo rc=$?", kCommandTimeout);
  ASSERT_TRUE(ping.completed) << g.diagnostics();
  std::cout << "[ ipv6=off ] " << ping.output << "\n";
  EXPECT_EQ(ping.output.find("rc=0"), std::string::npos) << ping.output;
  EXPECT_EQ(ping.output.find(" 0% packet loss"), std::string::npos) << ping.output;

  // The slirp port learned nothing: its table is off with IPv6.
  const CtlResult n = ctl({"--json", "neighbours"});
  ASSERT_EQ(n.exit_code, 0) << describe(n);
  EXPECT_EQ(json_result(n), nlohmann::json::array()) << n.out;
  std::cout << "[ time     ] " << std::chrono::duration<double>(Clock::now() - t0).count()
            << " s\n";
}

}  // namespace
}  // namespace qswitch::e2e
