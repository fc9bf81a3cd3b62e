// slirp/dns_names.cc: see dns_names.h for the theory of operation.
#include "slirp/dns_names.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace qswitch::slirp {
namespace {

constexpr size_t kMaxLabelSize = 63;  // RFC 1035 section 2.3.4
constexpr size_t kMaxNameSize = 253;  // 255 on the wire, less the first length and the root

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

sw::IpAddress ipv4(in_addr a) {
  return sw::IpAddress::v4(reinterpret_cast<const uint8_t*>(&a.s_addr));
}

void add_unique(std::vector<sw::IpAddress>& list, const sw::IpAddress& a) {
  if (std::find(list.begin(), list.end(), a) == list.end()) list.push_back(a);
}

// Built-in names, in table order.
constexpr const char* kHostNames[] = {"host", "gateway", "dns"};

// A claim on a name, for the conflict rules: lower rank wins, then lower order.
struct Claim {
  NameSource source;
  uint64_t order;
  std::optional<sw::MacAddress> mac;
  size_t index;  // into the listing
};

}  // namespace

bool dns_label_ok(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelSize) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool dns_name_ok(std::string_view name, std::string& why) {
  const std::string accepted =
      "expected a host name: labels of letters, digits and '-' (1..63 each, not starting or "
      "ending with '-') joined by '.', at most 253 in all, e.g. web1 or web1.lab.example";
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) {
    why = "empty; " + accepted;
    return false;
  }
  if (name.size() > kMaxNameSize) {
    why = std::to_string(name.size()) + " bytes long; " + accepted;
    return false;
  }
  for (size_t start = 0;;) {
    const size_t dot = name.find('.', start);
    const std::string_view label =
        name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!dns_label_ok(label)) {
      if (label.empty()) {
        why = "has an empty label; " + accepted;
      } else if (label.size() == name.size()) {
        why = "is not valid; " + accepted;
      } else {
        why = "has a label that is not valid ('" + std::string(label) + "'); " + accepted;
      }
      return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

const char* name_source_text(NameSource source) {
  switch (source) {
    case NameSource::kHost:
      return "host";
    case NameSource::kStatic:
      return "static";
    case NameSource::kLease:
      return "lease";
    case NameSource::kLab:
      return "lab";
    case NameSource::kExec:
      return "exec";
    case NameSource::kDhcpHostname:
      return "dhcp-hostname";
  }
  return "unknown";
}

DnsNames::DnsNames(const SlirpOptions& options) {
  std::string_view domain = options.domainname;
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  domain_ = domain.empty() ? std::string(kDefaultDnsDomain) : lower(domain);
  host_addrs_.push_back(ipv4(options.host));
  dns_addrs_.push_back(ipv4(options.dns));
  const uint32_t mask = ntohl(options.netmask.s_addr);
  in_addr net{};
  net.s_addr = htonl(ntohl(options.net.s_addr) & mask);
  reverse_.push_back(DnsNet{ipv4(net), static_cast<uint8_t>(__builtin_popcount(mask))});
  if (options.ipv6) {
    host_addrs_.push_back(sw::IpAddress::v6(options.ipv6_host.s6_addr));
    dns_addrs_.push_back(sw::IpAddress::v6(options.ipv6_dns.s6_addr));
    prefix6_.assign(options.ipv6_prefix.s6_addr, options.ipv6_prefix.s6_addr + 16);
    prefix6_len_ = options.ipv6_prefix_len;
    reverse_.push_back(DnsNet{sw::IpAddress::v6(options.ipv6_prefix.s6_addr), prefix6_len_});
  }
  for (const Lease& l : options.leases) {
    if (l.name.empty() || !dns_label_ok(l.name)) continue;
    Entry& e = entry(l.mac);
    e.lease_name = lower(l.name);
    e.lease_ip = ipv4(l.addr);
  }
  for (const DnsRecord& r : options.dns_records) {
    std::string ignored;
    add_static(r.name, r.addr, ignored);  // checked by the options parser already
  }
  rebuild();
}

std::string DnsNames::qualify(std::string_view name) const {
  if (!name.empty() && name.back() == '.') return lower(name.substr(0, name.size() - 1));
  if (name.find('.') != std::string_view::npos) return lower(name);
  return lower(name) + "." + domain_;
}

bool DnsNames::add_static(std::string_view name, const sw::IpAddress& addr, std::string& error) {
  std::string why;
  if (!dns_name_ok(name, why)) {
    error = "name '" + std::string(name) + "' " + why;
    return false;
  }
  if (addr.family == sw::IpAddress::Family::kNone || addr.is_unspecified() || addr.is_multicast()) {
    error = "address for '" + std::string(name) +
            "' is not a unicast IPv4 or IPv6 address (e.g. 10.0.2.100 or fec0::100)";
    return false;
  }
  const std::string full = qualify(name);
  for (const char* h : kHostNames) {
    if (full == std::string(h) + "." + domain_) {
      error = "name '" + std::string(name) + "' is built in (" + full +
              ": host, gateway and dns are the slirp port's own); give another name";
      return false;
    }
  }
  auto it = std::find_if(statics_.begin(), statics_.end(),
                         [&](const Static& s) { return s.name == full; });
  if (it == statics_.end()) {
    statics_.push_back(Static{full, {addr}});
  } else if (std::find(it->addresses.begin(), it->addresses.end(), addr) != it->addresses.end()) {
    error = "'" + full + "' has the record " + addr.to_string() + " already";
    return false;
  } else {
    it->addresses.push_back(addr);
  }
  rebuild();
  return true;
}

bool DnsNames::remove_static(std::string_view name, const std::optional<sw::IpAddress>& addr,
                             std::string& error) {
  const std::string full = qualify(name);
  auto it = std::find_if(statics_.begin(), statics_.end(),
                         [&](const Static& s) { return s.name == full; });
  if (it == statics_.end()) {
    std::string now;
    for (const Static& s : statics_) now += (now.empty() ? "" : ", ") + s.name;
    error = "no static record named '" + full +
            "' (static names now: " + (now.empty() ? "none" : now) + ")";
    return false;
  }
  if (addr) {
    auto a = std::find(it->addresses.begin(), it->addresses.end(), *addr);
    if (a == it->addresses.end()) {
      std::string now;
      for (const sw::IpAddress& x : it->addresses) now += (now.empty() ? "" : ", ") + x.to_string();
      error = "'" + full + "' has no record " + addr->to_string() + " (its addresses: " + now + ")";
      return false;
    }
    it->addresses.erase(a);
    if (it->addresses.empty()) statics_.erase(it);
  } else {
    statics_.erase(it);
  }
  rebuild();
  return true;
}

bool DnsNames::has_static(std::string_view name, const sw::IpAddress& addr) const {
  const std::string full = qualify(name);
  return std::any_of(statics_.begin(), statics_.end(), [&](const Static& s) {
    return s.name == full &&
           std::find(s.addresses.begin(), s.addresses.end(), addr) != s.addresses.end();
  });
}

void DnsNames::set_guests(NameSource source, const std::vector<Guest>& guests) {
  if (source != NameSource::kLab && source != NameSource::kExec) return;
  for (auto& [key, e] : entries_) {
    if (source == NameSource::kLab) {
      e.lab_name.clear();
      e.lab_ip.reset();
    } else {
      e.exec_name.clear();
    }
  }
  for (const Guest& g : guests) {
    if (!dns_label_ok(g.name)) {
      ++counters_.invalid_names;
      continue;
    }
    Entry& e = entry(g.mac);
    if (source == NameSource::kLab) {
      if (!e.lab_name.empty()) continue;  // the first guest of a MAC
      e.lab_name = lower(g.name);
      // A static address answers only when it is on this segment (the guest may be on another
      // VLAN, which has its own slirp port or none).
      if (g.ip && g.ip->is_v4() && ipv4_ours(*g.ip)) e.lab_ip = g.ip;
    } else {
      e.exec_name = lower(g.name);
    }
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    const uint64_t key = it->first;
    ++it;
    drop_if_empty(key);
  }
  rebuild();
}

void DnsNames::set_exec_name(const sw::MacAddress& mac, std::string_view name) {
  if (!name.empty() && !dns_label_ok(name)) {
    ++counters_.invalid_names;
    return;
  }
  const std::string wanted = lower(name);
  const auto it = entries_.find(mac.key());
  if (it == entries_.end() ? wanted.empty() : it->second.exec_name == wanted) return;
  entry(mac).exec_name = wanted;
  drop_if_empty(mac.key());
  rebuild();
}

void DnsNames::set_dhcp_hostname(const sw::MacAddress& mac, std::string_view hostname) {
  // Option 12 may be a full name: its first label is the host's (RFC 2132 section 3.14).
  const std::string_view label = hostname.substr(0, hostname.find('.'));
  std::string wanted;
  if (!hostname.empty()) {
    if (dns_label_ok(label)) {
      wanted = lower(label);
    } else {
      ++counters_.invalid_hostnames;  // ignored: the guest keeps the name it had
      return;
    }
  }
  const auto it = entries_.find(mac.key());
  if (it == entries_.end() ? wanted.empty() : it->second.dhcp_name == wanted) return;
  Entry& e = entry(mac);
  e.dhcp_name = wanted;
  e.dhcp_claim = 0;  // a new name: a new claim
  refresh_claim(e);
  drop_if_empty(mac.key());
  rebuild();
}

void DnsNames::lease_bound(const sw::MacAddress& mac, const sw::IpAddress& addr) {
  Entry& e = entry(mac);
  if (e.bound_ip == addr) return;
  e.bound_ip = addr;
  refresh_claim(e);
  rebuild();
}

void DnsNames::lease_ended(const sw::MacAddress& mac, const sw::IpAddress& addr) {
  const auto it = entries_.find(mac.key());
  if (it == entries_.end() || it->second.bound_ip != addr) return;
  it->second.bound_ip.reset();
  refresh_claim(it->second);
  drop_if_empty(mac.key());
  rebuild();
}

bool DnsNames::ipv4_ours(const sw::IpAddress& a) const {
  const DnsNet& net = reverse_.front();
  const uint32_t mask = net.prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - net.prefix_len);
  uint32_t x = 0, n = 0;
  std::memcpy(&x, a.bytes.data(), 4);
  std::memcpy(&n, net.net.bytes.data(), 4);
  return (ntohl(x) & mask) == (ntohl(n) & mask);
}

