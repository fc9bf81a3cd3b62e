// slirp/dns_names.h: where the slirp port's DNS names come from, and the DnsTable
// (slirp/dns_responder.h) built from them. Pure bookkeeping: no sockets, no clock, no libuv.
//
// Theory of operation
// - One DnsNames per slirp port. Its domain is the port's domainname= (lower case, no trailing
//   dot), else kDefaultDnsDomain ("qswitch.internal"). Every name in the table is fully
//   qualified; a short name NAME given anywhere means NAME.<domain>.
// - Sources, each with what `ctl dns list` calls it ("source"):
//   host           built in: "host" and "gateway" are the host address (10.0.2.2) and, with IPv6
//                  on, ipv6-host (fec0::2); "dns" is the DNS addresses (10.0.2.3, fec0::3).
//   static         dns-record=NAME=ADDR (--slirp, the lab file) and `ctl dns add`; NAME short
//                  (no dot: NAME.<domain>) or full (with a dot: as given); one name may have
//                  several records, each adds an address.
//   lease          lease=MAC:IP:NAME: the name is the MAC's; IP answers from the start (the
//                  address is pinned to that MAC).
//   lab            the lab file's [[guest]] name for a MAC, with its static `ip` when it has one.
//   exec           the name of a port made with `qswitch exec --name N`, for the MACs that got a
//                  DHCP lease through that port (the slirp port asks the daemon's namer).
//   dhcp-hostname  the host name the guest sent in DHCP option 12, from the REQUEST that was
//                  last ACKed: a guest renamed at reboot gets its new name and loses the old one.
//                  Only a name's first label is used ("web1.example.com" is "web1"); a value
//                  that is not a valid label is ignored and counted (invalid_hostnames).
//   A guest's name (by MAC) is the first of lease, lab, exec, dhcp-hostname it has. Its
//   addresses: its bound DHCP lease (IPv4), its lease= or lab address, and the IPv6 addresses
//   the slirp port saw it use (set_ipv6) that are global and inside the port's ipv6-net.
// - Names are RFC 1123 host names: labels of letters, digits and '-', 1..63 bytes, not starting
//   or ending with '-', at most 253 bytes in all; compared and stored in lower case.
// - Conflicts (one name claimed twice): the claim of the higher source wins, in the order host,
//   static, lease, lab, exec, dhcp-hostname; between two claims of one source, the first holder
//   keeps it (configuration order; for DHCP, the MAC that claimed it first, while it still has
//   an address). A static record that names a built-in name is refused when added. Every losing
//   claim is listed (conflicts()) and each new one counted (Counters::conflicts); when the holder
//   lets the name go (renamed, lease ended), the next claim in that order gets it.
// - A DHCP host name claims its name only while its MAC has an address (a bound lease or an IPv6
//   address): a guest that has left does not keep the name from a new one. Configured names
//   (lease, lab, exec) always claim theirs. A name without addresses is not in the table.
// - Order of the table (PTR answers with the first name that holds an address): host, gateway,
//   dns, static records in the order added, then guests by MAC.
// - Memory: one entry per MAC with a name or an address; the DHCP server keeps at most
//   max_leases records and the neighbour table is bounded, so neither a guest's messages nor its
//   host names can grow it without bound. table() is rebuilt (O(names)) after each change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slirp/dns_responder.h"
#include "slirp/slirp_options.h"
#include "switch/ip_address.h"
#include "switch/mac_address.h"

namespace qswitch::slirp {

// Names a host name label may have: RFC 1123 section 2.1 (letters, digits, '-', 1..63 bytes,
// neither first nor last '-'). Case is not checked (both cases pass).
bool dns_label_ok(std::string_view label);

// A name as dns-record=, lease=..:NAME and `ctl dns add` take it: a label (a short name) or a
// dotted name of such labels (one trailing dot allowed), 1..253 bytes. False with `why` saying
// what is wrong and what would be accepted (the caller puts the value in front).
bool dns_name_ok(std::string_view name, std::string& why);

enum class NameSource : uint8_t { kHost, kStatic, kLease, kLab, kExec, kDhcpHostname };
const char* name_source_text(NameSource source);  // "host", "static", "lease", ...

class DnsNames {
 public:
  // A configured guest name: lease= (from the options), a lab [[guest]] or an exec port.
  struct Guest {
    sw::MacAddress mac;
    std::string name;  // a label; lower-cased when kept
    std::optional<sw::IpAddress> ip;
  };
  // One row of `ctl dns list`.
  struct Listed {
    std::string name;  // fully qualified
    std::vector<sw::IpAddress> addresses;
    NameSource source = NameSource::kStatic;
    std::optional<sw::MacAddress> mac;  // guests'
  };
  struct Conflict {
    std::string name;    // fully qualified
    sw::MacAddress mac;  // the losing claim's (zero for a static one)
    NameSource source = NameSource::kDhcpHostname;
    NameSource holder_source = NameSource::kStatic;
    std::optional<sw::MacAddress> holder_mac;
  };
  struct Counters {
    uint64_t invalid_hostnames = 0;  // DHCP host names that are not a valid label: ignored
    uint64_t invalid_names = 0;      // lab / exec names that are not a valid label: ignored
    uint64_t conflicts = 0;          // new losing claims (see the theory above)
  };

