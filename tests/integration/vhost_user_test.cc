// tests/integration/vhost_user_test.cc: qswitch's vhost-user ports against a front-end driven
// by the test itself (tests/support/vhost_user_frontend.h: shared memfd guest memory, split
// rings, the vhost-user messages in QEMU 7.2's order), over real unix sockets.
//
// Each test starts qswitch with its stream listener (SwitchFixture) and a --vhost-user socket
// (or a connect: one), connects front-ends and stream clients, and asserts what crossed: frames
// byte-exact both ways, counters read through the control API (`ports` rows, `stats`' closed
// ports), ports that close on a broken ring or a bad message while every other port keeps
// forwarding. Every wait has a deadline.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/vhost_user_frontend.h"

namespace qswitch::integration {
namespace {

using test_support::frame_is_intact;
using test_support::make_frame;
using test_support::test_mac;
using test_support::VhostUserFrontend;
namespace vu = test_support::vu;

const Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// ---- TCP frames with offloads, built and checked here (independently of switch/offload.h) ----

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// The one's complement sum of `n` bytes (RFC 1071), not folded.
uint64_t sum_bytes(const uint8_t* p, size_t n, uint64_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n % 2 != 0) sum += uint32_t{p[n - 1]} << 8;
  return sum;
}
uint16_t fold(uint64_t sum) {
  while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// The pseudo-header sum of a TCP segment of `l4_len` bytes in the IP packet at `ip`.
uint64_t pseudo_sum(const uint8_t* ip, bool v6, uint32_t l4_len) {
  uint64_t sum = v6 ? sum_bytes(ip + 8, 32) : sum_bytes(ip + 12, 8);
  return sum + 6 + l4_len;
}

struct TcpFrame {
  std::vector<uint8_t> bytes;
  uint32_t l4 = 0;  // TCP header offset
  uint32_t payload = 0;
  bool v6 = false;
};

// Ethernet, IPv4 or IPv6, TCP (20 bytes, ACK|PSH), `payload` patterned bytes; the TCP checksum
// field holds the pseudo-header sum (folded, not inverted), as a guest leaves it for CSUM/TSO.
TcpFrame tcp_frame(const Mac& dst, const Mac& src, bool v6, uint32_t payload) {
  TcpFrame t;
  t.v6 = v6;
  t.payload = payload;
  const uint32_t ip_len = v6 ? 40 : 20;
  t.l4 = 14 + ip_len;
  t.bytes.assign(t.l4 + 20 + payload, 0);
  std::copy(dst.begin(), dst.end(), t.bytes.begin());
  std::copy(src.begin(), src.end(), t.bytes.begin() + 6);
  uint8_t* f = t.bytes.data();
  uint8_t* ip = f + 14;
  if (v6) {
    f[12] = 0x86;
    f[13] = 0xdd;
    ip[0] = 0x60;
    put16(ip + 4, 20 + payload);
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0xfd;
    ip[23] = 1;
    ip[24] = 0xfd;
    ip[39] = 2;
  } else {
    f[12] = 0x08;
    ip[0] = 0x45;
    put16(ip + 2, 20 + 20 + payload);
    put16(ip + 4, 0x4242);
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t a[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(ip + 12, a, 8);
    put16(ip + 10, static_cast<uint16_t>(~fold(sum_bytes(ip, 20))));
  }
  uint8_t* tcp = f + t.l4;
  put16(tcp, 40000);
  put16(tcp + 2, 5201);
  tcp[4] = 0x10;  // seq 0x10000000
  tcp[12] = 5 << 4;
  tcp[13] = 0x18;
  put16(tcp + 14, 65535);
  for (uint32_t i = 0; i < payload; ++i) tcp[20 + i] = static_cast<uint8_t>(i * 13 + i / 251);
  put16(tcp + 16, fold(pseudo_sum(ip, v6, 20 + payload)));
  return t;
}

// The virtio_net_hdr of a frame whose checksum (and, with gso_size, segmentation) is left to
// the switch: flags NEEDS_CSUM, gso_type TCPV4 (1) / TCPV6 (4) or NONE, hdr_len, gso_size,
// csum_start, csum_offset (little-endian).
std::array<uint8_t, vu::kNetHdrSize> offload_header(const TcpFrame& t, uint16_t gso_size) {
  std::array<uint8_t, vu::kNetHdrSize> h{};
  h[0] = 1;
  h[1] = gso_size == 0 ? 0 : (t.v6 ? 4 : 1);
  const uint16_t hdr_len = static_cast<uint16_t>(t.l4 + 20);
  const uint16_t fields[4] = {hdr_len, gso_size, static_cast<uint16_t>(t.l4), 16};
  for (int i = 0; i < 4; ++i) {
    h[2 + 2 * i] = static_cast<uint8_t>(fields[i]);
    h[3 + 2 * i] = static_cast<uint8_t>(fields[i] >> 8);
  }
  return h;
}

// `segment` is a whole, ordinary TCP frame: right lengths, IPv4 header checksum, TCP checksum.
::testing::AssertionResult valid_tcp_frame(const std::vector<uint8_t>& segment, bool v6,
                                           uint32_t l4, uint32_t payload) {
  if (segment.size() != l4 + 20 + payload) {
    return ::testing::AssertionFailure() << segment.size() << " bytes, want " << l4 + 20 + payload;
  }
  const uint8_t* ip = segment.data() + 14;
  if (v6 ? get16(ip + 4) != 20 + payload : get16(ip + 2) != 40 + payload) {
    return ::testing::AssertionFailure() << "IP length";
  }
  if (!v6 && fold(sum_bytes(ip, 20)) != 0xffff) {
    return ::testing::AssertionFailure() << "IPv4 header checksum";
  }
  const uint64_t tcp_sum =
      sum_bytes(segment.data() + l4, 20 + payload, pseudo_sum(ip, v6, 20 + payload));
  if (fold(tcp_sum) != 0xffff) return ::testing::AssertionFailure() << "TCP checksum";
  return ::testing::AssertionSuccess();
}

const uint64_t kHostOffloads = vu::kFCsum | vu::kFHostTso4 | vu::kFHostTso6;
const uint64_t kGuestOffloads = vu::kFGuestCsum | vu::kFGuestTso4 | vu::kFGuestTso6;

class VhostUserTest : public SwitchFixture {
 public:
  const std::string& address() const { return address_; }
  bool wait_ports(size_t count) { return wait_port_count(count); }

  std::string vu_path() { return tmp_.file("vu.sock"); }

  ::testing::AssertionResult start(std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), {"--vhost-user", "unix:" + vu_path()});
    return start_switch(extra);
  }

  // A front-end connected to qswitch's vhost-user socket, its device started.
  std::unique_ptr<VhostUserFrontend> guest(VhostUserFrontend::Options options = {},
                                           bool start_device = true) {
    std::string error;
    auto g = VhostUserFrontend::create(options, &error);
    EXPECT_TRUE(g) << error;
    if (!g) return nullptr;
    error = g->connect(vu_path(), 5s);
    if (error.empty()) error = g->handshake();
    if (error.empty() && start_device) error = g->start();
    EXPECT_EQ(error, "");
    return error.empty() ? std::move(g) : nullptr;
  }

  // `from` sends `frame`; `to` (a stream client) must receive it byte-exact.
  static ::testing::AssertionResult guest_to_stream(VhostUserFrontend& from, FrameClient& to,
                                                    const std::vector<uint8_t>& frame,
                                                    VhostUserFrontend::SendOptions options = {}) {
    const std::string error = from.send(frame, options);
    if (!error.empty()) return ::testing::AssertionFailure() << "send: " << error;
    RecvResult r = to.recv_frame(5s);
    if (!r.ok()) return ::testing::AssertionFailure() << "stream client: " << r.error;
    // A stream port pads to 60 bytes.
    if (r.frame.size() < frame.size() || !std::equal(frame.begin(), frame.end(), r.frame.begin())) {
      return ::testing::AssertionFailure()
             << "frame of " << frame.size() << " bytes arrived as " << r.frame.size() << " bytes";
    }
    return ::testing::AssertionSuccess();
  }

  static ::testing::AssertionResult stream_to_guest(FrameClient& from, VhostUserFrontend& to,
                                                    const std::vector<uint8_t>& frame) {
    if (!from.send_frame(frame)) return ::testing::AssertionFailure() << "send_frame failed";
    VhostUserFrontend::Received r = to.receive(5s);
    if (!r.ok()) return ::testing::AssertionFailure() << "receive: " << r.error;
    if (r.frame != frame) {
      return ::testing::AssertionFailure() << "frame of " << frame.size() << " bytes arrived as "
                                           << r.frame.size() << " bytes (or with other contents)";
    }
    for (uint32_t i = 0; i < 10 && i < to.header_size(); ++i) {
      if (r.header[i] != 0) return ::testing::AssertionFailure() << "header byte " << i << " set";
    }
    return ::testing::AssertionSuccess();
  }

  // The `ports` row of the first vhost-user port.
  nlohmann::json vhost_row() { return port_of_kind(sw_, "vhost-user"); }

  // How many closed ports `stats` remembers now.
  size_t closed_count() {
    const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
    return stats.is_object() ? stats["closed_ports"].size() : 0;
  }

  // The row of the port that closed after `stats` remembered `before` closed ports, waiting
  // until it is there.
  nlohmann::json next_closed_port(size_t before, Millis timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
      if (stats.is_object() && stats["closed_ports"].size() > before) {
        return stats["closed_ports"][before];
      }
      ::poll(nullptr, 0, 20);
    }
    ADD_FAILURE() << "no port closed within the deadline";
    return nlohmann::json();
  }
};