bool DnsNames::ipv6_ours(const sw::IpAddress& a) const {
  if (!a.is_v6() || prefix6_.empty() || a.is_v6_link_local() || a.is_multicast() ||
      a.is_unspecified()) {
    return false;
  }
  const size_t full = prefix6_len_ / 8;
  if (std::memcmp(a.bytes.data(), prefix6_.data(), full) != 0) return false;
  const unsigned rest = prefix6_len_ % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (prefix6_[full] & mask);
}

void DnsNames::set_ipv6(const sw::MacAddress& mac, const std::vector<sw::IpAddress>& addresses) {
  std::vector<sw::IpAddress> kept;
  for (const sw::IpAddress& a : addresses) {
    if (ipv6_ours(a)) add_unique(kept, a);
  }
  const auto it = entries_.find(mac.key());
  if (it == entries_.end() ? kept.empty() : it->second.ipv6 == kept) return;
  Entry& e = entry(mac);
  e.ipv6 = std::move(kept);
  refresh_claim(e);
  drop_if_empty(mac.key());
  rebuild();
}

void DnsNames::refresh_claim(Entry& e) {
  const bool active = !e.dhcp_name.empty() && (e.bound_ip.has_value() || !e.ipv6.empty());
  if (!active) {
    e.dhcp_claim = 0;
  } else if (e.dhcp_claim == 0) {
    e.dhcp_claim = next_claim_++;
  }
}

