// tests/e2e/paused_guest_e2e_test.cc: a paused guest must not stop the others (issue 9, defect 1).
//
// Theory of operation: a VM that is stopped (`stop` in its monitor), still in its firmware, or
// whose virtio driver is not up makes QEMU stop reading its socket. qswitch must go on forwarding
// between the other guests: the stopped guest's queue fills, its frames are dropped and counted,
// and nothing it does not read may hold another port's input.
// Three guests on one qswitch (unix stream ports); g3 has a QMP monitor (GuestOptions::qmp_path).
//  1. Every pair pings once: every MAC is learned, every guest is known to work.
//  2. g3 is stopped through QMP (`stop`, then query-status says "paused") and stays attached.
//  3. At the same time: g1 runs a 12 s iperf3 TCP transfer to g2 (the server); g2 pings g1 all
//     along; g1 sends broadcasts that go to g3's queue as well: ARP requests for g3's address
//     (arping -b, as a guest looking for g3 does) and 16000-byte pings to the subnet's broadcast
//     address (IP fragments, each a broadcast frame: enough bytes to fill g3's socket and its
//     output queue, so the switch must drop for g3).
//  4. Asserted from the guests' own output: iperf3 completed ("iperf Done.", exit 0) and moved a
//     non-zero amount of data, in its last full interval too (traffic still flowed at the end of
//     the run); g2's pings got replies during the run, up to its end; then, with g3 still paused,
//     g1 and g2 ping each other with no loss. From the switch's control API (`ports`): g3's port
//     dropped frames (drop_* counters > 0). No rate, no time is asserted.
//  5. `cont` through QMP: g3 runs again ("running") and pings g1 (at least one reply: its first
//     request may leave while g3 still works through what waited in its socket).
// Busybox commands are bounded (ping -w, timeout for iperf3) so a frozen network makes a guest's
// command finish with a failure, not hang the console.
#include <chrono>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/qmp_client.h"
#include "tests/support/control_client.h"

namespace qswitch::e2e {
namespace {

using json = nlohmann::json;

constexpr int kIperfSeconds = 12;  // issue 9: at least 10 s with the paused guest attached
constexpr int kPingCount = 50;     // g2 -> g1 during the run, 0.3 s apart: longer than iperf3

class PausedGuestE2eTest : public GuestLabTest {
 protected:
  // The `ports` rows (the control API's reply "result"); nullopt (with a failure) on error.
  std::optional<json> port_rows() {
    std::string error;
    auto ctl = test_support::ControlClient::connect(qswitch_.control(), &error);
    EXPECT_TRUE(ctl.has_value()) << error;
    if (!ctl) return std::nullopt;
    test_support::LineResult r = ctl->request(R"({"cmd":"ports"})");
    EXPECT_TRUE(r.ok()) << "ports: " << test_support::to_string(r.status) << " " << r.error;
    if (!r.ok()) return std::nullopt;
    json reply = json::parse(r.line, nullptr, false);
    EXPECT_TRUE(!reply.is_discarded() && reply.value("ok", false)) << r.line;
    if (reply.is_discarded() || !reply.value("ok", false)) return std::nullopt;
    return reply["result"];
  }

  // The row of the port that learned `mac`; nullopt (with a failure) if none.
  std::optional<json> port_row_for_mac(const std::string& mac) {
    std::optional<json> rows = port_rows();
    if (!rows) return std::nullopt;
    for (const json& row : *rows) {
      if (!row.contains("macs")) continue;
      for (const json& m : row["macs"]) {
        if (m.is_string() && m.get<std::string>() == mac) return row;
      }
    }
    ADD_FAILURE() << "no port has learned " << mac << ":\n" << rows->dump(1);
    return std::nullopt;
  }

  // One line per port: its MACs, and the counters that tell who held whom back.
  void print_port_summary() {
    std::optional<json> rows = port_rows();
    if (!rows) return;
    for (const json& row : *rows) {
      std::cout << "[ qswitch  ] port " << row.value("id", json()).dump() << " "
                << row.value("macs", json::array()).dump();
      const json counters = row.value("counters", json::object());
      for (const char* name :
           {"rx_frames", "tx_frames", "rx_paused", "rx_throttled", "drop_queue_full"}) {
        std::cout << " " << name << "=" << counters.value(name, json()).dump();
      }
      std::cout << "\n";
    }
  }
};

// iperf3's transfer figure in bytes ("135 MBytes", "512 KBytes", "0.00 Bytes").
double transfer_bytes(const std::string& value, const std::string& unit) {
  double v = std::stod(value);
  if (unit == "KBytes") return v * 1024;
  if (unit == "MBytes") return v * 1024 * 1024;
  if (unit == "GBytes") return v * 1024 * 1024 * 1024;
  return v;
}

TEST_F(PausedGuestE2eTest, PausedGuestDoesNotStopTheOthers) {
  const std::string sock = dir_.file("sw.sock");
  const std::string qmp_path = dir_.file("g3.qmp");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
  ASSERT_FALSE(qswitch_.control().empty()) << qswitch_.stdout_text();
  for (int i = 1; i <= 3; ++i) {
    GuestOptions options = guest_options(i, unix_netdev(sock, false));
    if (i == 3) options.qmp_path = qmp_path;
    ASSERT_NO_FATAL_FAILURE(start_guest(options));
  }
  Guest& g1 = *guests_[0];
  Guest& g2 = *guests_[1];
  Guest& g3 = *guests_[2];
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(3);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());

