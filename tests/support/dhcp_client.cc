// tests/support/dhcp_client.cc: see dhcp_client.h.
#include "tests/support/dhcp_client.h"

#include <algorithm>

#include <chrono>

namespace qswitch::test_support {
namespace {

using Clock = std::chrono::steady_clock;

// RFC 2131 section 2: fixed BOOTP fields, then the magic cookie.
constexpr size_t kBootpFixedSize = 236;
constexpr size_t kOptionsOffset = kBootpFixedSize + 4;
constexpr uint8_t kMagicCookie[4] = {99, 130, 83, 99};

constexpr uint8_t kOptPad = 0;
constexpr uint8_t kOptEnd = 255;

void push32(std::vector<uint8_t>* v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v->push_back(static_cast<uint8_t>(x >> (24 - 8 * i)));
}
void put32(std::vector<uint8_t>* v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) (*v)[at + i] = static_cast<uint8_t>(x >> (24 - 8 * i));
}
uint32_t get32(std::span<const uint8_t> b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
         b[at + 3];
}

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

}  // namespace

const char* to_string(DhcpType type) {
  switch (type) {
    case DhcpType::kDiscover:
      return "DISCOVER";
    case DhcpType::kOffer:
      return "OFFER";
    case DhcpType::kRequest:
      return "REQUEST";
    case DhcpType::kDecline:
      return "DECLINE";
    case DhcpType::kAck:
      return "ACK";
    case DhcpType::kNak:
      return "NAK";
    case DhcpType::kRelease:
      return "RELEASE";
    case DhcpType::kInform:
      return "INFORM";
  }
  return "?";
}

std::vector<uint8_t> make_dhcp_payload(const DhcpClientMessage& m) {
  std::vector<uint8_t> p(kBootpFixedSize, 0);
  p[0] = 1;  // BOOTREQUEST
  p[1] = 1;  // Ethernet
  p[2] = 6;
  put32(&p, 4, m.xid);
  if (m.broadcast_flag) p[10] = 0x80;
  put32(&p, 12, m.ciaddr);
  for (int i = 0; i < 6; ++i) p[28 + i] = m.mac[i];
  p.insert(p.end(), std::begin(kMagicCookie), std::end(kMagicCookie));
  p.insert(p.end(), {53, 1, static_cast<uint8_t>(m.type)});
  p.insert(p.end(), {61, 7, 1});  // client id: hardware type 1 + MAC
  p.insert(p.end(), m.mac.begin(), m.mac.end());
  if (m.requested_ip) {
    p.insert(p.end(), {50, 4});
    push32(&p, *m.requested_ip);
  }
  if (m.server_id) {
    p.insert(p.end(), {54, 4});
    push32(&p, *m.server_id);
  }
  if (!m.hostname.empty()) {
    const size_t n = std::min<size_t>(m.hostname.size(), 255);
    p.push_back(12);
    p.push_back(static_cast<uint8_t>(n));
    p.insert(p.end(), m.hostname.begin(), m.hostname.begin() + static_cast<std::ptrdiff_t>(n));
  }
  p.insert(p.end(), {55, 6, 1, 3, 6, 15, 51, 54});  // mask, router, dns, domain, lease, server
  p.push_back(kOptEnd);
  // Pad to the 300-byte BOOTP minimum many clients send (RFC 1542 section 2.1).
  if (p.size() < 300) p.resize(300, 0);
  return p;
}

std::vector<uint8_t> make_dhcp_frame(const DhcpClientMessage& m) {
  const std::vector<uint8_t> payload = make_dhcp_payload(m);
  return make_udp_frame(kBroadcastMac, m.mac, 0, ipv4(255, 255, 255, 255), kDhcpClientPort,
                        kDhcpServerPort, payload);
}

std::optional<DhcpType> DhcpReply::type() const {
  auto it = options.find(53);
  if (it == options.end() || it->second.size() != 1) return std::nullopt;
  return static_cast<DhcpType>(it->second[0]);
}

std::optional<uint32_t> DhcpReply::addr_option(uint8_t code) const {
  auto it = options.find(code);
  if (it == options.end() || it->second.empty() || it->second.size() % 4 != 0) {
    return std::nullopt;
  }
  return get32(it->second, 0);
}

