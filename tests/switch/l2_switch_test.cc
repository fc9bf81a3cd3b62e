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
#include "switch/l2_switch.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

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
  void flush() override { ++flush_count; }
  std::string describe() const override { return name_; }
  bool congested(Millis now) override {
    congested_asked_at = now;
    return is_congested;
  }

  std::vector<uint32_t> tags() const {
    std::vector<uint32_t> t;
    for (const Got& g : got) t.push_back(g.tag);
    return t;
  }

  std::vector<Got> got;
  int flush_count = 0;
  bool is_congested = false;
  mutable Millis congested_asked_at = -1;

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
    return Frame{b.data(), size, nullptr};
  }

 private:
  std::deque<std::vector<uint8_t>> storage_;
};

struct FirstMac {
  PortId port;
  MacAddress mac;
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

  const Millis* clock = nullptr;
  const L2Switch* sw = nullptr;
  std::vector<FirstMac> first_macs;
  std::vector<DupReport> dups;
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
  EXPECT_EQ(sw_.macs().lookup(kA, 0, now_), a_.id());
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
  EXPECT_EQ(sw_.macs().lookup(kA, 0, now_), b_.id());
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
  ASSERT_EQ(sw_.macs().lookup(kB, 0, now_), b_.id());
  const PortId b_id = b_.id();

  sw_.detach(b_);
  EXPECT_EQ(sw_.port_count(), 3u);
  EXPECT_EQ(sw_.port(b_id), nullptr);
  EXPECT_EQ(sw_.macs().lookup(kB, 0, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(kD, 0, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(kC, 0, now_), d_id);
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
  EXPECT_EQ(sw_.macs().lookup(kB, 0, now_), b_id);

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
  EXPECT_EQ(sw_.counters().dup_mac_reports, 1u);
  const uint64_t events_first_interval = sw_.counters().dup_mac_events;
  EXPECT_LE(events_first_interval, 19u);
  EXPECT_GE(events_first_interval, 18u) << "every move after the first is a flap";

  now_ += 2'000;  // past the report interval; the MAC keeps flapping
  for (int i = 0; i < 4; ++i) flap(i % 2 == 0 ? a_ : b_);
  ASSERT_EQ(events_.dups.size(), 2u);
  EXPECT_EQ(sw_.counters().dup_mac_reports, 2u);

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

}  // namespace
}  // namespace qswitch::sw
