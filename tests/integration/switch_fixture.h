// tests/integration/switch_fixture.h: a qswitch process plus clients, for one test.
//
// Theory of operation
// - start_switch() launches the qswitch built by this tree (QSWITCH_BINARY) listening on a unix
//   socket in a per-test temp dir, and waits for "ready". Its stderr lands in that dir and is
//   printed when the test fails.
// - connect_clients() opens N FrameClients. announce() then makes every client's MAC known to the
//   switch and proves every port forwards: the LAST client broadcasts first and all others must
//   receive it (accept order is FIFO, so when the switch reads the last port every earlier port is
//   already attached); then all other clients broadcast at once and every client must receive
//   exactly one broadcast from each other client and none from itself.
// - TearDown() fails the test if qswitch's stderr holds a sanitizer report, and prints qswitch's
//   stdout and stderr tail when the test failed.
// - Helpers return AssertionResult so tests use ASSERT_TRUE(...) and get the reason.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/frame_client.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_frames.h"

namespace qswitch::integration {

using namespace std::chrono_literals;
using test_support::FrameClient;
using test_support::FrameListener;
using test_support::LaunchOptions;
using test_support::Mac;
using test_support::Millis;
using test_support::QswitchProcess;
using test_support::RecvResult;
using test_support::StatsSnapshot;
using test_support::TempDir;

// The binary under test.
const char* qswitch_binary();

class SwitchFixture : public ::testing::Test {
 protected:
  void TearDown() override;

  // Starts qswitch with `--listen unix:<tmp>/sw.sock` (when listen_default) plus `extra_args`.
  ::testing::AssertionResult start_switch(std::vector<std::string> extra_args = {},
                                          bool listen_default = true);
  LaunchOptions launch_options(std::vector<std::string> args) const;
  ::testing::AssertionResult connect_clients(size_t count, std::vector<FrameClient>* out,
                                             const std::string& address = "");
  ::testing::AssertionResult announce(std::vector<FrameClient>& clients,
                                      const std::vector<Mac>& macs, Millis timeout = 10s);
  // Start, connect `count` clients with macs test_mac(1..count), announce.
  ::testing::AssertionResult start_with_clients(size_t count, std::vector<FrameClient>* clients,
                                                std::vector<Mac>* macs,
                                                std::vector<std::string> extra_args = {});
  // Sends make_frame(dst, src, size, seq) from `from`; `to` must receive it intact.
  ::testing::AssertionResult send_and_expect(FrameClient& from, FrameClient& to, const Mac& dst,
                                             const Mac& src, size_t size, uint32_t seq,
                                             Millis timeout = 3s);
  // `client` receives nothing (no frame, no EOF) within `window`.
  static ::testing::AssertionResult expect_silence(FrameClient& client, const std::string& who,
                                                   Millis window = 300ms);
  // The switch's port id for a MAC, from its `macs` table (waiting until a port has learned it).
  ::testing::AssertionResult port_id(const Mac& mac, uint32_t* id);
  // Waits until `ports` no longer lists port `id` (it closed), or `timeout`.
  ::testing::AssertionResult wait_port_closed(uint32_t id, Millis timeout = 5s);
  // Waits until `ports` lists exactly `count` ports, or `timeout`.
  ::testing::AssertionResult wait_port_count(size_t count, Millis timeout = 5s);
  // Waits until port `id`'s counter `name` (read through `ports`) is at least `value`: 100
  // looks, each after a control round trip.
  ::testing::AssertionResult wait_port_counter(uint32_t id, const std::string& name,
                                               uint64_t value);

  TempDir tmp_;
  QswitchProcess sw_;
  std::string address_;  // "unix:<tmp>/sw.sock"
};

}  // namespace qswitch::integration
