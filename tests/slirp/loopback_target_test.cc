// tests/slirp/loopback_target_test.cc: loopback_target() against hand-built guest frames: which
// IPv4/IPv6 TCP and UDP packets libslirp's NAT would carry to the host's loopback, and that a
// frame cut anywhere is read safely (each frame is handed over in an exactly sized heap buffer,
// so ASan sees any read past its end).
#include "slirp/loopback_target.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>
#include <vector>

namespace qswitch::slirp {
namespace {

using Bytes = std::vector<uint8_t>;

SlirpOptions options() { return default_slirp_options(); }

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

// Ethernet + IPv4 (IHL words of header) + `l4` bytes whose destination port is `port`.
Bytes ipv4(const char* dst, uint8_t proto, uint16_t port, size_t l4 = 20, uint8_t ihl = 5,
           uint16_t frag = 0) {
  Bytes f(14 + ihl * 4u + l4, 0);
  put16(f, 12, 0x0800);
  f[14] = static_cast<uint8_t>(0x40 | ihl);
  put16(f, 16, static_cast<uint16_t>(ihl * 4u + l4));
  put16(f, 20, frag);
  f[22] = 64;
  f[23] = proto;
  in_addr src{}, d{};
  inet_pton(AF_INET, "10.0.2.15", &src);
  EXPECT_EQ(inet_pton(AF_INET, dst, &d), 1) << dst;
  std::memcpy(&f[26], &src, 4);
  std::memcpy(&f[30], &d, 4);
  const size_t l = 14 + ihl * 4u;
  if (l4 >= 4) {
    put16(f, l, 40000);
    put16(f, l + 2, port);
  }
  return f;
}

Bytes ipv6(const char* dst, uint8_t next, uint16_t port, size_t l4 = 20) {
  Bytes f(14 + 40 + l4, 0);
  put16(f, 12, 0x86dd);
  f[14] = 0x60;
  put16(f, 18, static_cast<uint16_t>(l4));
  f[20] = next;
  f[21] = 64;
  in6_addr src{}, d{};
  inet_pton(AF_INET6, "fec0::15", &src);
  EXPECT_EQ(inet_pton(AF_INET6, dst, &d), 1) << dst;
  std::memcpy(&f[22], &src, 16);
  std::memcpy(&f[38], &d, 16);
  if (l4 >= 4) {
    put16(f, 54, 40000);
    put16(f, 56, port);
  }
  return f;
}

std::optional<LoopbackTarget> target(const Bytes& frame, const SlirpOptions& o = options()) {
  auto exact = std::make_unique<uint8_t[]>(frame.size());
  if (!frame.empty()) std::memcpy(exact.get(), frame.data(), frame.size());
  return loopback_target(exact.get(), frame.size(), o);
}

TEST(LoopbackTargetTest, TcpAndUdpToTheHostAddressReachTheLoopback) {
  auto t = target(ipv4("10.0.2.2", 6, 8080));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->transport, io::Transport::kTcp);
  EXPECT_FALSE(t->ipv6);
  EXPECT_EQ(t->port, 8080);
  EXPECT_FALSE(t->too_short);
  t = target(ipv4("10.0.2.2", 17, 4789, 8));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->transport, io::Transport::kUdp);
  EXPECT_EQ(t->port, 4789);
}

TEST(LoopbackTargetTest, EveryDestinationThatLandsOnTheLoopbackCounts) {
  for (const char* dst : {"10.0.2.100", "10.0.2.3", "10.0.2.255", "255.255.255.255", "127.0.0.1",
                          "127.1.2.3", "0.0.0.0"}) {
    auto t = target(ipv4(dst, 6, 9100));
    ASSERT_TRUE(t.has_value()) << dst;
    EXPECT_EQ(t->port, 9100) << dst;
  }
  for (const char* dst : {"192.0.2.1", "10.0.3.2", "8.8.8.8"}) {
    EXPECT_FALSE(target(ipv4(dst, 6, 9100)).has_value()) << dst;
  }
}

