// tests/integration/robustness_test.cc: what a guest or peer can do to the switch (stop reading,
// go away and come back, share a MAC, send garbage, open many ports) and what must still hold.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::test_mac;

class RobustnessTest : public SwitchFixture {};

// True when `line` names "port <id>" (not followed by another digit).
bool names_port(const std::string& line, uint32_t id) {
  const std::string n = "port " + std::to_string(id);
  for (size_t at = line.find(n); at != std::string::npos; at = line.find(n, at + 1)) {
    const size_t end = at + n.size();
    if (end == line.size() || !std::isdigit(static_cast<unsigned char>(line[end]))) return true;
  }
  return false;
}

// A floods 40000 broadcasts of 200 bytes while C never reads; B is read by its own thread. The
// generator sends them in batches of 20 per millisecond (about 20k frames/s: C's socket buffer and
// its 1 MiB output queue fill within half a second); that pacing only shapes the flood, nothing
// waits on it. No rate is asserted (the machine may be loaded, the build sanitized): every count
// is exact and read back through the control API.
// Asserted: the switch reads every frame A sends (A's port rx_frames == sent; A's writes never
// time out); every frame for B is either delivered to B, in order and intact, or counted in B's
// drop_queue_full (delivered + dropped == sent, delivered == B's tx_frames); C's port counts
// drop_queue_full > 0; A and B still reach each other afterwards; qswitch's VmRSS grows by less
// than 56 MiB over its RSS before the load (a sanitizer build's binary alone is ~60 MiB).
TEST_F(RobustnessTest, SlowReceiverDoesNotSlowOthers) {
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
  // From here on C (c[2]) never reads.
  uint32_t aid = 0, bid = 0, cid = 0;
  ASSERT_TRUE(port_id(mac[0], &aid));
  ASSERT_TRUE(port_id(mac[1], &bid));
  ASSERT_TRUE(port_id(mac[2], &cid));
  auto before = sw_.stats();
  ASSERT_TRUE(before) << sw_.error();
  ASSERT_TRUE(before->port(aid) && before->port(bid) && before->port(cid)) << before->text;
  const uint64_t a_rx0 = before->port(aid)->get("rx_frames");
  const uint64_t b_tx0 = before->port(bid)->get("tx_frames");
  const uint64_t b_drop0 = before->port(bid)->get("drop_queue_full");
  // What the switch holds because of the load is measured over its RSS once it is up with its
  // three ports: the binary itself (tens of MiB in a sanitizer build) is not the question.
  const long rss0 = sw_.rss_kib().value_or(0);
  ASSERT_GT(rss0, 0) << "could not read VmRSS";

  constexpr size_t kFrameSize = 200;
  constexpr uint32_t kPerMs = 20;
  constexpr uint32_t kFrames = 40000;
  std::atomic<bool> stop_reading{false};
  std::atomic<uint32_t> received{0};
  uint32_t out_of_order = 0;
  uint32_t corrupt = 0;
  std::string reader_error;  // written by the reader; read after reader_failed or join()
  std::atomic<bool> reader_failed{false};
  std::thread reader([&] {
    int64_t last_seq = -1;
    while (!stop_reading) {
      RecvResult r = c[1].recv_frame(100ms);
      if (r.ok()) {
        const int64_t seq = frame_seq(r.frame).value_or(0);
        if (seq <= last_seq) ++out_of_order;
        last_seq = seq;
        if (r.frame.size() != kFrameSize || !frame_is_intact(r.frame, kFrameSize) ||
            frame_src(r.frame) != mac[0]) {
          ++corrupt;
        }
        ++received;
        continue;
      }
      if (r.status != RecvResult::Status::kTimeout) {
        reader_error = std::string("B: ") + to_string(r.status) + " " + r.error;
        reader_failed = true;
        return;
      }
    }
  });

  long max_rss = 0;
  bool send_failed = false;
  std::string send_error;
  std::vector<uint8_t> wire;
  const auto start = Clock::now();
  auto next_rss = start;
  uint32_t sent = 0;
  while (sent < kFrames) {
    // Pacing of the flood generator (not synchronisation): catch up to 20 frames per ms.
    const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - start).count();
    const uint32_t target = std::min(kFrames, static_cast<uint32_t>(elapsed + 1) * kPerMs);
    wire.clear();
    uint32_t seq = sent;
    while (seq < target) {
      FrameClient::append_wire(&wire, make_frame(kBroadcastMac, mac[0], kFrameSize, seq++));
    }
    if (!wire.empty() && !c[0].send_raw(wire, 5000ms)) {
      send_failed = true;
      send_error = c[0].last_error();
      break;
    }
    sent = seq;
    if (Clock::now() >= next_rss) {
      max_rss = std::max(max_rss, sw_.rss_kib().value_or(0));
      next_rss += 100ms;
    }
    std::this_thread::sleep_for(1ms);
  }
  if (send_failed) {
    stop_reading = true;
    reader.join();
    FAIL() << "A was held back after " << sent << " frames: " << send_error;
  }

  // Every frame A sent is read by the switch, and on B's side delivered or counted as dropped;
  // B's reader takes every delivered one. Polled through `ports` with a deadline.
  const auto deadline = Clock::now() + 30s;
  uint64_t a_rx = 0, b_tx = 0, b_drop = 0;
  std::string last_text;
  for (;;) {
    max_rss = std::max(max_rss, sw_.rss_kib().value_or(0));
    auto snap = sw_.stats();
    if (!snap || !snap->port(aid) || !snap->port(bid)) {  // the reader is joined before failing
      last_text = snap ? "A's or B's port closed: " + snap->text : sw_.error();
      break;
    }
    last_text = snap->text;
    a_rx = snap->port(aid)->get("rx_frames") - a_rx0;
    b_tx = snap->port(bid)->get("tx_frames") - b_tx0;
    b_drop = snap->port(bid)->get("drop_queue_full") - b_drop0;
    if ((a_rx == sent && b_tx + b_drop == sent && received.load() == b_tx) || reader_failed ||
        Clock::now() >= deadline) {
      break;
    }
    std::this_thread::sleep_for(10ms);  // polling counters, bounded by the deadline
  }
  stop_reading = true;
  reader.join();
  max_rss = std::max(max_rss, sw_.rss_kib().value_or(0));

  EXPECT_TRUE(reader_error.empty()) << reader_error;
  EXPECT_EQ(a_rx, sent) << "the switch did not read every frame A sent: " << last_text;
  EXPECT_EQ(b_tx + b_drop, uint64_t{sent})
      << "frames for B neither delivered nor counted (tx_frames " << b_tx << ", drop_queue_full "
      << b_drop << "): " << last_text;
  EXPECT_EQ(uint64_t{received.load()}, b_tx)
      << "B received " << received.load() << " of the " << b_tx << " its port sent";
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(corrupt, 0u);
  EXPECT_GT(max_rss, 0) << "could not read VmRSS";
  EXPECT_LT(max_rss - rss0, 56 * 1024)
      << "qswitch VmRSS peaked at " << max_rss << " KiB, from " << rss0 << " KiB before the load";

  auto snap = sw_.stats();
  ASSERT_TRUE(snap) << sw_.error();
  const auto* slow = snap->port(cid);
  ASSERT_NE(slow, nullptr) << snap->text;
  EXPECT_GT(slow->get("drop_queue_full"), 0u) << snap->text;
  EXPECT_LE(slow->get("tx_frames") + slow->get("drop_queue_full"),
            before->port(cid)->get("tx_frames") + before->port(cid)->get("drop_queue_full") + sent)
      << snap->text;
  // The switch keeps serving the others: A and B reach each other, unicast both ways.
  c[1].drain(0ms);
  ASSERT_TRUE(send_and_expect(c[0], c[1], mac[1], mac[0], 100, kFrames + 1));
  ASSERT_TRUE(send_and_expect(c[1], c[0], mac[0], mac[1], 100, kFrames + 2));
  std::cerr << "sent=" << sent << " received_by_B=" << received.load()
            << " B.drop_queue_full=" << b_drop
            << " C.drop_queue_full=" << slow->get("drop_queue_full") << " max_rss_kib=" << max_rss
            << "\n";
}

