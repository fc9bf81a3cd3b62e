// tests/e2e/slirp_e2e_test.cc: real QEMU guests on qswitch's slirp port (--slirp): DHCP, the
// gateway, host forwards set at start and through `qswitch ctl`, and restrict=on.
//
// Theory of operation: each test starts qswitch processes (--listen unix:DIR/NAME.sock --slirp
// ...), reads the control socket from the "control unix:PATH" line, boots guests with qs.ip=dhcp
// (tools/make-guest-image runs udhcpc and prints "QS-DHCP ip=.. router=.. dns=.. mask=.."), and
// checks what the guests and the host observe:
//  - addresses, router and DNS server from the guests' own DHCP lines, and qswitch's lease table
//    (`qswitch ctl dhcp leases --json`);
//  - pings counted by the guests' ping (the gateway 10.0.2.2 answers ICMP echo inside libslirp);
//  - TCP: a guest serves a marker with busybox `nc -ll -p PORT -e echo MARKER` (bounded by
//    `timeout`), the test connects to 127.0.0.1:HOSTPORT and reads it; the other way, the test
//    serves a marker on 127.0.0.1 (LoopbackMarkerServer) and a guest reads it from 10.0.2.2:PORT,
//    while the server counts the connections it accepted;
//  - `qswitch ctl` is run as a real process: its exit code and output are asserted.
// Network safety: guests reach only 10.0.2.2 (the host's loopback through slirp), each other,
// and hostfwd ports bound on 127.0.0.1. No names are resolved. Host ports are picked by binding
// 127.0.0.1:0. Guests of one test boot in parallel where the test allows it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
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
// Guest-side servers end by themselves after this many seconds (busybox timeout).
constexpr int kGuestServerSeconds = 240;

// Reads from 127.0.0.1:port until the data holds `marker`, retrying (the guest's server may not
// be listening yet; slirp then accepts and closes at once) for up to `timeout`.
TcpRead read_marker_with_retries(uint16_t port, const std::string& marker,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  TcpRead last;
  for (int attempt = 0; attempt < 200 && Clock::now() < deadline; ++attempt) {
    last = tcp_read_loopback(port, 5s);
    if (last.data.find(marker) != std::string::npos) return last;
    std::this_thread::sleep_for(250ms);
  }
  return last;
}

std::string describe(const TcpRead& r) {
  if (r.connect_errno != 0) return std::string("connect failed: ") + std::strerror(r.connect_errno);
  return "connected, read '" + r.data + "'";
}

// Serves `marker` + "\n" to every connection on 127.0.0.1:<port()> (bound to port 0), counting
// them, on one thread that polls with a 100 ms timeout and stops in the destructor.
class LoopbackMarkerServer {
 public:
  explicit LoopbackMarkerServer(std::string marker) : marker_(std::move(marker)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~LoopbackMarkerServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  uint16_t port() const { return port_; }  // 0: could not listen
  int accepted() const { return accepted_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ++accepted_;
      const std::string line = marker_ + "\n";
      (void)!::write(c, line.data(), line.size());
      ::close(c);
    }
  }

  std::string marker_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// --- DHCP lines
// ------------------------------------------------------------------------------------

// "ip=10.0.2.15 router=10.0.2.2 dns=10.0.2.3 ..." -> {ip: 10.0.2.15, ...}
std::map<std::string, std::string> parse_fields(const std::string& line) {
  std::map<std::string, std::string> fields;
  std::istringstream ss(line);
  std::string tok;
  while (ss >> tok) {
    size_t eq = tok.find('=');
    if (eq != std::string::npos) fields[tok.substr(0, eq)] = tok.substr(eq + 1);
  }
  return fields;
}

// A marker no earlier run could have left anywhere.
std::string fresh_marker(const std::string& what) {
  std::random_device rd;
  return "QS-" + what + "-" + std::to_string(rd() % 1000000000u);
}

// --- the fixture
// -------------------------------------------------------------------------------------

class SlirpE2eTest : public E2eTest {
 protected:
  struct Switch {
    std::string sock;  // DIR/NAME.sock
    std::string ctl;   // from the "control unix:PATH" line
    std::unique_ptr<QswitchProcess> process;
  };

