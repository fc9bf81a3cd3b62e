// tests/e2e/vhost_user_e2e_test.cc: QEMU guests on qswitch's vhost-user ports (issue 11).
//
// Theory of operation: a vhost-user guest's NIC is QEMU's virtio-net with its rings in the
// guest's own memory, which QEMU shares with qswitch (a memfd backend, share=on); qswitch is the
// back-end that reads and writes those rings (backends/vhost_user/vhost_user_port.h). Guest
// options: GuestOptions::vhost_user_socket (guest.h: the memfd, the chardev, -netdev vhost-user,
// vectors=0 under TCG). Every test starts qswitch with --vhost-user unix:PATH (and --listen for
// stream guests), --no-slirp, and asserts what the guests print (ping and iperf3 counts) and what
// the control API says (`ports`: kind "vhost-user" and the vhost_* counters). No rate, no time
// asserted; every wait has a deadline, every loop a bound.
//  - TwoVhostUserGuestsAndAStreamGuestEveryPairPings: two vhost-user guests and a stream guest,
//    every pair pings; each vhost-user port moved frames both ways, was kicked and interrupted
//    the guest, with no ring or protocol error; the switch exits 0 when the guests are gone.
//  - Iperf3BetweenVhostUserGuestsAndToAStreamGuest: bounded TCP runs from a vhost-user guest
//    (TSO and checksum offload on, as QEMU offers them) to another vhost-user guest (large
//    segments cross whole) and to a stream guest (the switch cuts them: gso_cut > 0, nothing
//    dropped) complete and move data; the receiver figures go to the e2e report
//    (e2e_report_path()).
//  - PrintedJoinLinesBootGuests: --guests 2 with one --listen and one --vhost-user prints a stream
//    and a vhost-user join line; guests boot with exactly those words (no -m: QEMU takes the
//    memfd's size; vectors=0 kept under TCG as printed, dropped under KVM as the note says) and
//    ping each other.
//  - RestartedSwitchTakesBackReconnectingGuests: two vhost-user guests with reconnect=1 ping; the
//    switch gets SIGTERM and exits 0; a new one on the same socket path sees both come back
//    (`ports`, polled) and they ping again. (A stream guest's QEMU 7.2 cannot reconnect.)
//  - PausedVhostUserGuestDoesNotStopTheOthers: g2 (vhost-user, QMP `stop`) is flooded by g1
//    (vhost-user) while g3 (stream) pings g1 all along; g3 and g1 keep talking; g2's port counts
//    the frames it could not take (vhost_not_running: QEMU stops the rings of a stopped VM);
//    after `cont` g2 pings g1.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/qmp_client.h"
#include "tests/support/control_client.h"

namespace qswitch::e2e {
namespace {

using json = nlohmann::json;

GuestOptions vhost_user_guest(int index, const std::string& socket, bool reconnect = false) {
  GuestOptions o = guest_options(index, "");
  o.vhost_user_socket = socket;
  o.vhost_user_reconnect = reconnect;
  return o;
}

// The `ports` rows of the switch whose control socket is `control`; nullopt with *error.
// The result of control command `cmd` ("ports", "stats"); nullopt with *error.
std::optional<json> query(const std::string& control, const std::string& cmd, std::string* error) {
  auto ctl = test_support::ControlClient::connect(control, error);
  if (!ctl) return std::nullopt;
  test_support::LineResult r = ctl->request(json{{"cmd", cmd}}.dump());
  if (!r.ok()) {
    *error = cmd + ": " + test_support::to_string(r.status) + " " + r.error;
    return std::nullopt;
  }
  json reply = json::parse(r.line, nullptr, false);
  if (reply.is_discarded() || !reply.value("ok", false) || !reply.contains("result")) {
    *error = cmd + ": " + r.line;
    return std::nullopt;
  }
  return reply["result"];
}

std::optional<json> query_ports(const std::string& control, std::string* error) {
  std::optional<json> rows = query(control, "ports", error);
  if (rows && !rows->is_array()) {
    *error = "ports: not an array: " + rows->dump();
    return std::nullopt;
  }
  return rows;
}

size_t count_kind(const json& rows, const std::string& kind) {
  size_t n = 0;
  for (const json& row : rows) n += row.value("kind", "") == kind ? 1 : 0;
  return n;
}

// The row of the port that learned `mac`, or nullptr.
const json* row_for_mac(const json& rows, const std::string& mac) {
  for (const json& row : rows) {
    for (const json& m : row.value("macs", json::array())) {
      if (m.is_string() && m.get<std::string>() == mac) return &row;
    }
  }
  return nullptr;
}

uint64_t counter(const json& row, const std::string& name) {
  const json c = row.value("counters", json::object());
  return c.contains(name) && c[name].is_number_unsigned() ? c[name].get<uint64_t>() : 0;
}

std::string vhost_counter_text(const json& row) {
  std::string text;
  for (const char* name :
       {"rx_frames", "tx_frames", "drop_queue_full", "vhost_kicks", "vhost_interrupts",
        "vhost_descriptors", "vhost_tx_lent", "vhost_rx_no_room", "vhost_not_running",
        "vhost_ring_errors", "vhost_protocol_errors"}) {
    text += std::string(" ") + name + "=" + std::to_string(counter(row, name));
  }
  return text;
}

class VhostUserE2eTest : public GuestLabTest {
 protected:
  // The `ports` rows of qswitch_ (or `process`); nullopt with a failure.
  std::optional<json> port_rows(QswitchProcess* process = nullptr) {
    QswitchProcess& q = process != nullptr ? *process : qswitch_;
    std::string error;
    std::optional<json> rows = query_ports(q.control(), &error);
    EXPECT_TRUE(rows.has_value()) << error;
    return rows;
  }

