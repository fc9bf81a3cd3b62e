// tests/switch/vlan_test.cc: 802.1Q VLANs in the switch core (switch/vlan.h, l2_switch.h):
// the VLAN list syntax, classification and its drops, learning and flooding per VLAN, tags
// pushed and popped at trunk edges (every byte checked, sizes around 60 and the largest frame),
// priority bits, the native VLAN, offloads and split frames through a retag.
//
// Theory of operation
// - BytesPort records every frame it is handed as the bytes it would write (a split frame's
//   head and tail joined), with the wire pointer (to see when a frame went as it came, without a
//   copy, and when ports share one variant) and the frame's offload state.
// - Frames are built byte by byte here (untagged, tagged with a TCI, priority-tagged) with a
//   counting pattern as payload, so a pushed or popped frame is compared with the frame the test
//   expects, not with what the switch made of it.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "switch/l2_switch.h"
#include "switch/vlan.h"

namespace qswitch::sw {
namespace {

using Bytes = std::vector<uint8_t>;

struct Got {
  Bytes bytes;
  const uint8_t* wire;
  FrameOffload offload;
};

class BytesPort : public Port {
 public:
  explicit BytesPort(std::string name, uint8_t caps = 0) : name_(std::move(name)) {
    set_offload_caps(caps);
  }
  void enqueue(const Frame& f) override {
    Bytes b(f.data(), f.data() + (f.split() ? f.head : f.size));
    if (f.split()) b.insert(b.end(), f.tail(), f.tail() + (f.size - f.head));
    got.push_back(Got{std::move(b), f.wire, f.offload});
  }
  void flush() override {}
  std::string describe() const override { return name_; }
  void allow_split() { set_takes_split(true); }

  std::vector<Got> got;

 private:
  std::string name_;
};

MacAddress mac(uint8_t last) { return MacAddress{{0x52, 0x54, 0, 0, 0, last}}; }
const MacAddress kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// An untagged frame of `size` bytes: MACs, EtherType 0x0800, then bytes counting from `seed`.
Bytes untagged(const MacAddress& dst, const MacAddress& src, uint32_t size, uint8_t seed = 0) {
  Bytes b(size);
  std::memcpy(b.data(), dst.bytes.data(), 6);
  std::memcpy(b.data() + 6, src.bytes.data(), 6);
  b[12] = 0x08;
  b[13] = 0x00;
  for (uint32_t i = 14; i < size; ++i) b[i] = static_cast<uint8_t>(i + seed);
  return b;
}

// `frame` with a tag (TCI `tci`) inserted after the MACs.
Bytes push_tag(const Bytes& frame, uint16_t tci) {
  Bytes b(frame.begin(), frame.begin() + 12);
  b.push_back(0x81);
  b.push_back(0x00);
  b.push_back(static_cast<uint8_t>(tci >> 8));
  b.push_back(static_cast<uint8_t>(tci));
  b.insert(b.end(), frame.begin() + 12, frame.end());
  return b;
}

VlanSet vlans(std::string_view text) {
  VlanSet s;
  std::string error;
  EXPECT_TRUE(parse_vlan_list(text, s, error)) << error;
  return s;
}

SwitchConfig test_config() {
  SwitchConfig c;
  c.mac.max_entries = 64;
  c.mac.seed = 0x1234;
  return c;
}

class VlanSwitchTest : public testing::Test {
 protected:
  // A frame in stream framing, alive for the whole test.
  Frame frame(const Bytes& bytes) {
    Bytes& w = storage_.emplace_back(kPrefixSize + bytes.size());
    store_be32(w.data(), static_cast<uint32_t>(bytes.size()));
    std::memcpy(w.data() + kPrefixSize, bytes.data(), bytes.size());
    return Frame{w.data(), static_cast<uint32_t>(bytes.size()), 0, nullptr, {}};
  }
  void send(Port& in, const Bytes& bytes) { sw_.receive(in, frame(bytes), now_); }
  void attach(BytesPort& p, const VlanMembership& m) {
    sw_.set_vlans(p, m, now_);
    sw_.attach(p);
  }

