// tests/slirp/neighbours_test.cc: the neighbour table (slirp/neighbours.h) against hand-built
// guest frames: sources, DAD probes, neighbour advertisements, the bounds, expiry and frames
// that are cut short or break the NDP rules (each frame is handed over in an exactly sized heap
// buffer, so ASan sees any read past its end).
#include "slirp/neighbours.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace qswitch::slirp {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr const char* kMacA = "52:54:00:12:34:56";
constexpr const char* kMacB = "52:54:00:12:34:57";

sw::MacAddress mac(const char* text) { return *sw::MacAddress::parse(text); }
sw::IpAddress ip(const char* text) { return *sw::IpAddress::parse(text); }

struct Packet {
  const char* src_mac = kMacA;
  const char* src = "fec0::5054:ff:fe12:3456";
  const char* dst = "fec0::2";
  uint8_t next = 17;  // UDP
  uint8_t hop_limit = 64;
  Bytes ext;      // extension headers, already chained (their first byte names what follows)
  Bytes payload;  // after the extension headers
};

Bytes frame(const Packet& p) {
  const size_t body = p.ext.size() + p.payload.size();
  Bytes f(14 + 40 + body, 0);
  const sw::MacAddress m = mac(p.src_mac);
  f[0] = 0x33;
  f[1] = 0x33;
  std::memcpy(&f[6], m.bytes.data(), 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = static_cast<uint8_t>(body >> 8);
  f[19] = static_cast<uint8_t>(body);
  f[20] = p.next;
  f[21] = p.hop_limit;
  EXPECT_EQ(inet_pton(AF_INET6, p.src, &f[22]), 1) << p.src;
  EXPECT_EQ(inet_pton(AF_INET6, p.dst, &f[38]), 1) << p.dst;
  std::copy(p.ext.begin(), p.ext.end(), f.begin() + 54);
  std::copy(p.payload.begin(), p.payload.end(), f.begin() + 54 + static_cast<long>(p.ext.size()));
  return f;
}

// An NS or NA for `target` (24 bytes), then `options`.
Bytes ndp(uint8_t type, const char* target, uint8_t flags = 0, const Bytes& options = {}) {
  Bytes m(24, 0);
  m[0] = type;
  m[4] = flags;
  EXPECT_EQ(inet_pton(AF_INET6, target, &m[8]), 1) << target;
  m.insert(m.end(), options.begin(), options.end());
  return m;
}

// A link-layer address option (1: source, 2: target).
Bytes ll_option(uint8_t type, const char* mac_text) {
  Bytes o{type, 1};
  const sw::MacAddress m = mac(mac_text);
  o.insert(o.end(), m.bytes.begin(), m.bytes.end());
  return o;
}

// A DAD probe from `src_mac` for `target` (RFC 4862 5.4.2).
Packet dad(const char* src_mac, const char* target, const char* group) {
  Packet p;
  p.src_mac = src_mac;
  p.src = "::";
  p.dst = group;
  p.next = 58;
  p.hop_limit = 255;
  p.payload = ndp(135, target);
  return p;
}

// An unsolicited NA (O set) to all nodes.
Packet advert(const char* src_mac, const char* src, const char* target, Bytes options = {}) {
  Packet p;
  p.src_mac = src_mac;
  p.src = src;
  p.dst = "ff02::1";
  p.next = 58;
  p.hop_limit = 255;
  p.payload = ndp(136, target, 0x20, options);
  return p;
}

// Hands the frame over in an exactly sized heap buffer.
void feed(Neighbours& n, const Bytes& f, int64_t now_ms) {
  auto copy = std::make_unique<uint8_t[]>(f.size());
  if (!f.empty()) std::memcpy(copy.get(), f.data(), f.size());
  n.observe(copy.get(), f.size(), now_ms);
}

std::vector<std::string> texts(const std::vector<sw::IpAddress>& v) {
  std::vector<std::string> out;
  for (const sw::IpAddress& a : v) out.push_back(a.to_string());
  return out;
}

using Texts = std::vector<std::string>;

TEST(NeighboursTest, LearnsTheSourceOfEveryIpv6FrameUnderItsMac) {
  Neighbours n;
  Packet p;
  p.src = "fe80::5054:ff:fe12:3456";
  feed(n, frame(p), 1000);
  p.src = "fec0::5054:ff:fe12:3456";
  feed(n, frame(p), 2000);
  feed(n, frame(p), 3000);  // again: no second entry
  EXPECT_EQ(texts(n.addresses(mac(kMacA))),
            (Texts{"fe80::5054:ff:fe12:3456", "fec0::5054:ff:fe12:3456"}));
  EXPECT_TRUE(n.addresses(mac(kMacB)).empty());
  const std::vector<Neighbours::Entry> e = n.entries();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].mac, mac(kMacA));
  ASSERT_EQ(e[0].addresses.size(), 2u);
  EXPECT_EQ(e[0].addresses[1].first_seen_ms, 2000);
  EXPECT_EQ(e[0].addresses[1].last_seen_ms, 3000);
  EXPECT_FALSE(e[0].addresses[1].tentative);
  EXPECT_EQ(n.counters().learned, 2u);
}

