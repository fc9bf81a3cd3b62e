// tests/integration/stuck_peer_test.cc: a port that stops reading (a paused VM, a guest still in
// its firmware) or reads only now and then must never hold the other ports back.
//
// The shape of every test: A sends unicast to B and, now and then, a broadcast (as ARP does);
// S is connected and does not read (or reads a little every 80 ms). B must receive every unicast
// frame A sent, in order, for the whole run; A must never be held back for long (its sends do
// not time out); S's port counts what it could not take. State is read through the control API.
// These are the stream ports' tests; the other kinds' are in their own files (dgram_test.cc,
// tap_test.cc, vxlan_test.cc, slirp_dhcp_test.cc), on the helpers in stuck_peer.h.
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::frame_dst;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

class StuckPeerTest : public SwitchFixture {
 protected:
  uint64_t counter(const Mac& mac, const std::string& name) {
    return port_counter(port_with_mac(sw_, mac), name);
  }
};

struct Traffic {
  uint32_t unicast = 20000;  // A -> B frames
  size_t unicast_size = 200;
  uint32_t broadcast_every = 20;  // one broadcast after this many unicast frames
  size_t broadcast_size = 1500;   // large, so S's 1 MiB output queue overflows in the run
  uint32_t batch = 100;           // frames per write
};

struct Outcome {
  uint32_t sent_unicast = 0;
  uint32_t received_unicast = 0;
  uint32_t received_broadcast = 0;
  uint32_t out_of_order = 0;
  uint32_t corrupt = 0;
  std::string send_error;
  std::string recv_error;
};

// A (clients[0]) sends to B (clients[1]) while a reader thread drains B. Every write must go
// through within 2 s: a write that times out means the switch stopped reading A.
Outcome run_traffic(FrameClient& a, FrameClient& b, const Mac& mac_a, const Mac& mac_b,
                    const Traffic& t) {
  Outcome out;
  std::atomic<bool> done_sending{false};
  std::atomic<uint32_t> sent{0};
  const uint32_t broadcasts_planned = t.unicast / t.broadcast_every;
  std::thread reader([&] {
    int64_t last_seq = -1;
    auto idle_since = Clock::now();
    const auto give_up = Clock::now() + 60s;
    while (Clock::now() < give_up) {
      RecvResult r = b.recv_frame(100ms);
      if (r.ok()) {
        idle_since = Clock::now();
        if (frame_dst(r.frame) == kBroadcastMac) {
          ++out.received_broadcast;
          continue;
        }
        const int64_t seq = frame_seq(r.frame).value_or(-1);
        if (seq <= last_seq) ++out.out_of_order;
        last_seq = seq;
        if (r.frame.size() != t.unicast_size || !frame_is_intact(r.frame, t.unicast_size) ||
            frame_src(r.frame) != mac_a) {
          ++out.corrupt;
        }
        ++out.received_unicast;
        if (done_sending && out.received_unicast >= sent &&
            out.received_broadcast >= broadcasts_planned) {
          return;
        }
        continue;
      }
      if (r.status != RecvResult::Status::kTimeout) {
        out.recv_error = std::string("B: ") + to_string(r.status) + " " + r.error;
        return;
      }
      if (done_sending && Clock::now() - idle_since > 3s) return;  // nothing more is coming
    }
  });

  std::vector<uint8_t> wire;
  uint32_t seq = 0;
  uint32_t bseq = 0x40000000;
  while (seq < t.unicast) {
    wire.clear();
    for (uint32_t i = 0; i < t.batch && seq < t.unicast; ++i) {
      FrameClient::append_wire(&wire, make_frame(mac_b, mac_a, t.unicast_size, seq++));
      if (seq % t.broadcast_every == 0) {
        FrameClient::append_wire(&wire, make_frame(kBroadcastMac, mac_a, t.broadcast_size, bseq++));
      }
    }
    if (!a.send_raw(wire, 2000ms)) {
      out.send_error = "A's write timed out or failed after " + std::to_string(sent.load()) +
                       " unicast frames: " + a.last_error();
      break;
    }
    sent = seq;
  }
  done_sending = true;
  reader.join();
  out.sent_unicast = sent;
  return out;
}