  // The vhost-user port of `guest` (found by its MAC) moved frames both ways, saw the guest's
  // kicks, interrupted it, and had no ring or protocol error.
  void expect_vhost_port_worked(const json& rows, const Guest& guest) {
    const json* row = row_for_mac(rows, guest.options().mac);
    ASSERT_NE(row, nullptr) << "no port learned " << guest.options().name << "'s MAC "
                            << guest.options().mac << ":\n"
                            << rows.dump(1);
    std::cout << "[ qswitch  ] " << guest.options().name << "'s port "
              << row->value("id", json()).dump() << " " << row->value("kind", "")
              << vhost_counter_text(*row) << "\n";
    EXPECT_EQ(row->value("kind", ""), "vhost-user") << row->dump(1);
    for (const char* name : {"rx_frames", "tx_frames", "vhost_kicks", "vhost_interrupts"}) {
      EXPECT_GT(counter(*row, name), 0u) << name << " on " << guest.options().name << "'s port:\n"
                                         << row->dump(1);
    }
    for (const char* name : {"vhost_ring_errors", "vhost_protocol_errors"}) {
      ASSERT_TRUE(row->value("counters", json::object()).contains(name)) << row->dump(1);
      EXPECT_EQ(counter(*row, name), 0u) << name << " on " << guest.options().name << "'s port:\n"
                                         << row->dump(1);
    }
  }

