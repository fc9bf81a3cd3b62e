// tests/fuzz/dhcp_server_fuzz.cc: slirp::DhcpServer, whole Ethernet frames from a guest in,
// replies checked for sanity, over a sequence of messages (the lease state machine).
//
// Input (FuzzedDataProvider): a few configuration choices (pool size, record cap, the optional
// reply options, pinned leases, the per-port lease cap), then messages, each: the switch port it
// came in on (one of four), a clock step, the reply buffer's size, a fix-up mask and the frame's
// bytes. The fix-up mask lets the fuzzer get past the IPv4 header
// checksum and the length fields (which it cannot guess) while still trying them wrong: bit 0
// sets IPv4 total length and UDP length to the frame's, bit 1 the IPv4 header checksum, bit 2
// copies chaddr to the Ethernet source. Frames and reply buffers are exact-size heap blocks, so
// ASan sees any read or write past either.
//
// Checked, for every reply: it fits the buffer; Ethernet from the server MAC to the client's
// chaddr or broadcast; IPv4 and UDP well formed with correct checksums and lengths, 67 -> 68;
// BOOTP op 2 echoing xid and chaddr, the cookie, options that parse up to an end option with a
// message type OFFER/ACK/NAK and the server id; no larger than the client allowed (option 57,
// never below 576); yiaddr 0 or an address the server may hand out. After every message: the
// lease table holds each MAC and each address at most once, at most max(max_leases, pinned)
// records, no port holds more unpinned unexpired addresses than max_leases_per_port, and the
// counters add up to the messages is_dhcp_request() claimed. Lease events (what port security's
// address book hears): bound() only for an address and a MAC not bound already, ended() only for
// a binding heard before, an ACK with an address leaves that address bound to the client's MAC,
// every binding heard is a bound lease of the table, and after expire(now) an unexpired one.
// Host names (option 12): hostname() hears at most 255 bytes, only for a REQUEST; each
// lease's kept hostname is empty or a valid label; and a DnsNames fed every event (as the slirp
// port feeds its own) holds only valid names in its table, whatever the guests sent.
#include <arpa/inet.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "slirp/dhcp_server.h"
#include "slirp/dns_names.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using qswitch::slirp::DhcpConfig;
using qswitch::slirp::DhcpServer;
using qswitch::sw::MacAddress;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint16_t checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n % 2) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
in_addr addr(uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  return a;
}

// Option 57 of a request the server answered (it parsed, so the options are well formed up to
// the end option or the message's end); 0 when absent.
size_t client_max_size(const uint8_t* frame) {
  const uint8_t* ip = frame + 14;
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  const uint8_t* udp = ip + ihl;
  const size_t n = get16(udp + 4) - 8;
  const uint8_t* b = udp + 8;
  size_t max = 0;
  for (size_t i = 240; i < n;) {
    if (b[i] == 0) {
      ++i;
      continue;
    }
    if (b[i] == 255 || i + 2 > n) break;
    const size_t len = b[i + 1];
    if (b[i] == 57 && len == 2 && i + 4 <= n) max = get16(b + i + 2);
    i += 2 + len;
  }
  return max;
}

struct Pool {
  uint32_t first, last, server, dns, net, mask;
};

bool assignable(const Pool& p, const DhcpConfig& c, uint32_t a) {
  for (const auto& pin : c.pinned) {
    if (ntohl(pin.addr.s_addr) == a) return true;
  }
  if (a < p.first || a > p.last) return false;
  if (a == p.server || a == p.dns) return false;
  return (a & ~p.mask) != 0 && (a & ~p.mask) != ~p.mask;
}