  Millis now_ = 1'000;
  L2Switch sw_{test_config()};
  std::deque<Bytes> storage_;
};

TEST(VlanListTest, ParsesIdsAndRangesAndPrintsThemBack) {
  VlanSet s;
  std::string error;
  ASSERT_TRUE(parse_vlan_list("10,20-22,4094,1", s, error)) << error;
  EXPECT_TRUE(s.has(1));
  EXPECT_TRUE(s.has(10));
  EXPECT_TRUE(s.has(21));
  EXPECT_TRUE(s.has(4094));
  EXPECT_FALSE(s.has(11));
  EXPECT_FALSE(s.has(23));
  EXPECT_EQ(s.count(), 6u);
  EXPECT_EQ(s.to_string(), "1,10,20-22,4094");
  EXPECT_EQ(VlanMembership::access(10).to_string(), "access 10");
  EXPECT_EQ(VlanMembership::make_trunk(s).to_string(), "trunk 1,10,20-22,4094");
  EXPECT_EQ(VlanMembership::make_trunk(vlans("5-7"), 1).to_string(), "trunk 5-7 native 1");
}

TEST(VlanListTest, RefusesWhatIsNotAVlanIdNamingItAndTheRange) {
  for (const char* bad : {"0", "4095", "5000", "x", "", "10,", ",10", "1-", "-5", "20-10", "1 0",
                          "99999", "10,abc"}) {
    VlanSet s;
    s.add(7);
    std::string error;
    EXPECT_FALSE(parse_vlan_list(bad, s, error)) << bad;
    EXPECT_TRUE(error.find("1..4094") != std::string::npos ||
                error.find("empty range") != std::string::npos)
        << bad << ": " << error;
    EXPECT_EQ(s.count(), 1u) << bad << ": a refused list left the set changed";
  }
  uint16_t id = 0;
  std::string error;
  EXPECT_FALSE(parse_vlan_id("4095", id, error));
  EXPECT_EQ(error, "\"4095\" is not a VLAN id (1..4094)");
  ASSERT_TRUE(parse_vlan_id("4094", id, error));
  EXPECT_EQ(id, 4094);
}

TEST_F(VlanSwitchTest, PortsWithoutVlanSettingsAreOneSegmentOnVlan1) {
  BytesPort a("a"), b("b"), c("c");
  for (BytesPort* p : {&a, &b, &c}) sw_.attach(*p);
  EXPECT_EQ(a.vlans(), VlanMembership::access(1));
  const Bytes f = untagged(kBroadcast, mac(1), 64);
  send(a, f);
  ASSERT_EQ(b.got.size(), 1u);
  ASSERT_EQ(c.got.size(), 1u);
  EXPECT_EQ(b.got[0].bytes, f);
  EXPECT_EQ(b.got[0].wire, c.got[0].wire);  // the frame as it came, no copy
  uint16_t learned_vlan = 0;
  sw_.macs().for_each([&](const MacEntryView& e) { learned_vlan = e.vlan; });
  EXPECT_EQ(learned_vlan, 1);
  EXPECT_EQ(sw_.counters().vlan_tag_pushes + sw_.counters().vlan_tag_pops, 0u);
}

TEST_F(VlanSwitchTest, AccessPortsOfOtherVlansNeverSeeAFrame) {
  BytesPort a("a"), b("b"), c("c"), d("d");
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(10));
  attach(c, VlanMembership::access(20));
  attach(d, VlanMembership::access(20));
  send(a, untagged(kBroadcast, mac(1), 64));
  send(a, untagged(mac(99), mac(1), 64));  // unknown unicast floods in its VLAN only
  send(c, untagged(kBroadcast, mac(3), 64));
  EXPECT_EQ(b.got.size(), 2u);
  EXPECT_EQ(c.got.size(), 0u);
  EXPECT_EQ(d.got.size(), 1u);
  EXPECT_EQ(a.got.size(), 0u);
  // A known MAC of VLAN 10 is unknown in VLAN 20: c's frame to it floods to d only.
  send(c, untagged(mac(1), mac(3), 64));
  EXPECT_EQ(a.got.size(), 0u);
  EXPECT_EQ(d.got.size(), 2u);
}

TEST_F(VlanSwitchTest, LearnsPerVlanSoOneMacMayLiveInTwoVlans) {
  BytesPort a("a"), b("b"), c("c"), d("d");
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(10));
  attach(c, VlanMembership::access(20));
  attach(d, VlanMembership::access(20));
  send(a, untagged(kBroadcast, mac(7), 64));  // mac 7 in VLAN 10 on a
  send(c, untagged(kBroadcast, mac(7), 64));  // and in VLAN 20 on c: not a move
  EXPECT_EQ(sw_.counters().mac_moves, 0u);
  EXPECT_EQ(sw_.macs().lookup(mac(7), 10, now_), a.id());
  EXPECT_EQ(sw_.macs().lookup(mac(7), 20, now_), c.id());
  b.got.clear();
  d.got.clear();
  send(b, untagged(mac(7), mac(8), 64));
  send(d, untagged(mac(7), mac(9), 64));
  ASSERT_EQ(a.got.size(), 1u);
  ASSERT_EQ(c.got.size(), 1u);
  EXPECT_EQ(MacAddress::from_wire(a.got[0].bytes.data() + 6), mac(8));
  EXPECT_EQ(MacAddress::from_wire(c.got[0].bytes.data() + 6), mac(9));
}

