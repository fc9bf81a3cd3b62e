// slirp/dhcp_server.cc: the DHCP server's parsing, lease choice and reply building.
// See dhcp_server.h for the theory of operation. Addresses are host byte order inside; in_addr
// (network order) only at the edges. Every read of the client's frame is preceded by a bounds
// check against `size`, the IPv4 total length or the UDP length, whichever is smallest.
#include "slirp/dhcp_server.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

#include "slirp/dns_names.h"
#include "switch/frame.h"
#include "switch/offload.h"

namespace qswitch::slirp {
namespace {

constexpr size_t kEthSize = 14;
constexpr size_t kIpMinSize = 20;
constexpr size_t kUdpSize = 8;
constexpr size_t kBootpFixedSize = 236;                 // op .. file (RFC 2131 figure 1)
constexpr size_t kOptionsOffset = kBootpFixedSize + 4;  // after the magic cookie
constexpr size_t kBootpMinSize = 300;   // RFC 1542 section 2.1: BOOTP messages are >= 300 bytes
constexpr size_t kMinMaxMessage = 576;  // RFC 2132 section 9.10, IP datagram size
constexpr uint16_t kServerPort = 67;
constexpr uint16_t kClientPort = 68;
constexpr uint8_t kCookie[4] = {99, 130, 83, 99};  // RFC 2131 section 3
constexpr uint16_t kBroadcastFlag = 0x8000;        // RFC 2131 figure 2

// Message types, RFC 2132 section 9.6.
constexpr uint8_t kDiscover = 1, kOffer = 2, kRequest = 3, kDecline = 4, kAck = 5, kNak = 6,
                  kRelease = 7, kInform = 8;
// Option codes, RFC 2132 (119: RFC 3397).
constexpr uint8_t kOptPad = 0, kOptNetmask = 1, kOptRouter = 3, kOptDns = 6, kOptHostname = 12,
                  kOptDomain = 15, kOptMtu = 26, kOptRequestedIp = 50, kOptLeaseTime = 51,
                  kOptMessageType = 53, kOptServerId = 54, kOptMaxSize = 57, kOptTftpServer = 66,
                  kOptBootfile = 67, kOptDomainSearch = 119, kOptEnd = 255;

uint32_t host_order(in_addr a) { return ntohl(a.s_addr); }
in_addr net_order(uint32_t a) {
  in_addr r{};
  r.s_addr = htonl(a);
  return r;
}

// RFC 1035 section 3.1 names with section 4.1.4 compression, as option 119 wants (RFC 3397
// section 2). A name with an empty or over-long label, or over 255 bytes, is left out.
std::vector<uint8_t> encode_search_list(const std::vector<std::string>& names) {
  std::vector<uint8_t> out;
  std::vector<std::pair<std::string, size_t>> seen;  // suffix text -> offset in `out`
  for (const std::string& full : names) {
    std::string_view name = full;
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty()) continue;
    std::vector<std::string_view> labels;
    size_t encoded = 1;
    bool ok = true;
    for (size_t start = 0;;) {
      const size_t dot = name.find('.', start);
      const std::string_view label =
          name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
      if (label.empty() || label.size() > 63) ok = false;
      labels.push_back(label);
      encoded += 1 + label.size();
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    if (!ok || encoded > 255) continue;
    for (size_t i = 0; i < labels.size(); ++i) {
      const std::string suffix(name.substr(static_cast<size_t>(labels[i].data() - name.data())));
      const auto hit =
          std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == suffix; });
      if (hit != seen.end()) {
        out.push_back(static_cast<uint8_t>(0xc0 | (hit->second >> 8)));
        out.push_back(static_cast<uint8_t>(hit->second & 0xff));
        ok = false;  // ended by a pointer
        break;
      }
      if (out.size() < 0x4000) seen.emplace_back(suffix, out.size());  // 14-bit pointers
      out.push_back(static_cast<uint8_t>(labels[i].size()));
      out.insert(out.end(), labels[i].begin(), labels[i].end());
    }
    if (ok) out.push_back(0);
  }
  return out;
}