  // g2: the iperf3 server. g1: a broadcast address on eth0 (/init adds the address without one),
  // so that pings to 10.0.0.255 leave as Ethernet broadcasts.
  CommandResult setup = g2.run("iperf3 -s -D && sleep 1", 20s);
  ASSERT_TRUE(setup.completed) << g2.diagnostics();
  ASSERT_EQ(setup.exit_code, 0) << setup.output;
  setup = g1.run("ifconfig eth0 broadcast 10.0.0.255", 20s);
  ASSERT_TRUE(setup.completed) << g1.diagnostics();
  ASSERT_EQ(setup.exit_code, 0) << setup.output;

  std::string error;
  std::optional<QmpClient> qmp = QmpClient::connect(qmp_path, &error, 10s);
  ASSERT_TRUE(qmp.has_value()) << error << g3.diagnostics();
  ASSERT_TRUE(qmp->execute("stop", &error, 10s).has_value()) << error;
  ASSERT_EQ(qmp->status(&error, 10s), "paused") << error;
  std::cout << "[ qmp      ] g3 stopped (query-status: paused)\n";

  std::optional<json> before = port_row_for_mac(g3.options().mac);
  ASSERT_TRUE(before.has_value());
  const uint64_t g3_port = (*before)["id"].get<uint64_t>();

  // Both consoles at once. g1: the iperf3 client (its data fills g1's receive chunks at the
  // switch quickly, so a broadcast in each of them is soon queued to g3), with ARP requests for
  // g3 and 16000-byte broadcast pings in the background; a broadcast ping that fails to send
  // (busybox ping stops at a send error) is started again until the time is up. g2: pings g1.
  const std::string g1_token = g1.send(
      "arping -b -c 14 -w 16 -I eth0 " + g3.ip() +
      " >/tmp/arping.out 2>&1 &\n"
      "(end=$(($(date +%s) + 14)); while [ $(date +%s) -lt $end ]; do "
      "ping -s 16000 -i 0.05 -w 1 10.0.0.255; done) >/tmp/bping.out 2>&1 &\n"
      "timeout 90 iperf3 -c " +
      g2.ip() + " -t " + std::to_string(kIperfSeconds) +
      " -i 1 -f m --connect-timeout 10000; echo \"IPERF rc=$?\"\n"
      "wait\n"
      "echo ARPING $(grep -i sent /tmp/arping.out)\n"
      "echo BPING $(awk '/packets transmitted/ {n += $1} END {print n + 0}' /tmp/bping.out) "
      "packets transmitted");
  const std::string g2_token =
      g2.send("ping -c " + std::to_string(kPingCount) + " -i 0.3 -w 30 " + g1.ip() +
              " >/tmp/ping.out 2>&1; grep seq= /tmp/ping.out | tail -n 1; tail -n 2 /tmp/ping.out");
  CommandResult iperf = g1.wait_result(g1_token, kIperfTimeout);
  CommandResult pings = g2.wait_result(g2_token, kPingTimeout);
  std::cout << "[ iperf3   ] g1 -> g2 and broadcasts, g3 paused:\n" << iperf.output;
  std::cout << "[ ping     ] g2 -> g1, g3 paused:\n" << pings.output;
  print_port_summary();

