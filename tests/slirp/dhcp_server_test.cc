// tests/slirp/dhcp_server_test.cc: DhcpServer against hand-built client frames.
// Each test builds real Ethernet/IPv4/UDP/BOOTP frames as a guest would send them, hands them to
// the server in an exactly sized heap buffer (so ASan catches any read past the end), and decodes
// the reply with an independent decoder below: Ethernet addresses, the IPv4 and UDP checksums,
// the BOOTP fields and every option. The clock is injected (`now`).
#include "slirp/dhcp_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace qswitch::slirp {
namespace {

using Bytes = std::vector<uint8_t>;

in_addr ip(const char* text) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, text, &a), 1) << text;
  return a;
}
std::string text(in_addr a) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}
uint32_t host(in_addr a) { return ntohl(a.s_addr); }
sw::MacAddress guest_mac(int n) {
  return sw::MacAddress{
      {0x52, 0x54, 0x00, 0x12, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)}};
}
const sw::MacAddress kServerMac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
const sw::MacAddress kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

DhcpConfig test_config() {
  DhcpConfig c;
  c.server_mac = kServerMac;
  c.server = ip("10.0.2.2");
  c.netmask = ip("255.255.255.0");
  c.dns = ip("10.0.2.3");
  c.pool_first = ip("10.0.2.15");
  c.pool_last = ip("10.0.2.254");
  c.max_leases_per_port = 0;  // most tests are about the pool; the per-port cap has its own
  return c;
}

