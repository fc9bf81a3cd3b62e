// tests/switch/l2_switch_test.cc: L2Switch learning, forwarding, flushing and duplicate MACs.
//
// Theory of operation
// - FakePort records every frame enqueue() hands it (destination, source, a tag from the
//   payload, and the wire pointer, to check frames travel as views) and counts flush() calls.
// - Frames live in a FrameFactory for the whole test, in stream framing, each tagged with a
//   number so a test can tell exactly which frame reached which port.
// - Time is injected: each receive() gets the test's `now`; the MAC table is seeded so runs are
//   repeatable.
// - Events are recorded with the switch counters at the moment they fire, so rate limiting and
//   the `count` argument are checked against what the switch itself counted.
// - Receive memory (relieve()): FakePort records which pools it was asked to release. The
//   end-to-end tests use QueuePort, a port holding a real StreamTxQueue that is never written (a
//   peer that stopped reading), and a sender whose frames sit in chunks of a real ChunkPool whose
//   ChunkPressure is the switch, as the backends wire it.
#include "switch/l2_switch.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "switch/stream_tx_queue.h"

namespace qswitch::sw {
namespace {

MacAddress mac(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3, uint8_t b4, uint8_t b5) {
  return MacAddress{{b0, b1, b2, b3, b4, b5}};
}

const MacAddress kA = mac(0x52, 0x54, 0, 0, 0, 0x0a);
const MacAddress kA2 = mac(0x52, 0x54, 0, 0, 1, 0x0a);
const MacAddress kB = mac(0x52, 0x54, 0, 0, 0, 0x0b);
const MacAddress kC = mac(0x52, 0x54, 0, 0, 0, 0x0c);
const MacAddress kD = mac(0x52, 0x54, 0, 0, 0, 0x0d);
const MacAddress kUnknown = mac(0x52, 0x54, 0, 0, 0, 0x99);
const MacAddress kBroadcast = mac(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const MacAddress kMulticast = mac(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb);
const MacAddress kIpv6Multicast = mac(0x33, 0x33, 0, 0, 0, 0x01);

struct Got {
  MacAddress dst;
  MacAddress src;
  uint32_t tag;
  const uint8_t* wire;
};

class FakePort : public Port {
 public:
  explicit FakePort(std::string name) : name_(std::move(name)) {}
  void enqueue(const Frame& frame) override {
    const uint8_t* tag = frame.data() + 14;
    got.push_back(Got{MacAddress::from_wire(frame.dst()), MacAddress::from_wire(frame.src()),
                      load_be32(tag), frame.wire});
  }
  void enqueue_burst(std::span<const Frame> frames) override {
    bursts.push_back(frames.size());
    Port::enqueue_burst(frames);  // enqueue() each, in order
  }
  void flush() override { ++flush_count; }
  std::string describe() const override { return name_; }
  bool congested(Millis now) override {
    congested_asked_at = now;
    ++congested_calls;
    got_when_asked = got.size();
    return is_congested;
  }
  void release_chunks(const ChunkOwner& pool) override { released.push_back(&pool); }

  std::vector<uint32_t> tags() const {
    std::vector<uint32_t> t;
    for (const Got& g : got) t.push_back(g.tag);
    return t;
  }

  std::vector<Got> got;
  std::vector<size_t> bursts;  // the size of each enqueue_burst() call
  int flush_count = 0;
  bool is_congested = false;
  std::vector<const ChunkOwner*> released;
  mutable Millis congested_asked_at = -1;
  int congested_calls = 0;
  size_t got_when_asked = 0;  // frames it had been given when congested() was last asked

 private:
  std::string name_;
};

// Frames in stream framing, kept alive for the whole test. Each carries a tag after the header.
class FrameFactory {
 public:
  Frame make(const MacAddress& dst, const MacAddress& src, uint32_t tag, uint32_t size = 64) {
    std::vector<uint8_t>& b = storage_.emplace_back(kPrefixSize + size, 0);
    store_be32(b.data(), size);
    std::memcpy(b.data() + 4, dst.bytes.data(), 6);
    std::memcpy(b.data() + 10, src.bytes.data(), 6);
    b[16] = 0x08;  // IPv4 ethertype, for realism only
    store_be32(b.data() + 4 + 14, tag);
    return Frame{b.data(), size, 0, nullptr, {}};
  }

 private:
  std::deque<std::vector<uint8_t>> storage_;
};

struct FirstMac {
  PortId port;
  MacAddress mac;
};
struct Spoof {
  PortId in;
  MacAddress mac;
  PortId owner;
  uint64_t spoofs_so_far;  // switch mac_spoofs when the event fired
};
struct DupReport {
  MacAddress mac;
  PortId was;
  PortId now;
  uint64_t count;
  Millis at;
  uint64_t events_so_far;  // switch dup_mac_events when the report fired
};

class RecordingEvents : public L2Switch::Events {
 public:
  void on_first_mac(Port& port, const MacAddress& m) override {
    first_macs.push_back({port.id(), m});
  }
  void on_duplicate_mac(const MacAddress& m, Port& was, Port& now, uint64_t count) override {
    dups.push_back({m, was.id(), now.id(), count, *clock, sw->counters().dup_mac_events});
  }
  void on_mac_spoof(Port& in, const MacAddress& m, Port& owner) override {
    spoofs.push_back({in.id(), m, owner.id(), sw->counters().mac_spoofs});
    if (watch != nullptr) watched_got.push_back(watch->got.size());
  }

  const Millis* clock = nullptr;
  const L2Switch* sw = nullptr;
  const FakePort* watch = nullptr;  // frames it had been given at each on_mac_spoof()
  std::vector<size_t> watched_got;
  std::vector<FirstMac> first_macs;
  std::vector<DupReport> dups;
  std::vector<Spoof> spoofs;
};

SwitchConfig test_config() {
  SwitchConfig c;
  c.mac.max_entries = 64;
  c.mac.age_ms = 60'000;
  c.mac.flap_window_ms = 10'000;
  c.mac.seed = 0x1234;
  c.dup_report_interval_ms = 1'000;
  return c;
}

class L2SwitchTest : public testing::Test {
 protected:
  L2SwitchTest() : sw_(test_config()) {
    events_.clock = &now_;
    events_.sw = &sw_;
    sw_.set_events(&events_);
    for (FakePort* p : {&a_, &b_, &c_}) sw_.attach(*p);
  }

  void send(FakePort& in, const MacAddress& dst, const MacAddress& src, uint32_t tag) {
    const Frame f = frames_.make(dst, src, tag);
    sw_.receive(in, f, now_);
  }

  void clear_got() {
    for (FakePort* p : {&a_, &b_, &c_}) p->got.clear();
  }

  Millis now_ = 1'000;
  RecordingEvents events_;
  L2Switch sw_;
  FrameFactory frames_;
  FakePort a_{"fake:a"};
  FakePort b_{"fake:b"};
  FakePort c_{"fake:c"};
};

using Tags = std::vector<uint32_t>;

TEST_F(L2SwitchTest, AssignsDenseIdsFromZero) {
  EXPECT_EQ(a_.id(), 0u);
  EXPECT_EQ(b_.id(), 1u);
  EXPECT_EQ(c_.id(), 2u);
  EXPECT_EQ(sw_.port_count(), 3u);
  EXPECT_EQ(sw_.port(0), &a_);
  EXPECT_EQ(sw_.port(2), &c_);
  EXPECT_EQ(sw_.port(3), nullptr);
}

TEST_F(L2SwitchTest, FloodsBroadcastToEveryPortButSource) {
  send(a_, kBroadcast, kA, 1);
  EXPECT_EQ(a_.tags(), Tags{});
  EXPECT_EQ(b_.tags(), Tags{1});
  EXPECT_EQ(c_.tags(), Tags{1});
  EXPECT_EQ(sw_.counters().flooded, 1u);
  EXPECT_EQ(sw_.counters().unicast, 0u);
  EXPECT_EQ(sw_.counters().frames_in, 1u);
}

TEST_F(L2SwitchTest, FloodsMulticastToEveryPortButSource) {
  send(c_, kMulticast, kC, 2);
  send(c_, kIpv6Multicast, kC, 3);
  EXPECT_EQ(a_.tags(), (Tags{2, 3}));
  EXPECT_EQ(b_.tags(), (Tags{2, 3}));
  EXPECT_EQ(c_.tags(), Tags{});
}

TEST_F(L2SwitchTest, FloodsUnknownUnicast) {
  send(b_, kUnknown, kB, 7);
  EXPECT_EQ(a_.tags(), Tags{7});
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{7});
  EXPECT_EQ(sw_.counters().flooded, 1u);
}

TEST_F(L2SwitchTest, LearnsSourceAndSendsKnownUnicastToThatPortOnly) {
  send(a_, kBroadcast, kA, 1);
  EXPECT_EQ(sw_.macs().lookup(kA, kDefaultVlan, now_), a_.id());
  clear_got();
  send(c_, kA, kC, 2);
  EXPECT_EQ(a_.tags(), Tags{2});
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{});
  EXPECT_EQ(sw_.counters().unicast, 1u);
  EXPECT_EQ(sw_.counters().flooded, 1u);
  // And the reply goes back only to c, which was learned from that frame.
  send(a_, kC, kA, 3);
  EXPECT_EQ(c_.tags(), Tags{3});
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(sw_.counters().unicast, 2u);
}

// Unicast groups (l2_switch.h): consecutive frames for one port go in one enqueue_burst() call
// (a lone one through enqueue()); a frame elsewhere or a flood ends the group, and every port
// still sees its frames in order.
TEST_F(L2SwitchTest, ConsecutiveUnicastFramesOfABurstReachTheirPortTogetherInOrder) {
  send(b_, kBroadcast, kB, 100);
  send(c_, kBroadcast, kC, 101);
  clear_got();
  std::vector<Frame> burst;
  for (uint32_t t : {1, 2, 3}) burst.push_back(frames_.make(kB, kA, t));
  for (uint32_t t : {4, 5}) burst.push_back(frames_.make(kC, kA, t));
  burst.push_back(frames_.make(kB, kA, 6));
  burst.push_back(frames_.make(kBroadcast, kA, 7));
  for (uint32_t t : {8, 9}) burst.push_back(frames_.make(kB, kA, t));
  b_.bursts.clear();
  c_.bursts.clear();
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{1, 2, 3, 6, 7, 8, 9}));
  EXPECT_EQ(c_.tags(), (Tags{4, 5, 7}));
  // The lone 6 and the flooded 7 came through enqueue().
  EXPECT_EQ(b_.bursts, (std::vector<size_t>{3, 2}));
  EXPECT_EQ(c_.bursts, (std::vector<size_t>{2}));
  EXPECT_EQ(sw_.counters().unicast, 8u);
  EXPECT_EQ(sw_.counters().flooded, 3u);
  // The frames still travel as views of the received ones.
  ASSERT_EQ(b_.got.size(), 7u);
  EXPECT_EQ(b_.got[0].wire, burst[0].wire);
  EXPECT_EQ(b_.got[6].wire, burst[8].wire);
}

