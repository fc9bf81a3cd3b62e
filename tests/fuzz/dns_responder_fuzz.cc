// tests/fuzz/dns_responder_fuzz.cc: slirp::DnsResponder (the slirp port's DNS answers) on
// arbitrary query bytes, over UDP and TCP, against a fixed table: guests with IPv4 and IPv6
// addresses, one name with 40 addresses (past 512 bytes), one with 300 (past kMaxUdpSize), a
// name below a non-terminal, a static name outside the domain, the segment's reverse nets.
//
// Input: the query's bytes, then one byte (FuzzedDataProvider, from the back): bit 0 chooses
// TCP. Each input is answered twice; both answers must be the same bytes.
//
// Checked besides the sanitizers: kAnswered exactly when the reply is not empty; an answered
// reply parses with ldns, has the query's id, QR, AA, opcode QUERY, RD as asked, exactly one
// question equal to the query's (name bytes as sent, case included; type, class); it fits 512
// bytes over UDP without EDNS0, min(max(512, size), kMaxUdpSize) with it, 65535 over TCP; it
// carries an OPT exactly when the query did; TC means no records in answer or authority;
// NXDOMAIN and NODATA carry exactly one SOA in authority and no answer; every answer record is
// owned by the question's name. The counters add up to the calls made.
//
// ldns itself is Debian's build, not instrumented: coverage counts qswitch's code only, and
// AddressSanitizer sees ldns's reads of the query through its interceptors (memcpy and the
// like), not its plain loads; libFuzzer's input buffer is exactly `size` bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "slirp/dns_responder.h"
#include "slirp/ldns_cxx.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using qswitch::slirp::DnsName;
using qswitch::slirp::DnsResponder;
using qswitch::slirp::DnsTable;
using qswitch::sw::IpAddress;

IpAddress ip(const std::string& text) { return IpAddress::parse(text).value_or(IpAddress{}); }

DnsTable make_table() {
  DnsTable t;
  t.domain = "qswitch.internal";
  t.names.push_back({"web1.qswitch.internal", {ip("10.0.2.15"), ip("fec0::5054:ff:fe12:3456")}});
  t.names.push_back({"db.qswitch.internal", {ip("10.0.2.16")}});
  t.names.push_back({"host.qswitch.internal", {ip("10.0.2.2")}});
  t.names.push_back({"gateway.qswitch.internal", {ip("10.0.2.2")}});
  t.names.push_back({"deep.lab.qswitch.internal", {ip("10.0.2.30"), ip("fe80::1")}});
  t.names.push_back({"mirror.example.com", {ip("192.0.2.10")}});
  DnsName many{"many.qswitch.internal", {}};
  for (int i = 0; i < 40; ++i) many.addresses.push_back(ip("10.0.2." + std::to_string(100 + i)));
  t.names.push_back(many);
  DnsName huge{"huge.qswitch.internal", {}};
  for (int i = 0; i < 300; ++i) huge.addresses.push_back(ip("fec0::" + std::to_string(1000 + i)));
  t.names.push_back(huge);
  t.reverse.push_back({ip("10.0.2.0"), 24});
  t.reverse.push_back({ip("fec0::"), 64});
  t.ttl_s = 60;
  return t;
}

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

Pkt parse(const uint8_t* data, size_t size) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, data, size) != LDNS_STATUS_OK) {
    ldns_pkt_free(p);
    return nullptr;
  }
  return Pkt(p);
}

bool same_bytes(const ldns_rdf* a, const ldns_rdf* b) {
  return ldns_rdf_size(a) == ldns_rdf_size(b) &&
         std::memcmp(ldns_rdf_data(a), ldns_rdf_data(b), ldns_rdf_size(a)) == 0;
}