TEST_F(VhostUserTest, FramesCrossBothWaysBetweenAGuestAndAStreamPort) {
  ASSERT_TRUE(start());
  VhostUserFrontend::Options options;
  options.memory_size = 32 << 20;
  options.tx_slot_size = 66000;
  auto g = guest(options);
  ASSERT_TRUE(g);
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  ASSERT_TRUE(wait_port_count(2));  // the stream client's port is up before the first flood
  FrameClient& s = clients[0];
  const Mac gm = test_mac(1), sm = test_mac(2);
  // The guest's broadcast teaches the switch its MAC; the stream client's the same.
  ASSERT_TRUE(guest_to_stream(*g, s, make_frame(kBroadcast, gm, 60, 1)));
  ASSERT_TRUE(stream_to_guest(s, *g, make_frame(kBroadcast, sm, 60, 2)));
  uint32_t seq = 10;
  for (size_t size :
       {size_t{14}, size_t{60}, size_t{1514}, size_t{2048}, size_t{9014}, size_t{65549}}) {
    ASSERT_TRUE(guest_to_stream(*g, s, make_frame(sm, gm, size, ++seq))) << size;
    // Toward the guest a frame may take several 2060-byte mergeable buffers.
    ASSERT_TRUE(stream_to_guest(s, *g, make_frame(gm, sm, size, ++seq))) << size;
  }
  const nlohmann::json row = vhost_row();
  EXPECT_EQ(row["endpoint"], "vhost-user-1") << row;
  EXPECT_EQ(port_counter(row, "rx_frames"), 7u) << row;
  EXPECT_EQ(port_counter(row, "tx_frames"), 7u) << row;
  EXPECT_GT(port_counter(row, "vhost_kicks"), 0u) << row;
  EXPECT_GE(port_counter(row, "vhost_descriptors"), 14u) << row;
  EXPECT_EQ(port_counter(row, "vhost_ring_errors"), 0u) << row;
  EXPECT_EQ(port_counter(row, "vhost_protocol_errors"), 0u) << row;
  EXPECT_GT(g->counters().interrupts, 0u);
}

TEST_F(VhostUserTest, EveryDescriptorLayoutAndMemoryLayoutCarriesFrames) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  FrameClient& s = clients[0];
  const Mac sm = test_mac(100);
  uint32_t seq = 0;
  uint32_t index = 0;
  for (auto memory : {VhostUserFrontend::MemoryLayout::kOneRegion,
                      VhostUserFrontend::MemoryLayout::kTwoRegionsOneFd,
                      VhostUserFrontend::MemoryLayout::kTwoRegionsTwoFds}) {
    VhostUserFrontend::Options options;
    options.memory_layout = memory;
    auto g = guest(options);
    ASSERT_TRUE(g);
    const Mac gm = test_mac(++index);
    for (auto layout :
         {VhostUserFrontend::TxLayout::kOneDescriptor,
          VhostUserFrontend::TxLayout::kHeaderThenFrame, VhostUserFrontend::TxLayout::kIndirect}) {
      VhostUserFrontend::SendOptions send;
      send.layout = layout;
      ASSERT_TRUE(guest_to_stream(*g, s, make_frame(kBroadcast, gm, 1514, ++seq), send))
          << "memory layout " << static_cast<int>(memory) << " tx layout "
          << static_cast<int>(layout);
    }
    ASSERT_TRUE(stream_to_guest(s, *g, make_frame(gm, sm, 1514, ++seq)));
    g->close();
    ASSERT_TRUE(wait_port_count(1));  // the stream client's port only
  }
}