// A dropped frame between two for the same port ends the group (the group is a stretch of the
// burst); nothing dropped is handed on.
TEST_F(L2SwitchTest, ADroppedFrameEndsAUnicastGroup) {
  send(b_, kBroadcast, kB, 100);
  clear_got();
  b_.bursts.clear();
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kB, kA, 1));
  burst.push_back(frames_.make(kB, kMulticast, 2));  // a multicast source: drop_bad_source
  burst.push_back(frames_.make(kB, kA, 3));
  burst.push_back(frames_.make(kB, kA, 4));
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{1, 3, 4}));
  EXPECT_EQ(b_.bursts, (std::vector<size_t>{2}));  // 1 alone, through enqueue()
  EXPECT_EQ(a_.counters().drop_bad_source, 1u);
}

// An Events callback may change the ports: before it runs, every frame the burst forwarded
// so far has reached its port.
TEST_F(L2SwitchTest, AnEventsCallbackRunsAfterTheEarlierFramesOfItsBurstReachedTheirPort) {
  send(b_, kBroadcast, kB, 100);
  sw_.pin_mac(c_, kC, now_);
  clear_got();
  events_.watch = &b_;
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kB, kA, 1));
  burst.push_back(frames_.make(kB, kA, 2));
  burst.push_back(frames_.make(kB, kC, 3));  // c's pinned MAC from a: dropped, reported
  burst.push_back(frames_.make(kB, kA, 4));
  sw_.receive(a_, burst, now_);
  ASSERT_EQ(events_.spoofs.size(), 1u);
  EXPECT_EQ(events_.watched_got, (std::vector<size_t>{2}));
  EXPECT_EQ(b_.tags(), (Tags{1, 2, 4}));
}

// With capture on, every frame is queued through queue() (one egress() each), not grouped.
TEST_F(L2SwitchTest, WithCaptureEveryUnicastFrameIsSeenAndQueuedOnItsOwn) {
  struct Egress : L2Switch::CaptureHook {
    void ingress(const Port&, const Frame&) override {}
    void egress(const Port& out, const Frame& f) override { seen.push_back({out.id(), f.wire}); }
    std::vector<std::pair<PortId, const uint8_t*>> seen;
  } hook;
  send(b_, kBroadcast, kB, 100);
  clear_got();
  b_.bursts.clear();
  sw_.set_capture_hook(&hook);
  std::vector<Frame> burst;
  for (uint32_t t : {1, 2, 3}) burst.push_back(frames_.make(kB, kA, t));
  sw_.receive(a_, burst, now_);
  sw_.set_capture_hook(nullptr);
  EXPECT_EQ(b_.tags(), (Tags{1, 2, 3}));
  EXPECT_TRUE(b_.bursts.empty());
  ASSERT_EQ(hook.seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(hook.seen[i].first, b_.id());
    EXPECT_EQ(hook.seen[i].second, burst[i].wire);
  }
}

// The same-head path (l2_switch.h): frames with the head of the one before them are counted and
// delivered exactly as the per-frame path would.
TEST_F(L2SwitchTest, FramesWithTheHeadOfTheOneBeforeAreCountedAndDeliveredAsEveryOther) {
  send(b_, kBroadcast, kB, 100);
  send(c_, kBroadcast, kC, 101);
  clear_got();
  b_.bursts.clear();
  const uint64_t unicast = sw_.counters().unicast;
  const uint64_t frames_in = sw_.counters().frames_in;
  std::vector<Frame> burst;
  uint64_t bytes = 0;
  for (uint32_t t = 1; t <= 6; ++t) {
    burst.push_back(frames_.make(t == 4 ? kC : kB, kA, t, 60 + t));
    bytes += 60 + t;
  }
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{1, 2, 3, 5, 6}));
  EXPECT_EQ(c_.tags(), (Tags{4}));
  EXPECT_EQ(b_.bursts, (std::vector<size_t>{3, 2}));
  EXPECT_EQ(sw_.counters().unicast - unicast, 6u);
  EXPECT_EQ(sw_.counters().frames_in - frames_in, 6u);
  EXPECT_EQ(a_.counters().rx_frames, 6u);
  EXPECT_EQ(a_.counters().rx_bytes, bytes);
  EXPECT_EQ(sw_.macs().lookup(kA, kDefaultVlan, now_), a_.id());
}

