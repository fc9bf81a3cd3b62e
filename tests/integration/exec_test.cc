// tests/integration/exec_test.cc: `qswitch exec` and `port.attach` against a real qswitch.
//
// The program exec'd is tests/integration/exec_peer.cc (QEMU's stand-in): it reads the -netdev
// and -device arguments the launcher appended, sends a broadcast and a unicast frame on the fd
// and prints what arrives. A FrameClient on the switch's stream listener is the other side, so
// frames cross real sockets both ways; `ports` (read back over the control socket) shows the
// port while the program runs and not after. Bad port.attach requests are sent by hand (a unix
// socket with SCM_RIGHTS) and must be errors that create no port and close the passed fds.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::frame_dst;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::parse_mac;
using test_support::test_mac;

constexpr const char* kPeerMac = "52:54:00:e0:00:01";

std::string control_path(const QswitchProcess& sw) {
  const std::string& c = sw.control();
  return c.rfind("unix:", 0) == 0 ? c.substr(5) : c;
}

// File names in `dir` (not recursive), without the test's own *.stderr logs.
std::set<std::string> files_in(const std::string& dir) {
  std::set<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name.find(".stderr") != std::string::npos) continue;
    out.insert(name);
  }
  ::closedir(d);
  return out;
}

// One request line sent with `fds` (SCM_RIGHTS) on a fresh control connection, and the reply;
// the connection stays open in *keep when given (a successful attach lives by it).
json attach_by_hand(const std::string& path, const std::string& line, const std::vector<int>& fds,
                    int* keep = nullptr) {
  const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
  if (::connect(s, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    ::close(s);
    ADD_FAILURE() << "connect " << path << ": " << std::strerror(errno);
    return json();
  }
  const std::string data = line + "\n";
  iovec iov{const_cast<char*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<size_t>(fds.size(), 1)));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  EXPECT_EQ(::sendmsg(s, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
  std::string reply;
  char c;
  while (reply.size() < 65536) {
    const ssize_t n = ::recv(s, &c, 1, 0);
    if (n <= 0 || c == '\n') break;
    reply += c;
  }
  if (keep != nullptr) {
    *keep = s;
  } else {
    ::close(s);
  }
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) ADD_FAILURE() << "not a JSON reply: '" << reply << "'";
  return j;
}

class ExecTest : public SwitchFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  ::testing::AssertionResult open_control() {
    if (sw_.control().empty()) {
      return ::testing::AssertionFailure() << "qswitch printed no \"control unix:PATH\" line";
    }
    std::string error;
    auto c = ControlClient::connect(sw_.control(), &error);
    if (!c) return ::testing::AssertionFailure() << "control connect: " << error;
    ctl_ = std::move(*c);
    return ::testing::AssertionSuccess();
  }

  json ports() {
    const test_support::LineResult r = ctl_->request(R"({"cmd":"ports"})");
    if (!r.ok()) {
      ADD_FAILURE() << "no reply to ports: " << to_string(r.status) << " " << r.error;
      return json::array();
    }
    json reply = json::parse(r.line, nullptr, false);
    if (reply.is_discarded() || !reply.value("ok", false)) {
      ADD_FAILURE() << "ports: " << r.line;
      return json::array();
    }
    return reply["result"];
  }

  // Waits until `ports` lists exactly `count` ports.
  ::testing::AssertionResult wait_port_count(size_t count, Millis timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json rows;
    while (std::chrono::steady_clock::now() < deadline) {
      rows = ports();
      if (rows.size() == count) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(50ms);
    }
    return ::testing::AssertionFailure()
           << "ports still lists " << rows.size() << " (want " << count << "): " << rows.dump();
  }

  LaunchOptions exec_options(std::vector<std::string> args) const {
    LaunchOptions o;
    o.binary = qswitch_binary();
    o.args = {"exec"};
    o.args.insert(o.args.end(), args.begin(), args.end());
    o.stderr_path = tmp_.file("exec.stderr");
    return o;
  }

  std::string exec_report(QswitchProcess& p) {
    return "exec stdout:\n" + p.stdout_text() + "exec stderr:\n" + p.stderr_text();
  }

  std::optional<ControlClient> ctl_;
};