TEST_F(VhostUserTest, GuestsWithoutEventIdxOrMergeableBuffersWork) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  FrameClient& s = clients[0];
  const Mac sm = test_mac(100);
  VhostUserFrontend::Options options;
  options.wanted_features = vu::kFVersion1 | vu::kFProtocolFeatures;  // no EVENT_IDX, MRG_RXBUF
  auto g = guest(options);
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->has(vu::kFMrgRxbuf));
  EXPECT_FALSE(g->has(vu::kFEventIdx));
  const Mac gm = test_mac(1);
  ASSERT_TRUE(guest_to_stream(*g, s, make_frame(kBroadcast, gm, 60, 1)));
  for (uint32_t i = 0; i < 300; ++i) {  // more than the ring holds: buffers are re-posted
    ASSERT_TRUE(stream_to_guest(s, *g, make_frame(gm, sm, 60 + i, 100 + i))) << i;
  }
  // One buffer per frame: a frame larger than a buffer (2048 + 12) is dropped and counted.
  ASSERT_TRUE(s.send_frame(make_frame(gm, sm, 4000, 999)));
  ASSERT_TRUE(stream_to_guest(s, *g, make_frame(gm, sm, 1514, 1000)));
  const nlohmann::json row = vhost_row();
  EXPECT_EQ(port_counter(row, "vhost_rx_too_large"), 1u) << row;
  EXPECT_EQ(port_counter(row, "tx_frames"), 301u) << row;
}

TEST_F(VhostUserTest, TwoGuestsReachEachOther) {
  ASSERT_TRUE(start({"--guests", "0"}));
  auto a = guest();
  auto b = guest();
  ASSERT_TRUE(a && b);
  const Mac am = test_mac(1), bm = test_mac(2);
  ASSERT_EQ(a->send(make_frame(kBroadcast, am, 60, 1)), "");
  VhostUserFrontend::Received r = b->receive(5s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(frame_is_intact(r.frame, 60));
  for (uint32_t i = 0; i < 200; ++i) {
    ASSERT_EQ(b->send(make_frame(am, bm, 1514, 10 + i)), "");
    r = a->receive(5s);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error;
    ASSERT_EQ(r.frame, make_frame(am, bm, 1514, 10 + i)) << i;
  }
}

TEST_F(VhostUserTest, GetVringBaseSaysWhereTheQueuesStopped) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  auto g = guest();
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1);
  for (uint32_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 100, i)));
  }
  std::array<uint32_t, 2> bases{};
  ASSERT_EQ(g->stop(&bases), "");
  EXPECT_EQ(bases[vu::kTxQueue], 5u);  // five chains taken from the transmit queue
  // A stopped queue takes nothing more: a chain made available and kicked is not forwarded.
  std::vector<uint8_t> chain(g->header_size(), 0);
  const std::vector<uint8_t> frame = make_frame(kBroadcast, gm, 100, 6);
  chain.insert(chain.end(), frame.begin(), frame.end());
  const uint64_t gpa = g->alloc(chain.size(), 16);
  ASSERT_NE(gpa, 0u);
  ASSERT_TRUE(g->write_guest(gpa, chain));
  g->write_desc(vu::kTxQueue, 0, gpa, static_cast<uint32_t>(chain.size()), 0, 0);
  g->push_avail(vu::kTxQueue, 0);
  g->kick(vu::kTxQueue);
  EXPECT_TRUE(expect_silence(clients[0], "stream client"));
}

TEST_F(VhostUserTest, FramesBeforeTheDeviceStartsAreDroppedAndCounted) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  auto g = guest({}, false);  // handshake only: no rings yet
  ASSERT_TRUE(g);
  ASSERT_TRUE(wait_port_count(2));
  ASSERT_TRUE(clients[0].send_frame(make_frame(kBroadcast, test_mac(2), 60, 1)));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  uint64_t not_running = 0;
  while (not_running == 0 && std::chrono::steady_clock::now() < deadline) {
    const nlohmann::json row = vhost_row();
    not_running = row.is_object() ? port_counter(row, "vhost_not_running") : 0;
  }
  EXPECT_EQ(not_running, 1u);
  ASSERT_EQ(g->start(), "");
  ASSERT_TRUE(stream_to_guest(clients[0], *g, make_frame(kBroadcast, test_mac(2), 60, 2)));
}

TEST_F(VhostUserTest, AGuestThatPostsNoBuffersCostsOnlyItsOwnFrames) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(2, &clients));
  VhostUserFrontend::Options options;
  options.rx_buffer_count = 8;
  auto g = guest(options);
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1), am = test_mac(2), bm = test_mac(3);
  std::vector<Mac> macs = {am, bm};
  ASSERT_TRUE(announce(clients, macs));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(g->receive(5s).ok());  // the two announcements
  ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 60, 1)));
  ASSERT_TRUE(clients[1].recv_frame(5s).ok());  // the broadcast reached the other client too
  // 2000 frames of 1514 bytes toward a guest that takes 8 and then nothing: well past the 1 MiB
  // queue, so frames are dropped once it is full.
  std::vector<uint8_t> wire;
  for (uint32_t i = 0; i < 2000; ++i) {
    FrameClient::append_wire(&wire, make_frame(gm, am, 1514, 1000 + i));
  }
  ASSERT_TRUE(clients[0].send_raw(wire, 10s));
  // Meanwhile the two stream clients still reach each other.
  ASSERT_TRUE(send_and_expect(clients[1], clients[0], am, bm, 1514, 5));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  nlohmann::json row;
  while (std::chrono::steady_clock::now() < deadline) {
    row = vhost_row();
    if (row.is_object() && port_counter(row, "drop_queue_full") > 0) break;
    ::poll(nullptr, 0, 20);
  }
  EXPECT_GT(port_counter(row, "drop_queue_full"), 0u) << row;
  EXPECT_GT(port_counter(row, "vhost_rx_no_room"), 0u) << row;
  // The guest takes its frames now: the first ones arrive in order.
  for (uint32_t i = 0; i < 20; ++i) {
    VhostUserFrontend::Received r = g->receive(5s);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error;
    ASSERT_EQ(r.frame, make_frame(gm, am, 1514, 1000 + i)) << i;
  }
}

TEST_F(VhostUserTest, ABrokenRingClosesThatPortOnly) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  const Mac sm = test_mac(100);
  uint32_t index = 0;
  for (auto kind :
       {VhostUserFrontend::HostileTx::kOutsideMemory, VhostUserFrontend::HostileTx::kLoop,
        VhostUserFrontend::HostileTx::kIndirectBadLength,
        VhostUserFrontend::HostileTx::kAvailIdxTooFar}) {
    SCOPED_TRACE(static_cast<int>(kind));
    auto bad = guest();
    auto good = guest();
    ASSERT_TRUE(bad && good);
    const Mac gm = test_mac(++index);
    ASSERT_TRUE(guest_to_stream(*good, clients[0], make_frame(kBroadcast, gm, 60, 1)));
    const size_t before = closed_count();
    bad->break_tx(kind);
    const nlohmann::json closed = next_closed_port(before);
    EXPECT_EQ(closed.value("kind", ""), "vhost-user") << closed;
    EXPECT_EQ(port_counter(closed, "vhost_ring_errors"), 1u) << closed;
    ASSERT_TRUE(wait_port_count(2));  // the stream client and the good guest
    // The other guest still forwards both ways.
    ASSERT_TRUE(guest_to_stream(*good, clients[0], make_frame(sm, gm, 1514, 2)));
    ASSERT_TRUE(stream_to_guest(clients[0], *good, make_frame(gm, sm, 1514, 3)));
    good->close();
    ASSERT_TRUE(wait_port_count(1));
  }
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  uint64_t ring_errors = 0;
  for (const nlohmann::json& p : stats["closed_ports"]) {
    ring_errors += p["counters"].value("vhost_ring_errors", uint64_t{0});
  }
  EXPECT_EQ(ring_errors, 4u) << stats;
}