TEST(NeighboursTest, SkipsAddressesNoGuestHolds) {
  Neighbours n;
  for (const char* src : {"::", "::1", "ff02::1", "::ffff:10.0.2.15"}) {
    Packet p;
    p.src = src;
    feed(n, frame(p), 1000);
  }
  Packet group;
  group.src_mac = "33:33:00:00:00:01";  // a multicast source MAC names nobody
  feed(n, frame(group), 1000);
  EXPECT_EQ(n.mac_count(), 0u);
  EXPECT_EQ(n.generation(), 0u);
}

TEST(NeighboursTest, IgnoresFramesThatAreNotIpv6) {
  Neighbours n;
  Bytes f = frame(Packet{});
  f[12] = 0x08;
  f[13] = 0x00;
  feed(n, f, 1000);
  EXPECT_EQ(n.mac_count(), 0u);
  EXPECT_EQ(n.counters().ipv6, 0u);
}

TEST(NeighboursTest, RecordsADadProbeTargetAsTentativeUntilTheGuestUsesIt) {
  Neighbours n;
  feed(n, frame(dad(kMacA, "fec0::5054:ff:fe12:3456", "ff02::1:ff12:3456")), 1000);
  std::vector<Neighbours::Entry> e = n.entries();
  ASSERT_EQ(e.size(), 1u);
  ASSERT_EQ(e[0].addresses.size(), 1u);
  EXPECT_EQ(e[0].addresses[0].address, ip("fec0::5054:ff:fe12:3456"));
  EXPECT_TRUE(e[0].addresses[0].tentative);
  EXPECT_EQ(texts(n.addresses(mac(kMacA))), (Texts{"fec0::5054:ff:fe12:3456"}));

  feed(n, frame(Packet{}), 2000);  // from that address
  e = n.entries();
  ASSERT_EQ(e[0].addresses.size(), 1u);
  EXPECT_FALSE(e[0].addresses[0].tentative);
  EXPECT_EQ(e[0].addresses[0].first_seen_ms, 1000);
}

TEST(NeighboursTest, AProbeLostToADefenderIsRemoved) {
  Neighbours n;
  // A holds the address; B probes for it; A defends with an NA (RFC 4862 5.4.4).
  feed(n, frame(Packet{}), 500);
  feed(n, frame(dad(kMacB, "fec0::5054:ff:fe12:3456", "ff02::1:ff12:3456")), 1000);
  EXPECT_EQ(texts(n.addresses(mac(kMacB))), (Texts{"fec0::5054:ff:fe12:3456"}));
  const uint64_t gen = n.generation();
  feed(n,
       frame(advert(kMacA, "fe80::5054:ff:fe12:3456", "fec0::5054:ff:fe12:3456",
                    ll_option(2, kMacA))),
       1500);
  EXPECT_TRUE(n.addresses(mac(kMacB)).empty());
  EXPECT_EQ(texts(n.addresses(mac(kMacA))),
            (Texts{"fec0::5054:ff:fe12:3456", "fe80::5054:ff:fe12:3456"}));
  EXPECT_EQ(n.counters().dad_conflicts, 1u);
  EXPECT_GT(n.generation(), gen);
}

TEST(NeighboursTest, ADefenceAfterTheDadWindowRemovesNothing) {
  Neighbours n;
  feed(n, frame(dad(kMacB, "fec0::15", "ff02::1:ff00:15")), 1000);
  feed(n, frame(advert(kMacA, "fe80::1", "fec0::15")), 1000 + Neighbours::kDadWindowMs + 1);
  EXPECT_EQ(texts(n.addresses(mac(kMacB))), (Texts{"fec0::15"}));
  EXPECT_EQ(n.counters().dad_conflicts, 0u);
}

