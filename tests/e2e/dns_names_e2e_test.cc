// tests/e2e/dns_names_e2e_test.cc: guests that find each other by name (issue 13): the slirp
// port's DNS responder answers for the lab's domain (default qswitch.internal) with the names the
// guests sent in DHCP option 12, over IPv4 and IPv6, forward (A, AAAA) and reverse (PTR); a name
// that does not exist is NXDOMAIN; a guest that reboots under another name is answered under the
// new one only; a static record added with `qswitch ctl dns add` resolves at once; host
// forwards to a guest by name reach it over IPv4 and IPv6.
//
// Theory of operation: one qswitch (--slirp restrict=on: nothing leaves the host's loopback, and
// every name the guests look up is the lab's own), three DHCP guests (tools/make-guest-image:
// /init runs udhcpc with `-x hostname:NAME`, its script writes the DHCP domain and search list
// into /etc/resolv.conf). Each guest resolves and pings the other two by short name and by full
// name with busybox nslookup and ping (glibc's resolver in busybox-static), looks up a PTR, a
// name that does not exist, and an AAAA over the IPv6 DNS address. Then the third guest is
// stopped and booted again with the same MAC under another hostname. What the guests print is
// the evidence (and is echoed to stdout for the closing note's transcript).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/host_side.h"
#include "tests/support/loopback_port.h"

namespace qswitch::e2e {
namespace {

constexpr auto kCommandTimeout = 60s;
constexpr const char* kDomain = "qswitch.internal";

class DnsNamesE2eTest : public E2eTest {
 protected:
  void start_switch(const std::string& slirp_value) {
    start_slirp_switch(qswitch_, "sw", slirp_value, &sock_, &ctl_);
  }

  // Guest `index` (MAC 52:54:00:d5:00:<index>) with hostname `name`, by DHCP.
  std::unique_ptr<Guest> start_guest(int index, const std::string& name) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:d5:00:%02x", index);
    GuestOptions options;
    options.name = name;
    options.ip_cidr = "dhcp";
    options.mac = mac;
    options.netdev = unix_netdev(sock_, false);
    std::string error;
    std::unique_ptr<Guest> guest = Guest::start(options, dir_.path(), &error);
    EXPECT_NE(guest, nullptr) << error;
    return guest;
  }

  CtlResult ctl(const std::vector<std::string>& args) {
    return run_ctl(ctl_, args, dir_.file("ctl." + std::to_string(++ctl_runs_) + ".err"));
  }

  // Runs `command` on `g`'s console, echoes it and its output (the transcript), returns it.
  std::string console(Guest& g, const std::string& command) {
    const CommandResult r = g.run(command + " 2>&1", kCommandTimeout);
    EXPECT_TRUE(r.completed) << g.options().name << ": " << command << g.diagnostics();
    std::cout << g.options().name << "# " << command << "\n" << r.output;
    if (!r.output.empty() && r.output.back() != '\n') std::cout << "\n";
    return r.output;
  }

  // Replies to two pings from `from` to `target` (a name), -1 when ping printed no counts.
  // `family` is "" (ping's choice: the AAAA first), "-4" or "-6".
  int ping_replies(Guest& from, const std::string& target, const std::string& family = "") {
    const std::string out = console(
        from, "ping " + (family.empty() ? "" : family + " ") + "-c 2 -i 0.2 -w 10 " + target);
    static const std::regex counts(R"((\d+) packets transmitted, (\d+) packets received)");
    std::smatch m;
    if (!std::regex_search(out, m, counts)) return -1;
    return std::stoi(m[2].str());
  }

  // Waits (20 s at most) for `g`'s SLAAC address in fec0::/64 and returns it ("" if none).
  std::string slaac_address(Guest& g) {
    const CommandResult r = g.run(
        "n=0; while [ $n -lt 100 ] && ! ip -6 -o addr show dev eth0 | "
        "grep -v tentative | grep -q 'inet6 fec0:'; do sleep 0.2; n=$((n+1)); done; "
        "ip -6 -o addr show dev eth0",
        kCommandTimeout);
    static const std::regex global(R"(inet6 (fec0:[0-9a-f:]+)/64 scope)");
    std::smatch m;
    return std::regex_search(r.output, m, global) ? m[1].str() : std::string();
  }