TEST_F(VhostUserTest, BadMessagesCloseThatPortWithTheReason) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  struct Case {
    const char* what;
    uint32_t request;
    std::vector<uint8_t> payload;
  };
  auto u64 = [](uint64_t v) {
    std::vector<uint8_t> b(8);
    std::memcpy(b.data(), &v, 8);
    return b;
  };
  const std::vector<Case> cases = {
      {"unknown request", 9999, {}},
      {"SET_LOG_BASE (not offered)", 6, u64(0)},
      {"SET_FEATURES with bits not offered", vu::kSetFeatures, u64(uint64_t{1} << 22)},
      {"SET_VRING_NUM for queue 5", vu::kSetVringNum, {5, 0, 0, 0, 0, 1, 0, 0}},
      {"GET_FEATURES with a payload it does not take", vu::kGetFeatures, u64(1)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto g = guest({}, false);
    ASSERT_TRUE(g);
    const size_t before = closed_count();
    ASSERT_EQ(g->send_message(c.request, c.payload), "");
    const nlohmann::json closed = next_closed_port(before);
    EXPECT_EQ(port_counter(closed, "vhost_protocol_errors"), 1u) << closed;
    ASSERT_TRUE(wait_port_count(1));
    // The switch goes on: the next guest works.
    auto next = guest();
    ASSERT_TRUE(next);
    ASSERT_TRUE(guest_to_stream(*next, clients[0], make_frame(kBroadcast, test_mac(7), 60, 1)));
    next->close();
    ASSERT_TRUE(wait_port_count(1));
  }
}

TEST_F(VhostUserTest, AMemoryTableBeyondItsFileIsRefused) {
  ASSERT_TRUE(start());
  auto g = guest({}, false);
  ASSERT_TRUE(g);
  const size_t before = closed_count();
  // One region of 1 MiB over a memfd of 4 KiB: mapping it would fault when touched.
  const int fd = ::memfd_create("small", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  std::vector<uint8_t> table(8 + 32, 0);
  const uint32_t count = 1;
  const uint64_t gpa = 0, size = 1 << 20, ua = 0x7f0000000000, offset = 0;
  std::memcpy(table.data(), &count, 4);
  std::memcpy(table.data() + 8, &gpa, 8);
  std::memcpy(table.data() + 16, &size, 8);
  std::memcpy(table.data() + 24, &ua, 8);
  std::memcpy(table.data() + 32, &offset, 8);
  const int fds[1] = {fd};
  ASSERT_EQ(g->send_message(vu::kSetMemTable, table, fds, vu::kFlagNeedReply), "");
  ::close(fd);
  // The refusal is acknowledged as a failure (u64 1), then the port closes.
  const test_support::VuReply reply = g->read_reply(5s);
  ASSERT_TRUE(reply.ok()) << reply.error;
  ASSERT_TRUE(reply.u64().has_value());
  EXPECT_EQ(*reply.u64(), 1u);
  const nlohmann::json closed = next_closed_port(before);
  EXPECT_EQ(port_counter(closed, "vhost_protocol_errors"), 1u) << closed;
}

TEST_F(VhostUserTest, AGuestThatVanishesIsForgottenAndANewOneWorks) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  for (uint32_t round = 0; round < 5; ++round) {
    auto g = guest();
    ASSERT_TRUE(g);
    ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, test_mac(1), 60, round)));
    ASSERT_TRUE(stream_to_guest(clients[0], *g, make_frame(test_mac(1), test_mac(2), 60, round)));
    g.reset();  // socket, eventfds and memory go at once, mid-session
    ASSERT_TRUE(wait_port_count(1)) << "round " << round;
  }
}

TEST_F(VhostUserTest, QswitchDialsAFrontEndThatListensAndRedials) {
  const std::string path = tmp_.file("qemu-vu.sock");
  std::string error;
  auto g = VhostUserFrontend::create({}, &error);
  ASSERT_TRUE(g) << error;
  ASSERT_EQ(g->listen(path), "");
  ASSERT_TRUE(start_switch({"--vhost-user", "connect:" + path}));
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  for (uint32_t round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    ASSERT_EQ(g->accept(10s), "");
    ASSERT_EQ(g->handshake(), "");
    ASSERT_EQ(g->start(), "");
    ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, test_mac(1), 60, round)));
    ASSERT_TRUE(stream_to_guest(clients[0], *g, make_frame(test_mac(1), test_mac(2), 60, round)));
    const nlohmann::json row = vhost_row();
    EXPECT_EQ(row["endpoint"], "vhost-user-1") << row;
    // The front-end drops the connection (a QEMU restarting its chardev): qswitch redials.
    g->close();
  }
}

TEST_F(VhostUserTest, PortAddAndRemoveAVhostUserSocketAtRunTime) {
  ASSERT_TRUE(start_switch());
  const std::string path = tmp_.file("added.sock");
  const nlohmann::json added = control_result(
      sw_, {{"cmd", "port.add"}, {"args", {{"mode", "vhost-user"}, {"address", "unix:" + path}}}});
  ASSERT_EQ(added["endpoint"], "vhost-user-1") << added;
  std::string error;
  auto g = VhostUserFrontend::create({}, &error);
  ASSERT_TRUE(g) << error;
  ASSERT_EQ(g->connect(path, 5s), "");
  ASSERT_EQ(g->handshake(), "");
  ASSERT_EQ(g->start(), "");
  ASSERT_TRUE(wait_port_count(1));
  const nlohmann::json listeners = control_result(sw_, {{"cmd", "stats"}})["listeners"];
  bool listed = false;
  for (const nlohmann::json& l : listeners) listed |= l.value("endpoint", "") == "vhost-user-1";
  EXPECT_TRUE(listed) << listeners;
  // A tcp address is refused with what would be accepted.
  auto c = test_support::ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(c) << error;
  const test_support::LineResult r =
      c->request(R"({"cmd":"port.add","args":{"mode":"vhost-user","address":"tcp:127.0.0.1:1"}})");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_NE(r.line.find("expected unix:PATH (qswitch listens) or connect:PATH"), std::string::npos)
      << r.line;
  // Removing the endpoint disconnects its guest and removes the socket file.
  const nlohmann::json removed =
      control_result(sw_, {{"cmd", "port.remove"}, {"args", {{"id", "vhost-user-1"}}}});
  ASSERT_TRUE(removed.is_object()) << removed;
  ASSERT_TRUE(wait_port_count(0));
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << " is still there";
}