TEST_P(ExecTest, FramesCrossBothWaysAndThePortGoesWhenTheProgramExits) {
  const std::string type = GetParam();
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  FrameClient& client = clients[0];
  const Mac client_mac = test_mac(1);
  const Mac peer_mac = *parse_mac(kPeerMac);
  ASSERT_TRUE(wait_port_count(1));
  const std::set<std::string> files_before = files_in(tmp_.path());

  QswitchProcess exec;
  ASSERT_TRUE(exec.start(exec_options({"--switch", control_path(sw_), "--type", type, "--mac",
                                       kPeerMac, "--", EXEC_PEER_BINARY, "--peer-mac",
                                       mac_to_string(client_mac), "--expect-seq", "3"}),
                         10s))
      << exec.error() << "\n"
      << exec_report(exec);
  const std::string out = exec.stdout_text();
  EXPECT_NE(out.find("netdev " + type + " qs0 fd "), std::string::npos) << out;
  EXPECT_NE(out.find("mac " + std::string(kPeerMac)), std::string::npos) << out;
  EXPECT_NE(out.find("socket " + type + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("extra_sockets 0\n"), std::string::npos) << "the launcher leaked fds: " << out;
  EXPECT_NE(out.find("sent\n"), std::string::npos) << out;

  // Program -> switch -> client: the broadcast, then the unicast, intact.
  RecvResult b = client.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return frame_src(f) == peer_mac; }, 5s);
  ASSERT_TRUE(b.ok()) << to_string(b.status) << " " << b.error << "\n" << exec_report(exec);
  EXPECT_EQ(frame_dst(b.frame), kBroadcastMac);
  EXPECT_EQ(frame_seq(b.frame), 1u);
  EXPECT_TRUE(frame_is_intact(b.frame, 60));
  RecvResult u = client.recv_frame(5s);
  ASSERT_TRUE(u.ok()) << to_string(u.status) << " " << u.error;
  EXPECT_EQ(frame_src(u.frame), peer_mac);
  EXPECT_EQ(frame_dst(u.frame), client_mac);
  EXPECT_EQ(frame_seq(u.frame), 2u);
  EXPECT_EQ(u.frame.size(), 300u);
  EXPECT_TRUE(frame_is_intact(u.frame, 300));

  // The port is listed with its kind, its launcher and the MAC it learned.
  json rows = ports();
  ASSERT_EQ(rows.size(), 2u) << rows.dump();
  json exec_row;
  for (const json& r : rows) {
    if (r.value("peer", "").rfind("exec:exec_peer", 0) == 0) exec_row = r;
  }
  ASSERT_TRUE(exec_row.is_object()) << rows.dump();
  EXPECT_EQ(exec_row.value("kind", ""), type);
  EXPECT_NE(exec_row["macs"].dump().find(kPeerMac), std::string::npos) << exec_row.dump();

  // Client -> switch -> program: unicast to the program's MAC, learned from its frames.
  ASSERT_TRUE(client.send_frame(make_frame(peer_mac, client_mac, 200, 3)));
  const std::optional<int> code = exec.wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "exec did not exit\n" << exec_report(exec);
  EXPECT_EQ(*code, 0) << exec_report(exec);
  EXPECT_NE(exec.stdout_text().find("got src=" + mac_to_string(client_mac) + " dst=" + kPeerMac +
                                    " seq=3 len=200 intact=1"),
            std::string::npos)
      << exec_report(exec);

  // The program exited, so did the launcher: the port is gone, nothing is left on disk.
  ASSERT_TRUE(wait_port_count(1));
  EXPECT_EQ(ports()[0].value("kind", ""), "stream");
  // Closed by whichever the switch notices first: the program's end of the pair (a stream
  // socket reports it) or the launcher's control connection. The one left is the client's.
  EXPECT_NE(ports()[0].value("id", json()), exec_row.value("id", json())) << ports().dump();
  EXPECT_EQ(files_in(tmp_.path()), files_before);
  // The switch carries on: the client still reaches a second client.
  std::vector<FrameClient> more;
  ASSERT_TRUE(connect_clients(1, &more));
  ASSERT_TRUE(send_and_expect(client, more[0], kBroadcastMac, client_mac, 64, 9));
}

