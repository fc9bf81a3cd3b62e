// backends/vxlan/vxlan_header.h: the 8-byte VXLAN header (RFC 7348 section 5), encoded and
// decoded without touching anything else, so it is unit-tested on its own.
//
//    0                   1                   2                   3
//   |R|R|R|R|I|R|R|R|            Reserved                           |
//   |                VXLAN Network Identifier (VNI) |   Reserved    |
//
// - Encoding: flags 0x08 (the I bit), 24 reserved zero bits, the 24-bit VNI, 8 reserved zero bits.
// - Decoding: the I bit must be set ("MUST be set to 1 for a valid VXLAN Network ID"); the other
//   flag bits and the reserved fields are ignored on receipt as the RFC says ("MUST be set to
//   zero on transmission and ignored on receipt"), so extensions that use them (VXLAN-GBP's
//   G bit and policy id) still reach us as plain VXLAN.
// - check_vxlan_datagram() is the port's whole receive check of one datagram, minus the
//   source address (which remote sent it): length, header, VNI, in that order.
#pragma once

#include <cstdint>
#include <optional>

#include "switch/frame.h"

namespace qswitch::backends {

inline constexpr uint32_t kVxlanHeaderSize = 8;
inline constexpr uint32_t kVxlanMaxVni = 0xffffff;  // 24 bits
inline constexpr uint8_t kVxlanFlagI = 0x08;
inline constexpr uint16_t kVxlanDefaultPort = 4789;  // IANA, RFC 7348 section 5

inline void encode_vxlan_header(uint32_t vni, uint8_t out[kVxlanHeaderSize]) {
  out[0] = kVxlanFlagI;
  out[1] = 0;
  out[2] = 0;
  out[3] = 0;
  out[4] = static_cast<uint8_t>(vni >> 16);
  out[5] = static_cast<uint8_t>(vni >> 8);
  out[6] = static_cast<uint8_t>(vni);
  out[7] = 0;
}

// The VNI of a header whose I bit is set; nullopt otherwise.
inline std::optional<uint32_t> decode_vxlan_header(const uint8_t in[kVxlanHeaderSize]) {
  if ((in[0] & kVxlanFlagI) == 0) return std::nullopt;
  return (uint32_t{in[4]} << 16) | (uint32_t{in[5]} << 8) | uint32_t{in[6]};
}

// The receive check of one datagram of `len` bytes (VXLAN header included) whose first
// kVxlanHeaderSize bytes landed in `header`, `truncated` when the kernel cut it (MSG_TRUNC).
// The header is read only when the datagram is long enough to hold it and a minimal frame.
enum class VxlanRxCheck { kFrame, kOversize, kRunt, kNoIFlag, kWrongVni };
struct VxlanRx {
  VxlanRxCheck check = VxlanRxCheck::kRunt;
  uint32_t vni = 0;        // kFrame, kWrongVni: the datagram's VNI
  uint32_t frame_len = 0;  // kFrame: the inner Ethernet frame's length
};
inline VxlanRx check_vxlan_datagram(const uint8_t header[kVxlanHeaderSize], uint32_t len,
                                    bool truncated, uint32_t our_vni) {
  VxlanRx r;
  if (truncated || len > kVxlanHeaderSize + sw::kMaxFrameSize) {
    r.check = VxlanRxCheck::kOversize;
    return r;
  }
  if (len < kVxlanHeaderSize + sw::kMinFrameSize) {
    r.check = VxlanRxCheck::kRunt;
    return r;
  }
  const std::optional<uint32_t> vni = decode_vxlan_header(header);
  if (!vni) {
    r.check = VxlanRxCheck::kNoIFlag;  // RFC 7348 section 5
    return r;
  }
  r.vni = *vni;
  if (*vni != our_vni) {
    r.check = VxlanRxCheck::kWrongVni;
    return r;
  }
  r.check = VxlanRxCheck::kFrame;
  r.frame_len = len - kVxlanHeaderSize;
  return r;
}

}  // namespace qswitch::backends
