// tests/e2e/guest_lab.h: the fixtures the end-to-end tests share.
// E2eTest, the base of every one: the prerequisites (QEMU, the guest image), a per-test temp
// dir, and qswitch processes started from this build's binary, as they are (launch_switch) or
// with a slirp port (start_slirp_switch: --listen on a unix socket, the control socket read from
// the "control unix:PATH" line).
// GuestLabTest: one qswitch process (test_support::QswitchProcess) and real QEMU guests (Guest)
// on it, with the checks the tests make again and again: every guest pings every other, stats
// show traffic both ways, the switch exits cleanly once the guests are gone.
// Guests: g<i> at 10.0.0.<10+i>/24, MAC 52:54:00:e2:00:<i> (guest_options), on a switch started
// with --no-slirp (an isolated segment).
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"

namespace qswitch::e2e {

using namespace std::chrono_literals;
using test_support::LaunchOptions;
using test_support::QswitchProcess;
using test_support::TempDir;

// TCG on two cores with five guests booting at once: a boot takes 3 s alone, ~15 s then.
constexpr auto kBootTimeout = 120s;
constexpr auto kPingTimeout = 90s;
constexpr auto kIperfTimeout = 120s;

using Guests = std::vector<std::unique_ptr<Guest>>;

inline GuestOptions guest_options(int index, const std::string& netdev, int mtu = 1500) {
  char mac[32];
  std::snprintf(mac, sizeof mac, "52:54:00:e2:00:%02x", index);
  GuestOptions o;
  o.name = "g" + std::to_string(index);
  o.ip_cidr = "10.0.0." + std::to_string(10 + index) + "/24";
  o.mac = mac;
  o.netdev = netdev;
  o.mtu = mtu;
  return o;
}

inline std::string unix_netdev(const std::string& path, bool server) {
  return std::string("stream,id=n0,server=") + (server ? "on" : "off") +
         ",addr.type=unix,addr.path=" + path;
}

inline bool wait_for_path(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st;
  while (::stat(path.c_str(), &st) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// "N packets transmitted, M packets received" in busybox ping's output.
inline bool ping_counts(const std::string& output, int* transmitted, int* received) {
  static const std::regex counts(R"((\d+) packets transmitted, (\d+) packets received)");
  std::smatch m;
  if (!std::regex_search(output, m, counts)) return false;
  *transmitted = std::stoi(m[1].str());
  *received = std::stoi(m[2].str());
  return true;
}

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = missing_e2e_prerequisites();
    ASSERT_EQ(missing, "") << "end-to-end tests need: " << missing;
    ASSERT_FALSE(dir_.path().empty()) << "cannot create a temp dir under /tmp";
  }

  // Starts `process` from the qswitch binary with `args` as they are, its stderr in `log_name`
  // under the temp dir; a fatal failure (check with ASSERT_NO_FATAL_FAILURE) when the binary is
  // missing or qswitch does not come up.
  void launch_switch(QswitchProcess& process, const std::vector<std::string>& args,
                     const std::string& log_name) {
    ASSERT_EQ(::access(qswitch_binary().c_str(), X_OK), 0)
        << "qswitch binary " << qswitch_binary() << " is missing (build target qswitch)";
    LaunchOptions options;
    options.binary = qswitch_binary();
    options.args = args;
    options.stderr_path = dir_.file(log_name);
    ASSERT_TRUE(process.start(options, 10s)) << process.error();
  }

  // Starts `process` as `qswitch --listen unix:DIR/NAME.sock --slirp=SLIRP_VALUE` (a bare
  // --slirp when the value is empty), its stderr in DIR/NAME.log. *sock is the listener's path,
  // *ctl the control socket's path from the "control unix:PATH" line; a fatal failure when
  // qswitch does not come up or prints no such line.
  void start_slirp_switch(QswitchProcess& process, const std::string& name,
                          const std::string& slirp_value, std::string* sock, std::string* ctl) {
    *sock = dir_.file(name + ".sock");
    const std::string slirp = slirp_value.empty() ? "--slirp" : "--slirp=" + slirp_value;
    ASSERT_NO_FATAL_FAILURE(
        launch_switch(process, {"--listen", "unix:" + *sock, slirp}, name + ".log"));
    ctl->clear();
    for (const std::string& line : process.stdout_lines()) {
      if (line.rfind("control unix:", 0) == 0) *ctl = line.substr(std::strlen("control unix:"));
    }
    ASSERT_FALSE(ctl->empty()) << "no 'control unix:' line:\n" << process.stdout_text();
  }

  TempDir dir_{"qs-e2e-"};
};

class GuestLabTest : public E2eTest {
 protected:
  // Starts qswitch with `args` and --no-slirp (an isolated segment: only the guests' ports); a
  // fatal failure (check with ASSERT_NO_FATAL_FAILURE) when it does not come up.
  void start_switch(const std::vector<std::string>& args) {
    ASSERT_NO_FATAL_FAILURE(start_switch_as(qswitch_, args, "qswitch.log"));
  }
  // The same with another QswitchProcess (a second switch, or one started after the first has
  // gone), its stderr in `log_name` under the temp dir.
  void start_switch_as(QswitchProcess& process, const std::vector<std::string>& args,
                       const std::string& log_name) {
    std::vector<std::string> isolated = args;
    isolated.push_back("--no-slirp");
    ASSERT_NO_FATAL_FAILURE(launch_switch(process, isolated, log_name));
  }