TEST_F(VlanSwitchTest, AnAccessFrameLeavesATrunkTaggedWithItsVlanAndPriorityZero) {
  BytesPort a("a"), b("b"), t("t");
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10,20")));
  const Bytes f = untagged(kBroadcast, mac(1), 100);
  send(a, f);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(f, 10));
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].bytes, f);
  EXPECT_EQ(sw_.counters().vlan_tag_pushes, 1u);
}

TEST_F(VlanSwitchTest, ATaggedFrameLeavesAnAccessPortUntagged) {
  BytesPort a("a"), t("t");
  attach(a, VlanMembership::access(20));
  attach(t, VlanMembership::make_trunk(vlans("10,20")));
  const Bytes inner = untagged(kBroadcast, mac(2), 200);
  send(t, push_tag(inner, (5 << 13) | 20));
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].bytes, inner);
  EXPECT_EQ(sw_.counters().vlan_tag_pops, 1u);
}

TEST_F(VlanSwitchTest, APopThatLeavesLessThan60BytesIsPaddedWithZeros) {
  BytesPort a("a"), t("t");
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  for (uint32_t tagged_size = 18; tagged_size <= 68; ++tagged_size) {
    a.got.clear();
    const Bytes inner =
        untagged(kBroadcast, mac(2), tagged_size - 4, static_cast<uint8_t>(tagged_size));
    send(t, push_tag(inner, 10));
    ASSERT_EQ(a.got.size(), 1u) << tagged_size;
    Bytes expected = inner;
    if (expected.size() < kPadFrameSize) expected.resize(kPadFrameSize, 0);
    EXPECT_EQ(a.got[0].bytes, expected) << tagged_size;
  }
}

TEST_F(VlanSwitchTest, PushesAndPopsAtTheLargestFrameSizes) {
  BytesPort a("a"), t("t");
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  for (uint32_t size = kMaxFrameSize - 6; size <= kMaxFrameSize; ++size) {
    a.got.clear();
    t.got.clear();
    const uint64_t dropped = sw_.counters().vlan_dropped;
    const Bytes f = untagged(kBroadcast, mac(1), size, static_cast<uint8_t>(size));
    send(a, f);
    if (size + kVlanTagSize <= kMaxFrameSize) {
      ASSERT_EQ(t.got.size(), 1u) << size;
      EXPECT_EQ(t.got[0].bytes, push_tag(f, 10)) << size;
    } else {  // the tagged frame would not be a frame any port takes: dropped and counted
      EXPECT_EQ(t.got.size(), 0u) << size;
      EXPECT_EQ(sw_.counters().vlan_dropped, dropped + 1) << size;
    }
    // The other way: a tagged frame of `size` bytes leaves untagged, 4 bytes shorter.
    const Bytes inner = untagged(kBroadcast, mac(2), size - kVlanTagSize, 3);
    send(t, push_tag(inner, 10));
    ASSERT_EQ(a.got.size(), 1u) << size;
    EXPECT_EQ(a.got[0].bytes, inner) << size;
  }
}

