// slirp/dns_responder.cc: the slirp port's own DNS answers (dns_responder.h has the theory of
// operation). Queries are parsed with ldns (ldns_wire2pkt), replies built as ldns packets and
// written with ldns_pkt2wire (which compresses names, RFC 1035 section 4.1.4).
//
// Names are compared as "keys": the name's labels in wire form (a length byte, then the label's
// bytes, ASCII letters lower-cased; RFC 4343), without the root label. Labels are compared byte
// by byte, so a label holding a '.' or any other byte never matches another label sequence.
//
// Which query is ours, and its zone (the owner of the SOA that negative answers carry):
// 1. the domain or a name under it: the domain's zone. A name exists when it is in the table,
//    is the apex, or is an ancestor of a table name below the apex (an empty non-terminal:
//    NODATA, not NXDOMAIN; RFC 8020).
// 2. a name of the table outside the domain (a static record), exactly: its own zone.
// 3. a single label that is the first label of a name in the domain: answered as that name
//    (the shortest such name; table order among equals), owner as asked, its own zone.
// 4. in-addr.arpa / ip6.arpa (RFC 1035 section 3.5, RFC 3596 section 2.5): a full address in
//    the table (its own zone, unless inside a `reverse` net), or any name at or below the reverse
//    zone of a `reverse` net: the in-addr.arpa name of the net's whole octets (10.0.2.0/24:
//    2.0.10.in-addr.arpa), the ip6.arpa name of its whole nibbles (fec0::/64: 16 nibbles). A
//    full address without a name, or anything below one, is NXDOMAIN; a partial name with table
//    addresses under it is NODATA.
// Every answer record's owner is the question's name as sent (0x20 case preserved).
//
// Flags: QR, AA; RD copied; RA set, since the same address recurses for every other name
// (libslirp's forwarder), and stub resolvers (nslookup, dig) warn when it is clear. Class IN
// only (others are not ours). EDNS0 (RFC 6891): an OPT in the query gets one in the reply
// (payload size kMaxUdpSize, version 0, the DO bit copied, no options); a version other than 0
// gets BADVERS.
// AXFR and IXFR get REFUSED. An address twice in a name's entries is answered once.
//
// Verdicts on what is not a plain query: fewer than 12 bytes or anything ldns refuses to parse,
// and a message with QR set (a response, not a query), are kMalformed; an opcode other than
// QUERY, a question count other than 1 or a class other than IN are kNotOurs (well-formed,
// handed on to libslirp as before). If ldns fails to allocate (not expected) the query is
// handed on as kNotOurs too.
#include "slirp/dns_responder.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "slirp/ldns_cxx.h"

