// tests/integration/cli_test.cc: qswitch's command line, start-up output and shutdown, as a user
// (or a script) sees them: what it prints, what it listens on, its exit status, the files it
// leaves behind.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using test_support::kBroadcastMac;
using test_support::parse_mac;
using test_support::test_mac;

class CliTest : public SwitchFixture {
 protected:
  // Runs qswitch to completion; its exit status (nullopt if it did not exit within 5 s).
  std::optional<int> run_to_exit(std::vector<std::string> args, QswitchProcess* p) {
    if (!p->launch(launch_options(std::move(args)))) return std::nullopt;
    return p->wait_exit(5s);
  }
  // Runs `qswitch ARGS...` (a client: ctl) to completion within 10 s, its stderr in its own file.
  std::optional<int> run_client(std::vector<std::string> args, QswitchProcess* p) {
    LaunchOptions o = launch_options(std::move(args));
    o.stderr_path = tmp_.file("client-" + std::to_string(runs_++) + ".stderr");
    if (!p->launch(o)) return std::nullopt;
    return p->wait_exit(10s);
  }
  // How many connections the switch's data listener(s) accepted, from `stats` "listeners" (every
  // listener but control and metrics): a ctl that wrote into a data socket would be one of them.
  uint64_t data_connections_accepted() {
    const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
    uint64_t accepted = 0;
    for (const nlohmann::json& l : stats.value("listeners", nlohmann::json::array())) {
      const std::string ep = l.value("endpoint", "");
      if (ep != "control" && ep != "metrics") accepted += l.value("accepted", uint64_t{0});
    }
    return accepted;
  }
  // `ctl --sock sock --json ports` succeeds and shows no port at all (the switch has no guests).
  void expect_ctl_ports_through(const std::string& sock) {
    QswitchProcess ctl;
    ASSERT_EQ(run_client({"ctl", "--sock", sock, "--json", "ports"}, &ctl), std::optional<int>(0))
        << ctl.stdout_text() << ctl.stderr_text();
    const nlohmann::json reply = nlohmann::json::parse(ctl.stdout_text(), nullptr, false);
    ASSERT_TRUE(reply.is_object() && reply.value("ok", false)) << ctl.stdout_text();
    EXPECT_EQ(reply["result"], nlohmann::json::array()) << ctl.stdout_text();
  }
  size_t runs_ = 0;
  // Two clients on `address` exchange a broadcast both ways.
  ::testing::AssertionResult two_clients_exchange(const std::string& address) {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(2, &c, address); !r) return r;
    return announce(c, {test_mac(1), test_mac(2)});
  }
};

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST_F(CliTest, NoArgumentsListensOnDefaultSocketUnderXdgRuntimeDir) {
  ASSERT_FALSE(tmp_.path().empty());
  LaunchOptions o = launch_options({});
  o.env_set.push_back({"XDG_RUNTIME_DIR", tmp_.path()});
  ASSERT_TRUE(sw_.start(o)) << sw_.error();
  const std::string path = tmp_.path() + "/qswitch/default.sock";
  ASSERT_EQ(sw_.listening(), std::vector<std::string>{"unix:" + path}) << sw_.stdout_text();
  EXPECT_TRUE(is_socket(path));
  ASSERT_TRUE(two_clients_exchange("unix:" + path));
  ASSERT_TRUE(sw_.signal(SIGTERM));
  EXPECT_EQ(sw_.wait_exit(5s), std::optional<int>(0));
  EXPECT_FALSE(exists(path)) << path << " left behind";
}

TEST_F(CliTest, BadListenValueExitsTwoNamingTheValue) {
  QswitchProcess p;
  EXPECT_EQ(run_to_exit({"--listen", "foo:bar"}, &p), std::optional<int>(2));
  const std::string out = p.stdout_text() + p.stderr_text();
  EXPECT_NE(out.find("foo:bar"), std::string::npos) << "the message should name the value:\n"
                                                    << out;
}

