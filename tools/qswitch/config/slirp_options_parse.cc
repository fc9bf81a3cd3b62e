// tools/qswitch/config/slirp_options_parse.cc: see the header. Two passes: split the text into
// key=value items (rejecting unknown keys and repeated single-valued ones), then apply them in
// QEMU's order into a copy of the defaults and check the result as a whole.
#include "tools/qswitch/config/slirp_options_parse.h"

#include <arpa/inet.h>
#include <strings.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "slirp/dns_names.h"
#include "tools/qswitch/config/config_parse.h"

namespace qswitch::tools {

namespace {

// "net, host, ...": every key of kKeySpecs (below), for error messages.
std::string accepted_keys();

// The most DHCP records the server keeps (DhcpConfig::max_leases): a larger cap means nothing.
constexpr uint32_t kMaxLeasesPerPortLimit = 65536;
// Host sockets: more than a process can have open on Linux (fs.nr_open's ceiling) means nothing.
constexpr uint32_t kMaxHostSocketsLimit = 1u << 20;

constexpr const char* kHostfwdSyntax =
    "expected [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT with numeric addresses, IPv6 "
    "ones in brackets and both sides of one family, e.g. tcp::8080-:80 or "
    "tcp:[::1]:8080-[fec0::15]:80; a guest by MAC ([52:54:00:12:34:56]:80) or by DNS name "
    "(web1:80) takes the host side's family";
constexpr const char* kHostfwdKeySyntax =
    "expected [tcp|udp]:[HOSTADDR]:HOSTPORT with a numeric address, an IPv6 one in brackets, "
    "e.g. tcp::8080 or tcp:[::1]:8080";

// The C library reads text only up to a NUL byte (inet_pton, stat): a value with one inside
// would have its rest silently ignored. Only a JSON string on the control socket can carry one.
// Empty when `text` has none, else an error naming where.
std::string nul_problem(std::string_view text, std::string_view what) {
  const size_t nul = text.find('\0');
  if (nul == std::string_view::npos) return "";
  return std::string(what) + " '" + std::string(text.substr(0, nul)) + "' is followed by a NUL " +
         "byte (byte " + std::to_string(nul) + "): not accepted in any value";
}

std::optional<in_addr> parse_ipv4(std::string_view text) {
  if (text.empty() || text.size() >= INET_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  in_addr a{};
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return std::nullopt;
  return a;
}

std::optional<in6_addr> parse_ipv6(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  in6_addr a{};
  if (inet_pton(AF_INET6, s.c_str(), &a) != 1) return std::nullopt;
  return a;
}

// Decimal digits only, the whole text, no sign, at most UINT32_MAX (config_parse.h).
std::optional<uint32_t> parse_uint(std::string_view text) {
  const auto v = parse_decimal(text, 0, UINT32_MAX);
  if (!v) return std::nullopt;
  return static_cast<uint32_t>(*v);
}

std::optional<bool> parse_switch(std::string_view text) {
  if (text == "on" || text == "yes") return true;
  if (text == "off" || text == "no") return false;
  return std::nullopt;
}

uint32_t host_order(in_addr a) { return ntohl(a.s_addr); }

in_addr from_host_order(uint32_t v) {
  in_addr a{};
  a.s_addr = htonl(v);
  return a;
}

int mask_length(uint32_t mask) {
  int n = 0;
  while (n < 32 && (mask & (0x80000000u >> n)) != 0) ++n;
  return n;
}

bool mask_contiguous(uint32_t mask) {
  const int n = mask_length(mask);
  const uint32_t expected = n == 0 ? 0 : 0xffffffffu << (32 - n);
  return mask == expected;
}

std::string net_text(const slirp::SlirpOptions& o) {
  return format_ipv4(o.net) + "/" + std::to_string(mask_length(host_order(o.netmask)));
}

// Empty when `a` is a usable address of the segment, else why not.
std::string segment_problem(in_addr a, const slirp::SlirpOptions& o) {
  const uint32_t net = host_order(o.net);
  const uint32_t mask = host_order(o.netmask);
  const uint32_t v = host_order(a);
  if ((v & mask) != net) return "is outside net " + net_text(o);
  if (v == net) return "is the network address of net " + net_text(o);
  if (v == (net | ~mask)) return "is the broadcast address of net " + net_text(o);
  return "";
}

bool in6_same_net(const in6_addr& a, const in6_addr& b, int len) {
  for (int bit = 0; bit < len; ++bit) {
    const uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
    if ((a.s6_addr[bit / 8] & m) != (b.s6_addr[bit / 8] & m)) return false;
  }
  return true;
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

// A DNS search domain (RFC 1035 section 2.3.4: labels of 1..63 bytes, names up to 253).
bool valid_domain(std::string_view d) {
  if (d.empty() || d.size() > 253 || has_control_chars(d)) return false;
  if (d.back() == '.') d.remove_suffix(1);
  size_t start = 0;
  while (start <= d.size()) {
    size_t end = d.find('.', start);
    if (end == std::string_view::npos) end = d.size();
    const size_t len = end - start;
    if (len == 0 || len > 63) return false;
    start = end + 1;
  }
  return true;
}

struct Item {
  std::string key;
  std::string value;
};

// QemuOpts item splitting: ',' separates, ",," is a literal comma.
bool split_items(std::string_view text, std::vector<Item>& items, std::string& error) {
  std::string current;
  auto finish = [&]() -> bool {
    if (current.empty()) {
      error = "empty item in '" + std::string(text) +
              "' (two commas, or a comma at an end); "
              "expected key=value items separated by commas";
      return false;
    }
    const size_t eq = current.find('=');
    if (eq == std::string::npos || eq == 0) {
      error = "'" + current + "': expected key=value; accepted keys: " + accepted_keys();
      return false;
    }
    items.push_back(Item{current.substr(0, eq), current.substr(eq + 1)});
    current.clear();
    return true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',') {
      if (i + 1 < text.size() && text[i + 1] == ',') {
        current += ',';
        ++i;
        continue;
      }
      if (!finish()) return false;
      continue;
    }
    current += text[i];
  }
  return finish();
}

std::string item_text(std::string_view key, std::string_view value) {
  return std::string(key) + "=" + std::string(value);
}

bool parse_net(std::string_view value, slirp::SlirpOptions& o, std::string& error) {
  const std::string what = item_text("net", value);
  const std::string accepted =
      "expected net=A.B.C.D/LEN (LEN 4..30) or net=A.B.C.D/MASK, e.g. "
      "net=10.0.2.0/24";
  const size_t slash = value.find('/');
  const auto addr = parse_ipv4(value.substr(0, slash));
  if (!addr) {
    error = what + ": '" + std::string(value.substr(0, slash)) + "' is not an IPv4 address; " +
            accepted;
    return false;
  }
  uint32_t mask;
  if (slash == std::string_view::npos) {
    // QEMU's legacy classful default (net_slirp_init).
    const uint32_t a = host_order(*addr);
    if (!(a & 0x80000000u)) {
      mask = 0xff000000u;
    } else if ((a & 0xfff00000u) == 0xac100000u) {
      mask = 0xfff00000u;
    } else if ((a & 0xc0000000u) == 0x80000000u || (a & 0xffff0000u) == 0xc0a80000u) {
      mask = 0xffff0000u;
    } else if ((a & 0xffff0000u) == 0xc6120000u) {
      mask = 0xfffe0000u;
    } else if ((a & 0xe0000000u) == 0xe0000000u) {
      mask = 0xffffff00u;
    } else {
      mask = 0xfffffff0u;
    }
  } else {
    const std::string_view m = value.substr(slash + 1);
    if (const auto len = parse_uint(m)) {
      if (*len < 4 || *len > 30) {
        error = what + ": prefix length " + std::string(m) + " is outside 4..30; " + accepted;
        return false;
      }
      mask = 0xffffffffu << (32 - *len);
    } else if (const auto dotted = parse_ipv4(m)) {
      mask = host_order(*dotted);
      const int len = mask_length(mask);
      if (!mask_contiguous(mask) || len < 4 || len > 30) {
        error = what + ": '" + std::string(m) + "' is not a netmask of 4..30 leading one bits; " +
                accepted;
        return false;
      }
    } else {
      error =
          what + ": '" + std::string(m) + "' is neither a prefix length nor a netmask; " + accepted;
      return false;
    }
  }
  const uint32_t net = host_order(*addr) & mask;
  o.net = from_host_order(net);
  o.netmask = from_host_order(mask);
  // net_slirp_init: the defaults move into the new net.
  o.host = from_host_order(net | (0x0202u & ~mask));
  o.dhcp_start = from_host_order(net | (0x020fu & ~mask));
  o.dns = from_host_order(net | (0x0203u & ~mask));
  return true;
}

bool parse_ipv6_net(std::string_view value, slirp::SlirpOptions& o, std::string& error) {
  const std::string what = item_text("ipv6-net", value);
  const std::string accepted = "expected ipv6-net=PREFIX/LEN (LEN 0..126), e.g. fec0::/64";
  const size_t slash = value.find('/');
  const auto prefix = parse_ipv6(value.substr(0, slash));
  if (!prefix) {
    error = what + ": '" + std::string(value.substr(0, slash)) + "' is not an IPv6 address; " +
            accepted;
    return false;
  }
  uint32_t len = 64;  // QEMU's default prefix length
  if (slash != std::string_view::npos) {
    const auto l = parse_uint(value.substr(slash + 1));
    if (!l || *l > 126) {
      error = what + ": prefix length '" + std::string(value.substr(slash + 1)) +
              "' is outside 0..126; " + accepted;
      return false;
    }
    len = *l;
  }
  o.ipv6_prefix = *prefix;
  o.ipv6_prefix_len = static_cast<uint8_t>(len);
  // net_slirp_init: host is prefix|::2 and DNS prefix|::3 unless given.
  o.ipv6_host = *prefix;
  o.ipv6_host.s6_addr[15] |= 2;
  o.ipv6_dns = *prefix;
  o.ipv6_dns.s6_addr[15] |= 3;
  return true;
}

bool parse_lease(std::string_view value, slirp::Lease& lease, std::string& error) {
  const std::string what = item_text("lease", value);
  const std::string accepted =
      "expected lease=MAC:IP or lease=MAC:IP:NAME, e.g. lease=52:54:00:12:34:56:10.0.2.20:web1";
  size_t colon = value.rfind(':');
  if (colon == std::string_view::npos) {
    error = what + ": " + accepted;
    return false;
  }
  // MAC:IP:NAME: the last part is a name when it is not an IPv4 address and the part before it
  // is one (neither has a ':').
  std::string name;
  if (!parse_ipv4(value.substr(colon + 1))) {
    const size_t before = colon == 0 ? std::string_view::npos : value.rfind(':', colon - 1);
    if (before != std::string_view::npos &&
        parse_ipv4(value.substr(before + 1, colon - before - 1))) {
      name = std::string(value.substr(colon + 1));
      std::string why;
      if (name.find('.') != std::string::npos || !slirp::dns_name_ok(name, why)) {
        error = what + ": name '" + name + "' is not a host name label: " +
                (why.empty() ? "it has a '.'; a guest's name is one label (letters, digits and "
                               "'-', 1..63), e.g. web1"
                             : why);
        return false;
      }
      value = value.substr(0, colon);
      colon = before;
    }
  }
  const auto mac = sw::MacAddress::parse(value.substr(0, colon));
  if (!mac) {
    error =
        what + ": '" + std::string(value.substr(0, colon)) + "' is not a MAC address; " + accepted;
    return false;
  }
  if (mac->is_multicast() || mac->is_zero()) {
    error = what + ": " + mac->to_string() +
            " is not a unicast MAC address (a guest's MAC has "
            "the group bit clear and is not all zeros)";
    return false;
  }
  const auto ip = parse_ipv4(value.substr(colon + 1));
  if (!ip) {
    error = what + ": '" + std::string(value.substr(colon + 1)) + "' is not an IPv4 address; " +
            accepted;
    return false;
  }
  lease.mac = *mac;
  lease.addr = *ip;
  lease.name = name;
  return true;
}

// dns-record=NAME=ADDR: a static record of the slirp port's DNS (slirp/dns_names.h).
bool parse_dns_record(std::string_view value, slirp::DnsRecord& record, std::string& error) {
  const std::string what = item_text("dns-record", value);
  const std::string accepted =
      "expected dns-record=NAME=ADDR, NAME a short name (NAME.<domain>) or a full one, ADDR an "
      "IPv4 or IPv6 address, e.g. dns-record=files=10.0.2.100";
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos) {
    error = what + ": no '=' between the name and the address; " + accepted;
    return false;
  }
  const std::string_view name = value.substr(0, eq);
  std::string why;
  if (!slirp::dns_name_ok(name, why)) {
    error = what + ": name '" + std::string(name) + "' " + why;
    return false;
  }
  const auto addr = sw::IpAddress::parse(value.substr(eq + 1));
  if (!addr || addr->is_unspecified() || addr->is_multicast()) {
    error = what + ": '" + std::string(value.substr(eq + 1)) +
            "' is not a unicast IPv4 or IPv6 address; " + accepted;
    return false;
  }
  record.name = std::string(name);
  record.addr = *addr;
  return true;
}

std::string proto_name(bool udp) { return udp ? "udp" : "tcp"; }

bool parse_proto(std::string_view text, bool& udp) {
  if (text.empty() || text == "tcp") {
    udp = false;
    return true;
  }
  if (text == "udp") {
    udp = true;
    return true;
  }
  return false;
}

// "ADDR:PORT" or "[ADDR6]:PORT" split into its address (brackets stripped) and port. False when
// the text has neither form.
bool split_addr_port(std::string_view text, std::string_view& addr, bool& bracketed,
                     std::string_view& port) {
  bracketed = !text.empty() && text.front() == '[';
  size_t colon = 0;
  if (bracketed) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return false;
    }
    addr = text.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = text.find(':');
    if (colon == std::string_view::npos) return false;
    addr = text.substr(0, colon);
  }
  port = text.substr(colon + 1);
  return port.find(':') == std::string_view::npos && port.find(']') == std::string_view::npos;
}

