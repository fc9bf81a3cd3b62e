// tests/support/ip_frames.h: IPv4, UDP, TCP and ARP frames that tests build and take apart, for
// talking to the slirp port (its gateway, its DHCP server) over the switch.
//
// Theory of operation
// - Addresses are uint32_t in host byte order (ipv4(10, 0, 2, 15)); frames are built in wire order
//   with correct IPv4 header and UDP checksums, so a strict receiver accepts them.
// - Parsers never trust a length from the wire: each returns nullopt, with the reason in *why,
//   unless every field it reads lies inside the frame (Ethernet padding after the IP datagram is
//   allowed and ignored). They check the IPv4 header checksum, and the UDP checksum when non-zero,
//   so a corrupt reply from the switch is reported as corrupt, not misread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/test_frames.h"

namespace qswitch::test_support {

inline constexpr uint16_t kEthertypeIpv4 = 0x0800;
inline constexpr uint16_t kEthertypeArp = 0x0806;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;

constexpr uint32_t ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (uint32_t{a} << 24) | (uint32_t{b} << 16) | (uint32_t{c} << 8) | d;
}
std::string ipv4_to_string(uint32_t addr);
std::optional<uint32_t> parse_ipv4(const std::string& text);

// The Internet checksum (RFC 1071) of `bytes`, starting from partial sum `initial`.
uint16_t internet_checksum(std::span<const uint8_t> bytes, uint32_t initial = 0);

// Ethernet + IPv4 (20-byte header, TTL 64, DF clear) + UDP with checksum.
std::vector<uint8_t> make_udp_frame(const Mac& eth_dst, const Mac& eth_src, uint32_t ip_src,
                                    uint32_t ip_dst, uint16_t src_port, uint16_t dst_port,
                                    std::span<const uint8_t> payload);

struct UdpPacket {
  Mac eth_dst{};
  Mac eth_src{};
  uint32_t ip_src = 0;
  uint32_t ip_dst = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  std::vector<uint8_t> payload;
};
// An IPv4/UDP frame (unfragmented), checked as described above.
std::optional<UdpPacket> parse_udp_frame(std::span<const uint8_t> frame, std::string* why);

struct TcpSegment {
  Mac eth_dst{};
  Mac eth_src{};
  uint32_t ip_src = 0;
  uint32_t ip_dst = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint8_t flags = 0;  // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  std::vector<uint8_t> payload;
};
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;
// An IPv4/TCP frame's addresses, ports, flags, sequence numbers, window and payload (the IPv4
// header checksum is checked; the data offset must fit the segment).
std::optional<TcpSegment> parse_tcp_frame(std::span<const uint8_t> frame, std::string* why);
// Ethernet + IPv4 + TCP (20-byte header, no options) with a correct checksum, from the fields of
// `s` (eth_*, ip_*, ports, flags, seq, ack, window, payload).
std::vector<uint8_t> make_tcp_frame(const TcpSegment& s);

struct ArpPacket {
  Mac eth_dst{};
  Mac eth_src{};
  uint16_t op = 0;  // 1 request, 2 reply
  Mac sender_mac{};
  uint32_t sender_ip = 0;
  Mac target_mac{};
  uint32_t target_ip = 0;
};
// Ethernet/IPv4 ARP. A request goes to broadcast with a zero target MAC; a reply is unicast.
std::vector<uint8_t> make_arp_request(const Mac& sender_mac, uint32_t sender_ip,
                                      uint32_t target_ip);
std::vector<uint8_t> make_arp_reply(const Mac& sender_mac, uint32_t sender_ip,
                                    const Mac& target_mac, uint32_t target_ip);
std::optional<ArpPacket> parse_arp(std::span<const uint8_t> frame, std::string* why);

uint16_t frame_ethertype(std::span<const uint8_t> frame);  // 0 when shorter than 14 bytes

}  // namespace qswitch::test_support
