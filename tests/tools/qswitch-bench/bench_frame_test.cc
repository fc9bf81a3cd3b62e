// tests/tools/qswitch-bench/bench_frame_test.cc: qswitch-bench's frames, untagged and 802.1Q
// tagged, built as a sender builds them, changed as a switch changes them (a tag pushed or
// popped, a short pop padded to 60 bytes), and classified as the receiving port does, with one
// sender or several (--mode spread); and the receiver's per-sender sequence check.
#include "tools/qswitch-bench/bench_frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace qswitch::tools {
namespace {

constexpr uint16_t kVid = 10;
constexpr uint32_t kSender = 0;
constexpr uint32_t kReceiver = 1;

using Bytes = std::vector<uint8_t>;

// A data frame of `size` bytes on the sender's wire, sequence `seq`, tagged when `vlan` != 0.
Bytes sent_frame(uint32_t size, uint16_t vlan, uint64_t seq) {
  Bytes f(size, 0xee);
  BodyPattern pattern(size - tag_size(vlan));
  fill_frame_header(f.data(), port_mac(kReceiver), kSender, FrameKind::kData, vlan);
  fill_frame_data(f.data(), size, kSender, seq, pattern, vlan);
  return f;
}

// What an 802.1Q switch does on the way out of an access port: the tag removed, the frame padded
// with zeros to 60 bytes when shorter.
Bytes popped(const Bytes& tagged) {
  Bytes f(std::max<size_t>(tagged.size() - 4, 60), 0);
  std::copy(tagged.begin(), tagged.begin() + 12, f.begin());
  std::copy(tagged.begin() + 16, tagged.end(), f.begin() + 12);
  return f;
}

// ... and on the way out of a trunk: a tag with priority 0 after the source MAC.
Bytes pushed(const Bytes& untagged, uint16_t vid) {
  Bytes f(untagged.size() + 4, 0);
  std::copy(untagged.begin(), untagged.begin() + 12, f.begin());
  put_be16(f.data() + 12, kVlanTpid);
  put_be16(f.data() + 14, vid);
  std::copy(untagged.begin() + 12, untagged.end(), f.begin() + 16);
  return f;
}

// The receiving port's view, as plan_ports() and BenchPort set it up: one sender, kSender.
struct Receiver {
  Receiver(uint32_t sent_size, uint16_t sender_vlan, uint16_t own_vlan)
      : pattern(sent_size - tag_size(sender_vlan)) {
    sender.size = received_frame_size(sent_size, sender_vlan, own_vlan);
    sender.sent_size = sent_size - tag_size(sender_vlan);
    sender.pattern = &pattern;
    view.own = port_mac(kReceiver);
    view.vlan = own_vlan;
    view.senders = uint64_t{1} << kSender;
    view.from = std::span<const SenderView>(&sender, 1);
  }
  FrameCheck check(const Bytes& f) const {
    return classify_frame(f.data(), static_cast<uint32_t>(f.size()), view);
  }
  BodyPattern pattern;
  SenderView sender;
  ReceiverView view;
};

TEST(BenchFrameTest, UntaggedFrameKeepsItsLayoutAndCheckWord) {
  Bytes f = sent_frame(64, 0, 7);
  EXPECT_EQ(get_be16(f.data() + 12), kBenchEtherType);
  EXPECT_EQ(get_be32(f.data() + 14), kBenchMagic);
  EXPECT_EQ(get_be64(f.data() + 22), 7u);
  EXPECT_EQ(get_be32(f.data() + 30), frame_check(7, kSender, 64));
  FrameCheck c = Receiver(64, 0, 0).check(f);
  EXPECT_EQ(c.verdict, Verdict::kData);
  EXPECT_EQ(c.seq, 7u);
}

TEST(BenchFrameTest, TaggedFrameCarriesTpidAndVidWithPriorityZero) {
  Bytes f = sent_frame(64, kVid, 3);
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f[12], 0x81);
  EXPECT_EQ(f[13], 0x00);
  EXPECT_EQ(get_be16(f.data() + 14), kVid);  // PCP 0, DEI 0, VID 10
  EXPECT_EQ(get_be16(f.data() + 16), kBenchEtherType);
  EXPECT_EQ(get_be32(f.data() + 18), kBenchMagic);
  EXPECT_EQ(get_be64(f.data() + 26), 3u);
  // The check word covers the untagged frame: 60 bytes.
  EXPECT_EQ(get_be32(f.data() + 34), frame_check(3, kSender, 60));
}

TEST(BenchFrameTest, TaggedFrameOnATaggedPortIsData) {
  for (uint32_t size : {60u, 61u, 64u, 1514u, 9014u}) {
    SCOPED_TRACE(size);
    FrameCheck c = Receiver(size, kVid, kVid).check(sent_frame(size, kVid, 42));
    EXPECT_EQ(c.verdict, Verdict::kData);
    EXPECT_EQ(c.seq, 42u);
  }
}

