// tests/integration/control_test.cc: qswitch's control channel as a script or `qswitch ctl` uses
// it: JSON lines over the unix socket printed as "control unix:PATH", against a real
// `qswitch --listen unix:S --slirp`.
//
// What is asserted is what a client can observe: reply lines (ok/result/error/id), the host TCP
// port a forward opens and closes, the frames the slirp port puts on the switch when a host
// connection comes in, the socket's permissions, and `qswitch ctl`'s output and exit status.
// Bad requests are sent on one connection, each must get its own error reply in order, and
// afterwards the forward list is unchanged and the connection still works.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/loopback_port.h"

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using test_support::ControlClient;
using test_support::ipv4;
using test_support::ipv4_to_string;
using test_support::LineResult;
using test_support::mac_to_string;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// A listening TCP socket on 127.0.0.1 (its port in *port), holding that port busy; -1 on error.
int listen_tcp(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd, 4) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

// Connects to 127.0.0.1:port ([::1]:port with `ipv6`) within `timeout`: 0 and the connected fd
// in *fd, or the errno (ETIMEDOUT on timeout).
int tcp_connect(uint16_t port, Millis timeout, int* fd_out, bool ipv6 = false) {
  *fd_out = -1;
  int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin.sin_port = htons(port);
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  sin6.sin6_port = htons(port);
  const int rc = ipv6 ? ::connect(fd, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6)
                      : ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  int err = 0;
  if (rc != 0) {
    if (errno != EINPROGRESS) {
      err = errno;
    } else {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
  }
  if (err != 0) {
    ::close(fd);
    return err;
  }
  *fd_out = fd;
  return 0;
}

class ControlTest : public SwitchFixture {
 protected:
  // qswitch --listen unix:<tmp>/sw.sock --slirp; its control socket must be <tmp>/sw.ctl.
  ::testing::AssertionResult start_with_control(std::vector<std::string> extra = {"--slirp"}) {
    if (auto r = start_switch(std::move(extra)); !r) return r;
    const std::string want = "unix:" + tmp_.file("sw.ctl");
    if (sw_.control() != want) {
      return ::testing::AssertionFailure()
             << "qswitch printed control address \"" << sw_.control() << "\", want \"" << want
             << "\" (a line \"control " << want << "\" before \"ready\")";
    }
    ctl_path_ = tmp_.file("sw.ctl");
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult connect_control(ControlClient* out) {
    std::string error;
    auto c = ControlClient::connect(ctl_path_, &error);
    if (!c) return ::testing::AssertionFailure() << error;
    *out = std::move(*c);
    return ::testing::AssertionSuccess();
  }

  // Sends `line`, parses the reply line as a JSON object.
  static ::testing::AssertionResult call(ControlClient& c, const std::string& line, json* reply,
                                         Millis timeout = 5s) {
    LineResult r = c.request(line, timeout);
    if (!r.ok()) {
      return ::testing::AssertionFailure() << "no reply to " << line.substr(0, 200) << ": "
                                           << to_string(r.status) << " " << r.error;
    }
    *reply = json::parse(r.line, nullptr, false);
    if (reply->is_discarded() || !reply->is_object()) {
      return ::testing::AssertionFailure() << "reply is not a JSON object: " << r.line;
    }
    return ::testing::AssertionSuccess();
  }

  // call() and the reply has "ok": true; its "result" in *result.
  static ::testing::AssertionResult call_ok(ControlClient& c, const json& request, json* result) {
    json reply;
    if (auto r = call(c, request.dump(), &reply); !r) return r;
    if (!reply.contains("ok") || reply["ok"] != true) {
      return ::testing::AssertionFailure() << request.dump() << " -> " << reply.dump();
    }
    if (request.contains("id") && reply.value("id", json()) != request["id"]) {
      return ::testing::AssertionFailure()
             << "id not echoed: " << request.dump() << " -> " << reply.dump();
    }
    *result = reply.value("result", json());
    return ::testing::AssertionSuccess();
  }

  // `line` gets {"ok":false,"error":...} whose error, lower-cased, contains every one of
  // `mentions` (lower-case), and echoes `id` when not null.
  static ::testing::AssertionResult expect_error(ControlClient& c, const std::string& what,
                                                 const std::string& line,
                                                 const std::vector<std::string>& mentions,
                                                 const json& id = json(), Millis timeout = 5s) {
    json reply;
    if (auto r = call(c, line, &reply, timeout); !r) return r << " (" << what << ")";
    if (!reply.contains("ok") || reply["ok"] != false) {
      return ::testing::AssertionFailure() << what << ": want ok false, got " << reply.dump();
    }
    if (!reply.contains("error") || !reply["error"].is_string() ||
        reply["error"].get<std::string>().empty()) {
      return ::testing::AssertionFailure() << what << ": no error message in " << reply.dump();
    }
    const std::string error = lower(reply["error"].get<std::string>());
    for (const auto& m : mentions) {
      if (error.find(m) == std::string::npos) {
        return ::testing::AssertionFailure()
               << what << ": the error should mention \"" << m << "\": " << reply.dump();
      }
    }
    if (!id.is_null() && reply.value("id", json()) != id) {
      return ::testing::AssertionFailure()
             << what << ": id " << id.dump() << " not echoed in " << reply.dump();
    }
    return ::testing::AssertionSuccess();
  }

  static json add_request(const std::string& spec, int id) {
    return {{"cmd", "hostfwd.add"}, {"args", {{"spec", spec}}}, {"id", id}};
  }

  // Runs `qswitch ARGS...` to completion (5 s), with stdout and stderr captured.
  struct Run {
    std::optional<int> status;
    std::string out;
    std::string err;
  };
  Run run_qswitch(std::vector<std::string> args,
                  std::vector<std::pair<std::string, std::string>> env = {}) {
    QswitchProcess p;
    LaunchOptions o = launch_options(std::move(args));
    o.stderr_path = tmp_.file("run-" + std::to_string(runs_++) + ".stderr");
    o.env_set = std::move(env);
    Run r;
    if (!p.launch(o)) {
      r.err = p.error();
      return r;
    }
    r.status = p.wait_exit(5s);
    r.out = p.stdout_text();
    r.err = p.stderr_text();
    return r;
  }

  std::string ctl_path_;
  int runs_ = 0;
};

TEST_F(ControlTest, VersionAndHelpReply) {
  ASSERT_TRUE(start_with_control());
  Run v = run_qswitch({"--version"});
  ASSERT_EQ(v.status, std::optional<int>(0)) << v.err;
  std::string version = v.out.substr(0, v.out.find('\n'));
  version = version.substr(version.rfind(' ') + 1);  // "qswitch 0.1.0" -> "0.1.0"
  ASSERT_FALSE(version.empty()) << v.out;

  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  json result;
  ASSERT_TRUE(call_ok(c, {{"cmd", "version"}, {"id", 7}}, &result));
  EXPECT_NE(result.dump().find(version), std::string::npos)
      << "version result " << result.dump() << " should name " << version;

  ASSERT_TRUE(call_ok(c, {{"cmd", "help"}, {"id", "h"}}, &result));
  const std::string help = result.dump();
  for (const char* name : {"help", "version", "hostfwd.add", "hostfwd.remove", "hostfwd.list",
                           "usernet", "dhcp.leases"}) {
    EXPECT_NE(help.find(std::string("\"") + name + "\""), std::string::npos)
        << "help does not list " << name << ": " << help;
  }

  // No id given: none echoed.
  json reply;
  ASSERT_TRUE(call(c, R"({"cmd":"version"})", &reply));
  EXPECT_EQ(reply.value("ok", false), true) << reply.dump();
  EXPECT_TRUE(!reply.contains("id") || reply["id"].is_null()) << reply.dump();

  ASSERT_TRUE(call_ok(c, {{"cmd", "usernet"}, {"id", 8}}, &result));
  EXPECT_TRUE(result.is_object() && result.contains("text") && result["text"].is_string())
      << result.dump();
  ASSERT_TRUE(call_ok(c, {{"cmd", "dhcp.leases"}, {"id", 9}}, &result));
  EXPECT_EQ(result, json::array()) << "no guest has asked yet";
  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 10}}, &result));
  EXPECT_EQ(result, json::array()) << "no forwards were configured";
}