  // Domain, host names, reverse nets, lease= names and dns-record= records of `options` (which
  // the options parser has checked; a record it would refuse is skipped).
  explicit DnsNames(const SlirpOptions& options);

  const std::string& domain() const { return domain_; }
  // "web1" -> "web1.<domain>"; "a.example." -> "a.example"; lower case.
  std::string qualify(std::string_view name) const;

  // Static records. add: false with `error` (naming the value) for a bad name, an address of
  // no family, a built-in name, or a record that exists already. remove: every address of the
  // name, or just `addr`; false with `error` when there is no such record.
  bool add_static(std::string_view name, const sw::IpAddress& addr, std::string& error);
  bool remove_static(std::string_view name, const std::optional<sw::IpAddress>& addr,
                     std::string& error);
  bool has_static(std::string_view name, const sw::IpAddress& addr) const;

  // Configured names from the daemon, replacing the previous list of that source (kLab,
  // kExec). Invalid names are skipped and counted.
  void set_guests(NameSource source, const std::vector<Guest>& guests);
  // An exec port's name for `mac` ("" to forget it).
  void set_exec_name(const sw::MacAddress& mac, std::string_view name);

  // From the DHCP server (DhcpServer::LeaseEvents) and the neighbour table.
  void set_dhcp_hostname(const sw::MacAddress& mac, std::string_view hostname);
  void lease_bound(const sw::MacAddress& mac, const sw::IpAddress& addr);
  void lease_ended(const sw::MacAddress& mac, const sw::IpAddress& addr);
  void set_ipv6(const sw::MacAddress& mac, const std::vector<sw::IpAddress>& addresses);

  // The table for DnsResponder::set_table; rebuilt by every change above.
  const DnsTable& table() const { return table_; }
  // Bumped by every change that changed the table.
  uint64_t generation() const { return generation_; }
  std::vector<Listed> list() const { return listed_; }
  const std::vector<Conflict>& conflicts() const { return conflicts_; }
  const Counters& counters() const { return counters_; }

 private:
  struct Entry {                                             // one MAC
    std::string lease_name, lab_name, exec_name, dhcp_name;  // labels, lower case
    std::optional<sw::IpAddress> lease_ip, lab_ip, bound_ip;
    std::vector<sw::IpAddress> ipv6;
    uint64_t dhcp_claim = 0;  // when its DHCP name claimed (0: not claiming)
  };
  struct Static {
    std::string name;  // fully qualified
    std::vector<sw::IpAddress> addresses;
  };
  Entry& entry(const sw::MacAddress& mac) { return entries_[mac.key()]; }
  void refresh_claim(Entry& e);
  void drop_if_empty(uint64_t key);
  bool ipv4_ours(const sw::IpAddress& a) const;  // inside net=
  bool ipv6_ours(const sw::IpAddress& a) const;  // global, inside ipv6-net=
  void rebuild();

  std::string domain_;
  std::vector<sw::IpAddress> host_addrs_, dns_addrs_;
  std::vector<DnsNet> reverse_;
  std::vector<uint8_t> prefix6_;  // ipv6-net, 16 bytes; empty: IPv6 off
  uint8_t prefix6_len_ = 0;
  std::vector<Static> statics_;
  std::map<uint64_t, Entry> entries_;  // by MacAddress::key()
  uint64_t next_claim_ = 1;
  DnsTable table_;
  std::vector<Listed> listed_;
  std::vector<Conflict> conflicts_;
  Counters counters_;
  uint64_t generation_ = 0;
};

}  // namespace qswitch::slirp
