// tests/e2e/slirp_vlans_e2e_test.cc: a slirp port per VLAN with real guests (docs/slirp.md, "A
// slirp port per VLAN"). One qswitch, two access listeners (VLAN 10 and 20), a slirp port on
// each VLAN with its own net (restrict=on: the guests reach nothing but their segment), two DHCP
// guests per VLAN. Each guest's address (its console's QS-DHCP line) is in its own VLAN's pool
// with its own VLAN's gateway; guests of a VLAN ping each other and their gateway; a guest given
// an address in the other VLAN's subnet still gets no reply from that VLAN's guests or gateway
// and learns none of their MACs (only the switch keeps them apart); `qswitch ctl dhcp leases
// vlan=N` lists each VLAN's guests and no other.
#include <sys/wait.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/guest_lab.h"
#include "tests/e2e/subprocess.h"

namespace qswitch::e2e {
namespace {

using SlirpVlansE2eTest = GuestLabTest;

// "ip=10.0.10.15 router=10.0.10.2 ..." -> its fields.
std::map<std::string, std::string> fields_of(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream ss(line);
  std::string tok;
  while (ss >> tok) {
    const size_t eq = tok.find('=');
    if (eq != std::string::npos) fields[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  return fields;
}

// In "10.0.V.0/24"'s pool: 10.0.V.15 (dhcpstart's default) .. 10.0.V.254.
bool in_pool(const std::string& ip, int vlan) {
  const std::string prefix = "10.0." + std::to_string(vlan) + ".";
  if (ip.rfind(prefix, 0) != 0) return false;
  const std::string host = ip.substr(prefix.size());
  if (host.empty() || host.size() > 3 ||
      host.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const int n = std::stoi(host);
  return n >= 15 && n <= 254;
}

TEST_F(SlirpVlansE2eTest, EachVlansGuestsGetItsPoolPingWithinAndNeverReachTheOther) {
  const std::string v10 = dir_.file("v10.sock");
  const std::string v20 = dir_.file("v20.sock");
  ASSERT_EQ(::access(qswitch_binary().c_str(), X_OK), 0)
      << "qswitch binary " << qswitch_binary() << " is missing (build target qswitch)";
  LaunchOptions launch;
  launch.binary = qswitch_binary();
  launch.args = {"--listen", "unix:" + v10 + ",vlan=10",
                 "--listen", "unix:" + v20 + ",vlan=20",
                 "--slirp",  "vlan=10,net=10.0.10.0/24,restrict=on",
                 "--slirp",  "vlan=20,net=10.0.20.0/24,restrict=on",
                 "--guests", "0"};
  launch.stderr_path = dir_.file("qswitch.log");
  ASSERT_TRUE(qswitch_.start(launch, 10s)) << qswitch_.error();

  // g1, g2 on VLAN 10; g3, g4 on VLAN 20; all by DHCP.
  const int vlan_of[] = {0, 10, 10, 20, 20};
  for (int i = 1; i <= 4; ++i) {
    GuestOptions o = guest_options(i, unix_netdev(vlan_of[i] == 10 ? v10 : v20, false));
    o.ip_cidr = "dhcp";
    ASSERT_NO_FATAL_FAILURE(start_guest(o));
  }
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  for (int i = 1; i <= 4; ++i) {
    Guest& g = *guests_[i - 1];
    const std::string line = g.console_line("QS-DHCP ");
    std::cout << "[ dhcp     ] " << g.options().name << " (VLAN " << vlan_of[i] << "): " << line
              << "\n";
    std::map<std::string, std::string> f = fields_of(line);
    EXPECT_TRUE(in_pool(f["ip"], vlan_of[i]))
        << g.options().name << " on VLAN " << vlan_of[i] << " got '" << f["ip"] << "': " << line;
    EXPECT_EQ(f["router"], "10.0." + std::to_string(vlan_of[i]) + ".2") << line;
    EXPECT_EQ(g.ip(), f["ip"]) << "QS-READY reported another address than DHCP's: " << line;
  }
  Guest& g1 = *guests_[0];
  Guest& g2 = *guests_[1];
  Guest& g3 = *guests_[2];
  Guest& g4 = *guests_[3];

  // Within each VLAN: the other guest and the VLAN's own gateway, 3 of 3.
  EXPECT_EQ(ping_replies(g1, g2.ip()), 3);
  EXPECT_EQ(ping_replies(g3, g4.ip()), 3);
  EXPECT_EQ(ping_replies(g2, "10.0.10.2"), 3);
  EXPECT_EQ(ping_replies(g4, "10.0.20.2"), 3);

  // Across: g1 gets an address in VLAN 20's subnet, so on one segment g3, g4 and VLAN 20's
  // gateway would answer it; g3 the same in VLAN 10's.
  // Both guests at once, each ping bounded to 4 s (no reply is expected).
  const auto cross = [](const std::vector<std::string>& ips) {
    std::string command;
    for (const std::string& ip : ips) {
      command += "ping -c 3 -i 0.2 -w 4 " + ip + " >/tmp/p 2>&1; echo \"PING " + ip +
                 " $(grep 'packets transmitted' /tmp/p)\"; ";
    }
    return command;
  };
  const std::vector<std::string> from1 = {g3.ip(), g4.ip(), "10.0.20.2"};
  const std::vector<std::string> from3 = {g1.ip(), g2.ip(), "10.0.10.2"};
  const std::string t1 = g1.send("ip addr add 10.0.20.251/24 dev eth0; " + cross(from1));
  const std::string t3 = g3.send("ip addr add 10.0.10.251/24 dev eth0; " + cross(from3));
  const CommandResult r1 = g1.wait_result(t1, kPingTimeout);
  const CommandResult r3 = g3.wait_result(t3, kPingTimeout);
  ASSERT_TRUE(r1.completed && r3.completed) << g1.diagnostics() << g3.diagnostics();
  std::cout << "[ ping     ] across, from g1 (VLAN 10):\n"
            << r1.output << "[ ping     ] from g3:\n"
            << r3.output;
  for (const auto& [result, ips] : {std::pair(&r1, &from1), std::pair(&r3, &from3)}) {
    for (const std::string& ip : *ips) {
      // This target's line: "PING IP N packets transmitted, M packets received, ...".
      const size_t at = result->output.find("PING " + ip + " ");
      ASSERT_NE(at, std::string::npos) << ip << " in:\n" << result->output;
      int transmitted = 0;
      int received = -1;
      ASSERT_TRUE(ping_counts(result->output.substr(at, result->output.find('\n', at) - at),
                              &transmitted, &received))
          << result->output;
      EXPECT_EQ(transmitted, 3) << ip << ":\n" << result->output;
      EXPECT_EQ(received, 0) << "a reply across VLANs from " << ip << ":\n" << result->output;
    }
  }
  const std::string arp1 = run_in(g1, "cat /proc/net/arp");
  const std::string arp3 = run_in(g3, "cat /proc/net/arp");
  EXPECT_NE(arp1.find(g2.options().mac), std::string::npos) << arp1;  // it did ARP within
  EXPECT_EQ(arp1.find(g3.options().mac), std::string::npos) << arp1;
  EXPECT_EQ(arp1.find(g4.options().mac), std::string::npos) << arp1;
  EXPECT_EQ(arp3.find(g1.options().mac), std::string::npos) << arp3;
  EXPECT_EQ(arp3.find(g2.options().mac), std::string::npos) << arp3;

  // Each VLAN's lease table holds its own guests only, at the addresses they reported.
  for (int vlan : {10, 20}) {
    std::string error;
    std::unique_ptr<Subprocess> ctl =
        Subprocess::spawn({qswitch_binary(), "ctl", "--sock", qswitch_.control(), "--json", "dhcp",
                           "leases", "vlan=" + std::to_string(vlan)},
                          dir_.file("ctl." + std::to_string(vlan) + ".err"), &error);
    ASSERT_NE(ctl, nullptr) << error;
    ctl->wait_for([](const std::string&) { return false; }, 10s);  // until EOF or 10 s
    const std::optional<int> status = ctl->wait_exit(5s);
    ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "ctl dhcp leases vlan=" << vlan << ": " << ctl->output()
        << read_text_file(dir_.file("ctl." + std::to_string(vlan) + ".err"));
    std::cout << "[ leases   ] vlan=" << vlan << ": " << ctl->output();
    const nlohmann::json reply = nlohmann::json::parse(ctl->output(), nullptr, false);
    ASSERT_TRUE(reply.is_object() && reply.contains("result") && reply["result"].is_array())
        << ctl->output();
    std::map<std::string, std::string> by_mac;
    for (const nlohmann::json& lease : reply["result"]) {
      by_mac[lease.value("mac", "")] = lease.value("ip", "");
    }
    std::map<std::string, std::string> expected;
    for (int i = 1; i <= 4; ++i) {
      if (vlan_of[i] == vlan) expected[guests_[i - 1]->options().mac] = guests_[i - 1]->ip();
    }
    EXPECT_EQ(by_mac, expected) << ctl->output();
  }
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(4));
}

}  // namespace
}  // namespace qswitch::e2e
