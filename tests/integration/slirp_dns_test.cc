// tests/integration/slirp_dns_test.cc: the slirp port's own DNS answers as a guest sees them,
// with no guest: one FrameClient (MAC 02:71:..:01, 10.0.2.15 / fec0::15) sends DNS queries in
// UDP and TCP frames to 10.0.2.3:53 and [fec0::3]:53 over a real stream connection to
// `qswitch --slirp=restrict=on`, and checks the frames that come back (tests/support/l4_frames.h
// checks lengths and checksums) and the slirp port's dns_* counters read through `ports`.
//
// Network safety: only names of the lab's own domain (qswitch.internal), the segment's reverse
// zone and the reserved .invalid top-level domain are asked; restrict=on keeps libslirp from
// forwarding anything to the host's resolver.
#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/l4_frames.h"

namespace qswitch::integration {
namespace {

using test_support::build_l4;
using test_support::L4Packet;
using test_support::parse_l4;
using test_support::test_mac;
using test_support::slirp_dns::kDns4;
using test_support::slirp_dns::kDns6;
using test_support::slirp_dns::kGuest4;
using test_support::slirp_dns::kGuest6;
using test_support::slirp_dns::query_packet;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypePtr = 12;
constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kAck = 0x10;

// A query for `name` (dotted, no trailing dot), class IN, RD set.
std::vector<uint8_t> dns_query(uint16_t id, const std::string& name, uint16_t type) {
  std::vector<uint8_t> m = {
      static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    m.push_back(static_cast<uint8_t>(dot - start));
    m.insert(m.end(), name.begin() + static_cast<std::ptrdiff_t>(start),
             name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  m.push_back(0);
  m.insert(m.end(), {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1});
  return m;
}

// What the tests look at in a reply.
struct DnsReply {
  uint16_t id = 0;
  bool qr = false;
  bool aa = false;
  bool tc = false;
  int rcode = -1;
  uint16_t qdcount = 0, ancount = 0, nscount = 0;
  uint16_t first_answer_type = 0;
  uint16_t first_authority_type = 0;
};

// The offset after the name at `off` (compression pointers end it); 0 when it runs out.
size_t skip_name(const std::vector<uint8_t>& m, size_t off) {
  for (int i = 0; i < 128 && off < m.size(); ++i) {
    const uint8_t len = m[off];
    if (len == 0) return off + 1;
    if ((len & 0xc0) == 0xc0) return off + 2 <= m.size() ? off + 2 : 0;
    off += 1 + len;
  }
  return 0;
}

std::optional<DnsReply> parse_reply(const std::vector<uint8_t>& m) {
  if (m.size() < 12) return std::nullopt;
  DnsReply r;
  r.id = static_cast<uint16_t>((m[0] << 8) | m[1]);
  r.qr = (m[2] & 0x80) != 0;
  r.aa = (m[2] & 0x04) != 0;
  r.tc = (m[2] & 0x02) != 0;
  r.rcode = m[3] & 0x0f;
  r.qdcount = static_cast<uint16_t>((m[4] << 8) | m[5]);
  r.ancount = static_cast<uint16_t>((m[6] << 8) | m[7]);
  r.nscount = static_cast<uint16_t>((m[8] << 8) | m[9]);
  size_t off = 12;
  for (int q = 0; q < r.qdcount; ++q) {
    off = skip_name(m, off);
    if (off == 0 || off + 4 > m.size()) return std::nullopt;
    off += 4;
  }
  const int records = r.ancount + r.nscount;
  for (int i = 0; i < records; ++i) {
    off = skip_name(m, off);
    if (off == 0 || off + 10 > m.size()) return std::nullopt;
    const uint16_t type = static_cast<uint16_t>((m[off] << 8) | m[off + 1]);
    const size_t rdlen = static_cast<size_t>((m[off + 8] << 8) | m[off + 9]);
    if (i == 0 && r.ancount > 0) r.first_answer_type = type;
    if (i == r.ancount) r.first_authority_type = type;
    off += 10 + rdlen;
    if (off > m.size()) return std::nullopt;
  }
  return r;
}

class SlirpDnsTest : public SwitchFixture {
 protected:
  void start() {
    ASSERT_TRUE(start_switch({"--slirp=restrict=on"}));
    std::vector<FrameClient> c;
    ASSERT_TRUE(connect_clients(1, &c));
    guest_ = std::move(c[0]);
  }

  // A UDP or TCP packet from the client (MAC test_mac(1)) and `sport` to the DNS address.
  static L4Packet packet(bool v6, uint8_t proto, uint16_t sport) {
    return query_packet(v6, proto, sport, test_mac(1));
  }
  // A TCP segment from `sport` to the DNS address, window 65535.
  static L4Packet segment(bool v6, uint16_t sport, uint8_t flags, uint32_t seq, uint32_t ack) {
    L4Packet p = packet(v6, 6, sport);
    p.flags = flags;
    p.seq = seq;
    p.ack = ack;
    p.window = 65535;
    return p;
  }

  // The next UDP or TCP frame from the DNS address to `sport`, parsed and checked.
  std::optional<L4Packet> receive(bool v6, uint8_t proto, uint16_t sport,
                                  std::chrono::milliseconds timeout = 5s) {
    std::optional<L4Packet> got;
    std::string why;
    const RecvResult r = guest_.recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          auto p = parse_l4(f.data(), f.size(), &why, true);
          if (!p || p->ipv6 != v6 || p->proto != proto || p->dst_port != sport) return false;
          got = p;
          return true;
        },
        timeout);
    if (!r.ok()) ADD_FAILURE() << "no reply to port " << sport << " (last frame: " << why << ")";
    return r.ok() ? got : std::nullopt;
  }

  std::optional<DnsReply> ask_udp(bool v6, uint16_t sport, const std::vector<uint8_t>& query) {
    L4Packet p = packet(v6, 17, sport);
    p.payload = query;
    EXPECT_TRUE(guest_.send_frame(build_l4(p)));
    const std::optional<L4Packet> r = receive(v6, 17, sport);
    if (!r) return std::nullopt;
    EXPECT_EQ(r->src, v6 ? kDns6 : kDns4);
    EXPECT_EQ(r->dst, v6 ? kGuest6 : kGuest4);
    EXPECT_EQ(r->src_port, 53);
    EXPECT_EQ(r->eth_dst, test_mac(1));
    if (!v6) {
      EXPECT_EQ(r->eth_src, kSlirpMac) << "from the gateway's MAC, as libslirp's frames";
    }
    return parse_reply(r->payload);
  }

  // Sends a SYN from `sport` with sequence number `isn` (and TCP `options`): the reply to it
  // (a SYN-ACK, or an RST), or nullopt with a failure.
  std::optional<L4Packet> send_syn(bool v6, uint16_t sport, uint32_t isn,
                                   std::vector<uint8_t> options = {}) {
    L4Packet syn = segment(v6, sport, kSyn, isn, 0);
    syn.options = std::move(options);
    if (!guest_.send_frame(build_l4(syn))) {
      ADD_FAILURE() << "could not send the SYN from port " << sport;
      return std::nullopt;
    }
    return receive(v6, 6, sport);
  }
  // Sends [length][query] (RFC 1035 4.2.2) from `sport` in one segment with sequence number
  // `seq`, acknowledging `ack`; false when it could not be sent.
  bool send_query(bool v6, uint16_t sport, uint32_t seq, uint32_t ack,
                  const std::vector<uint8_t>& query) {
    L4Packet seg = segment(v6, sport, kAck, seq, ack);
    seg.payload.resize(2 + query.size());
    seg.payload[0] = static_cast<uint8_t>(query.size() >> 8);
    seg.payload[1] = static_cast<uint8_t>(query.size());
    std::copy(query.begin(), query.end(), seg.payload.begin() + 2);
    return guest_.send_frame(build_l4(seg));
  }

  // One query over TCP: handshake, [len][query], the reply segments up to the FIN, the guest's
  // FIN; the reply message.
  std::optional<DnsReply> ask_tcp(bool v6, uint16_t sport, const std::vector<uint8_t>& query) {
    std::optional<L4Packet> r = send_syn(v6, sport, 1000, {2, 4, 0x05, 0xb4});
    if (!r) return std::nullopt;
    EXPECT_EQ(r->flags, kSyn | kAck);
    EXPECT_EQ(r->ack, 1001u);
    const uint32_t server = r->seq + 1;
    EXPECT_TRUE(send_query(v6, sport, 1001, server, query));
    std::vector<uint8_t> stream;
    uint32_t next = server;
    bool fin = false;
    for (int i = 0; i < 64 && !fin; ++i) {
      r = receive(v6, 6, sport);
      if (!r) return std::nullopt;
      if (r->seq != next) continue;  // a retransmission
      stream.insert(stream.end(), r->payload.begin(), r->payload.end());
      next += static_cast<uint32_t>(r->payload.size());
      fin = (r->flags & kFin) != 0;
    }
    EXPECT_TRUE(fin);
    const L4Packet our_fin =
        segment(v6, sport, kAck | kFin, 1001 + 2 + static_cast<uint32_t>(query.size()), next + 1);
    EXPECT_TRUE(guest_.send_frame(build_l4(our_fin)));
    r = receive(v6, 6, sport);  // the ACK of our FIN
    if (r) {
      EXPECT_EQ(r->ack, our_fin.seq + 1);
    }
    if (stream.size() < 2 ||
        ((stream[0] << 8) | stream[1]) != static_cast<int>(stream.size() - 2)) {
      ADD_FAILURE() << "TCP reply of " << stream.size()
                    << " bytes does not match its length prefix";
      return std::nullopt;
    }
    return parse_reply(std::vector<uint8_t>(stream.begin() + 2, stream.end()));
  }

  int64_t counter(const std::string& name) {
    const nlohmann::json rows = control_result(sw_, {{"cmd", "ports"}});
    if (!rows.is_array()) return -1;
    for (const auto& row : rows) {
      if (row.value("kind", "") != "slirp" || !row.contains("counters")) continue;
      const auto& c = row["counters"];
      return c.contains(name) ? c[name].get<int64_t>() : -1;
    }
    return -1;
  }

  FrameClient guest_;
};

TEST_F(SlirpDnsTest, UnknownNameInTheLabDomainIsNxdomainWithSoa) {
  start();
  auto r = ask_udp(false, 40001, dns_query(0x1111, "nosuch.qswitch.internal", kTypeA));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, 0x1111);
  EXPECT_TRUE(r->qr);
  EXPECT_TRUE(r->aa);
  EXPECT_EQ(r->rcode, 3) << "NXDOMAIN";
  EXPECT_EQ(r->ancount, 0);
  ASSERT_GE(r->nscount, 1);
  EXPECT_EQ(r->first_authority_type, kTypeSoa);
  EXPECT_EQ(counter("dns_udp_answered"), 1);
  EXPECT_EQ(counter("dns_nxdomain"), 1);
}

TEST_F(SlirpDnsTest, ApexSoaAndPtrInTheSegmentAreAnswered) {
  start();
  auto soa = ask_udp(false, 40002, dns_query(0x2222, "qswitch.internal", kTypeSoa));
  ASSERT_TRUE(soa.has_value());
  EXPECT_EQ(soa->rcode, 0);
  EXPECT_TRUE(soa->aa);
  ASSERT_EQ(soa->ancount, 1);
  EXPECT_EQ(soa->first_answer_type, kTypeSoa);
  auto ptr = ask_udp(false, 40003, dns_query(0x3333, "99.2.0.10.in-addr.arpa", kTypePtr));
  ASSERT_TRUE(ptr.has_value());
  EXPECT_EQ(ptr->rcode, 3) << "no name for 10.0.2.99: NXDOMAIN, not a question for the host";
  EXPECT_EQ(counter("dns_udp_answered"), 2);
}

TEST_F(SlirpDnsTest, Ipv6DnsAddressAnswersOverUdp) {
  start();
  auto r = ask_udp(true, 40004, dns_query(0x4444, "nosuch.qswitch.internal", kTypeA));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->rcode, 3);
  EXPECT_EQ(r->first_authority_type, kTypeSoa);
}