TEST(BenchFrameTest, PoppedFrameIsCheckedWithoutItsTag) {
  for (uint32_t size : {64u, 65u, 1514u, 65549u}) {
    SCOPED_TRACE(size);
    Receiver rx(size, kVid, 0);
    EXPECT_EQ(rx.sender.size, size - 4);
    Bytes f = popped(sent_frame(size, kVid, 9));
    ASSERT_EQ(f.size(), size - 4);
    FrameCheck c = rx.check(f);
    EXPECT_EQ(c.verdict, Verdict::kData);
    EXPECT_EQ(c.seq, 9u);
  }
}

TEST(BenchFrameTest, PoppedFrameShorterThanSixtyArrivesPaddedAndIsData) {
  for (uint32_t size : {60u, 61u, 62u, 63u}) {
    SCOPED_TRACE(size);
    Receiver rx(size, kVid, 0);
    EXPECT_EQ(rx.sender.size, 60u);
    EXPECT_EQ(rx.sender.sent_size, size - 4);
    Bytes f = popped(sent_frame(size, kVid, 5));
    ASSERT_EQ(f.size(), 60u);
    EXPECT_EQ(rx.check(f).verdict, Verdict::kData);
  }
}

TEST(BenchFrameTest, PaddingThatIsNotZeroIsCorrupt) {
  Receiver rx(60, kVid, 0);
  Bytes f = popped(sent_frame(60, kVid, 5));  // 56 bytes of frame, 4 of padding
  for (uint32_t at = 56; at < 60; ++at) {
    SCOPED_TRACE(at);
    Bytes bad = f;
    bad[at] = 1;
    EXPECT_EQ(rx.check(bad).verdict, Verdict::kCorrupt);
  }
}

TEST(BenchFrameTest, PoppedShortFrameWithoutPaddingIsCorrupt) {
  Receiver rx(60, kVid, 0);
  Bytes f = sent_frame(60, kVid, 5);
  Bytes unpadded = popped(f);
  unpadded.resize(56);  // the 56 bytes of the frame, without the padding
  EXPECT_EQ(rx.check(unpadded).verdict, Verdict::kCorrupt);
}

TEST(BenchFrameTest, PushedFrameIsCheckedWithItsTag) {
  for (uint32_t size : {60u, 64u, 1514u}) {
    SCOPED_TRACE(size);
    Receiver rx(size, 0, kVid);
    EXPECT_EQ(rx.sender.size, size + 4);
    FrameCheck c = rx.check(pushed(sent_frame(size, 0, 11), kVid));
    EXPECT_EQ(c.verdict, Verdict::kData);
    EXPECT_EQ(c.seq, 11u);
  }
}

TEST(BenchFrameTest, ReceivedSizeFollowsTheTags) {
  EXPECT_EQ(received_frame_size(64, 0, 0), 64u);
  EXPECT_EQ(received_frame_size(64, kVid, kVid), 64u);
  EXPECT_EQ(received_frame_size(64, kVid, 0), 60u);
  EXPECT_EQ(received_frame_size(63, kVid, 0), 60u);
  EXPECT_EQ(received_frame_size(60, kVid, 0), 60u);
  EXPECT_EQ(received_frame_size(60, 0, kVid), 64u);
  EXPECT_EQ(received_frame_size(1514, 0, kVid), 1518u);
}

TEST(BenchFrameTest, WrongTaggingIsCorrupt) {
  // Tagged where the port expects untagged frames of the same length (a switch that forgot the
  // pop would also get the size wrong; this is the tag check itself).
  Receiver untagged_rx(64, 0, 0);
  Bytes tagged = pushed(sent_frame(60, 0, 1), kVid);  // 64 bytes, tagged, valid inside
  EXPECT_EQ(untagged_rx.check(tagged).verdict, Verdict::kCorrupt);

  // Untagged where a tag belongs.
  Receiver tagged_rx(64, 0, kVid);  // expects 68 tagged bytes
  Bytes untagged = sent_frame(68, 0, 1);
  EXPECT_EQ(tagged_rx.check(untagged).verdict, Verdict::kCorrupt);

  // Another VID, and priority or DEI bits set.
  Receiver rx(64, kVid, kVid);
  Bytes f = sent_frame(64, kVid, 1);
  ASSERT_EQ(rx.check(f).verdict, Verdict::kData);
  for (uint16_t tci : {uint16_t{11}, uint16_t{0x2000 | kVid}, uint16_t{0x1000 | kVid}}) {
    SCOPED_TRACE(tci);
    Bytes bad = f;
    put_be16(bad.data() + 14, tci);
    EXPECT_EQ(rx.check(bad).verdict, Verdict::kCorrupt);
  }
}

