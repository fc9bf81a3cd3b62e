// tests/slirp/host_sockets_test.cc: socket_request() on hand-built guest frames (which packets
// make libslirp open a host socket, under which flow), and HostSocketBudget's counts and caps
// driven as libslirp drives them (register / unregister between begin and end).
#include "slirp/host_sockets.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace qswitch::slirp {
namespace {

using Bytes = std::vector<uint8_t>;
using Kind = SocketRequest::Kind;
using Verdict = HostSocketBudget::Verdict;

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}

// Ethernet + IPv4 + `l4` bytes of transport: source port `sport`, destination port `dport` (or
// ICMP type `sport >> 8`), TCP flags `flags`.
Bytes ipv4(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
           uint8_t flags = 0, size_t l4 = 20, uint16_t frag = 0) {
  Bytes f(14 + 20 + l4, 0);
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, static_cast<uint16_t>(20 + l4));
  put16(f, 20, frag);
  f[22] = 64;
  f[23] = proto;
  in_addr s{}, d{};
  EXPECT_EQ(inet_pton(AF_INET, src, &s), 1);
  EXPECT_EQ(inet_pton(AF_INET, dst, &d), 1);
  std::memcpy(&f[26], &s, 4);
  std::memcpy(&f[30], &d, 4);
  if (proto == kIpProtoIcmp && l4 >= 1) {
    f[34] = static_cast<uint8_t>(sport >> 8);
  } else {
    if (l4 >= 4) {
      put16(f, 34, sport);
      put16(f, 36, dport);
    }
    if (l4 >= 14) f[34 + 13] = flags;
  }
  return f;
}

Bytes ipv6(const char* src, const char* dst, uint8_t next, uint16_t sport, uint16_t dport,
           uint8_t flags = 0, size_t l4 = 20) {
  Bytes f(14 + 40 + l4, 0);
  put16(f, 12, 0x86dd);
  f[14] = 0x60;
  put16(f, 18, static_cast<uint16_t>(l4));
  f[20] = next;
  f[21] = 64;
  in6_addr s{}, d{};
  EXPECT_EQ(inet_pton(AF_INET6, src, &s), 1);
  EXPECT_EQ(inet_pton(AF_INET6, dst, &d), 1);
  std::memcpy(&f[22], &s, 16);
  std::memcpy(&f[38], &d, 16);
  if (l4 >= 4) {
    put16(f, 54, sport);
    put16(f, 56, dport);
  }
  if (l4 >= 14) f[54 + 13] = flags;
  return f;
}

SocketRequest request(const Bytes& frame) {
  auto exact = std::make_unique<uint8_t[]>(frame.size() + 1);
  if (!frame.empty()) std::memcpy(exact.get(), frame.data(), frame.size());
  const std::optional<GuestPacket> p = parse_guest_packet(exact.get(), frame.size());
  if (!p) return SocketRequest{};
  return socket_request(*p, default_slirp_options());
}

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04, kFin = 0x01;

TEST(SocketRequestTest, UdpIsAFlowKeyedByTheGuestsAddressAndSourcePort) {
  const SocketRequest a = request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, 5000, 53));
  ASSERT_EQ(a.kind, Kind::kFlow);
  EXPECT_EQ(a.key.src_port, 5000);
  EXPECT_EQ(a.key.dst_port, 0) << "libslirp keys UDP sockets by the guest's end only";
  // Another destination from the same source: the same socket in libslirp, the same key.
  EXPECT_EQ(request(ipv4("10.0.2.15", "127.0.0.1", kIpProtoUdp, 5000, 9)).key, a.key);
  EXPECT_NE(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, 5001, 53)).key, a.key);
  EXPECT_NE(request(ipv4("10.0.2.16", "10.0.2.2", kIpProtoUdp, 5000, 53)).key, a.key);
  const SocketRequest six = request(ipv6("fec0::15", "fec0::2", kIpProtoUdp, 5000, 53));
  ASSERT_EQ(six.kind, Kind::kFlow);
  EXPECT_TRUE(six.key.ipv6);
  EXPECT_NE(six.key, a.key);
}

