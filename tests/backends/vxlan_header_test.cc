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

}  // namespace
}  // namespace qswitch::backends