std::optional<uint32_t> DhcpReply::u32_option(uint8_t code) const {
  auto it = options.find(code);
  if (it == options.end() || it->second.size() != 4) return std::nullopt;
  return get32(it->second, 0);
}

std::optional<DhcpReply> parse_dhcp_reply(std::span<const uint8_t> frame, std::string* why) {
  auto udp = parse_udp_frame(frame, why);
  if (!udp) return std::nullopt;
  if (udp->src_port != kDhcpServerPort || udp->dst_port != kDhcpClientPort) {
    *why = "UDP ports " + std::to_string(udp->src_port) + " -> " + std::to_string(udp->dst_port) +
           " are not 67 -> 68";
    return std::nullopt;
  }
  const std::vector<uint8_t>& b = udp->payload;
  if (b.size() < kOptionsOffset) {
    *why = "BOOTP payload of " + std::to_string(b.size()) + " bytes is truncated";
    return std::nullopt;
  }
  DhcpReply r;
  r.eth_dst = udp->eth_dst;
  r.eth_src = udp->eth_src;
  r.ip_src = udp->ip_src;
  r.ip_dst = udp->ip_dst;
  r.op = b[0];
  r.htype = b[1];
  r.hlen = b[2];
  r.xid = get32(b, 4);
  r.flags = static_cast<uint16_t>((b[10] << 8) | b[11]);
  r.ciaddr = get32(b, 12);
  r.yiaddr = get32(b, 16);
  r.siaddr = get32(b, 20);
  for (int i = 0; i < 6; ++i) r.chaddr[i] = b[28 + i];
  for (int i = 0; i < 4; ++i) {
    if (b[kBootpFixedSize + i] != kMagicCookie[i]) {
      *why = "no DHCP magic cookie";
      return std::nullopt;
    }
  }
  size_t at = kOptionsOffset;
  bool ended = false;
  while (at < b.size()) {
    const uint8_t code = b[at];
    if (code == kOptPad) {
      ++at;
      continue;
    }
    if (code == kOptEnd) {
      ended = true;
      break;
    }
    if (at + 1 >= b.size() || at + 2 + b[at + 1] > b.size()) {
      *why = "option " + std::to_string(code) + " runs past the end of the message";
      return std::nullopt;
    }
    const size_t len = b[at + 1];
    r.options[code].assign(b.begin() + static_cast<std::ptrdiff_t>(at + 2),
                           b.begin() + static_cast<std::ptrdiff_t>(at + 2 + len));
    at += 2 + len;
  }
  if (!ended) {
    *why = "options have no end option (255)";
    return std::nullopt;
  }
  return r;
}

std::string check_dhcp_reply(const DhcpReply& r, DhcpType type, const Mac& mac, uint32_t xid,
                             const DhcpExpect& e) {
  std::string bad;
  auto add = [&bad](const std::string& s) { bad += (bad.empty() ? "" : "; ") + s; };
  auto want_addr = [&](uint8_t code, const char* name, uint32_t want) {
    auto got = r.addr_option(code);
    if (got != want) {
      add(std::string(name) + " (option " + std::to_string(code) + ") is " +
          (got ? ipv4_to_string(*got) : std::string("absent")) + ", want " + ipv4_to_string(want));
    }
  };
  if (r.op != 2) add("op " + std::to_string(r.op) + ", want 2 (BOOTREPLY)");
  if (r.htype != 1 || r.hlen != 6) add("htype/hlen not Ethernet/6");
  if (r.xid != xid) add("xid mismatch");
  if (r.chaddr != mac) add("chaddr " + mac_to_string(r.chaddr) + ", want " + mac_to_string(mac));
  auto t = r.type();
  if (t != type) {
    add(std::string("message type ") + (t ? to_string(*t) : "absent") + ", want " +
        to_string(type));
  }
  if (r.eth_src != e.server_mac) {
    add("Ethernet source " + mac_to_string(r.eth_src) + ", want " + mac_to_string(e.server_mac));
  }
  if (r.eth_dst != mac && r.eth_dst != kBroadcastMac) {
    add("Ethernet destination " + mac_to_string(r.eth_dst) +
        " is neither the client nor broadcast");
  }
  if (r.ip_src != e.server_id) {
    add("IPv4 source " + ipv4_to_string(r.ip_src) + ", want " + ipv4_to_string(e.server_id));
  }
  want_addr(54, "server id", e.server_id);
  if (type == DhcpType::kOffer || type == DhcpType::kAck) {
    want_addr(3, "router", e.router);
    want_addr(6, "dns", e.dns);
    want_addr(1, "netmask", e.netmask);
    auto lease = r.u32_option(51);
    if (!lease || *lease == 0) add("no lease time (option 51), which RFC 2131 requires");
    if (r.yiaddr == 0) add("yiaddr is 0.0.0.0");
    if (r.ip_dst != r.yiaddr && r.ip_dst != ipv4(255, 255, 255, 255)) {
      add("IPv4 destination " + ipv4_to_string(r.ip_dst) + " is neither yiaddr nor broadcast");
    }
  }
  return bad;
}