TEST_F(VlanSwitchTest, TrunkToTrunkKeepsTheTagAndItsPriorityWithoutACopy) {
  BytesPort t1("t1"), t2("t2"), t3("t3");
  attach(t1, VlanMembership::make_trunk(vlans("10-12")));
  attach(t2, VlanMembership::make_trunk(vlans("11")));
  attach(t3, VlanMembership::make_trunk(vlans("12")));
  const Bytes f = push_tag(untagged(kBroadcast, mac(1), 80), (6 << 13) | (1 << 12) | 11);
  const Frame in = frame(f);
  sw_.receive(t1, in, now_);
  ASSERT_EQ(t2.got.size(), 1u);
  EXPECT_EQ(t2.got[0].bytes, f);  // PCP 6 and DEI survive
  EXPECT_EQ(t2.got[0].wire, in.wire);
  EXPECT_EQ(t3.got.size(), 0u);
}

TEST_F(VlanSwitchTest, ANativeVlanCrossesATrunkUntagged) {
  BytesPort a1("a1"), a10("a10"), t("t");
  attach(a1, VlanMembership::access(1));
  attach(a10, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10"), 1));
  const Bytes f1 = untagged(kBroadcast, mac(1), 64);
  send(a1, f1);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, f1);  // native: untagged
  const Bytes from_trunk = untagged(kBroadcast, mac(3), 64, 9);
  send(t, from_trunk);  // untagged on the trunk: VLAN 1
  ASSERT_EQ(a1.got.size(), 1u);
  EXPECT_EQ(a1.got[0].bytes, from_trunk);
  EXPECT_EQ(a10.got.size(), 0u);
  // A frame tagged with the native VLAN's id is accepted and leaves an access port untagged.
  send(t, push_tag(from_trunk, 1));
  ASSERT_EQ(a1.got.size(), 2u);
  EXPECT_EQ(a1.got[1].bytes, from_trunk);
  EXPECT_EQ(a10.got.size(), 0u);
}

TEST_F(VlanSwitchTest, APriorityTaggedFrameBelongsToThePortsVlanAndKeepsItsPriorityOnATrunk) {
  BytesPort a("a"), b("b"), t("t");
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  const Bytes inner = untagged(kBroadcast, mac(1), 64);
  send(a, push_tag(inner, 3 << 13));  // VID 0, PCP 3
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(inner, (3 << 13) | 10));
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].bytes, inner);
  EXPECT_EQ(a.counters().drop_vlan_tagged, 0u);
}

TEST_F(VlanSwitchTest, DropsWhatAPortDoesNotCarryAndCountsWhy) {
  BytesPort a("a"), t("t"), n("n");
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));  // no native VLAN
  attach(n, VlanMembership::make_trunk(vlans("10"), 1));
  const Bytes inner = untagged(kBroadcast, mac(1), 64);
  send(a, push_tag(inner, 10));  // tagged on an access port
  EXPECT_EQ(a.counters().drop_vlan_tagged, 1u);
  send(t, inner);  // untagged on a trunk without a native VLAN
  EXPECT_EQ(t.counters().drop_vlan_untagged, 1u);
  send(t, push_tag(inner, 3 << 13));  // priority-tagged there: untagged too
  EXPECT_EQ(t.counters().drop_vlan_untagged, 2u);
  send(t, push_tag(inner, 30));    // a VLAN the trunk does not carry
  send(t, push_tag(inner, 4095));  // reserved
  EXPECT_EQ(t.counters().drop_vlan_not_member, 2u);
  Bytes cut_short(16, 0);  // MACs and a tag, no EtherType after it
  std::memcpy(cut_short.data(), kBroadcast.bytes.data(), 6);
  std::memcpy(cut_short.data() + 6, mac(4).bytes.data(), 6);
  cut_short[12] = 0x81;
  cut_short[14] = 0x00;
  cut_short[15] = 10;
  send(n, cut_short);
  EXPECT_EQ(n.counters().drop_vlan_not_member, 1u);
  for (BytesPort* p : {&a, &t, &n}) EXPECT_EQ(p->got.size(), 0u) << p->describe();
  EXPECT_EQ(sw_.macs().size(), 0u);  // nothing dropped was learned
  // 0x88a8 (QinQ) is an ordinary EtherType to an 802.1Q bridge: untagged, VLAN 10 on `a`.
  Bytes qinq = inner;
  qinq[12] = 0x88;
  qinq[13] = 0xa8;
  send(a, qinq);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(qinq, 10));
}