// --vlan: the program's port is an access port of that VLAN (the switch's --listen ...,vlan=
// puts a client there too): frames cross within VLAN 10 and never reach VLAN 1's client.
TEST_P(ExecTest, VlanPutsTheProgramsPortOnThatVlanOnly) {
  const std::string type = GetParam();
  const std::string v10 = "unix:" + tmp_.path() + "/v10.sock";
  ASSERT_TRUE(start_switch({"--no-slirp", "--listen", v10 + ",vlan=10"}));
  ASSERT_TRUE(open_control());
  std::vector<FrameClient> in_vlan1, in_vlan10;
  ASSERT_TRUE(connect_clients(1, &in_vlan1));
  ASSERT_TRUE(connect_clients(1, &in_vlan10, v10));
  ASSERT_TRUE(wait_port_count(2));
  const Mac client_mac = test_mac(1);
  const Mac peer_mac = *parse_mac(kPeerMac);

  QswitchProcess exec;
  ASSERT_TRUE(
      exec.start(exec_options({"--switch", control_path(sw_), "--type", type, "--mac", kPeerMac,
                               "--vlan", "10", "--", EXEC_PEER_BINARY, "--peer-mac",
                               mac_to_string(client_mac), "--expect-seq", "3"}),
                 10s))
      << exec.error() << "\n"
      << exec_report(exec);
  RecvResult b = in_vlan10[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return frame_src(f) == peer_mac; }, 5s);
  ASSERT_TRUE(b.ok()) << to_string(b.status) << " " << b.error << "\n" << exec_report(exec);
  EXPECT_EQ(frame_dst(b.frame), kBroadcastMac);
  EXPECT_TRUE(frame_is_intact(b.frame, 60));
  json exec_row;
  for (const json& r : ports()) {
    if (r.value("peer", "").rfind("exec:exec_peer", 0) == 0) exec_row = r;
  }
  ASSERT_TRUE(exec_row.is_object()) << ports().dump();
  EXPECT_EQ(exec_row["vlan"], json({{"mode", "access"}, {"vlan", 10}})) << exec_row.dump();
  EXPECT_TRUE(expect_silence(in_vlan1[0], "VLAN 1's client"));
  ASSERT_TRUE(in_vlan10[0].send_frame(make_frame(peer_mac, client_mac, 200, 3)));
  const std::optional<int> code = exec.wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "exec did not exit\n" << exec_report(exec);
  EXPECT_EQ(*code, 0) << exec_report(exec);
}

// --port-security: the program's port holds the guest's MAC (--mac) from the start; frames from
// it cross, and `ports` shows the port secured with that MAC.
TEST_P(ExecTest, PortSecurityHoldsTheGuestsMacFromTheStart) {
  const std::string type = GetParam();
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  ASSERT_TRUE(wait_port_count(1));
  const Mac client_mac = test_mac(1);
  const Mac peer_mac = *parse_mac(kPeerMac);
  QswitchProcess exec;
  ASSERT_TRUE(
      exec.start(exec_options({"--switch", control_path(sw_), "--type", type, "--mac", kPeerMac,
                               "--port-security", "--", EXEC_PEER_BINARY, "--peer-mac",
                               mac_to_string(client_mac), "--expect-seq", "3"}),
                 10s))
      << exec.error() << "\n"
      << exec_report(exec);
  RecvResult b = clients[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return frame_src(f) == peer_mac; }, 5s);
  ASSERT_TRUE(b.ok()) << to_string(b.status) << " " << b.error << "\n" << exec_report(exec);
  json exec_row;
  for (const json& r : ports()) {
    if (r.value("peer", "").rfind("exec:exec_peer", 0) == 0) exec_row = r;
  }
  ASSERT_TRUE(exec_row.is_object()) << ports().dump();
  EXPECT_EQ(exec_row["port_security"]["max_macs"], 1) << exec_row.dump();
  EXPECT_EQ(exec_row["port_security"]["macs"], json({kPeerMac})) << exec_row.dump();
  ASSERT_TRUE(clients[0].send_frame(make_frame(peer_mac, client_mac, 200, 3)));
  const std::optional<int> code = exec.wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "exec did not exit\n" << exec_report(exec);
  EXPECT_EQ(*code, 0) << exec_report(exec);
}

TEST_P(ExecTest, ExitStatusIsTheProgramsAndTheSignalThatKilledIt) {
  const std::string type = GetParam();
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  {
    QswitchProcess exec;
    ASSERT_TRUE(exec.launch(exec_options(
        {"--switch", control_path(sw_), "--type", type, "--", "/bin/sh", "-c", "exit 7"})));
    EXPECT_EQ(exec.wait_exit(10s), std::optional<int>(7)) << exec_report(exec);
  }
  ASSERT_TRUE(wait_port_count(0));
  QswitchProcess exec;
  // The shell prints "ready" (so QswitchProcess sees it start) and then waits.
  ASSERT_TRUE(exec.start(exec_options({"--switch", control_path(sw_), "--type", type, "--",
                                       "/bin/sh", "-c", "echo ready; exec sleep 30"}),
                         10s))
      << exec.error() << "\n"
      << exec_report(exec);
  ASSERT_TRUE(wait_port_count(1));
  ASSERT_TRUE(exec.signal(SIGTERM));
  EXPECT_EQ(exec.wait_exit(10s), std::optional<int>(128 + SIGTERM)) << exec_report(exec);
  EXPECT_TRUE(wait_port_count(0));
}