void DnsNames::drop_if_empty(uint64_t key) {
  const auto it = entries_.find(key);
  if (it == entries_.end()) return;
  const Entry& e = it->second;
  if (e.lease_name.empty() && e.lab_name.empty() && e.exec_name.empty() && e.dhcp_name.empty() &&
      !e.bound_ip && !e.lease_ip && !e.lab_ip && e.ipv6.empty()) {
    entries_.erase(it);
  }
}

void DnsNames::rebuild() {
  std::vector<Listed> listed;
  std::vector<Claim> claims;
  const auto push = [&](std::string name, std::vector<sw::IpAddress> addrs, NameSource source,
                        uint64_t order, std::optional<sw::MacAddress> mac) {
    claims.push_back(Claim{source, order, mac, listed.size()});
    listed.push_back(Listed{std::move(name), std::move(addrs), source, mac});
  };
  uint64_t order = 0;
  push("host." + domain_, host_addrs_, NameSource::kHost, order++, std::nullopt);
  push("gateway." + domain_, host_addrs_, NameSource::kHost, order++, std::nullopt);
  push("dns." + domain_, dns_addrs_, NameSource::kHost, order++, std::nullopt);
  for (const Static& s : statics_) push(s.name, s.addresses, NameSource::kStatic, order++, {});
  for (const auto& [key, e] : entries_) {
    NameSource source = NameSource::kDhcpHostname;
    const std::string* label = nullptr;
    uint64_t claim_order = 0;
    if (!e.lease_name.empty()) {
      source = NameSource::kLease;
      label = &e.lease_name;
    } else if (!e.lab_name.empty()) {
      source = NameSource::kLab;
      label = &e.lab_name;
    } else if (!e.exec_name.empty()) {
      source = NameSource::kExec;
      label = &e.exec_name;
    } else if (e.dhcp_claim != 0) {
      label = &e.dhcp_name;
      claim_order = e.dhcp_claim;
    }
    if (label == nullptr) continue;
    std::vector<sw::IpAddress> addrs;
    for (const auto& a : {e.lease_ip, e.lab_ip, e.bound_ip}) {
      if (a) add_unique(addrs, *a);
    }
    for (const sw::IpAddress& a : e.ipv6) add_unique(addrs, a);
    sw::MacAddress mac;
    for (int i = 0; i < 6; ++i) {
      mac.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(key >> (8 * (5 - i)));
    }
    // Configured claims: by MAC order (the lab file's guests have one name per MAC and unique
    // names; lease= names are unique per option text); DHCP ones: by when they claimed.
    push(*label + "." + domain_, std::move(addrs), source,
         source == NameSource::kDhcpHostname ? claim_order : order++, mac);
  }
  // The winner of each name: the best source, then the first claim.
  std::stable_sort(claims.begin(), claims.end(), [&](const Claim& a, const Claim& b) {
    const std::string& na = listed[a.index].name;
    const std::string& nb = listed[b.index].name;
    if (na != nb) return na < nb;
    if (a.source != b.source) return a.source < b.source;
    return a.order < b.order;
  });
  std::vector<bool> wins(listed.size(), false);
  std::vector<Conflict> conflicts;
  for (size_t i = 0; i < claims.size(); ++i) {
    if (i == 0 || listed[claims[i].index].name != listed[claims[i - 1].index].name) {
      wins[claims[i].index] = true;
      continue;
    }
    size_t w = i;
    while (w > 0 && listed[claims[w - 1].index].name == listed[claims[i].index].name) --w;
    const Claim& holder = claims[w];
    conflicts.push_back(Conflict{listed[claims[i].index].name,
                                 claims[i].mac.value_or(sw::MacAddress{}), claims[i].source,
                                 holder.source, holder.mac});
  }
  for (const Conflict& c : conflicts) {
    const bool known = std::any_of(conflicts_.begin(), conflicts_.end(), [&](const Conflict& o) {
      return o.name == c.name && o.mac == c.mac && o.source == c.source;
    });
    if (!known) ++counters_.conflicts;
  }
  DnsTable table;
  table.domain = domain_;
  table.reverse = reverse_;
  std::vector<Listed> kept;
  for (size_t i = 0; i < listed.size(); ++i) {
    if (!wins[i]) continue;
    if (!listed[i].addresses.empty()) {
      table.names.push_back(DnsName{listed[i].name, listed[i].addresses});
    }
    kept.push_back(std::move(listed[i]));
  }
  const bool changed = table.names.size() != table_.names.size() ||
                       !std::equal(table.names.begin(), table.names.end(), table_.names.begin(),
                                   [](const DnsName& a, const DnsName& b) {
                                     return a.name == b.name && a.addresses == b.addresses;
                                   }) ||
                       table.domain != table_.domain || generation_ == 0;
  table_ = std::move(table);
  listed_ = std::move(kept);
  conflicts_ = std::move(conflicts);
  if (changed) ++generation_;
}

}  // namespace qswitch::slirp