void put16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, static_cast<uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += get16(p + i);
  if (n % 2) sum += uint32_t{p[n - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// A client message as a guest's DHCP client sends it.
struct ClientMessage {
  uint8_t type = 1;
  sw::MacAddress mac = guest_mac(1);
  uint32_t xid = 0x1234abcd;
  bool broadcast = false;
  in_addr ciaddr{};
  std::optional<in_addr> requested{};
  std::optional<in_addr> server_id{};
  std::optional<uint16_t> max_size{};
  Bytes extra_options{};  // raw bytes after the others
  bool end_option = true;
};

Bytes build(const ClientMessage& m) {
  Bytes opt = {53, 1, m.type};
  auto add_addr = [&](uint8_t code, in_addr a) {
    opt.insert(opt.end(), {code, 4});
    const uint32_t v = host(a);
    for (int s = 24; s >= 0; s -= 8) opt.push_back(static_cast<uint8_t>(v >> s));
  };
  if (m.requested) add_addr(50, *m.requested);
  if (m.server_id) add_addr(54, *m.server_id);
  if (m.max_size) {
    opt.insert(opt.end(),
               {57, 2, static_cast<uint8_t>(*m.max_size >> 8), static_cast<uint8_t>(*m.max_size)});
  }
  opt.insert(opt.end(), {55, 4, 1, 3, 6, 15});  // parameter request list, ignored
  opt.insert(opt.end(), m.extra_options.begin(), m.extra_options.end());
  if (m.end_option) opt.push_back(255);

  const size_t bootp = 240 + opt.size();
  Bytes f(14 + 20 + 8 + bootp, 0);
  std::memset(f.data(), 0xff, 6);
  std::memcpy(f.data() + 6, m.mac.bytes.data(), 6);
  put16(f, 12, 0x0800);
  f[14] = 0x45;
  put16(f, 16, static_cast<uint16_t>(20 + 8 + bootp));
  f[22] = 64;
  f[23] = 17;
  put32(f, 26, host(m.ciaddr));
  put32(f, 30, m.ciaddr.s_addr != 0 ? host(ip("10.0.2.2")) : 0xffffffff);
  put16(f, 24, checksum(f.data() + 14, 20));
  put16(f, 34, 68);
  put16(f, 36, 67);
  put16(f, 38, static_cast<uint16_t>(8 + bootp));  // UDP checksum 0: none
  const size_t b = 42;
  f[b] = 1;
  f[b + 1] = 1;
  f[b + 2] = 6;
  put32(f, b + 4, m.xid);
  put16(f, b + 10, m.broadcast ? 0x8000 : 0);
  put32(f, b + 12, host(m.ciaddr));
  std::memcpy(f.data() + b + 28, m.mac.bytes.data(), 6);
  f[b + 236] = 99;
  f[b + 237] = 130;
  f[b + 238] = 83;
  f[b + 239] = 99;
  std::memcpy(f.data() + b + 240, opt.data(), opt.size());
  return f;
}

// The reply, decoded independently of the server's code.
struct Reply {
  sw::MacAddress eth_dst, eth_src;
  in_addr ip_src{}, ip_dst{};
  size_t ip_total = 0;
  uint32_t xid = 0;
  uint16_t flags = 0;
  in_addr ciaddr{}, yiaddr{}, siaddr{};
  sw::MacAddress chaddr;
  std::string file;
  std::map<uint8_t, Bytes> options;  // repeated options concatenated (RFC 3396)
  uint8_t type() const { return options.count(53) ? options.at(53).at(0) : 0; }
  in_addr addr_option(uint8_t code) const {
    in_addr a{};
    if (options.count(code) && options.at(code).size() == 4) {
      std::memcpy(&a.s_addr, options.at(code).data(), 4);
    }
    return a;
  }
};

uint8_t type_of(const std::optional<Reply>& r) { return r ? r->type() : 0; }

// Empty and `why` set when the frame is not a well-formed DHCP reply.
std::optional<Reply> decode(const uint8_t* f, size_t n, std::string& why) {
  auto fail = [&](const char* reason) {
    why = reason;
    return std::optional<Reply>{};
  };
  if (n < 14 + 20 + 8 + 240) return fail("shorter than the headers");
  if (get16(f + 12) != 0x0800) return fail("not IPv4");
  const uint8_t* ipp = f + 14;
  if (ipp[0] != 0x45) return fail("IPv4 version/ihl");
  Reply r;
  r.ip_total = get16(ipp + 2);
  if (r.ip_total != n - 14) return fail("IPv4 total length != frame");
  if (ipp[9] != 17) return fail("not UDP");
  if ((get16(ipp + 6) & 0x3fff) != 0) return fail("fragmented");
  if (checksum(ipp, 20) != 0) return fail("bad IPv4 header checksum");
  const uint8_t* udp = ipp + 20;
  if (get16(udp) != 67 || get16(udp + 2) != 68) return fail("ports not 67 -> 68");
  const size_t udp_len = get16(udp + 4);
  if (udp_len != r.ip_total - 20) return fail("UDP length");
  if (get16(udp + 6) != 0) {
    const uint32_t pseudo = (get32(ipp + 12) >> 16) + (get32(ipp + 12) & 0xffff) +
                            (get32(ipp + 16) >> 16) + (get32(ipp + 16) & 0xffff) + 17 +
                            static_cast<uint32_t>(udp_len);
    if (checksum(udp, udp_len, pseudo) != 0) return fail("bad UDP checksum");
  }
  const uint8_t* b = udp + 8;
  const size_t blen = udp_len - 8;
  if (blen < 300) return fail("BOOTP message under 300 bytes");
  if (b[0] != 2 || b[1] != 1 || b[2] != 6) return fail("op/htype/hlen");
  if (get32(b + 236) != 0x63825363) return fail("magic cookie");
  r.eth_dst = sw::MacAddress::from_wire(f);
  r.eth_src = sw::MacAddress::from_wire(f + 6);
  std::memcpy(&r.ip_src.s_addr, ipp + 12, 4);
  std::memcpy(&r.ip_dst.s_addr, ipp + 16, 4);
  r.xid = get32(b + 4);
  r.flags = get16(b + 10);
  std::memcpy(&r.ciaddr.s_addr, b + 12, 4);
  std::memcpy(&r.yiaddr.s_addr, b + 16, 4);
  std::memcpy(&r.siaddr.s_addr, b + 20, 4);
  r.chaddr = sw::MacAddress::from_wire(b + 28);
  r.file.assign(reinterpret_cast<const char*>(b + 108),
                strnlen(reinterpret_cast<const char*>(b + 108), 128));
  bool ended = false;
  for (size_t i = 240; i < blen;) {
    if (b[i] == 0) {
      ++i;
      continue;
    }
    if (b[i] == 255) {
      ended = true;
      break;
    }
    if (i + 2 > blen || i + 2 + b[i + 1] > blen) return fail("option runs past the end");
    Bytes& v = r.options[b[i]];
    v.insert(v.end(), b + i + 2, b + i + 2 + b[i + 1]);
    i += 2 + b[i + 1];
  }
  if (!ended) return fail("no end option");
  if (r.type() == 0) return fail("no message type");
  return r;
}

// RFC 1035 names with compression pointers, as in option 119.
std::vector<std::string> decode_names(const Bytes& v) {
  std::vector<std::string> names;
  for (size_t i = 0; i < v.size();) {
    std::string name;
    size_t at = i;
    bool jumped = false;
    for (int hops = 0; hops < 64 && at < v.size(); ++hops) {
      const uint8_t len = v[at];
      if (len == 0) {
        if (!jumped) i = at + 1;
        break;
      }
      if ((len & 0xc0) == 0xc0) {
        if (at + 1 >= v.size()) return {"<bad pointer>"};
        if (!jumped) i = at + 2;
        jumped = true;
        at = ((len & 0x3f) << 8) | v[at + 1];
        continue;
      }
      if (at + 1 + len > v.size()) return {"<bad label>"};
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(&v[at + 1]), len);
      at += 1 + len;
    }
    names.push_back(name);
  }
  return names;
}

class DhcpServerTest : public ::testing::Test {
 protected:
  explicit DhcpServerTest(const DhcpConfig& config = test_config()) { server_.emplace(config); }
  void reconfigure(const DhcpConfig& config) { server_.emplace(config); }

  // The server's reply (nullopt when there is none); fails the test if the reply is malformed.
  std::optional<Reply> send(const Bytes& frame, size_t capacity = 1500) {
    std::unique_ptr<uint8_t[]> in(new uint8_t[frame.size()]);  // exactly sized for ASan
    if (!frame.empty()) std::memcpy(in.get(), frame.data(), frame.size());
    std::unique_ptr<uint8_t[]> out(new uint8_t[capacity]);
    const size_t n = server_->handle(in.get(), frame.size(), now_, out.get(), capacity, port_);
    if (n == 0) return std::nullopt;
    EXPECT_LE(n, capacity);
    std::string why;
    std::optional<Reply> r = decode(out.get(), n, why);
    EXPECT_TRUE(r.has_value()) << "malformed reply: " << why;
    return r;
  }
  std::optional<Reply> discover(const sw::MacAddress& mac, uint32_t xid = 1) {
    ClientMessage m;
    m.type = 1;
    m.mac = mac;
    m.xid = xid;
    return send(build(m));
  }
  std::optional<Reply> select(const sw::MacAddress& mac, in_addr addr, uint32_t xid = 1) {
    ClientMessage m;
    m.type = 3;
    m.mac = mac;
    m.xid = xid;
    m.requested = addr;
    m.server_id = ip("10.0.2.2");
    return send(build(m));
  }
  // DISCOVER then REQUEST; the bound address, or 0.0.0.0 when either got no ACK.
  in_addr lease(const sw::MacAddress& mac) {
    const std::optional<Reply> offer = discover(mac);
    if (!offer || offer->type() != 2) return in_addr{};
    const std::optional<Reply> ack = select(mac, offer->yiaddr);
    if (!ack || ack->type() != 5) return in_addr{};
    return ack->yiaddr;
  }

  // Messages from now on come in on switch port `id`, whose never-reused key is `key`.
  void on_port(uint64_t key, sw::PortId id) { port_ = DhcpPort{key, id}; }
  std::optional<Reply> renew(const sw::MacAddress& mac, in_addr addr) {
    return send(build(ClientMessage{.type = 3, .mac = mac, .ciaddr = addr}));
  }
  // INIT-REBOOT: option 50, no server id (a guest that rebooted, RFC 2131 section 4.3.2).
  std::optional<Reply> init_reboot(const sw::MacAddress& mac, in_addr addr) {
    return send(build(ClientMessage{.type = 3, .mac = mac, .requested = addr}));
  }
  void release(const sw::MacAddress& mac, in_addr addr) {
    EXPECT_FALSE(send(build(ClientMessage{
                          .type = 7, .mac = mac, .ciaddr = addr, .server_id = ip("10.0.2.2")}))
                     .has_value());
  }
  void decline(const sw::MacAddress& mac, in_addr addr) {
    EXPECT_FALSE(send(build(ClientMessage{
                          .type = 4, .mac = mac, .requested = addr, .server_id = ip("10.0.2.2")}))
                     .has_value());
  }
  // The lease of `mac` as leases() lists it.
  std::optional<DhcpServer::Lease> lease_of(const sw::MacAddress& mac) const {
    for (const DhcpServer::Lease& l : server_->leases()) {
      if (l.mac == mac) return l;
    }
    return std::nullopt;
  }

  std::optional<DhcpServer> server_;
  int64_t now_ = 1000;
  DhcpPort port_{1, 1};
};

// How many addresses leases() shows port `key` holding at `now`: offered or bound, not expired,
// not pinned. What the cap bounds.
size_t held_by(const DhcpServer& server, uint64_t key, int64_t now) {
  size_t n = 0;
  for (const DhcpServer::Lease& l : server.leases()) {
    const bool live =
        l.state == DhcpServer::LeaseState::offered || l.state == DhcpServer::LeaseState::bound;
    if (l.held && l.port.key == key && live && l.expires_s > now && !l.pinned) ++n;
  }
  return n;
}

DhcpConfig capped(uint32_t max_leases_per_port) {
  DhcpConfig c = test_config();
  c.max_leases_per_port = max_leases_per_port;
  return c;
}

TEST_F(DhcpServerTest, FirstClientGetsDhcpStartAndSecondMacGetsTheNextAddress) {
  EXPECT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
}

TEST_F(DhcpServerTest, OfferCarriesTheAddressTheRequiredOptionsAndValidHeaders) {
  const std::optional<Reply> r = discover(guest_mac(7), 0xdeadbeef);
  ASSERT_TRUE(r.has_value());           // decode() checked both checksums, lengths and ports
  EXPECT_EQ(r->eth_dst, guest_mac(7));  // no broadcast flag, no ciaddr: unicast to chaddr
  EXPECT_EQ(r->eth_src, kServerMac);
  EXPECT_EQ(text(r->ip_src), "10.0.2.2");
  EXPECT_EQ(text(r->ip_dst), "10.0.2.15");
  EXPECT_EQ(r->xid, 0xdeadbeefu);
  EXPECT_EQ(r->chaddr, guest_mac(7));
  EXPECT_EQ(text(r->yiaddr), "10.0.2.15");
  EXPECT_EQ(text(r->ciaddr), "0.0.0.0");
  EXPECT_EQ(r->type(), 2);  // DHCPOFFER
  EXPECT_EQ(text(r->addr_option(54)), "10.0.2.2");
  ASSERT_EQ(r->options.count(51), 1u);
  EXPECT_EQ(get32(r->options.at(51).data()), 86400u);
  EXPECT_EQ(text(r->addr_option(1)), "255.255.255.0");
  EXPECT_EQ(text(r->addr_option(3)), "10.0.2.2");
  EXPECT_EQ(text(r->addr_option(6)), "10.0.2.3");
  for (uint8_t absent : {12, 15, 26, 66, 67, 119})
    EXPECT_EQ(r->options.count(absent), 0u) << int{absent};
  EXPECT_LE(r->ip_total, 576u);
  EXPECT_EQ(server_->counters().discover, 1u);
  EXPECT_EQ(server_->counters().offer, 1u);
}

TEST_F(DhcpServerTest, ClientThatSetsTheBroadcastFlagGetsABroadcastReply) {
  ClientMessage m;
  m.broadcast = true;
  const std::optional<Reply> r = send(build(m));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->eth_dst, kBroadcastMac);
  EXPECT_EQ(text(r->ip_dst), "255.255.255.255");
  EXPECT_EQ(r->flags, 0x8000);
  EXPECT_EQ(text(r->yiaddr), "10.0.2.15");
}

TEST_F(DhcpServerTest, RequestForTheOfferedAddressIsAcked) {
  const std::optional<Reply> offer = discover(guest_mac(1), 5);
  ASSERT_TRUE(offer.has_value());
  const std::optional<Reply> ack = select(guest_mac(1), offer->yiaddr, 5);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->type(), 5);  // DHCPACK
  EXPECT_EQ(text(ack->yiaddr), "10.0.2.15");
  EXPECT_EQ(ack->eth_dst, guest_mac(1));
  EXPECT_EQ(text(ack->ip_dst), "10.0.2.15");
  EXPECT_EQ(get32(ack->options.at(51).data()), 86400u);
  EXPECT_EQ(text(ack->addr_option(3)), "10.0.2.2");
  const std::vector<DhcpServer::Lease> leases = server_->leases();
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].mac, guest_mac(1));
  EXPECT_EQ(text(leases[0].addr), "10.0.2.15");
  EXPECT_EQ(leases[0].state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(leases[0].expires_s, now_ + 86400);
  EXPECT_EQ(server_->counters().request, 1u);
  EXPECT_EQ(server_->counters().ack, 1u);
  EXPECT_EQ(server_->counters().nak, 0u);
}