TEST(BenchFrameTest, DamagedTaggedFrameIsCorrupt) {
  Receiver rx(1514, kVid, kVid);
  Bytes f = sent_frame(1514, kVid, 77);
  ASSERT_EQ(rx.check(f).verdict, Verdict::kData);
  // The sequence (the check word then fails), the check word, the first and last body bytes,
  // the sender field, the source MAC.
  for (uint32_t at : {26u, 34u, 38u, 1513u, 22u, 11u}) {
    SCOPED_TRACE(at);
    Bytes bad = f;
    bad[at] ^= 0x01;
    EXPECT_EQ(rx.check(bad).verdict, Verdict::kCorrupt);
  }
  Bytes shorter(f.begin(), f.end() - 1);
  EXPECT_EQ(rx.check(shorter).verdict, Verdict::kCorrupt);
}

TEST(BenchFrameTest, DamagedPoppedFrameIsCorrupt) {
  Receiver rx(1514, kVid, 0);
  Bytes f = popped(sent_frame(1514, kVid, 77));
  ASSERT_EQ(rx.check(f).verdict, Verdict::kData);
  for (uint32_t at : {22u, 30u, 34u, 1509u}) {
    SCOPED_TRACE(at);
    Bytes bad = f;
    bad[at] ^= 0x80;
    EXPECT_EQ(rx.check(bad).verdict, Verdict::kCorrupt);
  }
}

TEST(BenchFrameTest, TaggedHelloIsAHelloOnEitherKindOfPort) {
  Bytes hello(60, 0);
  BodyPattern pattern(56);
  fill_frame_header(hello.data(), kBroadcastMac, 2, FrameKind::kHello, kVid);
  fill_frame_data(hello.data(), 60, 2, 0, pattern, kVid);
  EXPECT_EQ(Receiver(64, 0, kVid).check(hello).verdict, Verdict::kHello);
  EXPECT_EQ(Receiver(64, 0, 0).check(popped(hello)).verdict, Verdict::kHello);
}

TEST(BenchFrameTest, TaggedFrameForAnotherPortIsForeign) {
  Bytes f(64, 0);
  BodyPattern pattern(60);
  fill_frame_header(f.data(), port_mac(5), kSender, FrameKind::kData, kVid);
  fill_frame_data(f.data(), 64, kSender, 0, pattern, kVid);
  EXPECT_EQ(Receiver(64, kVid, kVid).check(f).verdict, Verdict::kForeign);
  // A bare tag (16 bytes) addressed to the port is not a bench frame: corrupt, not a crash.
  Bytes stub(f.begin(), f.begin() + 16);
  const Mac own = port_mac(kReceiver);
  std::copy(own.begin(), own.end(), stub.begin());
  EXPECT_EQ(Receiver(64, kVid, kVid).check(stub).verdict, Verdict::kCorrupt);
}

// --mode spread: one receiver, several senders, each checked against what it sends.
// Port kSpreadReceiver of five; ports 0, 1, 2 and 4 send to it, port 0 tagged (popped on the way).
constexpr uint32_t kSpreadReceiver = 3;
constexpr uint32_t kSpreadPorts = 5;

Bytes frame_from(uint32_t sender, uint32_t size, uint16_t vlan, uint64_t seq) {
  Bytes f(size, 0);
  BodyPattern pattern(size - tag_size(vlan));
  fill_frame_header(f.data(), port_mac(kSpreadReceiver), sender, FrameKind::kData, vlan);
  fill_frame_data(f.data(), size, sender, seq, pattern, vlan);
  return f;
}

struct SpreadReceiver {
  explicit SpreadReceiver(uint32_t size) : untagged(size), popped_pattern(size - 4) {
    from.resize(kSpreadPorts);
    for (uint32_t j : {1u, 2u, 4u}) from[j] = SenderView{size, size, &untagged};
    from[0] = SenderView{received_frame_size(size, kVid, 0), size - 4, &popped_pattern};
    view.own = port_mac(kSpreadReceiver);
    view.senders = 0b10111;  // not itself
    view.from = from;
  }
  FrameCheck check(const Bytes& f) const {
    return classify_frame(f.data(), static_cast<uint32_t>(f.size()), view);
  }
  BodyPattern untagged;
  BodyPattern popped_pattern;
  std::vector<SenderView> from;
  ReceiverView view;
};