TEST_F(VlanSwitchTest, AFloodMakesEachFormOnceAndThePortsShareIt) {
  BytesPort a("a"), b("b"), t1("t1"), t2("t2"), t3("t3");
  attach(a, VlanMembership::access(10));
  attach(t1, VlanMembership::make_trunk(vlans("10")));
  attach(b, VlanMembership::access(10));
  attach(t2, VlanMembership::make_trunk(vlans("10")));
  attach(t3, VlanMembership::make_trunk(vlans("10")));
  send(a, untagged(kBroadcast, mac(1), 64));
  send(a, untagged(kBroadcast, mac(1), 64));
  EXPECT_EQ(sw_.counters().vlan_tag_pushes, 2u);  // once per frame, not per port
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(t1.got[i].wire, t2.got[i].wire);
    EXPECT_EQ(t1.got[i].wire, t3.got[i].wire);
  }
  EXPECT_NE(t1.got[0].wire, t1.got[1].wire);
  EXPECT_NE(b.got[0].wire, t1.got[0].wire);
}

TEST_F(VlanSwitchTest, KnownUnicastIsTaggedOrNotForItsOnePort) {
  BytesPort a("a"), t("t"), other("other");
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  attach(other, VlanMembership::make_trunk(vlans("10")));
  const Bytes reply_inner = untagged(kBroadcast, mac(5), 64);
  send(t, push_tag(reply_inner, 10));  // mac 5 learned on t, VLAN 10
  other.got.clear();
  const Bytes f = untagged(mac(5), mac(1), 90);
  send(a, f);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(f, 10));
  EXPECT_EQ(other.got.size(), 0u);
  send(t, push_tag(untagged(mac(1), mac(5), 70), 10));
  ASSERT_EQ(a.got.size(), 2u);  // the broadcast, then this
  EXPECT_EQ(a.got[1].bytes, untagged(mac(1), mac(5), 70));
}

TEST_F(VlanSwitchTest, AnOffloadedSegmentsChecksumStartMovesWithTheTag) {
  BytesPort a("a"), t("t", Port::kTakesTso4);
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  // Only the offload state and the bytes' position matter here: the port takes TSO whole.
  const Bytes f = untagged(kBroadcast, mac(1), 3000);
  Frame in = frame(f);
  in.offload.gso = FrameOffload::kGsoTcpV4;
  in.offload.gso_size = 1448;
  in.offload.csum_start = 34;
  in.offload.csum_offset = 16;
  in.offload.flags = FrameOffload::kNeedsCsum;
  sw_.receive(a, in, now_);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(f, 10));
  EXPECT_EQ(t.got[0].offload.csum_start, 38);
  EXPECT_EQ(t.got[0].offload.gso_size, 1448);
  EXPECT_EQ(t.got[0].offload.gso, FrameOffload::kGsoTcpV4);
  // And back: popped, it moves 4 bytes the other way.
  BytesPort b("b", Port::kTakesTso4);
  attach(b, VlanMembership::access(10));
  Frame tagged = frame(push_tag(f, 10));
  tagged.offload = t.got[0].offload;
  sw_.receive(t, tagged, now_);
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].bytes, f);
  EXPECT_EQ(b.got[0].offload.csum_start, 34);
}