std::optional<DhcpReply> wait_dhcp_reply(FrameClient& client, const Mac& mac, uint32_t xid,
                                         Millis timeout, std::string* why, size_t* skipped) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    RecvResult r = client.recv_frame(time_left(deadline));
    if (!r.ok()) {
      *why = std::string("no DHCP reply for xid ") + std::to_string(xid) + " / " +
             mac_to_string(mac) + ": " + to_string(r.status) + " " + r.error;
      return std::nullopt;
    }
    std::string not_dhcp;
    auto reply = parse_dhcp_reply(r.frame, &not_dhcp);
    if (reply && reply->op == 2 && reply->xid == xid && reply->chaddr == mac) return reply;
    // A malformed frame from the server addressed to this client is a server bug, not noise.
    auto udp_why = std::string();
    auto udp = parse_udp_frame(r.frame, &udp_why);
    if (!reply && udp && udp->src_port == kDhcpServerPort && udp->dst_port == kDhcpClientPort &&
        (frame_dst(r.frame) == mac)) {
      *why = "malformed DHCP reply to " + mac_to_string(mac) + ": " + not_dhcp;
      return std::nullopt;
    }
    if (skipped != nullptr) ++*skipped;
  }
}

std::optional<DhcpExchange> run_dhcp_exchange(FrameClient& client, const Mac& mac, uint32_t xid,
                                              bool broadcast_flag, const DhcpExpect& expect,
                                              Millis timeout, std::string* why,
                                              const std::string& hostname) {
  const auto deadline = Clock::now() + timeout;
  DhcpClientMessage m;
  m.mac = mac;
  m.xid = xid;
  m.hostname = hostname;
  m.broadcast_flag = broadcast_flag;
  m.type = DhcpType::kDiscover;
  if (!client.send_frame(make_dhcp_frame(m), time_left(deadline))) {
    *why = "sending DISCOVER: " + client.last_error();
    return std::nullopt;
  }
  DhcpExchange ex;
  auto offer = wait_dhcp_reply(client, mac, xid, time_left(deadline), why);
  if (!offer) {
    *why = "after DISCOVER: " + *why;
    return std::nullopt;
  }
  if (std::string bad = check_dhcp_reply(*offer, DhcpType::kOffer, mac, xid, expect);
      !bad.empty()) {
    *why = "bad OFFER for " + mac_to_string(mac) + ": " + bad;
    return std::nullopt;
  }
  ex.offer = *offer;
  m.type = DhcpType::kRequest;
  m.requested_ip = offer->yiaddr;
  m.server_id = offer->addr_option(54);
  if (!client.send_frame(make_dhcp_frame(m), time_left(deadline))) {
    *why = "sending REQUEST: " + client.last_error();
    return std::nullopt;
  }
  auto ack = wait_dhcp_reply(client, mac, xid, time_left(deadline), why);
  if (!ack) {
    *why = "after REQUEST for " + ipv4_to_string(offer->yiaddr) + ": " + *why;
    return std::nullopt;
  }
  if (std::string bad = check_dhcp_reply(*ack, DhcpType::kAck, mac, xid, expect); !bad.empty()) {
    *why = "bad ACK for " + mac_to_string(mac) + " (requested " + ipv4_to_string(offer->yiaddr) +
           "): " + bad;
    return std::nullopt;
  }
  if (ack->yiaddr != offer->yiaddr) {
    *why = "ACK for " + mac_to_string(mac) + " is for " + ipv4_to_string(ack->yiaddr) +
           " but the OFFER was " + ipv4_to_string(offer->yiaddr);
    return std::nullopt;
  }
  ex.ack = *ack;
  return ex;
}

}  // namespace qswitch::test_support