  // Starts one guest (no waiting). Fatal failure if QEMU cannot be started.
  void start_guest(const GuestOptions& options) {
    std::string error;
    std::unique_ptr<Guest> guest = Guest::start(options, dir_.path(), &error);
    ASSERT_NE(guest, nullptr) << error;
    guests_.push_back(std::move(guest));
  }

  // Waits for every started guest to be up, and prints the boot times.
  void wait_all_ready() {
    for (auto& guest : guests_) {
      std::string error;
      ASSERT_TRUE(guest->wait_ready(kBootTimeout, &error)) << error;
    }
    std::string line = "[ boot     ] ";
    for (auto& guest : guests_) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s %.1f s  ", guest->options().name.c_str(),
                    guest->boot_seconds());
      line += buf;
    }
    std::cout << line << accelerator_args()[1] << "\n";
  }

  // Runs `command` in `g` and returns its output; a failure when it does not complete.
  std::string run_in(Guest& g, const std::string& command) {
    const CommandResult r = g.run(command, kPingTimeout);
    EXPECT_TRUE(r.completed) << g.options().name << ": " << command << g.diagnostics();
    return r.output;
  }
  // `from` pings `ip` (3 requests, 6 s at most): the number of replies (-1, with a failure, when
  // ping printed no counts).
  int ping_replies(Guest& from, const std::string& ip) {
    const std::string out = run_in(from, "ping -c 3 -i 0.2 -w 6 " + ip + " 2>&1");
    int transmitted = 0;
    int received = 0;
    if (!ping_counts(out, &transmitted, &received)) {
      ADD_FAILURE() << from.options().name << " ping " << ip << ": " << out;
      return -1;
    }
    std::cout << "[ ping     ] " << from.options().name << " -> " << ip << ": " << received << "/"
              << transmitted << "\n";
    return received;
  }

  // Every guest pings every other guest (3 echo requests each); all replies must arrive.
  void expect_every_pair_pings() {
    std::vector<std::string> tokens;
    for (auto& guest : guests_) {
      std::string peers;
      for (auto& other : guests_) {
        if (other != guest) peers += " " + other->ip();
      }
      tokens.push_back(guest->send("for ip in" + peers +
                                   "; do ping -c 3 -i 0.2 -w 20 $ip >/tmp/ping.$ip 2>&1; "
                                   "echo \"PING $ip rc=$? $(grep 'packets transmitted' "
                                   "/tmp/ping.$ip)\"; done"));
    }
    for (size_t i = 0; i < guests_.size(); ++i) {
      Guest& guest = *guests_[i];
      CommandResult r = guest.wait_result(tokens[i], kPingTimeout);
      ASSERT_TRUE(r.completed) << "pings from " << guest.options().name << " did not finish"
                               << guest.diagnostics();
      std::cout << "[ ping     ] from " << guest.options().name << ":\n" << r.output;
      for (auto& other : guests_) {
        if (other.get() == &guest) continue;
        std::string expected =
            "PING " + other->ip() + " rc=0 3 packets transmitted, 3 packets received";
        EXPECT_NE(r.output.find(expected), std::string::npos)
            << guest.options().name << " -> " << other->options().name << ": expected '" << expected
            << "' in:\n"
            << r.output;
      }
    }
  }

  // Stats read through the JSON control API: every port saw traffic both ways, the switch
  // learnt every guest's MAC (mac_entries).
  void expect_stats_show_traffic(size_t port_count) {
    std::optional<test_support::StatsSnapshot> stats = qswitch_.stats(5s);
    ASSERT_TRUE(stats.has_value()) << qswitch_.error();
    EXPECT_EQ(stats->ports.size(), port_count) << stats->text;
    for (const auto& [id, port] : stats->ports) {
      EXPECT_GT(port.get("rx_frames"), 0u) << "port " << id << "\n" << stats->text;
      EXPECT_GT(port.get("tx_frames"), 0u) << "port " << id << "\n" << stats->text;
      EXPECT_EQ(port.get("drop_bad_length"), 0u) << "port " << id << "\n" << stats->text;
    }
    auto macs = stats->switch_counters.find("mac_entries");
    ASSERT_NE(macs, stats->switch_counters.end()) << stats->text;
    EXPECT_EQ(macs->second, port_count) << stats->text;
  }

  // Stops the guests (QEMU closes its socket: qswitch logs "down"), then qswitch: exit 0.
  void stop_all_and_expect_clean_exit(size_t port_count) {
    guests_.clear();
    EXPECT_TRUE(qswitch_.wait_for_stderr("down:", 10s).has_value()) << qswitch_.stderr_text();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (qswitch_.count_stderr_lines("down:") < port_count &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(qswitch_.count_stderr_lines("down:"), port_count) << qswitch_.stderr_text();
    ASSERT_TRUE(qswitch_.signal(SIGTERM));
    std::optional<int> status = qswitch_.wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << "qswitch did not exit within 10 s of SIGTERM";
    EXPECT_EQ(*status, 0) << qswitch_.stderr_text();
  }

  void expect_ports_up(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (qswitch_.count_stderr_lines(" up: ") < count &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(qswitch_.count_stderr_lines(" up: "), count) << qswitch_.stderr_text();
  }

  QswitchProcess qswitch_;
  Guests guests_;  // declared after qswitch_: guests stop first
};

}  // namespace qswitch::e2e
