// tests/integration/slirp_nat_test.cc: the slirp port's NAT as a guest sees it, with no guest:
// one FrameClient stands in for the guest (MAC 02:71:..:51, 10.0.2.15 / fec0::15) and crafts
// Ethernet/IPv4 TCP and UDP frames (tests/support/ip_frames.h) and IPv6 ones (below); the host
// side is sockets the test serves on 127.0.0.1 / ::1, which a guest reaches as 10.0.2.2 /
// fec0::2 (libslirp maps its host address to the host's loopback).
//
// What is asserted is what crossed real sockets (segments back to the guest, connections the
// test's listener accepted) and the counters and ports read through the control socket.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/netns.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::FrameListener;
using test_support::ipv4;
using test_support::TcpSegment;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr uint32_t kGateway = ipv4(10, 0, 2, 2);
constexpr uint32_t kGuestIp = ipv4(10, 0, 2, 15);

// The port number at the end of "...:PORT" on the stdout line that starts with `prefix`; 0 when
// there is none.
uint16_t port_on_line(const std::string& out, const std::string& prefix) {
  const size_t at = out.find(prefix);
  if (at == std::string::npos) return 0;
  const size_t end = out.find_first_of("\n-", at + prefix.size());
  const std::string line = out.substr(at, end - at);
  const size_t colon = line.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoul(line.substr(colon + 1)));
}

// IPv6 frames (RFC 8200), built here for the one test that needs them.
using Ip6 = std::array<uint8_t, 16>;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint8_t kIpProtoIcmp6 = 58;
constexpr Ip6 kGuestIp6 = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15};
constexpr Ip6 kHostIp6 = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};

// Ethernet + IPv6 + `l4` (next header `nh`), with the upper-layer checksum written at
// `checksum_at` inside `l4` (RFC 8200 section 8.1 pseudo-header).
std::vector<uint8_t> make_ipv6_frame(const Mac& eth_dst, const Mac& eth_src, const Ip6& src,
                                     const Ip6& dst, uint8_t nh, uint8_t hop_limit,
                                     std::vector<uint8_t> l4, size_t checksum_at) {
  uint32_t pseudo = nh + static_cast<uint32_t>(l4.size());
  for (size_t i = 0; i < 16; i += 2) {
    pseudo += static_cast<uint32_t>((src[i] << 8) | src[i + 1]);
    pseudo += static_cast<uint32_t>((dst[i] << 8) | dst[i + 1]);
  }
  l4[checksum_at] = 0;
  l4[checksum_at + 1] = 0;
  uint16_t sum = test_support::internet_checksum(l4, pseudo);
  if (nh == test_support::kIpProtoUdp && sum == 0) sum = 0xffff;
  l4[checksum_at] = static_cast<uint8_t>(sum >> 8);
  l4[checksum_at + 1] = static_cast<uint8_t>(sum);
  std::vector<uint8_t> f(14 + 40 + l4.size());
  std::copy(eth_dst.begin(), eth_dst.end(), f.begin());
  std::copy(eth_src.begin(), eth_src.end(), f.begin() + 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  f[14] = 0x60;
  f[18] = static_cast<uint8_t>(l4.size() >> 8);
  f[19] = static_cast<uint8_t>(l4.size());
  f[20] = nh;
  f[21] = hop_limit;
  std::copy(src.begin(), src.end(), f.begin() + 22);
  std::copy(dst.begin(), dst.end(), f.begin() + 38);
  std::copy(l4.begin(), l4.end(), f.begin() + 54);
  return f;
}

std::vector<uint8_t> make_udp6_frame(const Mac& eth_dst, const Mac& eth_src, const Ip6& src,
                                     const Ip6& dst, uint16_t src_port, uint16_t dst_port,
                                     const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> udp(8);
  const size_t size = 8 + payload.size();
  udp[0] = static_cast<uint8_t>(src_port >> 8);
  udp[1] = static_cast<uint8_t>(src_port);
  udp[2] = static_cast<uint8_t>(dst_port >> 8);
  udp[3] = static_cast<uint8_t>(dst_port);
  udp[4] = static_cast<uint8_t>(size >> 8);
  udp[5] = static_cast<uint8_t>(size);
  udp.insert(udp.end(), payload.begin(), payload.end());
  return make_ipv6_frame(eth_dst, eth_src, src, dst, test_support::kIpProtoUdp, 64, udp, 6);
}

// A neighbour solicitation (RFC 4861 section 4.3) for `target` to its solicited-node group, with
// the sender's link-layer address.
std::vector<uint8_t> make_neighbor_solicitation(const Mac& eth_src, const Ip6& src,
                                                const Ip6& target) {
  Ip6 group = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0};
  std::copy(target.begin() + 13, target.end(), group.begin() + 13);
  const Mac eth_dst = {0x33, 0x33, 0xff, target[13], target[14], target[15]};
  std::vector<uint8_t> ns(32, 0);
  ns[0] = 135;
  std::copy(target.begin(), target.end(), ns.begin() + 8);
  ns[24] = 1;  // source link-layer address, 8 bytes
  ns[25] = 1;
  std::copy(eth_src.begin(), eth_src.end(), ns.begin() + 26);
  return make_ipv6_frame(eth_dst, eth_src, src, group, kIpProtoIcmp6, 255, ns, 2);
}