// "ADDR:PORT" text that split_addr_port() refused and that looks like an unbracketed IPv6
// address with a port ("::1:8080"): a hint, else "".
std::string bracket_hint(std::string_view text) {
  if (text.empty() || text.front() == '[' || std::count(text.begin(), text.end(), ':') < 2) {
    return "";
  }
  return "an IPv6 address goes in brackets, e.g. [::1]:8080; ";
}

// Empty when `text` (a bracketed address) is an IPv6 address a forward's host side can bind,
// else why not. The address is stored in `out`.
std::string host_addr6_problem(std::string_view text, in6_addr& out) {
  const auto a = parse_ipv6(text);
  if (!a) return "is not a numeric IPv6 address";
  if (IN6_IS_ADDR_V4MAPPED(&*a))
    return "is an IPv4-mapped address: write the IPv4 address unbracketed";
  if (IN6_IS_ADDR_LINKLOCAL(&*a) || IN6_IS_ADDR_MULTICAST(&*a)) {
    return "is link-local or multicast, which a host forward cannot bind";
  }
  out = *a;
  return "";
}

// "[tcp|udp]:[HOSTADDR]:HOSTPORT" into udp/ipv6/host_addr(6)/host_port. An empty HOSTADDR is
// 127.0.0.1 (an add spec's IPv6 guest side makes it ::1 afterwards). `what` and `syntax` name
// the text for errors.
bool parse_key_part(std::string_view part, const std::string& what, const char* syntax,
                    slirp::HostForward& f, std::string& error, bool* addr_empty = nullptr) {
  const size_t c1 = part.find(':');
  std::string_view addr, port;
  bool bracketed = false;
  if (c1 == std::string_view::npos ||
      !split_addr_port(part.substr(c1 + 1), addr, bracketed, port)) {
    error = what + ": " +
            (c1 == std::string_view::npos ? std::string() : bracket_hint(part.substr(c1 + 1))) +
            syntax;
    return false;
  }
  if (addr_empty != nullptr) *addr_empty = addr.empty() && !bracketed;
  const std::string_view proto = part.substr(0, c1);
  if (!parse_proto(proto, f.udp)) {
    error = what + ": protocol '" + std::string(proto) + "' is not tcp or udp; " + syntax;
    return false;
  }
  if (bracketed) {
    const std::string problem = host_addr6_problem(addr, f.host_addr6);
    if (!problem.empty()) {
      error = what + ": host address '[" + std::string(addr) + "]' " + problem + "; " + syntax;
      return false;
    }
    f.ipv6 = true;
  } else if (addr.empty()) {
    f.host_addr = from_host_order(0x7f000001u);  // qswitch: loopback unless asked otherwise
  } else if (const auto a = parse_ipv4(addr)) {
    f.host_addr = *a;
  } else {
    error = what + ": host address '" + std::string(addr) + "' is not a numeric IPv4 address" +
            (parse_ipv6(addr) ? " (an IPv6 address goes in brackets)" : "") + "; " + syntax;
    return false;
  }
  const auto p = parse_uint(port);
  if (!p || *p > 65535) {
    error =
        what + ": host port '" + std::string(port) + "' is not a port number 0..65535; " + syntax;
    return false;
  }
  f.host_port = static_cast<uint16_t>(*p);
  return true;
}