TEST_F(SlirpDnsTest, QueryNotOursGoesToLibslirpOverUdpAndIsRefusedOverTcp) {
  start();
  // .invalid is reserved (RFC 6761); with restrict=on libslirp forwards nothing anyway.
  L4Packet p = packet(false, 17, 40005);
  p.payload = dns_query(0x5555, "example.invalid", kTypeA);
  ASSERT_TRUE(guest_.send_frame(build_l4(p)));
  bool passed = false;
  for (int i = 0; i < 100 && !passed; ++i) passed = counter("dns_udp_passed") == 1;
  EXPECT_TRUE(passed) << "dns_udp_passed is " << counter("dns_udp_passed");
  EXPECT_EQ(counter("dns_udp_answered"), 0);
  auto r = ask_tcp(false, 40006, dns_query(0x6666, "example.invalid", kTypeA));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, 0x6666);
  EXPECT_EQ(r->rcode, 5) << "REFUSED";
  EXPECT_EQ(counter("dns_tcp_refused"), 1);
}

TEST_F(SlirpDnsTest, TcpQueriesCompleteOverBothFamilies) {
  start();
  auto r4 = ask_tcp(false, 40007, dns_query(0x7777, "qswitch.internal", kTypeSoa));
  ASSERT_TRUE(r4.has_value());
  EXPECT_EQ(r4->id, 0x7777);
  EXPECT_EQ(r4->rcode, 0);
  EXPECT_EQ(r4->first_answer_type, kTypeSoa);
  auto r6 = ask_tcp(true, 40008, dns_query(0x8888, "nosuch.qswitch.internal", kTypeA));
  ASSERT_TRUE(r6.has_value());
  EXPECT_EQ(r6->rcode, 3);
  EXPECT_EQ(counter("dns_tcp_answered"), 2);
  EXPECT_EQ(counter("dns_tcp_timeouts"), 0);
}