// Appends options to a reply, always keeping one byte for the end option.
class OptionWriter {
 public:
  OptionWriter(uint8_t* message, size_t start, size_t limit)
      : m_(message), pos_(start), limit_(limit) {}
  bool fits(size_t bytes) const { return pos_ + bytes + 1 <= limit_; }
  bool put(uint8_t code, const void* data, size_t len) {
    if (len > 255 || !fits(2 + len)) return false;
    m_[pos_] = code;
    m_[pos_ + 1] = static_cast<uint8_t>(len);
    if (len > 0) std::memcpy(m_ + pos_ + 2, data, len);
    pos_ += 2 + len;
    return true;
  }
  bool put8(uint8_t code, uint8_t v) { return put(code, &v, 1); }
  bool put16(uint8_t code, uint16_t v) {
    uint8_t b[2];
    sw::store_be16(b, v);
    return put(code, b, 2);
  }
  bool put32(uint8_t code, uint32_t v) {
    uint8_t b[4];
    sw::store_be32(b, v);
    return put(code, b, 4);
  }
  bool put_string(uint8_t code, const std::string& s) {
    return !s.empty() && put(code, s.data(), s.size());
  }
  // A value over 255 bytes as consecutive instances of one option (RFC 3396 section 7).
  bool put_long(uint8_t code, const std::vector<uint8_t>& v) {
    if (v.empty()) return false;
    const size_t pieces = (v.size() + 254) / 255;
    if (!fits(v.size() + 2 * pieces)) return false;
    for (size_t off = 0; off < v.size(); off += 255) {
      put(code, v.data() + off, std::min<size_t>(255, v.size() - off));
    }
    return true;
  }
  // The end option, then pads up to `min_size`; returns the message size.
  size_t finish(size_t min_size) {
    m_[pos_++] = kOptEnd;
    while (pos_ < min_size) m_[pos_++] = kOptPad;
    return pos_;
  }

 private:
  uint8_t* m_;
  size_t pos_;
  size_t limit_;
};

}  // namespace

// A client message, parsed and checked.
struct DhcpServer::Request {
  uint8_t type = 0;
  sw::MacAddress mac;
  uint8_t xid[4]{};
  uint16_t flags = 0;
  uint32_t ciaddr = 0;
  uint32_t giaddr = 0;
  bool has_requested = false;
  uint32_t requested = 0;
  bool has_server_id = false;
  uint32_t server_id = 0;
  size_t max_message = kMinMaxMessage - kIpMinSize - kUdpSize;  // DHCP message bytes
  // Option 12 as sent (trailing NULs dropped; at most 255 bytes): points into the frame, valid
  // during handle() only. Untrusted: DnsNames checks it.
  std::string_view hostname;
};

DhcpConfig DhcpConfig::from(const SlirpOptions& options, const sw::MacAddress& server_mac) {
  DhcpConfig c;
  c.server_mac = server_mac;
  c.server = options.host;
  c.netmask = options.netmask;
  c.dns = options.dns;
  c.pool_first = options.dhcp_start;
  const uint32_t mask = host_order(options.netmask);
  const uint32_t broadcast = (host_order(options.net) & mask) | ~mask;
  c.pool_last = net_order(broadcast - 1);
  c.mtu = (options.mtu != 1500 && options.mtu <= 0xffff) ? static_cast<uint16_t>(options.mtu) : 0;
  c.hostname = options.hostname;
  // The DNS domain the slirp port answers for (dns_names.h): short names work in guests when
  // it is their domain (15) and search list (119).
  c.domainname = options.domainname.empty() ? std::string(kDefaultDnsDomain) : options.domainname;
  c.bootfile = options.bootfile;
  c.dnssearch =
      options.dnssearch.empty() ? std::vector<std::string>{c.domainname} : options.dnssearch;
  c.tftp = !options.tftp.empty();
  c.pinned = options.leases;
  c.max_leases_per_port = options.max_leases_per_port;
  return c;
}

DhcpServer::DhcpServer(const DhcpConfig& config)
    : config_(config),
      server_(host_order(config.server)),
      netmask_(host_order(config.netmask)),
      dns_(host_order(config.dns)),
      pool_first_(host_order(config.pool_first)),
      pool_last_(host_order(config.pool_last)),
      next_fresh_(pool_first_),
      dnssearch_wire_(encode_search_list(config.dnssearch)) {
  for (const slirp::Lease& pin : config.pinned) {
    const uint32_t addr = host_order(pin.addr);
    if (by_mac_.count(pin.mac.key()) != 0 || by_addr_.count(addr) != 0) continue;  // first wins
    Record* r = add_record(pin.mac, addr);
    r->pinned = true;
    r->state = State::reserved;
  }
}