TEST_F(DhcpServerTest, SameMacAskingAgainKeepsItsAddress) {
  EXPECT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  const std::optional<Reply> again = discover(guest_mac(1), 99);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(text(again->yiaddr), "10.0.2.15");
  EXPECT_EQ(again->xid, 99u);
}

TEST_F(DhcpServerTest, GuestThatRebootsGetsTheSameAddressBack) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  now_ += 3600;
  // A reboot: INIT-REBOOT (REQUEST with option 50 and no server id) with a new xid ...
  ClientMessage reboot;
  reboot.type = 3;
  reboot.mac = guest_mac(1);
  reboot.xid = 0x5151;
  reboot.requested = ip("10.0.2.15");
  const std::optional<Reply> ack = send(build(reboot));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->type(), 5);
  EXPECT_EQ(text(ack->yiaddr), "10.0.2.15");
  // ... or a client that remembers nothing and starts over with DISCOVER.
  now_ += 200000;  // even after the lease ran out
  EXPECT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(text(lease(guest_mac(3))), "10.0.2.17");
}

TEST_F(DhcpServerTest, TwoHundredMacsGetTwoHundredDistinctAddressesInThePool) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const in_addr a = lease(guest_mac(i + 1));
    ASSERT_NE(a.s_addr, 0u) << "MAC " << i + 1 << " got no lease";
    EXPECT_GE(host(a), host(ip("10.0.2.15")));
    EXPECT_LE(host(a), host(ip("10.0.2.254")));
    EXPECT_TRUE(seen.insert(host(a)).second) << text(a) << " given twice";
  }
  EXPECT_EQ(seen.size(), 200u);
  EXPECT_EQ(server_->leases().size(), 200u);
  EXPECT_EQ(server_->counters().pool_exhausted, 0u);
}

TEST_F(DhcpServerTest, MacAfterThe240thGetsNothingWhenThePoolIsExhausted) {
  std::set<uint32_t> seen;
  for (int i = 0; i < 240; ++i) {
    const in_addr a = lease(guest_mac(i + 1));
    ASSERT_NE(a.s_addr, 0u) << "MAC " << i + 1;
    seen.insert(host(a));
  }
  EXPECT_EQ(seen.size(), 240u);
  EXPECT_EQ(*seen.begin(), host(ip("10.0.2.15")));
  EXPECT_EQ(*seen.rbegin(), host(ip("10.0.2.254")));
  EXPECT_FALSE(discover(guest_mac(241)).has_value());
  EXPECT_EQ(server_->counters().pool_exhausted, 1u);
  EXPECT_FALSE(discover(guest_mac(242)).has_value());
  EXPECT_EQ(server_->counters().pool_exhausted, 2u);
  // Guests that have an address keep being served.
  const std::optional<Reply> r = discover(guest_mac(100));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(text(r->yiaddr), "10.0.2.114");
}

TEST_F(DhcpServerTest, UnusedOfferIsReclaimedOnlyAfterItsHoldWhenThePoolIsExhausted) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.16");
  DhcpServer small(c);
  uint8_t out[1500];
  const Bytes d1 = build(ClientMessage{.type = 1, .mac = guest_mac(1)});
  const Bytes d2 = build(ClientMessage{.type = 1, .mac = guest_mac(2)});
  const Bytes d3 = build(ClientMessage{.type = 1, .mac = guest_mac(3)});
  ASSERT_NE(small.handle(d1.data(), d1.size(), 0, out, sizeof out), 0u);
  ASSERT_NE(small.handle(d2.data(), d2.size(), 0, out, sizeof out), 0u);
  EXPECT_EQ(small.handle(d3.data(), d3.size(), 59, out, sizeof out), 0u);  // offers still held
  const size_t n = small.handle(d3.data(), d3.size(), 61, out, sizeof out);
  std::string why;
  const std::optional<Reply> r = decode(out, n, why);
  ASSERT_TRUE(r.has_value()) << why;
  EXPECT_EQ(text(r->yiaddr), "10.0.2.15");  // both free since 60: the lower one
}

TEST_F(DhcpServerTest, PinnedLeaseIsHonouredAndNeverGivenToAnotherMac) {
  DhcpConfig c = test_config();
  const sw::MacAddress pinned_mac{{0x02, 0, 0, 0, 0, 0x99}};
  c.pinned.push_back(Lease{pinned_mac, ip("10.0.2.20"), ""});
  c.pinned.push_back(Lease{guest_mac(500), ip("10.0.2.9"), ""});  // outside the pool
  reconfigure(c);

  std::set<uint32_t> seen;
  for (int i = 0; i < 239; ++i) {  // everybody else: 240 addresses minus the pinned one
    const in_addr a = lease(guest_mac(i + 1));
    ASSERT_NE(a.s_addr, 0u) << "MAC " << i + 1;
    EXPECT_NE(text(a), "10.0.2.20");
    seen.insert(host(a));
  }
  EXPECT_EQ(seen.size(), 239u);
  EXPECT_FALSE(discover(guest_mac(240)).has_value());
  EXPECT_EQ(server_->counters().pool_exhausted, 1u);
  EXPECT_EQ(text(lease(pinned_mac)), "10.0.2.20");
  EXPECT_EQ(text(lease(guest_mac(500))), "10.0.2.9");
  // Released, a pinned address still goes to nobody else.
  ClientMessage release{.type = 7, .mac = pinned_mac, .ciaddr = ip("10.0.2.20")};
  EXPECT_FALSE(send(build(release)).has_value());
  EXPECT_FALSE(discover(guest_mac(241)).has_value());
  EXPECT_EQ(text(lease(pinned_mac)), "10.0.2.20");
  // And another MAC asking for it by name is refused.
  EXPECT_EQ(type_of(select(guest_mac(1), ip("10.0.2.20"))), 6);
}

TEST_F(DhcpServerTest, RequestForAnotherMacsAddressIsNakkedByBroadcast) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  const std::optional<Reply> nak = select(guest_mac(2), ip("10.0.2.15"));
  ASSERT_TRUE(nak.has_value());
  EXPECT_EQ(nak->type(), 6);  // DHCPNAK
  EXPECT_EQ(text(nak->yiaddr), "0.0.0.0");
  EXPECT_EQ(nak->eth_dst, kBroadcastMac);  // RFC 2131 section 4.1
  EXPECT_EQ(text(nak->ip_dst), "255.255.255.255");
  EXPECT_EQ(text(nak->addr_option(54)), "10.0.2.2");
  EXPECT_EQ(nak->options.count(51), 0u);
  // Init-reboot into a wrong network and a renewal of someone else's address: NAK too.
  ClientMessage reboot{.type = 3, .mac = guest_mac(3), .requested = ip("192.168.1.7")};
  EXPECT_EQ(type_of(send(build(reboot))), 6);
  ClientMessage renew{.type = 3, .mac = guest_mac(2), .ciaddr = ip("10.0.2.15")};
  EXPECT_EQ(type_of(send(build(renew))), 6);
  EXPECT_EQ(server_->counters().nak, 3u);
  // The owner still has it.
  EXPECT_EQ(type_of(select(guest_mac(1), ip("10.0.2.15"))), 5);
}

TEST_F(DhcpServerTest, RequestNamingAnotherServerGetsNoReplyAndWithdrawsTheOffer) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.15");  // a pool of one
  reconfigure(c);
  ASSERT_TRUE(discover(guest_mac(1)).has_value());
  EXPECT_FALSE(discover(guest_mac(2)).has_value());
  ClientMessage other{.type = 3,
                      .mac = guest_mac(1),
                      .requested = ip("192.168.0.9"),
                      .server_id = ip("192.168.0.1")};
  EXPECT_FALSE(send(build(other)).has_value());
  EXPECT_EQ(server_->counters().request, 1u);
  EXPECT_EQ(server_->counters().nak, 0u);
  const std::optional<Reply> r = discover(guest_mac(2));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(text(r->yiaddr), "10.0.2.15");
}