  // Starts `qswitch --listen unix:DIR/NAME.sock --slirp SLIRP_VALUE` (fatal failure when it does
  // not come up or prints no control socket) and returns its index in switches_.
  void start_switch(const std::string& name, const std::string& slirp_value, size_t* index) {
    Switch sw;
    sw.process = std::make_unique<QswitchProcess>();
    ASSERT_NO_FATAL_FAILURE(start_slirp_switch(*sw.process, name, slirp_value, &sw.sock, &sw.ctl));
    ASSERT_EQ(sw.ctl, dir_.file(name + ".ctl"))
        << "expected 'control unix:" << dir_.file(name + ".ctl") << "' on stdout:\n"
        << sw.process->stdout_text();
    switches_.push_back(std::move(sw));
    *index = switches_.size() - 1;
  }

  // Boots a DHCP guest on switch `sw` (no waiting); returns its index in guests_.
  void start_guest(int index, size_t sw, size_t* guest_index) {
    char mac[32];
    std::snprintf(mac, sizeof mac, "52:54:00:5e:00:%02x", index);
    GuestOptions options;
    options.name = "g" + std::to_string(index);
    options.ip_cidr = "dhcp";
    options.mac = mac;
    options.netdev = unix_netdev(switches_[sw].sock, false);
    std::string error;
    std::unique_ptr<Guest> guest = Guest::start(options, dir_.path(), &error);
    ASSERT_NE(guest, nullptr) << error;
    guests_.push_back(std::move(guest));
    *guest_index = guests_.size() - 1;
  }

  void wait_ready(Guest& guest) {
    std::string error;
    ASSERT_TRUE(guest.wait_ready(kBootTimeout, &error)) << error;
    std::printf("[ boot     ] %s %.1f s (%s), DHCP: %s\n", guest.options().name.c_str(),
                guest.boot_seconds(), accelerator_args()[1].c_str(),
                guest.console_line("QS-DHCP ").c_str());
    std::fflush(stdout);
  }

  // The guest's DHCP line must give `ip`, router 10.0.2.2, DNS 10.0.2.3, mask /24; QS-READY must
  // report the same address.
  void expect_dhcp(Guest& guest, const std::string& ip) {
    const std::string line = guest.console_line("QS-DHCP ");
    ASSERT_NE(line, "") << "no QS-DHCP line" << guest.diagnostics();
    std::map<std::string, std::string> f = parse_fields(line);
    EXPECT_EQ(f["ip"], ip) << line;
    EXPECT_EQ(f["router"], "10.0.2.2") << line;
    EXPECT_EQ(f["dns"], "10.0.2.3") << line;
    EXPECT_EQ(f["mask"], "255.255.255.0") << line;
    EXPECT_EQ(guest.ip(), ip) << "QS-READY reported another address than DHCP's " << line;
  }