namespace qswitch::slirp {

namespace {

constexpr size_t kPlainUdpSize = 512;     // RFC 1035 section 4.2.1
constexpr size_t kMaxTcpSize = 65535;     // RFC 1035 section 4.2.2: a two-byte length
constexpr size_t kMaxNameWireSize = 255;  // RFC 1035 section 2.3.4, with the root label
constexpr uint32_t kSoaRefreshS = 3600;
constexpr uint32_t kSoaRetryS = 600;
constexpr uint32_t kSoaExpireS = 86400;
constexpr uint8_t kRcodeBadVers = 16;  // RFC 6891 section 6.1.3: upper 8 bits in the OPT

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
struct RrFree {
  void operator()(ldns_rr* r) const { ldns_rr_free(r); }
};
struct RdfFree {
  void operator()(ldns_rdf* r) const { ldns_rdf_deep_free(r); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

char lower(uint8_t c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); }

// "web1.qswitch.internal" -> "\4web1\10qswitch\10internal"; nullopt for a name DNS cannot
// carry (an empty label, a label over 63 bytes, over 255 bytes in all).
std::optional<std::string> key_of_text(std::string_view name) {
  std::string key;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);  // "name." is "name"
  if (name.empty()) return key;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    size_t end = dot == std::string_view::npos ? name.size() : dot;
    size_t len = end - start;
    if (len == 0 || len > 63) return std::nullopt;
    key.push_back(static_cast<char>(len));
    for (size_t i = start; i < end; ++i) key.push_back(lower(static_cast<uint8_t>(name[i])));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (key.size() + 1 > kMaxNameWireSize) return std::nullopt;
  return key;
}

// The key of an ldns dname rdf (wire form, ending in the root label); nullopt if it is not one.
std::optional<std::string> key_of_dname(const ldns_rdf* rdf) {
  if (rdf == nullptr || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME) return std::nullopt;
  const uint8_t* data = ldns_rdf_data(rdf);
  size_t size = ldns_rdf_size(rdf);
  std::string key;
  size_t pos = 0;
  while (pos < size) {
    uint8_t len = data[pos];
    if (len == 0) return key;
    if (len > 63 || pos + 1 + len > size) return std::nullopt;
    key.push_back(static_cast<char>(len));
    for (size_t i = 0; i < len; ++i) key.push_back(lower(data[pos + 1 + i]));
    pos += 1 + len;
  }
  return std::nullopt;
}

// The offsets at which each label of `key` starts.
std::vector<size_t> label_starts(std::string_view key) {
  std::vector<size_t> starts;
  for (size_t pos = 0; pos < key.size(); pos += 1 + static_cast<uint8_t>(key[pos])) {
    starts.push_back(pos);
  }
  return starts;
}

// `key` is `apex` or a name below it (label-aligned).
bool at_or_below(std::string_view key, std::string_view apex) {
  if (apex.empty()) return true;
  if (key.size() < apex.size()) return false;
  size_t off = key.size() - apex.size();
  if (key.substr(off) != apex) return false;
  if (off == 0) return true;
  for (size_t start : label_starts(key)) {
    if (start == off) return true;
  }
  return false;
}

size_t label_count(std::string_view key) { return label_starts(key).size(); }

std::string label_key(std::string_view label) {
  std::string k(1, static_cast<char>(label.size()));
  k.append(label);
  return k;
}

const std::string& in_addr_arpa_key() {
  static const std::string k = label_key("in-addr") + label_key("arpa");
  return k;
}
const std::string& ip6_arpa_key() {
  static const std::string k = label_key("ip6") + label_key("arpa");
  return k;
}

using AddressKey = std::pair<sw::IpAddress::Family, std::array<uint8_t, 16>>;

AddressKey address_key(const sw::IpAddress& a) { return {a.family, a.bytes}; }

// The first `bits` bits of a and b agree.
bool prefix_match(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                  unsigned bits) {
  for (unsigned i = 0; i < bits; ++i) {
    unsigned byte = i / 8;
    unsigned mask = 0x80U >> (i % 8);
    if ((a[byte] & mask) != (b[byte] & mask)) return false;
  }
  return true;
}

// A reverse name, read from the right: `units` octets (in-addr.arpa) or nibbles (ip6.arpa)
// written into `bytes`, then `extra` labels to their left that are not (more) address units.
struct ReverseName {
  sw::IpAddress::Family family = sw::IpAddress::Family::kNone;
  std::array<uint8_t, 16> bytes{};
  unsigned units = 0;      // octets or nibbles read
  unsigned max_units = 0;  // 4 or 32
  unsigned unit_bits = 0;  // 8 or 4
  size_t extra = 0;        // labels left of them
  bool full() const { return units == max_units && extra == 0; }
};

std::optional<unsigned> octet_of(std::string_view label) {
  if (label.empty() || label.size() > 3) return std::nullopt;
  if (label.size() > 1 && label[0] == '0') return std::nullopt;  // one spelling per octet
  unsigned v = 0;
  for (char c : label) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 255) return std::nullopt;
  return v;
}

std::optional<unsigned> nibble_of(std::string_view label) {
  if (label.size() != 1) return std::nullopt;
  char c = label[0];  // keys are lower case
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned>(c - 'a' + 10);
  return std::nullopt;
}

std::optional<ReverseName> parse_reverse(std::string_view key) {
  ReverseName r;
  std::string_view rest;
  if (at_or_below(key, in_addr_arpa_key())) {
    r.family = sw::IpAddress::Family::kV4;
    r.max_units = 4;
    r.unit_bits = 8;
    rest = key.substr(0, key.size() - in_addr_arpa_key().size());
  } else if (at_or_below(key, ip6_arpa_key())) {
    r.family = sw::IpAddress::Family::kV6;
    r.max_units = 32;
    r.unit_bits = 4;
    rest = key.substr(0, key.size() - ip6_arpa_key().size());
  } else {
    return std::nullopt;
  }
  std::vector<size_t> starts = label_starts(rest);
  size_t i = starts.size();
  while (i > 0 && r.units < r.max_units) {
    size_t s = starts[i - 1];
    std::string_view label = rest.substr(s + 1, static_cast<uint8_t>(rest[s]));
    std::optional<unsigned> v = r.unit_bits == 8 ? octet_of(label) : nibble_of(label);
    if (!v) break;
    if (r.unit_bits == 8) {
      r.bytes[r.units] = static_cast<uint8_t>(*v);
    } else {
      r.bytes[r.units / 2] |= static_cast<uint8_t>(r.units % 2 == 0 ? *v << 4 : *v);
    }
    ++r.units;
    --i;
  }
  r.extra = i;
  return r;
}

// The key of the reverse zone of `net`: its whole octets or nibbles, then in-addr.arpa/ip6.arpa.
std::string reverse_zone_key(const DnsNet& net) {
  static const char* const kHex = "0123456789abcdef";
  std::string key;
  if (net.net.is_v4()) {
    unsigned units = std::min<unsigned>(net.prefix_len, 32) / 8;
    for (unsigned i = units; i > 0; --i) key += label_key(std::to_string(net.net.bytes[i - 1]));
    return key + in_addr_arpa_key();
  }
  unsigned units = std::min<unsigned>(net.prefix_len, 128) / 4;
  for (unsigned i = units; i > 0; --i) {
    uint8_t b = net.net.bytes[(i - 1) / 2];
    unsigned nibble = (i - 1) % 2 == 0 ? b >> 4 : b & 0x0f;
    key += label_key(std::string_view(&kHex[nibble], 1));
  }
  return key + ip6_arpa_key();
}

RdfPtr dname_rdf(std::string_view key) {
  std::string wire(key);
  wire.push_back('\0');
  return RdfPtr(ldns_dname_new_frm_data(static_cast<uint16_t>(wire.size()), wire.data()));
}

// What the lookup decided for one question.
struct Lookup {
  bool nxdomain = false;
  bool apex = false;               // SOA and NS are answered
  std::string zone;                // the SOA owner's key, for negative answers
  std::vector<size_t> names;       // table indices whose addresses answer A/AAAA/ANY
  std::optional<size_t> ptr_name;  // the table index whose name answers PTR
};

}  // namespace