TEST_F(DhcpServerTest, ReleasedAddressGoesToAnotherMacOnlyWhenNoNeverUsedAddressIsLeft) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.17");  // .15 .16 .17
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ClientMessage release{
      .type = 7, .mac = guest_mac(1), .ciaddr = ip("10.0.2.15"), .server_id = ip("10.0.2.2")};
  EXPECT_FALSE(send(build(release)).has_value());
  EXPECT_EQ(server_->counters().release, 1u);
  EXPECT_EQ(server_->leases().at(0).state, DhcpServer::LeaseState::released);
  EXPECT_EQ(text(lease(guest_mac(2))), "10.0.2.16");  // not the released .15
  EXPECT_EQ(text(lease(guest_mac(3))), "10.0.2.17");
  now_ += 10;
  EXPECT_EQ(text(lease(guest_mac(4))), "10.0.2.15");  // now the released one
  EXPECT_FALSE(discover(guest_mac(1)).has_value());   // and its old owner has lost it
  EXPECT_EQ(server_->counters().pool_exhausted, 1u);
}

TEST_F(DhcpServerTest, SameMacAfterReleaseGetsItsAddressBack) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ClientMessage release{.type = 7, .mac = guest_mac(1), .ciaddr = ip("10.0.2.15")};
  EXPECT_FALSE(send(build(release)).has_value());
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  EXPECT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
}

TEST_F(DhcpServerTest, ReleaseOfAnAddressThatIsNotTheSendersChangesNothing) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ClientMessage release{.type = 7, .mac = guest_mac(2), .ciaddr = ip("10.0.2.15")};
  EXPECT_FALSE(send(build(release)).has_value());
  EXPECT_EQ(server_->leases().at(0).state, DhcpServer::LeaseState::bound);
}

// DHCP starvation: one port inventing MACs gets at most max_leases_per_port addresses; other
// ports, and the port's own addresses, are still served.
TEST_F(DhcpServerTest, PortGetsNoMoreAddressesThanItsCap) {
  reconfigure(capped(8));
  on_port(1, 3);
  for (int i = 1; i <= 8; ++i) {
    EXPECT_EQ(text(lease(guest_mac(i))), "10.0.2." + std::to_string(14 + i)) << "MAC " << i;
  }
  for (int i = 9; i <= 50; ++i) {
    EXPECT_FALSE(discover(guest_mac(i)).has_value()) << "an OFFER beyond the cap, MAC " << i;
  }
  EXPECT_EQ(server_->counters().over_port_cap, 42u);
  EXPECT_EQ(server_->counters().offer, 8u);
  EXPECT_EQ(server_->counters().pool_exhausted, 0u);
  EXPECT_EQ(held_by(*server_, 1, now_), 8u);
  EXPECT_EQ(server_->leases().size(), 8u) << "a refused DISCOVER must not reserve an address";

  // The port's own MACs are still served: asking again, renewing.
  const std::optional<Reply> again = discover(guest_mac(3));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(text(again->yiaddr), "10.0.2.17");
  now_ += 43200;
  EXPECT_EQ(type_of(renew(guest_mac(3), ip("10.0.2.17"))), 5);

  // Another port is not affected, and gets the next address: nothing was starved.
  on_port(2, 4);
  EXPECT_EQ(text(lease(guest_mac(9))), "10.0.2.23");
  const std::optional<DhcpServer::Lease> l9 = lease_of(guest_mac(9));
  ASSERT_TRUE(l9.has_value());
  EXPECT_TRUE(l9->held);
  EXPECT_EQ(l9->port.key, 2u);
  EXPECT_EQ(l9->port.id, 4u);
  const std::optional<DhcpServer::Lease> l1 = lease_of(guest_mac(1));
  ASSERT_TRUE(l1.has_value());
  EXPECT_EQ(l1->port.key, 1u);
  EXPECT_EQ(l1->port.id, 3u);

  // 0: no cap.
  reconfigure(capped(0));
  on_port(1, 3);
  for (int i = 1; i <= 50; ++i) EXPECT_NE(lease(guest_mac(i)).s_addr, 0u) << "MAC " << i;
  EXPECT_EQ(server_->counters().over_port_cap, 0u);
}