TEST_F(RobustnessTest, ConnectRedialsPeerThatRestarts) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string peer_ep = "unix:" + tmp_.file("peer.sock");
  std::string error;
  auto listener = FrameListener::listen(peer_ep, &error);
  ASSERT_TRUE(listener) << error;
  ASSERT_TRUE(start_switch({"--connect", peer_ep}));
  EXPECT_EQ(sw_.connecting(), std::vector<std::string>{peer_ep});

  auto peer = listener->accept(5s, &error);
  ASSERT_TRUE(peer) << "qswitch did not dial: " << error;
  std::vector<FrameClient> local;
  ASSERT_TRUE(connect_clients(1, &local));
  const Mac pmac = test_mac(50);
  const Mac lmac = test_mac(51);
  // Peer first: once its frame reached the local client, the local port is attached too.
  ASSERT_TRUE(send_and_expect(*peer, local[0], kBroadcastMac, pmac, 64, 1));
  ASSERT_TRUE(send_and_expect(local[0], *peer, pmac, lmac, 64, 2));

  // The peer goes away entirely, then comes back on the same path.
  peer->close();
  listener->close();
  // The switch has seen the peer go: only the local client's port is left in `ports`.
  ASSERT_TRUE(wait_port_count(1));
  listener = FrameListener::listen(peer_ep, &error);
  ASSERT_TRUE(listener) << error;
  const auto t0 = Clock::now();
  auto again = listener->accept(8s, &error);
  ASSERT_TRUE(again) << "qswitch did not redial within 8 s: " << error;
  std::cerr << "redialled after " << std::chrono::duration_cast<Millis>(Clock::now() - t0).count()
            << " ms\n";
  ASSERT_TRUE(send_and_expect(*again, local[0], kBroadcastMac, pmac, 64, 3));
  ASSERT_TRUE(send_and_expect(local[0], *again, pmac, lmac, 64, 4));
  ASSERT_TRUE(send_and_expect(*again, local[0], lmac, pmac, 1000, 5));
}