// The head that must match includes the VLAN tag: the same addresses in another VLAN are a
// different destination (here unknown, so flooded in that VLAN).
TEST_F(L2SwitchTest, TheSameAddressesInAnotherVlanAreNotTheSameHead) {
  VlanSet both;
  both.add(10);
  both.add(20);
  VlanSet twenty;
  twenty.add(20);
  sw_.set_vlans(a_, VlanMembership::make_trunk(both), now_);
  sw_.set_vlans(b_, VlanMembership::make_trunk(both), now_);
  sw_.set_vlans(c_, VlanMembership::make_trunk(twenty), now_);
  // Tagged frames: the tag where FrameFactory's EtherType was; FakePort then reads
  // (vid << 16) | tag as the tag.
  auto tagged = [&](const MacAddress& dst, const MacAddress& src, uint16_t vid, uint32_t t) {
    Frame f = frames_.make(dst, src, t);
    uint8_t* d = const_cast<uint8_t*>(f.data());
    d[12] = 0x81;
    d[13] = 0x00;
    store_be16(d + 14, vid);
    return f;
  };
  sw_.receive(b_, tagged(kBroadcast, kB, 10, 100), now_);  // kB learned in VLAN 10 only
  clear_got();
  std::vector<Frame> burst = {tagged(kB, kA, 10, 1), tagged(kB, kA, 10, 2), tagged(kB, kA, 20, 3)};
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{(10u << 16) | 1, (10u << 16) | 2, (20u << 16) | 3}));
  EXPECT_EQ(c_.tags(), (Tags{(20u << 16) | 3}));
  EXPECT_EQ(sw_.counters().flooded, 2u);  // 100 and 3
}

TEST_F(L2SwitchTest, HandsPortsTheReceivedFrameWithoutCopying) {
  const Frame f = frames_.make(kBroadcast, kA, 1);
  sw_.receive(a_, f, now_);
  ASSERT_EQ(b_.got.size(), 1u);
  ASSERT_EQ(c_.got.size(), 1u);
  EXPECT_EQ(b_.got[0].wire, f.wire);
  EXPECT_EQ(c_.got[0].wire, f.wire);
}

TEST_F(L2SwitchTest, ForwardsEachFrameOfABurstInOrder) {
  send(b_, kBroadcast, kB, 100);
  clear_got();
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kB, kA, 1));
  burst.push_back(frames_.make(kBroadcast, kA, 2));
  burst.push_back(frames_.make(kB, kA, 3));
  burst.push_back(frames_.make(kUnknown, kA, 4));
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{1, 2, 3, 4}));
  EXPECT_EQ(c_.tags(), (Tags{2, 4}));
  EXPECT_EQ(a_.tags(), Tags{});
  EXPECT_EQ(sw_.counters().frames_in, 5u);
  EXPECT_EQ(sw_.counters().unicast, 2u);
  EXPECT_EQ(sw_.counters().flooded, 3u);
}

TEST_F(L2SwitchTest, NeverSendsAFrameBackToItsSourcePort) {
  // kA and kA2 both live behind port a (e.g. a bridge inside the guest).
  send(a_, kBroadcast, kA, 1);
  send(a_, kBroadcast, kA2, 2);
  clear_got();
  send(a_, kA2, kA, 3);
  EXPECT_EQ(a_.tags(), Tags{});
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{});
  EXPECT_EQ(a_.counters().drop_same_port, 1u);
  EXPECT_EQ(b_.counters().drop_same_port, 0u);
  EXPECT_EQ(sw_.counters().unicast, 0u);
}

TEST_F(L2SwitchTest, RelearnsAStationThatMoved) {
  send(a_, kBroadcast, kA, 1);
  now_ += 100;
  send(b_, kBroadcast, kA, 2);  // the guest moved (or migrated) to port b
  EXPECT_EQ(sw_.macs().lookup(kA, kDefaultVlan, now_), b_.id());
  EXPECT_EQ(sw_.counters().mac_moves, 1u);
  clear_got();
  send(c_, kA, kC, 3);
  EXPECT_EQ(b_.tags(), Tags{3});
  EXPECT_EQ(a_.tags(), Tags{});
}

TEST_F(L2SwitchTest, StationMovedOnceIsNotReportedAsDuplicate) {
  send(a_, kBroadcast, kA, 1);
  now_ += 100;
  send(b_, kBroadcast, kA, 2);
  EXPECT_EQ(sw_.counters().mac_moves, 1u);
  EXPECT_EQ(sw_.counters().dup_mac_events, 0u);
  EXPECT_TRUE(events_.dups.empty());
  EXPECT_EQ(a_.counters().dup_mac, 0u);
  EXPECT_EQ(b_.counters().dup_mac, 0u);
}

TEST_F(L2SwitchTest, FloodsToAMacThatAgedOut) {
  send(a_, kBroadcast, kA, 1);
  clear_got();
  now_ += test_config().mac.age_ms + 1;
  send(c_, kA, kC, 2);
  EXPECT_EQ(a_.tags(), Tags{2});
  EXPECT_EQ(b_.tags(), Tags{2});
}

TEST_F(L2SwitchTest, DetachForgetsThePortsMacsAndReusesItsId) {
  auto d = std::make_unique<FakePort>("fake:d");
  const PortId d_id = sw_.attach(*d);
  EXPECT_EQ(d_id, 3u);
  EXPECT_EQ(d->id(), 3u);
  send(b_, kBroadcast, kB, 1);
  send(b_, kBroadcast, kD, 2);  // two MACs behind b
  send(*d, kBroadcast, kC, 3);
  ASSERT_EQ(sw_.macs().lookup(kB, kDefaultVlan, now_), b_.id());
  const PortId b_id = b_.id();

  sw_.detach(b_);
  EXPECT_EQ(sw_.port_count(), 3u);
  EXPECT_EQ(sw_.port(b_id), nullptr);
  EXPECT_EQ(sw_.macs().lookup(kB, kDefaultVlan, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(kD, kDefaultVlan, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(kC, kDefaultVlan, now_), d_id);
  EXPECT_EQ(sw_.macs().port_entry_count(b_id), 0u);

  // Frames to b's old MACs flood to the remaining ports, never to b.
  clear_got();
  d->got.clear();
  send(a_, kB, kA, 4);
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{4});
  EXPECT_EQ(d->tags(), Tags{4});

  // A new port takes the freed id, and is a normal port.
  FakePort e("fake:e");
  EXPECT_EQ(sw_.attach(e), b_id);
  EXPECT_EQ(e.id(), b_id);
  EXPECT_EQ(sw_.port(b_id), &e);
  EXPECT_EQ(sw_.port_count(), 4u);
  send(c_, kBroadcast, kC, 5);
  EXPECT_EQ(e.tags(), Tags{5});
  send(e, kC, kB, 6);
  EXPECT_EQ(c_.tags(), (Tags{4, 6}));
  EXPECT_EQ(sw_.macs().lookup(kB, kDefaultVlan, now_), b_id);

  // A port detached after it got frames but before flush() is not flushed (it may be gone).
  EXPECT_EQ(d->flush_count, 0);
  send(a_, kBroadcast, kA, 7);
  EXPECT_EQ(d->tags(), (Tags{4, 5, 7}));
  sw_.detach(*d);
  sw_.flush();
  EXPECT_EQ(d->flush_count, 0) << "flush() called a detached port";
  EXPECT_EQ(e.flush_count, 1);
  EXPECT_EQ(c_.flush_count, 1);
  sw_.detach(e);
}

TEST_F(L2SwitchTest, DropsFramesWithAMulticastSource) {
  send(a_, kBroadcast, kMulticast, 1);
  send(a_, kUnknown, kBroadcast, 2);
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{});
  EXPECT_EQ(a_.counters().drop_bad_source, 2u);
  EXPECT_EQ(b_.counters().drop_bad_source, 0u);
  EXPECT_EQ(sw_.macs().size(), 0u);
  EXPECT_TRUE(events_.first_macs.empty());
  EXPECT_EQ(sw_.counters().flooded, 0u);
  // A unicast frame to that multicast "source" is still flooded (it was never learned).
  send(b_, kMulticast, kB, 3);
  EXPECT_EQ(a_.tags(), Tags{3});
  EXPECT_EQ(c_.tags(), Tags{3});
}