bool DhcpServer::is_dhcp_request(const uint8_t* frame, size_t size) {
  if (size < kEthSize + kIpMinSize + kUdpSize) return false;
  if (sw::load_be16(frame + 12) != 0x0800) return false;
  const uint8_t* ip = frame + kEthSize;
  if ((ip[0] >> 4) != 4 || ip[9] != 17) return false;
  if ((sw::load_be16(ip + 6) & 0x1fff) != 0) return false;  // a later fragment has no UDP header
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  if (ihl < kIpMinSize || kEthSize + ihl + 4 > size) return false;
  return sw::load_be16(ip + ihl + 2) == kServerPort;
}

// RFC 2131 section 2 (format) and 3 (cookie), RFC 2132 section 2 (options), RFC 791 (IPv4).
bool DhcpServer::parse_request(const uint8_t* frame, size_t size, Request& req) {
  const uint8_t* ip = frame + kEthSize;
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  const size_t total = sw::load_be16(ip + 2);
  if (total < ihl + kUdpSize || total > size - kEthSize) return false;
  if ((sw::load_be16(ip + 6) & 0x2000) != 0) return false;  // more fragments: not reassembled
  if (static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(0, ip, ihl))) != 0)
    return false;  // RFC 791 header checksum
  const uint8_t* udp = ip + ihl;
  const size_t udp_size = sw::load_be16(udp + 4);
  if (udp_size < kUdpSize || udp_size > total - ihl) return false;
  const uint8_t* b = udp + kUdpSize;
  const size_t n = udp_size - kUdpSize;  // BOOTP message bytes; nothing at or past b + n is read
  if (n < kOptionsOffset) return false;
  if (b[0] != 1 || b[1] != 1 || b[2] != 6) return false;  // BOOTREQUEST, Ethernet
  if (std::memcmp(b + kBootpFixedSize, kCookie, 4) != 0) return false;
  req.mac = sw::MacAddress::from_wire(b + 28);
  // The lease is keyed by chaddr; a guest may only ask for its own MAC.
  if (req.mac != sw::MacAddress::from_wire(frame + 6) || req.mac.is_multicast() ||
      req.mac.is_zero()) {
    return false;
  }
  std::memcpy(req.xid, b + 4, 4);
  req.flags = sw::load_be16(b + 10);
  req.ciaddr = sw::load_be32(b + 12);
  req.giaddr = sw::load_be32(b + 24);
  // Options (RFC 2132 section 2). Overload (52) is ignored: sname and file are not parsed.
  for (size_t i = kOptionsOffset; i < n;) {
    const uint8_t code = b[i];
    if (code == kOptPad) {
      ++i;
      continue;
    }
    if (code == kOptEnd) break;
    if (i + 2 > n) return false;
    const size_t len = b[i + 1];
    if (i + 2 + len > n) return false;
    const uint8_t* v = b + i + 2;
    switch (code) {
      case kOptMessageType:
        if (len != 1) return false;
        req.type = v[0];
        break;
      case kOptRequestedIp:
        if (len != 4) return false;
        req.has_requested = true;
        req.requested = sw::load_be32(v);
        break;
      case kOptServerId:
        if (len != 4) return false;
        req.has_server_id = true;
        req.server_id = sw::load_be32(v);
        break;
      case kOptHostname: {
        size_t k = len;
        while (k > 0 && v[k - 1] == 0) --k;  // some clients count a C string's NUL
        req.hostname = std::string_view(reinterpret_cast<const char*>(v), k);
        break;
      }
      case kOptMaxSize: {
        if (len != 2) return false;
        const size_t max_ip = std::max<size_t>(kMinMaxMessage, sw::load_be16(v));
        req.max_message = max_ip - kIpMinSize - kUdpSize;
        break;
      }
      default:
        break;
    }
    i += 2 + len;
  }
  return req.type != 0;  // plain BOOTP (no option 53) is not served
}