TEST(SocketRequestTest, OnlyASynAloneOpensATcpConnection) {
  const SocketRequest syn = request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoTcp, 40000, 80, kSyn));
  ASSERT_EQ(syn.kind, Kind::kFlow);
  EXPECT_EQ(syn.key.dst_port, 80) << "TCP connections are keyed by both ends";
  EXPECT_NE(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoTcp, 40000, 81, kSyn)).key, syn.key);
  for (uint8_t flags : {uint8_t(kSyn | kAck), uint8_t(kAck), uint8_t(kSyn | kRst),
                        uint8_t(kSyn | kFin), uint8_t(kRst), uint8_t(0)}) {
    EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoTcp, 40000, 80, flags)).kind,
              Kind::kNone)
        << int(flags);
  }
  EXPECT_EQ(request(ipv6("fec0::15", "fec0::2", kIpProtoTcp, 40000, 80, kSyn)).kind, Kind::kFlow);
  // A header too short for its flags opens nothing in libslirp.
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoTcp, 40000, 80, kSyn, 13)).kind,
            Kind::kNone);
}

TEST(SocketRequestTest, EchoRequestsThroughNatArePingsAndTheGatewaysAreNot) {
  EXPECT_EQ(request(ipv4("10.0.2.15", "127.0.0.1", kIpProtoIcmp, 8 << 8, 0)).kind, Kind::kPing);
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoIcmp, 8 << 8, 0)).kind, Kind::kNone);
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.3", kIpProtoIcmp, 8 << 8, 0)).kind, Kind::kNone);
  EXPECT_EQ(request(ipv4("10.0.2.15", "127.0.0.1", kIpProtoIcmp, 0 << 8, 0)).kind, Kind::kNone)
      << "an echo reply opens nothing";
  EXPECT_EQ(request(ipv6("fec0::15", "::1", kIpProtoIcmp6, 128 << 8, 0)).kind, Kind::kNone);
}

TEST(SocketRequestTest, LaterFragmentsAndOtherFramesOpenNothingNew) {
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, 5000, 53, 0, 20, 0x0010)).kind,
            Kind::kFragment);
  // A first fragment (MF set, offset 0) carries the ports: a flow.
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, 5000, 53, 0, 20, 0x2000)).kind,
            Kind::kFlow);
  Bytes arp(60, 0);
  put16(arp, 12, 0x0806);
  EXPECT_EQ(request(arp).kind, Kind::kNone);
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, 5000, 53, 0, 3)).kind, Kind::kNone);
  EXPECT_EQ(request(ipv4("10.0.2.15", "10.0.2.2", 47, 5000, 53)).kind, Kind::kNone);
}

TEST(SocketRequestTest, AFrameCutAnywhereIsReadSafely) {
  for (const Bytes& whole : {ipv4("10.0.2.15", "10.0.2.2", kIpProtoTcp, 40000, 80, kSyn),
                             ipv6("fec0::15", "fec0::2", kIpProtoUdp, 1, 2),
                             ipv4("10.0.2.15", "127.0.0.1", kIpProtoIcmp, 8 << 8, 0, 0, 8)}) {
    for (size_t n = 0; n <= whole.size(); ++n) {
      request(Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(n)));
    }
  }
}

SocketRequest flow(uint16_t sport) {
  return request(ipv4("10.0.2.15", "10.0.2.2", kIpProtoUdp, sport, 53));
}

// libslirp's part: slirp_input of an admitted packet opens fd `fd`.
void open_socket(HostSocketBudget& b, uint64_t owner, const SocketRequest& r, int fd) {
  b.begin(owner, r);
  b.registered(fd);
  b.end();
}

