// switch/address_book.cc: see the header.
#include "switch/address_book.h"

#include <algorithm>

namespace qswitch::sw {

void AddressBook::serve(uint16_t vlan, const IpAddress& prefix6, uint8_t prefix6_len,
                        const void* owner) {
  if (vlan < kMinVlanId || vlan > kMaxVlanId) return;
  served_.add(vlan);
  const Prefix p{vlan, prefix6.is_v6() ? prefix6 : IpAddress{},
                 prefix6.is_v6() ? prefix6_len : uint8_t{0}, owner};
  for (Prefix& q : prefixes_) {
    if (q.vlan == vlan) {
      q = p;
      return;
    }
  }
  prefixes_.push_back(p);
}

void AddressBook::withdraw(uint16_t vlan, const void* owner) {
  const Prefix* mine = prefix_of(vlan);
  if (mine == nullptr || mine->owner != owner) return;
  served_.remove(vlan);
  prefixes_.erase(std::remove_if(prefixes_.begin(), prefixes_.end(),
                                 [vlan](const Prefix& p) { return p.vlan == vlan; }),
                  prefixes_.end());
  for (auto it = leases_.begin(); it != leases_.end();) {
    it = (it->first >> 48) == vlan ? leases_.erase(it) : std::next(it);
  }
}

void AddressBook::bind(uint16_t vlan, const MacAddress& mac, const IpAddress& addr) {
  leases_[key(vlan, mac)] = addr;
}

void AddressBook::unbind(uint16_t vlan, const MacAddress& mac, const IpAddress& addr) {
  const auto it = leases_.find(key(vlan, mac));
  if (it != leases_.end() && it->second == addr) leases_.erase(it);
}

std::optional<IpAddress> AddressBook::lease(uint16_t vlan, const MacAddress& mac) const {
  const auto it = leases_.find(key(vlan, mac));
  if (it == leases_.end()) return std::nullopt;
  return it->second;
}

const AddressBook::Prefix* AddressBook::prefix_of(uint16_t vlan) const {
  for (const Prefix& p : prefixes_) {
    if (p.vlan == vlan) return &p;
  }
  return nullptr;
}

std::optional<IpAddress> AddressBook::slaac(uint16_t vlan, const MacAddress& mac) const {
  const Prefix* p = prefix_of(vlan);
  if (p == nullptr || !p->prefix.is_v6() || p->len != 64) return std::nullopt;
  return IpAddress::eui64(p->prefix.bytes, mac);
}

bool AddressBook::gave(uint16_t vlan, const MacAddress& mac, const IpAddress& addr) const {
  if (addr.is_v4()) {
    const auto it = leases_.find(key(vlan, mac));
    return it != leases_.end() && it->second == addr;
  }
  const std::optional<IpAddress> s = slaac(vlan, mac);
  return s && *s == addr;
}

}  // namespace qswitch::sw
