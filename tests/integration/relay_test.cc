// tests/integration/relay_test.cc: bench/relay's qswitch_relay (bench/compare's "relay" column)
// relays, checked with the tool that measures it.
//
// Each test starts qswitch_relay in a per-test temp dir and waits for its "ready" line (with a
// deadline), then runs qswitch-bench against it twice, as bench/compare does with one relay for
// several sizes: bidir mode (both directions carry frames), --time 0.3, --json. The bench itself
// checks every frame (destination, sender, sequence, checksum, payload), so the assertions are
// its JSON fields: frames arrived, none lost, none reordered or corrupt, nothing foreign. Then
// SIGTERM: the relay exits 0 and has removed the socket paths it bound. No rate is asserted.
// The tests exist only in builds with QSWITCH_BENCH on (the relay is a bench program).
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::LaunchOptions;
using test_support::Millis;
using test_support::QswitchProcess;
using test_support::TempDir;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class RelayTest : public ::testing::Test {
 protected:
  // Starts qswitch_relay with `args` and waits for "ready"; false (with a failure) if it did not.
  bool start_relay(const std::vector<std::string>& args) {
    LaunchOptions opt;
    opt.binary = QSWITCH_RELAY_BINARY;
    opt.args = args;
    opt.stderr_path = tmp_.file("relay.stderr");
    if (!relay_.start(opt, Millis(5000))) {
      ADD_FAILURE() << "qswitch_relay did not print ready: " << relay_.error();
      return false;
    }
    return true;
  }

  // One qswitch-bench run against `target`: its JSON report, or nullopt (with a failure).
  std::optional<json> run_bench(const std::string& target, int run) {
    QswitchProcess bench;
    LaunchOptions opt;
    opt.binary = QSWITCH_BENCH_BINARY;
    opt.args = {"--json", "--mode", "bidir", "--time", "0.3", "--warmup", "0.1", target};
    // unixgram ports bind their own sockets in a temp dir under TMPDIR: keep them in ours.
    opt.env_set = {{"TMPDIR", tmp_.path()}};
    opt.stderr_path = tmp_.file("bench" + std::to_string(run) + ".stderr");
    if (!bench.launch(opt)) {
      ADD_FAILURE() << "cannot start qswitch-bench: " << bench.error();
      return std::nullopt;
    }
    // 0.2 s learning pause + 0.1 s warmup + 0.3 s measured + at most 2 s of drain, and slack
    // for a loaded (or sanitized) machine.
    const std::optional<int> rc = bench.wait_exit(Millis(30000));
    if (!rc) {
      bench.kill_now();
      ADD_FAILURE() << "qswitch-bench did not finish within 30 s";
      return std::nullopt;
    }
    EXPECT_EQ(*rc, 0) << "qswitch-bench: " << bench.stderr_text() << bench.stdout_text();
    for (const std::string& line : bench.stdout_lines()) {
      if (line.empty() || line[0] != '{') continue;
      json report = json::parse(line, nullptr, false);
      if (!report.is_discarded()) return report;
    }
    ADD_FAILURE() << "qswitch-bench printed no JSON report: " << bench.stdout_text()
                  << bench.stderr_text();
    return std::nullopt;
  }

  // The report shows a run that carried frames both ways, all of them, intact and in order.
  static void expect_clean(const json& r) {
    SCOPED_TRACE(r.dump());
    EXPECT_EQ(r.value("completed", false), true);
    EXPECT_GT(r.value("rx_frames", uint64_t{0}), 0u);
    EXPECT_GT(r.value("tx_frames", uint64_t{0}), 0u);
    EXPECT_EQ(r.value("loss_frames", uint64_t{1}), 0u);
    EXPECT_EQ(r.value("reordered", uint64_t{1}), 0u);
    EXPECT_EQ(r.value("corrupt", uint64_t{1}), 0u);
    EXPECT_EQ(r.value("foreign", uint64_t{1}), 0u);
  }

  // Two bench runs (two sessions, or two pairs of peers to learn), then SIGTERM: exit 0 and
  // the relay's socket paths gone.
  void run_twice_and_stop(const std::string& target, const std::vector<std::string>& paths) {
    for (int run = 0; run < 2; ++run) {
      SCOPED_TRACE("run " + std::to_string(run));
      const std::optional<json> report = run_bench(target, run);
      if (report) expect_clean(*report);
    }
    ASSERT_TRUE(relay_.signal(SIGTERM));
    const std::optional<int> rc = relay_.wait_exit(Millis(5000));
    ASSERT_TRUE(rc.has_value()) << "qswitch_relay did not exit within 5 s of SIGTERM";
    EXPECT_EQ(*rc, 0) << relay_.stderr_text();
    for (const std::string& p : paths) EXPECT_FALSE(exists(p)) << p << " left behind";
  }

  TempDir tmp_{"qswitch-relay-test-"};
  QswitchProcess relay_;
};

TEST_F(RelayTest, StreamModeCarriesBenchFramesBothWaysIntactAndInOrder) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string a = tmp_.file("a.sock");
  const std::string b = tmp_.file("b.sock");
  ASSERT_TRUE(start_relay({"stream", a, b}));
  run_twice_and_stop("unix:" + a + ",unix:" + b, {a, b});
}

TEST_F(RelayTest, DgramModeCarriesBenchFramesBothWaysIntactAndInOrder) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string path = tmp_.file("relay.dgram");
  ASSERT_TRUE(start_relay({"dgram", path}));
  run_twice_and_stop("unixgram:" + path, {path});
}

TEST_F(RelayTest, BadCommandLineExitsTwoNamingTheArgument) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"flood", "x"}, "'flood'"},
      {{"stream", tmp_.file("only.sock")}, "two paths"},
      {{"dgram", tmp_.file("a"), tmp_.file("b")}, "'" + tmp_.file("b") + "'"},
      {{"dgram", std::string(200, 'p')}, "bad path"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    QswitchProcess p;
    LaunchOptions opt;
    opt.binary = QSWITCH_RELAY_BINARY;
    opt.args = cases[i].first;
    opt.stderr_path = tmp_.file("usage" + std::to_string(i) + ".stderr");
    ASSERT_TRUE(p.launch(opt)) << p.error();
    const std::optional<int> rc = p.wait_exit(Millis(5000));
    ASSERT_TRUE(rc.has_value());
    EXPECT_EQ(*rc, 2) << p.stderr_text();
    EXPECT_NE(p.stderr_text().find(cases[i].second), std::string::npos) << p.stderr_text();
  }
}

}  // namespace
}  // namespace qswitch::integration