struct DnsResponder::Index {
  std::string domain;  // key
  uint32_t serial = 1;
  std::unordered_map<std::string, std::vector<size_t>> by_name;  // key -> table_.names indices
  std::unordered_set<std::string> nodes;  // keys of existing names in the domain, apex included
  std::unordered_map<std::string, std::string> first_label;  // label key -> the name's key
  std::map<AddressKey, size_t> by_address;  // -> the first table_.names index holding it
  std::vector<std::string> name_keys;       // per table_.names index ("" if unusable)
  struct Zone {
    DnsNet net;
    std::string key;
  };
  std::vector<Zone> reverse;

  std::optional<Lookup> find(const std::string& key) const;
  RrPtr soa_rr(const ldns_rdf* owner, uint32_t ttl) const;
  RrPtr ns_rr(const ldns_rdf* owner, uint32_t ttl) const;
};

void DnsResponder::set_table(DnsTable table) {
  table_ = std::move(table);
  auto index = std::make_shared<Index>();
  index->serial = index_ ? index_->serial + 1 : 1;  // the table's generation
  index->domain = key_of_text(table_.domain).value_or(std::string());
  index->nodes.insert(index->domain);
  index->name_keys.resize(table_.names.size());
  std::unordered_map<std::string, size_t> first_label_depth;
  for (size_t i = 0; i < table_.names.size(); ++i) {
    const DnsName& n = table_.names[i];
    std::optional<std::string> key = key_of_text(n.name);
    if (!key || key->empty()) continue;
    index->name_keys[i] = *key;
    index->by_name[*key].push_back(i);
    for (const sw::IpAddress& a : n.addresses) {
      if (a.is_v4() || a.is_v6()) index->by_address.emplace(address_key(a), i);
    }
    if (index->domain.empty() || !at_or_below(*key, index->domain)) continue;
    std::vector<size_t> starts = label_starts(*key);
    for (size_t s : starts) {
      std::string_view node = std::string_view(*key).substr(s);
      if (node.size() <= index->domain.size()) break;
      index->nodes.emplace(node);
    }
    if (*key == index->domain) continue;  // the apex is no short name
    std::string first = key->substr(0, 1 + static_cast<uint8_t>((*key)[0]));
    size_t depth = starts.size();
    auto [it, inserted] = first_label_depth.emplace(first, depth);
    if (inserted || depth < it->second) {
      it->second = depth;
      index->first_label[first] = *key;
    }
  }
  for (const DnsNet& net : table_.reverse) {
    if (!net.net.is_v4() && !net.net.is_v6()) continue;
    index->reverse.push_back({net, reverse_zone_key(net)});
  }
  index_ = std::move(index);
}