size_t DhcpServer::handle(const uint8_t* frame, size_t size, int64_t now_s, uint8_t* reply,
                          size_t reply_capacity, const DhcpPort& from) {
  if (frame == nullptr || !is_dhcp_request(frame, size)) return 0;
  Request req;
  if (!parse_request(frame, size, req)) {
    ++counters_.malformed;
    return 0;
  }
  return answer(req, from, now_s, reply, reply_capacity);
}

size_t DhcpServer::answer(const Request& req, const DhcpPort& from, int64_t now_s, uint8_t* reply,
                          size_t reply_capacity) {
  switch (req.type) {
    case kDiscover: {
      ++counters_.discover;
      if (over_cap(find_by_mac(req.mac), from, now_s)) {  // before choose_for claims an address
        ++counters_.over_port_cap;
        return 0;
      }
      Record* r = choose_for(req.mac, now_s);
      if (r == nullptr) {
        ++counters_.pool_exhausted;
        return 0;
      }
      if (r->state != State::bound || r->expires_s <= now_s) {
        retract(*r);
        r->state = State::offered;
        r->expires_s = now_s + config_.offer_hold_s;
        hold_for(*r, from);
      }  // else bound: it moves to this port, if at all, with the ACK
      const size_t n = build_reply(req, kOffer, r->addr, reply, reply_capacity);
      if (n != 0) ++counters_.offer;
      return n;
    }
    case kRequest: {
      ++counters_.request;
      Record* r = find_by_mac(req.mac);
      uint32_t wanted = 0;
      if (req.has_server_id) {
        if (req.server_id != server_) {  // SELECTING another server's offer: withdraw ours
          if (r != nullptr && r->state == State::offered && may_free(*r, from)) {
            r->state = State::released;
            r->freed_s = now_s;
            r->expires_s = 0;
            unhold(*r);
          }
          return 0;
        }
        wanted = req.has_requested ? req.requested : req.ciaddr;  // SELECTING (section 4.3.2)
      } else if (req.has_requested) {
        wanted = req.requested;  // INIT-REBOOT
      } else {
        wanted = req.ciaddr;  // RENEWING or REBINDING
      }
      if (r == nullptr || wanted == 0 || r->addr != wanted) {
        const size_t n = build_reply(req, kNak, 0, reply, reply_capacity);
        if (n != 0) ++counters_.nak;
        return n;
      }
      if (over_cap(r, from, now_s)) {
        ++counters_.over_port_cap;
        const size_t n = build_reply(req, kNak, 0, reply, reply_capacity);
        if (n != 0) ++counters_.nak;
        return n;
      }
      r->state = State::bound;
      r->expires_s = now_s + config_.lease_time_s;
      hold_for(*r, from);
      set_hostname(*r, req.hostname);
      announce(*r);
      const size_t n = build_reply(req, kAck, r->addr, reply, reply_capacity);
      if (n != 0) ++counters_.ack;
      return n;
    }
    case kRelease: {
      ++counters_.release;
      Record* r = find_by_mac(req.mac);
      const bool ours = !req.has_server_id || req.server_id == server_;
      if (r != nullptr && ours && r->addr == req.ciaddr && may_free(*r, from)) {
        retract(*r);
        r->state = r->pinned ? State::reserved : State::released;
        r->freed_s = now_s;
        r->expires_s = 0;
        unhold(*r);
      }
      return 0;
    }
    case kDecline: {
      ++counters_.decline;
      Record* r = find_by_mac(req.mac);
      const bool ours = !req.has_server_id || req.server_id == server_;
      if (r != nullptr && ours && req.has_requested && r->addr == req.requested &&
          may_free(*r, from)) {
        retract(*r);
        unhold(*r);
        if (r->pinned) {
          r->state = State::reserved;  // the configuration says this address; keep offering it
          r->expires_s = 0;
        } else {
          by_mac_.erase(req.mac.key());  // the MAC gets another address next time
          r->state = State::declined;
          r->expires_s = now_s + config_.decline_hold_s;
        }
      }
      return 0;
    }
    case kInform: {
      ++counters_.inform;
      const size_t n = build_reply(req, kAck, 0, reply, reply_capacity);
      if (n != 0) ++counters_.ack;
      return n;
    }
    default:
      ++counters_.ignored;
      return 0;
  }
}

