// tests/slirp/dns_frontend_test.cc: the slirp port's DNS transport (slirp/dns_frontend.h) with a
// fake answerer: query frames in, reply frames out, checked by the tests' own frame code
// (tests/support/l4_frames.h: lengths, IPv4 header checksum, UDP/TCP checksums); the TCP
// responder's handshake, reassembly, segmentation, window, retransmission with an injected
// clock, resets and its cap.
#include "slirp/dns_frontend.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/l4_frames.h"

namespace qswitch::slirp {
namespace {

using test_support::build_l4;
using test_support::L4Packet;
using test_support::parse_l4;
using test_support::slirp_dns::kDns4;
using test_support::slirp_dns::kDns6;
using test_support::slirp_dns::kGuest4;
using test_support::slirp_dns::kGuest6;
using test_support::slirp_dns::kGuestMac;
using test_support::slirp_dns::kReplyMac4;
using test_support::slirp_dns::kReplyMac6;
using test_support::slirp_dns::query_packet;
using Verdict = DnsResponder::Verdict;
using Transport = DnsResponder::Transport;

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kRst = 0x04;
constexpr uint8_t kAck = 0x10;

// A DNS query for "web1.lab" A, id 0x1234, RD set.
std::vector<uint8_t> query_message() {
  return {0x12, 0x34, 0x01, 0x00, 0, 1,   0,   0,   0, 0, 0, 0, 4,
          'w',  'e',  'b',  '1',  3, 'l', 'a', 'b', 0, 0, 1, 0, 1};
}

// Answers every query with its own bytes, QR and AA set, then `extra` filler bytes (as if
// records followed), or with a fixed verdict.
class FakeAnswerer : public DnsAnswerer {
 public:
  Verdict verdict = Verdict::kAnswered;
  size_t extra = 16;
  int calls = 0;
  Transport last_transport = Transport::kUdp;
  std::vector<uint8_t> last_query;
  Verdict answer(const uint8_t* query, size_t size, Transport transport,
                 std::vector<uint8_t>& reply) override {
    calls += 1;
    last_transport = transport;
    last_query.assign(query, query + size);
    reply.clear();
    if (verdict != Verdict::kAnswered) return verdict;
    reply.assign(query, query + size);
    if (reply.size() >= 4) reply[2] |= 0x84;
    for (size_t i = 0; i < extra; ++i) reply.push_back(static_cast<uint8_t>(i));
    return verdict;
  }
  std::vector<uint8_t> expected(const std::vector<uint8_t>& q) const {
    std::vector<uint8_t> r = q;
    r[2] |= 0x84;
    for (size_t i = 0; i < extra; ++i) r.push_back(static_cast<uint8_t>(i));
    return r;
  }
};

class Sink : public DnsFrameSink {
 public:
  std::vector<std::vector<uint8_t>> frames;
  void send_frame(const uint8_t* frame, size_t size) override {
    frames.emplace_back(frame, frame + size);
  }
};

class DnsFrontendTest : public ::testing::Test {
 protected:
  DnsFrontendTest() { make(DnsFrontendConfig{}); }
  void make(DnsFrontendConfig config) {
    config.ipv6 = true;
    fe_ = std::make_unique<DnsFrontend>(config, answerer_, sink_);
  }