TEST_F(SlirpDnsTest, SegmentForNoConnectionIsReset) {
  start();
  L4Packet p = packet(false, 6, 40009);
  p.flags = kAck;
  p.seq = 5;
  p.ack = 12345;
  ASSERT_TRUE(guest_.send_frame(build_l4(p)));
  auto r = receive(false, 6, 40009);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->flags, 0x04);
  EXPECT_EQ(r->seq, 12345u);
  EXPECT_EQ(counter("dns_tcp_reset"), 1);
}

// The port's timer drives the front end's retransmissions: a SYN-ACK the guest does not
// acknowledge comes again (after 200 ms, then 400 ms).
TEST_F(SlirpDnsTest, UnacknowledgedSynAckIsSentAgain) {
  start();
  auto first = send_syn(false, 40010, 77);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->flags, kSyn | kAck);
  const auto sent = std::chrono::steady_clock::now();
  auto again = receive(false, 6, 40010, 3s);
  ASSERT_TRUE(again.has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 150ms);
  EXPECT_EQ(again->flags, kSyn | kAck);
  EXPECT_EQ(again->seq, first->seq);
  // The guest gives up: an RST in the window ends the connection, and nothing more comes.
  L4Packet rst = packet(false, 6, 40010);
  rst.flags = 0x04;
  rst.seq = 78;
  ASSERT_TRUE(guest_.send_frame(build_l4(rst)));
  EXPECT_TRUE(expect_silence(guest_, "guest", 800ms));
  EXPECT_EQ(counter("dns_tcp_timeouts"), 0);
}

