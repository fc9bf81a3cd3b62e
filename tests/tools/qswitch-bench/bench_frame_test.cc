// tests/tools/qswitch-bench/bench_frame_test.cc: qswitch-bench's frames, untagged and 802.1Q
// tagged, built as a sender builds them, changed as a switch changes them (a tag pushed or
// popped, a short pop padded to 60 bytes), and classified as the receiving port does.
#include "tools/qswitch-bench/bench_frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
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

// The receiving port's view, as plan_ports() and BenchPort set it up.
struct Receiver {
  Receiver(uint32_t sent_size, uint16_t sender_vlan, uint16_t own_vlan)
      : pattern(sent_size - tag_size(sender_vlan)) {
    view.own = port_mac(kReceiver);
    view.expect_from = kSender;
    view.expect_mac = port_mac(kSender);
    view.vlan = own_vlan;
    view.size = received_frame_size(sent_size, sender_vlan, own_vlan);
    view.sent_size = sent_size - tag_size(sender_vlan);
    view.pattern = &pattern;
  }
  FrameCheck check(const Bytes& f) const {
    return classify_frame(f.data(), static_cast<uint32_t>(f.size()), view);
  }
  BodyPattern pattern;
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
    EXPECT_EQ(rx.view.size, size - 4);
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
    EXPECT_EQ(rx.view.size, 60u);
    EXPECT_EQ(rx.view.sent_size, size - 4);
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
    EXPECT_EQ(rx.view.size, size + 4);
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

}  // namespace
}  // namespace qswitch::tools
