// tests/tools/config_parse_test.cc: the one number parser, the MAC parser and the guest MAC
// generator that every qswitch parser uses.
#include "tools/qswitch/config/config_parse.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace qswitch::tools {
namespace {

TEST(ParseDecimalTest, AcceptsDigitsWithinTheRange) {
  EXPECT_EQ(parse_decimal("0"), 0u);
  EXPECT_EQ(parse_decimal("65535", 0, 65535), 65535u);
  EXPECT_EQ(parse_decimal("007", 1, 10), 7u);
  EXPECT_EQ(parse_decimal("18446744073709551615"), UINT64_MAX);
}

TEST(ParseDecimalTest, RejectsValuesOutsideTheRange) {
  EXPECT_FALSE(parse_decimal("65536", 0, 65535));
  EXPECT_FALSE(parse_decimal("15", 16, 100));
  EXPECT_FALSE(parse_decimal("18446744073709551616"));  // one past 2^64-1
  EXPECT_FALSE(parse_decimal("99999999999999999999999"));
}

TEST(ParseDecimalTest, RejectsAnythingButDigits) {
  for (const char* bad : {"", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.5", "12a", "٣"}) {
    EXPECT_FALSE(parse_decimal(bad)) << "'" << bad << "'";
  }
  EXPECT_FALSE(
      parse_decimal(std::string("1\0"
                                "2",
                                3)));
}

TEST(ParseDecimalSecondsTest, AcceptsDigitsWithAtMostOnePoint) {
  EXPECT_EQ(parse_decimal_seconds("2", 10), 2.0);
  EXPECT_EQ(parse_decimal_seconds("0.5", 10), 0.5);
  EXPECT_EQ(parse_decimal_seconds(".25", 10), 0.25);
  EXPECT_EQ(parse_decimal_seconds("3.", 10), 3.0);
  EXPECT_EQ(parse_decimal_seconds("10", 10), 10.0);
  EXPECT_EQ(parse_decimal_seconds("0001.5", 10), 1.5);
}

TEST(ParseDecimalSecondsTest, RejectsZeroAndValuesOverTheMaximum) {
  for (const char* bad : {"0", "0.0", ".0", "10.001", "11", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_decimal_seconds(bad, 10)) << "'" << bad << "'";
  }
}

TEST(ParseDecimalSecondsTest, RejectsAnythingButDigitsAndOnePoint) {
  for (const char* bad : {"", ".", "-1", "+1", " 1", "1 ", "0x10", "1e3", "1.5.2", "inf", "nan",
                          "1,5", "abc", "12a"}) {
    EXPECT_FALSE(parse_decimal_seconds(bad, 1e7)) << "'" << bad << "'";
  }
  EXPECT_FALSE(parse_decimal_seconds(std::string("1\0"
                                                 "2",
                                                 3),
                                     1e7));
}

TEST(MacAddressTest, ParsesColonOrDashInEitherCase) {
  const auto a = sw::MacAddress::parse("52:54:00:AB:cd:Ef");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_string(), "52:54:00:ab:cd:ef");
  EXPECT_EQ(sw::MacAddress::parse("52-54-00-ab-cd-ef"), a);
  for (const char* bad : {"", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:", "52:54:00:ab:cd:eg",
                          "52.54.00.ab.cd.ef", "525400abcdef"}) {
    EXPECT_FALSE(sw::MacAddress::parse(bad)) << bad;
  }
}

TEST(MacAddressTest, QemuGuestMacHasQemusPrefixAndTheLow24Bits) {
  const sw::MacAddress m = sw::MacAddress::qemu_guest(0xff123456u);
  EXPECT_EQ(m.to_string(), "52:54:00:12:34:56");
  EXPECT_FALSE(m.is_multicast());
}

TEST(MacAddressTest, RandomGuestMacsAreUnicastQemuMacsAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 16; ++i) {
    const sw::MacAddress m = random_guest_mac();
    EXPECT_EQ(m.to_string().substr(0, 9), "52:54:00:");
    EXPECT_FALSE(m.is_multicast());
    seen.insert(m.to_string());
  }
  EXPECT_GT(seen.size(), 1u);  // 16 draws of 24 bits: all equal only if the source is broken
}

}  // namespace
}  // namespace qswitch::tools