void check_reply(const uint8_t* req, const uint8_t* r, size_t n, size_t capacity,
                 const DhcpConfig& c, const Pool& pool) {
  FUZZ_CHECK(n <= capacity);
  FUZZ_CHECK(n >= 14 + 20 + 8 + 300);
  const MacAddress chaddr = MacAddress::from_wire(req + 14 + size_t{req[14] & 0x0fu} * 4 + 8 + 28);
  const MacAddress dst = MacAddress::from_wire(r);
  FUZZ_CHECK(dst == chaddr || dst == MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}});
  FUZZ_CHECK(MacAddress::from_wire(r + 6) == c.server_mac);
  FUZZ_CHECK(get16(r + 12) == 0x0800);
  const uint8_t* ip = r + 14;
  FUZZ_CHECK(ip[0] == 0x45);
  FUZZ_CHECK(get16(ip + 2) == n - 14);
  FUZZ_CHECK(ip[9] == 17);
  FUZZ_CHECK(checksum(ip, 20) == 0);
  FUZZ_CHECK(get32(ip + 12) == pool.server);
  const uint8_t* udp = ip + 20;
  FUZZ_CHECK(get16(udp) == 67 && get16(udp + 2) == 68);
  const size_t udp_len = get16(udp + 4);
  FUZZ_CHECK(udp_len == n - 14 - 20);
  const uint32_t pseudo = (get32(ip + 12) >> 16) + (get32(ip + 12) & 0xffff) +
                          (get32(ip + 16) >> 16) + (get32(ip + 16) & 0xffff) + 17 +
                          static_cast<uint32_t>(udp_len);
  FUZZ_CHECK(get16(udp + 6) != 0 && checksum(udp, udp_len, pseudo) == 0);
  // The client's limit: its option 57 (an IP datagram size), never below 576.
  const size_t allowed = std::max<size_t>(576, client_max_size(req));
  FUZZ_CHECK(n - 14 <= allowed);
  const uint8_t* b = udp + 8;
  const size_t blen = udp_len - 8;
  const uint8_t* rb = req + 14 + size_t{req[14] & 0x0fu} * 4 + 8;
  FUZZ_CHECK(b[0] == 2 && b[1] == 1 && b[2] == 6);
  FUZZ_CHECK(std::memcmp(b + 4, rb + 4, 4) == 0);  // xid
  FUZZ_CHECK(MacAddress::from_wire(b + 28) == chaddr);
  FUZZ_CHECK(get32(b + 236) == 0x63825363);
  const uint32_t yiaddr = get32(b + 16);
  FUZZ_CHECK(yiaddr == 0 || assignable(pool, c, yiaddr));
  uint8_t type = 0;
  bool server_id = false, end = false;
  for (size_t i = 240; i < blen;) {
    if (b[i] == 0) {
      ++i;
      continue;
    }
    if (b[i] == 255) {
      end = true;
      break;
    }
    FUZZ_CHECK(i + 2 <= blen);
    const size_t len = b[i + 1];
    FUZZ_CHECK(i + 2 + len <= blen);
    if (b[i] == 53) {
      FUZZ_CHECK(len == 1);
      type = b[i + 2];
    }
    if (b[i] == 54) server_id = len == 4 && get32(b + i + 2) == pool.server;
    i += 2 + len;
  }
  FUZZ_CHECK(end);
  FUZZ_CHECK(type == 2 || type == 5 || type == 6);
  FUZZ_CHECK(server_id);
  if (type == 6) FUZZ_CHECK(yiaddr == 0);
}

// The bindings DhcpServer::LeaseEvents announced: address (network order) -> MAC key.
class Bindings : public DhcpServer::LeaseEvents {
 public:
  explicit Bindings(qswitch::slirp::DnsNames& names) : names_(names) {}
  void bound(const MacAddress& mac, in_addr a) override {
    FUZZ_CHECK(by_addr.count(a.s_addr) == 0);
    for (const auto& [addr, key] : by_addr) FUZZ_CHECK(key != mac.key());
    by_addr[a.s_addr] = mac.key();
    names_.lease_bound(mac, ipv4(a));
  }
  void ended(const MacAddress& mac, in_addr a) override {
    const auto it = by_addr.find(a.s_addr);
    FUZZ_CHECK(it != by_addr.end() && it->second == mac.key());
    by_addr.erase(it);
    names_.lease_ended(mac, ipv4(a));
  }
  void hostname(const MacAddress& mac, std::string_view sent) override {
    FUZZ_CHECK(sent.size() <= 255);
    ++hostnames;
    names_.set_dhcp_hostname(mac, sent);
  }
  static qswitch::sw::IpAddress ipv4(in_addr a) {
    return qswitch::sw::IpAddress::v4(reinterpret_cast<const uint8_t*>(&a.s_addr));
  }
  std::map<uint32_t, uint64_t> by_addr;
  uint64_t hostnames = 0;