TEST_F(DhcpServerTest, RequestBeyondTheCapIsNakkedAndALeaseMovesOnlyWithinTheCap) {
  reconfigure(capped(2));
  on_port(1, 1);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  on_port(2, 2);
  ASSERT_EQ(text(lease(guest_mac(3))), "10.0.2.17");
  // MAC 3 shows up on port 1 (a spoofer, or a guest that moved) and asks for its address: port 1
  // holds two already.
  on_port(1, 1);
  const std::optional<Reply> nak = init_reboot(guest_mac(3), ip("10.0.2.17"));
  EXPECT_EQ(type_of(nak), 6);
  EXPECT_EQ(server_->counters().over_port_cap, 1u);
  ASSERT_TRUE(lease_of(guest_mac(3)).has_value());
  EXPECT_EQ(lease_of(guest_mac(3))->state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(lease_of(guest_mac(3))->port.key, 2u) << "a refused REQUEST must not move the lease";
  // Port 1 gives one back: now the lease may move to it.
  release(guest_mac(1), ip("10.0.2.15"));
  EXPECT_EQ(type_of(init_reboot(guest_mac(3), ip("10.0.2.17"))), 5);
  EXPECT_EQ(lease_of(guest_mac(3))->port.key, 1u);
  EXPECT_EQ(held_by(*server_, 1, now_), 2u);
  // And port 2, which no longer holds it, has room for two again.
  on_port(2, 2);
  EXPECT_NE(lease(guest_mac(4)).s_addr, 0u);
  EXPECT_NE(lease(guest_mac(5)).s_addr, 0u);
  EXPECT_FALSE(discover(guest_mac(6)).has_value());
}

TEST_F(DhcpServerTest, OffersThatRanOutCannotBeRequestedPastTheCap) {
  reconfigure(capped(2));
  const std::optional<Reply> o1 = discover(guest_mac(1));
  const std::optional<Reply> o2 = discover(guest_mac(2));
  ASSERT_TRUE(o1.has_value() && o2.has_value());
  EXPECT_FALSE(discover(guest_mac(3)).has_value());
  now_ += 61;  // both offers ran out: they no longer count
  ASSERT_EQ(text(lease(guest_mac(3))), "10.0.2.17");
  ASSERT_EQ(text(lease(guest_mac(4))), "10.0.2.18");
  // The old offers are still tied to their MACs, but requesting them now would be a third and
  // fourth address.
  EXPECT_EQ(type_of(select(guest_mac(1), o1->yiaddr)), 6);
  EXPECT_EQ(type_of(select(guest_mac(2), o2->yiaddr)), 6);
  EXPECT_EQ(server_->counters().over_port_cap, 3u);
  EXPECT_EQ(held_by(*server_, 1, now_), 2u);
  // Leases that ended do not count either.
  now_ += 86400;
  EXPECT_EQ(type_of(select(guest_mac(1), o1->yiaddr)), 5);
  EXPECT_EQ(type_of(select(guest_mac(2), o2->yiaddr)), 5);
}

TEST_F(DhcpServerTest, PinnedLeasesAreNeitherCountedNorRefused) {
  DhcpConfig c = capped(1);
  const sw::MacAddress pinned_mac{{0x02, 0, 0, 0, 0, 0x99}};
  c.pinned.push_back(Lease{pinned_mac, ip("10.0.2.50"), ""});
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(text(lease(pinned_mac)), "10.0.2.50") << "a pinned MAC on a port at its cap";
  EXPECT_EQ(lease(guest_mac(2)).s_addr, 0u);
  EXPECT_EQ(held_by(*server_, 1, now_), 1u);
  // The pinned lease is still held by its port: another port cannot release it.
  on_port(2, 2);
  release(pinned_mac, ip("10.0.2.50"));
  EXPECT_EQ(lease_of(pinned_mac)->state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(server_->counters().not_owner, 1u);
}

TEST_F(DhcpServerTest, ReleaseOrDeclineFromAPortThatDoesNotHoldTheLeaseChangesNothing) {
  on_port(1, 1);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_TRUE(discover(guest_mac(2)).has_value());  // .16 offered to port 1
  on_port(2, 2);
  release(guest_mac(1), ip("10.0.2.15"));
  decline(guest_mac(1), ip("10.0.2.15"));
  // A REQUEST naming another server withdraws an offer: not someone else's.
  EXPECT_FALSE(send(build(ClientMessage{.type = 3,
                                        .mac = guest_mac(2),
                                        .requested = ip("192.168.0.9"),
                                        .server_id = ip("192.168.0.1")}))
                   .has_value());
  EXPECT_EQ(server_->counters().release, 1u);
  EXPECT_EQ(server_->counters().decline, 1u);
  EXPECT_EQ(server_->counters().not_owner, 3u);
  ASSERT_TRUE(lease_of(guest_mac(1)).has_value());
  EXPECT_EQ(text(lease_of(guest_mac(1))->addr), "10.0.2.15");
  EXPECT_EQ(lease_of(guest_mac(1))->state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(lease_of(guest_mac(2))->state, DhcpServer::LeaseState::offered);
  // The holder still renews it, and still can release it.
  on_port(1, 1);
  EXPECT_EQ(type_of(renew(guest_mac(1), ip("10.0.2.15"))), 5);
  EXPECT_EQ(type_of(select(guest_mac(2), ip("10.0.2.16"))), 5);
  release(guest_mac(1), ip("10.0.2.15"));
  EXPECT_EQ(lease_of(guest_mac(1))->state, DhcpServer::LeaseState::released);
  decline(guest_mac(2), ip("10.0.2.16"));
  EXPECT_FALSE(lease_of(guest_mac(2)).has_value()) << "declined: no MAC owns it";
  EXPECT_EQ(server_->counters().not_owner, 3u);
}

TEST_F(DhcpServerTest, NewPortWithAReusedIdStartsWithNoneOfTheDeadPortsLeases) {
  reconfigure(capped(2));
  on_port(1, 5);  // port 5, first life
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  EXPECT_FALSE(discover(guest_mac(3)).has_value());
  // Port 5 closes; a new port gets id 5 again (ids are reused), with another key.
  on_port(2, 5);
  EXPECT_EQ(text(lease(guest_mac(3))), "10.0.2.17");
  EXPECT_EQ(text(lease(guest_mac(4))), "10.0.2.18");
  // The dead port's leases stay bound: its guest reboots onto yet another port and keeps its
  // address, which moves to that port.
  EXPECT_EQ(lease_of(guest_mac(1))->state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(lease_of(guest_mac(1))->port.key, 1u);
  on_port(3, 6);
  const std::optional<Reply> ack = init_reboot(guest_mac(1), ip("10.0.2.15"));
  EXPECT_EQ(type_of(ack), 5);
  EXPECT_EQ(lease_of(guest_mac(1))->port.key, 3u);
  EXPECT_EQ(lease_of(guest_mac(1))->port.id, 6u);
  // ... and only that port may release it now.
  on_port(1, 5);
  release(guest_mac(1), ip("10.0.2.15"));
  EXPECT_EQ(lease_of(guest_mac(1))->state, DhcpServer::LeaseState::bound);
  EXPECT_EQ(server_->counters().not_owner, 1u);
}

TEST_F(DhcpServerTest, DeclinedAddressIsNotHandedOutUntilItsHoldEnds) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.16");
  c.decline_hold_s = 600;
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ClientMessage decline{
      .type = 4, .mac = guest_mac(1), .requested = ip("10.0.2.15"), .server_id = ip("10.0.2.2")};
  EXPECT_FALSE(send(build(decline)).has_value());
  EXPECT_EQ(server_->counters().decline, 1u);
  EXPECT_TRUE(server_->leases().empty());
  EXPECT_EQ(text(lease(guest_mac(1))), "10.0.2.16");  // the decliner gets another address
  EXPECT_FALSE(discover(guest_mac(2)).has_value());   // .15 is parked
  now_ += 600;
  EXPECT_EQ(text(lease(guest_mac(2))), "10.0.2.15");
}

TEST_F(DhcpServerTest, ExpiredLeaseIsReclaimedOnlyWhenThePoolIsExhausted) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.16");
  c.lease_time_s = 100;
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  now_ += 50;
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  EXPECT_FALSE(discover(guest_mac(3)).has_value());
  now_ += 60;  // MAC 1's lease ended 10 s ago, MAC 2's has 40 s left
  EXPECT_EQ(text(lease(guest_mac(3))), "10.0.2.15");
}

TEST_F(DhcpServerTest, RenewingClientIsAckedByUnicastToItsAddress) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  now_ += 43200;
  ClientMessage renew{.type = 3, .mac = guest_mac(1), .ciaddr = ip("10.0.2.15")};
  const std::optional<Reply> ack = send(build(renew));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->type(), 5);
  EXPECT_EQ(text(ack->yiaddr), "10.0.2.15");
  EXPECT_EQ(text(ack->ciaddr), "10.0.2.15");
  EXPECT_EQ(ack->eth_dst, guest_mac(1));
  EXPECT_EQ(text(ack->ip_dst), "10.0.2.15");
  EXPECT_EQ(server_->leases().at(0).expires_s, now_ + 86400);
}

TEST_F(DhcpServerTest, InformIsAckedWithConfigurationButNoAddressOrLeaseTime) {
  ClientMessage inform{.type = 8, .mac = guest_mac(1), .ciaddr = ip("10.0.2.77")};
  const std::optional<Reply> ack = send(build(inform));
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->type(), 5);
  EXPECT_EQ(text(ack->yiaddr), "0.0.0.0");
  EXPECT_EQ(text(ack->ciaddr), "10.0.2.77");
  EXPECT_EQ(text(ack->ip_dst), "10.0.2.77");
  EXPECT_EQ(ack->eth_dst, guest_mac(1));
  EXPECT_EQ(ack->options.count(51), 0u);  // RFC 2131 section 4.3.5
  EXPECT_EQ(text(ack->addr_option(6)), "10.0.2.3");
  EXPECT_EQ(server_->counters().inform, 1u);
  EXPECT_TRUE(server_->leases().empty());
}