TEST(HostSocketBudgetTest, APortStopsAtItsCapAndTheSwitchAtItsOwn) {
  HostSocketBudget b(5, 3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(b.admit(1, flow(100 + i)), Verdict::kAdmit);
    open_socket(b, 1, flow(100 + i), 10 + i);
  }
  EXPECT_EQ(b.admit(1, flow(200)), Verdict::kPortCap);
  EXPECT_EQ(b.admit(1, flow(101)), Verdict::kAdmit) << "its open flow goes on";
  EXPECT_EQ(b.admit(1, SocketRequest{}), Verdict::kAdmit) << "a packet opening nothing";
  SocketRequest ping;
  ping.kind = Kind::kPing;
  EXPECT_EQ(b.admit(1, ping), Verdict::kPortCap);
  open_socket(b, 2, flow(100), 20);
  open_socket(b, 2, ping, 21);
  EXPECT_EQ(b.total(), 5u);
  EXPECT_EQ(b.held_by(1), 3u);
  EXPECT_EQ(b.held_by(2), 2u);
  EXPECT_EQ(b.admit(2, flow(300)), Verdict::kSwitchCap);
  EXPECT_EQ(b.admit(3, ping), Verdict::kSwitchCap);
  b.unregistered(11);
  EXPECT_EQ(b.admit(3, ping), Verdict::kAdmit);
  open_socket(b, 1, flow(150), 30);  // port 1 at its cap again, the switch too
  EXPECT_EQ(b.admit(1, flow(101)), Verdict::kSwitchCap) << "its socket is gone: a new flow";
  EXPECT_EQ(b.total(), 5u);
  EXPECT_EQ(b.held_by(1), 3u);
}

TEST(HostSocketBudgetTest, ZeroMeansNoCap) {
  HostSocketBudget b(0, 0);
  for (int i = 0; i < 100; ++i) open_socket(b, 1, flow(static_cast<uint16_t>(i)), i);
  EXPECT_EQ(b.admit(1, flow(1000)), Verdict::kAdmit);
  EXPECT_EQ(b.total(), 100u);
}

TEST(HostSocketBudgetTest, OnlySocketsAGuestPacketOpensAreCounted) {
  HostSocketBudget b(1, 1);
  b.registered(7);   // a host forward's listener, outside slirp_input
  b.registered(-1);  // libslirp 4.7's tcp_connect, before its socket has an fd
  EXPECT_EQ(b.total(), 0u);
  b.unregistered(7);
  b.unregistered(8);  // never registered (a connection accepted on a host forward)
  EXPECT_EQ(b.total(), 0u);
  open_socket(b, 1, flow(1), 9);
  EXPECT_EQ(b.total(), 1u);
}

TEST(HostSocketBudgetTest, AReusedFdReleasesTheStaleEntry) {
  HostSocketBudget b(0, 0);
  open_socket(b, 1, flow(1), 9);
  open_socket(b, 2, flow(2), 9);  // libslirp never unregistered fd 9's first socket
  EXPECT_EQ(b.total(), 1u);
  EXPECT_EQ(b.held_by(1), 0u);
  EXPECT_EQ(b.held_by(2), 1u);
  b.unregistered(9);
  b.unregistered(9);
  EXPECT_EQ(b.total(), 0u);
  int owners = 0;
  b.for_each_owner([&](uint64_t, uint32_t) { ++owners; });
  EXPECT_EQ(owners, 0);
}

TEST(HostSocketBudgetTest, TwoSocketsForOneFlowKeepTheKeyWithTheFirst) {
  HostSocketBudget b(0, 1);
  open_socket(b, 1, flow(1), 9);
  // A second socket registered for the same packet (libslirp's ICMP fallback to UDP would do
  // so): counted, the flow stays with the first.
  open_socket(b, 1, flow(1), 10);
  EXPECT_EQ(b.total(), 2u);
  b.unregistered(10);
  EXPECT_EQ(b.admit(1, flow(1)), Verdict::kAdmit) << "the flow's own socket is still open";
  b.unregistered(9);
  EXPECT_EQ(b.admit(1, flow(1)), Verdict::kAdmit);
  EXPECT_EQ(b.total(), 0u);
}

}  // namespace
}  // namespace qswitch::slirp
