// tests/backends/vxlan_header_test.cc: the 8-byte VXLAN header (RFC 7348 section 5).
#include "backends/vxlan/vxlan_header.h"

#include <gtest/gtest.h>

namespace qswitch::backends {
namespace {

TEST(VxlanHeaderTest, EncodesIFlagVniAndZeroReservedFields) {
  uint8_t h[kVxlanHeaderSize];
  encode_vxlan_header(0x123456, h);
  const uint8_t want[kVxlanHeaderSize] = {0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0};
  for (size_t i = 0; i < kVxlanHeaderSize; ++i) EXPECT_EQ(h[i], want[i]) << "byte " << i;
}

TEST(VxlanHeaderTest, DecodesWhatItEncodesAcrossTheVniRange) {
  for (uint32_t vni : {0u, 1u, 42u, 0xffu, 0x100u, 0xabcdefu, kVxlanMaxVni}) {
    uint8_t h[kVxlanHeaderSize];
    encode_vxlan_header(vni, h);
    const auto got = decode_vxlan_header(h);
    ASSERT_TRUE(got.has_value()) << vni;
    EXPECT_EQ(*got, vni);
  }
}

TEST(VxlanHeaderTest, RejectsAHeaderWithoutTheIFlag) {
  const uint8_t zero_flags[kVxlanHeaderSize] = {0x00, 0, 0, 0, 0, 0, 42, 0};
  EXPECT_FALSE(decode_vxlan_header(zero_flags).has_value());
  const uint8_t other_bits_only[kVxlanHeaderSize] = {0xf7, 0xff, 0xff, 0xff, 0, 0, 42, 0xff};
  EXPECT_FALSE(decode_vxlan_header(other_bits_only).has_value());
}

TEST(VxlanHeaderTest, IgnoresReservedBitsOnReceipt) {
  // RFC 7348: reserved fields "MUST be set to zero on transmission and ignored on receipt"
  // (VXLAN-GBP puts its G bit and policy id there).
  const uint8_t gbp[kVxlanHeaderSize] = {0x88, 0x00, 0x12, 0x34, 0x00, 0x00, 0x2a, 0x99};
  const auto got = decode_vxlan_header(gbp);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, 42u);
}

TEST(VxlanHeaderTest, ReceiveCheckTakesLengthThenIFlagThenVni) {
  uint8_t ours[kVxlanHeaderSize];
  encode_vxlan_header(42, ours);
  const uint32_t min = kVxlanHeaderSize + sw::kMinFrameSize;
  VxlanRx r = check_vxlan_datagram(ours, min, false, 42);
  EXPECT_EQ(r.check, VxlanRxCheck::kFrame);
  EXPECT_EQ(r.frame_len, sw::kMinFrameSize);
  r = check_vxlan_datagram(ours, kVxlanHeaderSize + sw::kMaxFrameSize, false, 42);
  EXPECT_EQ(r.check, VxlanRxCheck::kFrame);
  EXPECT_EQ(r.frame_len, sw::kMaxFrameSize);
  EXPECT_EQ(check_vxlan_datagram(ours, min - 1, false, 42).check, VxlanRxCheck::kRunt);
  EXPECT_EQ(check_vxlan_datagram(ours, 0, false, 42).check, VxlanRxCheck::kRunt);
  EXPECT_EQ(check_vxlan_datagram(ours, min, true, 42).check, VxlanRxCheck::kOversize);
  EXPECT_EQ(check_vxlan_datagram(ours, kVxlanHeaderSize + sw::kMaxFrameSize + 1, false, 42).check,
            VxlanRxCheck::kOversize);
  const uint8_t no_i[kVxlanHeaderSize] = {0x00, 0, 0, 0, 0, 0, 42, 0};
  EXPECT_EQ(check_vxlan_datagram(no_i, min, false, 42).check, VxlanRxCheck::kNoIFlag);
  // A runt is a runt whatever its header holds (it was never read).
  EXPECT_EQ(check_vxlan_datagram(no_i, 3, false, 42).check, VxlanRxCheck::kRunt);
  r = check_vxlan_datagram(ours, min, false, 43);
  EXPECT_EQ(r.check, VxlanRxCheck::kWrongVni);
  EXPECT_EQ(r.vni, 42u);
}

}  // namespace
}  // namespace qswitch::backends