DhcpServer::Record* DhcpServer::find_by_mac(const sw::MacAddress& mac) {
  const auto it = by_mac_.find(mac.key());
  return it == by_mac_.end() ? nullptr : &records_[it->second];
}

bool DhcpServer::fresh_address_ok(uint32_t addr) const {
  const uint32_t host = addr & ~netmask_;
  if (host == 0 || host == ~netmask_) return false;  // the net's own and its broadcast address
  if (addr == server_ || addr == dns_) return false;
  return by_addr_.count(addr) == 0;
}

DhcpServer::Record* DhcpServer::add_record(const sw::MacAddress& mac, uint32_t addr) {
  Record r;
  r.mac = mac;
  r.addr = addr;
  records_.push_back(r);
  by_mac_[mac.key()] = records_.size() - 1;
  by_addr_[addr] = records_.size() - 1;
  return &records_.back();
}

int64_t DhcpServer::free_since(const Record& r, int64_t now_s) const {
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  if (r.pinned) return kNever;
  switch (r.state) {
    case State::released:
      return r.freed_s;
    case State::offered:
    case State::bound:
    case State::declined:
      return r.expires_s <= now_s ? r.expires_s : kNever;
    case State::reserved:
      return kNever;
  }
  return kNever;
}

DhcpServer::Record* DhcpServer::choose_for(const sw::MacAddress& mac, int64_t now_s) {
  if (Record* r = find_by_mac(mac)) return r;  // pinned, current or previous address
  // The lowest never-used address. next_fresh_ only moves up, so the scan is amortized O(pool).
  if (records_.size() < config_.max_leases) {
    for (; next_fresh_ <= pool_last_; ++next_fresh_) {
      const auto addr = static_cast<uint32_t>(next_fresh_);
      if (fresh_address_ok(addr)) {
        ++next_fresh_;
        return add_record(mac, addr);
      }
    }
  }
  // Pool exhausted: the address free for the longest time, then the lowest.
  Record* best = nullptr;
  int64_t best_since = std::numeric_limits<int64_t>::max();
  for (Record& r : records_) {
    const int64_t since = free_since(r, now_s);
    if (since == std::numeric_limits<int64_t>::max()) continue;
    if (best == nullptr || since < best_since || (since == best_since && r.addr < best->addr)) {
      best = &r;
      best_since = since;
    }
  }
  if (best == nullptr) return nullptr;
  retract(*best);  // an expired lease the owner has not expired yet
  if (best->state != State::declined) by_mac_.erase(best->mac.key());
  unhold(*best);
  best->mac = mac;
  best->hostname_size = 0;
  best->state = State::offered;
  best->expires_s = 0;
  best->freed_s = 0;
  by_mac_[mac.key()] = static_cast<size_t>(best - records_.data());
  return best;
}

size_t DhcpServer::held_by(uint64_t key, int64_t now_s) {
  const auto it = holdings_.find(key);
  if (it == holdings_.end()) return 0;
  std::vector<size_t>& held = it->second;
  for (size_t i = 0; i < held.size();) {
    Record& r = records_[held[i]];
    // Only an ended offer or lease is still listed (every other change unholds at once); its
    // holder keeps it for RELEASE, but it no longer counts.
    if ((r.state == State::offered || r.state == State::bound) && r.expires_s > now_s) {
      ++i;
      continue;
    }
    r.counted = false;
    held[i] = held.back();
    held.pop_back();
  }
  const size_t n = held.size();
  if (n == 0) holdings_.erase(it);
  return n;
}

bool DhcpServer::over_cap(const Record* r, const DhcpPort& from, int64_t now_s) {
  if (config_.max_leases_per_port == 0 || (r != nullptr && r->pinned)) return false;
  const size_t held = held_by(from.key, now_s);  // first: it uncounts what ended
  if (r != nullptr && r->counted && r->holder.key == from.key) return false;  // its own already
  return held >= config_.max_leases_per_port;
}