TEST_F(DhcpServerTest, MessageTruncatedAtAnyLengthIsDroppedAndCountedMalformed) {
  ClientMessage m;
  m.requested = ip("10.0.2.15");
  const Bytes full = build(m);
  uint64_t ours = 0;
  for (size_t len = 0; len < full.size(); ++len) {
    const Bytes cut(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    // Is it ours? Only once the UDP header is there (14 + 20 + 8 bytes); then it is malformed.
    const bool claimed = DhcpServer::is_dhcp_request(cut.data(), cut.size());
    EXPECT_EQ(claimed, len >= 42) << len;
    if (claimed) ++ours;
    EXPECT_FALSE(send(cut).has_value()) << "reply to a frame cut at " << len;
  }
  EXPECT_EQ(server_->counters().malformed, ours);
  EXPECT_EQ(server_->counters().offer, 0u);
  EXPECT_TRUE(send(full).has_value());  // the whole frame is fine
}

TEST_F(DhcpServerTest, BadCookieHlenOpHtypeAndChaddrMismatchAreMalformed) {
  const Bytes good = build(ClientMessage{});
  auto mutated = [&](size_t at, uint8_t value) {
    Bytes f = good;
    f[at] = value;
    return f;
  };
  const size_t b = 42;
  const std::vector<std::pair<const char*, Bytes>> cases = {
      {"bad magic cookie", mutated(b + 236, 98)},
      {"hlen 7", mutated(b + 2, 7)},
      {"hlen 16", mutated(b + 2, 16)},
      {"op 2 (BOOTREPLY)", mutated(b, 2)},
      {"htype 6 (IEEE 802)", mutated(b + 1, 6)},
      {"chaddr differs from the Ethernet source", mutated(b + 33, 0x77)},
      {"Ethernet source differs from chaddr", mutated(11, 0x77)},
  };
  uint64_t expected = 0;
  for (const auto& [what, frame] : cases) {
    EXPECT_FALSE(send(frame).has_value()) << what;
    EXPECT_EQ(server_->counters().malformed, ++expected) << what;
  }
  EXPECT_EQ(server_->counters().discover, 0u);
}

TEST_F(DhcpServerTest, OptionsRunningPastTheEndAreMalformed) {
  // Lengths that run past the message by a lot and by one byte (also for an option the server
  // reads), a code with no length byte, and a bad option 53.
  const std::vector<Bytes> tails = {Bytes{12, 200, 'a', 'b'}, Bytes{12, 3, 'a', 'b'},
                                    Bytes{50, 4, 10, 0, 2}, Bytes{12}, Bytes{53, 2, 1, 1}};
  for (const Bytes& tail : tails) {
    ClientMessage m;
    m.extra_options = tail;
    m.end_option = false;
    EXPECT_FALSE(send(build(m)).has_value()) << int{tail[0]} << " " << tail.size();
  }
  EXPECT_EQ(server_->counters().malformed, 5u);
  // Lengths that disagree: UDP length past the IPv4 total length, IPv4 total past the frame.
  Bytes f = build(ClientMessage{});
  put16(f, 38, static_cast<uint16_t>(f.size() - 34 + 1));
  EXPECT_FALSE(send(f).has_value());
  f = build(ClientMessage{});
  Bytes shorter(f.begin(), f.end() - 1);
  EXPECT_FALSE(send(shorter).has_value());
  EXPECT_EQ(server_->counters().malformed, 7u);
}

TEST_F(DhcpServerTest, PadOptionsAndAMissingEndOptionAreTolerated) {
  ClientMessage m;
  m.extra_options = {0, 0, 0, 52, 1, 3, 0};  // pads and an overload option (ignored)
  m.end_option = false;
  const std::optional<Reply> r = send(build(m));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(text(r->yiaddr), "10.0.2.15");
  // Ethernet padding after the IPv4 datagram is ignored too.
  Bytes padded = build(ClientMessage{.mac = guest_mac(2)});
  padded.resize(padded.size() + 20, 0);
  ASSERT_TRUE(send(padded).has_value());
  EXPECT_EQ(server_->counters().malformed, 0u);
}

TEST_F(DhcpServerTest, BadIpv4HeaderChecksumOrFragmentIsMalformed) {
  Bytes f = build(ClientMessage{});
  f[24] ^= 0x01;
  EXPECT_FALSE(send(f).has_value());
  f = build(ClientMessage{});
  f[20] = 0x20;  // more fragments
  put16(f, 24, 0);
  put16(f, 24, checksum(f.data() + 14, 20));
  EXPECT_FALSE(send(f).has_value());
  EXPECT_EQ(server_->counters().malformed, 2u);
}

TEST_F(DhcpServerTest, FramesThatAreNotDhcpClientMessagesAreNotClaimed) {
  const Bytes good = build(ClientMessage{});
  std::vector<Bytes> others;
  Bytes arp = good;
  put16(arp, 12, 0x0806);
  others.push_back(arp);
  Bytes dns = good;
  put16(dns, 36, 53);
  others.push_back(dns);
  Bytes tcp = good;
  tcp[23] = 6;
  others.push_back(tcp);
  Bytes ipv6 = good;
  ipv6[14] = 0x65;
  others.push_back(ipv6);
  Bytes later_fragment = good;
  put16(later_fragment, 20, 0x0010);
  others.push_back(later_fragment);
  others.push_back(Bytes(good.begin(), good.begin() + 14));
  for (const Bytes& f : others) {
    EXPECT_FALSE(DhcpServer::is_dhcp_request(f.data(), f.size()));
    EXPECT_FALSE(send(f).has_value());
  }
  EXPECT_TRUE(DhcpServer::is_dhcp_request(good.data(), good.size()));
  EXPECT_EQ(server_->counters().malformed, 0u);
  EXPECT_EQ(server_->counters().discover, 0u);
}

DhcpConfig configured() {
  DhcpConfig c = test_config();
  c.mtu = 1400;
  c.hostname = "guest";
  c.domainname = "example.com";
  c.bootfile = "pxelinux.0";
  c.tftp = true;
  c.dnssearch = {"example.com", "corp.example.com.", "other.org"};
  return c;
}

class ConfiguredDhcpServerTest : public DhcpServerTest {
 protected:
  ConfiguredDhcpServerTest() : DhcpServerTest(configured()) {}
};

TEST_F(ConfiguredDhcpServerTest, ConfiguredOptionsAreOffered) {
  const std::optional<Reply> r = discover(guest_mac(1));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->options.count(26), 1u);
  EXPECT_EQ(get16(r->options.at(26).data()), 1400);
  EXPECT_EQ(std::string(r->options.at(12).begin(), r->options.at(12).end()), "guest");
  EXPECT_EQ(std::string(r->options.at(15).begin(), r->options.at(15).end()), "example.com");
  EXPECT_EQ(std::string(r->options.at(67).begin(), r->options.at(67).end()), "pxelinux.0");
  EXPECT_EQ(r->file, "pxelinux.0");
  EXPECT_EQ(std::string(r->options.at(66).begin(), r->options.at(66).end()), "10.0.2.2");
  EXPECT_EQ(text(r->siaddr), "10.0.2.2");
  ASSERT_EQ(r->options.count(119), 1u);
  EXPECT_EQ(decode_names(r->options.at(119)),
            (std::vector<std::string>{"example.com", "corp.example.com", "other.org"}));
  // RFC 1035 compression: "corp.example.com" is "corp" plus a pointer to "example.com".
  EXPECT_EQ(r->options.at(119).size(), 13u + 7u + 11u);
}

DhcpConfig long_search_list() {
  DhcpConfig c = test_config();
  for (int i = 0; i < 12; ++i) {
    c.dnssearch.push_back(std::string(60, static_cast<char>('a' + i)) + ".example");
  }
  return c;
}

class LongSearchListDhcpServerTest : public DhcpServerTest {
 protected:
  LongSearchListDhcpServerTest() : DhcpServerTest(long_search_list()) {}
};

TEST_F(LongSearchListDhcpServerTest, ReplyFitsTheClientsMaximumMessageSize) {
  // Without option 57 the reply stays within 576 bytes: the search list (over 700 bytes) is left
  // out, the required options are not.
  std::optional<Reply> r = discover(guest_mac(1));
  ASSERT_TRUE(r.has_value());
  EXPECT_LE(r->ip_total, 576u);
  EXPECT_EQ(r->options.count(119), 0u);
  EXPECT_EQ(text(r->addr_option(6)), "10.0.2.3");
  EXPECT_EQ(r->options.count(51), 1u);
  // A value under 576 counts as 576.
  ClientMessage small{.mac = guest_mac(2), .max_size = 300};
  r = send(build(small));
  ASSERT_TRUE(r.has_value());
  EXPECT_LE(r->ip_total, 576u);
  // With room, the list is sent, split over several option 119 instances (RFC 3396).
  ClientMessage big{.mac = guest_mac(3), .max_size = 1500};
  r = send(build(big));
  ASSERT_TRUE(r.has_value());
  EXPECT_GT(r->ip_total, 576u);
  EXPECT_LE(r->ip_total, 1500u);
  ASSERT_EQ(r->options.count(119), 1u);
  const std::vector<std::string> names = decode_names(r->options.at(119));
  ASSERT_EQ(names.size(), 12u);
  EXPECT_EQ(names[11], std::string(60, 'l') + ".example");
  // A reply buffer too small for even the minimum message: no reply, nothing written past it.
  EXPECT_FALSE(send(build(ClientMessage{.mac = guest_mac(4)}), 341).has_value());
  EXPECT_TRUE(send(build(ClientMessage{.mac = guest_mac(4)}), 342).has_value());
}

// What the LeaseEvents hear, as "+MAC IP" (bound) and "-MAC IP" (ended).
class LeaseLog : public DhcpServer::LeaseEvents {
 public:
  void bound(const sw::MacAddress& mac, in_addr addr) override {
    lines.push_back("+" + mac.to_string() + " " + text(addr));
  }
  void ended(const sw::MacAddress& mac, in_addr addr) override {
    lines.push_back("-" + mac.to_string() + " " + text(addr));
  }
  void hostname(const sw::MacAddress& mac, std::string_view sent) override {
    names.push_back(mac.to_string() + " " + std::string(sent));
  }
  std::vector<std::string> take_names() { return std::exchange(names, {}); }
  std::vector<std::string> names;
  std::vector<std::string> take() { return std::exchange(lines, {}); }
  std::vector<std::string> lines;
};

class DhcpLeaseEventsTest : public DhcpServerTest {
 protected:
  void SetUp() override { server_->set_lease_events(&log_); }
  void reconfigure(const DhcpConfig& c) {
    DhcpServerTest::reconfigure(c);
    server_->set_lease_events(&log_);
  }
  using Lines = std::vector<std::string>;
  LeaseLog log_;
  const std::string m1_ = guest_mac(1).to_string();
  const std::string m2_ = guest_mac(2).to_string();
};

