// tests/e2e/switch_e2e_test.cc: real QEMU guests talking through a real qswitch process.
//
// Theory of operation: each test makes a temp dir (sockets, logs), starts qswitch with the
// listeners it needs (test_support::QswitchProcess), boots its guests all at once and waits for
// each to print QS-READY (Guest), then types commands on the guests' consoles: pings between every
// pair, iperf3 between two. Commands run in all guests at the same time (send, then collect), so a
// test costs about one boot plus one round of commands even on two TCG cores. What is asserted is
// what was observed: ping replies counted by the guests' own ping, iperf3's "iperf Done." and its
// measured throughput, qswitch's "port N up/down" log lines and its stats counters read back after
// SIGUSR1, and its exit status. Throughput is printed and written to e2e-iperf.txt, never asserted.
// Guests: g<i> at 10.0.0.<10+i>/24, MAC 52:54:00:e2:00:<i>, on a switch with no other port: every
// switch here runs with --no-slirp (the slirp port is tested in slirp_e2e_test.cc).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "tests/e2e/guest.h"
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/host_side.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"

namespace qswitch::e2e {
namespace {

class SwitchE2eTest : public GuestLabTest {};

// The guest image and harness alone, no switch: two guests on one QEMU stream socket.
TEST_F(SwitchE2eTest, TwoGuestsLinkedDirectlyPingEachOther) {
  const std::string sock = dir_.file("direct.sock");
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, true))));
  ASSERT_TRUE(wait_for_path(sock, 10s))
      << "QEMU did not create " << sock << guests_[0]->diagnostics();
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
}

TEST_F(SwitchE2eTest, TwoGuestsOnUnixStreamPingEachOther) {
  const std::string sock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock, "--guests", "2"}));
  ASSERT_EQ(qswitch_.listening(), std::vector<std::string>{"unix:" + sock});
  // Join exactly as the printed lines say.
  ASSERT_EQ(qswitch_.join_lines().size(), 2u) << qswitch_.stdout_text();
  static const std::regex join(R"(^join with: -netdev (\S+) -device \S*mac=([0-9a-fA-F:]{17}))");
  for (int i = 0; i < 2; ++i) {
    std::smatch m;
    const std::string& line = qswitch_.join_lines()[i];
    ASSERT_TRUE(std::regex_search(line, m, join)) << line;
    EXPECT_EQ(m[1].str(), unix_netdev(sock, false)) << line;
    GuestOptions options = guest_options(i + 1, m[1].str());
    options.mac = m[2].str();
    ASSERT_NO_FATAL_FAILURE(start_guest(options));
  }
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(2);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(2));
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(2));
  struct stat st;
  EXPECT_NE(::stat(sock.c_str(), &st), 0) << "qswitch left " << sock << " behind";
}

TEST_F(SwitchE2eTest, FiveGuestsEveryPairPings) {
  const std::string sock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(i, unix_netdev(sock, false))));
  }
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(5);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(5));
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(5));
}

// Three ways in: stream over TCP, the legacy -netdev socket (same framing), and a guest that is
// the listener, dialled by qswitch --connect.
TEST_F(SwitchE2eTest, MixedBackendsReachEachOther) {
  const std::string guest_sock = dir_.file("g3.sock");
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(3, unix_netdev(guest_sock, true))));
  ASSERT_TRUE(wait_for_path(guest_sock, 10s))
      << "QEMU did not create " << guest_sock << guests_[0]->diagnostics();
  ASSERT_NO_FATAL_FAILURE(
      start_switch({"--listen", "tcp:127.0.0.1:0", "--connect", "unix:" + guest_sock}));
  ASSERT_EQ(qswitch_.listening().size(), 1u) << qswitch_.stdout_text();
  const std::string& tcp = qswitch_.listening()[0];
  const std::string port = tcp.substr(tcp.rfind(':') + 1);
  ASSERT_EQ(tcp, "tcp:127.0.0.1:" + port);
  ASSERT_NE(port, "0") << "qswitch printed port 0 instead of the bound port";
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(
      1, "stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=" + port)));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, "socket,id=n0,connect=127.0.0.1:" + port)));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(3);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(3));
}

// `qswitch ctl ARGS...` against this switch's control socket (host_side.h), stderr in the
// test's temp dir.
CtlResult ctl_run(const TempDir& dir, const std::string& ctl_sock,
                  const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  static std::atomic<int> runs{0};
  return run_ctl(ctl_sock, args, dir.file("ctl." + std::to_string(++runs) + ".err"), timeout);
}