TEST_F(L2SwitchTest, FlushesOnlyPortsThatGotFramesOncePerTurn) {
  FakePort d("fake:d");
  sw_.attach(d);
  send(b_, kBroadcast, kB, 1);
  send(b_, kBroadcast, kB, 2);
  EXPECT_EQ(a_.flush_count + b_.flush_count + c_.flush_count + d.flush_count, 0)
      << "ports must not be flushed before flush()";
  sw_.flush();
  EXPECT_EQ(a_.flush_count, 1);
  EXPECT_EQ(b_.flush_count, 0);
  EXPECT_EQ(c_.flush_count, 1);
  EXPECT_EQ(d.flush_count, 1);

  // Three unicast frames to b: only b is flushed, once.
  send(a_, kB, kA, 3);
  send(c_, kB, kC, 4);
  send(d, kB, kD, 5);
  sw_.flush();
  EXPECT_EQ(a_.flush_count, 1);
  EXPECT_EQ(b_.flush_count, 1);
  EXPECT_EQ(c_.flush_count, 1);
  EXPECT_EQ(d.flush_count, 1);

  // Nothing received: nothing flushed.
  sw_.flush();
  EXPECT_EQ(a_.flush_count + b_.flush_count + c_.flush_count + d.flush_count, 4);

  // Dropped frames (same port, bad source) flush nobody.
  send(b_, kB, kB, 6);
  send(b_, kA, kMulticast, 7);
  sw_.flush();
  EXPECT_EQ(a_.flush_count + b_.flush_count + c_.flush_count + d.flush_count, 4);
  sw_.detach(d);
}

TEST_F(L2SwitchTest, ReportsFlappingDuplicateMacRateLimited) {
  // Two guests on one MAC: kA alternates between ports a and b every 10 ms.
  struct Move {
    Millis at;
    PortId from;
    PortId to;
  };
  std::vector<Move> moves;
  PortId where = kNoPort;
  auto flap = [&](FakePort& p) {
    send(p, kBroadcast, kA, 0);
    if (where != kNoPort && where != p.id()) moves.push_back({now_, where, p.id()});
    where = p.id();
    now_ += 10;
  };
  for (int i = 0; i < 20; ++i) flap(i % 2 == 0 ? a_ : b_);  // 200 ms: within one interval
  ASSERT_GE(sw_.counters().dup_mac_events, 1u) << "20 moves in 200 ms were not seen as flapping";
  ASSERT_EQ(events_.dups.size(), 1u) << "reports within one dup_report_interval_ms";
  EXPECT_EQ(sw_.counters().dup_mac_warnings, 1u);
  const uint64_t events_first_interval = sw_.counters().dup_mac_events;
  EXPECT_LE(events_first_interval, 19u);
  EXPECT_GE(events_first_interval, 18u) << "every move after the first is a flap";

  now_ += 2'000;  // past the report interval; the MAC keeps flapping
  for (int i = 0; i < 4; ++i) flap(i % 2 == 0 ? a_ : b_);
  ASSERT_EQ(events_.dups.size(), 2u);
  EXPECT_EQ(sw_.counters().dup_mac_warnings, 2u);

  for (const DupReport& r : events_.dups) {
    EXPECT_EQ(r.mac, kA);
    // was/now are the ports of the move that triggered the report.
    const Move* m = nullptr;
    for (const Move& mv : moves) {
      if (mv.at == r.at) m = &mv;
    }
    ASSERT_NE(m, nullptr) << "report at " << r.at << " without a move at that time";
    EXPECT_EQ(r.was, m->from) << "report at " << r.at;
    EXPECT_EQ(r.now, m->to) << "report at " << r.at;
  }
  // `count` covers every event since the previous report, this one included.
  EXPECT_EQ(events_.dups[0].count, events_.dups[0].events_so_far);
  EXPECT_EQ(events_.dups[1].count, events_.dups[1].events_so_far - events_.dups[0].events_so_far);
  EXPECT_GE(events_.dups[1].count, events_first_interval - events_.dups[0].events_so_far + 1)
      << "events suppressed in the first interval were not carried into the next report";

  // Counted on both ports, and only on them.
  const uint64_t total = sw_.counters().dup_mac_events;
  EXPECT_EQ(a_.counters().dup_mac, total);
  EXPECT_EQ(b_.counters().dup_mac, total);
  EXPECT_EQ(c_.counters().dup_mac, 0u);
  EXPECT_EQ(sw_.counters().mac_moves, moves.size());
}

TEST_F(L2SwitchTest, FiresFirstMacOncePerPort) {
  send(c_, kBroadcast, kMulticast, 1);  // dropped: not a first MAC
  send(a_, kBroadcast, kA, 2);
  send(a_, kBroadcast, kA2, 3);
  send(a_, kBroadcast, kA, 4);
  send(b_, kA, kB, 5);
  send(c_, kBroadcast, kC, 6);
  send(c_, kB, kC, 7);
  ASSERT_EQ(events_.first_macs.size(), 3u);
  EXPECT_EQ(events_.first_macs[0].port, a_.id());
  EXPECT_EQ(events_.first_macs[0].mac, kA);
  EXPECT_EQ(events_.first_macs[1].port, b_.id());
  EXPECT_EQ(events_.first_macs[1].mac, kB);
  EXPECT_EQ(events_.first_macs[2].port, c_.id());
  EXPECT_EQ(events_.first_macs[2].mac, kC);
}

TEST_F(L2SwitchTest, ReportsCongestedUnicastDestinationAndStillDeliversTheFrame) {
  send(b_, kBroadcast, kB, 1);
  send(c_, kBroadcast, kC, 2);
  clear_got();
  b_.is_congested = true;
  now_ += 5;
  EXPECT_EQ(sw_.receive(a_, frames_.make(kB, kA, 3), now_), b_.id());
  EXPECT_EQ(b_.tags(), Tags{3}) << "a congested destination still gets the frame";
  EXPECT_EQ(b_.congested_asked_at, now_);
  EXPECT_EQ(b_.counters().drop_queue_full, 0u);
  // An uncongested destination: no throttling.
  EXPECT_EQ(sw_.receive(a_, frames_.make(kC, kA, 4), now_), kNoPort);
  EXPECT_EQ(c_.tags(), Tags{4});
  b_.is_congested = false;
  EXPECT_EQ(sw_.receive(a_, frames_.make(kB, kA, 5), now_), kNoPort);
}

