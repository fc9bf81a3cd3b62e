// tests/switch/offload_kernel_test.cc: software_offload() (switch/offload.h) against the Linux
// kernel's own GSO, byte for byte. Needs root (label `root`): without it the tests FAIL saying so.
//
// In a network namespace the test creates: two taps in a bridge, `gso0` opened with
// IFF_VNET_HDR and TUNSETOFFLOAD(CSUM, TSO4, TSO6, TSO_ECN), `plain0` opened without a vnet
// header, with every offload off and a queue of 2048 frames (1024 segments must fit: the
// default 1000 drops the rest). IPv6 is off in the namespace, so nothing else talks. A
// virtio_net_hdr + GSO frame written into gso0 is flooded by the bridge to plain0, whose lack of
// TSO makes the kernel cut it in software (validate_xmit_skb -> skb_gso_segment); what plain0
// reads is compared with software_offload()'s segments for the same header and frame.
//
// Lives in tests/switch/ and links qswitch_core (the layer it exercises) and the test support
// library (namespaces); tests/integration/ tests drive a qswitch process and link no project
// library. The tap work runs in a child forked into the namespace (Netns::in_netns), which
// reports through a shared mapping.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "switch/offload.h"
#include "tests/support/netns.h"

namespace qswitch::sw {
namespace {

using Bytes = std::vector<uint8_t>;
using test_support::Netns;

constexpr uint8_t kSrcMac[6] = {0x02, 0x51, 0x00, 0x00, 0x00, 0x01};
constexpr uint8_t kDstMac[6] = {0x02, 0x51, 0x00, 0x00, 0x00, 0x02};

void put16(Bytes& b, size_t at, uint32_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v);
}
uint16_t sum16(const Bytes& b, size_t from, size_t to, uint32_t s = 0) {
  for (size_t i = from; i < to; i += 2) {
    s += uint32_t{b[i]} << 8 | (i + 1 < to ? b[i + 1] : 0);
    s = (s & 0xffff) + (s >> 16);
  }
  return static_cast<uint16_t>(s);
}

struct Case {
  bool v6 = false;
  bool vlan = false;
  uint32_t ip_options = 0;
  uint32_t tcp_options = 12;
  uint32_t payload = 65000;
  uint16_t gso_size = 1448;
  uint8_t flags = 0x18;  // ACK PSH
  bool ecn = false;
  bool needs_csum = true;  // false: the TCP checksum field holds garbage, as both ignore it
};

// The virtio_net_hdr (10 bytes, tun's default vnet_hdr_sz) and frame a Linux guest would send:
// the TCP checksum field holds the pseudo-header sum (tcp_v4_send_check / tcp_v6_send_check).
Bytes build(const Case& c) {
  const size_t l3 = c.vlan ? 18 : 14;
  const size_t l4 = l3 + (c.v6 ? 40 : 20 + c.ip_options);
  const size_t hdrs = l4 + 20 + c.tcp_options;
  Bytes f(hdrs + c.payload, 0);
  std::memcpy(f.data(), kDstMac, 6);
  std::memcpy(f.data() + 6, kSrcMac, 6);
  if (c.vlan) {
    put16(f, 12, 0x8100);
    put16(f, 14, 42);
  }
  put16(f, l3 - 2, c.v6 ? 0x86dd : 0x0800);
  if (c.v6) {
    put32(f, l3, 0x60000000 | (c.ecn ? 0x00200000 : 0) | 0xbeef);
    put16(f, l3 + 4, static_cast<uint32_t>(f.size() - l3 - 40));
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    f[l3 + 8] = 0xfd;
    f[l3 + 23] = 1;
    f[l3 + 24] = 0xfd;
    f[l3 + 39] = 2;
  } else {
    f[l3] = static_cast<uint8_t>(0x40 | (5 + c.ip_options / 4));
    f[l3 + 1] = c.ecn ? 0x02 : 0;
    put16(f, l3 + 2, static_cast<uint32_t>(f.size() - l3));
    put16(f, l3 + 4, 0xfff0);
    put16(f, l3 + 6, 0x4000);
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    put32(f, l3 + 12, 0x0a000001);
    put32(f, l3 + 16, 0x0a000002);
    for (uint32_t i = 0; i < c.ip_options; ++i) f[l3 + 20 + i] = 1;  // NOP
    if (c.ip_options >= 4) put32(f, l3 + 20, 0x94040000);            // Router Alert
    put16(f, l3 + 10, static_cast<uint16_t>(~sum16(f, l3, l4)));
  }
  put16(f, l4, 43210);
  put16(f, l4 + 2, 5201);
  put32(f, l4 + 4, 0xfffff000);
  put32(f, l4 + 8, 0x01020304);
  f[l4 + 12] = static_cast<uint8_t>((5 + c.tcp_options / 4) << 4);
  f[l4 + 13] = c.flags;
  put16(f, l4 + 14, 1000);
  for (uint32_t i = 0; i < c.tcp_options; ++i) f[l4 + 20 + i] = 1;
  if (c.tcp_options >= 12) {
    put16(f, l4 + 22, 0x080a);
    put32(f, l4 + 24, 123456);
    put32(f, l4 + 28, 654321);
  }
  for (uint32_t i = 0; i < c.payload; ++i) f[hdrs + i] = static_cast<uint8_t>(i * 31 + (i >> 9));
  const uint32_t tcp_len = static_cast<uint32_t>(f.size() - l4);
  uint32_t pseudo = c.v6 ? sum16(f, l3 + 8, l3 + 40) : sum16(f, l3 + 12, l3 + 20);
  pseudo += 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
  put16(f, l4 + 16, static_cast<uint16_t>((pseudo & 0xffff) + (pseudo >> 16)));
  if (!c.needs_csum) put16(f, l4 + 16, 0xbad0);

  OffloadInfo info;
  info.gso_type = c.v6 ? GsoType::kTcpV6 : GsoType::kTcpV4;
  info.ecn = c.ecn;
  info.gso_size = c.gso_size;
  info.hdr_len = static_cast<uint16_t>(hdrs);
  info.needs_csum = c.needs_csum;
  info.csum_start = c.needs_csum ? static_cast<uint16_t>(l4) : 0;
  info.csum_offset = c.needs_csum ? 16 : 0;
  Bytes out(kVirtioNetHdrSize);
  encode_virtio_net_hdr(info, out.data(), kVirtioNetHdrSize);
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

// What the child in the namespace reports.
struct Shared {
  char error[512];
  uint32_t count;
  uint32_t sizes[2048];
  uint8_t bytes[8u << 20];
};

int open_tap(const char* name, int flags, unsigned offloads, Shared* sh) {
  const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    std::snprintf(sh->error, sizeof sh->error, "open /dev/net/tun: %s", std::strerror(errno));
    return -1;
  }
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  ifr.ifr_flags = static_cast<short>(flags);
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0 || ::ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
    std::snprintf(sh->error, sizeof sh->error, "TUNSETIFF/TUNSETOFFLOAD %s: %s", name,
                  std::strerror(errno));
    ::close(fd);
    return -1;
  }
  return fd;
}