  // Starts a marker server on the guest's TCP `port`, bounded in time, output discarded.
  void serve_marker_in_guest(Guest& guest, int port, const std::string& marker) {
    CommandResult r =
        guest.run("timeout " + std::to_string(kGuestServerSeconds) + " nc -ll -p " +
                      std::to_string(port) + " -e echo " + marker + " </dev/null >/dev/null 2>&1 &",
                  kCommandTimeout);
    ASSERT_TRUE(r.completed) << guest.diagnostics();
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  CtlResult ctl(size_t sw, const std::vector<std::string>& args) {
    return run_ctl(switches_[sw].ctl, args,
                   dir_.file("ctl." + std::to_string(++ctl_runs_) + ".err"));
  }

  // `qswitch ctl --json hostfwd list`: host ports -> guest ports of the tcp forwards listed.
  std::map<int, int> hostfwd_list(size_t sw) {
    std::map<int, int> ports;
    CtlResult r = ctl(sw, {"--json", "hostfwd", "list"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    nlohmann::json reply = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(reply.is_object() && reply.value("ok", false) && reply.contains("result") &&
                reply["result"].is_array())
        << "hostfwd list --json printed: " << r.out;
    if (!reply.is_object() || !reply.contains("result") || !reply["result"].is_array()) {
      return ports;
    }
    for (const nlohmann::json& fwd : reply["result"]) {
      EXPECT_EQ(fwd.value("proto", ""), "tcp") << fwd.dump();
      EXPECT_EQ(fwd.value("host_addr", ""), "127.0.0.1") << fwd.dump();
      ports[fwd.value("host_port", -1)] = fwd.value("guest_port", -1);
    }
    return ports;
  }

  std::vector<Switch> switches_;
  std::vector<std::unique_ptr<Guest>> guests_;  // after switches_: guests stop first
  int ctl_runs_ = 0;
};

// Zero configuration: DHCP gives the first guest 10.0.2.15 and the next 10.0.2.16, with router
// 10.0.2.2 and DNS 10.0.2.3; the guests ping each other and the gateway.
TEST_F(SlirpE2eTest, ZeroConfigGuestsGetDhcpAddressesAndPingEachOtherAndGateway) {
  size_t sw = 0, g1 = 0, g2 = 0;
  ASSERT_NO_FATAL_FAILURE(start_switch("sw", "", &sw));
  ASSERT_NO_FATAL_FAILURE(start_guest(1, sw, &g1));
  // Guest 2 boots while guest 1 does, but its QEMU starts once guest 1 holds its lease, so the
  // order of the DHCP requests (and so of the addresses) is known.
  ASSERT_TRUE(guests_[g1]->wait_for_console("QS-DHCP ", kBootTimeout))
      << guests_[g1]->diagnostics();
  ASSERT_NO_FATAL_FAILURE(start_guest(2, sw, &g2));
  ASSERT_NO_FATAL_FAILURE(wait_ready(*guests_[g1]));
  ASSERT_NO_FATAL_FAILURE(wait_ready(*guests_[g2]));
  ASSERT_NO_FATAL_FAILURE(expect_dhcp(*guests_[g1], "10.0.2.15"));
  ASSERT_NO_FATAL_FAILURE(expect_dhcp(*guests_[g2], "10.0.2.16"));

  // The guests' resolver points at slirp's DNS address (no lookup is made).
  CommandResult resolv = guests_[g1]->run("cat /etc/resolv.conf", kCommandTimeout);
  ASSERT_TRUE(resolv.completed) << guests_[g1]->diagnostics();
  EXPECT_NE(resolv.output.find("nameserver 10.0.2.3"), std::string::npos) << resolv.output;

  // Each guest pings the other and the gateway, both guests at once.
  std::vector<std::string> tokens;
  for (size_t i : {g1, g2}) {
    const std::string peer = guests_[i == g1 ? g2 : g1]->ip();
    tokens.push_back(guests_[i]->send("for ip in " + peer +
                                      " 10.0.2.2; do ping -c 3 -i 0.2 -w 20 "
                                      "$ip >/tmp/ping.$ip 2>&1; echo \"PING $ip rc=$? $(grep "
                                      "'packets transmitted' /tmp/ping.$ip)\"; done"));
  }
  for (size_t k = 0; k < 2; ++k) {
    Guest& guest = *guests_[k == 0 ? g1 : g2];
    const std::string peer = guests_[k == 0 ? g2 : g1]->ip();
    CommandResult r = guest.wait_result(tokens[k], 90s);
    ASSERT_TRUE(r.completed) << "pings from " << guest.options().name << " did not finish"
                             << guest.diagnostics();
    std::cout << "[ ping     ] from " << guest.options().name << ":\n" << r.output;
    for (const std::string& ip : {peer, std::string("10.0.2.2")}) {
      const std::string expected = "PING " + ip + " rc=0 3 packets transmitted, 3 packets received";
      EXPECT_NE(r.output.find(expected), std::string::npos)
          << guest.options().name << ": expected '" << expected << "' in:\n"
          << r.output;
    }
  }

  // qswitch's lease table agrees with what the guests were given.
  CtlResult leases = ctl(sw, {"--json", "dhcp", "leases"});
  ASSERT_EQ(leases.exit_code, 0) << describe(leases);
  nlohmann::json reply = nlohmann::json::parse(leases.out, nullptr, false);
  ASSERT_TRUE(reply.is_object() && reply.contains("result") && reply["result"].is_array())
      << leases.out;
  std::map<std::string, std::string> by_mac;
  for (const nlohmann::json& lease : reply["result"]) {
    by_mac[lease.value("mac", "")] = lease.value("ip", "");
  }
  EXPECT_EQ(by_mac["52:54:00:5e:00:01"], "10.0.2.15") << leases.out;
  EXPECT_EQ(by_mac["52:54:00:5e:00:02"], "10.0.2.16") << leases.out;

  // Guests gone, SIGTERM: a clean exit that removes the sockets.
  guests_.clear();
  QswitchProcess& q = *switches_[sw].process;
  ASSERT_TRUE(q.signal(SIGTERM));
  std::optional<int> status = q.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "qswitch did not exit within 10 s of SIGTERM";
  EXPECT_EQ(*status, 0) << q.stderr_text();
  EXPECT_NE(::access(switches_[sw].sock.c_str(), F_OK), 0) << "left behind: " << switches_[sw].sock;
  EXPECT_NE(::access(switches_[sw].ctl.c_str(), F_OK), 0) << "left behind: " << switches_[sw].ctl;
}

// A forward given at start keeps working while another is added, used, listed and removed
// through the control socket; the removed one then refuses connections.
TEST_F(SlirpE2eTest, HostfwdAtStartAndAtRunTime) {
  const uint16_t port1 = test_support::free_loopback_tcp_port();
  uint16_t port2 = test_support::free_loopback_tcp_port();
  for (int i = 0; i < 10 && port2 == port1; ++i) port2 = test_support::free_loopback_tcp_port();
  ASSERT_NE(port1, 0);
  ASSERT_NE(port2, 0);
  ASSERT_NE(port1, port2);
  const std::string marker1 = fresh_marker("FWD8000");
  const std::string marker2 = fresh_marker("FWD8001");
  size_t sw = 0, g = 0;
  ASSERT_NO_FATAL_FAILURE(
      start_switch("sw", "hostfwd=tcp::" + std::to_string(port1) + "-:8000", &sw));
  ASSERT_NO_FATAL_FAILURE(start_guest(1, sw, &g));
  Guest& guest = *guests_[g];
  ASSERT_NO_FATAL_FAILURE(wait_ready(guest));
  ASSERT_NO_FATAL_FAILURE(expect_dhcp(guest, "10.0.2.15"));  // hostfwd's default guest address
  ASSERT_NO_FATAL_FAILURE(serve_marker_in_guest(guest, 8000, marker1));
  ASSERT_NO_FATAL_FAILURE(serve_marker_in_guest(guest, 8001, marker2));

  TcpRead r = read_marker_with_retries(port1, marker1, 30s);
  ASSERT_NE(r.data.find(marker1), std::string::npos)
      << "127.0.0.1:" << port1 << " (hostfwd from the command line): " << describe(r)
      << guest.diagnostics();
  // Before the runtime forward exists, its port is closed.
  r = tcp_read_loopback(port2, 2s);
  EXPECT_EQ(r.connect_errno, ECONNREFUSED)
      << "127.0.0.1:" << port2 << " before add: " << describe(r);

  const std::string spec2 = "tcp::" + std::to_string(port2) + "-:8001";
  CtlResult add = ctl(sw, {"hostfwd", "add", spec2});
  ASSERT_EQ(add.exit_code, 0) << "hostfwd add " << spec2 << ": " << describe(add);
  r = read_marker_with_retries(port2, marker2, 30s);
  EXPECT_NE(r.data.find(marker2), std::string::npos)
      << "127.0.0.1:" << port2 << " (hostfwd added at run time): " << describe(r);

  // A duplicate is an error reply (exit 1) and changes nothing.
  CtlResult dup = ctl(sw, {"hostfwd", "add", spec2});
  EXPECT_EQ(dup.exit_code, 1) << "duplicate hostfwd add " << spec2 << ": " << describe(dup);
  EXPECT_NE(dup.err, "") << "an error reply must print a message on stderr";

  CtlResult list = ctl(sw, {"hostfwd", "list"});
  ASSERT_EQ(list.exit_code, 0) << describe(list);
  std::cout << "[ hostfwd  ] qswitch ctl hostfwd list:\n" << list.out;
  EXPECT_NE(list.out.find(std::to_string(port1)), std::string::npos) << list.out;
  EXPECT_NE(list.out.find(std::to_string(port2)), std::string::npos) << list.out;
  std::map<int, int> expected_both = {{port1, 8000}, {port2, 8001}};
  EXPECT_EQ(hostfwd_list(sw), expected_both);

  r = read_marker_with_retries(port1, marker1, 30s);
  EXPECT_NE(r.data.find(marker1), std::string::npos) << "port1 after add: " << describe(r);

  CtlResult remove = ctl(sw, {"hostfwd", "remove", "tcp::" + std::to_string(port2)});
  ASSERT_EQ(remove.exit_code, 0) << describe(remove);
  std::cout << "[ hostfwd  ] duplicate add: " << dup.err << "[ hostfwd  ] removed " << port2
            << ", then: ";
  r = tcp_read_loopback(port2, 2s);
  std::cout << describe(r) << "\n";
  EXPECT_EQ(r.connect_errno, ECONNREFUSED)
      << "127.0.0.1:" << port2 << " after hostfwd remove: " << describe(r);
  std::map<int, int> expected_one = {{port1, 8000}};
  EXPECT_EQ(hostfwd_list(sw), expected_one);
  // Removing it again is an error reply.
  CtlResult again = ctl(sw, {"hostfwd", "remove", "tcp::" + std::to_string(port2)});
  EXPECT_EQ(again.exit_code, 1) << describe(again);

  r = read_marker_with_retries(port1, marker1, 30s);
  EXPECT_NE(r.data.find(marker1), std::string::npos) << "port1 after remove: " << describe(r);
}

// Through the gateway address a guest reaches services bound to the host's loopback, unless
// restrict=on; with restrict=on, DHCP and host forwards still work.
TEST_F(SlirpE2eTest, GuestReachesHostLoopbackAtGatewayUnlessRestricted) {
  LoopbackMarkerServer host_server(fresh_marker("HOST"));
  ASSERT_NE(host_server.port(), 0) << "cannot listen on 127.0.0.1";
  const uint16_t fwd_port = test_support::free_loopback_tcp_port();
  ASSERT_NE(fwd_port, 0);
  const std::string fwd_marker = fresh_marker("RESTRICTED-FWD");

  size_t open_sw = 0, restricted_sw = 0, g1 = 0, g2 = 0;
  ASSERT_NO_FATAL_FAILURE(start_switch("open", "", &open_sw));
  ASSERT_NO_FATAL_FAILURE(
      start_switch("restricted", "restrict=on,hostfwd=tcp::" + std::to_string(fwd_port) + "-:8000",
                   &restricted_sw));
  ASSERT_NO_FATAL_FAILURE(start_guest(1, open_sw, &g1));
  ASSERT_NO_FATAL_FAILURE(start_guest(2, restricted_sw, &g2));
  ASSERT_NO_FATAL_FAILURE(wait_ready(*guests_[g1]));
  ASSERT_NO_FATAL_FAILURE(wait_ready(*guests_[g2]));
  // Each guest is the first on its own switch.
  ASSERT_NO_FATAL_FAILURE(expect_dhcp(*guests_[g1], "10.0.2.15"));
  ASSERT_NO_FATAL_FAILURE(expect_dhcp(*guests_[g2], "10.0.2.15"));

  const std::string connect =
      "nc -w 5 10.0.2.2 " + std::to_string(host_server.port()) + " </dev/null";
  const std::string t1 = guests_[g1]->send(connect);
  const std::string t2 = guests_[g2]->send(connect);
  CommandResult open = guests_[g1]->wait_result(t1, kCommandTimeout);
  CommandResult restricted = guests_[g2]->wait_result(t2, kCommandTimeout);
  ASSERT_TRUE(open.completed) << guests_[g1]->diagnostics();
  ASSERT_TRUE(restricted.completed) << guests_[g2]->diagnostics();
  std::cout << "[ nc       ] open: rc " << open.exit_code << " " << open.output
            << "[ nc       ] restricted: rc " << restricted.exit_code << " " << restricted.output;
  EXPECT_EQ(open.exit_code, 0) << open.output;
  EXPECT_NE(open.output.find("QS-HOST-"), std::string::npos)
      << "the guest on the open switch did not read the host's marker: " << open.output;
  EXPECT_NE(restricted.exit_code, 0) << restricted.output;
  EXPECT_EQ(restricted.output.find("QS-HOST-"), std::string::npos)
      << "restrict=on let the guest reach 127.0.0.1: " << restricted.output;
  EXPECT_EQ(host_server.accepted(), 1) << "connections the host's loopback server accepted";

  // restrict=on still forwards from the host into the guest.
  ASSERT_NO_FATAL_FAILURE(serve_marker_in_guest(*guests_[g2], 8000, fwd_marker));
  TcpRead r = read_marker_with_retries(fwd_port, fwd_marker, 30s);
  EXPECT_NE(r.data.find(fwd_marker), std::string::npos)
      << "hostfwd with restrict=on, 127.0.0.1:" << fwd_port << ": " << describe(r);
}

}  // namespace
}  // namespace qswitch::e2e
