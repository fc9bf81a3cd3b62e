// switch/address_book.h: the addresses the switch itself gave guests, for port security's IP half
// (port_security.h).
//
// Theory of operation
// - Keyed by (VLAN, MAC): a guest's DHCP lease is its MAC's in the VLAN where the DHCP server
//   (the slirp port's, slirp/dhcp_server.h) gave it. The slirp port of a VLAN says it serves
//   that VLAN (serve(), with its IPv6 prefix), binds a MAC's IPv4 address when its DHCP server
//   ACKs it (static lease=MAC:IP leases too, once ACKed), and unbinds it when the lease is
//   released, declined, expires or goes to another MAC. withdraw() forgets the VLAN and its
//   leases (the slirp port went). One slirp port per VLAN, so one DHCP server per VLAN: a MAC
//   has at most one lease in a VLAN. Each serve() names its owner (the slirp port): a port that
//   replaces another (a reload that makes the new one before the old one goes) owns the VLAN
//   from then on, and the old one's withdraw() leaves it served.
// - SLAAC (RFC 4862): a guest's IPv6 address in a served VLAN is its MAC's modified EUI-64
//   interface id under the slirp port's /64 prefix (libslirp advertises vprefix_addr6 /
//   vprefix_len, default fec0::/64); nothing is stored per guest. A prefix length other than 64
//   gives no SLAAC address (a Linux guest does not autoconfigure one either). Guests that make
//   privacy (RFC 8981) or stable-privacy (RFC 7217) addresses need `ip=` for them.
// - serves(vlan): a VLAN with a slirp port is one where IP sources are checked on secured ports
//   (a VLAN without one, and a port without ip= keys: only MACs are; L2Switch::checks_ip).
// - Per frame on a secured port only: serves() is a bit test, lease() one hash lookup, slaac() a
//   scan of the served prefixes (one per slirp port). Changes (a DHCP ACK) may allocate; lookups
//   never do. Bounded: at most one lease per (VLAN, MAC) a DHCP server bound, and the DHCP
//   server keeps at most max_leases records.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "switch/ip_address.h"
#include "switch/mac_address.h"
#include "switch/vlan.h"

namespace qswitch::sw {

class AddressBook {
 public:
  // `vlan` has a slirp port (`owner`) whose DHCP server binds leases here; `prefix6` (kNone: IPv6
  // off) of length `prefix6_len` is the prefix its router advertisements give.
  void serve(uint16_t vlan, const IpAddress& prefix6, uint8_t prefix6_len,
             const void* owner = nullptr);
  // `owner` no longer serves `vlan`: when it is the VLAN's owner, the VLAN and its leases are
  // forgotten; otherwise (another one serves it now) nothing changes.
  void withdraw(uint16_t vlan, const void* owner = nullptr);
  bool serves(uint16_t vlan) const { return vlan <= kMaxVlanId && served_.has(vlan); }
  // `mac`'s DHCP lease in `vlan` is `addr` (IPv4); replaces what it had.
  void bind(uint16_t vlan, const MacAddress& mac, const IpAddress& addr);
  // `mac` no longer holds `addr` in `vlan` (nothing happens when it holds another one).
  void unbind(uint16_t vlan, const MacAddress& mac, const IpAddress& addr);
  // `mac`'s lease in `vlan`, if it has one.
  std::optional<IpAddress> lease(uint16_t vlan, const MacAddress& mac) const;
  // `mac`'s SLAAC address in `vlan`, if the VLAN is served with a /64 IPv6 prefix.
  std::optional<IpAddress> slaac(uint16_t vlan, const MacAddress& mac) const;
  // Is `addr` one the switch gave `mac` in `vlan` (its lease, or its SLAAC address)?
  bool gave(uint16_t vlan, const MacAddress& mac, const IpAddress& addr) const;
  size_t lease_count() const { return leases_.size(); }

 private:
  struct Prefix {
    uint16_t vlan = 0;
    IpAddress prefix;  // kNone: the VLAN has no IPv6
    uint8_t len = 0;
    const void* owner = nullptr;
  };
  static uint64_t key(uint16_t vlan, const MacAddress& mac) {
    return (uint64_t{vlan} << 48) | mac.key();
  }
  const Prefix* prefix_of(uint16_t vlan) const;

  VlanSet served_;
  std::vector<Prefix> prefixes_;  // one per served VLAN
  std::unordered_map<uint64_t, IpAddress> leases_;
};

}  // namespace qswitch::sw