// A guest started with -netdev stream,server=on joins a running switch when told to with
// `port add connect`, pings the guests already there, and is taken off with `port remove`.
TEST_F(SwitchE2eTest, PortAddConnectBringsAServerOnGuestOntoARunningSwitch) {
  const std::string sock = dir_.file("sw.sock");
  const std::string ctl_sock = dir_.file("sw.ctl");
  const std::string g3_sock = dir_.file("g3.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
  ASSERT_EQ(qswitch_.control(), "unix:" + ctl_sock) << qswitch_.stdout_text();
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(3, unix_netdev(g3_sock, true))));
  ASSERT_TRUE(wait_for_path(g3_sock, 10s)) << "QEMU did not create " << g3_sock;
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(2);  // g3 waits for someone to connect to it

  CtlResult add = ctl_run(dir_, ctl_sock, {"port", "add", "connect", "unix:" + g3_sock});
  std::cout << "[ ctl      ] port add connect: " << describe(add);
  ASSERT_EQ(add.exit_code, 0) << describe(add);
  EXPECT_NE(add.out.find("connect-1"), std::string::npos) << describe(add);
  expect_ports_up(3);
  ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());
  CtlResult ports = ctl_run(dir_, ctl_sock, {"ports"});
  std::cout << "[ ctl      ] ports:\n" << describe(ports);
  ASSERT_EQ(ports.exit_code, 0) << describe(ports);
  EXPECT_NE(ports.out.find("connect-1"), std::string::npos) << describe(ports);
  EXPECT_NE(ports.out.find(guests_[2]->options().mac), std::string::npos)
      << "g3's MAC is not listed on its port:\n"
      << describe(ports);

  CtlResult remove = ctl_run(dir_, ctl_sock, {"port", "remove", "connect-1"});
  ASSERT_EQ(remove.exit_code, 0) << describe(remove);
  EXPECT_TRUE(qswitch_.wait_for_stderr("removed by control request", 5s).has_value())
      << qswitch_.stderr_text();
  // g3 is off the segment; g1 and g2 still reach each other.
  CommandResult gone = guests_[0]->run("ping -c 2 -w 4 " + guests_[2]->ip(), kPingTimeout);
  ASSERT_TRUE(gone.completed) << guests_[0]->diagnostics();
  EXPECT_NE(gone.exit_code, 0) << "g1 still reaches g3 after port remove:\n" << gone.output;
  CommandResult still = guests_[0]->run("ping -c 2 -w 10 " + guests_[1]->ip(), kPingTimeout);
  ASSERT_TRUE(still.completed) << guests_[0]->diagnostics();
  EXPECT_EQ(still.exit_code, 0) << still.output;
  CtlResult macs = ctl_run(dir_, ctl_sock, {"macs"});
  EXPECT_EQ(macs.out.find(guests_[2]->options().mac), std::string::npos)
      << "g3's MAC is still in the table:\n"
      << describe(macs);
}

// A capture taken with `qswitch ctl capture` while two guests ping holds their ICMP echo
// requests and replies, read back with libpcap; the BPF filter keeps only ICMP.
TEST_F(SwitchE2eTest, CaptureWhileGuestsPingHoldsTheirEchoFrames) {
  const std::string sock = dir_.file("sw.sock");
  const std::string ctl_sock = dir_.file("sw.ctl");
  const std::string pcap_file = dir_.file("ping.pcap");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());

  // The capture runs in the background for a bounded time while the guests ping.
  CtlResult capture;
  std::thread capturer([&] {
    capture = ctl_run(
        dir_, ctl_sock,
        {"capture", "--filter", "icmp", "-w", pcap_file, "--count", "8", "--duration", "25"},
        40s);  // the capture ends by itself within 25 s
  });
  ASSERT_TRUE(qswitch_.wait_for_stderr("capture", 10s).has_value() || wait_for_path(pcap_file, 10s))
      << "the capture did not start:\n"
      << qswitch_.stderr_text();
  std::this_thread::sleep_for(500ms);
  CommandResult ping = guests_[0]->run("ping -c 4 -i 0.2 -w 20 " + guests_[1]->ip(), kPingTimeout);
  capturer.join();
  ASSERT_TRUE(ping.completed) << guests_[0]->diagnostics();
  ASSERT_EQ(ping.exit_code, 0) << ping.output;
  ASSERT_EQ(capture.exit_code, 0) << describe(capture);

  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(pcap_file.c_str(), errbuf);
  ASSERT_NE(p, nullptr) << "libpcap cannot read " << pcap_file << ": " << errbuf;
  EXPECT_EQ(pcap_datalink(p), DLT_EN10MB);
  int requests = 0, replies = 0, other = 0;
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  for (int i = 0; i < 100000 && pcap_next_ex(p, &h, &data) == 1; ++i) {
    // Ethernet, IPv4 with no options from the busybox guests, then the ICMP type.
    const bool icmp =
        h->caplen >= 14 + 20 + 8 && data[12] == 0x08 && data[13] == 0x00 && data[14 + 9] == 1;
    if (!icmp) {
      ++other;
      continue;
    }
    const uint8_t type = data[14 + 20];
    if (type == 8) ++requests;
    if (type == 0) ++replies;
  }
  pcap_close(p);
  std::cout << "[ capture  ] " << requests << " echo requests, " << replies << " replies, " << other
            << " other frames\n";
  EXPECT_GE(requests, 4) << describe(capture);
  EXPECT_GE(replies, 4) << describe(capture);
  EXPECT_EQ(other, 0) << "the icmp filter let other frames through";
}

