// tests/integration/forwarding_test.cc: learning, flooding, padding, lengths, framing, scale,
// observed on frames that crossed a running qswitch.
//
// Each test starts its own qswitch (unix socket in a per-test temp dir) and its own clients, and
// every wait is bounded. "Nothing arrives" is checked over a 300 ms window after the frame that
// should have been delivered elsewhere was seen there, so the switch has already forwarded it.
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using test_support::frame_dst;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

class ForwardingTest : public SwitchFixture {};

std::vector<uint8_t> be32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}

TEST_F(ForwardingTest, UnicastAfterLearningReachesOnlyItsPort) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(4, &c, &mac));
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, 1));
  EXPECT_TRUE(expect_silence(c[2], "C"));
  EXPECT_TRUE(expect_silence(c[3], "D", 0ms));
  EXPECT_TRUE(expect_silence(c[0], "A (sender)", 0ms));
  ASSERT_TRUE(send_and_expect(c[1], c[0], mac[0], mac[1], 1514, 2));
  EXPECT_TRUE(expect_silence(c[2], "C"));
  EXPECT_TRUE(expect_silence(c[3], "D", 0ms));
}

TEST_F(ForwardingTest, BroadcastReachesAllOthersButNotTheSender) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(4, &c, &mac));
  ASSERT_TRUE(c[0].send_frame(make_frame(kBroadcastMac, mac[0], 200, 7)));
  for (size_t i = 1; i < 4; ++i) {
    RecvResult r = c[i].recv_frame(3s);
    ASSERT_TRUE(r.ok()) << "client " << i << ": " << to_string(r.status);
    EXPECT_EQ(r.frame.size(), 200u);
    EXPECT_TRUE(frame_is_intact(r.frame, 200));
    EXPECT_EQ(frame_src(r.frame), mac[0]);
    EXPECT_EQ(frame_seq(r.frame), 7u);
  }
  EXPECT_TRUE(expect_silence(c[0], "the sender"));
}

TEST_F(ForwardingTest, UnknownUnicastFloods) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  const Mac unknown = test_mac(0xabcdef);
  ASSERT_TRUE(c[0].send_frame(make_frame(unknown, mac[0], 100, 11)));
  for (size_t i = 1; i < 3; ++i) {
    RecvResult r = c[i].recv_frame(3s);
    ASSERT_TRUE(r.ok()) << "client " << i << ": " << to_string(r.status);
    EXPECT_EQ(frame_dst(r.frame), unknown);
    EXPECT_TRUE(frame_is_intact(r.frame, 100));
  }
  EXPECT_TRUE(expect_silence(c[0], "the sender"));
}

TEST_F(ForwardingTest, MulticastFloods) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  const Mac groups[] = {{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}, {0x33, 0x33, 0x00, 0x00, 0x00, 0x01}};
  uint32_t seq = 20;
  for (const Mac& group : groups) {
    ASSERT_TRUE(c[1].send_frame(make_frame(group, mac[1], 90, seq)));
    for (size_t i : {0u, 2u}) {
      RecvResult r = c[i].recv_frame(3s);
      ASSERT_TRUE(r.ok()) << "client " << i << " for group " << mac_to_string(group) << ": "
                          << to_string(r.status);
      EXPECT_EQ(frame_dst(r.frame), group);
      EXPECT_EQ(frame_seq(r.frame), seq);
      EXPECT_TRUE(frame_is_intact(r.frame, 90));
    }
    EXPECT_TRUE(expect_silence(c[1], "the sender"));
    ++seq;
  }
}

TEST_F(ForwardingTest, ShortFramesArePaddedTo60) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(2, &c, &mac));
  for (size_t size : {42u, 14u, 59u}) {
    ASSERT_TRUE(c[0].send_frame(make_frame(mac[1], mac[0], size, 3)));
    RecvResult r = c[1].recv_frame(3s);
    ASSERT_TRUE(r.ok()) << "size " << size << ": " << to_string(r.status);
    EXPECT_EQ(r.frame.size(), 60u) << "a " << size << "-byte frame";
    EXPECT_TRUE(frame_is_intact(r.frame, size))
        << "a " << size << "-byte frame: first bytes must be the original, the rest zeros";
  }
  // 60 and more are not touched.
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 61, 4));
}