void check_answer(const std::vector<uint8_t>& query, bool tcp, const std::vector<uint8_t>& reply) {
  Pkt q = parse(query.data(), query.size());
  FUZZ_CHECK(q != nullptr);  // answered, so ldns parsed it
  Pkt r = parse(reply.data(), reply.size());
  FUZZ_CHECK(r != nullptr);
  FUZZ_CHECK(ldns_pkt_id(r.get()) == (query[0] << 8 | query[1]));
  FUZZ_CHECK(ldns_pkt_qr(r.get()) && ldns_pkt_aa(r.get()));
  FUZZ_CHECK(ldns_pkt_get_opcode(r.get()) == LDNS_PACKET_QUERY);
  FUZZ_CHECK(ldns_pkt_rd(r.get()) == ldns_pkt_rd(q.get()));
  FUZZ_CHECK(ldns_pkt_qdcount(r.get()) == 1 && ldns_pkt_qdcount(q.get()) == 1);
  const ldns_rr* rq = ldns_rr_list_rr(ldns_pkt_question(r.get()), 0);
  const ldns_rr* qq = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  FUZZ_CHECK(rq != nullptr && qq != nullptr);
  FUZZ_CHECK(same_bytes(ldns_rr_owner(rq), ldns_rr_owner(qq)));
  FUZZ_CHECK(ldns_rr_get_type(rq) == ldns_rr_get_type(qq));
  FUZZ_CHECK(ldns_rr_get_class(rq) == LDNS_RR_CLASS_IN &&
             ldns_rr_get_class(qq) == LDNS_RR_CLASS_IN);

  size_t limit = 65535;
  if (!tcp) {
    limit = 512;
    if (ldns_pkt_edns(q.get())) {
      limit = std::clamp<size_t>(ldns_pkt_edns_udp_size(q.get()), 512, DnsResponder::kMaxUdpSize);
    }
  }
  FUZZ_CHECK(reply.size() <= limit);
  FUZZ_CHECK(ldns_pkt_edns(r.get()) == ldns_pkt_edns(q.get()));

  size_t an = ldns_rr_list_rr_count(ldns_pkt_answer(r.get()));
  size_t ns = ldns_rr_list_rr_count(ldns_pkt_authority(r.get()));
  FUZZ_CHECK(an == ldns_pkt_ancount(r.get()) && ns == ldns_pkt_nscount(r.get()));
  if (ldns_pkt_tc(r.get())) {
    FUZZ_CHECK(an == 0 && ns == 0);
    return;
  }
  for (size_t i = 0; i < an; ++i) {
    FUZZ_CHECK(ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(r.get()), i)),
                                  ldns_rr_owner(qq)) == 0);
  }
  ldns_pkt_rcode rcode = ldns_pkt_get_rcode(r.get());
  bool badvers = ldns_pkt_edns_extended_rcode(r.get()) != 0;
  if (!badvers && (rcode == LDNS_RCODE_NXDOMAIN || (rcode == LDNS_RCODE_NOERROR && an == 0))) {
    FUZZ_CHECK(an == 0 && ns == 1);
    FUZZ_CHECK(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(r.get()), 0)) ==
               LDNS_RR_TYPE_SOA);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static DnsResponder responder = [] {
    DnsResponder r;
    r.set_table(make_table());
    return r;
  }();
  const DnsResponder::Counters before = responder.counters();

  FuzzedDataProvider in(data, size);
  const bool tcp = (in.ConsumeIntegral<uint8_t>() & 1) != 0;
  const std::vector<uint8_t> query = in.ConsumeRemainingBytes<uint8_t>();
  const auto transport = tcp ? DnsResponder::Transport::kTcp : DnsResponder::Transport::kUdp;

  // An exactly sized heap copy: a read past `size` is a heap-buffer-overflow.
  auto exact = std::make_unique<uint8_t[]>(query.size());
  std::copy(query.begin(), query.end(), exact.get());
  std::vector<uint8_t> reply{0xee};
  const DnsResponder::Verdict v = responder.answer(exact.get(), query.size(), transport, reply);
  FUZZ_CHECK((v == DnsResponder::Verdict::kAnswered) == !reply.empty());
  if (v == DnsResponder::Verdict::kAnswered) check_answer(query, tcp, reply);

  std::vector<uint8_t> again{0xee};
  FUZZ_CHECK(responder.answer(exact.get(), query.size(), transport, again) == v);
  FUZZ_CHECK(again == reply);

  const DnsResponder::Counters& c = responder.counters();
  const uint64_t answered = c.answered - before.answered;
  FUZZ_CHECK(answered + (c.not_ours - before.not_ours) + (c.malformed - before.malformed) == 2);
  FUZZ_CHECK(answered == (v == DnsResponder::Verdict::kAnswered ? 2U : 0U));
  FUZZ_CHECK((c.nxdomain - before.nxdomain) + (c.nodata - before.nodata) <= answered);
  FUZZ_CHECK((c.truncated - before.truncated) <= answered);
  return 0;
}
