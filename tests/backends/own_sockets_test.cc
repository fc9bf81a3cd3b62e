// tests/backends/own_sockets_test.cc: io::OwnSockets, the registry of the daemon's own
// loopback/wildcard sockets: which bound addresses a loopback connection reaches, and that a
// Registration takes its address out when it goes.
#include "backends/runtime/io/own_sockets.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <utility>

namespace qswitch::io {
namespace {

sockaddr_storage addr(const char* host, uint16_t port) {
  sockaddr_storage ss{};
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET, host, &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, host, &in6.sin6_addr), 1) << host;
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
  }
  return ss;
}

TEST(OwnSocketsTest, ALoopbackListenerIsReachedOnlyByItsTransportFamilyAndPort) {
  OwnSockets own;
  auto r = own.add(Transport::kTcp, addr("127.0.0.1", 5000));
  EXPECT_TRUE(own.reaches_loopback(Transport::kTcp, false, 5000));
  EXPECT_FALSE(own.reaches_loopback(Transport::kUdp, false, 5000));
  EXPECT_FALSE(own.reaches_loopback(Transport::kTcp, true, 5000));
  EXPECT_FALSE(own.reaches_loopback(Transport::kTcp, false, 5001));
}

TEST(OwnSocketsTest, WildcardAndLoopbackAddressesOfBothFamiliesCount) {
  OwnSockets own;
  auto a = own.add(Transport::kUdp, addr("0.0.0.0", 1));
  auto b = own.add(Transport::kUdp, addr("::", 2));
  auto c = own.add(Transport::kUdp, addr("::1", 3));
  auto d = own.add(Transport::kUdp, addr("::ffff:127.0.0.1", 4));
  auto e = own.add(Transport::kUdp, addr("127.3.2.1", 5));
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, false, 1));
  EXPECT_FALSE(own.reaches_loopback(Transport::kUdp, true, 1));
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, false, 2));  // dual-stack unless V6ONLY
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, true, 2));
  EXPECT_FALSE(own.reaches_loopback(Transport::kUdp, false, 3));
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, true, 3));
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, false, 4));
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, false, 5));
  EXPECT_EQ(own.size(), 5u);
}

TEST(OwnSocketsTest, AddressesOffTheLoopbackAreNotKept) {
  OwnSockets own;
  auto a = own.add(Transport::kTcp, addr("192.0.2.1", 80));
  auto b = own.add(Transport::kTcp, addr("2001:db8::1", 80));
  auto c = own.add(Transport::kTcp, addr("127.0.0.1", 0));  // not bound yet
  auto d = own.add(Transport::kTcp, "not-an-address", 80);
  sockaddr_storage unix_addr{};
  unix_addr.ss_family = AF_UNIX;
  auto e = own.add(Transport::kTcp, unix_addr);
  EXPECT_EQ(own.size(), 0u);
  EXPECT_FALSE(own.reaches_loopback(Transport::kTcp, false, 80));
}

TEST(OwnSocketsTest, ARegistrationTakesItsAddressOutWhenItGoes) {
  OwnSockets own;
  OwnSockets::Registration kept = own.add(Transport::kTcp, "127.0.0.1", 7000);
  {
    OwnSockets::Registration gone = own.add(Transport::kTcp, "::1", 7001);
    EXPECT_TRUE(own.reaches_loopback(Transport::kTcp, true, 7001));
  }
  EXPECT_FALSE(own.reaches_loopback(Transport::kTcp, true, 7001));
  // Moving keeps the entry alive exactly once.
  OwnSockets::Registration moved = std::move(kept);
  kept.reset();  // the moved-from handle owns nothing
  EXPECT_TRUE(own.reaches_loopback(Transport::kTcp, false, 7000));
  moved = OwnSockets::Registration();  // assigning drops the old entry
  EXPECT_FALSE(own.reaches_loopback(Transport::kTcp, false, 7000));
  EXPECT_EQ(own.size(), 0u);
}

TEST(OwnSocketsTest, TwoSocketsOnOnePortStayUntilBothAreGone) {
  OwnSockets own;
  auto v4 = own.add(Transport::kUdp, "127.0.0.1", 4789);
  auto v6 = own.add(Transport::kUdp, "::1", 4789);
  v6.reset();
  EXPECT_TRUE(own.reaches_loopback(Transport::kUdp, false, 4789));
  EXPECT_FALSE(own.reaches_loopback(Transport::kUdp, true, 4789));
}

}  // namespace
}  // namespace qswitch::io