TEST_P(ExecTest, PortRemovedByTheSwitchClosesTheLaunchersConnection) {
  const std::string type = GetParam();
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  QswitchProcess exec;
  ASSERT_TRUE(exec.start(exec_options({"--switch", control_path(sw_), "--type", type, "--",
                                       "/bin/sh", "-c", "echo ready; exec sleep 5"}),
                         10s))
      << exec.error();
  ASSERT_TRUE(wait_port_count(1));
  const json id = ports()[0]["id"];
  const test_support::LineResult r =
      ctl_->request(json{{"cmd", "port.remove"}, {"args", {{"id", id}}}}.dump());
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r.line.find("\"ok\":true"), std::string::npos) << r.line;
  EXPECT_TRUE(exec.wait_for_stderr("the switch closed port", 5s).has_value()) << exec_report(exec);
  EXPECT_TRUE(wait_port_count(0));
  EXPECT_TRUE(exec.running()) << "the program keeps running";
}

INSTANTIATE_TEST_SUITE_P(Types, ExecTest, ::testing::Values("dgram", "stream"),
                         [](const auto& info) { return info.param; });

class ExecVhostUserTest : public ExecTest {};

// qswitch exec --type vhost-user: the launcher listens in a private directory, the program (QEMU,
// here exec_peer acting as QEMU's vhost-user front-end) connects there, the launcher attaches
// the connection; frames cross both ways through the program's rings.
TEST_F(ExecVhostUserTest, FramesCrossBothWaysAndNothingIsLeftOnDisk) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  FrameClient& client = clients[0];
  const Mac client_mac = test_mac(1);
  const Mac peer_mac = *parse_mac(kPeerMac);
  ASSERT_TRUE(wait_port_count(1));
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string tmp = tmpdir != nullptr && tmpdir[0] == '/' ? tmpdir : "/tmp";

  QswitchProcess exec;
  ASSERT_TRUE(
      exec.start(exec_options({"--switch", control_path(sw_), "--type", "vhost-user", "--mac",
                               kPeerMac, "--", EXEC_PEER_BINARY, "-m", "64", "--peer-mac",
                               mac_to_string(client_mac), "--expect-seq", "3"}),
                 20s))
      << exec.error() << "\n"
      << exec_report(exec);
  const std::string out = exec.stdout_text();
  EXPECT_NE(out.find("netdev vhost-user qs0 path " + tmp + "/qswitch-exec-"), std::string::npos)
      << out;
  EXPECT_NE(out.find("mac " + std::string(kPeerMac) + " vectors 0 memory 64M share on"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("extra_sockets 0\n"), std::string::npos) << "the launcher leaked fds: " << out;
  EXPECT_NE(out.find("sent\n"), std::string::npos) << out;

  RecvResult b = client.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return frame_src(f) == peer_mac; }, 5s);
  ASSERT_TRUE(b.ok()) << to_string(b.status) << " " << b.error << "\n" << exec_report(exec);
  EXPECT_EQ(frame_seq(b.frame), 1u);
  RecvResult u = client.recv_frame(5s);
  ASSERT_TRUE(u.ok()) << to_string(u.status) << " " << u.error;
  EXPECT_EQ(frame_dst(u.frame), client_mac);
  EXPECT_EQ(frame_seq(u.frame), 2u);
  EXPECT_TRUE(frame_is_intact(u.frame, 300));

  json rows = ports();
  json exec_row;
  for (const json& r : rows) {
    if (r.value("peer", "").rfind("exec:exec_peer", 0) == 0) exec_row = r;
  }
  ASSERT_TRUE(exec_row.is_object()) << rows.dump();
  EXPECT_EQ(exec_row.value("kind", ""), "vhost-user");
  // The private socket and its directory are gone once the port is up.
  const size_t at = out.find(" path ");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string path = out.substr(at + 6, out.find(' ', at + 6) - (at + 6));
  const std::string dir = path.substr(0, path.rfind('/'));
  EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir << " is still there";

  ASSERT_TRUE(client.send_frame(make_frame(peer_mac, client_mac, 200, 3)));
  const std::optional<int> code = exec.wait_exit(10s);
  ASSERT_TRUE(code.has_value()) << "exec did not exit\n" << exec_report(exec);
  EXPECT_EQ(*code, 0) << exec_report(exec);
  EXPECT_NE(exec.stdout_text().find("got src=" + mac_to_string(client_mac) + " dst=" + kPeerMac +
                                    " seq=3 len=200 intact=1"),
            std::string::npos)
      << exec_report(exec);
  ASSERT_TRUE(wait_port_count(1));
}

