// tests/integration/port_log_test.cc: connection churn does not flood qswitch's log.
//
// 500 clients connect, send one frame to A and close, one after the other, while A and B stay.
// Each of them is three "port N up / first mac / down" events. (A unicast to a known MAC, not a
// broadcast: a broadcast would also go to the next churned port, which may have closed already;
// the write error would then close that port before its own frame is read: no "first mac".)
// This test is about the log itself, so it reads qswitch's stderr: the port lines it printed
// plus the counts in its "N similar lines suppressed" summaries must account for every event
// exactly once, and far fewer lines than events may be printed. The switch's own view, read
// through the control API, must be right afterwards: exactly A's and B's ports and MACs, and
// frames still cross.
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using test_support::ControlClient;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

constexpr size_t kCycles = 500;

struct PortLog {
  size_t printed = 0;       // "qswitch: port N up: / first mac / down:" lines
  uint64_t suppressed = 0;  // sum of the summaries' N
  size_t summaries = 0;
};

PortLog read_port_log(const std::string& text) {
  static const std::regex kPortLine(R"(^qswitch: port \d+ (up: |first mac |down: ))");
  static const std::regex kSummary(
      R"(^qswitch: (\d+) similar lines suppressed \(port up/down/first mac lines\)$)");
  PortLog log;
  std::istringstream lines(text);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, kPortLine)) ++log.printed;
    if (std::regex_match(line, m, kSummary)) {
      ++log.summaries;
      log.suppressed += std::stoull(m[1].str());
    }
  }
  return log;
}

class PortLogTest : public SwitchFixture {
 protected:
  json request(ControlClient& ctl, const std::string& line) {
    const test_support::LineResult r = ctl.request(line, 5s);
    if (!r.ok()) {
      ADD_FAILURE() << line << ": " << to_string(r.status) << " " << r.error;
      return nullptr;
    }
    json reply = json::parse(r.line, nullptr, false);
    if (reply.is_discarded() || !reply.value("ok", false)) {
      ADD_FAILURE() << line << ": bad reply " << r.line;
      return nullptr;
    }
    return reply["result"];
  }
};

TEST_F(PortLogTest, ConnectionChurnLogsABoundedNumberOfPortLines) {
  std::vector<FrameClient> ab;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(2, &ab, &mac));

  for (size_t i = 0; i < kCycles; ++i) {
    std::string error;
    auto c = FrameClient::connect(address_, &error);
    ASSERT_TRUE(c.has_value()) << "cycle " << i << ": " << error;
    const Mac m = test_mac(0x1000 + static_cast<uint32_t>(i));
    ASSERT_TRUE(c->send_frame(make_frame(mac[0], m, 64, static_cast<uint32_t>(i))))
        << "cycle " << i << ": " << c->last_error();
    c->close();
  }

  std::string error;
  auto ctl = ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(ctl.has_value()) << error;
  // Every churned port has gone (bounded wait for the switch to read their EOFs).
  json stats;
  for (int i = 0; i < 200; ++i) {
    stats = request(*ctl, R"({"cmd":"stats"})");
    ASSERT_TRUE(stats.is_object());
    if (stats.value("ports", size_t{0}) == 2 && stats.value("mac_entries", size_t{0}) == 2) break;
    std::this_thread::sleep_for(25ms);
  }
  EXPECT_EQ(stats.value("ports", size_t{0}), 2u) << stats.dump();
  EXPECT_EQ(stats.value("mac_entries", size_t{0}), 2u) << stats.dump();
  // A's and B's broadcasts (announce), then one frame per cycle.
  EXPECT_EQ(stats.value("frames_in", uint64_t{0}), 2 + kCycles) << stats.dump();

  const json ports = request(*ctl, R"({"cmd":"ports"})");
  ASSERT_TRUE(ports.is_array());
  ASSERT_EQ(ports.size(), 2u) << ports.dump();
  for (size_t i = 0; i < 2; ++i) {
    const json& row = ports[i];
    EXPECT_EQ(row.value("state", ""), "up") << row.dump();
    EXPECT_EQ(row["macs"], json::array({mac_to_string(mac[i])})) << row.dump();
    // A got B's broadcast and every churned client's frame; B got A's broadcast.
    EXPECT_EQ(row["counters"].value("tx_frames", uint64_t{0}), i == 0 ? 1 + kCycles : 1)
        << row.dump();
  }

  // A and B still talk (once A has read what the churned clients sent it).
  size_t churned_frames = 0;
  for (size_t i = 0; i < kCycles; ++i) {
    RecvResult r = ab[0].recv_frame(5s);
    if (!r.ok()) break;
    ++churned_frames;
  }
  EXPECT_EQ(churned_frames, kCycles);
  ASSERT_TRUE(send_and_expect(ab[0], ab[1], mac[1], mac[0], 100, 1));
  ASSERT_TRUE(send_and_expect(ab[1], ab[0], mac[0], mac[1], 100, 2));

  // The log: A's and B's up + first mac, then three lines per cycle, each one either printed or
  // counted in a summary (the last summary comes from a timer: wait for it, bounded).
  const uint64_t events = 2 * 2 + 3 * kCycles;
  PortLog log;
  const auto deadline = Clock::now() + 10s;
  do {
    log = read_port_log(sw_.stderr_text());
    if (log.printed + log.suppressed >= events) break;
    std::this_thread::sleep_for(50ms);
  } while (Clock::now() < deadline);
  std::cout << "[ REPORT   ] " << events << " port events: " << log.printed << " lines printed, "
            << log.suppressed << " suppressed in " << log.summaries << " summaries\n";
  EXPECT_EQ(log.printed + log.suppressed, events) << "every port event printed or counted once";
  EXPECT_GE(log.summaries, 1u);
  EXPECT_LE(log.printed, events / 5) << "the churn flooded the log";
}

}  // namespace
}  // namespace qswitch::integration