TEST_F(VhostUserTest, LargeTcpSegmentsAreCutForAStreamPortIntoValidFrames) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  VhostUserFrontend::Options options;
  options.memory_size = 32 << 20;
  options.tx_slot_size = 66000;
  options.wanted_features |= kHostOffloads;
  auto g = guest(options);
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->has(vu::kFHostTso4) && g->has(vu::kFHostTso6) && g->has(vu::kFCsum));
  const Mac gm = test_mac(1), sm = test_mac(2);
  ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 60, 1)));
  ASSERT_TRUE(stream_to_guest(clients[0], *g, make_frame(gm, sm, 60, 2)));
  for (const bool v6 : {false, true}) {
    SCOPED_TRACE(v6 ? "TCPv6" : "TCPv4");
    const uint32_t payload = v6 ? 30000 : 60000;
    const uint16_t mss = 1448;
    const TcpFrame t = tcp_frame(sm, gm, v6, payload);
    VhostUserFrontend::SendOptions send;
    send.header = offload_header(t, mss);
    ASSERT_EQ(g->send(t.bytes, send), "");
    std::vector<uint8_t> joined;
    uint32_t seq = 0x10000000;
    const uint32_t count = (payload + mss - 1) / mss;
    for (uint32_t i = 0; i < count; ++i) {
      RecvResult r = clients[0].recv_frame(5s);
      ASSERT_TRUE(r.ok()) << "segment " << i << ": " << r.error;
      const uint32_t part = i + 1 < count ? mss : payload - mss * (count - 1);
      ASSERT_TRUE(valid_tcp_frame(r.frame, v6, t.l4, part)) << "segment " << i;
      EXPECT_EQ(get32(r.frame.data() + t.l4 + 4), seq) << "segment " << i;
      EXPECT_EQ(r.frame[t.l4 + 13] & 0x08, i + 1 == count ? 0x08 : 0) << "PSH, segment " << i;
      if (!v6) {
        EXPECT_EQ(get16(r.frame.data() + 18), 0x4242 + i) << "IPv4 id, segment " << i;
      }
      joined.insert(joined.end(), r.frame.begin() + t.l4 + 20, r.frame.end());
      seq += part;
    }
    EXPECT_TRUE(
        std::equal(joined.begin(), joined.end(), t.bytes.begin() + t.l4 + 20, t.bytes.end()));
    EXPECT_EQ(joined.size(), payload);
  }
  const nlohmann::json row = vhost_row();
  EXPECT_EQ(port_counter(row, "vhost_gso_frames"), 2u) << row;
  EXPECT_EQ(port_counter(row, "vhost_bad_offload"), 0u) << row;
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  EXPECT_EQ(stats["gso_cut"], 2u) << stats;
  EXPECT_EQ(stats["gso_segments"], (60000u + 1447) / 1448 + (30000u + 1447) / 1448) << stats;
}

TEST_F(VhostUserTest, ALargeSegmentCrossesWholeToAGuestThatTakesIt) {
  ASSERT_TRUE(start({"--guests", "0"}));
  VhostUserFrontend::Options sender;
  sender.memory_size = 32 << 20;
  sender.tx_slot_size = 66000;
  sender.wanted_features |= kHostOffloads;
  VhostUserFrontend::Options receiver;
  receiver.memory_size = 32 << 20;
  receiver.wanted_features |= kGuestOffloads;
  auto a = guest(sender);
  auto b = guest(receiver);
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(b->has(vu::kFGuestTso4));
  const Mac am = test_mac(1), bm = test_mac(2);
  ASSERT_EQ(b->send(make_frame(kBroadcast, bm, 60, 1)), "");
  ASSERT_TRUE(a->receive(5s).ok());
  const TcpFrame t = tcp_frame(bm, am, false, 60000);
  VhostUserFrontend::SendOptions send;
  send.header = offload_header(t, 1448);
  ASSERT_EQ(a->send(t.bytes, send), "");
  const VhostUserFrontend::Received r = b->receive(5s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.frame, t.bytes);  // whole, its checksum still the guest's pseudo-header sum
  EXPECT_GT(r.buffers, 1u);     // over several mergeable buffers
  EXPECT_EQ(r.header[0], 1);    // NEEDS_CSUM
  EXPECT_EQ(r.header[1], 1);    // GSO TCPV4
  EXPECT_EQ(r.header[2] | r.header[3] << 8, 54);  // hdr_len
  EXPECT_EQ(r.header[4] | r.header[5] << 8, 1448);
  EXPECT_EQ(r.header[6] | r.header[7] << 8, 34);  // csum_start
  EXPECT_EQ(r.header[8] | r.header[9] << 8, 16);  // csum_offset
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  EXPECT_EQ(stats["gso_cut"], 0u) << stats;
}

TEST_F(VhostUserTest, AChecksumLeftToTheSwitchIsCompleted) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  VhostUserFrontend::Options options;
  options.wanted_features |= vu::kFCsum;
  auto g = guest(options);
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1), sm = test_mac(2);
  for (const bool v6 : {false, true}) {
    for (const uint32_t payload : {0u, 1u, 101u, 1400u}) {
      const TcpFrame t = tcp_frame(sm, gm, v6, payload);
      VhostUserFrontend::SendOptions send;
      send.header = offload_header(t, 0);
      ASSERT_EQ(g->send(t.bytes, send), "");
      RecvResult r = clients[0].recv_frame(5s);
      ASSERT_TRUE(r.ok()) << r.error;
      r.frame.resize(t.bytes.size());  // a stream port pads to 60 bytes
      EXPECT_TRUE(valid_tcp_frame(r.frame, v6, t.l4, payload)) << payload;
    }
  }
  EXPECT_EQ(port_counter(vhost_row(), "vhost_csum_completed"), 8u);
}

TEST_F(VhostUserTest, BadOffloadHeadersAreDroppedAndCountedAndThePortStays) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  VhostUserFrontend::Options options;
  options.wanted_features |= kHostOffloads;
  auto g = guest(options);
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1), sm = test_mac(2);
  const TcpFrame t = tcp_frame(sm, gm, false, 3000);
  std::vector<std::array<uint8_t, vu::kNetHdrSize>> bad;
  bad.push_back(offload_header(t, 1448));
  bad.back()[1] = 3;  // GSO UDP: not offered
  bad.push_back(offload_header(t, 0));
  bad.back()[1] = 1;  // TCPV4 with gso_size 0
  bad.push_back(offload_header(t, 1448));
  bad.back()[1] = 4;  // TCPV6 on an IPv4 frame
  bad.push_back(offload_header(t, 1448));
  bad.back()[6] = 0xff;  // csum_start past the frame
  for (const auto& header : bad) {
    VhostUserFrontend::SendOptions send;
    send.header = header;
    ASSERT_EQ(g->send(t.bytes, send), "");
  }
  // A good frame after them arrives first: the bad ones were dropped, the port stays.
  ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(sm, gm, 100, 5)));
  EXPECT_EQ(port_counter(vhost_row(), "vhost_bad_offload"), 4u);
}