TEST_F(L2SwitchTest, FloodsNeverThrottle) {
  send(c_, kBroadcast, kC, 1);
  clear_got();
  b_.is_congested = true;
  c_.is_congested = true;
  EXPECT_EQ(sw_.receive(a_, frames_.make(kBroadcast, kA, 2), now_), kNoPort);
  EXPECT_EQ(sw_.receive(a_, frames_.make(kMulticast, kA, 3), now_), kNoPort);
  EXPECT_EQ(sw_.receive(a_, frames_.make(kUnknown, kA, 4), now_), kNoPort);
  EXPECT_EQ(b_.tags(), (Tags{2, 3, 4}));
  EXPECT_EQ(c_.tags(), (Tags{2, 3, 4}));
}

TEST_F(L2SwitchTest, ReportsCongestionAnywhereInABurst) {
  send(b_, kBroadcast, kB, 1);
  send(c_, kBroadcast, kC, 2);
  clear_got();
  b_.is_congested = true;
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kC, kA, 3));
  burst.push_back(frames_.make(kB, kA, 4));
  burst.push_back(frames_.make(kC, kA, 5));
  burst.push_back(frames_.make(kBroadcast, kA, 6));
  EXPECT_EQ(sw_.receive(a_, burst, now_), b_.id());
  EXPECT_EQ(b_.tags(), (Tags{4, 6}));
  EXPECT_EQ(c_.tags(), (Tags{3, 5, 6}));
}

TEST_F(L2SwitchTest, AsksEachUnicastDestinationOnceABurstAfterItsFramesAreQueued) {
  send(b_, kBroadcast, kB, 1);
  send(c_, kBroadcast, kC, 2);
  clear_got();
  b_.congested_calls = 0;
  c_.congested_calls = 0;
  std::vector<Frame> burst;
  for (uint32_t i = 0; i < 6; ++i) burst.push_back(frames_.make(i % 3 == 2 ? kC : kB, kA, i));
  c_.is_congested = true;
  EXPECT_EQ(sw_.receive(a_, burst, now_), c_.id());
  EXPECT_EQ(b_.congested_calls, 1);
  EXPECT_EQ(c_.congested_calls, 1);
  EXPECT_EQ(b_.got_when_asked, 4u) << "asked before the burst's last frame for it was queued";
  EXPECT_EQ(c_.got_when_asked, 2u);
  EXPECT_EQ(a_.congested_calls, 0) << "flooding to a port never asks it";
}

// --- The burst memo: a burst sees what its own earlier frames did to the MAC table -----------

TEST_F(L2SwitchTest, ABurstSeesADestinationItsOwnEarlierFrameLearned) {
  send(a_, kBroadcast, kA, 100);
  clear_got();
  // kUnknown is looked up (flood), then learned on a by the second frame, which makes the third
  // frame one for its own input port.
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kUnknown, kA, 1));
  burst.push_back(frames_.make(kA, kUnknown, 2));
  burst.push_back(frames_.make(kUnknown, kA, 3));
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), Tags{1});
  EXPECT_EQ(c_.tags(), Tags{1});
  EXPECT_EQ(sw_.counters().flooded, 2u);  // the hello and frame 1
  EXPECT_EQ(a_.counters().drop_same_port, 2u) << "frame 3 went by a stale lookup";
}

TEST_F(L2SwitchTest, ABurstSeesADestinationThatMovedToItsInputPort) {
  send(b_, kBroadcast, kB, 100);
  clear_got();
  std::vector<Frame> burst;
  burst.push_back(frames_.make(kB, kA, 1));  // kB is on b
  burst.push_back(frames_.make(kA, kB, 2));  // now kB moves to a
  burst.push_back(frames_.make(kB, kA, 3));  // so this one stays on a
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), Tags{1});
  EXPECT_EQ(sw_.counters().mac_moves, 1u);
  EXPECT_EQ(a_.counters().drop_same_port, 2u) << "frame 3 went by a stale lookup";
}