TEST_F(CliTest, NegativeMacAgeExitsTwo) {
  QswitchProcess p;
  EXPECT_EQ(run_to_exit({"--mac-age", "-1"}, &p), std::optional<int>(2));
  const std::string out = p.stdout_text() + p.stderr_text();
  EXPECT_NE(out.find("-1"), std::string::npos) << "the message should name the value:\n" << out;
}

TEST_F(CliTest, StaleSocketFileIsReplaced) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string path = tmp_.file("stale.sock");
  {  // A socket file nobody listens on: what a crashed switch leaves behind.
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
    ::close(fd);
  }
  ASSERT_TRUE(is_socket(path));
  ASSERT_TRUE(start_switch({"--listen", "unix:" + path}, false));
  ASSERT_TRUE(two_clients_exchange("unix:" + path));
}

TEST_F(CliTest, LiveSocketIsAnErrorThatNamesIt) {
  ASSERT_TRUE(start_switch());
  const std::string path = address_.substr(5);
  QswitchProcess second;
  LaunchOptions o = launch_options({"--listen", address_});
  o.stderr_path = tmp_.file("second.stderr");
  ASSERT_TRUE(second.launch(o)) << second.error();
  auto status = second.wait_exit(5s);
  ASSERT_TRUE(status) << "a second qswitch on a live socket did not exit";
  EXPECT_NE(*status, 0);
  const std::string out = second.stdout_text() + second.stderr_text();
  EXPECT_NE(out.find(path), std::string::npos) << "the error should name " << path << ":\n" << out;
  // The first switch is untouched.
  EXPECT_TRUE(is_socket(path));
  ASSERT_TRUE(two_clients_exchange(address_));
}

TEST_F(CliTest, SigtermExitsZeroRemovesSocketAndPrintsStats) {
  ASSERT_TRUE(start_switch());
  const std::string path = address_.substr(5);
  ASSERT_TRUE(two_clients_exchange(address_));
  ASSERT_TRUE(sw_.signal(SIGTERM));
  EXPECT_EQ(sw_.wait_exit(5s), std::optional<int>(0));
  EXPECT_FALSE(exists(path)) << path << " left behind";
  EXPECT_NE(sw_.stderr_text().find("qswitch: stats switch"), std::string::npos)
      << "no stats at exit";
}

TEST_F(CliTest, SigintExitsZeroAndRemovesSocket) {
  ASSERT_TRUE(start_switch());
  const std::string path = address_.substr(5);
  ASSERT_TRUE(sw_.signal(SIGINT));
  EXPECT_EQ(sw_.wait_exit(5s), std::optional<int>(0));
  EXPECT_FALSE(exists(path)) << path << " left behind";
}

TEST_F(CliTest, JoinLinesHaveDistinctMacsAndNameTheSocket) {
  ASSERT_TRUE(start_switch({"--guests", "3"}));
  const std::string path = address_.substr(5);
  ASSERT_EQ(sw_.join_lines().size(), 3u) << sw_.stdout_text();
  std::set<std::string> macs;
  for (const std::string& line : sw_.join_lines()) {
    EXPECT_NE(line.find("addr.path=" + path), std::string::npos) << line;
    EXPECT_NE(line.find("-netdev stream,"), std::string::npos) << line;
    const size_t at = line.find("mac=");
    ASSERT_NE(at, std::string::npos) << line;
    const std::string mac = line.substr(at + 4, 17);
    EXPECT_TRUE(parse_mac(mac)) << "bad mac in: " << line;
    macs.insert(mac);
  }
  EXPECT_EQ(macs.size(), 3u) << "MACs must differ:\n" << sw_.stdout_text();
}