TEST_F(ForwardingTest, JumboFrame65549CrossesAndLargerLengthClosesPort) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(2, &c, &mac));
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 65549, 1, 5s));
  ASSERT_TRUE(send_and_expect(c[1], c[0], mac[0], mac[1], 65549, 2, 5s));

  uint32_t index = 100;
  for (uint32_t bad : {65550u, 13u, 0u}) {
    SCOPED_TRACE("bad length " + std::to_string(bad));
    const Mac xmac = test_mac(++index);
    std::string error;
    auto x = FrameClient::connect(address_, &error);
    ASSERT_TRUE(x) << error;
    // One good broadcast first, so the port is known (its id comes from the `macs` table).
    // Its size differs per round, so this port's counters are told apart from an earlier closed
    // port that had the same (reused) id.
    const size_t hello_size = 60 + index;
    ASSERT_TRUE(x->send_frame(make_frame(kBroadcastMac, xmac, hello_size, index)));
    for (size_t i = 0; i < 2; ++i) {
      RecvResult r = c[i].recv_frame(3s);
      ASSERT_TRUE(r.ok() && frame_src(r.frame) == xmac) << "client " << i << " missed X's hello";
    }
    uint32_t xid = 0;
    ASSERT_TRUE(port_id(xmac, &xid));
    {
      auto live = sw_.stats();
      ASSERT_TRUE(live) << sw_.error();
      ASSERT_NE(live->port(xid), nullptr) << live->text;
      EXPECT_EQ(live->port(xid)->get("rx_frames"), 1u) << live->text;
      EXPECT_EQ(live->port(xid)->get("rx_bytes"), hello_size) << live->text;
      EXPECT_EQ(live->port(xid)->get("drop_bad_length"), 0u) << live->text;
    }
    const size_t log_from = sw_.stderr_size();

    std::vector<uint8_t> wire = be32(bad);
    wire.resize(wire.size() + 16, 0);
    ASSERT_TRUE(x->send_raw(wire)) << x->last_error();
    EXPECT_TRUE(x->wait_eof(3s)) << "the port that sent length " << bad << " was not closed";
    ASSERT_TRUE(wait_port_closed(xid));

    // The others keep working.
    ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, 1000 + bad));
    ASSERT_TRUE(send_and_expect(c[1], c[0], mac[0], mac[1], 100, 2000 + bad));

    // The log's subject here: the protocol error is logged, naming the port; and a closed port's
    // final counters appear only in the stats text (SIGUSR1), not in `ports`.
    auto logged = sw_.wait_for_stderr("protocol error", 2s, log_from);
    EXPECT_TRUE(logged) << "no \"protocol error\" log line after length " << bad;
    if (logged) {
      const std::string text = sw_.stderr_text().substr(log_from);
      EXPECT_NE(text.find("port " + std::to_string(xid) + " "), std::string::npos)
          << "the log should name port " << xid << ":\n"
          << text;
    }
    auto snap = sw_.stats();
    ASSERT_TRUE(snap) << sw_.error();
    // A closed port's final counters: `stats`' closed_ports.
    const test_support::PortStats* port = nullptr;
    for (const auto& p : snap->closed_ports) {
      if (p.port == xid && p.get("rx_bytes") == hello_size) port = &p;
    }
    ASSERT_NE(port, nullptr) << "no closed port " << xid << " with rx_bytes=" << hello_size
                             << " in:\n"
                             << snap->text;
    EXPECT_EQ(port->get("drop_bad_length"), 1u) << "port " << xid;
    EXPECT_EQ(port->get("rx_frames"), 1u) << "port " << xid;
  }
}

TEST_F(ForwardingTest, ClosedPortIsForgotten) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, 1));  // B is learned
  uint32_t bid = 0;
  ASSERT_TRUE(port_id(mac[1], &bid));
  c[1].close();
  ASSERT_TRUE(wait_port_closed(bid, 3s));
  // B's MAC is unknown now: A's frame to it floods, so C gets it.
  ASSERT_TRUE(send_and_expect(c[0], c[2], mac[1], mac[0], 100, 2));
  EXPECT_TRUE(expect_silence(c[0], "the sender"));
}

TEST_F(ForwardingTest, StationMoveIsRelearned) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, 1));  // B's MAC is on B's port
  // B's MAC now speaks from C's port (B's guest moved). Its broadcast reaches A and B.
  ASSERT_TRUE(c[2].send_frame(make_frame(kBroadcastMac, mac[1], 100, 2)));
  for (size_t i : {0u, 1u}) {
    RecvResult r = c[i].recv_frame(3s);
    ASSERT_TRUE(r.ok() && frame_seq(r.frame) == 2u)
        << "client " << i << ": " << to_string(r.status);
  }
  ASSERT_TRUE(send_and_expect(c[0], c[2], mac[1], mac[0], 100, 3));
  EXPECT_TRUE(expect_silence(c[1], "B's old port"));
  auto snap = sw_.stats();
  ASSERT_TRUE(snap) << sw_.error();
  EXPECT_GE(snap->switch_counters["mac_moves"], 1u) << snap->text;
}

