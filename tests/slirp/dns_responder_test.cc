// tests/slirp/dns_responder_test.cc: DnsResponder against hand-built DNS queries.
// Each query is written byte by byte below (header, question, an optional EDNS0 OPT record) as a
// guest's resolver sends it, handed over in an exactly sized heap buffer (so ASan catches a read
// past the end), and the reply is parsed with ldns and checked section by section.
#include "slirp/dns_responder.h"

#include <gtest/gtest.h>

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slirp/ldns_cxx.h"

namespace qswitch::slirp {
namespace {

using Bytes = std::vector<uint8_t>;
using Transport = DnsResponder::Transport;
using Verdict = DnsResponder::Verdict;

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeNs = 2;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypePtr = 12;
constexpr uint16_t kTypeMx = 15;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeAny = 255;

sw::IpAddress ip(const char* text) {
  std::optional<sw::IpAddress> a = sw::IpAddress::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(sw::IpAddress{});
}

struct Query {
  std::string name;  // as sent: "WeB1.qswitch.internal" (no trailing dot; "" is the root)
  uint16_t type = kTypeA;
  uint16_t id = 0xbeef;
  bool rd = true;
  uint16_t qclass = 1;
  std::optional<uint16_t> edns_size = std::nullopt;  // an OPT record with this payload size
  uint8_t edns_version = 0;
  bool edns_do = false;
  uint8_t opcode = 0;
};

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

Bytes wire(const Query& q) {
  Bytes b;
  put16(b, q.id);
  b.push_back(static_cast<uint8_t>((q.opcode << 3) | (q.rd ? 1 : 0)));  // QR=0
  b.push_back(0);
  put16(b, 1);                    // qdcount
  put16(b, 0);                    // ancount
  put16(b, 0);                    // nscount
  put16(b, q.edns_size ? 1 : 0);  // arcount
  size_t start = 0;
  while (start < q.name.size()) {
    size_t dot = q.name.find('.', start);
    if (dot == std::string::npos) dot = q.name.size();
    b.push_back(static_cast<uint8_t>(dot - start));
    b.insert(b.end(), q.name.begin() + static_cast<std::ptrdiff_t>(start),
             q.name.begin() + static_cast<std::ptrdiff_t>(dot));
    start = dot + 1;
  }
  b.push_back(0);
  put16(b, q.type);
  put16(b, q.qclass);
  if (q.edns_size) {  // RFC 6891 section 6.1.2
    b.push_back(0);   // root
    put16(b, 41);     // OPT
    put16(b, *q.edns_size);
    b.push_back(0);  // extended rcode
    b.push_back(q.edns_version);
    put16(b, q.edns_do ? 0x8000 : 0);  // DO and Z
    put16(b, 0);                       // rdlen
  }
  return b;
}

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

std::string str(const ldns_rdf* rdf) {
  char* s = ldns_rdf2str(rdf);
  std::string out = s != nullptr ? s : "";
  free(s);  // NOLINT: ldns allocates with malloc
  return out;
}

// One record as "owner TYPE rdata" ("web1.qswitch.internal. A 10.0.2.15").
std::string record(const ldns_rr* rr) {
  std::string out = str(ldns_rr_owner(rr));
  char* type = ldns_rr_type2str(ldns_rr_get_type(rr));
  out += " ";
  out += type;
  free(type);  // NOLINT
  for (size_t i = 0; i < ldns_rr_rd_count(rr); ++i) out += " " + str(ldns_rr_rdf(rr, i));
  return out;
}

std::vector<std::string> section(const ldns_rr_list* list) {
  std::vector<std::string> out;
  for (size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) {
    out.push_back(record(ldns_rr_list_rr(list, i)));
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class DnsResponderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DnsTable t;
    t.domain = "qswitch.internal";
    t.names.push_back({"web1.qswitch.internal", {ip("10.0.2.15"), ip("fec0::5054:ff:fe12:3456")}});
    t.names.push_back({"db.qswitch.internal", {ip("10.0.2.16")}});
    t.names.push_back({"pair.qswitch.internal", {ip("10.0.2.17"), ip("10.0.2.18")}});
    t.names.push_back({"host.qswitch.internal", {ip("10.0.2.2")}});
    t.names.push_back({"gateway.qswitch.internal", {ip("10.0.2.2")}});  // PTR: host's
    t.names.push_back({"deep.lab.qswitch.internal", {ip("10.0.2.30")}});
    t.names.push_back({"mirror.example.com", {ip("192.0.2.10")}});  // a static record
    DnsName many{"many.qswitch.internal", {}};
    for (int i = 0; i < 40; ++i) {
      many.addresses.push_back(ip(("10.0.2." + std::to_string(100 + i)).c_str()));
    }
    t.names.push_back(many);
    t.reverse.push_back({ip("10.0.2.0"), 24});
    t.reverse.push_back({ip("fec0::"), 64});
    t.ttl_s = 60;
    responder_.set_table(t);
  }

  // Sends `q`, expects kAnswered, returns the parsed reply (nullptr on failure, with a test
  // failure said).
  Pkt ask(const Query& q, Transport transport = Transport::kUdp) {
    Bytes b = wire(q);
    return ask_bytes(b, transport);
  }
  Pkt ask_bytes(const Bytes& b, Transport transport = Transport::kUdp) {
    auto exact = std::make_unique<uint8_t[]>(b.size());
    std::copy(b.begin(), b.end(), exact.get());
    Bytes reply{1, 2, 3};
    Verdict v = responder_.answer(exact.get(), b.size(), transport, reply);
    EXPECT_EQ(v, Verdict::kAnswered);
    if (v != Verdict::kAnswered) return nullptr;
    last_size_ = reply.size();
    ldns_pkt* p = nullptr;
    EXPECT_EQ(ldns_wire2pkt(&p, reply.data(), reply.size()), LDNS_STATUS_OK);
    Pkt pkt(p);
    if (pkt) {
      EXPECT_EQ(ldns_pkt_id(pkt.get()), b[0] << 8 | b[1]);
      EXPECT_TRUE(ldns_pkt_qr(pkt.get()));
      EXPECT_TRUE(ldns_pkt_aa(pkt.get()));
      EXPECT_TRUE(ldns_pkt_ra(pkt.get()));
      EXPECT_EQ(ldns_pkt_get_opcode(pkt.get()), LDNS_PACKET_QUERY);
      EXPECT_EQ(ldns_pkt_qdcount(pkt.get()), 1);
    }
    return pkt;
  }
  Verdict refused(const Bytes& b, Transport transport = Transport::kUdp) {
    auto exact = std::make_unique<uint8_t[]>(b.size() + 1);  // +1: size 0 is still a pointer
    std::copy(b.begin(), b.end(), exact.get());
    Bytes reply{1, 2, 3};
    Verdict v = responder_.answer(exact.get(), b.size(), transport, reply);
    EXPECT_TRUE(reply.empty());
    return v;
  }

  static std::vector<std::string> answers(const Pkt& p) {
    return section(ldns_pkt_answer(p.get()));
  }
  static std::vector<std::string> authority(const Pkt& p) {
    return section(ldns_pkt_authority(p.get()));
  }
  static std::string question(const Pkt& p) {
    const ldns_rr* q = ldns_rr_list_rr(ldns_pkt_question(p.get()), 0);
    return q != nullptr ? record(q) : "";
  }

  DnsResponder responder_;
  size_t last_size_ = 0;
};

const std::string kSoa =
    "qswitch.internal. SOA dns.qswitch.internal. hostmaster.qswitch.internal. 1 3600 600 86400 60";

TEST_F(DnsResponderTest, AnswersAGuestsIpv4Address) {
  Pkt p = ask({.name = "web1.qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(answers(p), std::vector<std::string>{"web1.qswitch.internal. A 10.0.2.15"});
  EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0)), 60U);
  EXPECT_TRUE(authority(p).empty());
  EXPECT_TRUE(ldns_pkt_rd(p.get()));
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_FALSE(ldns_pkt_edns(p.get()));  // no OPT asked, none sent
}

TEST_F(DnsResponderTest, AnswersAGuestsIpv6Address) {
  Pkt p = ask({.name = "web1.qswitch.internal", .type = kTypeAaaa, .rd = false});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p),
            std::vector<std::string>{"web1.qswitch.internal. AAAA fec0::5054:ff:fe12:3456"});
  EXPECT_FALSE(ldns_pkt_rd(p.get()));  // copied from the query
}