// True, with the payload, when `f` is an IPv6 UDP datagram from `src_port` to `dst_port`.
bool udp6_payload(const std::vector<uint8_t>& f, uint16_t src_port, uint16_t dst_port,
                  std::vector<uint8_t>* payload) {
  if (test_support::frame_ethertype(f) != kEthertypeIpv6 || f.size() < 14 + 40 + 8 ||
      f[14 + 6] != test_support::kIpProtoUdp) {
    return false;
  }
  const size_t udp = 14 + 40;
  const size_t size = static_cast<size_t>((f[udp + 4] << 8) | f[udp + 5]);
  if (((f[udp] << 8) | f[udp + 1]) != src_port || ((f[udp + 2] << 8) | f[udp + 3]) != dst_port ||
      size < 8 || udp + size > f.size()) {
    return false;
  }
  payload->assign(f.begin() + udp + 8, f.begin() + udp + size);
  return true;
}

class SlirpNatTest : public SwitchFixture {
 protected:
  // Connects the stand-in guest and has it ARP for the gateway, which also puts the guest's
  // address in libslirp's ARP table (so slirp can answer it without asking first).
  ::testing::AssertionResult join_guest() { return join(&guest_, kGuestMac, kGuestIp); }

  // Connects a stand-in guest with `mac`/`ip` and has it ARP for the gateway.
  ::testing::AssertionResult join(FrameClient* out, const Mac& mac, uint32_t ip) {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(1, &c); !r) return r;
    *out = std::move(c[0]);
    if (!out->send_frame(test_support::make_arp_request(mac, ip, kGateway))) {
      return ::testing::AssertionFailure() << "send ARP: " << out->last_error();
    }
    std::string why;
    RecvResult r = out->recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          auto arp = test_support::parse_arp(f, &why);
          return arp && arp->op == 2 && arp->sender_ip == kGateway;
        },
        5s);
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "no ARP reply from 10.0.2.2 to " << test_support::ipv4_to_string(ip);
    }
    return ::testing::AssertionSuccess();
  }

  // A segment from the guest to `dst`:`dst_port`.
  bool send_tcp(uint32_t dst, uint16_t src_port, uint16_t dst_port, uint8_t flags, uint32_t seq,
                uint32_t ack, std::vector<uint8_t> payload = {}) {
    TcpSegment s;
    s.eth_dst = kSlirpMac;
    s.eth_src = kGuestMac;
    s.ip_src = kGuestIp;
    s.ip_dst = dst;
    s.src_port = src_port;
    s.dst_port = dst_port;
    s.flags = flags;
    s.seq = seq;
    s.ack = ack;
    s.window = 65535;
    s.payload = std::move(payload);
    return guest_.send_frame(test_support::make_tcp_frame(s));
  }

  // The next TCP segment to the guest's port `guest_port` that satisfies `pred`; answers slirp's
  // ARP requests for the guest on the way. nullopt on timeout.
  template <typename Pred>
  std::optional<TcpSegment> recv_tcp(uint16_t guest_port, Pred pred, Millis timeout) {
    std::optional<TcpSegment> found;
    std::string why;
    RecvResult r = guest_.recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          if (auto arp = test_support::parse_arp(f, &why);
              arp && arp->op == 1 && arp->target_ip == kGuestIp) {
            guest_.send_frame(
                test_support::make_arp_reply(kGuestMac, kGuestIp, arp->sender_mac, arp->sender_ip));
            return false;
          }
          auto seg = test_support::parse_tcp_frame(f, &why);
          if (!seg || seg->ip_dst != kGuestIp || seg->dst_port != guest_port || !pred(*seg)) {
            return false;
          }
          found = std::move(seg);
          return true;
        },
        timeout);
    if (!r.ok()) return std::nullopt;
    return found;
  }

  // The `ports` rows; null json when they cannot be read.
  json ports() {
    std::string error;
    auto c = ControlClient::connect(sw_.control(), &error);
    EXPECT_TRUE(c.has_value()) << error;
    if (!c) return json();
    const test_support::LineResult r = c->request(R"({"cmd":"ports"})");
    const json reply = json::parse(r.line, nullptr, false);
    if (!r.ok() || reply.is_discarded() || !reply.contains("result")) {
      ADD_FAILURE() << "bad ports reply: " << r.line << " " << r.error;
      return json();
    }
    return reply["result"];
  }
  // A counter of the slirp port, from `ports`; -1 when it is not there.
  int64_t slirp_counter(const std::string& name) {
    for (const json& row : ports()) {
      if (row.value("kind", "") == "slirp") {
        return row["counters"].contains(name) ? row["counters"][name].get<int64_t>() : -1;
      }
    }
    return -1;
  }
  // Waits (bounded) until the slirp counter `name` reaches `at_least`; its last value.
  int64_t wait_slirp_counter(const std::string& name, int64_t at_least) {
    int64_t v = -1;
    for (int i = 0; i < 100; ++i) {
      v = slirp_counter(name);
      if (v >= at_least) break;
      std::this_thread::sleep_for(20ms);
    }
    return v;
  }
  size_t port_count() { return ports().size(); }

  // The IPv6 counterpart of join_guest(): a neighbour solicitation for fec0::2 (which also puts
  // the guest in libslirp's NDP table); slirp_mac6_ is the MAC that answered.
  ::testing::AssertionResult join_guest6() {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(1, &c); !r) return r;
    guest_ = std::move(c[0]);
    if (!guest_.send_frame(make_neighbor_solicitation(kGuestMac, kGuestIp6, kHostIp6))) {
      return ::testing::AssertionFailure() << "send NS: " << guest_.last_error();
    }
    RecvResult r = guest_.recv_frame_matching(
        [](const std::vector<uint8_t>& f) {
          // ICMPv6 neighbour advertisement (136) for fec0::2.
          return test_support::frame_ethertype(f) == kEthertypeIpv6 && f.size() >= 14 + 40 + 24 &&
                 f[14 + 6] == kIpProtoIcmp6 && f[14 + 40] == 136 &&
                 std::memcmp(&f[14 + 40 + 8], kHostIp6.data(), 16) == 0;
        },
        5s);
    if (!r.ok()) return ::testing::AssertionFailure() << "no neighbour advertisement for fec0::2";
    std::copy(r.frame.begin() + 6, r.frame.begin() + 12, slirp_mac6_.begin());
    return ::testing::AssertionSuccess();
  }

  // A second stand-in guest on its own switch port (10.0.2.16), known to libslirp's ARP table.
  ::testing::AssertionResult join_second_guest(FrameClient* out) {
    return join(out, kSecondMac, kSecondIp);
  }

  // A control request's result; null json (and a test failure) when it cannot be had.
  json control(const std::string& request) {
    std::string error;
    auto c = ControlClient::connect(sw_.control(), &error);
    EXPECT_TRUE(c.has_value()) << error;
    if (!c) return json();
    const test_support::LineResult r = c->request(request);
    const json reply = json::parse(r.line, nullptr, false);
    if (!r.ok() || reply.is_discarded() || !reply.value("ok", false) || !reply.contains("result")) {
      ADD_FAILURE() << "bad reply to " << request << ": " << r.line << " " << r.error;
      return json();
    }
    return reply["result"];
  }
  json slirp_sockets() { return control(R"({"cmd":"slirp.sockets"})"); }
  // The id of the port that learned `mac`; -1 when none.
  int64_t port_of(const Mac& mac) {
    const std::string text = test_support::mac_to_string(mac);
    for (const json& row : ports()) {
      if (!row.contains("macs")) continue;
      for (const json& m : row["macs"]) {
        if (m.is_string() && m.get<std::string>() == text) return row["id"].get<int64_t>();
      }
    }
    return -1;
  }
  // Sockets the slirp port counts for port `id`; 0 when it holds none.
  int64_t sockets_of(const json& counts, int64_t id) {
    for (const json& row : counts["ports"]) {
      if (row["port"].is_number() && row["port"].get<int64_t>() == id) {
        return row["sockets"].get<int64_t>();
      }
    }
    return 0;
  }

  static constexpr Mac kGuestMac = {0x02, 0x71, 0x00, 0x00, 0x00, 0x51};
  static constexpr Mac kSecondMac = {0x02, 0x71, 0x00, 0x00, 0x00, 0x52};
  static constexpr uint32_t kSecondIp = ipv4(10, 0, 2, 16);
  Mac slirp_mac6_{};
  FrameClient guest_;
};