// The key=value items of one --slirp, by key (a repeatable key keeps every value, in order).
using ItemMap = std::map<std::string, std::vector<std::string>, std::less<>>;

const std::string* single_value(const ItemMap& items, std::string_view key) {
  const auto at = items.find(key);
  return at == items.end() ? nullptr : &at->second.front();
}

// How one key's value is checked and stored into the options.
using ApplyFn = bool (*)(const std::string& value, slirp::SlirpOptions& o, std::string& error);
// A check that runs after a key's turn whether or not it was given (defaults included).
using AfterFn = bool (*)(const ItemMap& items, const slirp::SlirpOptions& o, std::string& error);

bool apply_ipv4(const char* key, const std::string& v, in_addr& field, std::string& error) {
  const auto a = parse_ipv4(v);
  if (!a) {
    error = item_text(key, v) + ": '" + v + "' is not a numeric IPv4 address, e.g. " + key + "=" +
            format_ipv4(field);
    return false;
  }
  field = *a;
  return true;
}

bool apply_ipv6(const char* key, const std::string& v, in6_addr& field,
                const slirp::SlirpOptions& o, std::string& error) {
  if (!o.ipv6) {
    error = item_text(key, v) + ": IPv6 is off (ipv6=off); drop " + key + " or turn IPv6 on";
    return false;
  }
  const auto a = parse_ipv6(v);
  if (!a) {
    error = item_text(key, v) + ": '" + v + "' is not a numeric IPv6 address, e.g. " + key + "=" +
            format_ipv6(field);
    return false;
  }
  if (!in6_same_net(*a, o.ipv6_prefix, o.ipv6_prefix_len)) {
    error = item_text(key, v) + ": outside ipv6-net " + format_ipv6(o.ipv6_prefix) + "/" +
            std::to_string(o.ipv6_prefix_len);
    return false;
  }
  field = *a;
  return true;
}