TEST_F(RobustnessTest, DuplicateMacIsWarned) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));
  uint32_t aid = 0;
  uint32_t bid = 0;
  ASSERT_TRUE(port_id(mac[0], &aid));
  ASSERT_TRUE(port_id(mac[1], &bid));
  const Mac shared = test_mac(900);
  for (uint32_t round = 0; round < 10; ++round) {
    for (size_t from : {0u, 1u}) {
      const uint32_t seq = round * 2 + static_cast<uint32_t>(from);
      ASSERT_TRUE(c[from].send_frame(make_frame(kBroadcastMac, shared, 64, seq)));
      RecvResult r = c[2].recv_frame(3s);
      ASSERT_TRUE(r.ok() && frame_seq(r.frame) == seq)
          << "round " << round << ": " << to_string(r.status);
      c[1 - from].drain(0ms);
    }
  }
  // The warning names the MAC, both ports, and tells the user to give each guest its own
  // "mac=" on the -device line.
  const std::string shared_text = mac_to_string(shared);
  ASSERT_TRUE(sw_.wait_for_stderr(shared_text, 2s)) << "no log line names " << shared_text;
  bool warned = false;
  std::istringstream lines(sw_.stderr_text());
  std::string line;
  while (std::getline(lines, line)) {
    warned = warned || (line.find(shared_text) != std::string::npos &&
                        line.find("mac=") != std::string::npos && names_port(line, aid) &&
                        names_port(line, bid));
  }
  EXPECT_TRUE(warned) << "no line names " << shared_text << ", port " << aid << ", port " << bid
                      << " and mentions mac=";
  auto snap = sw_.stats();
  ASSERT_TRUE(snap) << sw_.error();
  EXPECT_GT(snap->sum("dup_mac"), 0u) << snap->text;
}