  // Until one echo reply comes back from `peer` (at most `tries` one-second pings): the path is
  // up. Returns the last ping's output when none came.
  bool ping_until_reply(Guest& guest, const Guest& peer, int tries, std::string* output) {
    CommandResult r = guest.run("i=0; while [ $i -lt " + std::to_string(tries) +
                                    " ]; do ping -c 1 -W 1 " + peer.ip() +
                                    " >/tmp/first.out 2>&1 && break; i=$((i+1)); done; "
                                    "cat /tmp/first.out; [ $i -lt " +
                                    std::to_string(tries) + " ]",
                                std::chrono::seconds(tries * 3 + 30));
    *output = r.output + (r.completed ? "" : guest.diagnostics());
    return r.completed && r.exit_code == 0;
  }
};

TEST_F(VhostUserE2eTest, TwoVhostUserGuestsAndAStreamGuestEveryPairPings) {
  const std::string vsock = dir_.file("vu.sock");
  const std::string ssock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--vhost-user", "unix:" + vsock, "--listen", "unix:" + ssock}));
  ASSERT_FALSE(qswitch_.control().empty()) << qswitch_.stdout_text();
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(1, vsock)));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(2, vsock)));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(3, unix_netdev(ssock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(3);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  // At MTU 9000, echo requests of 8042-byte frames from g1 to the other vhost-user guest and to
  // the stream guest: ordinary frames (ICMP, no checksum left to do) of 2 KiB and more, which
  // leave g1's memory without a copy, as QEMU's memory-backend-memfd is sealed
  // (backends/vhost_user/tx_loans.h); the replies leave g2's the same way.
  for (auto& g : guests_) {
    const CommandResult r = g->run("ip link set eth0 mtu 9000", kPingTimeout);
    ASSERT_TRUE(r.completed && r.exit_code == 0) << r.output << g->diagnostics();
  }
  for (size_t peer : {size_t{1}, size_t{2}}) {
    const CommandResult big =
        guests_[0]->run("ping -c 3 -s 8000 -i 0.2 -w 20 " + guests_[peer]->ip(), kPingTimeout);
    ASSERT_TRUE(big.completed) << guests_[0]->diagnostics();
    EXPECT_NE(big.output.find("3 packets transmitted, 3 packets received"), std::string::npos)
        << big.output;
  }

  std::optional<json> rows = port_rows();
  ASSERT_TRUE(rows.has_value());
  const json* g1_row = row_for_mac(*rows, guests_[0]->options().mac);
  ASSERT_NE(g1_row, nullptr) << rows->dump(1);
  std::cout << "[ qswitch  ] g1's port:" << vhost_counter_text(*g1_row) << "\n";
  EXPECT_GE(counter(*g1_row, "vhost_tx_lent"), 6u) << g1_row->dump(1);
  EXPECT_EQ(count_kind(*rows, "vhost-user"), 2u) << rows->dump(1);
  EXPECT_EQ(count_kind(*rows, "stream"), 1u) << rows->dump(1);
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guests_[0]));
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guests_[1]));
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(3));
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(3));
}

// iperf3 from a vhost-user guest (TSO and checksum offload negotiated, as QEMU's virtio-net
// offers them by default) to another vhost-user guest, whose port takes the large segments
// whole, then to a stream guest, for which the switch cuts them (gso_cut).
TEST_F(VhostUserE2eTest, Iperf3BetweenVhostUserGuestsAndToAStreamGuest) {
  const std::string vsock = dir_.file("vu.sock");
  const std::string ssock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--vhost-user", "unix:" + vsock, "--listen", "unix:" + ssock}));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(1, vsock)));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(2, vsock)));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(3, unix_netdev(ssock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(3);
  Guest& g1 = *guests_[0];
  static const std::regex receiver(
      R"(\[\s*\d+\]\s+[0-9.]+-[0-9.]+\s+sec\s+([0-9.]+) (Bytes|KBytes|MBytes|GBytes)\s+)"
      R"(([0-9.]+) Mbits/sec\s+receiver)");
  double mbits[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    Guest& server = *guests_[1 + i];
    SCOPED_TRACE("iperf3 g1 -> " + server.options().name);
    CommandResult started = server.run("iperf3 -s -D && sleep 1", 20s);
    ASSERT_TRUE(started.completed) << server.diagnostics();
    ASSERT_EQ(started.exit_code, 0) << started.output;
    CommandResult r = g1.run("timeout 90 iperf3 -c " + server.ip() +
                                 " -t 5 -f m --connect-timeout 10000; echo \"IPERF rc=$?\"",
                             kIperfTimeout);
    std::cout << "[ iperf3   ] g1 -> " << server.options().name << ":\n" << r.output;
    ASSERT_TRUE(r.completed) << "iperf3 on g1 did not finish" << g1.diagnostics();
    EXPECT_NE(r.output.find("IPERF rc=0"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("iperf Done."), std::string::npos) << r.output;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, receiver)) << r.output;
    EXPECT_GT(std::stod(m[1].str()), 0.0) << r.output;
    mbits[i] = std::stod(m[3].str());
    EXPECT_GT(mbits[i], 0.0) << r.output;
  }

  std::optional<json> rows = port_rows();
  ASSERT_TRUE(rows.has_value());
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, g1));
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guests_[1]));
  // g1's TCP handed large segments to the switch; the stream guest got them cut.
  const json* row = row_for_mac(*rows, g1.options().mac);
  ASSERT_NE(row, nullptr);
  EXPECT_GT(counter(*row, "vhost_gso_frames"), 0u) << row->dump(1);
  EXPECT_EQ(counter(*row, "vhost_bad_offload"), 0u) << row->dump(1);
  std::string error;
  const std::optional<json> stats = query(qswitch_.control(), "stats", &error);
  ASSERT_TRUE(stats.has_value()) << error;
  EXPECT_GT(stats->value("gso_cut", uint64_t{0}), 0u) << stats->dump(1);
  EXPECT_GT(stats->value("gso_segments", uint64_t{0}), stats->value("gso_cut", uint64_t{0}));
  EXPECT_EQ(stats->value("gso_dropped", uint64_t{1}), 0u) << stats->dump(1);

  // Appended: SwitchE2eTest.Iperf3ThroughSwitchAtMtu1500And65520 starts the file, and runs first.
  std::ofstream report(e2e_report_path(), std::ios::app);
  char line[240];
  std::snprintf(line, sizeof line,
                "vhost-user mtu  1500 %7.2f Mbit/s to a vhost-user guest, %7.2f Mbit/s to a "
                "stream guest (iperf3 TCP 5 s, accelerator %s, TSO; "
                "VhostUserE2eTest.Iperf3BetweenVhostUserGuestsAndToAStreamGuest)\n",
                mbits[0], mbits[1], accelerator_args()[1].c_str());
  report << line;
  std::cout << "[ iperf3   ] " << line;
  EXPECT_TRUE(report.good()) << "cannot write " << e2e_report_path();
}

