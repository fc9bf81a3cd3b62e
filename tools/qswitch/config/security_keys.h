// tools/qswitch/config/security_keys.h: port security (switch/port_security.h) as every way of
// making a port says it: port-security=on|off, mac=MAC (repeatable: the port's own MACs from the
// start), max-macs=N (how many MACs it may send from, 1..64) and ip=ADDR (repeatable, IPv4 or
// IPv6: addresses it may send from besides what the switch's DHCP and SLAAC gave it, at most
// 64). mac=, max-macs= or ip= alone turn it on. Like the VLAN keys (vlan_keys.h) they follow the
// port's own text, comma-separated and in any order: "--listen unix:/tmp/g1.sock,port-security=on",
// "qswitch ctl port add listen unix:/tmp/g2.sock,mac=52:54:00:12:34:56".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switch/port_security.h"

namespace qswitch::tools {

class SecurityKeys {
 public:
  // True when `key` is one of port-security, mac, max-macs, ip.
  static bool is_security_key(std::string_view key);
  // Takes one key's value; false with `error` ("max-macs=0: ...") on a bad value or a repeat.
  bool set(std::string_view key, std::string_view value, std::string& error);
  // The security the keys say (off without any); false with `error` when they contradict.
  bool resolve(sw::PortSecurity& out, std::string& error) const;

 private:
  std::optional<bool> on_;
  std::vector<sw::MacAddress> macs_;
  std::optional<uint32_t> max_macs_;
  std::vector<sw::IpAddress> ips_;
};

// Takes the security keys out of a comma-separated port spec: `rest` gets the other items, in
// order; `keys` what they said (more may follow from elsewhere). false with `error`.
bool take_security_keys(std::string_view text, std::string& rest, SecurityKeys& keys,
                        std::string& error);

}  // namespace qswitch::tools
