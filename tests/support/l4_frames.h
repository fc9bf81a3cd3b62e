// tests/support/l4_frames.h: UDP and TCP frames over IPv4 or IPv6, built and checked by code of
// the tests' own (not the switch's), for the slirp port's DNS front end: its unit tests, its
// fuzz target and the integration test. Header-only, so that the fuzz target needs no library.
//
// Theory of operation
// - build_l4() writes Ethernet + IPv4 (20 bytes, header checksum) or IPv6 (40 bytes) + a UDP
//   or TCP header (TCP: with the options given) + payload, with the transport checksum over the
//   RFC 768 / RFC 9293 / RFC 8200 pseudo-header.
// - parse_l4() takes a frame apart and says why it is not well formed: Ethernet type, IP
//   version and lengths (exact: no truncation, no padding unless asked for), the IPv4 header
//   checksum, the UDP length, the UDP or TCP checksum (a UDP checksum of 0 is accepted over IPv4
//   only), the TCP data offset. Nothing is read past the frame.
// - slirp_dns: the addresses of a guest's DNS query to the slirp port and of its reply, and
//   query_packet(), the UDP or TCP packet such a query travels in.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qswitch::test_support {

struct L4Packet {
  std::array<uint8_t, 6> eth_dst{};
  std::array<uint8_t, 6> eth_src{};
  bool ipv6 = false;
  std::array<uint8_t, 16> src{};  // IPv4: the first 4 bytes
  std::array<uint8_t, 16> dst{};
  uint8_t proto = 17;  // 17 UDP, 6 TCP
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  // TCP only
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;  // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
  uint16_t window = 0;
  std::vector<uint8_t> options;  // raw, a multiple of 4 bytes
  std::vector<uint8_t> payload;
};

namespace l4_detail {
inline uint32_t add(const uint8_t* p, size_t n, uint32_t sum) {
  for (size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? uint32_t{p[i]} << 8 : uint32_t{p[i]};
  return sum;
}
inline uint16_t finish(uint32_t sum) {
  while (sum > 0xffff) sum = (sum >> 16) + (sum & 0xffff);
  return static_cast<uint16_t>(~sum & 0xffff);
}
inline void put16(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x);
}
inline void put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  put16(v, at, x >> 16);
  put16(v, at + 2, x & 0xffff);
}
inline uint32_t get16(const uint8_t* p) { return (uint32_t{p[0]} << 8) | p[1]; }
inline uint32_t get32(const uint8_t* p) { return (get16(p) << 16) | get16(p + 2); }
inline uint32_t pseudo(bool v6, const uint8_t* src, const uint8_t* dst, uint8_t proto, size_t len) {
  const size_t n = v6 ? 16 : 4;
  return add(src, n, add(dst, n, 0)) + proto + static_cast<uint32_t>(len);
}
}  // namespace l4_detail

inline std::vector<uint8_t> build_l4(const L4Packet& p) {
  using namespace l4_detail;
  const size_t ip = p.ipv6 ? 40 : 20;
  const size_t l4h = p.proto == 6 ? 20 + p.options.size() : 8;
  const size_t l4 = l4h + p.payload.size();
  std::vector<uint8_t> f(14 + ip + l4, 0);
  std::copy(p.eth_dst.begin(), p.eth_dst.end(), f.begin());
  std::copy(p.eth_src.begin(), p.eth_src.end(), f.begin() + 6);
  const size_t i = 14;
  if (p.ipv6) {
    put16(f, 12, 0x86dd);
    f[i] = 0x60;
    put16(f, i + 4, static_cast<uint32_t>(l4));
    f[i + 6] = p.proto;
    f[i + 7] = 64;
    std::copy(p.src.begin(), p.src.end(), f.begin() + i + 8);
    std::copy(p.dst.begin(), p.dst.end(), f.begin() + i + 24);
  } else {
    put16(f, 12, 0x0800);
    f[i] = 0x45;
    put16(f, i + 2, static_cast<uint32_t>(ip + l4));
    f[i + 8] = 64;
    f[i + 9] = p.proto;
    std::copy(p.src.begin(), p.src.begin() + 4, f.begin() + i + 12);
    std::copy(p.dst.begin(), p.dst.begin() + 4, f.begin() + i + 16);
    put16(f, i + 10, finish(add(&f[i], 20, 0)));
  }
  const size_t t = i + ip;
  put16(f, t, p.src_port);
  put16(f, t + 2, p.dst_port);
  size_t csum_at = 0;
  if (p.proto == 6) {
    put32(f, t + 4, p.seq);
    put32(f, t + 8, p.ack);
    f[t + 12] = static_cast<uint8_t>((l4h / 4) << 4);
    f[t + 13] = p.flags;
    put16(f, t + 14, p.window);
    std::copy(p.options.begin(), p.options.end(), f.begin() + t + 20);
    csum_at = t + 16;
  } else {
    put16(f, t + 4, static_cast<uint32_t>(l4));
    csum_at = t + 6;
  }
  std::copy(p.payload.begin(), p.payload.end(), f.begin() + t + l4h);
  uint16_t c = finish(
      add(&f[t], l4,
          pseudo(p.ipv6, &f[i + (p.ipv6 ? 8 : 12)], &f[i + (p.ipv6 ? 24 : 16)], p.proto, l4)));
  if (p.proto == 17 && c == 0) c = 0xffff;
  put16(f, csum_at, c);
  return f;
}

