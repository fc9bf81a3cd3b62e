// tests/support/ip_frames.cc: see ip_frames.h.
#include "tests/support/ip_frames.h"

#include <arpa/inet.h>

#include <cstdio>

namespace qswitch::test_support {
namespace {

constexpr size_t kIpv4HeaderSize = 20;
constexpr size_t kUdpHeaderSize = 8;
constexpr size_t kArpSize = 28;

void put16(std::vector<uint8_t>* f, size_t at, uint16_t v) {
  (*f)[at] = static_cast<uint8_t>(v >> 8);
  (*f)[at + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>* f, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*f)[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
uint16_t get16(std::span<const uint8_t> f, size_t at) {
  return static_cast<uint16_t>((f[at] << 8) | f[at + 1]);
}
uint32_t get32(std::span<const uint8_t> f, size_t at) {
  return (uint32_t{f[at]} << 24) | (uint32_t{f[at + 1]} << 16) | (uint32_t{f[at + 2]} << 8) |
         f[at + 3];
}
Mac get_mac(std::span<const uint8_t> f, size_t at) {
  Mac m{};
  for (int i = 0; i < 6; ++i) m[i] = f[at + i];
  return m;
}
void put_mac(std::vector<uint8_t>* f, size_t at, const Mac& m) {
  for (int i = 0; i < 6; ++i) (*f)[at + i] = m[i];
}
void put_eth(std::vector<uint8_t>* f, const Mac& dst, const Mac& src, uint16_t type) {
  put_mac(f, 0, dst);
  put_mac(f, 6, src);
  put16(f, 12, type);
}

// The IPv4 datagram inside `frame` (without Ethernet padding), its header length and protocol.
struct Ipv4View {
  std::span<const uint8_t> datagram;
  size_t header_size = 0;
  uint8_t protocol = 0;
  uint32_t src = 0;
  uint32_t dst = 0;
};

std::optional<Ipv4View> parse_ipv4_frame(std::span<const uint8_t> frame, std::string* why) {
  if (frame.size() < kEthHeaderSize + kIpv4HeaderSize) {
    *why = "frame of " + std::to_string(frame.size()) + " bytes is too short for IPv4";
    return std::nullopt;
  }
  if (frame_ethertype(frame) != kEthertypeIpv4) {
    *why = "ethertype is not IPv4";
    return std::nullopt;
  }
  auto ip = frame.subspan(kEthHeaderSize);
  if ((ip[0] >> 4) != 4) {
    *why = "IP version is not 4";
    return std::nullopt;
  }
  Ipv4View v;
  v.header_size = size_t{ip[0] & 0x0fu} * 4;
  const size_t total = get16(ip, 2);
  if (v.header_size < kIpv4HeaderSize || total < v.header_size || total > ip.size()) {
    *why = "IPv4 header length " + std::to_string(v.header_size) + " / total length " +
           std::to_string(total) + " do not fit the " + std::to_string(ip.size()) + "-byte payload";
    return std::nullopt;
  }
  if (internet_checksum(ip.first(v.header_size)) != 0) {
    *why = "bad IPv4 header checksum";
    return std::nullopt;
  }
  if ((get16(ip, 6) & 0x3fff) != 0) {
    *why = "IPv4 fragment";
    return std::nullopt;
  }
  v.datagram = ip.first(total);
  v.protocol = ip[9];
  v.src = get32(ip, 12);
  v.dst = get32(ip, 16);
  return v;
}

}  // namespace

std::string ipv4_to_string(uint32_t addr) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xff, (addr >> 8) & 0xff,
                addr & 0xff);
  return buf;
}

std::optional<uint32_t> parse_ipv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}

uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial) {
  uint64_t sum = initial;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += static_cast<uint32_t>((bytes[i] << 8) | bytes[i + 1]);
  if (i < bytes.size()) sum += static_cast<uint32_t>(bytes[i] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint16_t frame_ethertype(std::span<const uint8_t> frame) {
  return frame.size() < kEthHeaderSize ? 0 : get16(frame, 12);
}

std::vector<uint8_t> make_udp_frame(const Mac& eth_dst, const Mac& eth_src, uint32_t ip_src,
                                    uint32_t ip_dst, uint16_t src_port, uint16_t dst_port,
                                    std::span<const uint8_t> payload) {
  const size_t udp_size = kUdpHeaderSize + payload.size();
  std::vector<uint8_t> f(kEthHeaderSize + kIpv4HeaderSize + udp_size, 0);
  put_eth(&f, eth_dst, eth_src, kEthertypeIpv4);
  const size_t ip = kEthHeaderSize;
  f[ip] = 0x45;
  put16(&f, ip + 2, static_cast<uint16_t>(kIpv4HeaderSize + udp_size));
  f[ip + 8] = 64;
  f[ip + 9] = kIpProtoUdp;
  put32(&f, ip + 12, ip_src);
  put32(&f, ip + 16, ip_dst);
  put16(&f, ip + 10, internet_checksum(std::span(f).subspan(ip, kIpv4HeaderSize)));
  const size_t udp = ip + kIpv4HeaderSize;
  put16(&f, udp, src_port);
  put16(&f, udp + 2, dst_port);
  put16(&f, udp + 4, static_cast<uint16_t>(udp_size));
  for (size_t i = 0; i < payload.size(); ++i) f[udp + kUdpHeaderSize + i] = payload[i];
  // Pseudo-header: source, destination, zero + protocol, UDP length (RFC 768).
  uint32_t pseudo = (ip_src >> 16) + (ip_src & 0xffff) + (ip_dst >> 16) + (ip_dst & 0xffff) +
                    kIpProtoUdp + static_cast<uint32_t>(udp_size);
  uint16_t sum = internet_checksum(std::span(f).subspan(udp), pseudo);
  put16(&f, udp + 6, sum == 0 ? 0xffff : sum);
  return f;
}

std::optional<UdpPacket> parse_udp_frame(std::span<const uint8_t> frame, std::string* why) {
  auto ip = parse_ipv4_frame(frame, why);
  if (!ip) return std::nullopt;
  if (ip->protocol != kIpProtoUdp) {
    *why = "IPv4 protocol " + std::to_string(ip->protocol) + " is not UDP";
    return std::nullopt;
  }
  auto udp = ip->datagram.subspan(ip->header_size);
  if (udp.size() < kUdpHeaderSize || get16(udp, 4) < kUdpHeaderSize || get16(udp, 4) > udp.size()) {
    *why = "UDP length does not fit the IPv4 payload";
    return std::nullopt;
  }
  udp = udp.first(get16(udp, 4));
  if (get16(udp, 6) != 0) {
    uint32_t pseudo = (ip->src >> 16) + (ip->src & 0xffff) + (ip->dst >> 16) + (ip->dst & 0xffff) +
                      kIpProtoUdp + static_cast<uint32_t>(udp.size());
    if (internet_checksum(udp, pseudo) != 0) {
      *why = "bad UDP checksum";
      return std::nullopt;
    }
  }
  UdpPacket p;
  p.eth_dst = frame_dst(frame);
  p.eth_src = frame_src(frame);
  p.ip_src = ip->src;
  p.ip_dst = ip->dst;
  p.src_port = get16(udp, 0);
  p.dst_port = get16(udp, 2);
  p.payload.assign(udp.begin() + kUdpHeaderSize, udp.end());
  return p;
}

std::optional<TcpSegment> parse_tcp_frame(std::span<const uint8_t> frame, std::string* why) {
  auto ip = parse_ipv4_frame(frame, why);
  if (!ip) return std::nullopt;
  if (ip->protocol != kIpProtoTcp) {
    *why = "IPv4 protocol " + std::to_string(ip->protocol) + " is not TCP";
    return std::nullopt;
  }
  auto tcp = ip->datagram.subspan(ip->header_size);
  if (tcp.size() < 20) {
    *why = "TCP header truncated";
    return std::nullopt;
  }
  TcpSegment s;
  s.eth_dst = frame_dst(frame);
  s.eth_src = frame_src(frame);
  s.ip_src = ip->src;
  s.ip_dst = ip->dst;
  s.src_port = get16(tcp, 0);
  s.dst_port = get16(tcp, 2);
  s.seq = get32(tcp, 4);
  s.ack = get32(tcp, 8);
  s.flags = tcp[13];
  s.window = get16(tcp, 14);
  const size_t data_offset = static_cast<size_t>(tcp[12] >> 4) * 4;
  if (data_offset < 20 || data_offset > tcp.size()) {
    *why = "TCP data offset " + std::to_string(data_offset) + " does not fit the segment";
    return std::nullopt;
  }
  s.payload.assign(tcp.begin() + static_cast<std::ptrdiff_t>(data_offset), tcp.end());
  return s;
}

std::vector<uint8_t> make_tcp_frame(const TcpSegment& s) {
  constexpr size_t kTcpHeaderSize = 20;
  const size_t tcp_size = kTcpHeaderSize + s.payload.size();
  std::vector<uint8_t> f(kEthHeaderSize + kIpv4HeaderSize + tcp_size, 0);
  put_eth(&f, s.eth_dst, s.eth_src, kEthertypeIpv4);
  const size_t ip = kEthHeaderSize;
  f[ip] = 0x45;
  put16(&f, ip + 2, static_cast<uint16_t>(kIpv4HeaderSize + tcp_size));
  f[ip + 8] = 64;
  f[ip + 9] = kIpProtoTcp;
  put32(&f, ip + 12, s.ip_src);
  put32(&f, ip + 16, s.ip_dst);
  put16(&f, ip + 10, internet_checksum(std::span(f).subspan(ip, kIpv4HeaderSize)));
  const size_t tcp = ip + kIpv4HeaderSize;
  put16(&f, tcp, s.src_port);
  put16(&f, tcp + 2, s.dst_port);
  put32(&f, tcp + 4, s.seq);
  put32(&f, tcp + 8, s.ack);
  f[tcp + 12] = static_cast<uint8_t>((kTcpHeaderSize / 4) << 4);
  f[tcp + 13] = s.flags;
  put16(&f, tcp + 14, s.window);
  for (size_t i = 0; i < s.payload.size(); ++i) f[tcp + kTcpHeaderSize + i] = s.payload[i];
  // Pseudo-header as UDP's (RFC 793 section 3.1).
  const uint32_t pseudo = (s.ip_src >> 16) + (s.ip_src & 0xffff) + (s.ip_dst >> 16) +
                          (s.ip_dst & 0xffff) + kIpProtoTcp + static_cast<uint32_t>(tcp_size);
  put16(&f, tcp + 16, internet_checksum(std::span(f).subspan(tcp), pseudo));
  return f;
}

namespace {
std::vector<uint8_t> make_arp(const Mac& eth_dst, uint16_t op, const Mac& sender_mac,
                              uint32_t sender_ip, const Mac& target_mac, uint32_t target_ip) {
  std::vector<uint8_t> f(kEthHeaderSize + kArpSize, 0);
  put_eth(&f, eth_dst, sender_mac, kEthertypeArp);
  const size_t a = kEthHeaderSize;
  put16(&f, a, 1);  // Ethernet
  put16(&f, a + 2, kEthertypeIpv4);
  f[a + 4] = 6;
  f[a + 5] = 4;
  put16(&f, a + 6, op);
  put_mac(&f, a + 8, sender_mac);
  put32(&f, a + 14, sender_ip);
  put_mac(&f, a + 18, target_mac);
  put32(&f, a + 24, target_ip);
  return f;
}
}  // namespace

std::vector<uint8_t> make_arp_request(const Mac& sender_mac, uint32_t sender_ip,
                                      uint32_t target_ip) {
  return make_arp(kBroadcastMac, 1, sender_mac, sender_ip, Mac{}, target_ip);
}

std::vector<uint8_t> make_arp_reply(const Mac& sender_mac, uint32_t sender_ip,
                                    const Mac& target_mac, uint32_t target_ip) {
  return make_arp(target_mac, 2, sender_mac, sender_ip, target_mac, target_ip);
}

std::optional<ArpPacket> parse_arp(std::span<const uint8_t> frame, std::string* why) {
  std::string ignored;
  if (why == nullptr) why = &ignored;
  if (frame_ethertype(frame) != kEthertypeArp) {
    *why = "ethertype is not ARP";
    return std::nullopt;
  }
  if (frame.size() < kEthHeaderSize + kArpSize) {
    *why = "ARP frame of " + std::to_string(frame.size()) + " bytes is truncated";
    return std::nullopt;
  }
  auto a = frame.subspan(kEthHeaderSize);
  if (get16(a, 0) != 1 || get16(a, 2) != kEthertypeIpv4 || a[4] != 6 || a[5] != 4) {
    *why = "not an Ethernet/IPv4 ARP packet";
    return std::nullopt;
  }
  ArpPacket p;
  p.eth_dst = frame_dst(frame);
  p.eth_src = frame_src(frame);
  p.op = get16(a, 6);
  p.sender_mac = get_mac(a, 8);
  p.sender_ip = get32(a, 14);
  p.target_mac = get_mac(a, 18);
  p.target_ip = get32(a, 24);
  return p;
}

}  // namespace qswitch::test_support
