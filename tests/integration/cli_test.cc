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
  // Two clients on `endpoint` exchange a broadcast both ways.
  ::testing::AssertionResult two_clients_exchange(const std::string& endpoint) {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(2, &c, endpoint); !r) return r;
    return announce(c, {test_mac(1), test_mac(2)});
  }
};

bool is_socket(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st{};
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
  const std::string path = endpoint_.substr(5);
  QswitchProcess second;
  LaunchOptions o = launch_options({"--listen", endpoint_});
  o.stderr_path = tmp_.file("second.stderr");
  ASSERT_TRUE(second.launch(o)) << second.error();
  auto status = second.wait_exit(5s);
  ASSERT_TRUE(status) << "a second qswitch on a live socket did not exit";
  EXPECT_NE(*status, 0);
  const std::string out = second.stdout_text() + second.stderr_text();
  EXPECT_NE(out.find(path), std::string::npos) << "the error should name " << path << ":\n"
                                               << out;
  // The first switch is untouched.
  EXPECT_TRUE(is_socket(path));
  ASSERT_TRUE(two_clients_exchange(endpoint_));
}

TEST_F(CliTest, SigtermExitsZeroRemovesSocketAndPrintsStats) {
  ASSERT_TRUE(start_switch());
  const std::string path = endpoint_.substr(5);
  ASSERT_TRUE(two_clients_exchange(endpoint_));
  ASSERT_TRUE(sw_.signal(SIGTERM));
  EXPECT_EQ(sw_.wait_exit(5s), std::optional<int>(0));
  EXPECT_FALSE(exists(path)) << path << " left behind";
  EXPECT_NE(sw_.stderr_text().find("qswitch: stats switch"), std::string::npos)
      << "no stats at exit";
}

TEST_F(CliTest, SigintExitsZeroAndRemovesSocket) {
  ASSERT_TRUE(start_switch());
  const std::string path = endpoint_.substr(5);
  ASSERT_TRUE(sw_.signal(SIGINT));
  EXPECT_EQ(sw_.wait_exit(5s), std::optional<int>(0));
  EXPECT_FALSE(exists(path)) << path << " left behind";
}

TEST_F(CliTest, JoinLinesHaveDistinctMacsAndNameTheSocket) {
  ASSERT_TRUE(start_switch({"--guests", "3"}));
  const std::string path = endpoint_.substr(5);
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

}  // namespace
}  // namespace qswitch::integration