TEST_F(RobustnessTest, GarbageClosesOrIsDroppedAndOthersCarryOn) {
  std::vector<FrameClient> c;
  std::vector<Mac> mac;
  ASSERT_TRUE(start_with_clients(3, &c, &mac));  // c[2] is the garbage source
  std::mt19937 rng(12345);
  std::vector<uint8_t> junk(64 * 1024);
  for (auto& b : junk) b = static_cast<uint8_t>(rng());
  const uint32_t first_length =
      (uint32_t{junk[0]} << 24) | (uint32_t{junk[1]} << 16) | (uint32_t{junk[2]} << 8) | junk[3];
  ASSERT_TRUE(first_length < 14 || first_length > 65549)
      << "the fixed seed should start with an invalid length, got " << first_length;
  uint32_t gid = 0;
  ASSERT_TRUE(port_id(mac[2], &gid));
  c[2].send_raw(junk, 2s);  // may fail part way: the switch is allowed to close it at once
  EXPECT_TRUE(c[2].wait_eof(3s)) << "random bytes starting with length " << first_length
                                 << " should close the port";
  ASSERT_TRUE(wait_port_closed(gid));  // before the next client, which may reuse its id

  // Valid framing, random contents (random MACs, multicast sources, random sizes).
  std::string error;
  auto g = FrameClient::connect(address_, &error);
  ASSERT_TRUE(g) << error;
  std::vector<uint8_t> wire;
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> f(14 + rng() % 1501);
    for (auto& b : f) b = static_cast<uint8_t>(rng());
    FrameClient::append_wire(&wire, f);
  }
  ASSERT_TRUE(g->send_raw(wire, 5s)) << g->last_error();
  // The switch has read all 500 (the garbage port is the one live port that is not A's or B's).
  uint32_t aid = 0, bid = 0;
  ASSERT_TRUE(port_id(mac[0], &aid));
  ASSERT_TRUE(port_id(mac[1], &bid));
  uint64_t g_rx = 0;
  std::string g_text;
  for (int i = 0; i < 500 && g_rx < 500; ++i) {  // polling `ports`, bounded (5 s and more)
    auto live = sw_.stats();
    ASSERT_TRUE(live) << sw_.error();
    g_text = live->text;
    for (const auto& [id, p] : live->ports) {
      if (id != aid && id != bid) g_rx = p.get("rx_frames");
    }
    if (g_rx < 500) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(g_rx, 500u) << "the switch did not read the 500 random frames: " << g_text;
  c[0].drain(200ms);
  c[1].drain(200ms);

  ASSERT_TRUE(sw_.running()) << "qswitch died";
  auto from_a = [&](std::span<const uint8_t> f) {
    return frame_src(f) == mac[0] && frame_seq(f) == 777u;
  };
  ASSERT_TRUE(c[0].send_frame(make_frame(mac[1], mac[0], 100, 777)));
  RecvResult r = c[1].recv_frame_matching(from_a, 3s);
  ASSERT_TRUE(r.ok()) << "A -> B after garbage: " << to_string(r.status);
  EXPECT_TRUE(frame_is_intact(r.frame, 100));
  auto from_b = [&](std::span<const uint8_t> f) {
    return frame_src(f) == mac[1] && frame_seq(f) == 778u;
  };
  ASSERT_TRUE(c[1].send_frame(make_frame(mac[0], mac[1], 100, 778)));
  r = c[0].recv_frame_matching(from_b, 3s);
  ASSERT_TRUE(r.ok()) << "B -> A after garbage: " << to_string(r.status);
  auto snap = sw_.stats();
  ASSERT_TRUE(snap) << "qswitch does not answer `ports`/`stats` after garbage: " << sw_.error();
  // The garbage port has closed: its final counters are among `stats`' closed_ports, which
  // sum() includes.
  EXPECT_GE(snap->sum("drop_bad_length"), 1u) << snap->text;
}

}  // namespace
}  // namespace qswitch::integration