void expect_everything_arrived(const Outcome& o, const Traffic& t) {
  EXPECT_TRUE(o.send_error.empty()) << o.send_error;
  EXPECT_EQ(o.sent_unicast, t.unicast);
  EXPECT_TRUE(o.recv_error.empty()) << o.recv_error;
  EXPECT_EQ(o.received_unicast, o.sent_unicast)
      << "B received " << o.received_unicast << " of " << o.sent_unicast << " unicast frames";
  EXPECT_EQ(o.received_broadcast, t.unicast / t.broadcast_every);
  EXPECT_EQ(o.out_of_order, 0u);
  EXPECT_EQ(o.corrupt, 0u);
}

// Defect: every frame queued to S held a reference to the receive chunk it arrived in, so once a
// broadcast of each of A's chunks waited in S's queue, A could not read any more: B starved and
// A stayed paused for as long as S was connected.
TEST_F(StuckPeerTest, StreamReceiverThatNeverReadsHoldsNobodyBack) {
  ASSERT_TRUE(start_switch());
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(2, &c));
  {
    std::string error;
    auto stuck = FrameClient::connect(address_, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    ASSERT_TRUE(stuck) << error;
    c.push_back(std::move(*stuck));
  }
  const std::vector<Mac> mac = {test_mac(1), test_mac(2), test_mac(3)};
  ASSERT_TRUE(announce(c, mac));
  // From here on S (c[2]) never reads.
  const Traffic t;
  const Outcome o = run_traffic(c[0], c[1], mac[0], mac[1], t);
  expect_everything_arrived(o, t);
  EXPECT_GT(counter(mac[2], "drop_queue_full"), 0u) << "S's queue never overflowed";
  EXPECT_GT(counter(mac[2], "tx_copied"), 0u) << "S's queue never let go of A's chunks";
  // S is still attached and still counted as a port.
  EXPECT_TRUE(port_with_mac(sw_, mac[2]).is_object());
}

// Defect: a port over half full whose peer still read a little every < 100 ms stayed congested
// for ever, and A, sending unicast to it, stopped reading entirely: its traffic to B stopped too.
TEST_F(StuckPeerTest, SlowReaderDoesNotStopTrafficToAThirdPort) {
  ASSERT_TRUE(start_switch());
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(2, &c));
  {
    std::string error;
    auto slow = FrameClient::connect(address_, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    ASSERT_TRUE(slow) << error;
    c.push_back(std::move(*slow));
  }
  const std::vector<Mac> mac = {test_mac(1), test_mac(2), test_mac(3)};
  ASSERT_TRUE(announce(c, mac));

  // Every 80 ms S empties its socket (so the switch sees it take bytes: it is never "stuck"),
  // then sleeps: a reader that always makes progress and never keeps up.
  std::atomic<bool> stop{false};
  std::thread slow_reader([&] {
    std::vector<uint8_t> buf(64 * 1024);
    const auto give_up = Clock::now() + 60s;
    while (!stop && Clock::now() < give_up) {
      for (int i = 0; i < 64; ++i) {
        if (::recv(c[2].fd(), buf.data(), buf.size(), MSG_DONTWAIT) <= 0) break;
      }
      std::this_thread::sleep_for(80ms);  // the slowness under test, not synchronisation
    }
  });
  // A floods S with unicast (S's queue goes over half full and stays there) while also sending
  // to B: A -> S frames are interleaved with the A -> B traffic.
  std::atomic<bool> flood_failed{false};
  std::string flood_error;
  {
    std::vector<uint8_t> wire;
    for (uint32_t i = 0; i < 10000; ++i) {
      FrameClient::append_wire(&wire, make_frame(mac[2], mac[0], 1500, 0x20000000 + i));
    }
    if (!c[0].send_raw(wire, 2000ms)) {
      flood_failed = true;
      flood_error = c[0].last_error();
    }
  }
  Traffic t;
  t.unicast = 10000;
  const Outcome o = run_traffic(c[0], c[1], mac[0], mac[1], t);
  stop = true;
  slow_reader.join();
  EXPECT_FALSE(flood_failed) << "A's flood to S did not get through: " << flood_error;
  expect_everything_arrived(o, t);
  EXPECT_GT(counter(mac[2], "congestion_timeouts"), 0u);
  EXPECT_GT(counter(mac[2], "drop_queue_full"), 0u);
}

}  // namespace
}  // namespace qswitch::integration