// Building the reply; the lookup rules are in Index::find() below.
namespace {

class ReplyBuilder {
 public:
  ReplyBuilder(const ldns_pkt* query, const ldns_rr* question) : query_(query), q_(question) {}

  // Makes the reply packet with the question and the header; nullptr if ldns fails.
  PktPtr start(ldns_pkt_rcode rcode) const {
    PktPtr p(ldns_pkt_new());
    if (!p) return nullptr;
    ldns_pkt_set_id(p.get(), ldns_pkt_id(query_));
    ldns_pkt_set_qr(p.get(), true);
    ldns_pkt_set_opcode(p.get(), LDNS_PACKET_QUERY);
    ldns_pkt_set_aa(p.get(), true);
    ldns_pkt_set_rd(p.get(), ldns_pkt_rd(query_));
    ldns_pkt_set_ra(p.get(), true);
    ldns_pkt_set_rcode(p.get(), static_cast<uint8_t>(rcode));
    RrPtr q(ldns_rr_clone(q_));
    if (!q || !ldns_pkt_push_rr(p.get(), LDNS_SECTION_QUESTION, q.get())) return nullptr;
    static_cast<void>(q.release());
    if (ldns_pkt_edns(query_)) {
      ldns_pkt_set_edns_udp_size(p.get(), static_cast<uint16_t>(DnsResponder::kMaxUdpSize));
      ldns_pkt_set_edns_version(p.get(), 0);
      ldns_pkt_set_edns_do(p.get(), ldns_pkt_edns_do(query_));  // RFC 3225 section 3
      // ldns writes an OPT when any EDNS field is set; the size is never 0.
    }
    return p;
  }

 private:
  const ldns_pkt* query_;
  const ldns_rr* q_;
};

RrPtr new_rr(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl) {
  RrPtr rr(ldns_rr_new());
  if (!rr) return nullptr;
  ldns_rdf* o = ldns_rdf_clone(owner);
  if (o == nullptr) return nullptr;
  ldns_rr_set_owner(rr.get(), o);
  ldns_rr_set_type(rr.get(), type);
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr.get(), ttl);
  return rr;
}

bool push_rdf(ldns_rr* rr, RdfPtr rdf) {
  if (!rdf || !ldns_rr_push_rdf(rr, rdf.get())) return false;
  static_cast<void>(rdf.release());
  return true;
}

bool push_rr(ldns_pkt* p, ldns_pkt_section section, RrPtr rr) {
  if (!rr || !ldns_pkt_push_rr(p, section, rr.get())) return false;
  static_cast<void>(rr.release());
  return true;
}

RrPtr address_rr(const ldns_rdf* owner, const sw::IpAddress& a, uint32_t ttl) {
  RrPtr rr = new_rr(owner, a.is_v4() ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, ttl);
  if (!rr) return nullptr;
  RdfPtr data(a.is_v4() ? ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, a.bytes.data())
                        : ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, a.bytes.data()));
  if (!push_rdf(rr.get(), std::move(data))) return nullptr;
  return rr;
}

// The packet's wire form, in `out`; false (`out` empty) if ldns fails.
bool to_wire(const ldns_pkt* p, std::vector<uint8_t>& out) {
  uint8_t* wire = nullptr;
  size_t size = 0;
  const ldns_status status = ldns_pkt2wire(&wire, p, &size);
  const std::unique_ptr<uint8_t, void (*)(void*)> owned(wire, &free);  // ldns uses malloc
  out.clear();
  if (status != LDNS_STATUS_OK || wire == nullptr) return false;
  out.assign(wire, wire + size);
  return true;
}

}  // namespace