bool apply_on_off(const char* key, const std::string& v, bool& field, const char* expected,
                  std::string& error) {
  const auto b = parse_switch(v);
  if (!b) {
    error = item_text(key, v) + ": expected " + expected;
    return false;
  }
  field = *b;
  return true;
}

// The caps: a number 0..limit, 0 meaning none.
std::optional<uint32_t> parse_cap(const char* key, const std::string& v, uint32_t limit,
                                  const char* what, uint32_t example, std::string& error) {
  const auto n = parse_uint(v);
  if (!n || *n > limit) {
    error = item_text(key, v) + ": expected a number 0.." + std::to_string(limit) + " (" + what +
            "; 0: no cap), e.g. " + key + "=" + std::to_string(example);
    return std::nullopt;
  }
  return n;
}

constexpr const char* kDomainForm =
    "expected a domain name (labels of 1..63 bytes, at most 253 bytes), e.g. ";

bool apply_domain(const char* key, const std::string& v, std::string& error) {
  if (valid_domain(v)) return true;
  error = std::string(key) + "='" + v + "': " + kDomainForm + key + "=example.internal";
  return false;
}

// host, dns and dhcpstart (given or moved by net=) inside the net and distinct.
bool check_ipv4_segment(const ItemMap& items, const slirp::SlirpOptions& o, std::string& error) {
  const std::pair<const char*, in_addr> addrs[] = {
      {"host", o.host}, {"dns", o.dns}, {"dhcpstart", o.dhcp_start}};
  for (const auto& [key, addr] : addrs) {
    const std::string problem = segment_problem(addr, o);
    if (problem.empty()) continue;
    error =
        item_text(key, format_ipv4(addr)) +
        (single_value(items, key) != nullptr ? "" : " (the default for net=" + net_text(o) + ")") +
        ": " + problem + "; give " + key + "=ADDR inside the net";
    return false;
  }
  if (o.dns.s_addr == o.host.s_addr) {
    error = item_text("dns", format_ipv4(o.dns)) +
            ": the DNS address must differ from host=" + format_ipv4(o.host);
    return false;
  }
  if (o.dhcp_start.s_addr == o.host.s_addr || o.dhcp_start.s_addr == o.dns.s_addr) {
    error = item_text("dhcpstart", format_ipv4(o.dhcp_start)) +
            ": the first DHCP address must differ from host=" + format_ipv4(o.host) +
            " and dns=" + format_ipv4(o.dns);
    return false;
  }
  return true;
}

