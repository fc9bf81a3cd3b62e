// tools/qswitch/config/vlan_keys.h: where a port goes, as every way of making one says it: the
// keys vlan=N (an access port of VLAN N), trunk=LIST (tagged VLANs, "10,20-29") and native=N (a
// trunk's untagged VLAN), into a sw::VlanMembership (switch/vlan.h).
//
// Theory of operation
// - On the command line the keys follow the port's own text, comma-separated, in any order and
//   among the kind's own keys: "--listen unix:/tmp/lab.sock,vlan=10", "--listen
//   unix:/tmp/t.sock,trunk=10,20-29,native=1", "--vxlan vni=42,vlan=10,local=...". A trunk
//   list's items are commas too: bare items (digits and ranges) right after trunk= belong to
//   its list. take_vlan_keys() takes the keys out and leaves the rest, in order, for the kind's
//   own parser; a path that itself contains ",vlan=" cannot be written (none of QEMU's can).
// - The control API and the lab file give the keys one by one: VlanKeys::set(), then
//   VlanKeys::resolve().
// - Checked before anything starts: ids 1..4094, vlan= and trunk= exclude each other, native=
//   needs trunk=, a key given twice is an error. No key at all: access VLAN 1.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "switch/vlan.h"

namespace qswitch::tools {

class VlanKeys {
 public:
  // True when `key` is one of vlan, trunk, native.
  static bool is_vlan_key(std::string_view key);
  // Takes one key's value; false with `error` ("vlan=5000: ...") on a bad value or a repeat.
  bool set(std::string_view key, std::string_view value, std::string& error);
  // Adds `item` (a bare "20" or "20-29" after trunk=) to the trunk list.
  bool add_to_trunk(std::string_view item, std::string& error);
  // The membership the keys say; false with `error` when they contradict each other.
  bool resolve(sw::VlanMembership& out, std::string& error) const;
  bool any() const { return vlan_ || trunk_ || native_; }

 private:
  std::optional<uint16_t> vlan_;
  std::optional<sw::VlanSet> trunk_;
  std::optional<uint16_t> native_;
};

// Takes the VLAN keys out of a comma-separated port spec (see the theory above): `rest` gets the
// other items, in order, joined with commas; `vlans` what the keys say (access VLAN 1 without
// any). false with `error` naming the key and what would be accepted.
bool take_vlan_keys(std::string_view text, std::string& rest, sw::VlanMembership& vlans,
                    std::string& error);
// The same, leaving the keys unresolved in `keys` (more may follow from elsewhere: the control
// API's arguments).
bool take_vlan_keys(std::string_view text, std::string& rest, VlanKeys& keys, std::string& error);

}  // namespace qswitch::tools