DnsResponder::Verdict DnsResponder::answer(const uint8_t* query, size_t size, Transport transport,
                                           std::vector<uint8_t>& reply) {
  reply.clear();
  auto malformed = [&] {
    ++counters_.malformed;
    return Verdict::kMalformed;
  };
  auto not_ours = [&] {
    ++counters_.not_ours;
    return Verdict::kNotOurs;
  };
  if (query == nullptr || size < LDNS_HEADER_SIZE) return malformed();
  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, query, size) != LDNS_STATUS_OK || parsed == nullptr) {
    ldns_pkt_free(parsed);
    return malformed();
  }
  PktPtr q(parsed);
  if (ldns_pkt_qr(q.get())) return malformed();
  if (ldns_pkt_get_opcode(q.get()) != LDNS_PACKET_QUERY) return not_ours();
  if (ldns_pkt_qdcount(q.get()) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(q.get())) != 1) {
    return not_ours();
  }
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(q.get()), 0);
  if (ldns_rr_get_class(question) != LDNS_RR_CLASS_IN) return not_ours();
  const ldns_rdf* qname = ldns_rr_owner(question);
  std::optional<std::string> key = key_of_dname(qname);
  if (!key || !index_) return not_ours();
  std::optional<Lookup> found = index_->find(*key);
  if (!found) return not_ours();

  size_t limit = kMaxTcpSize;
  if (transport == Transport::kUdp) {
    limit = kPlainUdpSize;
    if (ldns_pkt_edns(q.get())) {
      limit = std::clamp<size_t>(ldns_pkt_edns_udp_size(q.get()), kPlainUdpSize, kMaxUdpSize);
    }
  }
  ldns_rr_type qtype = ldns_rr_get_type(question);
  ReplyBuilder builder(q.get(), question);
  bool badvers = ldns_pkt_edns(q.get()) && ldns_pkt_edns_version(q.get()) != 0;
  // Zone transfers are not offered (RFC 5936 section 2.2.1: REFUSED).
  bool transfer = qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR;
  ldns_pkt_rcode rcode = transfer          ? LDNS_RCODE_REFUSED
                         : found->nxdomain ? LDNS_RCODE_NXDOMAIN
                                           : LDNS_RCODE_NOERROR;
  PktPtr p = builder.start(badvers ? LDNS_RCODE_NOERROR : rcode);
  if (!p) return not_ours();
  uint32_t ttl = table_.ttl_s;
  bool ok = true;
  size_t answers = 0;
  if (badvers) {
    ldns_pkt_set_edns_extended_rcode(p.get(), kRcodeBadVers >> 4);
  } else if (rcode == LDNS_RCODE_NOERROR) {
    bool want_a = qtype == LDNS_RR_TYPE_A || qtype == LDNS_RR_TYPE_ANY;
    bool want_aaaa = qtype == LDNS_RR_TYPE_AAAA || qtype == LDNS_RR_TYPE_ANY;
    std::vector<sw::IpAddress> sent;  // RFC 2181 section 5: no record twice in an RRset
    for (size_t i : found->names) {
      for (const sw::IpAddress& a : table_.names[i].addresses) {
        if (!((a.is_v4() && want_a) || (a.is_v6() && want_aaaa))) continue;
        if (std::find(sent.begin(), sent.end(), a) != sent.end()) continue;
        sent.push_back(a);
        ok = ok && push_rr(p.get(), LDNS_SECTION_ANSWER, address_rr(qname, a, ttl));
        ++answers;
      }
    }
    if (found->ptr_name && (qtype == LDNS_RR_TYPE_PTR || qtype == LDNS_RR_TYPE_ANY)) {
      RrPtr rr = new_rr(qname, LDNS_RR_TYPE_PTR, ttl);
      ok = ok && rr && push_rdf(rr.get(), dname_rdf(index_->name_keys[*found->ptr_name])) &&
           push_rr(p.get(), LDNS_SECTION_ANSWER, std::move(rr));
      ++answers;
    }
    if (found->apex && (qtype == LDNS_RR_TYPE_SOA || qtype == LDNS_RR_TYPE_ANY)) {
      ok = ok && push_rr(p.get(), LDNS_SECTION_ANSWER, index_->soa_rr(qname, ttl));
      ++answers;
    }
    if (found->apex && (qtype == LDNS_RR_TYPE_NS || qtype == LDNS_RR_TYPE_ANY)) {
      ok = ok && push_rr(p.get(), LDNS_SECTION_ANSWER, index_->ns_rr(qname, ttl));
      ++answers;
    }
  }
  if (!badvers && !transfer && answers == 0) {
    // RFC 2308 sections 2.1 and 2.2: NXDOMAIN and NODATA carry the zone's SOA.
    RdfPtr zone = dname_rdf(found->zone);
    ok = ok && push_rr(p.get(), LDNS_SECTION_AUTHORITY, index_->soa_rr(zone.get(), ttl));
  }
  if (!ok) return not_ours();

  if (!to_wire(p.get(), reply)) return not_ours();
  const bool truncated = reply.size() > limit;
  if (truncated) {
    // RFC 2181 section 9 / RFC 1035 section 4.1.1: the question only, TC set; the client asks
    // again over TCP.
    reply.clear();
    PktPtr t = builder.start(rcode);
    if (!t) return not_ours();
    ldns_pkt_set_tc(t.get(), true);
    if (!to_wire(t.get(), reply) || reply.size() > limit) {
      reply.clear();
      return not_ours();
    }
    ++counters_.truncated;
  }
  ++counters_.answered;
  if (!badvers && rcode == LDNS_RCODE_NXDOMAIN) {
    ++counters_.nxdomain;
  } else if (!badvers && !transfer && !truncated && answers == 0) {
    ++counters_.nodata;
  }
  return Verdict::kAnswered;
}