// In the namespace: write `input` (vnet header + frame) into gso0, collect what plain0 reads
// (our source MAC only) until `expected` frames or 3 s. Written again every 250 ms while nothing
// came (the bridge ports come up as the fds attach, and the first write may find them down).
int kernel_segments(const Bytes& input, uint32_t expected, Shared* sh) {
  const int gso = open_tap("gso0", IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
                           TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN, sh);
  if (gso < 0) return 1;
  const int plain = open_tap("plain0", IFF_TAP | IFF_NO_PI, 0, sh);
  if (plain < 0) return 1;
  std::vector<uint8_t> buf(70000);
  while (::read(plain, buf.data(), buf.size()) > 0) {
  }
  size_t used = 0;
  const auto start = std::chrono::steady_clock::now();
  auto written = start;
  if (::write(gso, input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    std::snprintf(sh->error, sizeof sh->error, "write gso0: %s", std::strerror(errno));
    return 1;
  }
  while (sh->count < expected) {
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited > std::chrono::seconds(3)) break;
    if (sh->count == 0 &&
        std::chrono::steady_clock::now() - written > std::chrono::milliseconds(250)) {
      written = std::chrono::steady_clock::now();
      if (::write(gso, input.data(), input.size()) < 0) return 1;
    }
    pollfd p{plain, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(plain, buf.data(), buf.size());
    if (n < 14 || std::memcmp(buf.data() + 6, kSrcMac, 6) != 0) continue;
    if (used + static_cast<size_t>(n) > sizeof sh->bytes || sh->count == 2048) break;
    std::memcpy(sh->bytes + used, buf.data(), static_cast<size_t>(n));
    sh->sizes[sh->count++] = static_cast<uint32_t>(n);
    used += static_cast<size_t>(n);
  }
  ::close(gso);
  ::close(plain);
  return 0;
}

class OffloadKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    void* m =
        ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    shared_ = static_cast<Shared*>(m);
    ns_ = std::make_unique<Netns>("gso");
    ASSERT_TRUE(ns_->ok()) << ns_->error();
    std::string error;
    ASSERT_TRUE(ns_->sh_ok(
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 && "
        "ip tuntap add dev gso0 mode tap vnet_hdr && ip tuntap add dev plain0 mode tap && "
        "ip link add br0 type bridge stp_state 0 && ip link set gso0 master br0 && "
        "ip link set plain0 master br0 && ip link set br0 up && ip link set gso0 up && "
        "ip link set plain0 txqueuelen 2048 up",
        &error))
        << error;
  }
  void TearDown() override {
    ns_.reset();
    if (shared_ != nullptr) ::munmap(shared_, sizeof(Shared));
  }

  // software_offload()'s frames for `input` (vnet header + frame), and the kernel's.
  void run_both(const Bytes& input, std::vector<Bytes>* ours, std::vector<Bytes>* kernel) {
    OffloadInfo info;
    ASSERT_EQ(decode_virtio_net_hdr(input.data(), kVirtioNetHdrSize, &info), OffloadError::kOk);
    const OffloadError e = software_offload(input.data() + kVirtioNetHdrSize,
                                            static_cast<uint32_t>(input.size() - kVirtioNetHdrSize),
                                            info, [&](uint32_t n) {
                                              ours->emplace_back(n);
                                              return ours->back().data();
                                            });
    ASSERT_EQ(e, OffloadError::kOk) << offload_error_text(e);
    std::memset(shared_, 0, offsetof(Shared, bytes));
    const int rc = ns_->in_netns(
        [&] { return kernel_segments(input, static_cast<uint32_t>(ours->size()), shared_); },
        std::chrono::seconds(10));
    ASSERT_EQ(rc, 0) << shared_->error;
    ASSERT_EQ(shared_->count, ours->size()) << "segments the kernel sent to plain0";
    size_t at = 0;
    for (size_t i = 0; i < ours->size(); ++i) {
      kernel->emplace_back(shared_->bytes + at, shared_->bytes + at + shared_->sizes[i]);
      at += shared_->sizes[i];
    }
  }

  void compare(const Bytes& input) {
    std::vector<Bytes> ours, kernel;
    run_both(input, &ours, &kernel);
    ASSERT_EQ(kernel.size(), ours.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      ASSERT_EQ(kernel[i].size(), ours[i].size()) << "segment " << i;
      EXPECT_TRUE(kernel[i] == ours[i]) << "segment " << i << " differs from the kernel's";
    }
  }
  void compare(const Case& c) { compare(build(c)); }

  Shared* shared_ = nullptr;
  std::unique_ptr<Netns> ns_;
};