struct IperfRun {
  std::string link;  // "switch" or "direct"
  int mtu = 0;
  double gbits = 0;
};

// iperf3 -s runs (daemonised) in guests[0]; guests[1] runs a 3 s client at `mtu`.
void run_iperf(Guests& guests, const std::string& link, int mtu, std::vector<IperfRun>* runs) {
  for (auto& guest : guests) {
    CommandResult r = guest->run(
        "ip link set eth0 mtu " + std::to_string(mtu) + " && cat /sys/class/net/eth0/mtu", 20s);
    ASSERT_TRUE(r.completed) << guest->diagnostics();
    ASSERT_EQ(r.exit_code, 0) << r.output;
    ASSERT_EQ(r.output, std::to_string(mtu) + "\n");
  }
  CommandResult r = guests[1]->run(
      "iperf3 -c " + guests[0]->ip() + " -t 3 -f g --connect-timeout 10000", kIperfTimeout);
  ASSERT_TRUE(r.completed) << "iperf3 client did not finish" << guests[1]->diagnostics();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("iperf Done."), std::string::npos) << r.output;
  static const std::regex receiver(R"(([0-9.]+) Gbits/sec\s+receiver)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, receiver)) << r.output;
  IperfRun run{link, mtu, std::stod(m[1].str())};
  EXPECT_GT(run.gbits, 0.0) << r.output;
  std::printf("[ iperf3   ] %-6s mtu %5d: %.2f Gbit/s\n", link.c_str(), mtu, run.gbits);
  std::fflush(stdout);
  runs->push_back(run);
}

TEST_F(SwitchE2eTest, Iperf3ThroughSwitchAtMtu1500And65520) {
  std::vector<IperfRun> runs;
  const std::string sock = dir_.file("sw.sock");
  ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sock, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  expect_ports_up(2);
  CommandResult server = guests_[0]->run("iperf3 -s -D && sleep 1", 20s);
  ASSERT_TRUE(server.completed && server.exit_code == 0) << server.output;
  ASSERT_NO_FATAL_FAILURE(run_iperf(guests_, "switch", 1500, &runs));
  ASSERT_NO_FATAL_FAILURE(run_iperf(guests_, "switch", 65520, &runs));
  ASSERT_NO_FATAL_FAILURE(expect_stats_show_traffic(2));
  std::optional<test_support::StatsSnapshot> stats = qswitch_.stats(5s);
  ASSERT_TRUE(stats.has_value()) << qswitch_.error();
  std::cout << "[ qswitch  ] " << stats->sum("drop_queue_full")
            << " frames dropped on full queues\n";
  ASSERT_NO_FATAL_FAILURE(stop_all_and_expect_clean_exit(2));

  // The same pair linked directly: QEMU to QEMU, the baseline the switch is measured against.
  const std::string direct = dir_.file("direct.sock");
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(1, unix_netdev(direct, true))));
  ASSERT_TRUE(wait_for_path(direct, 10s)) << guests_[0]->diagnostics();
  ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(direct, false))));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  server = guests_[0]->run("iperf3 -s -D && sleep 1", 20s);
  ASSERT_TRUE(server.completed && server.exit_code == 0) << server.output;
  ASSERT_NO_FATAL_FAILURE(run_iperf(guests_, "direct", 1500, &runs));
  ASSERT_NO_FATAL_FAILURE(run_iperf(guests_, "direct", 65520, &runs));

  std::ofstream report(e2e_report_path(), std::ios::trunc);
  report << "# iperf3 TCP, 3 s, guest to guest, accelerator " << accelerator_args()[1]
         << " (written by e2e_tests SwitchE2eTest.Iperf3ThroughSwitchAtMtu1500And65520)\n";
  for (const IperfRun& run : runs) {
    char line[96];
    std::snprintf(line, sizeof line, "%-6s mtu %5d %7.2f Gbit/s\n", run.link.c_str(), run.mtu,
                  run.gbits);
    report << line;
  }
  EXPECT_TRUE(report.good()) << "cannot write " << e2e_report_path();
}

}  // namespace
}  // namespace qswitch::e2e