TEST(NeighboursTest, RefusesDadProbesThatBreakTheRules) {
  Neighbours n;
  // Not to the target's solicited-node group.
  feed(n, frame(dad(kMacA, "fec0::15", "ff02::1")), 1000);
  feed(n, frame(dad(kMacA, "fec0::15", "ff02::1:ff00:16")), 1000);
  // A source link-layer option (RFC 4861 7.1.1: not with an unspecified source).
  Packet p = dad(kMacA, "fec0::15", "ff02::1:ff00:15");
  p.payload = ndp(135, "fec0::15", 0, ll_option(1, kMacA));
  feed(n, frame(p), 1000);
  // A hop limit other than 255: it crossed a router.
  p = dad(kMacA, "fec0::15", "ff02::1:ff00:15");
  p.hop_limit = 254;
  feed(n, frame(p), 1000);
  // A multicast target.
  feed(n, frame(dad(kMacA, "ff02::15", "ff02::1:ff00:15")), 1000);
  EXPECT_EQ(n.mac_count(), 0u);
  EXPECT_EQ(n.counters().malformed, 5u);
}

TEST(NeighboursTest, LearnsAnAdvertisementsTargetUnlessItNamesAnotherMac) {
  Neighbours n;
  feed(n, frame(advert(kMacA, "fe80::1", "fec0::1:1")), 1000);  // no option
  feed(n, frame(advert(kMacA, "fe80::1", "fec0::1:2", ll_option(2, kMacA))), 1000);
  feed(n, frame(advert(kMacA, "fe80::1", "fec0::1:3", ll_option(2, kMacB))), 1000);  // a proxy
  EXPECT_EQ(texts(n.addresses(mac(kMacA))), (Texts{"fe80::1", "fec0::1:1", "fec0::1:2"}));
  EXPECT_TRUE(n.addresses(mac(kMacB)).empty());
}

TEST(NeighboursTest, RefusesAdvertisementsThatBreakTheRules) {
  Neighbours n;
  Packet p = advert(kMacA, "::", "fec0::1:1");  // :: source: nothing from the header either
  p.payload = ndp(136, "fec0::1:1", 0x60);      // S set, to a group
  feed(n, frame(p), 1000);
  p.payload = ndp(136, "fec0::1:1", 0x20, Bytes{2, 0, 0, 0, 0, 0, 0, 0});  // option length 0
  feed(n, frame(p), 1000);
  p.payload = ndp(136, "fec0::1:1", 0x20, Bytes{2, 2, 0, 0, 0, 0, 0, 0});  // runs past the end
  feed(n, frame(p), 1000);
  p.payload = ndp(136, "fec0::1:1", 0x20);
  p.payload[1] = 1;  // code 1
  feed(n, frame(p), 1000);
  p.payload = ndp(136, "fec0::1:1", 0x20);
  p.payload.resize(23);  // shorter than an NA
  feed(n, frame(p), 1000);
  EXPECT_EQ(n.mac_count(), 0u);
  EXPECT_EQ(n.counters().malformed, 5u);
}

TEST(NeighboursTest, WalksHopByHopHeadersToTheIcmpv6Message) {
  Neighbours n;
  Packet p = advert(kMacA, "::", "fec0::1:1");
  p.next = 0;
  p.ext = Bytes{58, 0, 5, 2, 0, 0, 1, 0};  // hop-by-hop: router alert, then ICMPv6
  feed(n, frame(p), 1000);
  EXPECT_EQ(texts(n.addresses(mac(kMacA))), (Texts{"fec0::1:1"}));

  // A fragment header ends the walk (RFC 6980): no NDP.
  Packet frag = advert(kMacB, "::", "fec0::1:2");
  frag.next = 44;
  frag.ext = Bytes{58, 0, 0, 0, 0, 0, 0, 1};
  feed(n, frame(frag), 1000);
  // More extension headers than kMaxExtHeaders.
  Packet deep = advert(kMacB, "::", "fec0::1:3");
  deep.next = 60;
  for (uint32_t i = 0; i <= Neighbours::kMaxExtHeaders; ++i) {
    const uint8_t next = i == Neighbours::kMaxExtHeaders ? 58 : 60;
    deep.ext.insert(deep.ext.end(), {next, 0, 1, 4, 0, 0, 0, 0});
  }
  feed(n, frame(deep), 1000);
  EXPECT_TRUE(n.addresses(mac(kMacB)).empty());
}