TEST_F(VhostUserE2eTest, PrintedJoinLinesBootGuests) {
  const std::string vsock = dir_.file("vu.sock");
  const std::string ssock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch(
      {"--listen", "unix:" + ssock, "--vhost-user", "unix:" + vsock, "--guests", "2"}));
  ASSERT_EQ(qswitch_.join_lines().size(), 2u) << qswitch_.stdout_text();
  std::cout << "[ qswitch  ] printed:\n" << qswitch_.stdout_text();
  static const std::regex mac_re(R"(mac=([0-9a-fA-F:]{17}))");
  int stream_lines = 0, vhost_lines = 0;
  for (const std::string& line : qswitch_.join_lines()) {
    const std::string prefix = "join with: ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, mac_re)) << line;
    const std::string mac = m[1].str();
    std::vector<std::string> words;
    std::istringstream in(line.substr(prefix.size()));
    for (std::string w; in >> w && words.size() < 64;) words.push_back(w);
    const bool vhost = line.find("-netdev vhost-user") != std::string::npos;
    GuestOptions options = guest_options(vhost ? 1 : 2, "");
    options.mac = mac;
    if (vhost) {
      ++vhost_lines;
      EXPECT_NE(line.find("share=on"), std::string::npos) << line;
      EXPECT_NE(line.find("path=" + vsock), std::string::npos) << line;
      // The printed note: vectors=0 is for TCG; under KVM MSI-X stays on.
      for (std::string& w : words) {
        const std::string vectors = ",vectors=0";
        const size_t at = w.find(vectors);
        if (at != std::string::npos && !accelerator_is_tcg()) w.erase(at, vectors.size());
      }
      options.memory_mib = 0;  // no -m: QEMU takes the memfd's size (size=1G as printed)
      options.extra_args = words;
    } else {
      ++stream_lines;
      ASSERT_GE(words.size(), 2u) << line;
      ASSERT_EQ(words[0], "-netdev") << line;
      EXPECT_EQ(words[1], unix_netdev(ssock, false)) << line;
      options.netdev = words[1];
    }
    ASSERT_NO_FATAL_FAILURE(start_guest(options));
  }
  EXPECT_EQ(stream_lines, 1) << qswitch_.stdout_text();
  ASSERT_EQ(vhost_lines, 1) << qswitch_.stdout_text();
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(2);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  std::optional<json> rows = port_rows();
  ASSERT_TRUE(rows.has_value());
  for (auto& guest : guests_) {
    if (guest->options().name == "g1") {
      ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guest));
    }
  }
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(2));
}

