// tests/tools/switchd_test.cc: the daemon object's start-up is all or nothing. A failure late in
// start-up (the metrics port is taken, a slirp port's host forward cannot bind) leaves no socket
// bound and no socket file behind; so does destroying a daemon that started.
#include "tools/qswitch/switchd.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tools/qswitch/config/options.h"

namespace qswitch::tools {
namespace {

// A TCP socket on 127.0.0.1:`port` (0: any); listening when `listen`. -1 on failure.
int tcp_socket(uint16_t port, bool listen) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      (listen && ::listen(fd, 1) != 0)) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t port_of(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Options options_for(const std::vector<std::string>& args) {
  std::vector<const char*> argv{"qswitch"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  ParseResult parsed = parse_options(static_cast<int>(argv.size()), argv.data());
  EXPECT_TRUE(parsed.options) << parsed.error;
  return parsed.options.value_or(Options{});
}

class SwitchdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    // A port that was free a moment ago, for the TCP listener.
    const int probe = tcp_socket(0, false);
    ASSERT_GE(probe, 0);
    listen_port_ = port_of(probe);
    ::close(probe);
  }

  std::vector<std::string> args(uint16_t metrics_port) const {
    return {"--listen",  "tcp:127.0.0.1:" + std::to_string(listen_port_),
            "--listen",  "unix:" + dir_.file("a.sock"),
            "--dgram",   "unix:" + dir_.file("b.dgram"),
            "--control", "unix:" + dir_.file("c.ctl"),
            "--metrics", "tcp:127.0.0.1:" + std::to_string(metrics_port),
            "--guests",  "0"};
  }

  void expect_nothing_bound() const {
    EXPECT_FALSE(exists(dir_.file("a.sock")));
    EXPECT_FALSE(exists(dir_.file("b.dgram")));
    EXPECT_FALSE(exists(dir_.file("c.ctl")));
    const int again = tcp_socket(listen_port_, true);
    EXPECT_GE(again, 0) << "127.0.0.1:" << listen_port_ << " is still bound";
    if (again >= 0) ::close(again);
  }

  test_support::TempDir dir_;
  uint16_t listen_port_ = 0;
};

TEST_F(SwitchdTest, StartUpFailureLeavesNothingBound) {
  const int taken = tcp_socket(0, true);  // the metrics port, held by someone else
  ASSERT_GE(taken, 0);
  std::string error;
  std::unique_ptr<Switchd> d = Switchd::create(options_for(args(port_of(taken))), error);
  ::close(taken);
  EXPECT_EQ(d, nullptr);
  EXPECT_NE(error.find("cannot serve metrics on tcp:127.0.0.1:"), std::string::npos) << error;
  expect_nothing_bound();
}

// Slirp ports start one after another: when the second one's host forward cannot bind (another
// program holds the port), the start fails naming that port's VLAN, and the first one's forward
// is released with everything else.
TEST_F(SwitchdTest, ASlirpPortThatCannotStartReleasesTheOnesBeforeIt) {
  const int taken = tcp_socket(0, true);  // held by someone else
  ASSERT_GE(taken, 0);
  const int probe = tcp_socket(0, false);  // free a moment ago, for the first port's forward
  ASSERT_GE(probe, 0);
  const uint16_t first_port = port_of(probe);
  ::close(probe);
  std::vector<std::string> a = args(0);
  a.insert(
      a.end(),
      {"--slirp",
       "vlan=10,net=10.0.10.0/24,restrict=on,hostfwd=tcp::" + std::to_string(first_port) + "-:80",
       "--slirp",
       "vlan=20,net=10.0.20.0/24,restrict=on,hostfwd=tcp::" + std::to_string(port_of(taken)) +
           "-:80"});
  std::string error;
  std::unique_ptr<Switchd> d = Switchd::create(options_for(a), error);
  ::close(taken);
  EXPECT_EQ(d, nullptr);
  EXPECT_EQ(error.rfind("--slirp vlan=20: cannot forward tcp:127.0.0.1:", 0), 0u) << error;
  expect_nothing_bound();
  const int again = tcp_socket(first_port, true);
  EXPECT_GE(again, 0) << "VLAN 10's forward on 127.0.0.1:" << first_port << " is still bound";
  if (again >= 0) ::close(again);
}

TEST_F(SwitchdTest, DestroyingAStartedDaemonReleasesEverything) {
  std::string error;
  std::unique_ptr<Switchd> d = Switchd::create(options_for(args(0)), error);
  ASSERT_NE(d, nullptr) << error;
  EXPECT_TRUE(exists(dir_.file("a.sock")));
  EXPECT_TRUE(exists(dir_.file("b.dgram")));
  EXPECT_TRUE(exists(dir_.file("c.ctl")));
  d.reset();
  expect_nothing_bound();
}

}  // namespace
}  // namespace qswitch::tools