  ASSERT_TRUE(iperf.completed) << "iperf3 on g1 did not finish" << g1.diagnostics();
  EXPECT_NE(iperf.output.find("IPERF rc=0"), std::string::npos)
      << "iperf3 failed, or timeout 90 stopped it (\"interrupt\"):\n"
      << iperf.output;
  EXPECT_NE(iperf.output.find("iperf Done."), std::string::npos) << iperf.output;
  // Interval lines "[  5]   3.00-4.00   sec  11.2 MBytes ..." and the receiver summary.
  static const std::regex interval(
      R"(\[\s*\d+\]\s+([0-9.]+)-([0-9.]+)\s+sec\s+([0-9.]+) (Bytes|KBytes|MBytes|GBytes))");
  static const std::regex receiver(R"(\[\s*\d+\]\s+[0-9.]+-[0-9.]+\s+sec\s+([0-9.]+) )"
                                   R"((Bytes|KBytes|MBytes|GBytes)\s+.*receiver)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(iperf.output, m, receiver)) << iperf.output;
  EXPECT_GT(transfer_bytes(m[1].str(), m[2].str()), 0.0) << iperf.output;
  double last_full_interval = -1;
  std::istringstream lines(iperf.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("- - -") != std::string::npos) break;  // the summary follows
    std::smatch im;
    if (!std::regex_search(line, im, interval)) continue;
    if (std::stod(im[2].str()) - std::stod(im[1].str()) < 0.5) continue;
    last_full_interval = transfer_bytes(im[3].str(), im[4].str());
  }
  EXPECT_GT(last_full_interval, 0.0) << "iperf3 moved nothing in its last interval:\n"
                                     << iperf.output;
  // The broadcasts went out (no replies: guests ignore broadcast echo requests).
  static const std::regex bping(R"(BPING (\d+) packets transmitted)");
  ASSERT_TRUE(std::regex_search(iperf.output, m, bping)) << iperf.output;
  EXPECT_GT(std::stoi(m[1].str()), 0) << iperf.output;

  ASSERT_TRUE(pings.completed) << "g2's pings did not finish" << g2.diagnostics();
  int transmitted = 0, received = 0;
  ASSERT_TRUE(ping_counts(pings.output, &transmitted, &received)) << pings.output;
  EXPECT_GT(received, 0) << pings.output;
  // Replies still came at the end of the run (busybox ping's seq counts from 0).
  static const std::regex last_reply(R"(seq=(\d+) )");
  ASSERT_TRUE(std::regex_search(pings.output, m, last_reply)) << pings.output;
  EXPECT_GE(std::stoi(m[1].str()), kPingCount - kPingCount / 5)
      << "g2's last pings to g1 got no reply:\n"
      << pings.output;

  // Still paused: g1 and g2 reach each other with no loss.
  ASSERT_EQ(qmp->status(&error, 10s), "paused") << error;
  const std::string after12 = g1.send("ping -c 5 -i 0.2 -w 20 " + g2.ip());
  const std::string after21 = g2.send("ping -c 5 -i 0.2 -w 20 " + g1.ip());
  for (auto [guest, token] : {std::pair{&g1, after12}, std::pair{&g2, after21}}) {
    CommandResult r = guest->wait_result(token, kPingTimeout);
    ASSERT_TRUE(r.completed) << guest->diagnostics();
    EXPECT_EQ(r.exit_code, 0) << guest->options().name << " with g3 paused:\n" << r.output;
    EXPECT_NE(r.output.find("5 packets transmitted, 5 packets received"), std::string::npos)
        << guest->options().name << " with g3 paused:\n"
        << r.output;
  }

  // The switch dropped frames for the paused guest, and says so on its port.
  std::optional<json> after = port_row_for_mac(g3.options().mac);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ((*after)["id"].get<uint64_t>(), g3_port) << after->dump();
  uint64_t drops = 0;
  std::string drop_text;
  for (const auto& [name, value] : (*after)["counters"].items()) {
    if (name.rfind("drop_", 0) != 0 || !value.is_number_unsigned()) continue;
    drops += value.get<uint64_t>();
    drop_text += " " + name + "=" + std::to_string(value.get<uint64_t>());
  }
  std::cout << "[ qswitch  ] g3's port " << g3_port << ":" << drop_text << "\n";
  EXPECT_GT(drops, 0u) << "no drop counted on the paused guest's port:\n" << after->dump(1);

  ASSERT_TRUE(qmp->execute("cont", &error, 10s).has_value()) << error;
  ASSERT_EQ(qmp->status(&error, 10s), "running") << error;
  CommandResult back = g3.run("ping -c 3 -i 0.2 -w 30 " + g1.ip(), kPingTimeout);
  std::cout << "[ ping     ] g3 -> g1 after cont:\n" << back.output;
  ASSERT_TRUE(back.completed) << g3.diagnostics();
  // The first request may go while g3 still works through what waited in its socket.
  ASSERT_TRUE(ping_counts(back.output, &transmitted, &received)) << back.output;
  EXPECT_GT(received, 0) << back.output;
}

}  // namespace
}  // namespace qswitch::e2e
