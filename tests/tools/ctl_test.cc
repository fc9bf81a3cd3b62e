// tests/tools/ctl_test.cc: `qswitch ctl`: COMMAND words into request lines, results into text,
// the control socket path, and whole runs of run_ctl against a real ControlServer + ControlApi
// on a libuv loop in a thread (exit codes, stdout, stderr).
#include "tools/qswitch/client/ctl.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"

namespace qswitch::tools {
namespace {

using json = nlohmann::json;

json request_for(const std::vector<std::string>& words) {
  std::string line, error;
  EXPECT_TRUE(build_ctl_request(words, line, error)) << error;
  return json::parse(line, nullptr, false);
}

TEST(CtlRequestTest, HostfwdAddAndRemoveCarryTheSpec) {
  EXPECT_EQ(request_for({"hostfwd", "add", "tcp::8080-:80"}),
            json({{"cmd", "hostfwd.add"}, {"args", {{"spec", "tcp::8080-:80"}}}}));
  EXPECT_EQ(request_for({"hostfwd", "remove", "tcp::8080"}),
            json({{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::8080"}}}}));
}

// A switch with slirp ports on several VLANs: vlan=N, before or after the spec, picks one.
TEST(CtlRequestTest, SlirpCommandsTakeAVlan) {
  const json add = {{"cmd", "hostfwd.add"}, {"args", {{"spec", "tcp::8080-:80"}, {"vlan", "10"}}}};
  EXPECT_EQ(request_for({"hostfwd", "add", "tcp::8080-:80", "vlan=10"}), add);
  EXPECT_EQ(request_for({"hostfwd", "add", "vlan=10", "tcp::8080-:80"}), add);
  EXPECT_EQ(request_for({"hostfwd", "remove", "tcp::8080", "vlan=20"}),
            json({{"cmd", "hostfwd.remove"}, {"args", {{"spec", "tcp::8080"}, {"vlan", "20"}}}}));
  EXPECT_EQ(request_for({"dns", "add", "files", "10.0.2.100"}),
            json({{"cmd", "dns.add"}, {"args", {{"name", "files"}, {"addr", "10.0.2.100"}}}}));
  EXPECT_EQ(request_for({"dns", "add", "vlan=10", "files", "fec0::100"}),
            json({{"cmd", "dns.add"},
                  {"args", {{"name", "files"}, {"addr", "fec0::100"}, {"vlan", "10"}}}}));
  EXPECT_EQ(request_for({"dns", "remove", "files"}),
            json({{"cmd", "dns.remove"}, {"args", {{"name", "files"}}}}));
  EXPECT_EQ(request_for({"dns", "remove", "files", "10.0.2.100", "vlan=2"}),
            json({{"cmd", "dns.remove"},
                  {"args", {{"name", "files"}, {"addr", "10.0.2.100"}, {"vlan", "2"}}}}));
  EXPECT_EQ(request_for({"dns", "list", "vlan=10"}),
            json({{"cmd", "dns.list"}, {"args", {{"vlan", "10"}}}}));
  EXPECT_EQ(request_for({"hostfwd", "list", "vlan=10"}),
            json({{"cmd", "hostfwd.list"}, {"args", {{"vlan", "10"}}}}));
  EXPECT_EQ(request_for({"dhcp", "leases", "vlan=10"}),
            json({{"cmd", "dhcp.leases"}, {"args", {{"vlan", "10"}}}}));
  EXPECT_EQ(request_for({"slirp", "sockets", "vlan=10"}),
            json({{"cmd", "slirp.sockets"}, {"args", {{"vlan", "10"}}}}));
  EXPECT_EQ(request_for({"usernet", "vlan=10"}),
            json({{"cmd", "usernet"}, {"args", {{"vlan", "10"}}}}));
  // Two specs, or vlan= twice (the second is taken for a spec): a usage error.
  std::string line, error;
  EXPECT_FALSE(build_ctl_request({"hostfwd", "add", "tcp::1-:1", "tcp::2-:2"}, line, error));
  EXPECT_NE(error.find("vlan=N"), std::string::npos) << error;
  EXPECT_FALSE(build_ctl_request({"hostfwd", "add", "vlan=1", "vlan=2"}, line, error));
}

TEST(CtlRequestTest, OtherWordsJoinIntoTheCommandName) {
  EXPECT_EQ(request_for({"hostfwd", "list"}), json({{"cmd", "hostfwd.list"}}));
  EXPECT_EQ(request_for({"dhcp", "leases"}), json({{"cmd", "dhcp.leases"}}));
  EXPECT_EQ(request_for({"usernet"}), json({{"cmd", "usernet"}}));
  EXPECT_EQ(request_for({"widget", "frob", "kind=unix", "path=/x"}),
            json({{"cmd", "widget.frob"}, {"args", {{"kind", "unix"}, {"path", "/x"}}}}));
}

TEST(CtlRequestTest, PortAddAndRemoveTakePositionalArguments) {
  EXPECT_EQ(
      request_for({"port", "add", "listen", "unix:/x.sock"}),
      json({{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", "unix:/x.sock"}}}}));
  EXPECT_EQ(request_for({"port", "remove", "connect-2"}),
            json({{"cmd", "port.remove"}, {"args", {{"id", "connect-2"}}}}));
  std::string line, error;
  EXPECT_FALSE(build_ctl_request({"port", "add", "bridge", "unix:/x"}, line, error));
  EXPECT_NE(error.find("listen|connect"), std::string::npos) << error;
  EXPECT_FALSE(build_ctl_request({"port", "remove"}, line, error));
}

TEST(CtlRequestTest, RawSendsTheLineAsIs) {
  std::string line, error;
  ASSERT_TRUE(build_ctl_request({"raw", "{\"cmd\":\"version\"}"}, line, error));
  EXPECT_EQ(line, "{\"cmd\":\"version\"}");
}

TEST(CtlRequestTest, UsageErrorsSayWhat) {
  std::string line, error;
  EXPECT_FALSE(build_ctl_request({}, line, error));
  EXPECT_FALSE(build_ctl_request({"dns", "add", "files"}, line, error));
  EXPECT_NE(error.find("dns add takes a name and an address"), std::string::npos) << error;
  EXPECT_FALSE(build_ctl_request({"dns", "remove"}, line, error));
  EXPECT_FALSE(build_ctl_request({"dns", "remove", "a", "b", "c"}, line, error));
  EXPECT_FALSE(build_ctl_request({"dns", "add", "a", "1.2.3.4", "vlan=1", "vlan=2"}, line, error));
  EXPECT_FALSE(build_ctl_request({"hostfwd", "add"}, line, error));
  EXPECT_NE(error.find("tcp::8080-:80"), std::string::npos) << error;
  EXPECT_FALSE(build_ctl_request({"raw"}, line, error));
  EXPECT_FALSE(build_ctl_request({"a=b"}, line, error));
  EXPECT_FALSE(build_ctl_request({"x", "a=b", "y"}, line, error));
}

TEST(CtlFormatTest, ListOfObjectsIsATableInReadableColumnOrder) {
  const json rows = json::array({json{{"proto", "tcp"},
                                      {"host_addr", "127.0.0.1"},
                                      {"host_port", 8080},
                                      {"guest_addr", "10.0.2.15"},
                                      {"guest_port", 80},
                                      {"spec", "tcp:127.0.0.1:8080-10.0.2.15:80"}}});
  EXPECT_EQ(
      format_ctl_result(rows),
      "proto  host_addr  host_port  guest_addr  guest_port  spec\n"
      "tcp    127.0.0.1  8080       10.0.2.15   80          tcp:127.0.0.1:8080-10.0.2.15:80\n");
}

TEST(CtlFormatTest, AColumnNullInEveryRowIsLeftOut) {
  // `macs` on a switch whose lab file names no guest: no "guest" column.
  const json unnamed = json::array({json{{"mac", "02:00:00:00:00:01"}, {"guest", nullptr}}});
  EXPECT_EQ(format_ctl_result(unnamed), "mac\n02:00:00:00:00:01\n");
  // One named: the column is there, the other row's cell says null.
  const json named = json::array({json{{"mac", "02:00:00:00:00:01"}, {"guest", "web1"}},
                                  json{{"mac", "02:00:00:00:00:02"}, {"guest", nullptr}}});
  EXPECT_EQ(format_ctl_result(named),
            "mac                guest\n"
            "02:00:00:00:00:01  web1\n"
            "02:00:00:00:00:02  null\n");
}

TEST(CtlFormatTest, AListOfStringsInACellIsCommaSeparated) {
  // `dhcp leases`: the IPv6 addresses a MAC was seen using.
  const json rows = json::array(
      {json{{"mac", "52:54:00:12:34:56"},
            {"ip", "10.0.2.15"},
            {"ipv6", json::array({"fe80::1", "fec0::1"})}},
       json{{"mac", "52:54:00:12:34:57"}, {"ip", "10.0.2.16"}, {"ipv6", json::array()}}});
  EXPECT_EQ(format_ctl_result(rows),
            "mac                ip         ipv6\n"
            "52:54:00:12:34:56  10.0.2.15  fe80::1,fec0::1\n"
            "52:54:00:12:34:57  10.0.2.16  []\n");
}

TEST(CtlFormatTest, NeighbourRowsAreALinePerAddress) {
  const json rows = json::array({json{
      {"mac", "52:54:00:12:34:56"},
      {"vlan", 1},
      {"port", 3},
      {"ipv6", json::array({"fe80::1", "fec0::1"})},
      {"seen",
       json::array(
           {json{{"address", "fe80::1"}, {"tentative", false}, {"age_s", 2}, {"first_seen_s", 40}},
            json{{"address", "fec0::1"},
                 {"tentative", true},
                 {"age_s", 39},
                 {"first_seen_s", 39}}})}}});
  EXPECT_EQ(format_ctl_result(rows),
            "mac                port  address  tentative  age_s  first_seen_s\n"
            "52:54:00:12:34:56  3     fe80::1  false      2      40\n"
            "52:54:00:12:34:56  3     fec0::1  true       39     39\n");
}

TEST(CtlFormatTest, TextObjectsStringsAndEmptyLists) {
  EXPECT_EQ(format_ctl_result(json{{"text", "Protocol[State] FD\n"}}), "Protocol[State] FD\n");
  EXPECT_EQ(format_ctl_result("hi"), "hi\n");
  EXPECT_EQ(format_ctl_result(json::array()), "(none)\n");
  EXPECT_EQ(format_ctl_result(nullptr), "");
  EXPECT_EQ(format_ctl_result(json{{"name", "qswitch"}, {"version", "0.1.0"}}),
            "name: qswitch\nversion: 0.1.0\n");
}

TEST(CtlPathTest, ControlSocketSitsBesideTheSwitchSocket) {
  EXPECT_EQ(control_path_for("/run/user/1000/qswitch/default.sock"),
            "/run/user/1000/qswitch/default.ctl");
  EXPECT_EQ(control_path_for("/tmp/sw/lab.sock"), "/tmp/sw/lab.ctl");
  EXPECT_EQ(control_path_for("/tmp/sw/lab"), "/tmp/sw/lab.ctl");
}

TEST(CtlPathTest, DefaultIsDefaultCtlInTheRuntimeDir) {
  const char* old = std::getenv("XDG_RUNTIME_DIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("XDG_RUNTIME_DIR", "/run/user/4242", 1);
  EXPECT_EQ(default_control_path(), "/run/user/4242/qswitch/default.ctl");
  ::unsetenv("XDG_RUNTIME_DIR");
  EXPECT_EQ(default_control_path(), "/tmp/qswitch-" + std::to_string(::getuid()) + "/default.ctl");
  if (old != nullptr) ::setenv("XDG_RUNTIME_DIR", saved.c_str(), 1);
}

// A real control server with a ControlApi on a loop thread.
class CtlRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.file("sw.ctl");
    api_.add("fail", "always an error", [](const json&) { return Reply::failure("it failed"); });
    api_.add("rows", "a list", [](const json&) {
      return Reply::success(json::array(
          {json{{"mac", "52:54:00:00:00:01"}, {"ip", "10.0.2.15"}, {"pinned", false}}}));
    });
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) { uv_stop(a->loop); });
    tools::ControlHandlers h;
    h.line = [this](std::string_view line) { return api_.handle_line(line); };
    h.too_long = [this](size_t limit) { return api_.too_long_reply(limit); };
    h.busy = [this](size_t max) { return api_.busy_reply(max); };
    server_ = std::make_unique<tools::ControlServer>(&loop_, path_, std::move(h));
    ASSERT_TRUE(server_->ok()) << server_->error();
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      uv_async_send(&stop_);
      thread_.join();
    }
    server_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  struct Run {
    int code;
    std::string out, err;
  };
  Run run(const std::vector<std::string>& args) {
    std::vector<const char*> argv{"ctl"};
    for (const std::string& a : args) argv.push_back(a.c_str());
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    const int code = run_ctl(static_cast<int>(argv.size()), argv.data());
    std::fflush(stdout);
    std::fflush(stderr);
    Run r{code, ::testing::internal::GetCapturedStdout(), ::testing::internal::GetCapturedStderr()};
    return r;
  }

  test_support::TempDir dir_{"qsw-ctlrun-"};
  std::string path_;
  ControlApi api_{"0.1.0"};
  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::unique_ptr<tools::ControlServer> server_;
  std::thread thread_;
};

TEST_F(CtlRunTest, VersionPrintsReadablyAndExitsZero) {
  const Run r = run({"--sock", path_, "version"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "name: qswitch\nversion: 0.1.0\n");
}

TEST_F(CtlRunTest, JsonFlagPrintsTheReplyLine) {
  const Run r = run({"--sock=" + path_, "--json", "version"});
  EXPECT_EQ(r.code, 0) << r.err;
  const json reply = json::parse(r.out, nullptr, false);
  EXPECT_EQ(reply["ok"], true) << r.out;
  EXPECT_EQ(reply["result"]["version"], "0.1.0");
}

TEST_F(CtlRunTest, ListsPrintAsTables) {
  const Run r = run({"--sock", path_, "rows"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "mac                ip         pinned\n52:54:00:00:00:01  10.0.2.15  false\n");
  const Run help = run({"--sock", path_, "help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("fail"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("always an error"), std::string::npos) << help.out;
}

TEST_F(CtlRunTest, ErrorReplyExitsOneWithTheMessageOnStderr) {
  const Run r = run({"--sock", path_, "fail"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "qswitch ctl: it failed\n");
  EXPECT_EQ(r.out, "");
  const Run unknown = run({"--sock", path_, "nosuch", "thing"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("'nosuch.thing'"), std::string::npos) << unknown.err;
}

TEST_F(CtlRunTest, RawSendsTheLineAndPrintsTheReply) {
  const Run r = run({"--sock", path_, "raw", R"({"cmd":"version","id":5})"});
  EXPECT_EQ(r.code, 0) << r.err;
  const json reply = json::parse(r.out, nullptr, false);
  EXPECT_EQ(reply["id"], 5) << r.out;
  const Run bad = run({"--sock", path_, "raw", "not json"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("malformed JSON"), std::string::npos) << bad.out;
}

TEST_F(CtlRunTest, MissingSocketExitsOneNamingThePathAndSuggestingSock) {
  const std::string missing = dir_.file("nothing-here.ctl");
  const Run r = run({"--sock", missing, "version"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--sock"), std::string::npos) << r.err;
}

TEST_F(CtlRunTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({"--sock", path_}).code, 2);
  EXPECT_EQ(run({"--sock"}).code, 2);
  EXPECT_EQ(run({"--bogus", "version"}).code, 2);
  EXPECT_EQ(run({"--sock", path_, "hostfwd", "add"}).code, 2);
  EXPECT_EQ(run({"--help"}).code, 0);
}

}  // namespace
}  // namespace qswitch::tools