TEST(LoopbackTargetTest, TheSlirpNetworkIsTheConfiguredOne) {
  SlirpOptions o = options();
  inet_pton(AF_INET, "192.168.76.0", &o.net);
  inet_pton(AF_INET, "255.255.255.0", &o.netmask);
  EXPECT_TRUE(target(ipv4("192.168.76.2", 6, 80), o).has_value());
  EXPECT_FALSE(target(ipv4("10.0.2.2", 6, 80), o).has_value());
}

TEST(LoopbackTargetTest, OtherProtocolsAndLaterFragmentsHaveNoPort) {
  EXPECT_FALSE(target(ipv4("10.0.2.2", 1, 0)).has_value());                  // ICMP
  EXPECT_FALSE(target(ipv4("10.0.2.2", 6, 80, 20, 5, 0x0010)).has_value());  // offset 16 bytes
  Bytes arp(42, 0);
  put16(arp, 12, 0x0806);
  EXPECT_FALSE(target(arp).has_value());
}

TEST(LoopbackTargetTest, APortIsReadBehindIpv4OptionsAndInAFirstFragment) {
  auto t = target(ipv4("10.0.2.2", 6, 2222, 20, 7));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->port, 2222);
  t = target(ipv4("10.0.2.2", 17, 3333, 8, 5, 0x2000));  // MF, offset 0
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->port, 3333);
}

TEST(LoopbackTargetTest, AFirstFragmentTooShortForItsPortsIsFlagged) {
  auto t = target(ipv4("10.0.2.2", 6, 0, 2, 5, 0x2000));
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->too_short);
}

TEST(LoopbackTargetTest, MalformedIpv4HeadersAreLeftToLibslirp) {
  Bytes f = ipv4("10.0.2.2", 6, 80);
  Bytes long_total = f;
  put16(long_total, 16, 200);  // past the frame
  EXPECT_FALSE(target(long_total).has_value());
  Bytes short_ihl = f;
  short_ihl[14] = 0x44;
  EXPECT_FALSE(target(short_ihl).has_value());
  Bytes big_ihl = f;
  big_ihl[14] = 0x4f;  // 60 bytes of header in a 40-byte packet
  EXPECT_FALSE(target(big_ihl).has_value());
}

TEST(LoopbackTargetTest, Ipv6ToThePrefixLoopbackAndAllNodesCounts) {
  for (const char* dst : {"fec0::2", "fec0::1234", "::1", "::", "ff02::1"}) {
    auto t = target(ipv6(dst, 6, 9100));
    ASSERT_TRUE(t.has_value()) << dst;
    EXPECT_TRUE(t->ipv6) << dst;
    EXPECT_EQ(t->port, 9100) << dst;
  }
  auto t = target(ipv6("fec0::2", 17, 53, 8));
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->transport, io::Transport::kUdp);
  for (const char* dst : {"2001:db8::1", "fec1::2", "ff02::2"}) {
    EXPECT_FALSE(target(ipv6(dst, 6, 9100)).has_value()) << dst;
  }
  EXPECT_FALSE(target(ipv6("fec0::2", 0, 9100)).has_value());  // hop-by-hop: libslirp drops it
}

TEST(LoopbackTargetTest, AV4MappedDestinationIsTheIpv4Loopback) {
  auto t = target(ipv6("::ffff:127.0.0.1", 6, 9100));
  ASSERT_TRUE(t.has_value());
  EXPECT_FALSE(t->ipv6);
  EXPECT_FALSE(target(ipv6("::ffff:192.0.2.1", 6, 9100)).has_value());
}

TEST(LoopbackTargetTest, AFrameCutAnywhereIsReadSafely) {
  for (const Bytes& full : {ipv4("10.0.2.2", 6, 80, 20, 6), ipv6("fec0::2", 17, 80, 8)}) {
    for (size_t n = 0; n <= full.size(); ++n) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      auto t = target(cut);
      if (n < full.size() && full[12] == 0x08) {
        EXPECT_FALSE(t.has_value()) << n;  // an IPv4 total length past the frame
      }
    }
  }
}

}  // namespace
}  // namespace qswitch::slirp
