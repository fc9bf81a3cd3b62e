// tests/integration/misdirected_control_test.cc: a control request written into a data socket.
//
// A script, socat or an old `qswitch ctl` pointed at the `--listen` socket instead of the
// control socket writes a JSON line where QEMU's stream framing is expected. What a client can
// observe: one JSON error line saying this is a data socket and where control requests go, then
// EOF; the switch logs that (not a "protocol error" about a bogus frame length), counts it as
// drop_control_request on the port, which the JSON `stats` lists among the closed ports; and the
// switch goes on forwarding for its guests.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::LineResult;

class MisdirectedControlTest : public SwitchFixture {};

TEST_F(MisdirectedControlTest, JsonRequestOnTheDataSocketGetsAnErrorLineAndIsCounted) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start_with_clients(2, &clients, &macs));
  const size_t log_from = sw_.stderr_text().size();

  // A plain unix socket client on the data socket, speaking the control protocol.
  std::string error;
  auto wrong = ControlClient::connect(address_, &error);
  ASSERT_TRUE(wrong) << "connect to " << address_ << ": " << error;
  const LineResult reply = wrong->request(R"({"cmd":"stats"})");
  ASSERT_TRUE(reply.ok()) << "no reply line on the data socket: " << to_string(reply.status) << " "
                          << reply.error;
  const json j = json::parse(reply.line, nullptr, false);
  ASSERT_TRUE(j.is_object()) << reply.line;
  EXPECT_EQ(j.value("ok", true), false) << reply.line;
  const std::string text = j.value("error", "");
  EXPECT_NE(text.find("this is a qswitch data socket (QEMU -netdev stream)"), std::string::npos)
      << reply.line;
  EXPECT_NE(text.find("send control requests to the control socket"), std::string::npos)
      << reply.line;
  // Then the switch closes the connection.
  const LineResult after = wrong->read_line(3s);
  EXPECT_EQ(after.status, LineResult::Status::kEof) << to_string(after.status) << " " << after.line;

  // Logged as what it is, not as a bogus frame length.
  EXPECT_TRUE(
      sw_.wait_for_stderr("a control request (JSON) was written to this data socket", 3s, log_from))
      << sw_.stderr_text().substr(log_from);
  EXPECT_EQ(sw_.stderr_text().find("protocol error", log_from), std::string::npos)
      << sw_.stderr_text().substr(log_from);

  // Counted on the port, which the JSON stats keeps among the closed ports.
  ASSERT_TRUE(wait_port_count(2));
  const json stats = control_result(sw_, {{"cmd", "stats"}});
  ASSERT_TRUE(stats.is_object());
  ASSERT_TRUE(stats.contains("closed_ports")) << stats.dump();
  int refused = 0;
  for (const json& p : stats["closed_ports"]) {
    if (p["counters"].value("drop_control_request", 0) == 1) {
      refused += 1;
      EXPECT_EQ(p.value("kind", ""), "stream") << p.dump();
      EXPECT_EQ(p["counters"].value("drop_bad_length", 1), 0) << p.dump();
    }
  }
  EXPECT_EQ(refused, 1) << stats.dump();
  // The live guests' ports carry the counter too, at 0.
  const json ports = control_result(sw_, {{"cmd", "ports"}});
  ASSERT_EQ(ports.size(), 2u) << ports.dump();
  for (const json& p : ports) {
    EXPECT_EQ(p["counters"].value("drop_control_request", 1), 0) << p.dump();
  }

  // The guests never noticed.
  ASSERT_TRUE(send_and_expect(clients[0], clients[1], macs[1], macs[0], 100, 1));
  ASSERT_TRUE(send_and_expect(clients[1], clients[0], macs[0], macs[1], 100, 2));
}

// Only '{' then '"' is taken for a control request: other bytes that are no frame are the usual
// protocol error, with no reply.
TEST_F(MisdirectedControlTest, OtherGarbageIsStillAProtocolError) {
  ASSERT_TRUE(start_switch());
  const size_t log_from = sw_.stderr_text().size();
  std::string error;
  auto garbage = ControlClient::connect(address_, &error);
  ASSERT_TRUE(garbage) << "connect to " << address_ << ": " << error;
  ASSERT_TRUE(garbage->send_raw(std::string("{x\0\0", 4))) << garbage->last_error();
  const LineResult r = garbage->read_line(3s);
  EXPECT_EQ(r.status, LineResult::Status::kEof) << to_string(r.status) << " " << r.line;
  EXPECT_TRUE(sw_.wait_for_stderr("protocol error", 3s, log_from))
      << sw_.stderr_text().substr(log_from);
  EXPECT_EQ(sw_.stderr_text().find("control request", log_from), std::string::npos)
      << sw_.stderr_text().substr(log_from);
}

}  // namespace
}  // namespace qswitch::integration
