// switch/ip_address.h: an IPv4 or IPv6 address as a value type, for port security's IP half
// (port_security.h, address_book.h).
// Kept in wire order (network byte order): an IPv4 address in bytes[0..3], the rest zero, so
// comparing with a frame's bytes is a memcmp. parse() and to_string() are the text forms the
// command line, the lab file and the control API use ("10.0.2.15", "fec0::5054:ff:fe12:3456").
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "switch/mac_address.h"

namespace qswitch::sw {

struct IpAddress {
  enum class Family : uint8_t { kNone, kV4, kV6 };
  Family family = Family::kNone;
  std::array<uint8_t, 16> bytes{};

  static IpAddress v4(const uint8_t* wire) {
    IpAddress a;
    a.family = Family::kV4;
    std::memcpy(a.bytes.data(), wire, 4);
    return a;
  }
  static IpAddress v6(const uint8_t* wire) {
    IpAddress a;
    a.family = Family::kV6;
    std::memcpy(a.bytes.data(), wire, 16);
    return a;
  }
  // The IPv6 address of `mac` under the /64 `prefix` (the first 8 bytes of it): the modified
  // EUI-64 interface id of RFC 4291 appendix A, as SLAAC (RFC 4862) makes it.
  static IpAddress eui64(const std::array<uint8_t, 16>& prefix, const MacAddress& mac);
  // "10.0.2.15" or any RFC 4291 section 2.2 IPv6 text; nullopt on anything else.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;  // "" for kNone

  bool is_v4() const { return family == Family::kV4; }
  bool is_v6() const { return family == Family::kV6; }
  // 0.0.0.0, or :: (the unspecified addresses).
  bool is_unspecified() const;
  // fe80::/10 (RFC 4291 section 2.5.6).
  bool is_v6_link_local() const { return is_v6() && bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
  bool is_multicast() const {
    return is_v4() ? (bytes[0] & 0xf0) == 0xe0 : is_v6() && bytes[0] == 0xff;
  }
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

}  // namespace qswitch::sw