// A switch without a slirp port answers every slirp command with an error saying so, not
// "unknown command" (slirp.sockets was missing from that list).
TEST_F(ControlTest, SlirpCommandsWithoutASlirpPortSaySo) {
  ASSERT_TRUE(start_with_control({"--no-slirp"}));
  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  for (const char* name : {"hostfwd.add", "hostfwd.remove", "hostfwd.list", "usernet",
                           "dhcp.leases", "slirp.sockets"}) {
    json reply;
    ASSERT_TRUE(call(c, json{{"cmd", name}}.dump(), &reply)) << name;
    EXPECT_FALSE(reply.value("ok", true)) << name << ": " << reply.dump();
    EXPECT_NE(reply.value("error", "").find("no slirp port"), std::string::npos)
        << name << ": " << reply.dump();
  }
}

TEST_F(ControlTest, HostfwdAddListRemove) {
  ASSERT_TRUE(start_with_control());
  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  // A guest stand-in on the switch, to see what slirp does with a host connection.
  std::vector<FrameClient> guest;
  ASSERT_TRUE(connect_clients(1, &guest));
  const Mac gmac = test_mac(0x601);

  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  json result;
  ASSERT_TRUE(call_ok(c, add_request("tcp::" + p + "-:80", 1), &result));

  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 2}}, &result));
  ASSERT_TRUE(result.is_array() && result.size() == 1) << result.dump();
  const json& f = result[0];
  EXPECT_EQ(f.value("proto", ""), "tcp") << f.dump();
  EXPECT_EQ(f.value("host_addr", ""), "127.0.0.1") << f.dump();
  EXPECT_EQ(f.value("host_port", 0), port) << f.dump();
  EXPECT_EQ(f.value("guest_addr", ""), "10.0.2.15") << f.dump();
  EXPECT_EQ(f.value("guest_port", 0), 80) << f.dump();
  EXPECT_EQ(f.value("spec", ""), "tcp:127.0.0.1:" + p + "-10.0.2.15:80") << f.dump();

  ASSERT_TRUE(call_ok(c, {{"cmd", "usernet"}, {"id", 3}}, &result));
  const std::string usernet = result.value("text", "");
  EXPECT_NE(usernet.find("HOST_FORWARD"), std::string::npos) << usernet;
  EXPECT_NE(usernet.find(p), std::string::npos) << usernet;

  // The host side: 127.0.0.1:PORT accepts a TCP connection (libslirp's listener). With no guest
  // behind it, slirp then looks for 10.0.2.15 on the switch: an ARP request from its MAC; when
  // the stand-in answers, a SYN to port 80 follows.
  int fd = -1;
  ASSERT_EQ(tcp_connect(port, 3s, &fd), 0) << "connect to the forward on 127.0.0.1:" << p;
  std::string why;
  RecvResult r = guest[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& frame) {
        auto arp = test_support::parse_arp(frame, &why);
        return arp && arp->op == 1 && arp->target_ip == ipv4(10, 0, 2, 15);
      },
      5s);
  ASSERT_TRUE(r.ok()) << "no ARP request for 10.0.2.15 after a host connection to the forward: "
                      << to_string(r.status);
  auto arp = test_support::parse_arp(r.frame, &why);
  EXPECT_EQ(mac_to_string(arp->sender_mac), mac_to_string(kSlirpMac));
  EXPECT_EQ(ipv4_to_string(arp->sender_ip), "10.0.2.2");
  ASSERT_TRUE(guest[0].send_frame(
      test_support::make_arp_reply(gmac, ipv4(10, 0, 2, 15), kSlirpMac, ipv4(10, 0, 2, 2))));
  r = guest[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& frame) {
        auto seg = test_support::parse_tcp_frame(frame, &why);
        return seg && seg->dst_port == 80;
      },
      8s);
  ASSERT_TRUE(r.ok()) << "no TCP segment to 10.0.2.15:80 after answering slirp's ARP: "
                      << to_string(r.status);
  auto seg = test_support::parse_tcp_frame(r.frame, &why);
  EXPECT_EQ(mac_to_string(seg->eth_dst), mac_to_string(gmac));
  EXPECT_EQ(ipv4_to_string(seg->ip_dst), "10.0.2.15");
  EXPECT_TRUE(seg->flags & 0x02) << "want a SYN, flags " << int{seg->flags};
  ::close(fd);

  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::" + p}}}, {"id", 4}},
                      &result));
  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 5}}, &result));
  EXPECT_EQ(result, json::array());
  EXPECT_EQ(tcp_connect(port, 3s, &fd), ECONNREFUSED) << "127.0.0.1:" << p << " after remove";
  if (fd >= 0) ::close(fd);
}