TEST_F(VhostUserE2eTest, RestartedSwitchTakesBackReconnectingGuests) {
  const std::string vsock = dir_.file("vu.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--vhost-user", "unix:" + vsock}));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(1, vsock, /*reconnect=*/true)));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(2, vsock, /*reconnect=*/true)));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(2);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());

  ASSERT_TRUE(qswitch_.signal(SIGTERM));
  std::optional<int> status = qswitch_.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "qswitch did not exit within 10 s of SIGTERM";
  EXPECT_EQ(*status, 0) << qswitch_.stderr_text();
  std::cout << "[ qswitch  ] first switch exited " << *status << "\n";

  QswitchProcess restarted;
  ASSERT_NO_FATAL_FAILURE(
      start_switch_as(restarted, {"--vhost-user", "unix:" + vsock}, "qswitch-restarted.log"));
  ASSERT_FALSE(restarted.control().empty()) << restarted.stdout_text();
  // QEMU's chardev dials again every second (reconnect=1): poll `ports` until both are back.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::optional<json> rows;
  std::string error;
  for (int i = 0; i < 600; ++i) {
    rows = query_ports(restarted.control(), &error);
    if (rows && count_kind(*rows, "vhost-user") == 2) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(rows.has_value()) << error;
  ASSERT_EQ(count_kind(*rows, "vhost-user"), 2u)
      << "the guests did not come back within 60 s:\n"
      << rows->dump(1) << "\n--- new switch ---\n"
      << restarted.stderr_text() << guests_[0]->diagnostics() << guests_[1]->diagnostics();
  std::cout << "[ qswitch  ] both guests reconnected\n";

  // The ports are there; the rings run once QEMU has set them up again: wait for a first reply.
  std::string output;
  ASSERT_TRUE(ping_until_reply(*guests_[0], *guests_[1], 30, &output))
      << "g1 gets no reply from g2 after the restart:\n"
      << output << "\n--- new switch ---\n"
      << restarted.stderr_text() << guests_[0]->diagnostics() << guests_[1]->diagnostics();
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  rows = port_rows(&restarted);
  ASSERT_TRUE(rows.has_value());
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guests_[0]));
  ASSERT_NO_FATAL_FAILURE(expect_vhost_port_worked(*rows, *guests_[1]));

  guests_.clear();
  ASSERT_TRUE(restarted.signal(SIGTERM));
  status = restarted.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "the new qswitch did not exit within 10 s of SIGTERM";
  EXPECT_EQ(*status, 0) << restarted.stderr_text();
}

