// tests/integration/slirp_nat_test.cc: the slirp port's NAT as a guest sees it, with no guest:
// one FrameClient stands in for the guest (MAC 02:71:..:51, 10.0.2.15) and crafts Ethernet/IPv4
// TCP and UDP frames (tests/support/ip_frames.h); the host side is sockets the test serves on
// 127.0.0.1, which a guest reaches as 10.0.2.2 (libslirp maps its host address to the host's
// loopback).
//
// What is asserted is what crossed real sockets: frames back to the guest, datagrams the test's
// service received.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "tests/integration/switch_fixture.h"
#include "tests/support/ip_frames.h"

namespace qswitch::integration {
namespace {

using test_support::ipv4;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr uint32_t kGateway = ipv4(10, 0, 2, 2);
constexpr uint32_t kGuestIp = ipv4(10, 0, 2, 15);

class SlirpNatTest : public SwitchFixture {
 protected:
  // Connects the stand-in guest and has it ARP for the gateway, which also puts the guest's
  // address in libslirp's ARP table (so slirp can answer it without asking first).
  ::testing::AssertionResult join_guest() {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(1, &c); !r) return r;
    guest_ = std::move(c[0]);
    if (!guest_.send_frame(test_support::make_arp_request(kGuestMac, kGuestIp, kGateway))) {
      return ::testing::AssertionFailure() << "send ARP: " << guest_.last_error();
    }
    std::string why;
    RecvResult r = guest_.recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          auto arp = test_support::parse_arp(f, &why);
          return arp && arp->op == 2 && arp->sender_ip == kGateway;
        },
        5s);
    if (!r.ok()) return ::testing::AssertionFailure() << "no ARP reply from 10.0.2.2";
    return ::testing::AssertionSuccess();
  }

  static constexpr Mac kGuestMac = {0x02, 0x71, 0x00, 0x00, 0x00, 0x51};
  FrameClient guest_;
};

// A host socket whose poll reported an error must still be polled afterwards. libslirp (4.7)
// sets IP_RECVERR on its UDP sockets: a guest's datagram to a closed host port comes back as an
// ICMP error in the socket's error queue, epoll says EPOLLERR, and libuv stops the poll handle
// (UV_EBADF). libslirp reads the error, forwards it to the guest as ICMP, keeps the socket for
// the flow, and asks for the same events again: the handle must be started again, or the flow's
// replies never reach the guest once the host service is up.
TEST_F(SlirpNatTest, AHostSocketThatReportedAnErrorIsStillPolled) {
  // A free UDP port on 127.0.0.1, with nothing bound on it for now.
  const int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(probe, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  const uint16_t port = ntohs(sin.sin_port);
  ::close(probe);
  ASSERT_TRUE(start_switch({"--slirp"}));
  ASSERT_TRUE(join_guest());

  // 1. The service is not up: the guest's datagram is refused, and the guest hears of it.
  constexpr uint16_t kGuestPort = 5555;
  const std::vector<uint8_t> ping = {'p', 'i', 'n', 'g'};
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(kSlirpMac, kGuestMac, kGuestIp,
                                                             kGateway, kGuestPort, port, ping)));
  RecvResult r = guest_.recv_frame_matching(
      [](const std::vector<uint8_t>& f) {
        // IPv4, protocol ICMP, type 3 (destination unreachable), to the guest.
        return test_support::frame_ethertype(f) == test_support::kEthertypeIpv4 &&
               f.size() >= 14 + 20 + 8 && f[14 + 9] == 1 &&
               f[14 + size_t{f[14] & 0x0fu} * 4] == 3;
      },
      5s);
  ASSERT_TRUE(r.ok()) << "no ICMP unreachable for a datagram to closed port " << port;

  // 2. The service comes up; the guest's flow (same source port: the same libslirp socket)
  //    reaches it, and the reply must come back through the socket that reported the error.
  const int service = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(service, 0);
  ASSERT_EQ(::bind(service, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0)
      << "bind 127.0.0.1:" << port << ": " << std::strerror(errno);
  ASSERT_TRUE(guest_.send_frame(test_support::make_udp_frame(kSlirpMac, kGuestMac, kGuestIp,
                                                             kGateway, kGuestPort, port, ping)));
  pollfd pfd{service, POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "the guest's datagram did not reach the service";
  uint8_t buf[64];
  sockaddr_in from{};
  socklen_t from_len = sizeof from;
  const ssize_t got = ::recvfrom(service, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from),
                                 &from_len);
  ASSERT_EQ(got, static_cast<ssize_t>(ping.size()));
  const std::vector<uint8_t> pong = {'p', 'o', 'n', 'g'};
  ASSERT_EQ(::sendto(service, pong.data(), pong.size(), 0, reinterpret_cast<sockaddr*>(&from),
                     from_len),
            static_cast<ssize_t>(pong.size()));
  ::close(service);
  std::string why;
  r = guest_.recv_frame_matching(
      [&](const std::vector<uint8_t>& f) {
        auto udp = test_support::parse_udp_frame(f, &why);
        return udp && udp->dst_port == kGuestPort && udp->src_port == port;
      },
      5s);
  ASSERT_TRUE(r.ok()) << "the service's reply never reached the guest: libslirp's socket was not "
                         "polled again after its error";
  auto udp = test_support::parse_udp_frame(r.frame, &why);
  ASSERT_TRUE(udp.has_value()) << why;
  EXPECT_EQ(udp->payload, pong);
  EXPECT_EQ(udp->ip_src, kGateway);
}

}  // namespace
}  // namespace qswitch::integration