TEST_F(OffloadKernelTest, TcpV4SixtyFourKiBMatchesTheKernel) { compare(Case{}); }

TEST_F(OffloadKernelTest, TcpV4WithIpOptionsAndFinMatchesTheKernel) {
  Case c;
  c.ip_options = 8;
  c.flags = 0x19;  // ACK PSH FIN
  c.payload = 30000;
  compare(c);
}

TEST_F(OffloadKernelTest, TcpV4BehindAVlanTagMatchesTheKernel) {
  Case c;
  c.vlan = true;
  c.payload = 20000;
  compare(c);
}

TEST_F(OffloadKernelTest, TcpV6WithEcnAndCwrMatchesTheKernel) {
  Case c;
  c.v6 = true;
  c.ecn = true;
  c.flags = 0x80 | 0x18 | 0x01;  // CWR ACK PSH FIN
  c.gso_size = 1428;
  c.payload = 65549 - 14 - 40 - 32;
  compare(c);
}

TEST_F(OffloadKernelTest, SmallestGsoSizeGives1024SegmentsLikeTheKernel) {
  Case c;
  c.gso_size = kMinGsoSize;
  c.tcp_options = 0;
  c.payload = 65535 - 40;  // 1024 segments (kMaxSegmentCount)
  compare(c);
}