std::optional<Lookup> DnsResponder::Index::find(const std::string& key) const {
  const Index& ix = *this;
  Lookup f;
  // 1. The domain and below.
  if (!ix.domain.empty() && at_or_below(key, ix.domain)) {
    f.zone = ix.domain;
    f.apex = key == ix.domain;
    auto it = ix.by_name.find(key);
    if (it != ix.by_name.end()) f.names = it->second;
    f.nxdomain = !f.apex && it == ix.by_name.end() && ix.nodes.count(key) == 0;
    return f;
  }
  // 2. A table name outside the domain, exactly.
  if (auto it = ix.by_name.find(key); it != ix.by_name.end()) {
    f.zone = key;
    f.names = it->second;
    return f;
  }
  // 3. A single label standing for a name in the domain.
  if (label_count(key) == 1) {
    if (auto it = ix.first_label.find(key); it != ix.first_label.end()) {
      f.zone = key;
      f.names = ix.by_name.at(it->second);
      return f;
    }
  }
  // 4. Reverse names.
  std::optional<ReverseName> r = parse_reverse(key);
  if (!r) return std::nullopt;
  std::optional<size_t> named;
  if (r->full()) {
    sw::IpAddress a;
    a.family = r->family;
    a.bytes = r->bytes;
    if (auto it = ix.by_address.find(address_key(a)); it != ix.by_address.end()) {
      named = it->second;
    }
  }
  const Index::Zone* zone = nullptr;
  for (const Index::Zone& z : ix.reverse) {
    if (z.net.net.family == r->family && at_or_below(key, z.key)) {
      zone = &z;
      break;
    }
  }
  if (zone == nullptr && !named) return std::nullopt;
  f.zone = zone != nullptr ? zone->key : key;
  f.apex = zone != nullptr && key == zone->key;
  if (named) {
    f.ptr_name = named;
  } else if (r->extra > 0 || r->full()) {
    f.nxdomain = true;
  } else if (!f.apex) {
    // A partial name: it exists when a table address lies under it.
    unsigned bits = r->units * r->unit_bits;
    bool below = std::any_of(ix.by_address.begin(), ix.by_address.end(), [&](const auto& e) {
      return e.first.first == r->family && prefix_match(e.first.second, r->bytes, bits);
    });
    f.nxdomain = !below;
  }
  return f;
}

RrPtr DnsResponder::Index::soa_rr(const ldns_rdf* owner, uint32_t ttl) const {
  if (owner == nullptr) return nullptr;
  RrPtr rr = new_rr(owner, LDNS_RR_TYPE_SOA, ttl);
  if (!rr) return nullptr;
  // RFC 1035 section 3.3.13; the minimum is the negative-caching TTL (RFC 2308 section 4).
  bool ok = push_rdf(rr.get(), dname_rdf(label_key("dns") + domain)) &&
            push_rdf(rr.get(), dname_rdf(label_key("hostmaster") + domain));
  for (uint32_t v : {serial, kSoaRefreshS, kSoaRetryS, kSoaExpireS, ttl}) {
    ok = ok && push_rdf(rr.get(), RdfPtr(ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, v)));
  }
  return ok ? std::move(rr) : nullptr;
}

RrPtr DnsResponder::Index::ns_rr(const ldns_rdf* owner, uint32_t ttl) const {
  if (owner == nullptr) return nullptr;
  RrPtr rr = new_rr(owner, LDNS_RR_TYPE_NS, ttl);
  if (!rr || !push_rdf(rr.get(), dname_rdf(label_key("dns") + domain))) return nullptr;
  return rr;
}

}  // namespace qswitch::slirp