// "127.0.0.1", "[::1]": a forward's host address as written in a spec.
std::string host_addr_text(const slirp::HostForward& f) {
  return f.ipv6 ? "[" + f.host_addr_text() + "]" : f.host_addr_text();
}

// Host forwards: syntax, guest inside the net, no two on the same host socket.
bool apply_hostfwd(const std::string& spec, slirp::SlirpOptions& o, std::string& error) {
  slirp::HostForward f;
  if (!parse_hostfwd(spec, f, error) || !check_hostfwd_guest(f, o, error)) return false;
  for (const slirp::HostForward& other : o.hostfwd) {
    if (other.same_host_socket(f) && f.host_port != 0) {
      error = "hostfwd '" + spec + "': " + proto_name(f.udp) + " " + host_addr_text(f) + ":" +
              std::to_string(f.host_port) + " is already forwarded by hostfwd '" +
              other.to_string() + "'";
      return false;
    }
  }
  o.hostfwd.push_back(f);
  return true;
}

// Pinned leases: a guest address of the segment, one per MAC, one MAC per address.
bool apply_lease(const std::string& spec, slirp::SlirpOptions& o, std::string& error) {
  slirp::Lease l;
  if (!parse_lease(spec, l, error)) return false;
  std::string problem = segment_problem(l.addr, o);
  if (problem.empty() && l.addr.s_addr == o.host.s_addr) problem = "is the host address";
  if (problem.empty() && l.addr.s_addr == o.dns.s_addr) problem = "is the DNS address";
  if (!problem.empty()) {
    error = item_text("lease", spec) + ": " + format_ipv4(l.addr) + " " + problem +
            "; a pinned address must be a guest address inside net " + net_text(o);
    return false;
  }
  for (const slirp::Lease& other : o.leases) {
    if (!l.name.empty() && strcasecmp(other.name.c_str(), l.name.c_str()) == 0) {
      error = item_text("lease", spec) + ": the name '" + l.name + "' is already " +
              other.mac.to_string() + "'s (lease=" + other.mac.to_string() + ":" +
              format_ipv4(other.addr) + ":" + other.name + "); one name per guest";
      return false;
    }
    if (other.mac == l.mac) {
      error = item_text("lease", spec) + ": MAC " + l.mac.to_string() + " already has a lease (" +
              format_ipv4(other.addr) + ")";
      return false;
    }
    if (other.addr.s_addr == l.addr.s_addr) {
      error = item_text("lease", spec) + ": " + format_ipv4(l.addr) + " is already pinned to " +
              other.mac.to_string();
      return false;
    }
  }
  o.leases.push_back(l);
  return true;
}

// One --slirp key: its name, whether it repeats, how its value is applied, and a check that
// runs after its turn. Applied in this order, which is QEMU's (net_slirp_init) after vlan
// (qswitch's own, independent of the rest): net first
// (moving host, dns and dhcpstart into it), the IPv4 addresses, IPv6, the names and files
// offered over DHCP/TFTP (QEMU's limits: 255 bytes; the BOOTP file field is 128 bytes, RFC
// 951), the caps, then the forwards and leases, which are checked against the final net.
struct KeySpec {
  std::string_view name;
  bool repeats;
  ApplyFn apply;
  AfterFn after = nullptr;
};