// A lender of one split frame (frame.h): the loan holds prefix and head, `tail` the rest.
class Lender final : public ChunkOwner {
 public:
  explicit Lender(const Bytes& frame) : bytes(frame) {
    store_be32(loan_bytes, static_cast<uint32_t>(frame.size()));
    std::memcpy(loan_bytes + kPrefixSize, frame.data(), kSplitHead);
    tail.assign(frame.begin() + kSplitHead, frame.end());
    loan.data = loan_bytes;
    loan.capacity = sizeof loan_bytes;
    loan.pool = this;
    loan.tail = tail.data();
    loan.refs = 1;
  }
  void recycle(RxChunk* /*c*/) override { ++returned; }
  Frame frame() {
    return Frame{loan_bytes, static_cast<uint32_t>(bytes.size()), kSplitHead, &loan, {}};
  }

  Bytes bytes;
  Bytes tail;
  uint8_t loan_bytes[kPrefixSize + kSplitHead] = {};
  RxChunk loan;
  int returned = 0;
};

TEST_F(VlanSwitchTest, ASplitFrameIsRetaggedAsOneWholeCopy) {
  BytesPort a("a"), t("t"), b("b");
  t.allow_split();
  b.allow_split();
  attach(a, VlanMembership::access(10));
  attach(t, VlanMembership::make_trunk(vlans("10")));
  attach(b, VlanMembership::access(10));
  const Bytes f = untagged(kBroadcast, mac(1), 4000);
  Lender lender(f);
  sw_.receive(a, lender.frame(), now_);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.got[0].bytes, push_tag(f, 10));
  ASSERT_EQ(b.got.size(), 1u);
  EXPECT_EQ(b.got[0].bytes, f);
  EXPECT_EQ(b.got[0].wire, lender.loan_bytes);  // the untagged port takes the loan as it is
  chunk_unref(&lender.loan);
  EXPECT_EQ(lender.returned, 1);  // the tagged copy holds nothing of the guest's
  // And a tagged split frame from a trunk toward an access port: popped, whole.
  const Bytes tagged = push_tag(untagged(kBroadcast, mac(2), 3000), 10);
  Lender from_trunk(tagged);
  sw_.receive(t, from_trunk.frame(), now_);
  ASSERT_EQ(a.got.size(), 1u);
  EXPECT_EQ(a.got[0].bytes, untagged(kBroadcast, mac(2), 3000));
  chunk_unref(&from_trunk.loan);
}

TEST_F(VlanSwitchTest, ChangingAPortsVlansForgetsItsMacsAndMovesItsPins) {
  BytesPort a("a"), b("b"), own("own");
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(20));
  attach(own, VlanMembership::access(10));
  sw_.pin_mac(own, mac(0x22), now_);
  send(a, untagged(kBroadcast, mac(1), 64));
  EXPECT_EQ(sw_.macs().lookup(mac(1), 10, now_), a.id());
  EXPECT_EQ(sw_.macs().lookup(mac(0x22), 10, now_), own.id());
  sw_.set_vlans(a, VlanMembership::access(20), now_);
  sw_.set_vlans(own, VlanMembership::access(20), now_);
  EXPECT_EQ(sw_.macs().lookup(mac(1), 10, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(mac(0x22), 10, now_), kNoPort);
  EXPECT_EQ(sw_.macs().lookup(mac(0x22), 20, now_), own.id());
  send(a, untagged(kBroadcast, mac(1), 64));
  EXPECT_EQ(b.got.size(), 1u);  // a is in VLAN 20 now
  EXPECT_EQ(sw_.macs().lookup(mac(1), 20, now_), a.id());
}

TEST_F(VlanSwitchTest, APinnedMacIsPinnedInItsVlanOnly) {
  BytesPort gw("gw"), a("a"), b("b"), c("c");
  attach(gw, VlanMembership::access(10));
  attach(a, VlanMembership::access(10));
  attach(b, VlanMembership::access(20));
  attach(c, VlanMembership::access(20));
  sw_.pin_mac(gw, mac(0x22), now_);
  send(a, untagged(kBroadcast, mac(0x22), 64));  // the gateway's MAC in its VLAN: a spoof
  EXPECT_EQ(a.counters().drop_mac_spoof, 1u);
  send(b, untagged(kBroadcast, mac(0x22), 64));  // in another VLAN: another station
  EXPECT_EQ(b.counters().drop_mac_spoof, 0u);
  EXPECT_EQ(c.got.size(), 1u);
}

}  // namespace
}  // namespace qswitch::sw