TEST_F(DnsResponderTest, AnswersEveryAddressOfAName) {
  Pkt p = ask({.name = "pair.qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p), (std::vector<std::string>{"pair.qswitch.internal. A 10.0.2.17",
                                                  "pair.qswitch.internal. A 10.0.2.18"}));
}

TEST_F(DnsResponderTest, AnyGivesBothFamilies) {
  Pkt p = ask({.name = "web1.qswitch.internal", .type = kTypeAny});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p),
            (std::vector<std::string>{"web1.qswitch.internal. A 10.0.2.15",
                                      "web1.qswitch.internal. AAAA fec0::5054:ff:fe12:3456"}));
}

TEST_F(DnsResponderTest, ShortNameIsAnsweredUnderTheNameAsked) {
  Pkt p = ask({.name = "web1", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p), std::vector<std::string>{"web1. A 10.0.2.15"});
  // The first label of a deeper name too ("deep" of deep.lab.qswitch.internal).
  Pkt deep = ask({.name = "deep", .type = kTypeA});
  ASSERT_TRUE(deep);
  EXPECT_EQ(answers(deep), std::vector<std::string>{"deep. A 10.0.2.30"});
  // A short name of no guest is not ours: the host's resolver (search list) may know it.
  Bytes reply;
  Bytes q = wire({.name = "nosuch", .type = kTypeA});
  EXPECT_EQ(responder_.answer(q.data(), q.size(), Transport::kUdp, reply), Verdict::kNotOurs);
  // Nor is the first label of a static name outside the domain.
  q = wire({.name = "mirror", .type = kTypeA});
  EXPECT_EQ(responder_.answer(q.data(), q.size(), Transport::kUdp, reply), Verdict::kNotOurs);
}