void DhcpServer::hold_for(Record& r, const DhcpPort& from) {
  if (r.held && r.holder.key == from.key && (r.counted || r.pinned)) {
    r.holder.id = from.id;
    return;
  }
  unhold(r);
  r.held = true;
  r.holder = from;
  if (!r.pinned) {
    holdings_[from.key].push_back(static_cast<size_t>(&r - records_.data()));
    r.counted = true;
  }
}

void DhcpServer::unhold(Record& r) {
  if (r.counted) {
    const auto it = holdings_.find(r.holder.key);
    if (it != holdings_.end()) {
      std::vector<size_t>& held = it->second;
      const size_t index = static_cast<size_t>(&r - records_.data());
      const auto at = std::find(held.begin(), held.end(), index);
      if (at != held.end()) {
        *at = held.back();
        held.pop_back();
      }
      if (held.empty()) holdings_.erase(it);
    }
    r.counted = false;
  }
  r.held = false;
  r.holder = DhcpPort{};
}

bool DhcpServer::may_free(const Record& r, const DhcpPort& from) {
  if (!r.held) return false;  // nobody holds it: nothing to free
  if (r.holder.key == from.key) return true;
  ++counters_.not_owner;
  return false;
}

size_t DhcpServer::build_reply(const Request& req, uint8_t type, uint32_t yiaddr, uint8_t* reply,
                               size_t reply_capacity) const {
  constexpr size_t kHeaders = kEthSize + kIpMinSize + kUdpSize;
  if (reply == nullptr || reply_capacity < kHeaders + kBootpMinSize) return 0;
  const size_t limit = std::min(req.max_message, reply_capacity - kHeaders);

  // Where it goes: RFC 2131 section 4.1 (no relay agents on this segment, so giaddr is echoed
  // but not used).
  const uint32_t ciaddr = type == kAck ? req.ciaddr : 0;  // table 3: only an ACK echoes ciaddr
  const bool broadcast =
      type == kNak || (req.ciaddr == 0 && ((req.flags & kBroadcastFlag) != 0 || yiaddr == 0));
  sw::MacAddress dst_mac = req.mac;
  uint32_t dst_ip = req.ciaddr != 0 ? req.ciaddr : yiaddr;
  if (broadcast) {
    dst_mac.bytes.fill(0xff);
    dst_ip = 0xffffffff;
  }

  uint8_t* eth = reply;
  std::memcpy(eth, dst_mac.bytes.data(), 6);
  std::memcpy(eth + 6, config_.server_mac.bytes.data(), 6);
  sw::store_be16(eth + 12, 0x0800);

  uint8_t* m = reply + kHeaders;  // the BOOTP message
  std::memset(m, 0, kOptionsOffset);
  m[0] = 2;  // BOOTREPLY
  m[1] = 1;  // Ethernet
  m[2] = 6;
  std::memcpy(m + 4, req.xid, 4);
  sw::store_be16(m + 10, req.flags);
  sw::store_be32(m + 12, ciaddr);
  sw::store_be32(m + 16, yiaddr);
  sw::store_be32(m + 20, config_.tftp && type != kNak ? server_ : 0);  // siaddr: next server
  sw::store_be32(m + 24, req.giaddr);
  std::memcpy(m + 28, req.mac.bytes.data(), 6);
  if (type != kNak && !config_.bootfile.empty() && config_.bootfile.size() < 128) {
    std::memcpy(m + 108, config_.bootfile.data(), config_.bootfile.size());
  }
  std::memcpy(m + kBootpFixedSize, kCookie, 4);

  // Required options first, so they always fit in the 548 bytes every client accepts.
  OptionWriter w(m, kOptionsOffset, limit);
  w.put8(kOptMessageType, type);
  w.put32(kOptServerId, server_);
  if (type != kNak) {
    if (type == kOffer || yiaddr != 0) w.put32(kOptLeaseTime, config_.lease_time_s);  // not INFORM
    w.put32(kOptNetmask, netmask_);
    w.put32(kOptRouter, server_);
    w.put32(kOptDns, dns_);
    if (config_.mtu != 0) w.put16(kOptMtu, config_.mtu);
    w.put_string(kOptHostname, config_.hostname);
    w.put_string(kOptDomain, config_.domainname);
    if (config_.tftp) {
      char text[INET_ADDRSTRLEN] = {};
      const in_addr server = net_order(server_);
      if (inet_ntop(AF_INET, &server, text, sizeof text) != nullptr) {
        w.put_string(kOptTftpServer, text);
      }
    }
    w.put_string(kOptBootfile, config_.bootfile);
    w.put_long(kOptDomainSearch, dnssearch_wire_);
  }
  const size_t message_size = w.finish(kBootpMinSize);

  const size_t udp_size = kUdpSize + message_size;
  const size_t ip_size = kIpMinSize + udp_size;
  uint8_t* ip = reply + kEthSize;
  std::memset(ip, 0, kIpMinSize);
  ip[0] = 0x45;
  ip[1] = 0x10;  // IPTOS_LOWDELAY, as libslirp's bootp.c
  sw::store_be16(ip + 2, static_cast<uint16_t>(ip_size));
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP
  sw::store_be32(ip + 12, server_);
  sw::store_be32(ip + 16, dst_ip);
  sw::store_be16(ip + 10,
                 static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(0, ip, kIpMinSize))));

  uint8_t* udp = ip + kIpMinSize;
  sw::store_be16(udp, kServerPort);
  sw::store_be16(udp + 2, kClientPort);
  sw::store_be16(udp + 4, static_cast<uint16_t>(udp_size));
  sw::store_be16(udp + 6, 0);
  // RFC 768: pseudo header (source, destination, protocol, UDP length), then the datagram.
  uint64_t sum = sw::checksum_add(0, ip + 12, 8) + 17 + udp_size;
  uint16_t csum = static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(sum, udp, udp_size)));
  sw::store_be16(udp + 6, csum == 0 ? 0xffff : csum);
  return kEthSize + ip_size;
}

