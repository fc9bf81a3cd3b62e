// switch/vlan.h: IEEE 802.1Q VLANs: which VLANs a port carries, and how it carries them.
//
// Theory of operation
// - Every port is an access port of one VLAN (its frames untagged on the wire; default VLAN 1,
//   so a switch configured without VLANs is one flat segment as before) or a trunk: tagged
//   frames of a set of VLANs, and optionally the untagged frames of one "native" VLAN. That is
//   VlanMembership; L2Switch classifies, learns, floods and tags by it (l2_switch.h).
// - VLAN ids are 1..4094 (0 means "priority tag, no VLAN" on the wire, 4095 is reserved): a
//   VlanSet holds 4096 bits (512 bytes), one test per frame.
// - Only 0x8100 (C-VLAN) is a tag: qswitch is an 802.1Q bridge, as a Linux bridge with
//   vlan_filtering is by default. A 0x88a8 (S-VLAN, QinQ) frame is an ordinary untagged frame
//   of the port's VLAN, carried as it is.
// - The text forms (parse_vlan_list(), VlanMembership::to_string()) are the ones the command
//   line, the control API and the lab file use: "10,20-29".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qswitch::sw {

inline constexpr uint16_t kTpidVlan = 0x8100;
inline constexpr uint32_t kVlanTagSize = 4;
inline constexpr uint16_t kMinVlanId = 1;
inline constexpr uint16_t kMaxVlanId = 4094;
inline constexpr uint16_t kDefaultVlan = 1;
inline constexpr uint16_t kVlanIdMask = 0x0fff;

class VlanSet {
 public:
  bool has(uint16_t vid) const { return ((bits_[(vid >> 6) & 63] >> (vid & 63)) & 1) != 0; }
  void add(uint16_t vid) { bits_[(vid >> 6) & 63] |= uint64_t{1} << (vid & 63); }
  void remove(uint16_t vid) { bits_[(vid >> 6) & 63] &= ~(uint64_t{1} << (vid & 63)); }
  bool empty() const;
  size_t count() const;
  // f(vid) for each member, in increasing order.
  template <typename F>
  void for_each(F&& f) const {
    for (uint32_t v = 0; v < 4096; ++v) {
      if (has(static_cast<uint16_t>(v))) f(static_cast<uint16_t>(v));
    }
  }
  // "10,20-29" ("" when empty).
  std::string to_string() const;
  bool operator==(const VlanSet&) const = default;

 private:
  std::array<uint64_t, 64> bits_{};
};

struct VlanMembership {
  uint16_t untagged = kDefaultVlan;  // an access port's VLAN, a trunk's native VLAN; 0: none
  bool trunk = false;
  VlanSet tagged;  // a trunk's tagged VLANs

  static VlanMembership access(uint16_t vid) { return VlanMembership{vid, false, {}}; }
  static VlanMembership make_trunk(const VlanSet& tagged, uint16_t native = 0) {
    return VlanMembership{native, true, tagged};
  }
  // The port carries frames of `vid` (1..4094).
  bool carries(uint16_t vid) const { return vid == untagged || (trunk && tagged.has(vid)); }
  // Frames of `vid` leave this port tagged (a trunk's VLAN other than its native one).
  bool tags(uint16_t vid) const { return trunk && vid != untagged; }
  bool is_default() const { return !trunk && untagged == kDefaultVlan; }
  // "access 10", "trunk 10,20-29", "trunk 10,20-29 native 1".
  std::string to_string() const;
  bool operator==(const VlanMembership&) const = default;
};

// "10", "10,20", "20-29,40": VLAN ids 1..4094, ranges inclusive, into `out` (added to what is
// there). false with `error` naming the item and the accepted range; `out` untouched then.
bool parse_vlan_list(std::string_view text, VlanSet& out, std::string& error);
// One VLAN id, "1".."4094"; false with `error` naming the text and the accepted range.
bool parse_vlan_id(std::string_view text, uint16_t& out, std::string& error);

}  // namespace qswitch::sw