// virtio_net_hdr_to_skb() accepts GSO without NEEDS_CSUM (the spec says a driver MUST set it)
// and tcp4_gso_segment() then computes the pseudo-header itself.
TEST_F(OffloadKernelTest, TcpV4GsoWithoutNeedsCsumMatchesTheKernel) {
  Case c;
  c.needs_csum = false;
  c.payload = 10000;
  compare(c);
}

// Changes one payload word of the first output frame (after the TCP header of `c`) so that its
// TCP checksum comes out 0.
Bytes with_zero_checksum(const Case& c) {
  Bytes input = build(c);
  OffloadInfo info;
  decode_virtio_net_hdr(input.data(), kVirtioNetHdrSize, &info);
  std::vector<Bytes> out;
  software_offload(input.data() + kVirtioNetHdrSize,
                   static_cast<uint32_t>(input.size() - kVirtioNetHdrSize), info, [&](uint32_t n) {
                     out.emplace_back(n);
                     return out.back().data();
                   });
  const size_t field = info.csum_start + 16u;
  const uint32_t csum = uint32_t{out.at(0)[field]} << 8 | out.at(0)[field + 1];
  // The sum S gave csum = ~S; adding csum to a word makes the sum 0xffff, the checksum 0.
  const size_t word = kVirtioNetHdrSize + info.hdr_len + 10;
  uint32_t v = (uint32_t{input[word]} << 8 | input[word + 1]) + csum;
  v = (v & 0xffff) + (v >> 16);
  put16(input, word, v);
  return input;
}

// gso_make_checksum() stores a zero TCP checksum as 0, as we do.
TEST_F(OffloadKernelTest, ZeroChecksumOfASegmentMatchesTheKernel) {
  Case c;
  c.payload = 5000;
  const Bytes input = with_zero_checksum(c);
  std::vector<Bytes> ours, kernel;
  run_both(input, &ours, &kernel);
  ASSERT_EQ(kernel.size(), 4u);
  EXPECT_EQ(ours[0][14 + 20 + 16], 0);
  EXPECT_EQ(ours[0][14 + 20 + 17], 0);
  for (size_t i = 0; i < ours.size(); ++i) EXPECT_TRUE(kernel[i] == ours[i]) << "segment " << i;
}

// The one known difference: a frame not cut has its checksum completed by skb_checksum_help(),
// which stores a zero result as 0xffff (CSUM_MANGLED_0) whatever the protocol; we keep TCP's 0
// (both are one's complement zero; a receiver accepts either) and use 0xffff for UDP only.
TEST_F(OffloadKernelTest, ZeroChecksumOfAFrameNotCutIsTheKernels0xffff) {
  Case c;
  c.payload = 1000;
  const Bytes input = with_zero_checksum(c);
  std::vector<Bytes> ours, kernel;
  run_both(input, &ours, &kernel);
  ASSERT_EQ(kernel.size(), 1u);
  const size_t field = 14 + 20 + 16;
  EXPECT_EQ(ours[0][field], 0x00);
  EXPECT_EQ(ours[0][field + 1], 0x00);
  EXPECT_EQ(kernel[0][field], 0xff);
  EXPECT_EQ(kernel[0][field + 1], 0xff);
  kernel[0][field] = kernel[0][field + 1] = 0;
  EXPECT_TRUE(kernel[0] == ours[0]);
}

TEST_F(OffloadKernelTest, FrameNotLargerThanGsoSizeMatchesTheKernel) {
  Case c;
  c.payload = 1000;
  compare(c);
}

}  // namespace
}  // namespace qswitch::sw
