// tests/backends/vxlan_port_test.cc: the VXLAN port on a real loop in this process. A stream
// port on a socketpair plays the guest (tests/support FrameClient on the other end); plain UDP
// sockets on 127.0.0.1 play the remotes and see exactly the datagrams qswitch sends. The loop is
// pumped with UV_RUN_NOWAIT between socket calls, every wait bounded.
#include "backends/vxlan/vxlan_port.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "backends/stream/stream_port.h"
#include "backends/vxlan/vxlan_header.h"
#include "tests/support/frame_client.h"
#include "tests/support/test_frames.h"

namespace qswitch::backends {
namespace {

using test_support::FrameClient;
using test_support::Mac;
using test_support::make_frame;
using test_support::test_mac;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kVni = 42;

sockaddr_storage loopback(uint16_t port) {
  sockaddr_storage s{};
  auto& a = reinterpret_cast<sockaddr_in&>(s);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return s;
}

uint16_t port_of(const sockaddr_storage& s) {
  return ntohs(reinterpret_cast<const sockaddr_in&>(s).sin_port);
}

// A UDP socket on 127.0.0.1 playing one remote VTEP.
struct Remote {
  int fd = -1;
  sockaddr_storage addr{};
  explicit Remote(uint32_t ip = INADDR_LOOPBACK) {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_storage any = loopback(0);
    reinterpret_cast<sockaddr_in&>(any).sin_addr.s_addr = htonl(ip);
    ::bind(fd, reinterpret_cast<sockaddr*>(&any), sizeof(sockaddr_in));
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  }
  ~Remote() { ::close(fd); }
  Remote(const Remote&) = delete;
  Remote& operator=(const Remote&) = delete;
  void send_to(const sockaddr_storage& to, const std::vector<uint8_t>& bytes) const {
    ASSERT_EQ(::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to),
                       sizeof(sockaddr_in)),
              static_cast<ssize_t>(bytes.size()));
  }
};

std::vector<uint8_t> vxlan_datagram(uint32_t vni, const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> d(kVxlanHeaderSize + frame.size());
  encode_vxlan_header(vni, d.data());
  if (!frame.empty()) std::memcpy(d.data() + kVxlanHeaderSize, frame.data(), frame.size());
  return d;
}

class VxlanPortTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoopConfig config;
    config.fabric.mac.age_ms = 60'000;
    loop_ = std::make_unique<SwitchLoop>(config);
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    loop_->adopt(std::make_unique<StreamPort>(*loop_, io::Fd::adopt(sv[0]), "guest"));
    guest_ = FrameClient(sv[1]);

    VxlanConfig vx;
    vx.vni = kVni;
    vx.local = loopback(0);
    vx.local_len = sizeof(sockaddr_in);
    for (Remote* r : {&r1_, &r2_}) vx.remotes.push_back(VxlanRemote{r->addr, sizeof(sockaddr_in)});
    std::string error;
    auto port = open_vxlan_port(*loop_, vx, error);
    ASSERT_NE(port, nullptr) << error;
    vxlan_ = &loop_->adopt(std::move(port));
    local_ = vxlan_bound_local(*vxlan_);
    ASSERT_NE(port_of(local_), 0);
  }

  void pump(std::chrono::milliseconds d) {
    const auto end = Clock::now() + d;
    for (int i = 0; i < 10'000 && Clock::now() < end; ++i) {
      uv_run(loop_->uv(), UV_RUN_NOWAIT);
      ::usleep(500);
    }
  }

  // Next datagram on `r` within `timeout`, pumping the loop meanwhile; empty on timeout.
  std::vector<uint8_t> recv_on(const Remote& r, std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    std::vector<uint8_t> buf(70'000);
    for (int i = 0; i < 100'000 && Clock::now() < end; ++i) {
      uv_run(loop_->uv(), UV_RUN_NOWAIT);
      const ssize_t n = ::recv(r.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n >= 0) {
        buf.resize(static_cast<size_t>(n));
        return buf;
      }
      ::usleep(200);
    }
    return {};
  }

  test_support::RecvResult guest_recv(std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    test_support::RecvResult r;
    for (int i = 0; i < 100'000 && Clock::now() < end; ++i) {
      uv_run(loop_->uv(), UV_RUN_NOWAIT);
      r = guest_.recv_frame(std::chrono::milliseconds(1));
      if (r.status != test_support::RecvResult::Status::kTimeout) return r;
    }
    return r;
  }

  uint64_t extra(const std::string& name) {
    uint64_t v = ~uint64_t{0};
    vxlan_->for_each_extra_counter([&](const sw::CounterInfo& c, uint64_t value) {
      if (name == c.name) v = value;
    });
    return v;
  }

  std::unique_ptr<SwitchLoop> loop_;
  FrameClient guest_;
  Remote r1_;
  Remote r2_;
  LoopPort* vxlan_ = nullptr;
  sockaddr_storage local_{};
  const Mac guest_mac_ = test_mac(1);
  const Mac far_mac_ = test_mac(2);
};