// An IPv6 forward added and removed at run time: listed with its addresses, bound on [::1]
// (a connection is accepted, and libslirp asks the switch for the guest's MAC with a neighbour
// solicitation), and gone after remove (the connection is refused). An IPv4 forward on the
// same port number lives beside it: the families are separate host sockets.
TEST_F(ControlTest, HostfwdIpv6AddListRemove) {
  ASSERT_TRUE(start_with_control());
  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  std::vector<FrameClient> guest;
  ASSERT_TRUE(connect_clients(1, &guest));

  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  const std::string guest6 = "fec0::5054:ff:fe12:3456";
  json result;
  ASSERT_TRUE(call_ok(c, add_request("tcp:[::1]:" + p + "-[" + guest6 + "]:80", 1), &result));
  EXPECT_EQ(result.value("spec", ""), "tcp:[::1]:" + p + "-[" + guest6 + "]:80") << result.dump();
  ASSERT_TRUE(call_ok(c, add_request("tcp::" + p + "-:80", 2), &result));
  // The same IPv6 socket twice: refused, naming it.
  EXPECT_TRUE(expect_error(c, "twice", add_request("tcp::" + p + "-[fec0::99]:81", 3).dump(),
                           {"[::1]:" + p, "exists already"}, 3));

  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 4}}, &result));
  ASSERT_TRUE(result.is_array() && result.size() == 2) << result.dump();
  const json& f = result[0];
  EXPECT_EQ(f.value("proto", ""), "tcp") << f.dump();
  EXPECT_EQ(f.value("host_addr", ""), "::1") << f.dump();
  EXPECT_EQ(f.value("host_port", 0), port) << f.dump();
  EXPECT_EQ(f.value("guest_addr", ""), guest6) << f.dump();
  EXPECT_EQ(f.value("guest_port", 0), 80) << f.dump();
  EXPECT_EQ(result[1].value("host_addr", ""), "127.0.0.1") << result.dump();

  int fd = -1;
  ASSERT_EQ(tcp_connect(port, 3s, &fd, /*ipv6=*/true), 0) << "connect to [::1]:" << p;
  // Ethernet, IPv6 (next header 58, ICMPv6), type 135 (neighbour solicitation) whose target is
  // the forward's guest address.
  in6_addr want{};
  ASSERT_EQ(inet_pton(AF_INET6, guest6.c_str(), &want), 1);
  RecvResult r = guest[0].recv_frame_matching(
      [&](const std::vector<uint8_t>& frame) {
        return frame.size() >= 78 && frame[12] == 0x86 && frame[13] == 0xdd && frame[20] == 58 &&
               frame[54] == 135 && std::memcmp(frame.data() + 62, want.s6_addr, 16) == 0;
      },
      5s);
  EXPECT_TRUE(r.ok()) << "no neighbour solicitation for " << guest6
                      << " after a host connection to the forward: " << to_string(r.status);
  ::close(fd);

  ASSERT_TRUE(call_ok(
      c, {{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp:[::1]:" + p}}}, {"id", 5}}, &result));
  EXPECT_EQ(result.value("host_addr", ""), "::1") << result.dump();
  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 6}}, &result));
  ASSERT_TRUE(result.is_array() && result.size() == 1) << result.dump();
  EXPECT_EQ(result[0].value("host_addr", ""), "127.0.0.1") << result.dump();
  EXPECT_EQ(tcp_connect(port, 3s, &fd, /*ipv6=*/true), ECONNREFUSED)
      << "[::1]:" << p << " after remove";
  if (fd >= 0) ::close(fd);
  EXPECT_EQ(tcp_connect(port, 3s, &fd), 0) << "127.0.0.1:" << p << " is still forwarded";
  if (fd >= 0) ::close(fd);
  // Removing it again: refused, naming the IPv6 socket.
  EXPECT_TRUE(expect_error(
      c, "gone",
      json({{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp:[::1]:" + p}}}, {"id", 7}}).dump(),
      {"no forward on tcp [::1]:" + p}, 7));
}

TEST_F(ControlTest, BadRequestsGetErrorsAndChangeNothing) {
  ASSERT_TRUE(start_with_control());
  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  json before;
  ASSERT_TRUE(call_ok(c, add_request("tcp::" + p + "-:80", 1), &before));
  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}}, &before));
  ASSERT_EQ(before.size(), 1u) << before.dump();

  uint16_t busy_port = 0;
  const int busy = listen_tcp(&busy_port);
  ASSERT_GE(busy, 0) << "could not bind a TCP port on 127.0.0.1";
  uint16_t absent = test_support::free_loopback_tcp_port();
  if (absent == port) absent = static_cast<uint16_t>(port + 1);
  const std::string busy_s = std::to_string(busy_port);
  const std::string absent_s = std::to_string(absent);

  EXPECT_TRUE(expect_error(c, "malformed JSON", R"({"cmd": "version")", {"json"}));
  EXPECT_TRUE(expect_error(c, "not JSON at all", "hello", {"json"}));
  EXPECT_TRUE(expect_error(c, "a JSON array", "[1,2]", {}));
  EXPECT_TRUE(
      expect_error(c, "unknown command", R"({"cmd":"frobnicate","id":11})", {"frobnicate"}, 11));
  EXPECT_TRUE(expect_error(c, "missing cmd", R"({"args":{},"id":12})", {"cmd"}, 12));
  EXPECT_TRUE(expect_error(c, "cmd a number", R"({"cmd":5,"id":13})", {"cmd"}, 13));
  EXPECT_TRUE(expect_error(c, "args a string",
                           R"({"cmd":"hostfwd.add","args":"tcp::1-:2","id":14})", {"args"}, 14));
  EXPECT_TRUE(expect_error(c, "spec a number",
                           R"({"cmd":"hostfwd.add","args":{"spec":42},"id":15})", {"spec"}, 15));
  EXPECT_TRUE(expect_error(c, "no spec", R"({"cmd":"hostfwd.add","id":16})", {"spec"}, 16));
  EXPECT_TRUE(expect_error(c, "port out of range", add_request("tcp::99999-:80", 17).dump(),
                           {"99999"}, 17));
  EXPECT_TRUE(
      expect_error(c, "unknown protocol", add_request("sctp::8080-:80", 18).dump(), {"sctp"}, 18));
  EXPECT_TRUE(
      expect_error(c, "garbage spec", add_request("nonsense", 19).dump(), {"nonsense"}, 19));
  EXPECT_TRUE(expect_error(c, "host port in use", add_request("tcp::" + busy_s + "-:80", 20).dump(),
                           {busy_s}, 20));
  EXPECT_TRUE(
      expect_error(c, "duplicate forward", add_request("tcp::" + p + "-:81", 21).dump(), {p}, 21));
  EXPECT_TRUE(expect_error(
      c, "removing a forward that does not exist",
      json({{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::" + absent_s}}}, {"id", 22}})
          .dump(),
      {absent_s}, 22));
  EXPECT_TRUE(expect_error(
      c, "removing with a bad spec",
      json({{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::abc"}}}, {"id", 23}}).dump(),
      {"abc"}, 23));
  {
    // 10 MB on one line: one error reply, the rest of the line discarded.
    std::string huge = R"({"cmd":"version","id":24,"pad":")";
    huge.append(10u << 20, 'a');
    huge += "\"}";
    EXPECT_TRUE(expect_error(c, "a 10 MB request line", huge, {"too long", "65536"}, json(), 30s));
  }
  ::close(busy);

  // Each error came back in order on this one connection (the ids above); it still works, and
  // nothing changed.
  json result;
  ASSERT_TRUE(call_ok(c, {{"cmd", "version"}, {"id", 25}}, &result));
  ASSERT_TRUE(call_ok(c, {{"cmd", "hostfwd.list"}, {"id", 26}}, &result));
  EXPECT_EQ(result, before);
  int fd = -1;
  EXPECT_EQ(tcp_connect(port, 3s, &fd), 0) << "the forward added first should still listen";
  if (fd >= 0) ::close(fd);
  EXPECT_TRUE(sw_.running());
}

TEST_F(ControlTest, SilentClientAndMidRequestDisconnectDoNotDisturb) {
  ASSERT_TRUE(start_with_control());
  ControlClient silent;
  ASSERT_TRUE(connect_control(&silent));
  {
    ControlClient half;
    ASSERT_TRUE(connect_control(&half));
    ASSERT_TRUE(half.send_raw(R"({"cmd":"hostfwd.add","args":{"sp)"));
  }                              // disconnects mid-request
  ControlClient lingering_half;  // another half line, still connected
  ASSERT_TRUE(connect_control(&lingering_half));
  ASSERT_TRUE(lingering_half.send_raw(R"({"cmd":"vers)"));

  ControlClient c;
  ASSERT_TRUE(connect_control(&c));
  std::vector<FrameClient> fc;
  ASSERT_TRUE(connect_clients(2, &fc));
  const std::vector<Mac> macs = {test_mac(1), test_mac(2)};
  ASSERT_TRUE(announce(fc, macs));
  for (uint32_t i = 0; i < 20; ++i) {
    json result;
    ASSERT_TRUE(call_ok(c, {{"cmd", "version"}, {"id", i}}, &result)) << "request " << i;
    ASSERT_TRUE(send_and_expect(fc[i % 2], fc[1 - i % 2], macs[1 - i % 2], macs[i % 2], 200, i))
        << "frame " << i;
  }
  // The half-line client finishes its line and gets its reply; the silent one still works.
  ASSERT_TRUE(lingering_half.send_raw("ion\",\"id\":\"late\"}\n"));
  LineResult r = lingering_half.read_line(5s);
  ASSERT_TRUE(r.ok()) << to_string(r.status) << " " << r.error;
  json reply = json::parse(r.line, nullptr, false);
  EXPECT_TRUE(reply.is_object() && reply.value("ok", false) && reply.value("id", "") == "late")
      << r.line;
  json result;
  ASSERT_TRUE(call_ok(silent, {{"cmd", "version"}, {"id", "silent"}}, &result));
  EXPECT_TRUE(sw_.running());
}

TEST_F(ControlTest, HundredClientsAtOnce) {
  constexpr int kClients = 100;
  ASSERT_TRUE(start_with_control());
  std::vector<ControlClient> c(kClients);
  for (int i = 0; i < kClients; ++i) ASSERT_TRUE(connect_control(&c[i])) << "client " << i;
  for (int i = 0; i < kClients; ++i) {
    if (!c[i].send_line(json({{"cmd", "version"}, {"id", i}}).dump())) {
      const std::string send_error = c[i].last_error();
      LineResult said = c[i].read_line(500ms);  // what the server said before closing, if any
      FAIL() << "client " << i << " of " << kClients << ": " << send_error
             << "; the server's last words: " << (said.ok() ? said.line : said.error);
    }
  }
  const auto deadline = Clock::now() + 10s;
  for (int i = 0; i < kClients; ++i) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    LineResult r = c[i].read_line(std::max(left, Millis(0)));
    ASSERT_TRUE(r.ok()) << "client " << i << ": " << to_string(r.status) << " " << r.error;
    json reply = json::parse(r.line, nullptr, false);
    ASSERT_TRUE(reply.is_object() && reply.value("ok", false) && reply.value("id", -1) == i)
        << "client " << i << ": " << r.line;
  }
}

TEST_F(ControlTest, ControlSocketIsPrivate) {
  const mode_t old_umask = ::umask(022);  // qswitch must not rely on the caller's umask
  const bool started = start_with_control();
  struct stat st {};
  const bool stat_ok = ::lstat(ctl_path_.c_str(), &st) == 0;
  ::umask(old_umask);
  ASSERT_TRUE(started);
  ASSERT_TRUE(stat_ok) << ctl_path_ << ": " << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode)) << ctl_path_ << " is not a socket";
  EXPECT_EQ(st.st_mode & 07777, 0600u)
      << ctl_path_ << " has mode " << std::oct << (st.st_mode & 07777);

  // The default place: a "qswitch" directory qswitch creates under XDG_RUNTIME_DIR, 0700.
  const std::string xdg = tmp_.file("xdg");
  ASSERT_EQ(::mkdir(xdg.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(xdg.c_str(), 0755), 0);
  QswitchProcess d;
  LaunchOptions o = launch_options({});
  o.stderr_path = tmp_.file("default.stderr");
  o.env_set.push_back({"XDG_RUNTIME_DIR", xdg});
  ::umask(022);
  const bool default_started = d.start(o);
  ::umask(old_umask);
  ASSERT_TRUE(default_started) << d.error();
  const std::string path = xdg + "/qswitch/default.ctl";
  EXPECT_EQ(d.control(), "unix:" + path) << d.stdout_text();
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u) << path << " has mode " << std::oct << (st.st_mode & 07777);
  ASSERT_EQ(::stat((xdg + "/qswitch").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << xdg << "/qswitch has mode " << std::oct << (st.st_mode & 07777)
                                  << ": others can reach the socket";
  std::string error;
  auto c = ControlClient::connect(path, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_TRUE(c->request(R"({"cmd":"version"})").ok());
}

TEST_F(ControlTest, CtlCommandListsForwardsAndExitsZero) {
  ASSERT_TRUE(start_with_control());
  const uint16_t port = test_support::free_loopback_tcp_port();
  ASSERT_NE(port, 0);
  const std::string p = std::to_string(port);
  Run r = run_qswitch({"ctl", "--sock", ctl_path_, "hostfwd", "add", "tcp::" + p + "-:80"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << "stdout:\n" << r.out << "stderr:\n" << r.err;

  r = run_qswitch({"ctl", "--sock", ctl_path_, "hostfwd", "list"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << "stdout:\n" << r.out << "stderr:\n" << r.err;
  EXPECT_NE(r.out.find(p), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("10.0.2.15"), std::string::npos) << r.out;

  r = run_qswitch({"ctl", "--sock", ctl_path_, "--json", "hostfwd", "list"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.err;
  json reply = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << "--json should print the reply JSON:\n" << r.out;
  EXPECT_EQ(reply.value("ok", false), true) << r.out;
  ASSERT_TRUE(reply.contains("result") && reply["result"].is_array() && reply["result"].size() == 1)
      << r.out;
  EXPECT_EQ(reply["result"][0].value("host_port", 0), port) << r.out;

  r = run_qswitch({"ctl", "--sock", ctl_path_, "raw", R"({"cmd":"version","id":3})"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.err;
  reply = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(reply.is_object() && reply.value("ok", false) && reply.value("id", 0) == 3) << r.out;

  // An error reply: exit 1, the message on stderr.
  r = run_qswitch({"ctl", "--sock", ctl_path_, "hostfwd", "add", "tcp::99999-:80"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("99999"), std::string::npos) << "stderr:\n" << r.err;

  r = run_qswitch({"ctl", "--sock", ctl_path_, "hostfwd", "remove", "tcp::" + p});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  r = run_qswitch({"ctl", "--sock", ctl_path_, "--json", "hostfwd", "list"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.err;
  reply = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(reply.is_object() && reply.value("result", json()) == json::array()) << r.out;
}

TEST_F(ControlTest, CtlWithoutServerExitsOneNamingTheSocket) {
  const std::string path = "/nonexistent/qswitch-test.ctl";
  Run r = run_qswitch({"ctl", "--sock", path, "version"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find(path), std::string::npos) << "stderr should name the path:\n" << r.err;
  EXPECT_NE(r.err.find("--sock"), std::string::npos) << "stderr should suggest --sock:\n" << r.err;
}

// XDG_RUNTIME_DIR points at the test's dir in these, so nothing can reach a real user's switch.
TEST_F(ControlTest, CtlUsageErrorsExitTwo) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::vector<std::pair<std::string, std::string>> env = {{"XDG_RUNTIME_DIR", tmp_.path()}};
  Run r = run_qswitch({"ctl"}, env);
  EXPECT_EQ(r.status, std::optional<int>(2)) << "no command:\n" << r.out << r.err;
  r = run_qswitch({"ctl", "hostfwd", "add"}, env);
  EXPECT_EQ(r.status, std::optional<int>(2)) << "hostfwd add without a spec:\n" << r.out << r.err;
  r = run_qswitch({"ctl", "--frobnicate", "version"}, env);
  EXPECT_EQ(r.status, std::optional<int>(2)) << "an unknown option:\n" << r.out << r.err;
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << "stderr should name it:\n" << r.err;
}

TEST_F(ControlTest, CtlUnknownCommandIsAnErrorReplyNamingIt) {
  ASSERT_TRUE(start_with_control());
  // Unknown words are sent to the switch as a command (so the client needs no change for new
  // commands); the switch answers with an error naming the command and listing the known ones,
  // and ctl exits 1 as for every error reply.
  Run r = run_qswitch({"ctl", "--sock", ctl_path_, "bogus"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("bogus"), std::string::npos) << "stderr should name it:\n" << r.err;
  EXPECT_NE(r.err.find("hostfwd.add"), std::string::npos) << "stderr should list commands:\n"
                                                          << r.err;
}

}  // namespace
}  // namespace qswitch::integration
