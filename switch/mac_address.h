// switch/mac_address.h: a 48-bit Ethernet address as a value type.
// Kept as six bytes in wire order; `key()` packs it into the low 48 bits of a uint64_t so a
// VLAN id can share the word later (bits 48..59) without widening table keys.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace qswitch::sw {

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  static MacAddress from_wire(const uint8_t* p) {
    MacAddress m;
    std::memcpy(m.bytes.data(), p, 6);
    return m;
  }
  // Accepts "52:54:00:12:34:56" (also '-' separated, either case). nullopt on anything else.
  static std::optional<MacAddress> parse(std::string_view text);
  std::string to_string() const;
  // A guest NIC's address as QEMU makes them: 52:54:00 (QEMU's prefix; 0x52 has the locally
  // administered bit set and the group bit clear) then the low 24 bits of `random`, high byte
  // first. The caller brings the randomness (tools/qswitch/config/config_parse.h:
  // random_guest_mac).
  static MacAddress qemu_guest(uint32_t random);

  // Group bit (I/G, IEEE 802 section 8.2): broadcast and multicast.
  bool is_multicast() const { return (bytes[0] & 0x01) != 0; }
  bool is_broadcast() const {
    for (uint8_t b : bytes) {
      if (b != 0xff) return false;
    }
    return true;
  }
  bool is_zero() const {
    for (uint8_t b : bytes) {
      if (b != 0) return false;
    }
    return true;
  }
  // The six bytes as a big-endian 48-bit number: the switch keys every frame's source and
  // destination with it, so it is two loads, not a loop.
  uint64_t key() const { return key_at(bytes.data()); }
  // key() of the six bytes at `p`, read in place (a frame's address).
  static uint64_t key_at(const uint8_t* p) {
    if constexpr (std::endian::native == std::endian::little) {
      // Two loads and two byte swaps (GCC does not merge the six byte loads below into these).
      uint16_t hi;
      uint32_t lo;
      std::memcpy(&hi, p, sizeof hi);
      std::memcpy(&lo, p + 2, sizeof lo);
      return (uint64_t{__builtin_bswap16(hi)} << 32) | __builtin_bswap32(lo);
    } else {
      return (uint64_t{p[0]} << 40) | (uint64_t{p[1]} << 32) | (uint64_t{p[2]} << 24) |
             (uint64_t{p[3]} << 16) | (uint64_t{p[4]} << 8) | uint64_t{p[5]};
    }
  }
  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

}  // namespace qswitch::sw