// The packet in `f`, or nullopt with the reason in *why. With `padded`, a frame of 60 bytes may
// end in Ethernet padding after the IP packet (what a switch port adds to a short frame).
inline std::optional<L4Packet> parse_l4(const uint8_t* f, size_t size, std::string* why,
                                        bool padded = false) {
  using namespace l4_detail;
  auto fail = [&](const char* w) -> std::optional<L4Packet> {
    if (why != nullptr) *why = w;
    return std::nullopt;
  };
  if (size < 14) return fail("shorter than an Ethernet header");
  L4Packet p;
  std::copy(f, f + 6, p.eth_dst.begin());
  std::copy(f + 6, f + 12, p.eth_src.begin());
  const uint32_t type = get16(f + 12);
  const uint8_t* ip = f + 14;
  size_t avail = size - 14;
  if (padded && size == 60 && get16(f + 12) == 0x0800 && avail >= 20 && get16(ip + 2) >= 20 &&
      get16(ip + 2) < avail) {
    avail = get16(ip + 2);
  }
  size_t l4 = 0;
  const uint8_t* t = nullptr;
  if (type == 0x86dd) {
    if (avail < 40 || (ip[0] >> 4) != 6) return fail("bad IPv6 header");
    p.ipv6 = true;
    if (get16(ip + 4) != avail - 40) return fail("IPv6 payload length is not the frame's");
    p.proto = ip[6];
    std::copy(ip + 8, ip + 24, p.src.begin());
    std::copy(ip + 24, ip + 40, p.dst.begin());
    t = ip + 40;
    l4 = avail - 40;
  } else if (type == 0x0800) {
    if (avail < 20 || ip[0] != 0x45) return fail("bad IPv4 header");
    if (get16(ip + 2) != avail) return fail("IPv4 total length is not the frame's");
    if (finish(add(ip, 20, 0)) != 0) return fail("bad IPv4 header checksum");
    if ((get16(ip + 6) & 0x3fff) != 0) return fail("IPv4 fragment");
    p.proto = ip[9];
    std::copy(ip + 12, ip + 16, p.src.begin());
    std::copy(ip + 16, ip + 20, p.dst.begin());
    t = ip + 20;
    l4 = avail - 20;
  } else {
    return fail("not IPv4 or IPv6");
  }
  const uint8_t* s = p.src.data();
  const uint8_t* d = p.dst.data();
  if (p.proto == 17) {
    if (l4 < 8 || get16(t + 4) != l4) return fail("bad UDP length");
    if (get16(t + 6) == 0 ? p.ipv6 : finish(add(t, l4, pseudo(p.ipv6, s, d, 17, l4))) != 0) {
      return fail("bad UDP checksum");
    }
    p.payload.assign(t + 8, t + l4);
  } else if (p.proto == 6) {
    if (l4 < 20) return fail("short TCP header");
    const size_t off = size_t{static_cast<uint8_t>(t[12] >> 4)} * 4;
    if (off < 20 || off > l4) return fail("bad TCP data offset");
    if (finish(add(t, l4, pseudo(p.ipv6, s, d, 6, l4))) != 0) return fail("bad TCP checksum");
    p.seq = get32(t + 4);
    p.ack = get32(t + 8);
    p.flags = t[13];
    p.window = static_cast<uint16_t>(get16(t + 14));
    p.options.assign(t + 20, t + off);
    p.payload.assign(t + off, t + l4);
  } else {
    return fail("neither UDP nor TCP");
  }
  p.src_port = static_cast<uint16_t>(get16(t));
  p.dst_port = static_cast<uint16_t>(get16(t + 2));
  return p;
}

// A guest's DNS query to the slirp port on libslirp's default segment (10.0.2.0/24 and
// fec0::/64): from the guest (.15, fec0::15) to the DNS address (.3, fec0::3) port 53, sent to
// kDnsMac, the MAC libslirp answers ARP for 10.0.2.3 with. The reply comes from kReplyMac4 (the
// gateway's) over IPv4 and from kReplyMac6 over IPv6.
namespace slirp_dns {

inline constexpr std::array<uint8_t, 6> kGuestMac = {0x02, 0x71, 0, 0, 0, 0x51};
inline constexpr std::array<uint8_t, 6> kDnsMac = {0x52, 0x55, 0x0a, 0, 0x02, 0x03};
inline constexpr std::array<uint8_t, 6> kReplyMac4 = {0x52, 0x55, 0x0a, 0, 0x02, 0x02};
inline constexpr std::array<uint8_t, 6> kReplyMac6 = {0x52, 0x56, 0, 0, 0, 0x03};
inline constexpr std::array<uint8_t, 16> kGuest4 = {10, 0, 2, 15};
inline constexpr std::array<uint8_t, 16> kDns4 = {10, 0, 2, 3};
inline constexpr std::array<uint8_t, 16> kGuest6 = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0,
                                                    0,    0,    0, 0, 0, 0, 0, 0x15};
inline constexpr std::array<uint8_t, 16> kDns6 = {0xfe, 0xc0, 0, 0, 0, 0, 0, 0,
                                                  0,    0,    0, 0, 0, 0, 0, 0x03};

// A UDP (`proto` 17) or TCP (6) packet from `guest_mac` and the guest's `src_port` to the DNS
// address port 53, over IPv6 with `v6`; the payload and the TCP fields are the caller's.
inline L4Packet query_packet(bool v6, uint8_t proto, uint16_t src_port,
                             const std::array<uint8_t, 6>& guest_mac = kGuestMac) {
  L4Packet p;
  p.eth_dst = kDnsMac;
  p.eth_src = guest_mac;
  p.ipv6 = v6;
  p.src = v6 ? kGuest6 : kGuest4;
  p.dst = v6 ? kDns6 : kDns4;
  p.proto = proto;
  p.src_port = src_port;
  p.dst_port = 53;
  return p;
}

}  // namespace slirp_dns

}  // namespace qswitch::test_support