TEST_F(DhcpLeaseEventsTest, AnAckBindsAndARenewalIsNotANewBinding) {
  ASSERT_TRUE(discover(guest_mac(1)).has_value());
  EXPECT_TRUE(log_.take().empty());  // an offer binds nothing
  EXPECT_EQ(server_->next_expiry_s(), INT64_MAX);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(log_.take(), Lines{"+" + m1_ + " 10.0.2.15"});
  EXPECT_EQ(server_->next_expiry_s(), now_ + 86400);
  now_ += 43200;
  ASSERT_EQ(type_of(renew(guest_mac(1), ip("10.0.2.15"))), 5);
  EXPECT_TRUE(log_.take().empty());
  // An INFORM binds nothing either.
  ClientMessage inform{.type = 8, .mac = guest_mac(2), .ciaddr = ip("10.0.2.77")};
  ASSERT_TRUE(send(build(inform)).has_value());
  EXPECT_TRUE(log_.take().empty());
}

TEST_F(DhcpServerTest, DefaultOptionsHandOutTheDnsDomainAndItsSearchList) {
  reconfigure(DhcpConfig::from(default_slirp_options(), kServerMac));
  const std::optional<Reply> r = discover(guest_mac(1));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->options.count(15), 1u);
  EXPECT_EQ(std::string(r->options.at(15).begin(), r->options.at(15).end()), "qswitch.internal");
  ASSERT_EQ(r->options.count(119), 1u);
  EXPECT_EQ(decode_names(r->options.at(119)), std::vector<std::string>{"qswitch.internal"});
}

// Option 12 bytes: code, length, the name.
Bytes hostname_option(const std::string& name) {
  Bytes b(2 + name.size());
  b[0] = 12;
  b[1] = static_cast<uint8_t>(name.size());
  std::memcpy(b.data() + 2, name.data(), name.size());
  return b;
}

TEST_F(DhcpLeaseEventsTest, AnAckedRequestTellsItsHostnameAndTheLeaseKeepsIt) {
  ClientMessage d{.type = 1, .mac = guest_mac(1), .extra_options = hostname_option("web1")};
  const std::optional<Reply> offer = send(build(d));
  ASSERT_TRUE(offer.has_value());
  EXPECT_TRUE(log_.take_names().empty());  // a DISCOVER names nobody
  ClientMessage r{.type = 3,
                  .mac = guest_mac(1),
                  .requested = offer->yiaddr,
                  .server_id = ip("10.0.2.2"),
                  .extra_options = hostname_option("web1")};
  ASSERT_EQ(type_of(send(build(r))), 5);
  EXPECT_EQ(log_.take_names(), Lines{m1_ + " web1"});
  EXPECT_EQ(log_.take(), Lines{"+" + m1_ + " 10.0.2.15"});
  ASSERT_TRUE(lease_of(guest_mac(1)).has_value());
  EXPECT_EQ(lease_of(guest_mac(1))->hostname, "web1");

  // Rebooted under another name (INIT-REBOOT): the new name is heard, the lease is not new.
  ClientMessage reboot{.type = 3,
                       .mac = guest_mac(1),
                       .requested = ip("10.0.2.15"),
                       .extra_options = hostname_option("web2.corp.example")};
  ASSERT_EQ(type_of(send(build(reboot))), 5);
  EXPECT_EQ(log_.take_names(), Lines{m1_ + " web2.corp.example"});
  EXPECT_TRUE(log_.take().empty());
  EXPECT_EQ(lease_of(guest_mac(1))->hostname, "web2");  // its first label

  // A renewal without option 12: the guest has no name now.
  ASSERT_EQ(type_of(renew(guest_mac(1), ip("10.0.2.15"))), 5);
  EXPECT_EQ(log_.take_names(), Lines{m1_ + " "});
  EXPECT_EQ(lease_of(guest_mac(1))->hostname, "");
}

TEST_F(DhcpLeaseEventsTest, HostnameTrailingNulsAreDroppedAndGarbageIsNotKept) {
  ClientMessage m{.type = 3,
                  .mac = guest_mac(2),
                  .requested = ip("10.0.2.15"),
                  .server_id = ip("10.0.2.2"),
                  .extra_options = hostname_option(std::string("db\0\0", 4))};
  ASSERT_TRUE(discover(guest_mac(2)).has_value());
  ASSERT_EQ(type_of(send(build(m))), 5);
  EXPECT_EQ(log_.take_names(), Lines{m2_ + " db"});
  EXPECT_EQ(lease_of(guest_mac(2))->hostname, "db");
  // Not a host name label: told as sent (DnsNames judges it), not kept in the lease.
  const std::string garbage = std::string("bad name\x01\xff") + std::string(200, 'x');
  m.extra_options = hostname_option(garbage);
  ASSERT_EQ(type_of(send(build(m))), 5);
  EXPECT_EQ(log_.take_names(), Lines{m2_ + " " + garbage});
  EXPECT_EQ(lease_of(guest_mac(2))->hostname, "");
  m.extra_options = hostname_option(std::string(64, 'a'));  // one byte over a label
  ASSERT_EQ(type_of(send(build(m))), 5);
  EXPECT_EQ(lease_of(guest_mac(2))->hostname, "");
  // An option 12 whose length runs past the message is malformed: no reply.
  m.extra_options = {12, 200, 'a', 'b'};
  m.end_option = false;
  const uint64_t malformed = server_->counters().malformed;
  EXPECT_FALSE(send(build(m)).has_value());
  EXPECT_EQ(server_->counters().malformed, malformed + 1);
}

TEST_F(DhcpLeaseEventsTest, ReleaseAndDeclineEndTheLease) {
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  log_.take();
  release(guest_mac(1), ip("10.0.2.15"));
  EXPECT_EQ(log_.take(), Lines{"-" + m1_ + " 10.0.2.15"});
  decline(guest_mac(2), ip("10.0.2.16"));
  EXPECT_EQ(log_.take(), Lines{"-" + m2_ + " 10.0.2.16"});
  // Bound again after the release: a new binding.
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  EXPECT_EQ(log_.take(), Lines{"+" + m1_ + " 10.0.2.15"});
}

TEST_F(DhcpLeaseEventsTest, ExpireEndsLeasesWhoseTimeIsUpAndNamesTheNextEnd) {
  DhcpConfig c = test_config();
  c.lease_time_s = 100;
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  now_ += 50;
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.16");
  log_.take();
  const int64_t start = now_ - 50;
  EXPECT_EQ(server_->next_expiry_s(), start + 100);
  server_->expire(start + 99);
  EXPECT_TRUE(log_.take().empty());
  server_->expire(start + 100);
  EXPECT_EQ(log_.take(), Lines{"-" + m1_ + " 10.0.2.15"});
  EXPECT_EQ(server_->next_expiry_s(), start + 150);
  server_->expire(start + 150);
  EXPECT_EQ(log_.take(), Lines{"-" + m2_ + " 10.0.2.16"});
  EXPECT_EQ(server_->next_expiry_s(), INT64_MAX);
}

TEST_F(DhcpLeaseEventsTest, AnExpiredLeaseEndsWhenTheServerNoticesItBeforeExpireDoes) {
  DhcpConfig c = test_config();
  c.pool_last = ip("10.0.2.15");
  c.lease_time_s = 100;
  reconfigure(c);
  ASSERT_EQ(text(lease(guest_mac(1))), "10.0.2.15");
  log_.take();
  now_ += 200;  // expired; nobody called expire()
  // The one address goes to MAC 2: MAC 1's lease ends first.
  ASSERT_EQ(text(lease(guest_mac(2))), "10.0.2.15");
  EXPECT_EQ(log_.take(), (Lines{"-" + m1_ + " 10.0.2.15", "+" + m2_ + " 10.0.2.15"}));
  // The same MAC asking again after its lease expired: a new offer ends the old binding.
  now_ += 200;
  ASSERT_TRUE(discover(guest_mac(2)).has_value());
  EXPECT_EQ(log_.take(), Lines{"-" + m2_ + " 10.0.2.15"});
}

TEST_F(DhcpLeaseEventsTest, AStaticLeaseCountsOnceBound) {
  DhcpConfig c = test_config();
  c.pinned.push_back(Lease{guest_mac(7), ip("10.0.2.20"), ""});
  reconfigure(c);
  EXPECT_TRUE(log_.take().empty());
  ASSERT_EQ(text(lease(guest_mac(7))), "10.0.2.20");
  EXPECT_EQ(log_.take(), Lines{"+" + guest_mac(7).to_string() + " 10.0.2.20"});
}