// A host socket whose poll reported an error must still be polled afterwards. libslirp (4.7)
// sets IPV6_RECVERR / IP_RECVERR on its UDP sockets: a guest's datagram to a closed host port
// comes back as an ICMP error in the socket's error queue, epoll says EPOLLERR, and libuv stops
// the poll handle (UV_EBADF). libslirp reads the error, forwards it to the guest as ICMP, keeps
// the socket for the flow, and asks for the same events again: the handle must be started again,
// or the flow's replies never reach the guest once the host service is up. (Over IPv6, fec0::2
// -> ::1: the IPv4 ICMP output of the machine these tests were written on stopped working for
// every process, while ICMPv6 went on; the poll code is the same for both.)
TEST_F(SlirpNatTest, AHostSocketThatReportedAnErrorIsStillPolled) {
  // A free UDP port on ::1, with nothing bound on it for now.
  int service = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(service, 0);
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  socklen_t len = sizeof sin6;
  ASSERT_EQ(::bind(service, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6), 0);
  ASSERT_EQ(::getsockname(service, reinterpret_cast<sockaddr*>(&sin6), &len), 0);
  const uint16_t port = ntohs(sin6.sin6_port);
  ::close(service);
  ASSERT_TRUE(start_switch({"--slirp"}));
  ASSERT_TRUE(join_guest6());

  // 1. The service is not up: the guest's datagram is refused, and the guest hears of it.
  constexpr uint16_t kGuestPort = 5555;
  const std::vector<uint8_t> ping = {'p', 'i', 'n', 'g'};
  ASSERT_TRUE(guest_.send_frame(
      make_udp6_frame(slirp_mac6_, kGuestMac, kGuestIp6, kHostIp6, kGuestPort, port, ping)));
  RecvResult r = guest_.recv_frame_matching(
      [](const std::vector<uint8_t>& f) {
        // IPv6, next header ICMPv6, type 1 (destination unreachable).
        return test_support::frame_ethertype(f) == kEthertypeIpv6 && f.size() >= 14 + 40 + 8 &&
               f[14 + 6] == kIpProtoIcmp6 && f[14 + 40] == 1;
      },
      5s);
  ASSERT_TRUE(r.ok()) << "no ICMPv6 unreachable for a datagram to closed port " << port;

  // 2. The service comes up; the guest's flow (same source port: the same libslirp socket)
  //    reaches it, and the reply must come back through the socket that reported the error.
  service = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(service, 0);
  ASSERT_EQ(::bind(service, reinterpret_cast<sockaddr*>(&sin6), sizeof sin6), 0)
      << "bind [::1]:" << port << ": " << std::strerror(errno);
  ASSERT_TRUE(guest_.send_frame(
      make_udp6_frame(slirp_mac6_, kGuestMac, kGuestIp6, kHostIp6, kGuestPort, port, ping)));
  pollfd pfd{service, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "the guest's datagram did not reach the service";
  uint8_t buf[64];
  sockaddr_in6 from{};
  socklen_t from_len = sizeof from;
  const ssize_t got =
      ::recvfrom(service, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
  ASSERT_EQ(got, static_cast<ssize_t>(ping.size()));
  const std::vector<uint8_t> pong = {'p', 'o', 'n', 'g'};
  ASSERT_EQ(
      ::sendto(service, pong.data(), pong.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len),
      static_cast<ssize_t>(pong.size()));
  ::close(service);
  std::vector<uint8_t> payload;
  r = guest_.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) { return udp6_payload(f, port, kGuestPort, &payload); },
      5s);
  ASSERT_TRUE(r.ok()) << "the service's reply never reached the guest: libslirp's socket was not "
                         "polled again after its error";
  EXPECT_EQ(payload, pong);
}