 private:
  qswitch::slirp::DnsNames& names_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  DhcpConfig c;
  c.server_mac = MacAddress{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  // 10.0.2.0/24 or a /29 (a pool of a few addresses: exhaustion and reuse come quickly).
  const bool tiny = in.ConsumeBool();
  Pool p{};
  p.net = 0x0a000200;
  p.mask = tiny ? 0xfffffff8u : 0xffffff00u;
  p.server = p.net | 2;
  p.dns = p.net | 3;
  p.first = tiny ? p.net | 4 : p.net | 15;
  p.last = (p.net | ~p.mask) - 1;
  c.server = addr(p.server);
  c.dns = addr(p.dns);
  c.netmask = addr(p.mask);
  c.pool_first = addr(p.first);
  c.pool_last = addr(p.last);
  c.max_leases = in.ConsumeIntegralInRange<size_t>(1, 300);
  c.offer_hold_s = in.ConsumeIntegralInRange<uint32_t>(0, 120);
  c.decline_hold_s = in.ConsumeIntegralInRange<uint32_t>(0, 1200);
  c.lease_time_s = in.ConsumeIntegralInRange<uint32_t>(1, 86400);
  const uint8_t extras = in.ConsumeIntegral<uint8_t>();
  if (extras & 1) c.mtu = 9000;
  if (extras & 2) c.hostname = std::string(in.ConsumeIntegralInRange<size_t>(1, 255), 'h');
  if (extras & 4) c.domainname = "example.internal";
  if (extras & 8) c.bootfile = std::string(in.ConsumeIntegralInRange<size_t>(1, 127), 'b');
  if (extras & 16) c.tftp = true;
  if (extras & 32) {
    for (int i = 0; i < 40; ++i)
      c.dnssearch.push_back("d" + std::to_string(i) + ".example.internal");
  }
  const size_t pins = in.ConsumeIntegralInRange<size_t>(0, 3);
  for (size_t i = 0; i < pins; ++i) {
    qswitch::slirp::Lease l;
    l.mac = MacAddress{
        {0x52, 0x54, 0x00, 0, 0, static_cast<uint8_t>(in.ConsumeIntegral<uint8_t>() & 0xfe)}};
    l.addr = addr(p.net | in.ConsumeIntegralInRange<uint32_t>(4, 6));
    c.pinned.push_back(l);
  }
  c.max_leases_per_port = in.ConsumeIntegralInRange<uint32_t>(0, 4);
  DhcpServer server(c);
  qswitch::slirp::DnsNames names(qswitch::slirp::default_slirp_options());
  Bindings bindings(names);
  server.set_lease_events(&bindings);

  int64_t now = 1000;
  uint64_t claimed = 0;
  for (int m = 0; m < 256 && in.remaining_bytes() > 0; ++m) {
    qswitch::slirp::DhcpPort from;  // which of four switch ports the frame came in on
    from.key = in.ConsumeIntegralInRange<uint64_t>(0, 3);
    from.id = static_cast<qswitch::sw::PortId>(from.key);
    now += in.ConsumeIntegralInRange<int64_t>(0, 2000);
    const size_t capacity = in.ConsumeBool() ? 1600 : in.ConsumeIntegralInRange<size_t>(0, 2000);
    const uint8_t fix = in.ConsumeIntegral<uint8_t>();
    const size_t len = in.ConsumeIntegralInRange<size_t>(0, 1600);
    std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(len);
    if (bytes.size() >= 14 + 20 + 8) {
      uint8_t* f = bytes.data();
      uint8_t* ip = f + 14;
      const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
      if ((fix & 1) && ihl >= 20 && 14 + ihl + 8 <= bytes.size()) {
        put16(ip + 2, static_cast<uint16_t>(std::min<size_t>(bytes.size() - 14, 0xffff)));
        put16(ip + ihl + 4,
              static_cast<uint16_t>(std::min<size_t>(bytes.size() - 14 - ihl, 0xffff)));
      }
      if ((fix & 2) && ihl >= 20 && 14 + ihl <= bytes.size()) {
        put16(ip + 10, 0);
        put16(ip + 10, checksum(ip, ihl));
      }
      if ((fix & 4) && ihl >= 20 && 14 + ihl + 8 + 34 <= bytes.size()) {
        std::memcpy(f + 6, ip + ihl + 8 + 28, 6);
      }
    }
    // Exact-size copies: ASan flags a read past the frame or a write past the reply buffer.
    std::unique_ptr<uint8_t[]> frame(new uint8_t[std::max<size_t>(bytes.size(), 1)]);
    if (!bytes.empty()) std::memcpy(frame.get(), bytes.data(), bytes.size());
    std::unique_ptr<uint8_t[]> reply(capacity > 0 ? new uint8_t[capacity] : nullptr);
    if (DhcpServer::is_dhcp_request(frame.get(), bytes.size())) ++claimed;
    const size_t n = server.handle(frame.get(), bytes.size(), now, reply.get(), capacity, from);
    if (n != 0) check_reply(frame.get(), reply.get(), n, capacity, c, p);
    // An ACK that gives an address (option 53 comes first) leaves it bound to chaddr.
    const uint8_t* bootp = n >= 42 + 243 ? reply.get() + 42 : nullptr;
    if (bootp != nullptr && bootp[240] == 53 && bootp[242] == 5 && get32(bootp + 16) != 0) {
      const auto it = bindings.by_addr.find(htonl(get32(bootp + 16)));
      FUZZ_CHECK(it != bindings.by_addr.end() &&
                 it->second == MacAddress::from_wire(bootp + 28).key());
    }
    const bool swept = (fix & 8) != 0;
    if (swept) server.expire(now);

    FUZZ_CHECK(bindings.hostnames <= server.counters().request);  // ACKed (the reply may not fit)
    for (const qswitch::slirp::DnsName& d : names.table().names) {
      std::string why;
      FUZZ_CHECK(qswitch::slirp::dns_name_ok(d.name, why));
      FUZZ_CHECK(!d.addresses.empty());
    }

    const auto& k = server.counters();
    FUZZ_CHECK(k.discover + k.request + k.release + k.decline + k.inform + k.ignored +
                   k.malformed ==
               claimed);
    FUZZ_CHECK(k.offer <= k.discover && k.ack + k.nak <= k.request + k.inform);
    const auto leases = server.leases();
    FUZZ_CHECK(leases.size() <= std::max(c.max_leases, c.pinned.size()));
    // The per-port cap: no port holds more unpinned, unexpired offers and leases than that.
    if (c.max_leases_per_port > 0) {
      std::map<uint64_t, size_t> per_port;
      for (const auto& l : leases) {
        if (!l.pinned && l.held && l.expires_s > now &&
            (l.state == DhcpServer::LeaseState::offered ||
             l.state == DhcpServer::LeaseState::bound)) {
          per_port[l.port.key] += 1;
        }
      }
      for (const auto& [key, held] : per_port) FUZZ_CHECK(held <= c.max_leases_per_port);
    }
    for (const auto& [a, key] : bindings.by_addr) {
      bool found = false;
      for (const auto& l : leases) {
        if (l.addr.s_addr == a && l.mac.key() == key && l.state == DhcpServer::LeaseState::bound) {
          found = !swept || l.expires_s > now;
        }
      }
      FUZZ_CHECK(found);
    }
    if (swept) FUZZ_CHECK(server.next_expiry_s() > now);
    std::set<uint64_t> macs;
    std::set<uint32_t> addrs;
    for (const auto& l : leases) {
      FUZZ_CHECK(l.hostname.empty() || qswitch::slirp::dns_label_ok(l.hostname));
      FUZZ_CHECK(macs.insert(l.mac.key()).second);
      FUZZ_CHECK(addrs.insert(l.addr.s_addr).second);
      FUZZ_CHECK(assignable(p, c, ntohl(l.addr.s_addr)));
    }
  }
  return 0;
}