  QswitchProcess qswitch_;
  std::string sock_;
  std::string ctl_;
  int ctl_runs_ = 0;
};

TEST_F(DnsNamesE2eTest,
       ThreeGuestsResolveAndPingEachOtherByNameAndARenamedGuestIsFoundUnderItsNewName) {
  ASSERT_NO_FATAL_FAILURE(start_switch("restrict=on"));
  const std::vector<std::string> names = {"alpha", "bravo", "charlie"};
  std::vector<std::unique_ptr<Guest>> guests;
  for (size_t i = 0; i < names.size(); ++i) {
    guests.push_back(start_guest(static_cast<int>(i + 1), names[i]));
    ASSERT_NE(guests.back(), nullptr);
  }
  for (auto& g : guests) {
    std::string error;
    ASSERT_TRUE(g->wait_ready(kBootTimeout, &error)) << error;
  }
  std::vector<std::string> v6;
  for (auto& g : guests) v6.push_back(slaac_address(*g));

  Guest& alpha = *guests[0];
  console(alpha, "cat /etc/resolv.conf");
  const CtlResult list = ctl({"dns", "list"});
  EXPECT_EQ(list.exit_code, 0) << describe(list);
  std::cout << "$ qswitch ctl dns list\n" << list.out;

  // Every guest resolves and pings the other two by short and by full name.
  for (size_t a = 0; a < guests.size(); ++a) {
    for (size_t b = 0; b < guests.size(); ++b) {
      if (a == b) continue;
      Guest& from = *guests[a];
      const std::string& target = names[b];
      const std::string full = target + "." + kDomain;
      const std::string out = console(from, "nslookup " + target);
      EXPECT_NE(out.find(guests[b]->ip()), std::string::npos)
          << names[a] << ": nslookup " << target << " lacks " << guests[b]->ip();
      EXPECT_EQ(ping_replies(from, target), 2) << names[a] << " -> " << target;
      EXPECT_EQ(ping_replies(from, full), 2) << names[a] << " -> " << full;
    }
  }

  // By name over IPv4 too (plain ping takes the AAAA first).
  EXPECT_EQ(ping_replies(alpha, "bravo", "-4"), 2) << "alpha -> bravo over IPv4";
  // PTR: the address of bravo gives bravo's full name.
  const std::string bravo_full = std::string("bravo.") + kDomain;
  EXPECT_NE(console(alpha, "nslookup " + guests[1]->ip()).find(bravo_full), std::string::npos)
      << "PTR for " << guests[1]->ip();
  // A name in the domain that does not exist.
  EXPECT_NE(console(alpha, std::string("nslookup nosuch.") + kDomain).find("NXDOMAIN"),
            std::string::npos);
  // AAAA, asked over the IPv6 DNS address, and ping -6 by name.
  if (!v6[1].empty()) {
    EXPECT_NE(console(alpha, "nslookup -type=AAAA " + bravo_full + " fec0::3").find(v6[1]),
              std::string::npos)
        << "AAAA for bravo (" << v6[1] << ") over [fec0::3]:53";
    EXPECT_EQ(ping_replies(alpha, "bravo", "-6"), 2) << "alpha -> bravo over IPv6";
  } else {
    ADD_FAILURE() << "bravo has no SLAAC address" << guests[1]->diagnostics();
  }

  // A static record added at run time.
  const CtlResult add = ctl({"dns", "add", "files", "10.0.2.2"});
  EXPECT_EQ(add.exit_code, 0) << describe(add);
  EXPECT_NE(console(alpha, "nslookup files").find("10.0.2.2"), std::string::npos);

  // Host forwards to a guest by name, over IPv4 and IPv6 (the name's A and AAAA when added).
  const std::string marker = "QS-NAMEFWD-" + std::to_string(::getpid());
  const CommandResult served = guests[1]->run(
      "timeout 120 nc -ll -p 8000 -e echo " + marker + " </dev/null >/dev/null 2>&1 &",
      kCommandTimeout);
  ASSERT_TRUE(served.completed && served.exit_code == 0) << served.output;
  for (const bool ipv6 : {false, true}) {
    const uint16_t port = test_support::free_loopback_tcp_port();
    ASSERT_NE(port, 0);
    const std::string spec =
        std::string(ipv6 ? "tcp:[::1]:" : "tcp::") + std::to_string(port) + "-bravo:8000";
    const CtlResult fwd = ctl({"hostfwd", "add", spec});
    ASSERT_EQ(fwd.exit_code, 0) << describe(fwd);
    std::cout << "$ qswitch ctl hostfwd add " << spec << "\n" << fwd.out;
    std::string data;
    for (int attempt = 0; attempt < 40 && data.find(marker) == std::string::npos; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(250ms);
      data = tcp_read_loopback(port, 5s, ipv6).data;
    }
    EXPECT_NE(data.find(marker), std::string::npos) << spec << ": read '" << data << "'";
  }

  // charlie reboots (same MAC) as delta: answered under delta only.
  const std::string charlie_ip = guests[2]->ip();
  guests[2].reset();
  guests[2] = start_guest(3, "delta");
  ASSERT_NE(guests[2], nullptr);
  std::string error;
  ASSERT_TRUE(guests[2]->wait_ready(kBootTimeout, &error)) << error;
  EXPECT_EQ(guests[2]->ip(), charlie_ip) << "the same MAC keeps its lease";
  // Its SLAAC address is answered from its duplicate-address probe on: wait until the guest
  // has finished that probe (the address is no longer tentative) before pinging it by name.
  EXPECT_NE(slaac_address(*guests[2]), "");
  EXPECT_NE(console(alpha, "nslookup delta").find(guests[2]->ip()), std::string::npos);
  EXPECT_EQ(ping_replies(alpha, "delta"), 2);
  EXPECT_NE(console(alpha, std::string("nslookup charlie.") + kDomain).find("NXDOMAIN"),
            std::string::npos)
      << "the old name is gone";
  EXPECT_NE(console(*guests[2], "nslookup alpha").find(alpha.ip()), std::string::npos);
}

}  // namespace
}  // namespace qswitch::e2e
