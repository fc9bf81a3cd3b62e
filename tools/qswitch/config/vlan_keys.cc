// tools/qswitch/config/vlan_keys.cc: see the header.
#include "tools/qswitch/config/vlan_keys.h"

namespace qswitch::tools {

namespace {

bool is_list_item(std::string_view item) {
  if (item.empty()) return false;
  for (char c : item) {
    if ((c < '0' || c > '9') && c != '-') return false;
  }
  return true;
}

}  // namespace

bool VlanKeys::is_vlan_key(std::string_view key) {
  return key == "vlan" || key == "trunk" || key == "native";
}

bool VlanKeys::set(std::string_view key, std::string_view value, std::string& error) {
  const std::string item = std::string(key) + "=" + std::string(value);
  if ((key == "vlan" && vlan_) || (key == "trunk" && trunk_) || (key == "native" && native_)) {
    error = item + ": " + std::string(key) + "= is given twice";
    return false;
  }
  std::string why;
  if (key == "trunk") {
    sw::VlanSet set;
    if (!sw::parse_vlan_list(value, set, why)) {
      error = item + ": " + why;
      return false;
    }
    trunk_ = set;
    return true;
  }
  uint16_t id = 0;
  if (!sw::parse_vlan_id(value, id, why)) {
    error = item + ": " + why;
    return false;
  }
  if (key == "vlan") {
    vlan_ = id;
  } else if (key == "native") {
    native_ = id;
  } else {
    error = item + ": unknown key (expected vlan=, trunk= or native=)";
    return false;
  }
  return true;
}

bool VlanKeys::add_to_trunk(std::string_view item, std::string& error) {
  std::string why;
  if (!trunk_ || !sw::parse_vlan_list(item, *trunk_, why)) {
    error = "trunk=...," + std::string(item) + ": " + (trunk_ ? why : "not after trunk=");
    return false;
  }
  return true;
}

bool VlanKeys::resolve(sw::VlanMembership& out, std::string& error) const {
  if (vlan_ && (trunk_ || native_)) {
    error = "vlan= (an access port of one VLAN) and " + std::string(trunk_ ? "trunk=" : "native=") +
            " (a trunk's) exclude each other";
    return false;
  }
  if (native_ && !trunk_) {
    error = "native=" + std::to_string(*native_) +
            ": a native VLAN is a trunk's untagged VLAN (give trunk=LIST too, or vlan= for an "
            "access port)";
    return false;
  }
  if (trunk_) {
    out = sw::VlanMembership::make_trunk(*trunk_, native_.value_or(0));
  } else {
    out = sw::VlanMembership::access(vlan_.value_or(sw::kDefaultVlan));
  }
  return true;
}

bool take_vlan_keys(std::string_view text, std::string& rest, sw::VlanMembership& vlans,
                    std::string& error) {
  VlanKeys keys;
  std::string kept;
  sw::VlanMembership m;
  if (!take_vlan_keys(text, kept, keys, error) || !keys.resolve(m, error)) return false;
  rest = std::move(kept);
  vlans = m;
  return true;
}

bool take_vlan_keys(std::string_view text, std::string& rest, VlanKeys& keys, std::string& error) {
  std::string kept;
  bool kept_any = false;
  bool in_trunk = false;  // the last key was trunk=: bare list items continue it
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    const size_t eq = item.find('=');
    const std::string_view key = eq == std::string_view::npos ? item : item.substr(0, eq);
    if (eq != std::string_view::npos && VlanKeys::is_vlan_key(key)) {
      if (!keys.set(key, item.substr(eq + 1), error)) return false;
      in_trunk = key == "trunk";
    } else if (in_trunk && is_list_item(item)) {
      if (!keys.add_to_trunk(item, error)) return false;
    } else {
      in_trunk = false;
      if (kept_any) kept += ',';
      kept += item;
      kept_any = true;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  rest = std::move(kept);
  return true;
}

}  // namespace qswitch::tools