  static L4Packet udp_query(bool v6, std::vector<uint8_t> payload, uint16_t dport = 53) {
    L4Packet p = query_packet(v6, 17, 40000);
    p.dst_port = dport;
    p.payload = std::move(payload);
    return p;
  }
  static L4Packet tcp(bool v6, uint8_t flags, uint32_t seq, uint32_t ack,
                      std::vector<uint8_t> payload = {}, uint16_t window = 65535) {
    L4Packet p = query_packet(v6, 6, 41000);
    p.payload = std::move(payload);
    p.flags = flags;
    p.seq = seq;
    p.ack = ack;
    p.window = window;
    return p;
  }
  static std::vector<uint8_t> with_length(const std::vector<uint8_t>& m) {
    std::vector<uint8_t> v{static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
    v.insert(v.end(), m.begin(), m.end());
    return v;
  }

  DnsFrontend::Result feed(const L4Packet& p) {
    const std::vector<uint8_t> f = build_l4(p);
    return fe_->guest_frame(f.data(), f.size(), now_);
  }
  // Every frame sent since the last call, parsed (a test failure for one that does not parse).
  std::vector<L4Packet> take() {
    std::vector<L4Packet> out;
    for (const auto& f : sink_.frames) {
      std::string why;
      auto p = parse_l4(f.data(), f.size(), &why);
      EXPECT_TRUE(p.has_value()) << why;
      if (p) out.push_back(*p);
    }
    sink_.frames.clear();
    return out;
  }
  // SYN, SYN-ACK, ACK: returns the server's ISN + 1.
  uint32_t handshake(bool v6, uint32_t isn, std::vector<uint8_t> options = {}) {
    L4Packet syn = tcp(v6, kSyn, isn, 0);
    syn.options = std::move(options);
    EXPECT_EQ(feed(syn), DnsFrontend::Result::kConsumed);
    auto out = take();
    EXPECT_EQ(out.size(), 1u);
    if (out.empty()) return 0;
    EXPECT_EQ(out[0].flags, kSyn | kAck);
    EXPECT_EQ(out[0].ack, isn + 1);
    const uint32_t server = out[0].seq + 1;
    feed(tcp(v6, kAck, isn + 1, server));
    EXPECT_TRUE(take().empty());
    return server;
  }

  FakeAnswerer answerer_;
  Sink sink_;
  std::unique_ptr<DnsFrontend> fe_;
  int64_t now_ = 1000;
};

TEST_F(DnsFrontendTest, AnswersUdpIpv4QueryWithSwappedAddressesAndValidChecksums) {
  EXPECT_EQ(feed(udp_query(false, query_message())), DnsFrontend::Result::kConsumed);
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  const L4Packet& r = out[0];
  EXPECT_EQ(r.eth_dst, kGuestMac);
  EXPECT_EQ(r.eth_src, kReplyMac4);
  EXPECT_FALSE(r.ipv6);
  EXPECT_EQ(r.src, kDns4);
  EXPECT_EQ(r.dst, kGuest4);
  EXPECT_EQ(r.proto, 17);
  EXPECT_EQ(r.src_port, 53);
  EXPECT_EQ(r.dst_port, 40000);
  EXPECT_EQ(r.payload, answerer_.expected(query_message()));
  EXPECT_EQ(answerer_.last_transport, Transport::kUdp);
  EXPECT_EQ(fe_->counters().udp_answered, 1u);
}

TEST_F(DnsFrontendTest, AnswersUdpIpv6Query) {
  EXPECT_EQ(feed(udp_query(true, query_message())), DnsFrontend::Result::kConsumed);
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].ipv6);
  EXPECT_EQ(out[0].eth_src, kReplyMac6);
  EXPECT_EQ(out[0].src, kDns6);
  EXPECT_EQ(out[0].dst, kGuest6);
  EXPECT_EQ(out[0].payload, answerer_.expected(query_message()));
}

// A guest may send to any MAC (an unknown one is flooded to the slirp port too): replies come
// from the port's own MACs, never from the one the guest named.
TEST_F(DnsFrontendTest, RepliesNeverComeFromTheMacTheGuestNamed) {
  L4Packet q = udp_query(false, query_message());
  q.eth_dst = {0x02, 0x99, 0x99, 0x99, 0x99, 0x99};
  feed(q);
  L4Packet syn = tcp(true, kSyn, 1, 0);
  syn.eth_dst = q.eth_dst;
  feed(syn);
  L4Packet ack = tcp(false, kAck, 1, 5);  // no connection: RST
  ack.eth_dst = q.eth_dst;
  feed(ack);
  auto out = take();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].eth_src, kReplyMac4);
  EXPECT_EQ(out[1].eth_src, kReplyMac6);
  EXPECT_EQ(out[2].eth_src, kReplyMac4);
}

TEST_F(DnsFrontendTest, Ipv6AddressIsNotOursWithoutIpv6) {
  DnsFrontendConfig c;
  fe_ = std::make_unique<DnsFrontend>(c, answerer_, sink_);  // ipv6 off
  EXPECT_EQ(feed(udp_query(true, query_message())), DnsFrontend::Result::kPass);
  EXPECT_EQ(answerer_.calls, 0);
}

