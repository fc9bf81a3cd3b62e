// slirp/dns_responder.h: the slirp port's own DNS answers: the lab's names (guests, host,
// gateway, static records) in the lab's domain, A, AAAA and PTR, parsed and built with ldns.
// Pure message logic: DNS message bytes in, DNS message bytes out; no sockets, no frames (the
// slirp port's DNS front end, slirp/dns_frontend.h, takes them out of UDP and TCP).
//
// Theory of operation
// - The table (DnsTable) is a value the slirp port builds from its name sources
//   (slirp/dns_names.h) whenever one changes; set_table() indexes it by name and by address.
// - Ours: a query whose name is the domain or under it, a single-label name that is a label of
//   a name in the domain ("web1" as "web1.<domain>": guests whose resolver sends the bare
//   name), a static name outside the domain given exactly, or a PTR name (in-addr.arpa,
//   ip6.arpa) for an address in the table or inside one of `reverse` (the segment's own nets).
//   For those: A, AAAA (ANY: both), PTR, SOA and NS at the apex; NXDOMAIN with the SOA in the
//   authority section for a name that does not exist, NOERROR with no answer and the SOA
//   (NODATA) for a name that exists without that type. AXFR/IXFR: REFUSED. Matching ignores
//   ASCII case (RFC 4343), byte by byte per label; records carry the question's name as sent.
// - The SOA is the zone's: the domain's for names in it (mname "dns.<domain>", rname
//   "hostmaster.<domain>", serial the table's generation: 1 for the first set_table(), +1 for
//   each after; minimum and TTL = ttl_s); for a reverse net's names, its reverse zone (whole
//   octets or nibbles of the net: 10.0.2.0/24 -> 2.0.10.in-addr.arpa); for a short name, a
//   static name outside the domain or a reverse name ours only by its address: the name itself.
// - Flags: QR and AA set, RD copied, RA set (the same address recurses for every other name,
//   through libslirp; stub resolvers warn when RA is clear).
// - Everything else is handed on: the caller gives the query unchanged to libslirp's forwarder,
//   so what guests saw before still works. kMalformed: under 12 bytes, anything ldns cannot
//   parse, QR set (a response). kNotOurs: other names, opcodes other than QUERY, a question
//   count other than 1, a class other than IN (and an ldns allocation failure).
// - Size: over UDP the answer fits 512 bytes, or the query's EDNS0 payload size (at most
//   kMaxUdpSize; the reply then carries an OPT record too, offering kMaxUdpSize; an EDNS
//   version other than 0 gets BADVERS); when it does not, the reply has the question, no
//   records, and TC set, and the client asks again over TCP (at most 65535; past that TCP gets
//   TC too).
// - Untrusted input: the query is a guest's. ldns parses it into heap objects (a DNS query is
//   not the switch's data path; at most one parse per query that reaches the slirp port's DNS
//   address); nothing is read past `size`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "switch/ip_address.h"

namespace qswitch::slirp {

// One name and its addresses (A for IPv4, AAAA for IPv6). The first name of a table that holds
// an address is the one PTR answers with.
struct DnsName {
  std::string name;  // fully qualified, lower case, no trailing dot: "web1.qswitch.internal"
  std::vector<sw::IpAddress> addresses;
};

struct DnsNet {
  sw::IpAddress net;
  uint8_t prefix_len = 0;
};

struct DnsTable {
  std::string domain;  // lower case, no trailing dot: "qswitch.internal"
  std::vector<DnsName> names;
  // The segment's own nets (10.0.2.0/24, fec0::/64): PTR queries for any address in them are
  // ours (NXDOMAIN when the address has no name), never sent to the host's resolver.
  std::vector<DnsNet> reverse;
  uint32_t ttl_s = 60;  // of every record; the SOA's minimum (negative caching) too
};

// The documented default domain when the slirp port has no domainname=.
inline constexpr const char* kDefaultDnsDomain = "qswitch.internal";

class DnsResponder {
 public:
  enum class Transport : uint8_t { kUdp, kTcp };
  enum class Verdict : uint8_t {
    kAnswered,   // `reply` holds the response
    kNotOurs,    // a well-formed query for a name we do not serve
    kMalformed,  // not a query ldns can parse (or not a query at all)
  };
  struct Counters {
    uint64_t answered = 0;   // every kAnswered, including the three below
    uint64_t nxdomain = 0;   // answered NXDOMAIN
    uint64_t nodata = 0;     // answered NOERROR without records
    uint64_t truncated = 0;  // answered with TC set (UDP; TCP only past 65535 bytes)
    uint64_t not_ours = 0;
    uint64_t malformed = 0;
  };
  static constexpr size_t kMaxUdpSize = 4096;

  void set_table(DnsTable table);
  const DnsTable& table() const { return table_; }

  // `query`: one DNS message (a UDP payload, or a TCP message without its two-byte length).
  // `reply` is cleared, then holds the response when kAnswered.
  Verdict answer(const uint8_t* query, size_t size, Transport transport,
                 std::vector<uint8_t>& reply);

  const Counters& counters() const { return counters_; }

 private:
  DnsTable table_;
  Counters counters_;
  // Indexes over table_ (name -> names index; address -> first names index; single labels),
  // rebuilt by set_table(): the implementation chooses their form.
  struct Index;
  std::shared_ptr<const Index> index_;
};

}  // namespace qswitch::slirp