TEST(BenchFrameTest, FrameFromAnyOfTheSendersIsDataAndNamesItsSender) {
  SpreadReceiver rx(1514);
  for (uint32_t sender : {1u, 2u, 4u}) {
    SCOPED_TRACE(sender);
    FrameCheck c = rx.check(frame_from(sender, 1514, 0, 100 + sender));
    EXPECT_EQ(c.verdict, Verdict::kData);
    EXPECT_EQ(c.sender, sender);
    EXPECT_EQ(c.seq, 100u + sender);
  }
  // Port 0 sends tagged frames, which arrive popped: checked with its own size and pattern.
  FrameCheck c = rx.check(popped(frame_from(0, 1514, kVid, 9)));
  EXPECT_EQ(c.verdict, Verdict::kData);
  EXPECT_EQ(c.sender, 0u);
  EXPECT_EQ(c.seq, 9u);
}

TEST(BenchFrameTest, FrameFromAPortThatDoesNotSendHereIsCorrupt) {
  SpreadReceiver rx(64);
  // The receiver's own index (no port sends to itself), and ports past the run's.
  for (uint32_t sender : {kSpreadReceiver, 5u, 63u, 64u, 65535u}) {
    SCOPED_TRACE(sender);
    Bytes f = frame_from(sender, 64, 0, 1);
    EXPECT_EQ(rx.check(f).verdict, Verdict::kCorrupt);
  }
}

TEST(BenchFrameTest, FrameCheckedAsAnotherSendersIsCorrupt) {
  SpreadReceiver rx(1514);
  Bytes f = frame_from(1, 1514, 0, 5);
  ASSERT_EQ(rx.check(f).verdict, Verdict::kData);
  // Sender field says 2, source MAC and check word say 1.
  Bytes other_sender = f;
  put_be16(other_sender.data() + 18, 2);
  EXPECT_EQ(rx.check(other_sender).verdict, Verdict::kCorrupt);
  // Source MAC of port 2, everything else port 1's.
  Bytes other_mac = f;
  const Mac mac2 = port_mac(2);
  std::copy(mac2.begin(), mac2.end(), other_mac.begin() + 6);
  EXPECT_EQ(rx.check(other_mac).verdict, Verdict::kCorrupt);
  // Port 1's frame with port 0's size (tag popped): the wrong size for port 1.
  Bytes shorter(f.begin(), f.end() - 4);
  EXPECT_EQ(rx.check(shorter).verdict, Verdict::kCorrupt);
  // Port 0's frame without the pop: tagged where the receiver is untagged.
  EXPECT_EQ(rx.check(frame_from(0, 1514, kVid, 9)).verdict, Verdict::kCorrupt);
}

TEST(BenchSequenceTest, InterleavedSendersEachInOrderCountNothing) {
  SenderSequences seqs(8);
  // Seven senders, round robin, each with its own gapless sequence: no gap, no reorder, though
  // consecutive frames carry the same sequence from different senders.
  for (uint64_t seq = 0; seq < 100; ++seq) {
    for (uint32_t sender = 1; sender < 8; ++sender) seqs.on_data(sender, seq);
  }
  EXPECT_EQ(seqs.gap_lost(), 0u);
  EXPECT_EQ(seqs.reordered(), 0u);
  for (uint32_t sender = 1; sender < 8; ++sender) {
    EXPECT_EQ(seqs.next(sender), 100u);
    EXPECT_EQ(seqs.received(sender), 100u);
  }
  EXPECT_EQ(seqs.next(0), 0u);
  EXPECT_EQ(seqs.received(0), 0u);
}

TEST(BenchSequenceTest, GapIsCountedForItsSenderOnly) {
  SenderSequences seqs(3);
  seqs.on_data(1, 0);
  seqs.on_data(2, 0);
  seqs.on_data(1, 4);  // 1, 2, 3 from sender 1 missing
  seqs.on_data(2, 1);  // sender 2 still in order
  EXPECT_EQ(seqs.gap_lost(), 3u);
  EXPECT_EQ(seqs.reordered(), 0u);
  EXPECT_EQ(seqs.next(1), 5u);
  EXPECT_EQ(seqs.next(2), 2u);
  EXPECT_EQ(seqs.received(1), 2u);
}

TEST(BenchSequenceTest, LateFrameIsReorderedAgainstItsOwnSender) {
  SenderSequences seqs(3);
  seqs.on_data(0, 0);
  seqs.on_data(0, 2);  // gap of one
  seqs.on_data(0, 1);  // the missing one, late: reordered, and next does not move back
  seqs.on_data(1, 0);  // sender 1's first frame is not late, though 0 has seen 2
  EXPECT_EQ(seqs.gap_lost(), 1u);
  EXPECT_EQ(seqs.reordered(), 1u);
  EXPECT_EQ(seqs.next(0), 3u);
  EXPECT_EQ(seqs.next(1), 1u);
  EXPECT_EQ(seqs.received(0), 3u);
  EXPECT_EQ(seqs.received(1), 1u);
  seqs.on_data(0, 0);  // a duplicate of an old frame is reordered too
  EXPECT_EQ(seqs.reordered(), 2u);
}

}  // namespace
}  // namespace qswitch::tools