TEST(L2SwitchBurstMemoTest, ASourceEvictedEarlierInTheBurstIsLearnedAgain) {
  SwitchConfig config = test_config();
  config.mac.max_entries = 2;
  L2Switch sw(config);
  FakePort a("fake:a");
  FakePort b("fake:b");
  sw.attach(a);
  sw.attach(b);
  FrameFactory frames;
  sw.receive(a, frames.make(kBroadcast, kA, 1), 1'000);
  sw.receive(b, frames.make(kBroadcast, kB, 2), 1'200);  // the table is full
  // kA refreshes (too soon to move it in a's LRU list); kC evicts the oldest of the tied ports'
  // entries (kA, put at a's LRU tail at 1000); kA comes back and must be learned again, evicting
  // another.
  std::vector<Frame> burst;
  burst.push_back(frames.make(kBroadcast, kA, 3));
  burst.push_back(frames.make(kBroadcast, kC, 4));
  burst.push_back(frames.make(kBroadcast, kA, 5));
  sw.receive(a, burst, 1'900);
  EXPECT_EQ(sw.counters().mac_evictions, 2u) << "the returning source was not learned again";
  EXPECT_EQ(sw.macs().lookup(kA, kDefaultVlan, 1'900), a.id());
}

TEST(L2SwitchNoEventsTest, WorksWithoutAnEventsSink) {
  L2Switch sw(test_config());
  FakePort a("fake:a");
  FakePort b("fake:b");
  sw.attach(a);
  sw.attach(b);
  FrameFactory frames;
  Millis now = 0;
  for (int i = 0; i < 10; ++i) {
    sw.receive(i % 2 == 0 ? a : b, frames.make(kBroadcast, kA, i), now);
    now += 10;
  }
  EXPECT_EQ(a.got.size(), 5u);
  EXPECT_EQ(b.got.size(), 5u);
  EXPECT_GE(sw.counters().dup_mac_events, 1u);
  sw.flush();
  EXPECT_EQ(a.flush_count, 1);
  EXPECT_EQ(b.flush_count, 1);
}

// --- Pinned MACs ------------------------------------------------------------------------------

TEST_F(L2SwitchTest, DropsAFrameFromAnotherPortWithAPinnedSourceAndReportsTheOwner) {
  sw_.pin_mac(c_, kC, now_);  // c is the gateway
  send(a_, kBroadcast, kC, 1);
  send(b_, kA, kC, 2);
  EXPECT_EQ(a_.tags(), Tags{});
  EXPECT_EQ(b_.tags(), Tags{});
  EXPECT_EQ(c_.tags(), Tags{}) << "a spoofed frame was forwarded";
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  EXPECT_EQ(b_.counters().drop_mac_spoof, 1u);
  EXPECT_EQ(c_.counters().drop_mac_spoof, 0u);
  EXPECT_EQ(a_.counters().rx_frames, 1u) << "a dropped frame was still received";
  EXPECT_EQ(sw_.counters().mac_spoofs, 2u);
  EXPECT_EQ(sw_.counters().flooded, 0u);
  EXPECT_EQ(sw_.counters().mac_moves, 0u);
  ASSERT_EQ(events_.spoofs.size(), 2u);
  EXPECT_EQ(events_.spoofs[0].in, a_.id());
  EXPECT_EQ(events_.spoofs[0].mac, kC);
  EXPECT_EQ(events_.spoofs[0].owner, c_.id());
  EXPECT_EQ(events_.spoofs[0].spoofs_so_far, 1u) << "counted before the event fired";
  EXPECT_EQ(events_.spoofs[1].in, b_.id());
  EXPECT_EQ(events_.spoofs[1].owner, c_.id());
  // A spoofed frame is not a port's first MAC, and the MAC stays with its owner.
  EXPECT_TRUE(events_.first_macs.empty());
  EXPECT_EQ(sw_.macs().lookup(kC, kDefaultVlan, now_), c_.id());

  // Traffic to the gateway's MAC still reaches the gateway only.
  send(a_, kC, kA, 3);
  EXPECT_EQ(c_.tags(), Tags{3});
  EXPECT_EQ(b_.tags(), Tags{});
  // The gateway itself sends from its MAC as usual.
  send(c_, kA, kC, 4);
  EXPECT_EQ(a_.tags(), Tags{4});
  EXPECT_EQ(c_.counters().drop_mac_spoof, 0u);
  EXPECT_EQ(sw_.counters().mac_spoofs, 2u);
  EXPECT_EQ(events_.spoofs.size(), 2u);
}

TEST_F(L2SwitchTest, DropsOnlyTheSpoofedFramesOfABurst) {
  sw_.pin_mac(c_, kC, now_);
  std::vector<Frame> burst = {frames_.make(kBroadcast, kA, 1), frames_.make(kBroadcast, kC, 2),
                              frames_.make(kBroadcast, kA, 3)};
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(b_.tags(), (Tags{1, 3}));
  EXPECT_EQ(c_.tags(), (Tags{1, 3}));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  EXPECT_EQ(a_.counters().rx_frames, 3u);
}

TEST_F(L2SwitchTest, APinnedMacNeverAgesOutOfTheSwitch) {
  sw_.pin_mac(c_, kC, now_);
  send(a_, kBroadcast, kA, 1);
  now_ += 10 * test_config().mac.age_ms;
  sw_.expire(now_);
  EXPECT_EQ(sw_.macs().lookup(kA, kDefaultVlan, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(kC, kDefaultVlan, now_), c_.id());
  clear_got();
  send(a_, kC, kA, 2);
  EXPECT_EQ(c_.tags(), Tags{2}) << "a frame to the gateway was flooded";
  EXPECT_EQ(b_.tags(), Tags{});
  send(b_, kBroadcast, kC, 3);
  EXPECT_EQ(b_.counters().drop_mac_spoof, 1u);
}

TEST_F(L2SwitchTest, APinnedMacIsReleasedWhenItsPortDetaches) {
  FakePort gw("fake:gw");
  sw_.attach(gw);
  sw_.pin_mac(gw, kD, now_);
  send(a_, kBroadcast, kD, 1);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  sw_.detach(gw);
  clear_got();
  send(a_, kBroadcast, kD, 2);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u) << "the pin outlived its port";
  EXPECT_EQ(b_.tags(), Tags{2});
  EXPECT_EQ(sw_.macs().lookup(kD, kDefaultVlan, now_), a_.id());
}

TEST_F(L2SwitchTest, PinningAMacAGuestAlreadyUsesTakesItBack) {
  send(a_, kBroadcast, kC, 1);  // a guest on a sends from what will be the gateway's MAC
  ASSERT_EQ(sw_.macs().lookup(kC, kDefaultVlan, now_), a_.id());
  sw_.pin_mac(c_, kC, now_);
  EXPECT_EQ(sw_.macs().lookup(kC, kDefaultVlan, now_), c_.id());
  clear_got();
  send(b_, kC, kB, 2);
  EXPECT_EQ(c_.tags(), Tags{2});
  EXPECT_EQ(a_.tags(), Tags{});
  send(a_, kBroadcast, kC, 3);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
}

TEST(L2SwitchNoEventsTest, CountsSpoofsWithoutAnEventsSink) {
  L2Switch sw(test_config());
  FakePort a("fake:a");
  FakePort gw("fake:gw");
  sw.attach(a);
  sw.attach(gw);
  sw.pin_mac(gw, kC, 0);
  FrameFactory frames;
  sw.receive(a, frames.make(kBroadcast, kC, 1), 0);
  EXPECT_EQ(a.counters().drop_mac_spoof, 1u);
  EXPECT_EQ(sw.counters().mac_spoofs, 1u);
  EXPECT_TRUE(gw.got.empty());
}

// --- Receive memory relief ---------------------------------------------------------------------

TEST_F(L2SwitchTest, ReliefAsksEveryAttachedPortToReleaseThatPool) {
  ChunkPool pool(256, 8);
  FakePort d("fake:d");
  sw_.attach(d);
  sw_.detach(d);
  sw_.relieve(pool);
  for (FakePort* p : {&a_, &b_, &c_}) {
    ASSERT_EQ(p->released.size(), 1u) << p->describe();
    EXPECT_EQ(p->released[0], &pool) << p->describe();
  }
  EXPECT_TRUE(d.released.empty()) << "a detached port was asked";
  EXPECT_EQ(sw_.counters().chunk_reliefs, 1u);
  sw_.relieve(pool);
  EXPECT_EQ(a_.released.size(), 2u);
  EXPECT_EQ(sw_.counters().chunk_reliefs, 2u);
}

TEST_F(L2SwitchTest, IsThePressureHandlerOfAPoolThatRunsShort) {
  ChunkPool pool(256, 4);
  pool.set_pressure(&sw_);
  std::vector<RxChunk*> held;
  for (int i = 0; i < 3; ++i) held.push_back(pool.acquire());
  EXPECT_EQ(sw_.counters().chunk_reliefs, 0u);
  held.push_back(pool.acquire());  // 1 of 4 left
  EXPECT_EQ(sw_.counters().chunk_reliefs, 1u);
  ASSERT_EQ(b_.released.size(), 1u);
  EXPECT_EQ(b_.released[0], &pool);
  for (RxChunk* c : held) chunk_unref(c);
}

// A port whose peer never reads: it queues frames (with chunk references, as every real port
// does) and never writes them. release_chunks() is what LoopPort::release_output() does.
class QueuePort : public Port {
 public:
  QueuePort(std::string name, size_t max_bytes) : name_(std::move(name)), tx(max_bytes) {}
  void enqueue(const Frame& frame) override {
    if (!tx.push(frame)) counters_.drop_queue_full += 1;
  }
  void flush() override {}  // the peer never reads
  std::string describe() const override { return name_; }
  void release_chunks(const ChunkOwner& pool) override { counters_.tx_copied += tx.unpin(pool); }

 private:
  std::string name_;

 public:
  StreamTxQueue tx;
};

// A receiving port's side: frames written into chunks of its own pool, as a stream or datagram
// port does, handed to the switch, then its own chunk reference dropped.
class Sender {
 public:
  static constexpr uint32_t kChunkSize = 8 * 1024;
  static constexpr uint32_t kFramesPerChunk = 8;
  static constexpr uint32_t kFrameSize = 1000;
  explicit Sender(uint32_t max_chunks) : pool(kChunkSize, max_chunks) {}

  // Fills one chunk with frames tagged next_tag, next_tag + 1, ...; false when the pool has
  // no chunk (the port would stop reading).
  bool send_chunk(L2Switch& sw, Port& in, const MacAddress& dst, const MacAddress& src,
                  Millis now) {
    RxChunk* c = pool.acquire();
    if (c == nullptr) return false;
    std::vector<Frame> burst;
    uint8_t* at = c->data;
    for (uint32_t i = 0; i < kFramesPerChunk; ++i) {
      store_be32(at, kFrameSize);
      std::memcpy(at + 4, dst.bytes.data(), 6);
      std::memcpy(at + 10, src.bytes.data(), 6);
      at[16] = 0x08;
      at[17] = 0x00;
      for (uint32_t j = 14; j < kFrameSize; ++j) at[4 + j] = static_cast<uint8_t>(next_tag * 7 + j);
      store_be32(at + 4 + 14, next_tag++);
      burst.push_back(Frame{at, kFrameSize, 0, c, {}});
      at += kPrefixSize + kFrameSize;
    }
    sw.receive(in, burst, now);
    chunk_unref(c);  // the port moves on to its next chunk
    return true;
  }

  // The bytes a stream peer must receive for frames tagged first..first + count - 1.
  static std::vector<uint8_t> stream_of(const MacAddress& dst, const MacAddress& src,
                                        uint32_t first, uint32_t count) {
    std::vector<uint8_t> out;
    for (uint32_t t = first; t < first + count; ++t) {
      std::vector<uint8_t> f(kPrefixSize + kFrameSize);
      store_be32(f.data(), kFrameSize);
      std::memcpy(f.data() + 4, dst.bytes.data(), 6);
      std::memcpy(f.data() + 10, src.bytes.data(), 6);
      f[16] = 0x08;
      f[17] = 0x00;
      for (uint32_t j = 14; j < kFrameSize; ++j) f[4 + j] = static_cast<uint8_t>(t * 7 + j);
      store_be32(f.data() + 4 + 14, t);
      out.insert(out.end(), f.begin(), f.end());
    }
    return out;
  }

  ChunkPool pool;
  uint32_t next_tag = 0;
};

std::vector<uint8_t> described(StreamTxQueue& q) {
  std::vector<iovec> iov(1024);
  const int n = q.fill_iov(iov.data(), 1024);
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
    out.insert(out.end(), p, p + iov[i].iov_len);
  }
  return out;
}

TEST(L2SwitchReliefTest, WithoutReliefAStuckPortKeepsTheSendersPoolExhausted) {
  // The defect this mechanism fixes (issue 9, item 1), shown in the core: no pressure handler.
  L2Switch sw(test_config());
  FakePort other("fake:other");
  QueuePort stuck("stuck", 1 << 20);
  Sender a(8);
  FakePort a_port("fake:a");
  sw.attach(a_port);
  sw.attach(other);
  sw.attach(stuck);
  int chunks = 0;
  while (chunks < 100 && a.send_chunk(sw, a_port, kBroadcast, kA, 0)) ++chunks;
  EXPECT_EQ(chunks, 8) << "the stuck port holds a frame of each chunk";
  EXPECT_EQ(stuck.counters().tx_copied, 0u);
  stuck.tx.clear();
}

TEST(L2SwitchReliefTest, AStuckPortNoLongerHoldsTheSendersChunksOnceReliefCopiesThemOut) {
  L2Switch sw(test_config());
  FakePort a_port("fake:a");
  FakePort other("fake:other");  // keeps up: takes no reference
  // Room for 100 of the sender's frames (1000 bytes each).
  QueuePort stuck("stuck", 100 * Sender::kFrameSize);
  sw.attach(a_port);
  sw.attach(other);
  sw.attach(stuck);
  Sender a(8);
  a.pool.set_pressure(&sw);  // as every backend does (set_pressure(&loop.fabric()))

  constexpr int kChunks = 100;  // 800 frames: far more than the 8 chunks the pool has
  int sent = 0;
  while (sent < kChunks && a.send_chunk(sw, a_port, kBroadcast, kA, 0)) ++sent;
  EXPECT_EQ(sent, kChunks) << "the sender ran out of chunks after " << sent
                           << ": the stuck port still holds its input";
  EXPECT_EQ(other.got.size(), size_t{kChunks} * Sender::kFramesPerChunk)
      << "the port that keeps up missed frames";
  EXPECT_LE(a.pool.allocated_count(), 8u);
  EXPECT_GT(sw.counters().chunk_reliefs, 0u);
  // The stuck port kept the first 100 frames, most of them copied (relief comes only when the
  // pool runs short, so the frames of the last chunk or so may still be in place); the rest
  // were dropped as queue full.
  EXPECT_EQ(stuck.tx.count(), 100u);
  EXPECT_GE(stuck.counters().tx_copied, 90u);
  EXPECT_LE(stuck.counters().tx_copied, 100u);
  EXPECT_EQ(stuck.counters().drop_queue_full, size_t{kChunks} * Sender::kFramesPerChunk - 100);
  // Its queue still holds exactly those frames, although their chunks were reused many times.
  EXPECT_TRUE(described(stuck.tx) == Sender::stream_of(kBroadcast, kA, 0, 100))
      << "the stuck port's queued bytes changed when the sender reused its chunks";
  // The sender is not short of chunks.
  EXPECT_GT(a.pool.available_count(), a.pool.max_chunks() / 4);

  // When the stuck port reads again, it gets them in order, and the frames that came after.
  stuck.tx.consume(described(stuck.tx).size());
  EXPECT_TRUE(stuck.tx.empty());
  EXPECT_EQ(a.pool.free_count(), a.pool.allocated_count()) << "a chunk is still pinned";
  const uint32_t next = a.next_tag;
  ASSERT_TRUE(a.send_chunk(sw, a_port, kBroadcast, kA, 0));
  EXPECT_TRUE(described(stuck.tx) == Sender::stream_of(kBroadcast, kA, next, 8));
  stuck.tx.clear();
}

TEST(L2SwitchReliefTest, ReliefCopiesOnlyFromTheSenderThatRunsShort) {
  // Two senders; only one runs short. The other's frames stay zero copy in the stuck queue.
  L2Switch sw(test_config());
  FakePort a_port("fake:a");
  FakePort b_port("fake:b");
  QueuePort stuck("stuck", 1 << 20);
  sw.attach(a_port);
  sw.attach(b_port);
  sw.attach(stuck);
  Sender a(8);
  Sender b(64);
  a.pool.set_pressure(&sw);
  b.pool.set_pressure(&sw);
  // b sends first, then a: b's frames come before a's in the stuck queue (and are copied with
  // them, in order); b's frames after a's last one are not.
  ASSERT_TRUE(b.send_chunk(sw, b_port, kBroadcast, kB, 0));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(a.send_chunk(sw, a_port, kBroadcast, kA, 0));
  ASSERT_TRUE(b.send_chunk(sw, b_port, kBroadcast, kB, 0));
  EXPECT_EQ(stuck.counters().tx_copied, 0u) << "a has 2 of 8 chunks left: no relief yet";
  ASSERT_TRUE(a.send_chunk(sw, a_port, kBroadcast, kA, 0));  // asks for relief first
  EXPECT_EQ(sw.counters().chunk_reliefs, 1u);
  EXPECT_EQ(stuck.counters().tx_copied, 8u + 6u * 8u) << "b's first chunk and a's six";
  EXPECT_EQ(a.pool.free_count(), a.pool.allocated_count() - 1)
      << "only a's newest chunk is still held (by the stuck queue)";
  EXPECT_EQ(b.pool.allocated_count(), 2u);
  EXPECT_EQ(b.pool.free_count(), 1u)
      << "b's first chunk must be back (its frames were copied), its second still in use";
  std::vector<uint8_t> want = Sender::stream_of(kBroadcast, kB, 0, 8);
  for (const auto& part :
       {Sender::stream_of(kBroadcast, kA, 0, 48), Sender::stream_of(kBroadcast, kB, 8, 8),
        Sender::stream_of(kBroadcast, kA, 48, 8)}) {
    want.insert(want.end(), part.begin(), part.end());
  }
  EXPECT_TRUE(described(stuck.tx) == want);
  stuck.tx.clear();
}

}  // namespace
TEST(L2SwitchReliefTest, APortThatGoesAwayLeavesNoChunkPinnedInAStuckQueue) {
  // Found by the churn soak: every port that joined, sent a broadcast and left kept its whole
  // receive chunk alive in the stuck port's queue (an orphaned chunk per departed port).
  L2Switch sw(test_config());
  FakePort a_port("fake:a");
  QueuePort stuck("stuck", 1 << 20);
  sw.attach(a_port);
  sw.attach(stuck);
  {
    Sender a(8);
    a.pool.set_pressure(&sw);
    ASSERT_TRUE(a.send_chunk(sw, a_port, kBroadcast, kA, 0));
    EXPECT_EQ(stuck.counters().tx_copied, 0u);
  }  // the port and its pool go away
  EXPECT_EQ(stuck.counters().tx_copied, uint64_t{Sender::kFramesPerChunk});
  EXPECT_EQ(sw.counters().chunk_reliefs, 1u);
  EXPECT_TRUE(described(stuck.tx) == Sender::stream_of(kBroadcast, kA, 0, Sender::kFramesPerChunk));
  stuck.tx.clear();
}

}  // namespace qswitch::sw

namespace qswitch::sw {
namespace {

// A port that keeps a copy of every frame and its offload state; `caps` as a port kind sets them.
class CopyingPort : public Port {
 public:
  explicit CopyingPort(uint8_t caps) { set_offload_caps(caps); }
  void enqueue(const Frame& frame) override {
    frames.emplace_back(frame.data(), frame.data() + frame.size);
    offloads.push_back(frame.offload);
  }
  void flush() override {}
  std::string describe() const override { return "copying"; }
  std::vector<std::vector<uint8_t>> frames;
  std::vector<FrameOffload> offloads;
};

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) { return load_be32(p); }

// Ethernet, IPv4 (20), TCP (20, PSH|ACK), `payload` bytes: one TCPv4 segment a guest left to
// TSO with gso_size `mss`.
Frame tso_frame(std::vector<uint8_t>& b, const MacAddress& dst, const MacAddress& src,
                uint32_t payload, uint16_t mss) {
  const uint32_t size = 14 + 20 + 20 + payload;
  b.assign(kPrefixSize + size, 0);
  uint8_t* f = b.data() + kPrefixSize;
  store_be32(b.data(), size);
  std::memcpy(f, dst.bytes.data(), 6);
  std::memcpy(f + 6, src.bytes.data(), 6);
  f[12] = 0x08;
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>((20 + 20 + payload) >> 8);
  ip[3] = static_cast<uint8_t>(20 + 20 + payload);
  ip[4] = 0x12;  // id 0x1234
  ip[5] = 0x34;
  ip[6] = 0x40;  // DF
  ip[8] = 64;
  ip[9] = 6;
  const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
  std::memcpy(ip + 12, addrs, 8);
  uint8_t* tcp = ip + 20;
  tcp[0] = 0x9c;  // port 40000 -> 5201
  tcp[1] = 0x40;
  tcp[2] = 0x14;
  tcp[3] = 0x51;
  store_be32(tcp + 4, 1000);  // seq
  tcp[12] = 5 << 4;
  tcp[13] = 0x18;  // PSH|ACK
  for (uint32_t i = 0; i < payload; ++i) tcp[20 + i] = static_cast<uint8_t>(i * 7);
  Frame frame{b.data(), size, 0, nullptr, {}};
  frame.offload.gso = FrameOffload::kGsoTcpV4;
  frame.offload.gso_size = mss;
  frame.offload.flags = FrameOffload::kNeedsCsum;
  frame.offload.csum_start = 34;
  frame.offload.csum_offset = 16;
  return frame;
}

TEST(L2SwitchOffloadTest, ALargeSegmentGoesWholeToAPortThatTakesItAndCutToTheOthers) {
  L2Switch sw(SwitchConfig{});
  FakePort in("in");
  CopyingPort plain(0);
  CopyingPort tso(Port::kTakesTso4);
  CopyingPort tso6_only(Port::kTakesTso6);
  sw.attach(in);
  sw.attach(plain);
  sw.attach(tso);
  sw.attach(tso6_only);
  std::vector<uint8_t> bytes;
  const Frame big = tso_frame(bytes, kBroadcast, kA, 4000, 1448);
  EXPECT_EQ(sw.receive(in, big, 0), kNoPort);

  // Whole, with its offload state, to the port that takes TCPv4 segments.
  ASSERT_EQ(tso.frames.size(), 1u);
  EXPECT_EQ(tso.frames[0].size(), big.size);
  EXPECT_EQ(tso.offloads[0], big.offload);
  // Cut, as three ordinary frames, to the others (a TSO6 port takes no TCPv4 segment).
  for (CopyingPort* p : {&plain, &tso6_only}) {
    ASSERT_EQ(p->frames.size(), 3u);
    const uint32_t sizes[3] = {1448, 1448, 1104};
    uint32_t seq = 1000;
    for (size_t i = 0; i < 3; ++i) {
      const std::vector<uint8_t>& s = p->frames[i];
      ASSERT_EQ(s.size(), 54u + sizes[i]) << i;
      EXPECT_FALSE(p->offloads[i].any());
      EXPECT_EQ(be16(&s[14 + 2]), 40u + sizes[i]) << "IPv4 total length of segment " << i;
      EXPECT_EQ(be16(&s[14 + 4]), 0x1234u + i) << "IPv4 id of segment " << i;
      EXPECT_EQ(be32(&s[34 + 4]), seq) << "TCP seq of segment " << i;
      EXPECT_EQ(s[34 + 13] & 0x08, i == 2 ? 0x08 : 0) << "PSH only on the last segment";
      EXPECT_EQ(std::memcmp(&s[54], &bytes[kPrefixSize + 54 + (seq - 1000)], sizes[i]), 0);
      seq += sizes[i];
    }
  }
  EXPECT_EQ(plain.frames, tso6_only.frames);  // cut once, the same segments for both
  const SwitchCounters c = sw.counters();
  EXPECT_EQ(c.gso_cut, 1u);
  EXPECT_EQ(c.gso_segments, 3u);
  EXPECT_EQ(c.gso_dropped, 0u);

  // The next frame is cut afresh (not the cached segments of the first).
  std::vector<uint8_t> bytes2;
  const Frame second = tso_frame(bytes2, kBroadcast, kA, 2000, 1000);
  sw.receive(in, second, 1);
  ASSERT_EQ(plain.frames.size(), 5u);
  EXPECT_EQ(plain.frames[3].size(), 54u + 1000);
  EXPECT_EQ(sw.counters().gso_cut, 2u);
}

TEST(L2SwitchOffloadTest, EcnSegmentsNeedAPortThatTakesEcn) {
  L2Switch sw(SwitchConfig{});
  FakePort in("in");
  CopyingPort no_ecn(Port::kTakesTso4);
  CopyingPort ecn(Port::kTakesTso4 | Port::kTakesEcn);
  sw.attach(in);
  sw.attach(no_ecn);
  sw.attach(ecn);
  std::vector<uint8_t> bytes;
  Frame big = tso_frame(bytes, kBroadcast, kA, 3000, 1448);
  big.offload.gso |= FrameOffload::kGsoEcn;
  sw.receive(in, big, 0);
  EXPECT_EQ(ecn.frames.size(), 1u);
  EXPECT_EQ(no_ecn.frames.size(), 3u);
}

}  // namespace
}  // namespace qswitch::sw