const KeySpec kKeySpecs[] = {
    {"vlan", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       uint16_t id = 0;
       std::string why;
       if (!sw::parse_vlan_id(v, id, why)) {
         e = item_text("vlan", v) + ": " + why + " (the VLAN this slirp port serves, e.g. vlan=10)";
         return false;
       }
       o.vlan = id;
       return true;
     }},
    {"net", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return parse_net(v, o, e);
     }},
    {"host", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_ipv4("host", v, o.host, e);
     }},
    {"dns", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_ipv4("dns", v, o.dns, e);
     }},
    {"dhcpstart", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_ipv4("dhcpstart", v, o.dhcp_start, e);
     },
     check_ipv4_segment},
    {"ipv6", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_on_off("ipv6", v, o.ipv6, "on or off", e);
     }},
    {"ipv6-net", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       if (!o.ipv6) {
         e = item_text("ipv6-net", v) + ": IPv6 is off (ipv6=off); drop ipv6-net or turn IPv6 on";
         return false;
       }
       return parse_ipv6_net(v, o, e);
     }},
    {"ipv6-host", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_ipv6("ipv6-host", v, o.ipv6_host, o, e);
     }},
    {"ipv6-dns", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_ipv6("ipv6-dns", v, o.ipv6_dns, o, e);
     }},
    {"hostname", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       if (v.size() > 255 || has_control_chars(v)) {
         e = "hostname='" + v + "': expected at most 255 printable bytes";
         return false;
       }
       o.hostname = v;
       return true;
     }},
    {"domainname", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       if (!apply_domain("domainname", v, e)) return false;
       o.domainname = v;
       return true;
     }},
    {"dnssearch", true,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       if (!apply_domain("dnssearch", v, e)) return false;
       o.dnssearch.push_back(v);
       return true;
     }},
    {"tftp", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       struct stat st;
       if (v.empty() || ::stat(v.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
         e = "tftp='" + v +
             "': not an existing directory; expected tftp=DIR, the directory "
             "served over TFTP";
         return false;
       }
       o.tftp = v;
       return true;
     }},
    {"bootfile", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       if (v.empty() || v.size() > 127 || has_control_chars(v)) {
         e = "bootfile='" + v + "': expected 1..127 printable bytes (the BOOTP file field)";
         return false;
       }
       o.bootfile = v;
       return true;
     }},
    {"restrict", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       return apply_on_off("restrict", v, o.restrict, "on, off, yes or no", e);
     }},
    {"mtu", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       const auto m = parse_uint(v);
       if (!m || *m < 68 || *m > 65520) {
         e = item_text("mtu", v) + ": expected a number 68..65520";
         return false;
       }
       o.mtu = *m;
       return true;
     }},
    {"max-leases-per-port", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       const auto n = parse_cap("max-leases-per-port", v, kMaxLeasesPerPortLimit,
                                "DHCP addresses one switch port may hold at once",
                                slirp::kDefaultMaxLeasesPerPort, e);
       if (!n) return false;
       o.max_leases_per_port = *n;
       return true;
     }},
    {"max-host-sockets", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       const auto n = parse_cap("max-host-sockets", v, kMaxHostSocketsLimit,
                                "host sockets all guests together may have open through NAT",
                                slirp::kDefaultMaxHostSockets, e);
       if (!n) return false;
       o.max_host_sockets = *n;
       return true;
     }},
    {"max-host-sockets-per-port", false,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       const auto n =
           parse_cap("max-host-sockets-per-port", v, kMaxHostSocketsLimit,
                     "host sockets the guests of one switch port may have open through NAT",
                     slirp::kDefaultMaxHostSocketsPerPort, e);
       if (!n) return false;
       o.max_host_sockets_per_port = *n;
       return true;
     }},
    {"hostfwd", true, apply_hostfwd},
    {"lease", true, apply_lease},
    {"dns-record", true,
     [](const std::string& v, slirp::SlirpOptions& o, std::string& e) {
       slirp::DnsRecord r;
       if (!parse_dns_record(v, r, e)) return false;
       // Checked as DnsNames will take it: a built-in name, or the same record twice.
       slirp::SlirpOptions probe = o;
       probe.dns_records.clear();
       slirp::DnsNames names(probe);
       std::string why;
       for (const slirp::DnsRecord& earlier : o.dns_records)
         names.add_static(earlier.name, earlier.addr, why);
       if (!names.add_static(r.name, r.addr, why)) {
         e = item_text("dns-record", v) + ": " + why;
         return false;
       }
       o.dns_records.push_back(r);
       return true;
     }},
};

std::string accepted_keys() {
  std::string s;
  for (const KeySpec& k : kKeySpecs) {
    if (!s.empty()) s += ", ";
    s += k.name;
  }
  return s;
}

const KeySpec* key_spec(std::string_view key) {
  for (const KeySpec& k : kKeySpecs) {
    if (k.name == key) return &k;
  }
  return nullptr;
}