// With restrict=off a guest reaches the host's loopback through 10.0.2.2 (and every other
// address of the slirp network), so also qswitch's own sockets there: a TCP listener would take
// the guest's connection as a new switch port, a learning UDP socket its datagrams as a new
// peer. The slirp port drops guest traffic to the ports qswitch has bound on a loopback or
// wildcard address, counts it (drop_own_endpoint), and follows listeners added and removed at
// run time; other host services stay reachable.
TEST_F(SlirpNatTest, GuestTrafficToQswitchsOwnSocketsIsDroppedAndCounted) {
  std::string error;
  auto service = FrameListener::listen("tcp:127.0.0.1:0", &error);  // a host service of the test
  ASSERT_TRUE(service.has_value()) << error;
  const uint16_t service_port = port_on_line(service->address(), "tcp:");
  ASSERT_TRUE(start_switch({"--slirp", "--listen", "tcp:127.0.0.1:0", "--dgram", "udp:127.0.0.1:0",
                            "--metrics", "tcp:127.0.0.1:0"}));
  const std::string out = sw_.stdout_text();
  const uint16_t listen_port = port_on_line(out, "listening tcp:127.0.0.1:");
  const uint16_t dgram_port = port_on_line(out, "dgram udp:127.0.0.1:");
  const uint16_t metrics_port = port_on_line(out, "metrics tcp:127.0.0.1:");
  ASSERT_NE(listen_port, 0) << out;
  ASSERT_NE(dgram_port, 0) << out;
  ASSERT_NE(metrics_port, 0) << out;
  ASSERT_TRUE(join_guest());
  const size_t ports_before = port_count();

  // A SYN to qswitch's TCP listener through 10.0.2.2: dropped before libslirp sees it.
  uint16_t guest_port = 41000;
  auto any_from = [](uint16_t from) {
    return [from](const TcpSegment& s) { return s.src_port == from; };
  };
  ASSERT_TRUE(send_tcp(kGateway, guest_port, listen_port, test_support::kTcpSyn, 100, 0));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 1), 1) << ports().dump();
  EXPECT_FALSE(recv_tcp(guest_port, any_from(listen_port), 300ms).has_value())
      << "the guest got an answer from qswitch's own listener";
  EXPECT_EQ(port_count(), ports_before)
      << "the guest's connection became a port: " << ports().dump();

  // The metrics server; the loopback named directly (libslirp connects a guest to 127.0.0.1 as
  // asked); another address of the slirp network (older libslirp maps all of them, not only
  // 10.0.2.2, to the host's loopback).
  ASSERT_TRUE(send_tcp(kGateway, ++guest_port, metrics_port, test_support::kTcpSyn, 100, 0));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 2), 2);
  ASSERT_TRUE(
      send_tcp(ipv4(127, 0, 0, 1), ++guest_port, listen_port, test_support::kTcpSyn, 100, 0));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 3), 3);
  ASSERT_TRUE(
      send_tcp(ipv4(10, 0, 2, 100), ++guest_port, listen_port, test_support::kTcpSyn, 100, 0));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 4), 4);

  // A datagram holding a valid frame to the learning UDP socket: no new peer port.
  const std::vector<uint8_t> inner =
      test_support::make_frame(test_support::kBroadcastMac, test_mac(0x77), 64, 1);
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(kSlirpMac, kGuestMac, kGuestIp,
                                                             kGateway, 5000, dgram_port, inner)));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 5), 5);
  EXPECT_EQ(port_count(), ports_before) << ports().dump();

  // Another host service on the loopback is still reachable.
  ASSERT_TRUE(send_tcp(kGateway, ++guest_port, service_port, test_support::kTcpSyn, 100, 0));
  EXPECT_TRUE(recv_tcp(
                  guest_port,
                  [](const TcpSegment& s) { return (s.flags & test_support::kTcpSyn) != 0; }, 5s)
                  .has_value())
      << "no SYN-ACK from the test's own service";

  // A listener added at run time is covered at once; once removed, its port is the host's again
  // (a SYN gets libslirp's RST for the refused connection).
  auto ctl = ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(ctl.has_value()) << error;
  const test_support::LineResult added =
      ctl->request(R"({"cmd":"port.add","args":{"mode":"listen","address":"tcp:127.0.0.1:0"}})");
  ASSERT_TRUE(added.ok()) << added.error;
  const json reply = json::parse(added.line, nullptr, false);
  ASSERT_TRUE(reply.is_object() && reply.value("ok", false)) << added.line;
  const uint16_t added_port = port_on_line(reply["result"]["address"].get<std::string>(), "tcp:");
  ASSERT_NE(added_port, 0) << added.line;
  ASSERT_TRUE(send_tcp(kGateway, ++guest_port, added_port, test_support::kTcpSyn, 100, 0));
  EXPECT_EQ(wait_slirp_counter("drop_own_endpoint", 6), 6);
  const test_support::LineResult removed =
      ctl->request(R"({"cmd":"port.remove","args":{"id":")" +
                   reply["result"]["endpoint"].get<std::string>() + R"("}})");
  ASSERT_TRUE(removed.ok() && removed.line.find("\"ok\":true") != std::string::npos)
      << removed.line;
  ASSERT_TRUE(send_tcp(kGateway, ++guest_port, added_port, test_support::kTcpSyn, 100, 0));
  EXPECT_TRUE(recv_tcp(
                  guest_port,
                  [](const TcpSegment& s) { return (s.flags & test_support::kTcpRst) != 0; }, 5s)
                  .has_value())
      << "a SYN to a removed listener's port was not passed to libslirp";
  EXPECT_EQ(slirp_counter("drop_own_endpoint"), 6);
}