TEST(NeighboursTest, KeepsAtMostKMaxPerMacAddressesReplacingTheLeastRecentlySeen) {
  Neighbours n;
  for (size_t i = 0; i < Neighbours::kMaxPerMac; ++i) {
    const std::string src = "fec0::" + std::to_string(i + 1);
    Packet p;
    p.src = src.c_str();
    feed(n, frame(p), static_cast<int64_t>(1000 + i));
  }
  Packet first;
  first.src = "fec0::1";
  feed(n, frame(first), 2000);  // fec0::2 is now the least recently seen
  Packet extra;
  extra.src = "fec0::99";
  feed(n, frame(extra), 3000);
  const Texts got = texts(n.addresses(mac(kMacA)));
  EXPECT_EQ(got.size(), Neighbours::kMaxPerMac);
  EXPECT_EQ(std::count(got.begin(), got.end(), "fec0::2"), 0);
  EXPECT_EQ(std::count(got.begin(), got.end(), "fec0::1"), 1);
  EXPECT_EQ(std::count(got.begin(), got.end(), "fec0::99"), 1);
  EXPECT_EQ(n.counters().replaced, 1u);
}

TEST(NeighboursTest, KeepsAtMostMaxMacsEvictingTheLeastRecentlySeen) {
  Neighbours n(NeighbourConfig{3, 60'000});
  const char* macs[] = {"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03",
                        "02:00:00:00:00:04"};
  for (int i = 0; i < 3; ++i) {
    Packet p;
    p.src_mac = macs[i];
    feed(n, frame(p), 1000 + i);
  }
  Packet again;
  again.src_mac = macs[0];
  feed(n, frame(again), 2000);  // 02:..:02 is now the least recently seen
  std::vector<sw::MacAddress> heard;
  n.set_on_change([&](const sw::MacAddress& m) { heard.push_back(m); });
  Packet fourth;
  fourth.src_mac = macs[3];
  feed(n, frame(fourth), 3000);
  EXPECT_EQ(n.mac_count(), 3u);
  EXPECT_TRUE(n.addresses(mac(macs[1])).empty());
  EXPECT_FALSE(n.addresses(mac(macs[0])).empty());
  EXPECT_FALSE(n.addresses(mac(macs[3])).empty());
  EXPECT_EQ(n.counters().evicted, 1u);
  EXPECT_EQ(heard, (std::vector<sw::MacAddress>{mac(macs[1]), mac(macs[3])}));
}

TEST(NeighboursTest, ForgetsAddressesUnseenForTheExpiryTime) {
  Neighbours n(NeighbourConfig{16, 60'000});
  Packet link;
  link.src = "fe80::1";
  feed(n, frame(link), 1000);
  Packet global;
  global.src = "fec0::1";
  feed(n, frame(global), 30'000);
  std::vector<sw::MacAddress> heard;
  n.set_on_change([&](const sw::MacAddress& m) { heard.push_back(m); });
  n.expire(61'000);  // fe80::1 unseen for 60 s
  EXPECT_EQ(texts(n.addresses(mac(kMacA))), (Texts{"fec0::1"}));
  EXPECT_EQ(heard.size(), 1u);
  // observe() sweeps too, by itself: another MAC's frame after fec0::1 has timed out.
  Packet other;
  other.src_mac = kMacB;
  feed(n, frame(other), 91'000);
  EXPECT_TRUE(n.addresses(mac(kMacA)).empty());
  EXPECT_EQ(n.mac_count(), 1u);
  EXPECT_EQ(n.counters().expired, 2u);
}

TEST(NeighboursTest, CountsAChangeOnlyWhenAnAddressSetChanges) {
  Neighbours n;
  int calls = 0;
  n.set_on_change([&](const sw::MacAddress&) { ++calls; });
  feed(n, frame(Packet{}), 1000);
  feed(n, frame(Packet{}), 2000);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(n.generation(), 1u);
}

TEST(NeighboursTest, ReadsFramesCutAnywhereSafely) {
  Packet p = advert(kMacA, "fe80::1", "fec0::1:1", ll_option(2, kMacA));
  p.next = 0;
  p.ext = Bytes{58, 0, 5, 2, 0, 0, 1, 0};
  const Bytes whole = frame(p);
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    Neighbours n;
    const Bytes part(whole.begin(), whole.begin() + static_cast<long>(cut));
    feed(n, part, 1000);
    // The header's payload length runs past a cut frame: the source is learned (it is there),
    // the NA is not read.
    for (const sw::IpAddress& a : n.addresses(mac(kMacA))) EXPECT_EQ(a, ip("fe80::1")) << cut;
  }
}

TEST(NeighboursTest, IgnoresPaddingAfterThePayload) {
  Neighbours n;
  Bytes f = frame(advert(kMacA, "fe80::1", "fec0::1:1"));
  f.resize(f.size() + 16, 0xee);  // junk after the packet
  feed(n, f, 1000);
  EXPECT_EQ(texts(n.addresses(mac(kMacA))), (Texts{"fe80::1", "fec0::1:1"}));
}

}  // namespace
}  // namespace qswitch::slirp