TEST_F(ForwardingTest, FrameNeverReturnsToSource) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(2, &c, &mac));
  // A's MAC is learned on A's port; a frame from A's port to it must go nowhere.
  ASSERT_TRUE(c[0].send_frame(make_frame(mac[0], test_mac(77), 100, 1)));
  EXPECT_TRUE(expect_silence(c[0], "the sender"));
  EXPECT_TRUE(expect_silence(c[1], "B", 0ms));
  // And the switch still forwards afterwards.
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, 2));
  uint32_t aid = 0;
  ASSERT_TRUE(port_id(mac[0], &aid));
  auto snap = sw_.stats();
  ASSERT_TRUE(snap) << sw_.error();
  EXPECT_EQ(snap->sum("drop_same_port"), 1u) << snap->text;
  const auto* a = snap->port(aid);
  ASSERT_NE(a, nullptr) << snap->text;
  EXPECT_EQ(a->get("drop_same_port"), 1u) << "counted on the receiving port " << aid;
}

TEST_F(ForwardingTest, ManyFramesInOneWriteAndOneByteAtATime) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  constexpr uint32_t kCount = 1000;
  auto size_of = [](uint32_t i) { return size_t{60} + (i * 37) % 200; };
  std::vector<uint8_t> wire;
  for (uint32_t i = 0; i < kCount; ++i) {
    FrameClient::append_wire(&wire, make_frame(mac[1], mac[0], size_of(i), i));
  }
  ASSERT_TRUE(c[0].send_raw(wire, 5s)) << c[0].last_error();
  for (uint32_t i = 0; i < kCount; ++i) {
    RecvResult r = c[1].recv_frame(3s);
    ASSERT_TRUE(r.ok()) << "frame " << i << " of " << kCount << ": " << to_string(r.status);
    ASSERT_EQ(frame_seq(r.frame), i) << "out of order";
    ASSERT_EQ(r.frame.size(), size_of(i));
    ASSERT_TRUE(frame_is_intact(r.frame, size_of(i))) << "frame " << i << " corrupt";
  }

  // One frame, one byte per write, 1 ms apart.
  wire.clear();
  FrameClient::append_wire(&wire, make_frame(mac[1], mac[2], 300, 5000));
  for (uint8_t byte : wire) {
    ASSERT_TRUE(c[2].send_raw(std::span<const uint8_t>(&byte, 1))) << c[2].last_error();
    std::this_thread::sleep_for(1ms);
  }
  RecvResult r = c[1].recv_frame(3s);
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_EQ(r.frame.size(), 300u);
  EXPECT_EQ(frame_src(r.frame), mac[2]);
  EXPECT_TRUE(frame_is_intact(r.frame, 300));
  EXPECT_TRUE(expect_silence(c[0], "A", 100ms));
}

TEST_F(ForwardingTest, TwoHundredPortsAtOnce) {
  constexpr size_t kPorts = 200;
  const auto started = std::chrono::steady_clock::now();
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  // Connect all, then every port broadcasts and every port must see all 199 others.
  ASSERT_TRUE(start_with_clients(kPorts, &c, &mac));
  // A unicast from port 0 to each other port arrives there, and each answers port 0.
  for (size_t i = 1; i < kPorts; ++i) {
    ASSERT_TRUE(c[0].send_frame(make_frame(mac[i], mac[0], 80, static_cast<uint32_t>(i))));
  }
  for (size_t i = 1; i < kPorts; ++i) {
    RecvResult r = c[i].recv_frame(5s);
    ASSERT_TRUE(r.ok()) << "port " << i << ": " << to_string(r.status);
    ASSERT_EQ(frame_seq(r.frame), i);
    ASSERT_EQ(frame_dst(r.frame), mac[i]);
    ASSERT_TRUE(c[i].send_frame(make_frame(mac[0], mac[i], 80, static_cast<uint32_t>(i))));
  }
  std::vector<bool> answered(kPorts, false);
  for (size_t n = 1; n < kPorts; ++n) {
    RecvResult r = c[0].recv_frame(5s);
    ASSERT_TRUE(r.ok()) << "answer " << n << ": " << to_string(r.status);
    const uint32_t seq = frame_seq(r.frame).value_or(0);
    ASSERT_TRUE(seq >= 1 && seq < kPorts && frame_src(r.frame) == mac[seq] && !answered[seq]);
    answered[seq] = true;
  }
  EXPECT_TRUE(expect_silence(c[1], "port 1", 100ms));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
}

}  // namespace
}  // namespace qswitch::integration