TEST_F(VhostUserE2eTest, PausedVhostUserGuestDoesNotStopTheOthers) {
  const std::string vsock = dir_.file("vu.sock");
  const std::string ssock = dir_.file("sw.sock");
  const std::string qmp_path = dir_.file("g2.qmp");
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--vhost-user", "unix:" + vsock, "--listen", "unix:" + ssock}));
  ASSERT_NO_FATAL_FAILURE(start_guest(vhost_user_guest(1, vsock)));
  GuestOptions paused = vhost_user_guest(2, vsock);
  paused.qmp_path = qmp_path;
  ASSERT_NO_FATAL_FAILURE(start_guest(paused));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(3, unix_netdev(ssock, false))));
  Guest& g1 = *guests_[0];
  Guest& g2 = *guests_[1];
  Guest& g3 = *guests_[2];
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(3);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());

  std::string error;
  std::optional<QmpClient> qmp = QmpClient::connect(qmp_path, &error, 10s);
  ASSERT_TRUE(qmp.has_value()) << error << g2.diagnostics();
  ASSERT_TRUE(qmp->execute("stop", &error, 10s).has_value()) << error;
  ASSERT_EQ(qmp->status(&error, 10s), "paused") << error;
  std::cout << "[ qmp      ] g2 stopped (query-status: paused)\n";

  // g1 floods g2 (unicast: g2's MAC is learned, g1 knows its address) with 8000-byte pings, 50
  // a second in each of two loops (six frames each), for 12 s; g3 pings g1 all along.
  const std::string g1_token =
      g1.send("for n in 1 2; do ping -q -s 8000 -i 0.02 -w 12 " + g2.ip() +
              " >/tmp/flood.$n 2>&1 & done; wait\n"
              "echo FLOOD $(awk '/packets transmitted/ {n += $1} END {print n + 0}' /tmp/flood.*) "
              "packets transmitted");
  constexpr int kPingCount = 45;
  const std::string g3_token =
      g3.send("ping -c " + std::to_string(kPingCount) + " -i 0.3 -w 30 " + g1.ip() +
              " >/tmp/ping.out 2>&1; grep seq= /tmp/ping.out | tail -n 1; tail -n 2 /tmp/ping.out");
  CommandResult flood = g1.wait_result(g1_token, kPingTimeout);
  CommandResult pings = g3.wait_result(g3_token, kPingTimeout);
  std::cout << "[ flood    ] g1 -> g2 (paused):\n" << flood.output;
  std::cout << "[ ping     ] g3 -> g1 during the flood:\n" << pings.output;
  ASSERT_TRUE(flood.completed) << g1.diagnostics();
  static const std::regex flood_re(R"(FLOOD (\d+) packets transmitted)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(flood.output, m, flood_re)) << flood.output;
  EXPECT_GT(std::stoi(m[1].str()), 0) << flood.output;
  ASSERT_TRUE(pings.completed) << g3.diagnostics();
  int transmitted = 0, received = 0;
  ASSERT_TRUE(ping_counts(pings.output, &transmitted, &received)) << pings.output;
  EXPECT_GT(received, 0) << pings.output;
  static const std::regex last_reply(R"(seq=(\d+) )");
  ASSERT_TRUE(std::regex_search(pings.output, m, last_reply)) << pings.output;
  EXPECT_GE(std::stoi(m[1].str()), kPingCount - kPingCount / 5)
      << "g3's last pings to g1 got no reply:\n"
      << pings.output;

  // Still paused: g1 and g3 reach each other with no loss.
  ASSERT_EQ(qmp->status(&error, 10s), "paused") << error;
  const std::string after13 = g1.send("ping -c 5 -i 0.2 -w 20 " + g3.ip());
  const std::string after31 = g3.send("ping -c 5 -i 0.2 -w 20 " + g1.ip());
  for (auto [guest, token] : {std::pair{&g1, after13}, std::pair{&g3, after31}}) {
    CommandResult r = guest->wait_result(token, kPingTimeout);
    ASSERT_TRUE(r.completed) << guest->diagnostics();
    EXPECT_NE(r.output.find("5 packets transmitted, 5 packets received"), std::string::npos)
        << guest->options().name << " with g2 paused:\n"
        << r.output;
  }

  // g2's port shows the stall. QEMU stops a vhost back-end's rings with the VM (`stop` makes
  // virtio-net stop vhost: GET_VRING_BASE on both queues; `cont` sets them up again), so the
  // flood finds g2's receive queue stopped: dropped and counted as vhost_not_running, before any
  // ring could fill (vhost_rx_no_room) or the queue behind it (drop_queue_full).
  std::optional<json> rows = port_rows();
  ASSERT_TRUE(rows.has_value());
  const json* row = row_for_mac(*rows, g2.options().mac);
  ASSERT_NE(row, nullptr) << rows->dump(1);
  std::cout << "[ qswitch  ] g2's port (paused):" << vhost_counter_text(*row) << "\n";
  EXPECT_EQ(row->value("kind", ""), "vhost-user") << row->dump(1);
  EXPECT_GT(counter(*row, "vhost_not_running"), 0u)
      << "g2's port counted no frame for its stopped rings:\n"
      << row->dump(1);
  EXPECT_EQ(counter(*row, "vhost_ring_errors"), 0u) << row->dump(1);
  EXPECT_EQ(counter(*row, "vhost_protocol_errors"), 0u) << row->dump(1);

  ASSERT_TRUE(qmp->execute("cont", &error, 10s).has_value()) << error;
  ASSERT_EQ(qmp->status(&error, 10s), "running") << error;
  CommandResult back = g2.run("ping -c 3 -i 0.2 -w 30 " + g1.ip(), kPingTimeout);
  std::cout << "[ ping     ] g2 -> g1 after cont:\n" << back.output;
  ASSERT_TRUE(back.completed) << g2.diagnostics();
  ASSERT_TRUE(ping_counts(back.output, &transmitted, &received)) << back.output;
  EXPECT_GT(received, 0) << back.output;
  rows = port_rows();
  ASSERT_TRUE(rows.has_value());
  row = row_for_mac(*rows, g2.options().mac);
  ASSERT_NE(row, nullptr) << rows->dump(1);
  std::cout << "[ qswitch  ] g2's port after cont:" << vhost_counter_text(*row) << "\n";
}

}  // namespace
}  // namespace qswitch::e2e