void DhcpServer::set_hostname(Record& r, std::string_view sent) {
  // Kept: the first label, when it is a host name label (the rest is the guest's business).
  const std::string_view label = sent.substr(0, sent.find('.'));
  if (dns_label_ok(label)) {
    std::memcpy(r.hostname.data(), label.data(), label.size());
    r.hostname_size = static_cast<uint8_t>(label.size());
  } else {
    r.hostname_size = 0;
  }
  if (events_ != nullptr) events_->hostname(r.mac, sent);
}

void DhcpServer::announce(Record& r) {
  next_expiry_s_ = std::min(next_expiry_s_, r.expires_s);
  if (r.announced) return;  // a renewal
  r.announced = true;
  if (events_ != nullptr) events_->bound(r.mac, net_order(r.addr));
}

void DhcpServer::retract(Record& r) {
  if (!r.announced) return;
  r.announced = false;
  if (events_ != nullptr) events_->ended(r.mac, net_order(r.addr));
}

void DhcpServer::expire(int64_t now_s) {
  int64_t next = std::numeric_limits<int64_t>::max();
  for (Record& r : records_) {
    if (!r.announced) continue;
    if (r.state != State::bound || r.expires_s <= now_s) {
      retract(r);
    } else {
      next = std::min(next, r.expires_s);
    }
  }
  next_expiry_s_ = next;
}

std::vector<DhcpServer::Lease> DhcpServer::leases() const {
  std::vector<Lease> out;
  for (const Record& r : records_) {
    if (r.state == State::declined) continue;  // no MAC owns it
    Lease l;
    l.mac = r.mac;
    l.addr = net_order(r.addr);
    l.pinned = r.pinned;
    l.hostname.assign(r.hostname.data(), r.hostname_size);
    l.held = r.held;
    l.port = r.holder;
    switch (r.state) {
      case State::reserved:
        l.state = LeaseState::reserved;
        break;
      case State::offered:
        l.state = LeaseState::offered;
        l.expires_s = r.expires_s;
        break;
      case State::bound:
        l.state = LeaseState::bound;
        l.expires_s = r.expires_s;
        break;
      case State::released:
      case State::declined:
        l.state = LeaseState::released;
        break;
    }
    out.push_back(l);
  }
  std::sort(out.begin(), out.end(), [](const Lease& a, const Lease& b) {
    return ntohl(a.addr.s_addr) < ntohl(b.addr.s_addr);
  });
  return out;
}

}  // namespace qswitch::slirp
