// tests/switch/mac_address_test.cc: MacAddress parsing, printing and address bits.
// Parsing accepts exactly six two-digit hex groups separated by ':' or '-', either case;
// printing is lower case with ':'. The group bit is bit 0 of the first byte (IEEE 802).
#include "switch/mac_address.h"

#include <gtest/gtest.h>

#include <string>

namespace qswitch::sw {
namespace {

TEST(MacAddressTest, ParsesColonSeparatedAddress) {
  const std::optional<MacAddress> m = MacAddress::parse("52:54:00:12:34:56");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->bytes, (std::array<uint8_t, 6>{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
}

TEST(MacAddressTest, ParsesDashSeparatedAndUpperCase) {
  const std::optional<MacAddress> m = MacAddress::parse("0A-1B-2c-3D-4e-FF");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->bytes, (std::array<uint8_t, 6>{0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0xff}));
}

TEST(MacAddressTest, FormatsLowerCaseWithColons) {
  const MacAddress m{{0xAB, 0xCD, 0xEF, 0x01, 0x02, 0x0F}};
  EXPECT_EQ(m.to_string(), "ab:cd:ef:01:02:0f");
  EXPECT_EQ(MacAddress{}.to_string(), "00:00:00:00:00:00");
}

TEST(MacAddressTest, RoundTripsThroughText) {
  for (const char* text : {"52:54:00:12:34:56", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00",
                           "01:00:5e:7f:ff:fa", "33:33:00:00:00:01", "fe:dc:ba:98:76:54"}) {
    const std::optional<MacAddress> m = MacAddress::parse(text);
    ASSERT_TRUE(m.has_value()) << text;
    EXPECT_EQ(m->to_string(), text);
    EXPECT_EQ(MacAddress::parse(m->to_string()), m);
  }
  // Every byte value survives a round trip.
  for (int v = 0; v < 256; ++v) {
    const uint8_t b = static_cast<uint8_t>(v);
    const MacAddress m{{b, static_cast<uint8_t>(255 - v), b, 0, b, 1}};
    EXPECT_EQ(MacAddress::parse(m.to_string()), m) << m.to_string();
  }
}

TEST(MacAddressTest, RejectsMalformedText) {
  for (const char* text : {
           "",
           "52:54:00:12:34",        // five groups
           "52:54:00:12:34:56:78",  // seven groups
           "52:54:00:12:34:5",      // short last group
           "52:54:00:12:34:567",    // long last group
           "52:54:00:12:34:5g",     // not hex
           "52:54:00:12:34:-5",     // sign
           "52.54.00.12.34.56",     // wrong separator
           "52 54 00 12 34 56",
           "525400123456",        // no separators
           "52:54:00:12:34:56 ",  // trailing space
           " 52:54:00:12:34:56",  // leading space
           "52::54:00:12:34:56",
           "5:254:00:12:34:56",  // separators misplaced
           "0x52:54:00:12:34:5",
       }) {
    EXPECT_FALSE(MacAddress::parse(text).has_value()) << '"' << text << '"';
  }
  // Embedded NUL in an otherwise well-formed length.
  EXPECT_FALSE(MacAddress::parse(std::string_view("52:54:00:12:34\0"
                                                  "56",
                                                  17))
                   .has_value());
}

TEST(MacAddressTest, ReportsMulticastAndBroadcastBits) {
  const MacAddress unicast{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
  const MacAddress local_unicast{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
  const MacAddress ipv4_multicast{{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}};
  const MacAddress ipv6_multicast{{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}};
  const MacAddress odd_first_byte{{0x03, 0x00, 0x00, 0x00, 0x00, 0x00}};
  const MacAddress broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  const MacAddress almost_broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}};

  EXPECT_FALSE(unicast.is_multicast());
  EXPECT_FALSE(local_unicast.is_multicast());
  EXPECT_TRUE(ipv4_multicast.is_multicast());
  EXPECT_TRUE(ipv6_multicast.is_multicast());
  EXPECT_TRUE(odd_first_byte.is_multicast());
  EXPECT_TRUE(broadcast.is_multicast());
  EXPECT_TRUE(almost_broadcast.is_multicast());

  EXPECT_TRUE(broadcast.is_broadcast());
  EXPECT_FALSE(almost_broadcast.is_broadcast());
  EXPECT_FALSE(ipv4_multicast.is_broadcast());
  EXPECT_FALSE(unicast.is_broadcast());

  EXPECT_TRUE(MacAddress{}.is_zero());
  EXPECT_FALSE(unicast.is_zero());
}

TEST(MacAddressTest, ReadsWireOrderAndPacksKey) {
  const uint8_t wire[8] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x99, 0x99};
  const MacAddress m = MacAddress::from_wire(wire);
  EXPECT_EQ(m.to_string(), "52:54:00:12:34:56");
  EXPECT_EQ(m.key(), 0x525400123456u);
  const MacAddress broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  EXPECT_EQ(broadcast.key(), 0xffffffffffffu);
  EXPECT_NE(m, MacAddress::from_wire(wire + 1));
}

}  // namespace
}  // namespace qswitch::sw