TEST_F(DnsResponderTest, MatchesAnyCaseAndEchoesTheCaseAsSent) {
  Pkt p = ask({.name = "WeB1.QSwitch.INTERNAL", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(question(p), "WeB1.QSwitch.INTERNAL. A");
  EXPECT_EQ(answers(p), std::vector<std::string>{"WeB1.QSwitch.INTERNAL. A 10.0.2.15"});
}

TEST_F(DnsResponderTest, NamesOutsideLdhMatchByteForByte) {
  DnsTable t = responder_.table();
  t.names.push_back({"my_host.qswitch.internal", {ip("10.0.2.50")}});
  t.names.push_back({"caf\xc3\xa9.qswitch.internal", {ip("10.0.2.51")}});  // UTF-8, not IDNA
  t.names.push_back({"a.b.qswitch.internal", {ip("10.0.2.52")}});
  responder_.set_table(t);
  Pkt underscore = ask({.name = "MY_HOST.qswitch.internal"});
  ASSERT_TRUE(underscore);
  EXPECT_EQ(answers(underscore).size(), 1U);
  Pkt utf8 = ask({.name = "caf\xc3\xa9.qswitch.internal"});
  ASSERT_TRUE(utf8);
  EXPECT_EQ(answers(utf8).size(), 1U);
  // Only ASCII letters fold: a byte above 0x7f is compared as it is.
  Pkt other = ask({.name = "caf\xc3\x89.qswitch.internal"});
  ASSERT_TRUE(other);
  EXPECT_EQ(ldns_pkt_get_rcode(other.get()), LDNS_RCODE_NXDOMAIN);
  // One label "a.b" (a dot inside it) is not the two labels a and b.
  Bytes q = wire({.name = "x.qswitch.internal"});
  q[12] = 3;  // the label becomes "a.b": 3 bytes
  q.erase(q.begin() + 13);
  q.insert(q.begin() + 13, {'a', '.', 'b'});
  Pkt dotted = ask_bytes(q);
  ASSERT_TRUE(dotted);
  EXPECT_EQ(ldns_pkt_get_rcode(dotted.get()), LDNS_RCODE_NXDOMAIN);
  Pkt two = ask({.name = "a.b.qswitch.internal"});
  ASSERT_TRUE(two);
  EXPECT_EQ(answers(two).size(), 1U);
}

TEST_F(DnsResponderTest, PtrForAnIpv4AddressGivesItsFirstName) {
  Pkt p = ask({.name = "15.2.0.10.in-addr.arpa", .type = kTypePtr});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p),
            std::vector<std::string>{"15.2.0.10.in-addr.arpa. PTR web1.qswitch.internal."});
  Pkt host = ask({.name = "2.2.0.10.IN-ADDR.ARPA", .type = kTypePtr});
  ASSERT_TRUE(host);
  EXPECT_EQ(answers(host),
            std::vector<std::string>{"2.2.0.10.IN-ADDR.ARPA. PTR host.qswitch.internal."});
}