// A UDP service of the test's on 127.0.0.1 that notes every datagram's source (one per host
// socket libslirp opened) and payload.
class UdpService {
 public:
  UdpService() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    const int big = 8 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 &&
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) == 0) {
      port_ = ntohs(sin.sin_port);
    }
  }
  ~UdpService() { ::close(fd_); }
  uint16_t port() const { return port_; }
  // Reads what is there (waiting up to `wait` for the first datagram); how many it read.
  size_t drain(Millis wait) {
    size_t n = 0;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(wait.count())) != 1) return 0;
    for (;;) {
      uint8_t buf[256];
      sockaddr_in from{};
      socklen_t from_len = sizeof from;
      const ssize_t got =
          ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (got < 0) break;
      sources_.push_back(ntohs(from.sin_port));
      payloads_.emplace_back(reinterpret_cast<const char*>(buf), static_cast<size_t>(got));
      last_from_ = from;
      ++n;
    }
    return n;
  }
  bool reply_to_last(const std::string& text) {
    return ::sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&last_from_),
                    sizeof last_from_) == static_cast<ssize_t>(text.size());
  }
  size_t distinct_sources() const {
    std::vector<uint16_t> s = sources_;
    std::sort(s.begin(), s.end());
    return static_cast<size_t>(std::unique(s.begin(), s.end()) - s.begin());
  }
  const std::vector<uint16_t>& sources() const { return sources_; }
  const std::vector<std::string>& payloads() const { return payloads_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<uint16_t> sources_;
  std::vector<std::string> payloads_;
  sockaddr_in last_from_{};
};

size_t open_fds(pid_t pid) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