TEST_F(DnsFrontendTest, PassesOtherPortsAddressesAndQueriesNotOurs) {
  EXPECT_EQ(feed(udp_query(false, query_message(), 5353)), DnsFrontend::Result::kPass);
  L4Packet other = udp_query(false, query_message());
  other.dst = {10, 0, 2, 2};
  EXPECT_EQ(feed(other), DnsFrontend::Result::kPass);
  EXPECT_EQ(answerer_.calls, 0);
  answerer_.verdict = Verdict::kNotOurs;
  EXPECT_EQ(feed(udp_query(false, query_message())), DnsFrontend::Result::kPass);
  answerer_.verdict = Verdict::kMalformed;
  EXPECT_EQ(feed(udp_query(true, query_message())), DnsFrontend::Result::kPass);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(fe_->counters().udp_passed, 2u);
}

TEST_F(DnsFrontendTest, PassesUdpWithBadChecksumOrLengthWithoutAsking) {
  std::vector<uint8_t> f = build_l4(udp_query(false, query_message()));
  f[f.size() - 1] ^= 0x55;  // payload changed, checksum not
  EXPECT_EQ(fe_->guest_frame(f.data(), f.size(), now_), DnsFrontend::Result::kPass);
  f = build_l4(udp_query(false, query_message()));
  f[14 + 20 + 5] += 1;  // UDP length one past the IP payload
  EXPECT_EQ(fe_->guest_frame(f.data(), f.size(), now_), DnsFrontend::Result::kPass);
  f = build_l4(udp_query(true, query_message()));
  f[14 + 40 + 6] = 0;  // IPv6: a zero checksum is not "none"
  f[14 + 40 + 7] = 0;
  EXPECT_EQ(fe_->guest_frame(f.data(), f.size(), now_), DnsFrontend::Result::kPass);
  EXPECT_EQ(fe_->counters().bad_frame, 3u);
  EXPECT_EQ(answerer_.calls, 0);
  EXPECT_TRUE(take().empty());
}

TEST_F(DnsFrontendTest, TruncatedFramesAndShortHeadersAreNotRead) {
  const std::vector<uint8_t> full = build_l4(udp_query(false, query_message()));
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(fe_->guest_frame(full.data(), n, now_), DnsFrontend::Result::kPass) << n;
  }
  const std::vector<uint8_t> syn = build_l4(tcp(true, kSyn, 1, 0));
  for (size_t n = 0; n < syn.size(); ++n) fe_->guest_frame(syn.data(), n, now_);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(answerer_.calls, 0);
  EXPECT_EQ(fe_->open_connections(), 0u);
}

TEST_F(DnsFrontendTest, ReplyLargerThanMtuIsCutToQuestionWithTc) {
  answerer_.extra = 2000;
  EXPECT_EQ(feed(udp_query(false, query_message())), DnsFrontend::Result::kConsumed);
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  const std::vector<uint8_t>& r = out[0].payload;
  ASSERT_EQ(r.size(), query_message().size());  // header and question
  EXPECT_EQ(r[0], 0x12);
  EXPECT_NE(r[2] & 0x02, 0) << "TC";
  EXPECT_NE(r[2] & 0x80, 0) << "QR";
  EXPECT_EQ(r[5], 1);  // QDCOUNT
  EXPECT_EQ(r[7] + r[9] + r[11], 0);
  EXPECT_EQ(fe_->counters().udp_truncated, 1u);
}

TEST_F(DnsFrontendTest, TcpQueryInOneSegmentIsAnsweredThenClosed) {
  const uint32_t server = handshake(false, 1000);
  const std::vector<uint8_t> q = with_length(query_message());
  feed(tcp(false, kAck, 1001, server, q));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, server);
  EXPECT_EQ(out[0].ack, 1001 + q.size());
  EXPECT_EQ(out[0].flags & (kFin | kAck), kFin | kAck);
  EXPECT_EQ(out[0].payload, with_length(answerer_.expected(query_message())));
  EXPECT_EQ(answerer_.last_transport, Transport::kTcp);
  EXPECT_EQ(answerer_.last_query, query_message());
  const uint32_t after_fin = server + static_cast<uint32_t>(out[0].payload.size()) + 1;
  feed(tcp(false, kAck | kFin, 1001 + static_cast<uint32_t>(q.size()), after_fin));
  out = take();
  ASSERT_EQ(out.size(), 1u);  // the ACK of the guest's FIN
  EXPECT_EQ(out[0].flags, kAck);
  EXPECT_EQ(out[0].ack, 1001 + q.size() + 1);
  EXPECT_EQ(fe_->open_connections(), 0u);
  EXPECT_EQ(fe_->counters().tcp_answered, 1u);
  EXPECT_EQ(fe_->next_deadline_ms(), INT64_MAX);
}