TEST_F(DnsResponderTest, PtrForAnIpv6AddressInNibbleFormat) {
  // fec0::5054:ff:fe12:3456, RFC 3596 section 2.5
  Pkt p = ask({.name = "6.5.4.3.2.1.E.F.F.F.0.0.4.5.0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.c.e.f.ip6.arpa",
               .type = kTypePtr});
  ASSERT_TRUE(p);
  ASSERT_EQ(answers(p).size(), 1U);
  EXPECT_NE(answers(p)[0].find(" PTR web1.qswitch.internal."), std::string::npos) << answers(p)[0];
}

TEST_F(DnsResponderTest, PtrInsideTheSegmentWithoutANameIsNxdomain) {
  Pkt p = ask({.name = "99.2.0.10.in-addr.arpa", .type = kTypePtr});
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(answers(p).empty());
  EXPECT_EQ(authority(p),
            std::vector<std::string>{"2.0.10.in-addr.arpa. SOA dns.qswitch.internal. "
                                     "hostmaster.qswitch.internal. 1 3600 600 86400 60"});
  Pkt v6 = ask({.name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.e.f.ip6.arpa",
                .type = kTypePtr});
  ASSERT_TRUE(v6);
  EXPECT_EQ(ldns_pkt_get_rcode(v6.get()), LDNS_RCODE_NXDOMAIN);
  // The reverse zone's apex answers its SOA.
  Pkt apex = ask({.name = "2.0.10.in-addr.arpa", .type = kTypeSoa});
  ASSERT_TRUE(apex);
  EXPECT_EQ(ldns_pkt_get_rcode(apex.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(answers(apex).size(), 1U);
}

TEST_F(DnsResponderTest, PtrOutsideTheSegmentIsNotOurs) {
  EXPECT_EQ(refused(wire({.name = "8.8.8.8.in-addr.arpa", .type = kTypePtr})), Verdict::kNotOurs);
  EXPECT_EQ(refused(wire({.name = "0.10.in-addr.arpa", .type = kTypePtr})), Verdict::kNotOurs);
  // A static name's address outside the segment is ours by the address.
  Pkt p = ask({.name = "10.2.0.192.in-addr.arpa", .type = kTypePtr});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p),
            std::vector<std::string>{"10.2.0.192.in-addr.arpa. PTR mirror.example.com."});
}

