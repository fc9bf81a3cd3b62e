// tests/backends/switch_loop_resume_test.cc: a port paused because its unicast destination was
// congested is never left waiting for the recheck timer once that destination has drained.
//
// The case (found by bench/vhost-user-compare's 64 KiB rows, where it capped a vhost-user
// sender at a segment burst per 20 ms): in the check phase the paused sender is retried, reads,
// forwards, and pauses again on the destination, which the flush right after then empties. The
// sender's peer will not wake anyone (a vhost-user guest's notifications are off while we read
// its ring) and the destination has nothing left to write, so only the 20 ms timer would.
#include <gtest/gtest.h>
#include <uv.h>

#include <array>
#include <memory>

#include "backends/runtime/switch_loop.h"

namespace qswitch::backends {
namespace {

// A destination that is congested while it holds anything, and writes everything on flush().
class DrainingPort final : public LoopPort {
 public:
  using LoopPort::LoopPort;
  void enqueue(const sw::Frame& /*frame*/) override { ++queued; }
  void flush() override { queued = 0; }
  bool congested(sw::Millis /*now*/) override { return queued > 0; }
  std::string describe() const override { return "draining"; }
  const char* kind() const override { return "test"; }
  uint64_t shutdown_io() override { return 0; }
  int queued = 0;
};

// A sender that reads one frame per retry for `dst` and pauses when the switch says `dst` is
// congested (as the vhost-user and stream ports do).
class ThrottledSender final : public LoopPort {
 public:
  ThrottledSender(SwitchLoop& loop, const std::array<uint8_t, 60>& frame)
      : LoopPort(loop), frame_(frame) {}
  void enqueue(const sw::Frame& /*frame*/) override {}
  void flush() override {}
  std::string describe() const override { return "sender"; }
  const char* kind() const override { return "test"; }
  uint64_t shutdown_io() override { return 0; }

  // Reads one frame; pauses when its destination is congested.
  void read_one() {
    ++reads;
    uint8_t wire[4 + 60];
    sw::store_be32(wire, 60);
    std::copy(frame_.begin(), frame_.end(), wire + 4);
    const sw::Frame f{wire, 60, 0, nullptr, {}};
    const sw::PortId congested = loop_.fabric().receive(*this, f, loop_.now());
    if (congested != sw::kNoPort) {
      throttled_by_ = congested;
      loop_.pause_read(*this);
    }
  }
  bool retry_paused_read() override {
    if (still_throttled(throttled_by_)) return true;
    read_one();
    return false;
  }
  bool paused_while_free() {
    return throttled_by_ != sw::kNoPort && !still_throttled(throttled_by_);
  }

  int reads = 0;

 private:
  std::array<uint8_t, 60> frame_;
  sw::PortId throttled_by_ = sw::kNoPort;
};

TEST(SwitchLoopResumeTest, APausedSenderWhoseDestinationDrainedDoesNotWaitForTheTimer) {
  LoopConfig config;
  SwitchLoop loop(config);
  auto& dst = static_cast<DrainingPort&>(loop.adopt(std::make_unique<DrainingPort>(loop)));
  // The destination's MAC, learned from a frame it "sent".
  std::array<uint8_t, 60> from_dst{};
  const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x0d};
  const uint8_t src_mac[6] = {0x02, 0, 0, 0, 0, 0x05};
  std::copy(std::begin(dst_mac), std::end(dst_mac), from_dst.begin() + 6);
  std::fill(from_dst.begin(), from_dst.begin() + 6, 0xff);
  uint8_t wire[4 + 60];
  sw::store_be32(wire, 60);
  std::copy(from_dst.begin(), from_dst.end(), wire + 4);
  loop.fabric().receive(dst, sw::Frame{wire, 60, 0, nullptr, {}}, loop.now());
  std::array<uint8_t, 60> to_dst{};
  std::copy(std::begin(dst_mac), std::end(dst_mac), to_dst.begin());
  std::copy(std::begin(src_mac), std::end(src_mac), to_dst.begin() + 6);
  auto& sender =
      static_cast<ThrottledSender&>(loop.adopt(std::make_unique<ThrottledSender>(loop, to_dst)));

  // The sender reads a frame for the destination, which is congested until it flushes.
  sender.read_one();
  ASSERT_EQ(dst.queued, 1);
  ASSERT_TRUE(!sender.paused_while_free());  // paused, rightly
  // Loop turns that do not block: each one's check phase flushes and retries. After every turn,
  // a sender still paused must either have a destination that is still congested, or the loop
  // must not block before the next turn (no wait for the 20 ms recheck timer).
  for (int turn = 0; turn < 5; ++turn) {
    uv_run(loop.uv(), UV_RUN_NOWAIT);
    if (sender.paused_while_free()) {
      EXPECT_EQ(uv_backend_timeout(loop.uv()), 0)
          << "turn " << turn << ": the sender waits for the timer with its destination drained";
    }
  }
  EXPECT_GE(sender.reads, 5);
  dst.close("test over");
  sender.close("test over");
}

}  // namespace
}  // namespace qswitch::backends
