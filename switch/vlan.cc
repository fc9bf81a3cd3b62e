// switch/vlan.cc: see the header.
#include "switch/vlan.h"

#include <bit>

namespace qswitch::sw {

bool VlanSet::empty() const {
  for (uint64_t w : bits_) {
    if (w != 0) return false;
  }
  return true;
}

size_t VlanSet::count() const {
  size_t n = 0;
  for (uint64_t w : bits_) n += static_cast<size_t>(std::popcount(w));
  return n;
}

std::string VlanSet::to_string() const {
  std::string out;
  uint32_t v = 0;
  while (v < 4096) {
    if (!has(static_cast<uint16_t>(v))) {
      ++v;
      continue;
    }
    uint32_t end = v;
    while (end + 1 < 4096 && has(static_cast<uint16_t>(end + 1))) ++end;
    if (!out.empty()) out += ',';
    out += std::to_string(v);
    if (end > v) out += '-' + std::to_string(end);
    v = end + 1;
  }
  return out;
}

std::string VlanMembership::to_string() const {
  if (!trunk) return "access " + std::to_string(untagged);
  std::string out = "trunk " + tagged.to_string();
  if (untagged != 0) out += " native " + std::to_string(untagged);
  return out;
}

bool parse_vlan_id(std::string_view text, uint16_t& out, std::string& error) {
  uint32_t v = 0;
  bool ok = !text.empty() && text.size() <= 4;
  for (char c : text) {
    if (c < '0' || c > '9') ok = false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || v < kMinVlanId || v > kMaxVlanId) {
    error = "\"" + std::string(text) + "\" is not a VLAN id (1..4094)";
    return false;
  }
  out = static_cast<uint16_t>(v);
  return true;
}

bool parse_vlan_list(std::string_view text, VlanSet& out, std::string& error) {
  VlanSet set = out;
  if (text.empty()) {
    error = "an empty VLAN list (expected VLAN ids 1..4094 and ranges, as in 10,20-29)";
    return false;
  }
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    const std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    const size_t dash = item.find('-');
    uint16_t first = 0;
    uint16_t last = 0;
    if (dash == std::string_view::npos) {
      if (!parse_vlan_id(item, first, error)) return false;
      last = first;
    } else {
      if (!parse_vlan_id(item.substr(0, dash), first, error) ||
          !parse_vlan_id(item.substr(dash + 1), last, error)) {
        error = "\"" + std::string(item) + "\": " + error;
        return false;
      }
      if (last < first) {
        error = "\"" + std::string(item) + "\" is an empty range (write the lower id first)";
        return false;
      }
    }
    for (uint32_t v = first; v <= last; ++v) set.add(static_cast<uint16_t>(v));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  out = set;
  return true;
}

}  // namespace qswitch::sw