// Issue 9, defect 4: every UDP flow a guest starts through NAT is a host socket of qswitch's
// (libslirp's), so a guest opening thousands of them took the process's fds until nothing else
// could be accepted. Now its port stops at max-host-sockets-per-port (default 1024): the
// packets that would open more are dropped and counted, its open flows keep working, and
// another guest is served.
TEST_F(SlirpNatTest, AGuestOpening5000UdpFlowsHitsItsPortsCapAndTheSwitchKeepsServing) {
  UdpService service;
  ASSERT_NE(service.port(), 0);
  ASSERT_TRUE(start_switch({"--slirp"}));
  ASSERT_TRUE(join_guest());
  const int64_t guest_port_id = port_of(kGuestMac);
  ASSERT_GE(guest_port_id, 0) << ports().dump();
  const size_t fds_before = open_fds(sw_.pid());

  // 5000 flows (source ports 20000..24999), in rounds of 250; each round waits until every
  // datagram of it either reached the service or was counted as refused.
  constexpr int kFlows = 5000;
  constexpr int kRound = 250;
  constexpr int64_t kCap = 1024;
  size_t received = 0;
  for (int sent = 0; sent < kFlows;) {
    for (int i = 0; i < kRound; ++i, ++sent) {
      const std::string text = "flow " + std::to_string(sent);
      const std::vector<uint8_t> payload(text.begin(), text.end());
      ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(
          kSlirpMac, kGuestMac, kGuestIp, kGateway, static_cast<uint16_t>(20000 + sent),
          service.port(), payload)))
          << guest_.last_error();
    }
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      received += service.drain(received + 0u < static_cast<size_t>(sent) ? 50ms : 0ms);
      const int64_t refused = slirp_counter("drop_host_socket_cap");
      if (static_cast<int64_t>(received) + refused >= sent) break;
      ASSERT_LT(std::chrono::steady_clock::now(), deadline)
          << "after " << sent << " datagrams: " << received << " reached the service, " << refused
          << " refused";
    }
  }
  const json counts = slirp_sockets();
  const size_t fds_at_cap = open_fds(sw_.pid());
  std::printf(
      "[ info ] 5000 UDP flows from one guest: %zu reached the host, %lld refused; "
      "qswitch fds %zu before, %zu at the cap; slirp.sockets %s\n",
      received, static_cast<long long>(slirp_counter("drop_host_socket_cap")), fds_before,
      fds_at_cap, counts.dump().c_str());
  EXPECT_EQ(static_cast<int64_t>(received), kCap);
  EXPECT_EQ(service.distinct_sources(), static_cast<size_t>(kCap)) << "one host socket per flow";
  EXPECT_EQ(slirp_counter("drop_host_socket_cap"), kFlows - kCap);
  EXPECT_EQ(counts["open"].get<int64_t>(), kCap) << counts.dump();
  EXPECT_EQ(counts["max_host_sockets_per_port"].get<int64_t>(), kCap) << counts.dump();
  EXPECT_EQ(sockets_of(counts, guest_port_id), kCap) << counts.dump();
  // The cap's sockets, plus a few for control connections the test opened and closed just now
  // (qswitch closes its end when it reads the EOF).
  EXPECT_LE(fds_at_cap, fds_before + static_cast<size_t>(kCap) + 8) << "sockets beyond the cap";
  // The flows are the first 1024, in order: nothing was lost before the cap.
  ASSERT_EQ(service.payloads().size(), static_cast<size_t>(kCap));
  EXPECT_EQ(service.payloads().front(), "flow 0");
  EXPECT_EQ(service.payloads().back(), "flow 1023");

  // At the cap, an open flow still carries datagrams, both ways.
  const std::string again = "flow 0 again";
  ASSERT_TRUE(guest_.send_frame(
      test_support::make_udp_frame(kSlirpMac, kGuestMac, kGuestIp, kGateway, 20000, service.port(),
                                   std::vector<uint8_t>(again.begin(), again.end()))));
  ASSERT_EQ(service.drain(5000ms), 1u);
  EXPECT_EQ(service.payloads().back(), again);
  EXPECT_EQ(service.sources().back(), service.sources().front()) << "not the flow's own socket";
  ASSERT_TRUE(service.reply_to_last("pong 0"));
  std::string why;
  RecvResult r = guest_.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        auto u = test_support::parse_udp_frame(f, &why);
        return u && u->dst_port == 20000 &&
               std::string(u->payload.begin(), u->payload.end()) == "pong 0";
      },
      5s);
  EXPECT_TRUE(r.ok()) << "the service's reply on an open flow did not reach the guest";

  // A new TCP connection from the guest is refused too (no SYN-ACK), and counted.
  const int64_t refused = slirp_counter("drop_host_socket_cap");
  ASSERT_TRUE(send_tcp(kGateway, 40000, service.port(), test_support::kTcpSyn, 1, 0));
  EXPECT_EQ(wait_slirp_counter("drop_host_socket_cap", refused + 1), refused + 1);

  // Another guest, on its own port, opens a flow and gets its reply.
  FrameClient second;
  ASSERT_TRUE(join_second_guest(&second));
  const std::string hello = "second guest";
  ASSERT_TRUE(second.send_frame(test_support::make_udp_frame(
      kSlirpMac, kSecondMac, kSecondIp, kGateway, 30000, service.port(),
      std::vector<uint8_t>(hello.begin(), hello.end()))));
  ASSERT_EQ(service.drain(5000ms), 1u) << "the second guest's flow did not reach the host";
  EXPECT_EQ(service.payloads().back(), hello);
  ASSERT_TRUE(service.reply_to_last("pong 2"));
  r = second.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        auto u = test_support::parse_udp_frame(f, &why);
        return u && u->dst_port == 30000 &&
               std::string(u->payload.begin(), u->payload.end()) == "pong 2";
      },
      5s);
  EXPECT_TRUE(r.ok()) << "the second guest got no reply";
  const json after = slirp_sockets();
  EXPECT_EQ(after["open"].get<int64_t>(), kCap + 1) << after.dump();
  EXPECT_EQ(sockets_of(after, port_of(kSecondMac)), 1) << after.dump();
}