// A front-end's kick and call fds are untrusted too: a regular file cannot be polled (the port
// closes, a protocol error), and a blocking pipe never blocks the switch.
TEST_F(VhostUserTest, HostileKickAndCallFdsNeverBlockTheSwitch) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  const Mac gm = test_mac(1), sm = test_mac(2);
  auto u64_for = [](uint64_t v) {
    std::vector<uint8_t> b(8);
    std::memcpy(b.data(), &v, 8);
    return b;
  };
  {
    auto g = guest();
    ASSERT_TRUE(g);
    // A call fd that is a full, blocking pipe: interrupts cannot be written.
    int call[2];
    ASSERT_EQ(::pipe2(call, O_NONBLOCK | O_CLOEXEC), 0);
    const std::vector<uint8_t> chunk(4096, 0);
    for (int i = 0; i < 1024 && ::write(call[1], chunk.data(), chunk.size()) > 0; ++i) {
    }
    ASSERT_EQ(::fcntl(call[1], F_SETFL, 0), 0);  // blocking again, and full
    ASSERT_EQ(g->send_message(vu::kSetVringCall, u64_for(vu::kRxQueue), {&call[1], 1}), "");
    // A kick fd that is a blocking pipe with 8 bytes in it: a second read would block.
    int kick[2];
    ASSERT_EQ(::pipe2(kick, O_CLOEXEC), 0);
    ASSERT_EQ(::write(kick[1], "abcdefgh", 8), 8);
    ASSERT_EQ(g->send_message(vu::kSetVringKick, u64_for(vu::kRxQueue), {&kick[0], 1}), "");
    ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 60, 1)));
    // Frames toward the guest: the interrupt cannot be written, nothing blocks; the guest finds
    // them in its used ring, and the switch answers.
    for (uint32_t i = 0; i < 3; ++i) {
      ASSERT_TRUE(clients[0].send_frame(make_frame(gm, sm, 100, 10 + i)));
      const VhostUserFrontend::Received r = g->receive(5s);
      ASSERT_TRUE(r.ok()) << r.error;
      EXPECT_EQ(r.frame, make_frame(gm, sm, 100, 10 + i));
    }
    EXPECT_TRUE(control_result(sw_, {{"cmd", "ports"}}).is_array());
    ::close(call[0]);
    ::close(call[1]);
    ::close(kick[0]);
    ::close(kick[1]);
  }
  ASSERT_TRUE(wait_port_count(1));
  // A kick fd that is a regular file (a memfd): it cannot be polled; that port closes.
  auto g = guest();
  ASSERT_TRUE(g);
  const size_t before = closed_count();
  const int file = ::memfd_create("kick", MFD_CLOEXEC);
  ASSERT_GE(file, 0);
  ASSERT_EQ(g->send_message(vu::kSetVringKick, u64_for(vu::kTxQueue), {&file, 1}), "");
  ::close(file);
  const nlohmann::json closed = next_closed_port(before);
  EXPECT_EQ(port_counter(closed, "vhost_protocol_errors"), 1u) << closed;
  ASSERT_TRUE(wait_port_count(1));
}

// A front-end that shrinks the file behind the memory it shared (a hostile one: QEMU seals its
// memfds) makes the switch's next access fault: that port closes, the switch goes on.
TEST_F(VhostUserTest, AFrontEndThatShrinksItsMemoryLosesOnlyItsPort) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  auto g = guest();
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1), sm = test_mac(2);
  ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 60, 1)));
  const size_t before = closed_count();
  ASSERT_TRUE(g->shrink_memory());
  g->kick(vu::kTxQueue);
  const nlohmann::json closed = next_closed_port(before);
  EXPECT_EQ(port_counter(closed, "vhost_ring_errors"), 1u) << closed;
  ASSERT_TRUE(wait_port_count(1));
  // The switch goes on: a new guest works.
  auto next = guest();
  ASSERT_TRUE(next);
  ASSERT_TRUE(guest_to_stream(*next, clients[0], make_frame(kBroadcast, test_mac(3), 60, 2)));
  ASSERT_TRUE(stream_to_guest(clients[0], *next, make_frame(test_mac(3), sm, 60, 3)));
}

// ---- Zero copy: frames lent out of sealed guest memory (backends/vhost_user/tx_loans.h) ----

// Waits until `row_of()`'s counter `name` is at least `want`; returns the last value seen.
template <typename RowFn>
uint64_t wait_counter(RowFn row_of, const std::string& name, uint64_t want, Millis timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  uint64_t seen = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const nlohmann::json row = row_of();
    seen = row.is_object() ? port_counter(row, name) : 0;
    if (seen >= want) break;
    ::poll(nullptr, 0, 10);
  }
  return seen;
}

// Takes back the TX buffers the device used until none is in flight, or `timeout`.
bool all_buffers_back(VhostUserFrontend& g, Millis timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    g.reclaim_tx();
    if (g.tx_in_flight() == 0) return true;
    ::poll(nullptr, 0, 10);
  }
  return false;
}