TEST_F(VxlanPortTest, BroadcastFromTheSwitchGoesToEveryRemoteWithTheHeader) {
  const auto frame = make_frame(test_support::kBroadcastMac, guest_mac_, 100, 7);
  ASSERT_TRUE(guest_.send_frame(frame));
  for (const Remote* r : {&r1_, &r2_}) {
    const auto d = recv_on(*r, std::chrono::milliseconds(2000));
    ASSERT_EQ(d.size(), kVxlanHeaderSize + frame.size());
    const uint8_t want[kVxlanHeaderSize] = {0x08, 0, 0, 0, 0, 0, kVni, 0};
    EXPECT_EQ(std::memcmp(d.data(), want, kVxlanHeaderSize), 0);
    EXPECT_EQ(std::vector<uint8_t>(d.begin() + kVxlanHeaderSize, d.end()), frame);
  }
  EXPECT_EQ(vxlan_->counters().tx_frames, 1u);
  EXPECT_EQ(extra("vxlan_tx_datagrams"), 2u);
}

TEST_F(VxlanPortTest, ShortFrameIsPaddedTo60Bytes) {
  ASSERT_TRUE(guest_.send_frame(make_frame(test_support::kBroadcastMac, guest_mac_, 20, 1)));
  const auto d = recv_on(r1_, std::chrono::milliseconds(2000));
  EXPECT_EQ(d.size(), kVxlanHeaderSize + 60);
}

TEST_F(VxlanPortTest, FrameFromARemoteReachesTheGuestAndTeachesWhereItsSourceLives) {
  r1_.send_to(local_,
              vxlan_datagram(kVni, make_frame(test_support::kBroadcastMac, far_mac_, 80, 1)));
  const auto got = guest_recv(std::chrono::milliseconds(2000));
  ASSERT_TRUE(got.ok()) << test_support::to_string(got.status);
  EXPECT_EQ(test_support::frame_src(got.frame), far_mac_);
  // Split horizon: the other remote never saw it.
  EXPECT_TRUE(recv_on(r2_, std::chrono::milliseconds(200)).empty());

  // Now unicast to far_mac_ goes to r1 only.
  ASSERT_TRUE(guest_.send_frame(make_frame(far_mac_, guest_mac_, 80, 2)));
  const auto d = recv_on(r1_, std::chrono::milliseconds(2000));
  ASSERT_EQ(d.size(), kVxlanHeaderSize + 80);
  EXPECT_TRUE(recv_on(r2_, std::chrono::milliseconds(200)).empty());
  EXPECT_EQ(extra("vxlan_tx_datagrams"), 1u);
}

TEST_F(VxlanPortTest, UnknownUnicastIsReplicatedToEveryRemote) {
  ASSERT_TRUE(guest_.send_frame(make_frame(test_mac(99), guest_mac_, 64, 3)));
  EXPECT_EQ(recv_on(r1_, std::chrono::milliseconds(2000)).size(), kVxlanHeaderSize + 64);
  EXPECT_EQ(recv_on(r2_, std::chrono::milliseconds(2000)).size(), kVxlanHeaderSize + 64);
}