// A program that exits before it connects: its exit status, no port, nothing left behind.
TEST_F(ExecVhostUserTest, AProgramThatNeverConnectsEndsTheLauncherWithItsStatus) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  QswitchProcess exec;
  // The shell names the directory it was pointed at (the -chardev argument), then exits.
  ASSERT_TRUE(exec.launch(exec_options(
      {"--switch", control_path(sw_), "--type", "vhost-user", "--", "/bin/sh", "-c",
       "for a in \"$@\"; do case $a in socket,*) echo \"$a\" >&2;; esac; done; exit 7", "sh"})));
  EXPECT_EQ(exec.wait_exit(10s), std::optional<int>(7)) << exec_report(exec);
  EXPECT_TRUE(exec.wait_for_stderr("exited before it connected its vhost-user NIC", 1s))
      << exec_report(exec);
  EXPECT_TRUE(wait_port_count(0));
  const std::string err = exec.stderr_text();
  const size_t at = err.find("path=");
  ASSERT_NE(at, std::string::npos) << err;
  const std::string path = err.substr(at + 5, err.find('\n', at) - (at + 5));
  const std::string dir = path.substr(0, path.rfind('/'));
  EXPECT_NE(dir.find("/qswitch-exec-"), std::string::npos) << dir;
  EXPECT_NE(::access(dir.c_str(), F_OK), 0) << dir << " is still there";
}

class ExecErrorsTest : public ExecTest {};

TEST_F(ExecErrorsTest, BadPortAttachRequestsAreErrorsAndCreateNoPort) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  ASSERT_TRUE(open_control());
  const std::string path = control_path(sw_);
  int dg[2];
  int st[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK), 0);
  const std::string dgram_req = R"({"cmd":"port.attach","args":{"type":"dgram"}})";
  const std::string stream_req = R"({"cmd":"port.attach","args":{"type":"stream"}})";

  struct Case {
    std::string what;
    std::string line;
    std::vector<int> fds;
    std::string error_has;
  };
  const std::vector<Case> cases = {
      {"no fd", dgram_req, {}, "0 file descriptors"},
      {"two fds", dgram_req, {dg[0], dg[1]}, "2 file descriptors"},
      {"a pipe", dgram_req, {pipe_fds[1]}, "a pipe, not a socket"},
      {"stream fd for dgram", dgram_req, {st[0]}, "is a stream socket but \"type\" is \"dgram\""},
      {"dgram fd for stream", stream_req, {dg[0]}, "is a dgram socket but \"type\" is \"stream\""},
      {"bad type", R"({"cmd":"port.attach","args":{"type":"tap"}})", {dg[0]}, "\"tap\""},
      {"no type", R"({"cmd":"port.attach","args":{}})", {dg[0]}, "\"type\""},
      {"bad name",
       R"({"cmd":"port.attach","args":{"type":"dgram","name":"a b"}})",
       {dg[0]},
       "\"name\""},
      {"unknown arg", R"({"cmd":"port.attach","args":{"type":"dgram","x":1}})", {dg[0]}, "'x'"},
      // Over the server's limit of 4 per line: a JSON error like any other (it was bare text).
      {"five fds", dgram_req, {dg[0], dg[1], st[0], st[1], pipe_fds[1]}, "file descriptors"},
  };
  for (const Case& c : cases) {
    const json reply = attach_by_hand(path, c.line, c.fds);
    ASSERT_TRUE(reply.is_object()) << c.what;
    EXPECT_FALSE(reply.value("ok", true)) << c.what << ": " << reply.dump();
    EXPECT_NE(reply.value("error", "").find(c.error_has), std::string::npos)
        << c.what << ": " << reply.dump();
    EXPECT_TRUE(wait_port_count(0, 1s)) << c.what;
  }
  // The switch closed its copy of the pipe's write end: with ours closed too, the read end is
  // at EOF.
  ::close(pipe_fds[1]);
  char ch;
  EXPECT_EQ(::read(pipe_fds[0], &ch, 1), 0) << "the switch kept a passed fd it refused";
  ::close(pipe_fds[0]);
  // A failed request does not take the connection over: it still answers.
  int keep = -1;
  json reply = attach_by_hand(path, dgram_req, {}, &keep);
  EXPECT_FALSE(reply.value("ok", true));
  const std::string version = "{\"cmd\":\"version\"}\n";
  ASSERT_EQ(::send(keep, version.data(), version.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(version.size()));
  std::string line;
  char c;
  while (::recv(keep, &c, 1, 0) == 1 && c != '\n') line += c;
  EXPECT_NE(line.find("\"ok\":true"), std::string::npos) << line;
  ::close(keep);
  // A good request by hand works, and closing its connection removes the port.
  keep = -1;
  reply = attach_by_hand(path, R"({"cmd":"port.attach","args":{"type":"dgram","name":"byhand"}})",
                         {dg[0]}, &keep);
  EXPECT_TRUE(reply.value("ok", false)) << reply.dump();
  EXPECT_TRUE(reply["result"].is_object() && reply["result"].contains("port")) << reply.dump();
  EXPECT_TRUE(wait_port_count(1));
  ::close(keep);
  EXPECT_TRUE(wait_port_count(0));
  for (int fd : {dg[0], dg[1], st[0], st[1]}) ::close(fd);
}

