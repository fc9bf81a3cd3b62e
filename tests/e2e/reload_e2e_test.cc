// tests/e2e/reload_e2e_test.cc: `qswitch ctl reload` under real guests (docs/lab-file.md,
// "Reload"). Two guests on the lab file's two listeners ping each other continuously (a bounded
// count) while the file gains a host forward on its slirp port and `qswitch ctl reload` (a real
// process) applies it: the host then reaches a guest's TCP service through the new forward, the
// guests keep their switch ports, and the pings lose nothing (the count lost is printed).
// Network safety: the guests sit on the slirp net with restrict=on and talk only to each other;
// the forward is bound on 127.0.0.1 (a port picked by binding 127.0.0.1:0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/guest_lab.h"
#include "tests/e2e/host_side.h"
#include "tests/support/control_client.h"
#include "tests/support/loopback_port.h"

namespace qswitch::e2e {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

class ReloadE2eTest : public GuestLabTest {
 protected:
  std::string lab(const std::string& slirp_extra) const {
    const std::string dir = dir_.path();
    return "[switch]\ncontrol = \"unix:" + dir + "/lab.ctl\"\n\n" +  //
           "[[listen]]\naddress = \"unix:" + dir + "/a.sock\"\nname = \"a\"\n\n" +
           "[[listen]]\naddress = \"unix:" + dir + "/b.sock\"\nname = \"b\"\n\n" +
           "[[slirp]]\nrestrict = true\n" + slirp_extra;
  }
  void write_lab(const std::string& text) { std::ofstream(dir_.file("lab.toml")) << text; }

  // The `ports` rows through the control socket.
  json ports() {
    std::string error;
    auto ctl = test_support::ControlClient::connect(qswitch_.control(), &error);
    if (!ctl) {
      ADD_FAILURE() << error;
      return json();
    }
    const json reply = json::parse(ctl->request(R"({"cmd":"ports"})").line, nullptr, false);
    return reply.is_object() ? reply.value("result", json()) : json();
  }
  // "id name" of the port that learned `mac`.
  std::string port_of(const std::string& mac) {
    for (const json& row : ports()) {
      for (const json& m : row["macs"]) {
        if (m == mac) return row["id"].dump() + " " + row["name"].dump();
      }
    }
    return "none";
  }
};

TEST_F(ReloadE2eTest, AReloadThatAddsAHostfwdWhileGuestsKeepPinging) {
  const uint16_t host_port = test_support::free_loopback_tcp_port();
  ASSERT_NE(host_port, 0);
  write_lab(lab(""));
  LaunchOptions options;
  options.binary = qswitch_binary();
  options.args = {"--config", dir_.file("lab.toml")};
  options.stderr_path = dir_.file("qswitch.log");
  ASSERT_TRUE(qswitch_.start(options, 10s)) << qswitch_.error();

  // Static addresses on the slirp net (10.0.2.0/24): the forward names g1's.
  GuestOptions g1 = guest_options(1, unix_netdev(dir_.file("a.sock"), false));
  g1.ip_cidr = "10.0.2.21/24";
  GuestOptions g2 = guest_options(2, unix_netdev(dir_.file("b.sock"), false));
  g2.ip_cidr = "10.0.2.22/24";
  ASSERT_NO_FATAL_FAILURE(start_guest(g1));
  ASSERT_NO_FATAL_FAILURE(start_guest(g2));
  ASSERT_NO_FATAL_FAILURE(wait_all_ready());
  Guest& a = *guests_[0];
  Guest& b = *guests_[1];
  ASSERT_EQ(ping_replies(b, "10.0.2.21"), 3);
  const std::string a_port = port_of(g1.mac);
  const std::string b_port = port_of(g2.mac);
  EXPECT_NE(a_port, "none");
  EXPECT_NE(b_port, "none");

  // g1 serves a marker on TCP 8080 (busybox nc, ends by itself).
  const CommandResult serve =
      a.run("timeout 240 nc -ll -p 8080 -e echo RELOAD-MARKER </dev/null >/dev/null 2>&1 &", 30s);
  ASSERT_TRUE(serve.completed) << a.diagnostics();
  // Nothing forwards to it yet.
  EXPECT_EQ(tcp_read_loopback(host_port, 3s).data, "");

  // g2 pings g1 100 times, 0.1 s apart, while the switch reloads.
  const std::string token = b.send("ping -c 100 -i 0.1 -w 60 10.0.2.21 2>&1 | tail -2");
  write_lab(
      lab("hostfwd = [\"tcp:127.0.0.1:" + std::to_string(host_port) + "-10.0.2.21:8080\"]\n"));
  const CtlResult reload = run_ctl(qswitch_.control(), {"--json", "reload"}, dir_.file("ctl.err"));
  EXPECT_EQ(reload.exit_code, 0) << describe(reload);
  const json reply = json::parse(reload.out, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << describe(reload);
  EXPECT_EQ(reply["result"]["changed"], json::array({"slirp vlan=1: hostfwd"})) << reply;
  EXPECT_EQ(reply["result"]["unchanged"].size(), 2u) << reply;

  // The host reaches g1's service through the new forward (slirp ARPs for g1 first: retry).
  std::string got;
  const auto deadline = Clock::now() + 30s;
  while (got.find("RELOAD-MARKER") == std::string::npos && Clock::now() < deadline) {
    got = tcp_read_loopback(host_port, 3s).data;
    if (got.find("RELOAD-MARKER") == std::string::npos) std::this_thread::sleep_for(250ms);
  }
  EXPECT_NE(got.find("RELOAD-MARKER"), std::string::npos) << "read '" << got << "'";

  const CommandResult pinged = b.wait_result(token, kPingTimeout);
  ASSERT_TRUE(pinged.completed) << b.diagnostics();
  int transmitted = 0;
  int received = 0;
  ASSERT_TRUE(ping_counts(pinged.output, &transmitted, &received)) << pinged.output;
  std::cout << "[ ping     ] g2 -> g1 across the reload: " << received << "/" << transmitted << " ("
            << transmitted - received << " lost)\n";
  EXPECT_EQ(transmitted, 100);
  EXPECT_EQ(received, transmitted) << pinged.output;
  // The guests kept their ports: the same ids and names.
  EXPECT_EQ(port_of(g1.mac), a_port);
  EXPECT_EQ(port_of(g2.mac), b_port);
}

}  // namespace
}  // namespace qswitch::e2e