TEST_F(DnsFrontendTest, TcpQueryInTwoSegmentsAndOutOfOrderDataIsReAcked) {
  const uint32_t server = handshake(true, 5000);
  const std::vector<uint8_t> q = with_length(query_message());
  const std::vector<uint8_t> first(q.begin(), q.begin() + 1);  // half of the length
  const std::vector<uint8_t> second(q.begin() + 1, q.end());
  // The second part first: not taken, our ACK still says 5001.
  feed(tcp(true, kAck, 5002, server, second));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ack, 5001u);
  EXPECT_TRUE(out[0].payload.empty());
  feed(tcp(true, kAck, 5001, server, first));
  out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].ack, 5002u);
  EXPECT_EQ(answerer_.calls, 0);
  feed(tcp(true, kAck, 5002, server, second));
  out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].ipv6);
  EXPECT_EQ(out[0].payload, with_length(answerer_.expected(query_message())));
  EXPECT_EQ(answerer_.calls, 1);
}

TEST_F(DnsFrontendTest, TcpReplyIsSegmentedByMssWithinTheWindow) {
  answerer_.extra = 400;
  const std::vector<uint8_t> mss100 = {2, 4, 0, 100};
  L4Packet syn = tcp(false, kSyn, 7000, 0, {}, 250);
  syn.options = mss100;
  feed(syn);
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].options.size(), 4u);  // our MSS: 1500 - 40
  EXPECT_EQ(out[0].options[0], 2);
  EXPECT_EQ((out[0].options[2] << 8) | out[0].options[3], 1460);
  const uint32_t server = out[0].seq + 1;
  feed(tcp(false, kAck, 7001, server, {}, 250));
  const std::vector<uint8_t> q = with_length(query_message());
  const uint32_t guest_next = 7001 + static_cast<uint32_t>(q.size());
  feed(tcp(false, kAck, 7001, server, q, 250));
  out = take();
  // 250 bytes of window, 100 per segment: 100, 100, 50.
  ASSERT_EQ(out.size(), 3u);
  std::vector<uint8_t> got;
  for (const auto& s : out) {
    EXPECT_LE(s.payload.size(), 100u);
    EXPECT_EQ(s.flags & kFin, 0);
    got.insert(got.end(), s.payload.begin(), s.payload.end());
  }
  EXPECT_EQ(got.size(), 250u);
  // The guest acknowledges all of it: the rest goes out, FIN on the last segment.
  const std::vector<uint8_t> want = with_length(answerer_.expected(query_message()));
  uint32_t acked = server + 250;
  for (int round = 0; round < 10 && got.size() < want.size(); ++round) {
    feed(tcp(false, kAck, guest_next, acked, {}, 250));
    out = take();
    for (const auto& s : out) {
      got.insert(got.end(), s.payload.begin(), s.payload.end());
      acked = s.seq + static_cast<uint32_t>(s.payload.size()) + ((s.flags & kFin) != 0 ? 1 : 0);
    }
    if (!out.empty()) {
      EXPECT_EQ(out.back().flags & kFin, got.size() == want.size() ? kFin : 0);
    }
  }
  EXPECT_EQ(got, want);
}

TEST_F(DnsFrontendTest, TcpRetransmitsWithBackoffThenGivesUp) {
  feed(tcp(false, kSyn, 100, 0));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  const uint32_t server = out[0].seq;
  EXPECT_EQ(fe_->next_deadline_ms(), now_ + 200);
  fe_->on_timer(now_ + 199);
  EXPECT_TRUE(take().empty());
  int64_t t = now_ + 200;
  int64_t gap = 200;
  for (int i = 0; i < 5; ++i) {
    fe_->on_timer(t);
    out = take();
    ASSERT_EQ(out.size(), 1u) << i;
    EXPECT_EQ(out[0].flags, kSyn | kAck);
    EXPECT_EQ(out[0].seq, server);
    gap *= 2;
    EXPECT_EQ(fe_->next_deadline_ms(), t + gap) << i;
    t += gap;
  }
  fe_->on_timer(t);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(fe_->open_connections(), 0u);
  EXPECT_EQ(fe_->counters().tcp_timeouts, 1u);
}