// Pass 1: known keys only, single-valued ones at most once.
bool collect_items(const std::vector<Item>& items, ItemMap& out, std::string& error) {
  for (const Item& it : items) {
    const KeySpec* spec = key_spec(it.key);
    if (spec == nullptr) {
      error = "unknown option '" + it.key + "' in '" + item_text(it.key, it.value) +
              "'; accepted: " + accepted_keys();
      return false;
    }
    std::vector<std::string>& values = out[it.key];
    if (!spec->repeats && !values.empty()) {
      error = "'" + it.key + "' given twice (" + item_text(it.key, values.front()) + " and " +
              item_text(it.key, it.value) +
              "); only dnssearch, hostfwd, lease and dns-record repeat";
      return false;
    }
    values.push_back(it.value);
  }
  return true;
}

}  // namespace

std::string format_ipv4(in_addr addr) {
  char buf[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &addr, buf, sizeof buf);
  return buf;
}

std::string format_ipv6(const in6_addr& addr) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &addr, buf, sizeof buf);
  return buf;
}

namespace {

// A guest side that is meant as a DNS name: not an IPv4 address, and letters in it (so that a
// mistyped address such as 10.0.2 stays an address error).
bool is_guest_name(std::string_view text) {
  if (text.empty() || parse_ipv4(text) || parse_ipv6(text)) return false;
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
}

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool parse_hostfwd(std::string_view spec, slirp::HostForward& out, std::string& error) {
  if (std::string nul = nul_problem(spec, "hostfwd"); !nul.empty()) {
    error = nul + "; " + kHostfwdSyntax;
    return false;
  }
  const std::string what = "hostfwd '" + std::string(spec) + "'";
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) {
    error = what + ": no '-' between the host and the guest side; " + kHostfwdSyntax;
    return false;
  }
  slirp::HostForward f;
  bool host_empty = false;
  if (!parse_key_part(spec.substr(0, dash), what, kHostfwdSyntax, f, error, &host_empty)) {
    return false;
  }
  const std::string_view guest = spec.substr(dash + 1);
  std::string_view gaddr, gport;
  bool gbracketed = false;
  if (!split_addr_port(guest, gaddr, gbracketed, gport)) {
    error = what + ": the guest side '" + std::string(guest) + "' is not [GUESTADDR]:GUESTPORT; " +
            bracket_hint(guest) + kHostfwdSyntax;
    return false;
  }
  const std::optional<sw::MacAddress> mac =
      gbracketed && !parse_ipv6(gaddr) ? sw::MacAddress::parse(gaddr) : std::nullopt;
  if (mac) {
    // A guest by MAC: the family is the host side's (none: IPv4, 127.0.0.1); the slirp port
    // resolves the address when it adds the forward.
    if (mac->is_multicast() || mac->is_zero()) {
      error = what + ": guest MAC [" + std::string(gaddr) +
              "] is not a unicast MAC address (a guest's MAC has the group bit clear)";
      return false;
    }
    f.by_mac = true;
    f.guest_mac = *mac;
  } else if (!gbracketed && is_guest_name(gaddr)) {
    // A guest by DNS name: like a MAC, the family is the host side's; the slirp port resolves
    // the name's address when it adds the forward.
    std::string why;
    if (!slirp::dns_name_ok(gaddr, why)) {
      error = what + ": guest name '" + std::string(gaddr) + "' " + why;
      return false;
    }
    f.guest_name = lower_ascii(gaddr);
    if (f.guest_name.back() == '.') f.guest_name.pop_back();
  } else if (gbracketed) {
    const auto a = parse_ipv6(gaddr);
    if (!a) {
      error = what + ": guest address '[" + std::string(gaddr) +
              "]' is not a numeric IPv6 address nor a guest's MAC ([52:54:00:12:34:56]); " +
              kHostfwdSyntax;
      return false;
    }
    if (!f.ipv6 && !host_empty) {
      error = what + ": the host side is IPv4 and the guest side IPv6; libslirp forwards only " +
              "within one family, so give an IPv6 host address in brackets (e.g. [::1]) or " +
              "leave it empty for [::1]; " + kHostfwdSyntax;
      return false;
    }
    if (!f.ipv6) {  // no host address: loopback of the guest's family
      f.ipv6 = true;
      f.host_addr = in_addr{};
      f.host_addr6 = in6addr_loopback;
    }
    f.guest_addr6 = *a;
  } else if (f.ipv6) {
    error = what + ": the host side is IPv6 and the guest side " +
            (gaddr.empty() ? std::string("has no address (IPv4's first DHCP address)")
                           : "'" + std::string(gaddr) + "' is not") +
            "; libslirp forwards only within one family, so give the guest's IPv6 address in " +
            "brackets, e.g. [fec0::15]; " + kHostfwdSyntax;
    return false;
  } else if (gaddr.empty()) {
    f.guest_addr = from_host_order(0);  // QEMU: the first DHCP address
  } else if (const auto a = parse_ipv4(gaddr)) {
    f.guest_addr = *a;
  } else {
    error = what + ": guest address '" + std::string(gaddr) + "' is not a numeric IPv4 address" +
            (parse_ipv6(gaddr) ? " (an IPv6 address goes in brackets)" : "") + "; " +
            kHostfwdSyntax;
    return false;
  }
  const auto p = parse_uint(gport);
  if (!p || *p < 1 || *p > 65535) {
    error = what + ": guest port '" + std::string(gport) + "' is not a port number 1..65535; " +
            kHostfwdSyntax;
    return false;
  }
  f.guest_port = static_cast<uint16_t>(*p);
  out = f;
  return true;
}