TEST_F(ExecErrorsTest, NoSwitchRunningNamesTheControlPathTriedAndHowToStartOne) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string nowhere = tmp_.file("nowhere.ctl");
  QswitchProcess exec;
  ASSERT_TRUE(exec.launch(exec_options({"--switch", nowhere, "--", "/bin/true"})));
  EXPECT_EQ(exec.wait_exit(10s), std::optional<int>(1));
  const std::string err = exec.stderr_text();
  EXPECT_NE(err.find("no switch is running with control socket " + nowhere), std::string::npos)
      << err;
  EXPECT_NE(err.find("start a switch first"), std::string::npos) << err;
}

TEST_F(ExecErrorsTest, BadArgumentsExitTwoWithTheUsage) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::vector<std::vector<std::string>> bad = {
      {"--type", "tap", "--", "/bin/true"},
      {"--mac", "01:00:5e:00:00:01", "--", "/bin/true"},  // multicast
      {"--mac", "52:54:00:zz:00:01", "--", "/bin/true"},
      {"--bogus", "--", "/bin/true"},
      {"--switch"},
      {"--"},
  };
  for (const auto& args : bad) {
    QswitchProcess exec;
    ASSERT_TRUE(exec.launch(exec_options(args)));
    EXPECT_EQ(exec.wait_exit(10s), std::optional<int>(2)) << args[0];
    EXPECT_NE(exec.stderr_text().find("usage: qswitch exec"), std::string::npos)
        << args[0] << ": " << exec.stderr_text();
  }
}

TEST_F(ExecErrorsTest, BadVlanArgumentsExitTwoAndAttachNothing) {
  ASSERT_TRUE(start_switch({"--no-slirp"}));
  for (const std::vector<std::string>& bad : {std::vector<std::string>{"--vlan", "0"},
                                              {"--vlan", "10", "--trunk", "20"},
                                              {"--native", "5"},
                                              {"--trunk", "10,x"}}) {
    QswitchProcess exec;
    std::vector<std::string> args = {"exec", "--switch", control_path(sw_)};
    args.insert(args.end(), bad.begin(), bad.end());
    args.insert(args.end(), {"--", "/bin/true"});
    LaunchOptions o;
    o.binary = qswitch_binary();
    o.args = args;
    o.stderr_path = tmp_.file("exec-bad.stderr");
    ASSERT_TRUE(exec.launch(o)) << exec.error();
    const std::optional<int> code = exec.wait_exit(10s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 2) << bad[0] << " " << bad[1];
    EXPECT_NE(exec.stderr_text().find(bad[0]), std::string::npos) << exec.stderr_text();
  }
  const auto stats = sw_.stats();
  ASSERT_TRUE(stats) << sw_.error();
  EXPECT_EQ(stats->ports.size(), 0u);
}

}  // namespace
}  // namespace qswitch::integration