// max-host-sockets caps all guests together, max-host-sockets-per-port each port.
TEST_F(SlirpNatTest, HostSocketCapsHoldPerSwitchAndPerPort) {
  UdpService service;
  ASSERT_NE(service.port(), 0);
  ASSERT_TRUE(start_switch({"--slirp=max-host-sockets=30,max-host-sockets-per-port=20"}));
  ASSERT_TRUE(join_guest());
  FrameClient second;
  ASSERT_TRUE(join_second_guest(&second));
  auto flows = [&](FrameClient& c, const Mac& mac, uint32_t ip, uint16_t first, int n) {
    for (int i = 0; i < n; ++i) {
      const std::vector<uint8_t> payload = {'x'};
      ASSERT_TRUE(c.send_frame(test_support::make_udp_frame(kSlirpMac, mac, ip, kGateway,
                                                            static_cast<uint16_t>(first + i),
                                                            service.port(), payload)));
    }
  };
  // The first guest: 25 flows, 20 get through (its port's cap).
  flows(guest_, kGuestMac, kGuestIp, 20000, 25);
  EXPECT_EQ(wait_slirp_counter("drop_host_socket_cap", 5), 5);
  // The second: 15 flows, 10 get through (the switch's cap: 30 in all).
  flows(second, kSecondMac, kSecondIp, 20000, 15);
  EXPECT_EQ(wait_slirp_counter("drop_host_socket_cap", 10), 10);
  size_t received = 0;
  for (int i = 0; i < 100 && received < 30; ++i) received += service.drain(50ms);
  EXPECT_EQ(received, 30u);
  json counts = slirp_sockets();
  EXPECT_EQ(counts["open"].get<int64_t>(), 30) << counts.dump();
  EXPECT_EQ(counts["max_host_sockets"].get<int64_t>(), 30) << counts.dump();
  EXPECT_EQ(sockets_of(counts, port_of(kGuestMac)), 20) << counts.dump();
  EXPECT_EQ(sockets_of(counts, port_of(kSecondMac)), 10) << counts.dump();
}

// TCP under a cap of one host socket: the connection that holds it keeps it (its SYN sent again
// is not refused), a second one is refused, and the socket is given back the moment libslirp
// closes it (the guest resets the connection), so the next connection gets through.
TEST_F(SlirpNatTest, AClosedConnectionGivesItsHostSocketBack) {
  std::string error;
  auto tcp_service = FrameListener::listen("tcp:127.0.0.1:0", &error);
  ASSERT_TRUE(tcp_service.has_value()) << error;
  const uint16_t tcp_port = port_on_line(tcp_service->address(), "tcp:");
  ASSERT_TRUE(start_switch({"--slirp=max-host-sockets=1"}));
  ASSERT_TRUE(join_guest());
  auto syn_ack = [](const TcpSegment& s) {
    return (s.flags & test_support::kTcpSyn) != 0 && (s.flags & test_support::kTcpAck) != 0;
  };
  ASSERT_TRUE(send_tcp(kGateway, 41001, tcp_port, test_support::kTcpSyn, 1000, 0));
  const auto first = recv_tcp(41001, syn_ack, 5s);
  ASSERT_TRUE(first.has_value()) << "no SYN-ACK for the one connection the cap allows";
  json counts = slirp_sockets();
  EXPECT_EQ(counts["open"].get<int64_t>(), 1) << counts.dump();

  ASSERT_TRUE(send_tcp(kGateway, 41002, tcp_port, test_support::kTcpSyn, 1000, 0));
  EXPECT_EQ(wait_slirp_counter("drop_host_socket_cap", 1), 1);
  EXPECT_FALSE(recv_tcp(
                   41002, [](const TcpSegment&) { return true; }, 300ms)
                   .has_value());
  // The first SYN again (as if its SYN-ACK was lost) belongs to the open connection: the cap
  // does not drop it (the counter, read once the reset after it has been handled, stays 1).
  ASSERT_TRUE(send_tcp(kGateway, 41001, tcp_port, test_support::kTcpSyn, 1000, 0));

  ASSERT_TRUE(send_tcp(kGateway, 41001, tcp_port, test_support::kTcpRst | test_support::kTcpAck,
                       1001, first->seq + 1));
  bool freed = false;
  for (int i = 0; i < 100 && !freed; ++i) {
    counts = slirp_sockets();
    freed = counts.is_object() && counts["open"].get<int64_t>() == 0;
    if (!freed) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(freed) << "the reset connection's socket is still counted: " << counts.dump();
  EXPECT_EQ(slirp_counter("drop_host_socket_cap"), 1) << "the open connection's SYN was refused";
  ASSERT_TRUE(send_tcp(kGateway, 41003, tcp_port, test_support::kTcpSyn, 1000, 0));
  EXPECT_TRUE(recv_tcp(41003, syn_ack, 5s).has_value())
      << "the slot the reset connection gave back was not reused";
  EXPECT_EQ(slirp_counter("drop_host_socket_cap"), 1);
}

// An ICMP echo request to another address opens a host socket of its own in libslirp (an ICMP
// datagram socket, closed when the reply comes back): counted and capped like flows. An echo
// to the gateway, which libslirp answers itself, opens nothing and is never refused.
TEST_F(SlirpNatTest, PingsThroughNatCountAsHostSockets) {
  UdpService service;
  ASSERT_NE(service.port(), 0);
  ASSERT_TRUE(start_switch({"--slirp=max-host-sockets=1"}));
  ASSERT_TRUE(join_guest());
  auto echo_reply = [&](uint32_t from, uint16_t seq, Millis timeout) {
    std::string why;
    return guest_
        .recv_frame_matching(
            [&](const std::vector<uint8_t>& f) {
              const auto e = test_support::parse_icmp_echo(f);
              return e && e->type == 0 && e->ip_src == from && e->seq == seq;
            },
            timeout)
        .ok();
  };
  const uint32_t loopback = ipv4(127, 0, 0, 1);
  ASSERT_TRUE(guest_.send_frame(
      test_support::make_icmp_echo_request(kSlirpMac, kGuestMac, kGuestIp, loopback, 7, 1)));
  ASSERT_TRUE(echo_reply(loopback, 1, 5s)) << "no echo reply from 127.0.0.1 through NAT";
  json counts;
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    counts = slirp_sockets();
    closed = counts.is_object() && counts["open"].get<int64_t>() == 0;
    if (!closed) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(closed) << "the answered ping's socket is still counted: " << counts.dump();

  // A UDP flow takes the one socket; the next ping through NAT is refused, ...
  const std::vector<uint8_t> payload = {'u'};
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(
      kSlirpMac, kGuestMac, kGuestIp, kGateway, 20000, service.port(), payload)));
  ASSERT_EQ(service.drain(5000ms), 1u);
  ASSERT_TRUE(guest_.send_frame(
      test_support::make_icmp_echo_request(kSlirpMac, kGuestMac, kGuestIp, loopback, 7, 2)));
  EXPECT_EQ(wait_slirp_counter("drop_host_socket_cap", 1), 1);
  EXPECT_FALSE(echo_reply(loopback, 2, 300ms)) << "a ping past the cap was answered";
  // ... one to the gateway is answered.
  ASSERT_TRUE(guest_.send_frame(
      test_support::make_icmp_echo_request(kSlirpMac, kGuestMac, kGuestIp, kGateway, 7, 3)));
  EXPECT_TRUE(echo_reply(kGateway, 3, 5s)) << "the gateway did not answer at the cap";
  EXPECT_EQ(slirp_counter("drop_host_socket_cap"), 1);
}