TEST_F(VxlanPortTest, BadDatagramsAreDroppedCountedAndTheGoodOneStillArrives) {
  const auto frame = make_frame(guest_mac_, far_mac_, 64, 5);
  auto no_i_flag = vxlan_datagram(kVni, frame);
  no_i_flag[0] = 0x00;
  r1_.send_to(local_, no_i_flag);
  r1_.send_to(local_, vxlan_datagram(kVni + 1, frame));
  std::vector<uint8_t> runt =
      vxlan_datagram(kVni, std::vector<uint8_t>(frame.begin(), frame.begin() + 13));
  r1_.send_to(local_, runt);
  r1_.send_to(local_, std::vector<uint8_t>{0x08, 0, 0});  // shorter than the header
  Remote stranger(INADDR_LOOPBACK + 1);                   // 127.0.0.2: an address no remote has
  stranger.send_to(local_, vxlan_datagram(kVni, frame));
  r2_.send_to(local_, vxlan_datagram(kVni, make_frame(guest_mac_, far_mac_, 64, 6)));

  const auto got = guest_recv(std::chrono::milliseconds(2000));
  ASSERT_TRUE(got.ok()) << test_support::to_string(got.status);
  EXPECT_EQ(test_support::frame_seq(got.frame), 6u);
  EXPECT_FALSE(guest_recv(std::chrono::milliseconds(200)).ok());
  EXPECT_EQ(extra("vxlan_bad_header"), 1u);
  EXPECT_EQ(extra("vxlan_wrong_vni"), 1u);
  EXPECT_EQ(extra("vxlan_unknown_remote"), 1u);
  EXPECT_EQ(vxlan_->counters().drop_bad_length, 2u);
  EXPECT_FALSE(vxlan_->closed());
}

TEST_F(VxlanPortTest, ARemoteSendingFromAnotherSourcePortIsStillThatRemote) {
  // Linux picks the source port from a hash of the inner flow (RFC 7348 section 5).
  Remote same_ip_other_port;
  same_ip_other_port.send_to(
      local_, vxlan_datagram(kVni, make_frame(test_support::kBroadcastMac, far_mac_, 64, 1)));
  ASSERT_TRUE(guest_recv(std::chrono::milliseconds(2000)).ok());
  EXPECT_EQ(extra("vxlan_unknown_remote"), 0u);
  // Learned on the first remote with that IP: unicast back goes there only.
  ASSERT_TRUE(guest_.send_frame(make_frame(far_mac_, guest_mac_, 64, 2)));
  EXPECT_EQ(recv_on(r1_, std::chrono::milliseconds(2000)).size(), kVxlanHeaderSize + 64);
  EXPECT_TRUE(recv_on(r2_, std::chrono::milliseconds(200)).empty());
}

TEST_F(VxlanPortTest, ManyFramesInOneBurstAllArriveInOrder) {
  constexpr uint32_t kCount = 200;  // several recvmmsg batches and receive chunks
  for (uint32_t i = 0; i < kCount; ++i) {
    r1_.send_to(local_, vxlan_datagram(kVni, make_frame(guest_mac_, far_mac_, 60 + i, i)));
  }
  for (uint32_t i = 0; i < kCount; ++i) {
    const auto got = guest_recv(std::chrono::milliseconds(2000));
    ASSERT_TRUE(got.ok()) << "frame " << i << ": " << test_support::to_string(got.status);
    ASSERT_EQ(test_support::frame_seq(got.frame), i);
    ASSERT_TRUE(test_support::frame_is_intact(got.frame, 60 + i));
  }
}

TEST(VxlanOpenTest, RefusesMixedFamiliesAndNoRemotes) {
  LoopConfig config;
  SwitchLoop loop(config);
  VxlanConfig vx;
  vx.vni = 1;
  vx.local = loopback(0);
  vx.local_len = sizeof(sockaddr_in);
  std::string error;
  EXPECT_EQ(open_vxlan_port(loop, vx, error), nullptr);
  EXPECT_NE(error.find("remotes"), std::string::npos) << error;
  sockaddr_storage v6{};
  v6.ss_family = AF_INET6;
  reinterpret_cast<sockaddr_in6&>(v6).sin6_addr = in6addr_loopback;
  reinterpret_cast<sockaddr_in6&>(v6).sin6_port = htons(4789);
  vx.remotes.push_back(VxlanRemote{v6, sizeof(sockaddr_in6)});
  error.clear();
  EXPECT_EQ(open_vxlan_port(loop, vx, error), nullptr);
  EXPECT_NE(error.find("family"), std::string::npos) << error;
}

}  // namespace
}  // namespace qswitch::backends