TEST_F(DnsFrontendTest, TcpReplyIsSentAgainWhenNotAcknowledged) {
  const uint32_t server = handshake(false, 300);
  const std::vector<uint8_t> q = with_length(query_message());
  feed(tcp(false, kAck, 301, server, q));
  auto first = take();
  ASSERT_EQ(first.size(), 1u);
  fe_->on_timer(now_ + 200);
  auto again = take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq, first[0].seq);
  EXPECT_EQ(again[0].payload, first[0].payload);
  EXPECT_EQ(again[0].flags & kFin, kFin);
}

TEST_F(DnsFrontendTest, UnknownConnectionsGetResets) {
  feed(tcp(false, kAck, 10, 777, {1, 2, 3}));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].flags, kRst);
  EXPECT_EQ(out[0].seq, 777u);
  feed(tcp(true, kFin, 10, 0));
  out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].flags, kRst | kAck);
  EXPECT_EQ(out[0].ack, 11u);
  feed(tcp(false, kRst, 10, 0));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(fe_->counters().tcp_reset, 2u);
}

TEST_F(DnsFrontendTest, SynsOverTheCapAreReset) {
  DnsFrontendConfig c;
  c.max_connections = 2;
  make(c);
  for (uint16_t port = 1; port <= 3; ++port) {
    L4Packet syn = tcp(false, kSyn, 100, 0);
    syn.src_port = port;
    feed(syn);
  }
  auto out = take();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].flags, kRst | kAck);
  EXPECT_EQ(out[2].dst_port, 3);
  EXPECT_EQ(fe_->open_connections(), 2u);
  EXPECT_EQ(fe_->counters().tcp_over_cap, 1u);
}

TEST_F(DnsFrontendTest, TcpQueryNotOursIsRefused) {
  answerer_.verdict = Verdict::kNotOurs;
  const uint32_t server = handshake(false, 40);
  feed(tcp(false, kAck, 41, server, with_length(query_message())));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  const std::vector<uint8_t>& r = out[0].payload;
  ASSERT_EQ(r.size(), 2 + query_message().size());
  EXPECT_EQ((r[0] << 8) | r[1], static_cast<int>(query_message().size()));
  EXPECT_EQ(r[2 + 3] & 0x0f, 5) << "REFUSED";
  EXPECT_NE(r[2 + 2] & 0x80, 0) << "QR";
  EXPECT_NE(r[2 + 2] & 0x01, 0) << "RD kept";
  EXPECT_EQ(fe_->counters().tcp_refused, 1u);
}

TEST_F(DnsFrontendTest, TcpMalformedOrOversizedQueryResets) {
  answerer_.verdict = Verdict::kMalformed;
  uint32_t server = handshake(false, 40);
  feed(tcp(false, kAck, 41, server, with_length(query_message())));
  auto out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].flags & kRst, 0);
  EXPECT_EQ(fe_->open_connections(), 0u);
  // A length prefix past the cap.
  answerer_.verdict = Verdict::kAnswered;
  server = handshake(false, 90);
  feed(tcp(false, kAck, 91, server, {0xff, 0xff, 0}));
  out = take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].flags & kRst, 0);
  EXPECT_EQ(fe_->open_connections(), 0u);
  EXPECT_EQ(answerer_.calls, 1);
}

TEST_F(DnsFrontendTest, BadTcpChecksumIsDroppedUnanswered) {
  std::vector<uint8_t> f = build_l4(tcp(false, kSyn, 1, 0));
  f[14 + 20 + 4] ^= 1;  // sequence number changed, checksum not
  EXPECT_EQ(fe_->guest_frame(f.data(), f.size(), now_), DnsFrontend::Result::kConsumed);
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(fe_->counters().bad_frame, 1u);
  EXPECT_EQ(fe_->open_connections(), 0u);
}

TEST_F(DnsFrontendTest, IdleConnectionTimesOut) {
  handshake(false, 1);
  EXPECT_EQ(fe_->open_connections(), 1u);
  fe_->on_timer(now_ + DnsFrontend::kIdleMs);
  EXPECT_EQ(fe_->open_connections(), 0u);
  EXPECT_EQ(fe_->counters().tcp_timeouts, 1u);
}

}  // namespace
}  // namespace qswitch::slirp