// libslirp stamps a new UDP flow with its clock, which it reads only in slirp_pollfds_poll; the
// slirp port skips that poll on turns without slirp work, and before the first one the clock is
// 0. A flow opened by the first frame after start was stamped 0 and expired (its socket closed)
// at the next turn: the service's replies went to a socket that was gone. (Found by
// bench/slirp-flows: 1000 flows, 815 fds.)
TEST_F(SlirpNatTest, AFlowOpenedRightAfterStartStaysOpen) {
  UdpService service;
  ASSERT_NE(service.port(), 0);
  ASSERT_TRUE(start_switch({"--slirp"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  guest_ = std::move(c[0]);
  // The very first frame slirp sees opens the flow (no ARP first: libslirp answers nothing).
  const std::vector<uint8_t> one = {'1'};
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(
      kSlirpMac, kGuestMac, kGuestIp, kGateway, 20000, service.port(), one)));
  ASSERT_EQ(service.drain(5000ms), 1u);
  // More slirp turns (an ARP exchange), then the same flow again: the same host socket.
  ASSERT_TRUE(guest_.send_frame(test_support::make_arp_request(kGuestMac, kGuestIp, kGateway)));
  std::string why;
  ASSERT_TRUE(guest_
                  .recv_frame_matching(
                      [&](const std::vector<uint8_t>& f) {
                        auto arp = test_support::parse_arp(f, &why);
                        return arp && arp->op == 2 && arp->sender_ip == kGateway;
                      },
                      5s)
                  .ok());
  const json counts = slirp_sockets();
  EXPECT_EQ(counts["open"].get<int64_t>(), 1) << "the flow's socket was closed: " << counts.dump();
  const std::vector<uint8_t> two = {'2'};
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(
      kSlirpMac, kGuestMac, kGuestIp, kGateway, 20000, service.port(), two)));
  ASSERT_EQ(service.drain(5000ms), 1u);
  ASSERT_EQ(service.sources().size(), 2u);
  EXPECT_EQ(service.sources()[0], service.sources()[1]) << "the flow got a new socket";
  ASSERT_TRUE(service.reply_to_last("pong"));
  EXPECT_TRUE(guest_
                  .recv_frame_matching(
                      [&](const std::vector<uint8_t>& f) {
                        auto u = test_support::parse_udp_frame(f, &why);
                        return u && u->dst_port == 20000 &&
                               std::string(u->payload.begin(), u->payload.end()) == "pong";
                      },
                      5s)
                  .ok())
      << "the reply did not reach the guest";
}

}  // namespace
}  // namespace qswitch::integration