TEST_F(CliTest, TcpPortZeroIsReplacedByTheRealPort) {
  ASSERT_TRUE(start_switch({"--listen", "tcp:127.0.0.1:0", "--guests", "2"}, false));
  ASSERT_EQ(sw_.listening().size(), 1u) << sw_.stdout_text();
  const std::string ep = sw_.listening()[0];
  ASSERT_EQ(ep.rfind("tcp:127.0.0.1:", 0), 0u) << ep;
  const std::string port = ep.substr(14);
  EXPECT_NE(port, "0");
  ASSERT_EQ(sw_.join_lines().size(), 2u) << sw_.stdout_text();
  for (const std::string& line : sw_.join_lines()) {
    EXPECT_NE(line.find("addr.type=inet"), std::string::npos) << line;
    EXPECT_NE(line.find("addr.port=" + port), std::string::npos) << line;
  }
  ASSERT_TRUE(two_clients_exchange(ep));
}

// `ctl --sock` given the switch's data socket (DIR/NAME.sock) talks to the control socket beside
// it (DIR/NAME.ctl), as `exec --switch` does: nothing is written into the data socket, so no
// port appears (the data listener accepted nothing) and the reply is the switch's.
TEST_F(CliTest, CtlSockWithTheDataSocketUsesTheControlSocketBesideIt) {
  ASSERT_TRUE(start_switch());
  ASSERT_EQ(sw_.control(), "unix:" + tmp_.file("sw.ctl")) << sw_.stdout_text();
  expect_ctl_ports_through(tmp_.file("sw.sock"));
  expect_ctl_ports_through(address_);  // "unix:" + the path
  expect_ctl_ports_through(tmp_.file("sw.ctl"));
  EXPECT_EQ(control_result(sw_, {{"cmd", "ports"}}), nlohmann::json::array());
  EXPECT_EQ(data_connections_accepted(), 0u);
  ASSERT_TRUE(two_clients_exchange(address_));  // the data socket still serves guests
  EXPECT_EQ(data_connections_accepted(), 2u);
}

// A data socket not named NAME.sock, with its control socket PATH.ctl beside it: the same.
TEST_F(CliTest, CtlSockWithADataSocketNamedOtherwiseFindsPathDotCtl) {
  const std::string data = tmp_.file("lab");
  ASSERT_TRUE(
      start_switch({"--listen", "unix:" + data, "--control", "unix:" + data + ".ctl"}, false));
  expect_ctl_ports_through(data);
  EXPECT_EQ(control_result(sw_, {{"cmd", "ports"}}), nlohmann::json::array());
  EXPECT_EQ(data_connections_accepted(), 0u);
}

// The data socket of a switch whose control socket is elsewhere: ctl says plainly what PATH is
// and where it looked for the control socket, exits 1, and sends nothing into the data socket.
TEST_F(CliTest, CtlSockWithADataSocketWithoutControlBesideItSaysSo) {
  const std::string control = tmp_.file("elsewhere.ctl");
  ASSERT_TRUE(start_switch({"--control", "unix:" + control}));
  QswitchProcess ctl;
  ASSERT_EQ(run_client({"ctl", "--sock", tmp_.file("sw.sock"), "ports"}, &ctl),
            std::optional<int>(1));
  const std::string err = ctl.stderr_text();
  EXPECT_NE(err.find(tmp_.file("sw.sock") + " is a qswitch data socket"), std::string::npos) << err;
  EXPECT_NE(err.find(tmp_.file("sw.ctl")), std::string::npos)
      << "the message should say where the control socket is expected:\n"
      << err;
  EXPECT_EQ(err.find("without a complete reply"), std::string::npos) << err;
  EXPECT_EQ(control_result(sw_, {{"cmd", "ports"}}), nlohmann::json::array());
  EXPECT_EQ(data_connections_accepted(), 0u);
  // capture goes the same way.
  QswitchProcess cap;
  ASSERT_EQ(run_client({"ctl", "--sock", tmp_.file("sw.sock"), "capture", "-w", tmp_.file("c.pcap"),
                        "--count", "1"},
                       &cap),
            std::optional<int>(1));
  EXPECT_NE(cap.stderr_text().find("is a qswitch data socket"), std::string::npos)
      << cap.stderr_text();
  EXPECT_EQ(data_connections_accepted(), 0u);
}

}  // namespace
}  // namespace qswitch::integration