// A guest that opens connections and never sends a query holds at most 32 of them; the next SYN
// is reset and counted, and the connections already open still answer.
TEST_F(SlirpDnsTest, ConnectionsOverTheCapAreReset) {
  start();
  constexpr uint16_t kFirst = 41000;
  uint32_t server0 = 0;
  for (uint16_t i = 0; i < 33; ++i) {
    auto r = send_syn(false, static_cast<uint16_t>(kFirst + i), 500);
    ASSERT_TRUE(r.has_value()) << i;
    if (i < 32) {
      EXPECT_EQ(r->flags, kSyn | kAck) << i;
      if (i == 0) server0 = r->seq + 1;
    } else {
      EXPECT_EQ(r->flags, 0x04 | kAck) << "the 33rd SYN";
    }
  }
  EXPECT_EQ(counter("dns_tcp_over_cap"), 1);
  // The first connection still takes its query.
  ASSERT_TRUE(
      send_query(false, kFirst, 501, server0, dns_query(0x9999, "qswitch.internal", kTypeSoa)));
  std::optional<L4Packet> r;
  for (int i = 0; i < 200; ++i) {  // skip the other connections' SYN-ACK retransmissions
    r = receive(false, 6, kFirst);
    if (!r || !r->payload.empty()) break;
  }
  ASSERT_TRUE(r.has_value());
  ASSERT_GT(r->payload.size(), 2u);
  auto reply = parse_reply(std::vector<uint8_t>(r->payload.begin() + 2, r->payload.end()));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->id, 0x9999);
}

}  // namespace
}  // namespace qswitch::integration