TEST_F(VhostUserTest, LentFramesReachStreamPortsGuestsAndSlirpWhole) {
  ASSERT_TRUE(start({"--slirp", "restrict=on"}));
  VhostUserFrontend::Options sealed;
  sealed.memory_size = 32 << 20;
  sealed.tx_slot_size = 66000;
  sealed.seal_memory = true;
  auto a = guest(sealed);
  VhostUserFrontend::Options plain;
  plain.memory_size = 32 << 20;
  auto b = guest(plain);
  ASSERT_TRUE(a && b);
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  ASSERT_TRUE(wait_port_count(4));
  FrameClient& s = clients[0];
  const Mac am = test_mac(1), bm = test_mac(2), sm = test_mac(3);
  ASSERT_TRUE(guest_to_stream(*a, s, make_frame(kBroadcast, am, 60, 1)));  // copied: < 2048 B
  ASSERT_TRUE(b->receive(5s).ok());
  ASSERT_TRUE(stream_to_guest(s, *b, make_frame(kBroadcast, sm, 60, 2)));
  ASSERT_TRUE(a->receive(5s).ok());
  ASSERT_EQ(b->send(make_frame(kBroadcast, bm, 60, 3)), "");
  ASSERT_TRUE(a->receive(5s).ok());
  ASSERT_TRUE(s.recv_frame(5s).ok());
  uint32_t seq = 10;
  uint64_t lent = 0;
  // To the stream port, in every descriptor layout: a frame whose bytes are in one piece after
  // the header is lent (all three layouts put it so).
  for (const auto layout :
       {VhostUserFrontend::TxLayout::kOneDescriptor, VhostUserFrontend::TxLayout::kHeaderThenFrame,
        VhostUserFrontend::TxLayout::kIndirect}) {
    for (size_t size : {size_t{1514}, size_t{2047}, size_t{2048}, size_t{9014}, size_t{65549}}) {
      VhostUserFrontend::SendOptions o;
      o.layout = layout;
      ASSERT_TRUE(guest_to_stream(*a, s, make_frame(sm, am, size, ++seq), o)) << size;
      if (size >= 2048) ++lent;
    }
  }
  // To a guest: copied from the lender's memory into its buffers (mergeable, several).
  for (size_t size : {size_t{4096}, size_t{9014}}) {
    const std::vector<uint8_t> f = make_frame(bm, am, size, ++seq);
    ASSERT_EQ(a->send(f), "");
    const VhostUserFrontend::Received r = b->receive(5s);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.frame, f) << size;
    ++lent;
  }
  // A broadcast: the stream port and the guest take the lent frame; the slirp port (which
  // takes only contiguous frames) gets the switch's copy.
  const std::vector<uint8_t> flood = make_frame(kBroadcast, am, 4096, ++seq);
  ASSERT_TRUE(guest_to_stream(*a, s, flood));
  const VhostUserFrontend::Received r = b->receive(5s);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.frame, flood);
  ++lent;
  EXPECT_EQ(wait_counter([&] { return port_with_mac(sw_, am); }, "vhost_tx_lent", lent), lent);
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  EXPECT_EQ(stats["split_copies"], 1u) << stats;
  EXPECT_EQ(stats["split_dropped"], 0u) << stats;
  // Every buffer came back once written.
  EXPECT_TRUE(all_buffers_back(*a)) << a->tx_in_flight() << " still out";
  // Memory that is not sealed is never lent from.
  EXPECT_EQ(port_counter(port_with_mac(sw_, bm), "vhost_tx_lent"), 0u);
}

// A lending guest (sealed memory, frames of up to 8 KiB) and two stream clients: `slow`, with a
// small receive buffer, which reads only when the test says, and `other`; all three MACs
// learned (test_mac(1), (2), (3)), the guest's receive queue and `other` emptied of them.
struct LendingLab {
  std::unique_ptr<VhostUserFrontend> guest;
  std::optional<FrameClient> slow;
  std::optional<FrameClient> other;
  Mac guest_mac = test_mac(1), slow_mac = test_mac(2), other_mac = test_mac(3);
};

::testing::AssertionResult make_lending_lab(VhostUserTest& t, uint32_t queue_size,
                                            LendingLab* lab) {
  VhostUserFrontend::Options sealed;
  sealed.memory_size = 32 << 20;
  sealed.tx_slot_size = 8192;
  sealed.queue_size = queue_size;
  sealed.seal_memory = true;
  lab->guest = t.guest(sealed);
  if (!lab->guest) return ::testing::AssertionFailure() << "the guest did not start";
  std::string error;
  FrameClient::Options small;
  small.rcvbuf_size = 4096;
  lab->slow = FrameClient::connect(t.address(), small, &error);
  if (lab->slow) lab->other = FrameClient::connect(t.address(), &error);
  if (!lab->other) return ::testing::AssertionFailure() << error;
  if (!t.wait_ports(3)) return ::testing::AssertionFailure() << "not 3 ports";
  if (!lab->slow->send_frame(make_frame(kBroadcast, lab->slow_mac, 60, 1)) ||
      !lab->guest->receive(5s).ok() ||
      !lab->other->send_frame(make_frame(kBroadcast, lab->other_mac, 60, 2)) ||
      !lab->guest->receive(5s).ok() || !lab->other->recv_frame(5s).ok()) {
    return ::testing::AssertionFailure() << "the announcements did not cross";
  }
  return ::testing::AssertionSuccess();
}

// A stream peer that stops reading sits on lent frames: after a while its queue copies them
// out (relief), the guest gets its buffers back and goes on sending; everyone else still hears
// it.
TEST_F(VhostUserTest, BuffersLentToAStuckPortComeBackAndTheGuestGoesOn) {
  ASSERT_TRUE(start());
  LendingLab lab;
  ASSERT_TRUE(make_lending_lab(*this, 64, &lab));
  VhostUserFrontend* a = lab.guest.get();
  FrameClient* other = &*lab.other;
  const Mac am = lab.guest_mac, stuck_mac = lab.slow_mac, other_mac = lab.other_mac;
  // 600 frames of 4096 bytes to the peer that reads nothing: far more than the 64-entry ring,
  // which only comes back because the stuck queue lets go of the lent buffers.
  uint32_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (sent < 600 && std::chrono::steady_clock::now() < deadline) {
    if (a->send(make_frame(stuck_mac, am, 4096, 100 + sent)).empty()) {
      ++sent;
    } else {
      ::poll(nullptr, 0, 5);  // the ring is full: wait for buffers
    }
  }
  EXPECT_EQ(sent, 600u) << "the guest's buffers stayed with the stuck port";
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  EXPECT_GE(stats["chunk_reliefs"].get<uint64_t>(), 1u) << stats;
  EXPECT_GT(port_counter(port_with_mac(sw_, am), "vhost_tx_lent"), 0u);
  // The other stream client still gets the guest's frames.
  ASSERT_TRUE(guest_to_stream(*a, *other, make_frame(other_mac, am, 4096, 5000)));
  EXPECT_TRUE(all_buffers_back(*a)) << a->tx_in_flight() << " still out";
}