bool parse_hostfwd_key(std::string_view spec, slirp::HostForward& out, std::string& error) {
  if (std::string nul = nul_problem(spec, "hostfwd"); !nul.empty()) {
    error = nul + "; " + kHostfwdKeySyntax;
    return false;
  }
  if (spec.find('-') != std::string_view::npos) {
    slirp::HostForward full;
    if (!parse_hostfwd(spec, full, error)) return false;
    out = slirp::HostForward{};
    out.udp = full.udp;
    out.ipv6 = full.ipv6;
    out.host_addr = full.host_addr;
    out.host_addr6 = full.host_addr6;
    out.host_port = full.host_port;
    return true;
  }
  slirp::HostForward f;
  if (!parse_key_part(spec, "hostfwd '" + std::string(spec) + "'", kHostfwdKeySyntax, f, error)) {
    return false;
  }
  out = f;
  return true;
}

bool check_hostfwd_guest(const slirp::HostForward& fwd, const slirp::SlirpOptions& o,
                         std::string& error) {
  if (fwd.by_mac || !fwd.guest_name.empty()) {  // resolved by the slirp port when it adds it
    if (!fwd.ipv6 || o.ipv6) return true;
    error = "hostfwd '" + fwd.to_string() + "': an IPv6 forward to a guest by " +
            (fwd.by_mac ? "MAC" : "name") + ", and this slirp port has ipv6=off";
    return false;
  }
  if (fwd.ipv6) {
    const std::string net6 = format_ipv6(o.ipv6_prefix) + "/" + std::to_string(o.ipv6_prefix_len);
    std::string problem;
    if (!o.ipv6) {
      problem = "is IPv6, and this slirp port has ipv6=off";
    } else if (!in6_same_net(fwd.guest_addr6, o.ipv6_prefix, o.ipv6_prefix_len)) {
      problem = "is outside ipv6-net " + net6;
    } else if (in6_same_net(fwd.guest_addr6, o.ipv6_prefix, 128)) {
      problem = "is the network address of ipv6-net " + net6;
    } else if (IN6_ARE_ADDR_EQUAL(&fwd.guest_addr6, &o.ipv6_host)) {
      problem = "is the slirp ipv6-host address (the gateway), not a guest";
    } else if (IN6_ARE_ADDR_EQUAL(&fwd.guest_addr6, &o.ipv6_dns)) {
      problem = "is the slirp ipv6-dns address, not a guest";
    }
    if (problem.empty()) return true;
    error = "hostfwd '" + fwd.to_string() + "': guest address " + format_ipv6(fwd.guest_addr6) +
            " " + problem + "; give a guest's address in ipv6-net (its SLAAC address)";
    return false;
  }
  if (fwd.guest_addr.s_addr == 0) return true;
  const std::string g = format_ipv4(fwd.guest_addr);
  std::string problem = segment_problem(fwd.guest_addr, o);
  if (problem.empty() && fwd.guest_addr.s_addr == o.host.s_addr) {
    problem = "is the slirp host address (the gateway), not a guest";
  }
  if (problem.empty() && fwd.guest_addr.s_addr == o.dns.s_addr) {
    problem = "is the slirp DNS address, not a guest";
  }
  if (problem.empty()) return true;
  error = "hostfwd '" + fwd.to_string() + "': guest address " + g + " " + problem +
          "; give a guest's address in the net, or leave it empty for the first DHCP address (" +
          format_ipv4(o.dhcp_start) + ")";
  return false;
}

bool parse_slirp_options(std::string_view text, slirp::SlirpOptions& out, std::string& error) {
  if (std::string nul = nul_problem(text, "slirp options"); !nul.empty()) {
    error = nul;
    return false;
  }
  slirp::SlirpOptions o = slirp::default_slirp_options();
  std::vector<Item> items;
  ItemMap by_key;
  if (!text.empty() && (!split_items(text, items, error) || !collect_items(items, by_key, error))) {
    return false;
  }
  // Pass 2: every key in the table's (QEMU's) order; `out` is untouched on error.
  for (const KeySpec& k : kKeySpecs) {
    if (const auto at = by_key.find(k.name); at != by_key.end()) {
      for (const std::string& v : at->second) {
        if (!k.apply(v, o, error)) return false;
      }
    }
    if (k.after != nullptr && !k.after(by_key, o, error)) return false;
  }
  out = std::move(o);
  return true;
}

}  // namespace qswitch::tools