TEST(DhcpConfigTest, FromDerivesThePoolAndOptionsFromSlirpOptions) {
  SlirpOptions o;
  o.net = ip("10.0.2.0");
  o.netmask = ip("255.255.255.0");
  o.host = ip("10.0.2.2");
  o.dhcp_start = ip("10.0.2.15");
  o.dns = ip("10.0.2.3");
  o.mtu = 1500;
  o.hostname = "h";
  o.dnssearch = {"a.b"};
  o.leases.push_back(Lease{guest_mac(9), ip("10.0.2.50"), ""});
  DhcpConfig c = DhcpConfig::from(o, kServerMac);
  EXPECT_EQ(c.server_mac, kServerMac);
  EXPECT_EQ(text(c.server), "10.0.2.2");
  EXPECT_EQ(text(c.netmask), "255.255.255.0");
  EXPECT_EQ(text(c.dns), "10.0.2.3");
  EXPECT_EQ(text(c.pool_first), "10.0.2.15");
  EXPECT_EQ(text(c.pool_last), "10.0.2.254");
  EXPECT_EQ(c.mtu, 0);
  EXPECT_FALSE(c.tftp);
  EXPECT_EQ(c.hostname, "h");
  EXPECT_EQ(c.domainname, "qswitch.internal");  // the DNS domain when domainname= is not given
  EXPECT_EQ(c.dnssearch, std::vector<std::string>{"a.b"});
  o.dnssearch.clear();
  EXPECT_EQ(DhcpConfig::from(o, kServerMac).dnssearch,
            std::vector<std::string>{"qswitch.internal"});
  o.domainname = "lab.example";
  EXPECT_EQ(DhcpConfig::from(o, kServerMac).domainname, "lab.example");
  EXPECT_EQ(DhcpConfig::from(o, kServerMac).dnssearch, std::vector<std::string>{"lab.example"});
  o.dnssearch = {"a.b"};
  ASSERT_EQ(c.pinned.size(), 1u);
  EXPECT_EQ(text(c.pinned[0].addr), "10.0.2.50");
  EXPECT_EQ(c.max_leases_per_port, 8u);  // SlirpOptions' default
  o.max_leases_per_port = 3;
  EXPECT_EQ(DhcpConfig::from(o, kServerMac).max_leases_per_port, 3u);

  o.net = ip("192.168.0.0");
  o.netmask = ip("255.255.0.0");
  o.mtu = 9000;
  o.tftp = "/srv/tftp";
  c = DhcpConfig::from(o, kServerMac);
  EXPECT_EQ(text(c.pool_last), "192.168.255.254");
  EXPECT_EQ(c.mtu, 9000);
  EXPECT_TRUE(c.tftp);
}

TEST(DhcpConfigTest, HostAndDnsAddressesInsideThePoolAreSkipped) {
  DhcpConfig c = test_config();
  c.pool_first = ip("10.0.2.1");
  DhcpServer server(c);
  std::vector<std::string> got;
  uint8_t out[1500];
  for (int i = 0; i < 3; ++i) {
    const Bytes d = build(ClientMessage{.mac = guest_mac(i + 1)});
    const size_t n = server.handle(d.data(), d.size(), 0, out, sizeof out);
    std::string why;
    const std::optional<Reply> r = decode(out, n, why);
    ASSERT_TRUE(r.has_value()) << why;
    got.push_back(text(r->yiaddr));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"10.0.2.1", "10.0.2.4", "10.0.2.5"}));
}

// Thousands of random and mutated frames (fixed seed): nothing reads out of bounds (run under
// ASan), every reply decodes as a well-formed DHCP reply, and the counters add up.
TEST(DhcpServerFuzzTest, RandomAndMutatedFramesNeverCrashAndRepliesAreWellFormed) {
  DhcpConfig c = configured();
  c.pool_last = ip("10.0.2.40");  // small, so exhaustion and reclaiming are exercised too
  c.pinned.push_back(Lease{guest_mac(3), ip("10.0.2.30"), ""});
  c.max_leases_per_port = 2;  // messages come from three ports: the cap is exercised too
  DhcpServer server(c);
  std::mt19937 rng(20240611);
  auto below = [&](size_t n) { return static_cast<size_t>(rng() % n); };

  std::vector<Bytes> seeds;
  for (uint8_t type = 1; type <= 8; ++type) {
    ClientMessage m{.type = type, .mac = guest_mac(static_cast<int>(type % 5))};
    if (type % 2 == 1) m.requested = ip("10.0.2.16");
    if (type == 3 || type == 4) m.server_id = ip("10.0.2.2");
    if (type == 5 || type == 8) m.ciaddr = ip("10.0.2.15");
    if (type == 2) m.max_size = 1200;
    seeds.push_back(build(m));
  }

  constexpr int kRounds = 50000;
  size_t replies = 0, claimed = 0;
  int64_t now = 0;
  for (int round = 0; round < kRounds; ++round) {
    Bytes f = seeds[below(seeds.size())];
    switch (below(6)) {
      case 0:  // flip bytes in the BOOTP message only: the IPv4 header stays valid
        for (size_t k = 1 + below(8); k > 0; --k)
          f[42 + below(f.size() - 42)] = static_cast<uint8_t>(rng());
        break;
      case 1:  // random options area
        f.resize(42 + 240 + below(300));
        for (size_t i = 42 + 240; i < f.size(); ++i) f[i] = static_cast<uint8_t>(rng());
        put16(f, 16, static_cast<uint16_t>(f.size() - 14));
        put16(f, 38, static_cast<uint16_t>(f.size() - 34));
        put16(f, 24, 0);
        put16(f, 24, checksum(f.data() + 14, 20));
        break;
      case 2:  // truncate
        f.resize(below(f.size() + 1));
        break;
      case 3:  // flip anything, lengths included
        for (size_t k = 1 + below(4); k > 0; --k) f[below(f.size())] = static_cast<uint8_t>(rng());
        break;
      case 4: {  // random garbage behind a plausible Ethernet/IPv4/UDP prefix
        const size_t keep = below(f.size());
        f.resize(keep + below(600));
        for (size_t i = keep; i < f.size(); ++i) f[i] = static_cast<uint8_t>(rng());
        break;
      }
      default:  // unchanged: drives the lease logic
        break;
    }
    if (below(50) == 0) now += 30;
    std::unique_ptr<uint8_t[]> in(new uint8_t[f.size()]);
    if (!f.empty()) std::memcpy(in.get(), f.data(), f.size());
    const size_t capacity = below(4) == 0 ? 342 + below(400) : 1500;
    std::unique_ptr<uint8_t[]> out(new uint8_t[capacity]);
    if (DhcpServer::is_dhcp_request(in.get(), f.size())) ++claimed;
    const uint64_t key = 1 + below(3);
    const size_t n = server.handle(in.get(), f.size(), now, out.get(), capacity,
                                   DhcpPort{key, static_cast<sw::PortId>(key)});
    for (uint64_t k = 1; k <= 3; ++k) {
      ASSERT_LE(held_by(server, k, now), 2u) << "round " << round << ": port " << k;
    }
    if (n == 0) continue;
    ++replies;
    ASSERT_LE(n, capacity) << "round " << round;
    std::string why;
    const std::optional<Reply> r = decode(out.get(), n, why);
    ASSERT_TRUE(r.has_value()) << "round " << round << ": " << why;
    ASSERT_TRUE(r->type() == 2 || r->type() == 5 || r->type() == 6) << "round " << round;
    EXPECT_EQ(r->eth_src, kServerMac);
    EXPECT_EQ(r->chaddr, sw::MacAddress::from_wire(in.get() + 6));
    if (r->yiaddr.s_addr != 0 && r->chaddr != guest_mac(3)) {
      EXPECT_GE(host(r->yiaddr), host(ip("10.0.2.15"))) << text(r->yiaddr);
      EXPECT_LE(host(r->yiaddr), host(ip("10.0.2.40"))) << text(r->yiaddr);
      EXPECT_NE(text(r->yiaddr), "10.0.2.30") << "pinned address given to another MAC";
    }
  }
  const DhcpServer::Counters& k = server.counters();
  EXPECT_GT(replies, 1000u) << "the fuzzer should reach the reply path often";
  EXPECT_GT(k.malformed, 1000u);
  EXPECT_EQ(k.offer + k.ack + k.nak, replies);
  EXPECT_EQ(k.discover + k.request + k.release + k.decline + k.inform + k.ignored + k.malformed,
            claimed);
  // No two MACs hold the same address.
  std::set<uint32_t> addrs;
  for (const DhcpServer::Lease& l : server.leases()) {
    EXPECT_TRUE(addrs.insert(host(l.addr)).second) << text(l.addr);
  }
}

}  // namespace
}  // namespace qswitch::slirp