TEST_F(DnsResponderTest, NamesOutsideTheDomainAreNotOurs) {
  EXPECT_EQ(refused(wire({.name = "example.org", .type = kTypeA})), Verdict::kNotOurs);
  EXPECT_EQ(refused(wire({.name = "internal", .type = kTypeA})), Verdict::kNotOurs);
  EXPECT_EQ(refused(wire({.name = "web1.qswitch.internal", .qclass = 3})), Verdict::kNotOurs);
  EXPECT_EQ(responder_.counters().not_ours, 3U);
  EXPECT_EQ(responder_.counters().answered, 0U);
}

TEST_F(DnsResponderTest, UnknownNameInTheDomainIsNxdomainWithTheSoa) {
  Pkt p = ask({.name = "nosuch.qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_TRUE(answers(p).empty());
  EXPECT_EQ(authority(p), std::vector<std::string>{kSoa});
  // Below an existing name too (nothing lives under web1).
  Pkt below = ask({.name = "x.web1.qswitch.internal", .type = kTypeAaaa});
  ASSERT_TRUE(below);
  EXPECT_EQ(ldns_pkt_get_rcode(below.get()), LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(responder_.counters().nxdomain, 2U);
}

TEST_F(DnsResponderTest, ExistingNameWithoutTheTypeIsNodataWithTheSoa) {
  for (const Query& q : {Query{.name = "web1.qswitch.internal", .type = kTypeMx},
                         Query{.name = "db.qswitch.internal", .type = kTypeAaaa},
                         Query{.name = "lab.qswitch.internal", .type = kTypeA},  // non-terminal
                         Query{.name = "web1.qswitch.internal", .type = kTypePtr}}) {
    Pkt p = ask(q);
    ASSERT_TRUE(p) << q.name;
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR) << q.name;
    EXPECT_TRUE(answers(p).empty()) << q.name;
    EXPECT_EQ(authority(p), std::vector<std::string>{kSoa}) << q.name;
  }
  EXPECT_EQ(responder_.counters().nodata, 4U);
  EXPECT_EQ(responder_.counters().nxdomain, 0U);
  EXPECT_EQ(responder_.counters().answered, 4U);
}

TEST_F(DnsResponderTest, ApexAnswersSoaAndNs) {
  Pkt soa = ask({.name = "qswitch.internal", .type = kTypeSoa});
  ASSERT_TRUE(soa);
  EXPECT_EQ(answers(soa), std::vector<std::string>{kSoa});
  EXPECT_TRUE(authority(soa).empty());
  Pkt ns = ask({.name = "QSwitch.internal", .type = kTypeNs});
  ASSERT_TRUE(ns);
  // ldns compresses the target into the question's spelling ("dns.QSwitch.internal."): the
  // same name, since names compare without case (RFC 4343).
  ASSERT_EQ(answers(ns).size(), 1U);
  EXPECT_EQ(lower(answers(ns)[0]), "qswitch.internal. ns dns.qswitch.internal.");
  Pkt a = ask({.name = "qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(a);
  EXPECT_EQ(ldns_pkt_get_rcode(a.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(answers(a).empty());
  EXPECT_EQ(authority(a), std::vector<std::string>{kSoa});
  // SOA below the apex: NODATA.
  Pkt below = ask({.name = "web1.qswitch.internal", .type = kTypeSoa});
  ASSERT_TRUE(below);
  EXPECT_TRUE(answers(below).empty());
}

TEST_F(DnsResponderTest, StaticNameOutsideTheDomainIsAnsweredExactly) {
  Pkt p = ask({.name = "Mirror.Example.com", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p), std::vector<std::string>{"Mirror.Example.com. A 192.0.2.10"});
  Pkt none = ask({.name = "mirror.example.com", .type = kTypeAaaa});
  ASSERT_TRUE(none);
  EXPECT_EQ(ldns_pkt_get_rcode(none.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(answers(none).empty());
  ASSERT_EQ(authority(none).size(), 1U);
  EXPECT_EQ(authority(none)[0].rfind("mirror.example.com. SOA ", 0), 0U) << authority(none)[0];
  EXPECT_EQ(refused(wire({.name = "other.example.com", .type = kTypeA})), Verdict::kNotOurs);
}

TEST_F(DnsResponderTest, TooBigForUdpIsTruncatedToTheQuestion) {
  Pkt p = ask({.name = "many.qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_TRUE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(question(p), "many.qswitch.internal. A");
  EXPECT_TRUE(answers(p).empty());
  EXPECT_TRUE(authority(p).empty());
  EXPECT_LE(last_size_, 512U);
  EXPECT_EQ(responder_.counters().truncated, 1U);
  EXPECT_EQ(responder_.counters().nodata, 0U);
  // An EDNS0 size below 512 still means 512.
  Pkt small = ask({.name = "many.qswitch.internal", .type = kTypeA, .edns_size = 100});
  ASSERT_TRUE(small);
  EXPECT_TRUE(ldns_pkt_tc(small.get()));
  EXPECT_TRUE(ldns_pkt_edns(small.get()));
}

TEST_F(DnsResponderTest, TheSameOverTcpIsComplete) {
  Pkt p = ask({.name = "many.qswitch.internal", .type = kTypeA}, Transport::kTcp);
  ASSERT_TRUE(p);
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(answers(p).size(), 40U);
  EXPECT_GT(last_size_, 512U);
  EXPECT_EQ(responder_.counters().truncated, 0U);
}

TEST_F(DnsResponderTest, AnEdns0SizeLetsItFitOverUdp) {
  Pkt p = ask({.name = "many.qswitch.internal", .type = kTypeA, .edns_size = 1232});
  ASSERT_TRUE(p);
  EXPECT_FALSE(ldns_pkt_tc(p.get()));
  EXPECT_EQ(answers(p).size(), 40U);
  EXPECT_GT(last_size_, 512U);
  EXPECT_LE(last_size_, 1232U);
  EXPECT_TRUE(ldns_pkt_edns(p.get()));
  EXPECT_EQ(ldns_pkt_edns_udp_size(p.get()), DnsResponder::kMaxUdpSize);
  EXPECT_EQ(ldns_pkt_edns_version(p.get()), 0);
}

TEST_F(DnsResponderTest, AnOptWithSizeZeroStillGetsAnOpt) {
  Pkt p = ask({.name = "web1.qswitch.internal", .type = kTypeA, .edns_size = 0});
  ASSERT_TRUE(p);
  EXPECT_TRUE(ldns_pkt_edns(p.get()));
  EXPECT_EQ(answers(p).size(), 1U);
  Pkt many = ask({.name = "many.qswitch.internal", .type = kTypeA, .edns_size = 0});
  ASSERT_TRUE(many);
  EXPECT_TRUE(ldns_pkt_tc(many.get()));  // 0 means 512 (RFC 6891 section 6.2.5)
}

TEST_F(DnsResponderTest, TheDoBitIsCopied) {
  Pkt with = ask({.name = "web1.qswitch.internal", .edns_size = 1232, .edns_do = true});
  ASSERT_TRUE(with);
  EXPECT_TRUE(ldns_pkt_edns_do(with.get()));
  Pkt without = ask({.name = "web1.qswitch.internal", .edns_size = 1232});
  ASSERT_TRUE(without);
  EXPECT_FALSE(ldns_pkt_edns_do(without.get()));
}

TEST_F(DnsResponderTest, WithoutAUsableDomainOnlyExactNamesAndAddressesAreOurs) {
  DnsTable t = responder_.table();
  t.domain = "";
  t.names.push_back({"printer.lab.", {ip("10.0.2.40")}});  // a trailing dot is the same name
  responder_.set_table(t);
  EXPECT_EQ(refused(wire({.name = "web1"})), Verdict::kNotOurs);
  EXPECT_EQ(refused(wire({.name = "nosuch.qswitch.internal"})), Verdict::kNotOurs);
  Pkt exact = ask({.name = "web1.qswitch.internal"});
  ASSERT_TRUE(exact);
  EXPECT_EQ(answers(exact), std::vector<std::string>{"web1.qswitch.internal. A 10.0.2.15"});
  Pkt printer = ask({.name = "printer.lab"});
  ASSERT_TRUE(printer);
  EXPECT_EQ(answers(printer), std::vector<std::string>{"printer.lab. A 10.0.2.40"});
}

TEST_F(DnsResponderTest, OverSizedEdns0IsCappedAtTheMaximum) {
  DnsTable t = responder_.table();
  DnsName huge{"huge.qswitch.internal", {}};
  for (int i = 0; i < 300; ++i) {  // 300 AAAA records: about 8.4 KB
    huge.addresses.push_back(ip(("fec0::" + std::to_string(1000 + i)).c_str()));
  }
  t.names.push_back(huge);
  responder_.set_table(t);
  Pkt udp = ask({.name = "huge.qswitch.internal", .type = kTypeAaaa, .edns_size = 65000});
  ASSERT_TRUE(udp);
  EXPECT_TRUE(ldns_pkt_tc(udp.get()));
  Pkt tcp = ask({.name = "huge.qswitch.internal", .type = kTypeAaaa}, Transport::kTcp);
  ASSERT_TRUE(tcp);
  EXPECT_FALSE(ldns_pkt_tc(tcp.get()));
  EXPECT_EQ(answers(tcp).size(), 300U);
  EXPECT_GT(last_size_, DnsResponder::kMaxUdpSize);
}

TEST_F(DnsResponderTest, ZoneTransfersAreRefused) {
  for (uint16_t type : {uint16_t{252}, uint16_t{251}}) {  // AXFR, IXFR
    Pkt p = ask({.name = "qswitch.internal", .type = type}, Transport::kTcp);
    ASSERT_TRUE(p);
    EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_REFUSED);
    EXPECT_TRUE(answers(p).empty());
    EXPECT_TRUE(authority(p).empty());
  }
  EXPECT_EQ(responder_.counters().nodata, 0U);
}

TEST_F(DnsResponderTest, AnAddressInTwoEntriesOfANameIsAnsweredOnce) {
  DnsTable t = responder_.table();
  t.names.push_back({"web1.qswitch.internal", {ip("10.0.2.15"), ip("10.0.2.99")}});
  responder_.set_table(t);
  Pkt p = ask({.name = "web1.qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p), (std::vector<std::string>{"web1.qswitch.internal. A 10.0.2.15",
                                                  "web1.qswitch.internal. A 10.0.2.99"}));
}

TEST_F(DnsResponderTest, TheApexIsNoShortName) {
  DnsTable t = responder_.table();
  t.names.push_back({"qswitch.internal", {ip("10.0.2.3")}});
  responder_.set_table(t);
  Pkt p = ask({.name = "qswitch.internal", .type = kTypeA});
  ASSERT_TRUE(p);
  EXPECT_EQ(answers(p), std::vector<std::string>{"qswitch.internal. A 10.0.2.3"});
  EXPECT_EQ(refused(wire({.name = "qswitch"})), Verdict::kNotOurs);
}

TEST_F(DnsResponderTest, AnUnknownEdnsVersionGetsBadvers) {
  Pkt p =
      ask({.name = "web1.qswitch.internal", .type = kTypeA, .edns_size = 1232, .edns_version = 1});
  ASSERT_TRUE(p);
  EXPECT_TRUE(answers(p).empty());
  // RFC 6891 section 6.1.3: BADVERS (16) = extended rcode 1, header rcode 0.
  EXPECT_EQ(ldns_pkt_edns_extended_rcode(p.get()), 1);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), 0);
}

TEST_F(DnsResponderTest, MalformedAndForeignMessagesAreCountedAndNotAnswered) {
  Bytes good = wire({.name = "web1.qswitch.internal", .type = kTypeA});
  EXPECT_EQ(refused(Bytes{}), Verdict::kMalformed);
  EXPECT_EQ(refused(Bytes(good.begin(), good.begin() + 5)), Verdict::kMalformed);  // short header
  EXPECT_EQ(refused(Bytes(good.begin(), good.end() - 3)), Verdict::kMalformed);    // cut question
  Bytes response = good;
  response[2] |= 0x80;  // QR
  EXPECT_EQ(refused(response), Verdict::kMalformed);
  Bytes label_too_long = good;
  label_too_long[12] = 0x40;  // a 64-byte label (RFC 1035 2.3.4)
  EXPECT_EQ(refused(label_too_long), Verdict::kMalformed);
  EXPECT_EQ(responder_.counters().malformed, 5U);

  Bytes two = good;  // qdcount 2, the question twice
  two[5] = 2;
  two.insert(two.end(), good.begin() + 12, good.end());
  EXPECT_EQ(refused(two), Verdict::kNotOurs);
  Bytes none = good;  // qdcount 0
  none[5] = 0;
  none.resize(12);
  EXPECT_EQ(refused(none), Verdict::kNotOurs);
  EXPECT_EQ(refused(wire({.name = "web1.qswitch.internal", .opcode = 4})),
            Verdict::kNotOurs);  // NOTIFY
  EXPECT_EQ(responder_.counters().not_ours, 3U);
  EXPECT_EQ(responder_.counters().answered, 0U);
}

TEST_F(DnsResponderTest, CountersAddUp) {
  ask({.name = "web1.qswitch.internal"});                   // answer
  ask({.name = "nosuch.qswitch.internal"});                 // NXDOMAIN
  ask({.name = "db.qswitch.internal", .type = kTypeAaaa});  // NODATA
  ask({.name = "many.qswitch.internal"});                   // TC
  ask({.name = "many.qswitch.internal"}, Transport::kTcp);  // answer
  refused(wire({.name = "example.org"}));                   // not ours
  refused(Bytes{0, 1, 2});                                  // malformed
  const DnsResponder::Counters& c = responder_.counters();
  EXPECT_EQ(c.answered, 5U);
  EXPECT_EQ(c.nxdomain, 1U);
  EXPECT_EQ(c.nodata, 1U);
  EXPECT_EQ(c.truncated, 1U);
  EXPECT_EQ(c.not_ours, 1U);
  EXPECT_EQ(c.malformed, 1U);
}

TEST_F(DnsResponderTest, ANewTableReplacesTheOldAndAdvancesTheSerial) {
  DnsTable t = responder_.table();
  t.names.erase(t.names.begin());  // web1 gone
  t.names.push_back({"web2.qswitch.internal", {ip("10.0.2.15")}});
  responder_.set_table(t);
  Pkt gone = ask({.name = "web1.qswitch.internal"});
  ASSERT_TRUE(gone);
  EXPECT_EQ(ldns_pkt_get_rcode(gone.get()), LDNS_RCODE_NXDOMAIN);
  ASSERT_EQ(authority(gone).size(), 1U);
  EXPECT_NE(authority(gone)[0].find(" 2 3600 600 86400 60"), std::string::npos)
      << authority(gone)[0];
  Pkt ptr = ask({.name = "15.2.0.10.in-addr.arpa", .type = kTypePtr});
  ASSERT_TRUE(ptr);
  EXPECT_EQ(answers(ptr),
            std::vector<std::string>{"15.2.0.10.in-addr.arpa. PTR web2.qswitch.internal."});
  EXPECT_EQ(refused(wire({.name = "web1"})), Verdict::kNotOurs);
}

TEST_F(DnsResponderTest, NoTableNothingIsOurs) {
  DnsResponder empty;
  Bytes q = wire({.name = "web1.qswitch.internal"});
  Bytes reply;
  EXPECT_EQ(empty.answer(q.data(), q.size(), Transport::kUdp, reply), Verdict::kNotOurs);
  EXPECT_TRUE(reply.empty());
}

}  // namespace
}  // namespace qswitch::slirp