// The switch decides on a lent frame's head, which it copied: a guest that rewrites its buffer
// after sending cannot make the frame leave with another source MAC than the one the switch
// learned (and checked) it from.
TEST_F(VhostUserTest, AGuestRewritingALentFrameCannotChangeItsHead) {
  ASSERT_TRUE(start());
  LendingLab lab;
  ASSERT_TRUE(make_lending_lab(*this, 256, &lab));
  VhostUserFrontend* a = lab.guest.get();
  FrameClient* slow = &*lab.slow;
  FrameClient* filler = &*lab.other;
  const Mac am = lab.guest_mac, slow_mac = lab.slow_mac, filler_mac = lab.other_mac;
  // Fill the socket toward `slow` (which reads nothing yet), and then some, so that what
  // follows waits in qswitch's queue (about 450 KB fit in the socket; the queue holds 1 MiB).
  std::vector<uint8_t> wire;
  for (uint32_t i = 0; i < 450; ++i) {
    FrameClient::append_wire(&wire, make_frame(slow_mac, filler_mac, 1514, 100 + i));
  }
  ASSERT_TRUE(filler->send_raw(wire, 10s));
  const uint64_t to_slow = 1 + 450;
  const auto queued = [&] {
    const nlohmann::json row = port_with_mac(sw_, slow_mac);
    return row.is_object() ? row["queued_bytes"].get<uint64_t>() : 0;
  };
  const auto fill_deadline = std::chrono::steady_clock::now() + 5s;
  while (queued() < 100'000 && std::chrono::steady_clock::now() < fill_deadline) {
    ::poll(nullptr, 0, 10);
  }
  ASSERT_GE(queued(), 100'000u) << "frames toward the slow client do not wait in qswitch";
  const std::vector<uint8_t> original = make_frame(slow_mac, am, 3000, 7);
  ASSERT_EQ(a->send(original), "");
  ASSERT_EQ(wait_counter([&] { return port_with_mac(sw_, am); }, "vhost_tx_lent", 1), 1u);
  // The frame is lent and queued: the guest rewrites its source MAC and a payload byte.
  const Mac forged = test_mac(9);
  ASSERT_TRUE(a->write_guest(a->last_tx_frame_gpa() + 6, forged));
  const uint8_t byte = 0x5a;
  ASSERT_TRUE(a->write_guest(a->last_tx_frame_gpa() + 2900, {&byte, 1}));
  // Now `slow` reads everything; the guest's frame is the one of 3000 bytes.
  bool found = false;
  for (uint64_t i = 0; i < to_slow + 1 && !found; ++i) {
    RecvResult r = slow->recv_frame(5s);
    ASSERT_TRUE(r.ok()) << r.error;
    if (r.frame.size() != original.size()) continue;
    found = true;
    EXPECT_EQ(test_support::frame_src(r.frame), am) << "the forged source left the switch";
    EXPECT_TRUE(std::equal(original.begin(), original.begin() + 128, r.frame.begin()));
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(all_buffers_back(*a)) << a->tx_in_flight() << " still out";
  const nlohmann::json ports = control_result(sw_, {{"cmd", "ports"}});
  EXPECT_EQ(ports.dump().find(test_support::mac_to_string(forged)), std::string::npos)
      << "the forged MAC was learned: " << ports.dump();
}

// ---- Found by vhost_user_session_fuzz ----

// qswitch's open fds (/proc/PID/fd), sockets and the rest counted apart; all zero when they
// cannot be read. Sockets include the control connections the test's own requests open, which
// qswitch closes when it sees the test close them: one may still be open when they are counted.
struct OpenFds {
  size_t sockets = 0;
  size_t others = 0;
  size_t total() const { return sockets + others; }
};
OpenFds open_fds(pid_t pid) {
  OpenFds n;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd/";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return n;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char target[64] = {};
    const ssize_t len = ::readlink((dir + e->d_name).c_str(), target, sizeof target - 1);
    if (len > 0 && std::string_view(target, static_cast<size_t>(len)).starts_with("socket:")) {
      ++n.sockets;
    } else {
      ++n.others;
    }
  }
  ::closedir(d);
  return n;
}

// Defect: the port closed a half-read message's fds through a span into a temporary that was
// already gone (AddressSanitizer: stack-use-after-scope in shutdown_io), so it could close
// whatever numbers that stack held, or leak the fds.
TEST_F(VhostUserTest, AFrontEndLeavingInTheMiddleOfAMessageWithFdsLeavesNoFdBehind) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  ASSERT_TRUE(wait_port_count(1));
  const OpenFds before = open_fds(sw_.pid());
  ASSERT_GT(before.total(), 0u);
  auto g = guest({}, false);
  ASSERT_TRUE(g);
  ASSERT_TRUE(wait_port_count(2));
  // 8 of GET_FEATURES' 12 header bytes, with an eventfd, then the connection ends.
  const int efd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(efd, 0);
  uint8_t header[8] = {vu::kGetFeatures, 0, 0, 0, vu::kFlagVersion, 0, 0, 0};
  iovec iov{header, sizeof header};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &efd, sizeof efd);
  ASSERT_EQ(::sendmsg(g->socket_fd(), &msg, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof header));
  ::close(efd);
  g->close();
  ASSERT_TRUE(wait_port_count(1));
  // The eventfd it was handed and the port's socket are closed again (as many sockets as before,
  // or one fewer when a control connection was still open then).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  OpenFds now = open_fds(sw_.pid());
  auto back = [&] { return now.others == before.others && now.sockets <= before.sockets; };
  while (!back() && std::chrono::steady_clock::now() < deadline) {
    ::poll(nullptr, 0, 10);
    now = open_fds(sw_.pid());
  }
  EXPECT_EQ(now.others, before.others) << "fds other than sockets";
  EXPECT_LE(now.sockets, before.sockets);
  // And the switch goes on: a new guest works.
  auto next = guest();
  ASSERT_TRUE(next);
  ASSERT_TRUE(guest_to_stream(*next, clients[0], make_frame(kBroadcast, test_mac(7), 60, 1)));
}

// Defect: frames queued for a guest whose receive ring was full stayed queued across its
// device restart (GET_VRING_BASE, then SET_FEATURES ...) and were written into its fresh ring
// with the header decided for the old features; a guest that reset got frames from before.
TEST_F(VhostUserTest, FramesQueuedBeforeAGuestRestartsItsDeviceAreDroppedNotDelivered) {
  ASSERT_TRUE(start());
  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(1, &clients));
  VhostUserFrontend::Options options;
  options.rx_buffer_count = 2;
  auto g = guest(options);
  ASSERT_TRUE(g);
  const Mac gm = test_mac(1), sm = test_mac(2);
  ASSERT_TRUE(guest_to_stream(*g, clients[0], make_frame(kBroadcast, gm, 60, 1)));
  // Ten frames for a guest with two buffers: two land in them, eight wait in qswitch.
  std::vector<uint8_t> wire;
  for (uint32_t i = 0; i < 10; ++i)
    FrameClient::append_wire(&wire, make_frame(gm, sm, 100, 10 + i));
  ASSERT_TRUE(clients[0].send_raw(wire, 5s));
  // All ten are in qswitch (else some would come after the restart, rightly delivered then).
  ASSERT_EQ(wait_counter([&] { return port_with_mac(sw_, sm); }, "rx_frames", 10), 10u);
  EXPECT_GE(wait_counter([&] { return vhost_row(); }, "vhost_rx_no_room", 1), 1u);
  ASSERT_EQ(port_counter(vhost_row(), "tx_frames"), 2u);
  // The driver resets: rings stopped, the device started again (fresh rings, new buffers).
  ASSERT_EQ(g->stop(), "");
  ASSERT_EQ(g->start(), "");
  EXPECT_EQ(wait_counter([&] { return vhost_row(); }, "vhost_not_running", 8), 8u);
  // Only what is sent after the restart arrives.
  ASSERT_TRUE(stream_to_guest(clients[0], *g, make_frame(gm, sm, 100, 99)));
  EXPECT_EQ(g->rx_pending(), 0u);
}

}  // namespace
}  // namespace qswitch::integration
