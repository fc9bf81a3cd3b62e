// slirp/neighbours.cc: see the header.
#include "slirp/neighbours.h"

#include <algorithm>
#include <cstring>

namespace qswitch::slirp {

namespace {

constexpr size_t kEthHeader = 14;
constexpr size_t kIpv6Header = 40;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
// IPv6 next headers (RFC 8200 section 4), ICMPv6 (RFC 4443), NDP (RFC 4861 section 4).
constexpr uint8_t kHopByHop = 0, kRouting = 43, kIcmpv6 = 58, kDestOptions = 60;
constexpr uint8_t kNeighborSolicit = 135, kNeighborAdvert = 136;
constexpr uint8_t kOptSourceLinkAddr = 1, kOptTargetLinkAddr = 2;
constexpr size_t kNdpFixed = 24;  // type, code, checksum, flags/reserved, target

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

bool all_zero(const uint8_t* a, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != 0) return false;
  }
  return true;
}

bool unspecified(const uint8_t* a) { return all_zero(a, 16); }

// An address a guest may hold on a link: not ::, multicast, ::1 or ::ffff:0:0/96 (RFC 4291).
bool learnable(const uint8_t* a) {
  if (a[0] == 0xff) return false;
  if (all_zero(a, 10)) {
    if (a[10] == 0xff && a[11] == 0xff) return false;                     // IPv4-mapped
    if (all_zero(a + 10, 5) && (a[15] == 0 || a[15] == 1)) return false;  // :: and ::1
  }
  return true;
}

// ff02::1:ffXX:XXXX for `target` (RFC 4291 section 2.7.1).
bool solicited_node_of(const uint8_t* group, const uint8_t* target) {
  static constexpr uint8_t kPrefix[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff};
  return std::memcmp(group, kPrefix, sizeof kPrefix) == 0 &&
         std::memcmp(group + 13, target + 13, 3) == 0;
}

}  // namespace

Neighbours::Neighbours(const NeighbourConfig& config) : config_(config) {
  if (config_.max_macs == 0) config_.max_macs = 1;
  // Records grow with the MACs seen (a new MAC may allocate; a known one never does).
  records_.reserve(std::min<size_t>(config_.max_macs, 64));
  index_.reserve(config_.max_macs);
}

void Neighbours::observe(const uint8_t* frame, size_t size, int64_t now_ms) {
  if (now_ms >= next_sweep_ms_) expire(now_ms);
  if (size < kEthHeader || be16(frame + 12) != kEthertypeIpv6) return;
  counters_.ipv6 += 1;
  const sw::MacAddress mac = sw::MacAddress::from_wire(frame + 6);
  if (mac.is_multicast() || mac.is_zero()) return;
  const uint8_t* ip = frame + kEthHeader;
  const size_t avail = size - kEthHeader;
  if (avail < kIpv6Header || (ip[0] >> 4) != 6) {
    counters_.malformed += 1;
    return;
  }
  const uint8_t* src = ip + 8;
  if (learnable(src)) learn(mac, src, How::kUsed, now_ms);

  // The header chain, to ICMPv6. Padding after the payload (short frames) is not the packet.
  const size_t payload = be16(ip + 4);
  if (payload > avail - kIpv6Header) {
    counters_.malformed += 1;
    return;
  }
  const uint8_t* p = ip + kIpv6Header;
  size_t left = payload;
  uint8_t next = ip[6];
  for (uint32_t headers = 0;; ++headers) {
    if (next == kIcmpv6) break;
    if (next != kHopByHop && next != kRouting && next != kDestOptions) return;  // no NDP
    if (headers == kMaxExtHeaders || left < 8) return;
    const size_t len = (size_t{p[1]} + 1) * 8;
    if (len > left) {
      counters_.malformed += 1;
      return;
    }
    next = p[0];
    p += len;
    left -= len;
  }
  read_ndp(mac, ip, p, left, now_ms);
}

void Neighbours::read_ndp(const sw::MacAddress& mac, const uint8_t* ip, const uint8_t* icmp,
                          size_t size, int64_t now_ms) {
  if (size < 1 || (icmp[0] != kNeighborSolicit && icmp[0] != kNeighborAdvert)) return;
  // RFC 4861 7.1.1 / 7.1.2: hop limit 255 (it never crossed a router), code 0, 24 bytes at least.
  const uint8_t* src = ip + 8;
  const uint8_t* dst = ip + 24;
  const uint8_t* target = icmp + 8;
  if (ip[7] != 255 || size < kNdpFixed || icmp[1] != 0 || target[0] == 0xff) {
    counters_.malformed += 1;
    return;
  }
  // Options: type, length in units of 8 bytes (never 0), inside the message (RFC 4861 4.6).
  bool source_ll = false;
  bool other_target_ll = false;
  for (size_t at = kNdpFixed; at < size;) {
    if (size - at < 2 || icmp[at + 1] == 0 || size_t{icmp[at + 1]} * 8 > size - at) {
      counters_.malformed += 1;
      return;
    }
    const size_t len = size_t{icmp[at + 1]} * 8;
    if (icmp[at] == kOptSourceLinkAddr) source_ll = true;
    if (icmp[at] == kOptTargetLinkAddr && std::memcmp(icmp + at + 2, mac.bytes.data(), 6) != 0) {
      other_target_ll = true;
    }
    at += len;
  }
  if (icmp[0] == kNeighborSolicit) {
    if (!unspecified(src)) return;  // address resolution: its source is learned already
    // A DAD probe (RFC 4862 5.4.2): to the target's solicited-node group, no source link option.
    if (!solicited_node_of(dst, target) || source_ll || !learnable(target)) {
      counters_.malformed += 1;
      return;
    }
    learn(mac, target, How::kProbe, now_ms);
    return;
  }
  // NA: S clear when sent to a group (RFC 4861 7.1.2).
  const bool solicited = (icmp[4] & 0x40) != 0;
  if ((dst[0] == 0xff && solicited) || !learnable(target)) {
    counters_.malformed += 1;
    return;
  }
  if (other_target_ll) return;  // a proxy's answer for another MAC
  learn(mac, target, How::kUsed, now_ms);
}

void Neighbours::learn(const sw::MacAddress& mac, const uint8_t* address, How how, int64_t now_ms) {
  const uint32_t r = record_for(mac, now_ms);
  Record& rec = records_[r];
  Slot* free_slot = nullptr;
  Slot* oldest = &rec.slots[0];
  for (Slot& s : rec.slots) {
    if (!s.used) {
      if (free_slot == nullptr) free_slot = &s;
      continue;
    }
    if (std::memcmp(s.address.data(), address, 16) == 0) {
      s.last_seen_ms = now_ms;
      if (how == How::kUsed) {
        s.tentative = false;
        lose_probe(mac.key(), address, now_ms);  // it may be defending it against a probe
      }
      return;
    }
    if (!oldest->used || s.last_seen_ms < oldest->last_seen_ms) oldest = &s;
  }
  Slot* slot = free_slot;
  if (slot == nullptr) {
    slot = oldest;
    counters_.replaced += 1;
  }
  std::memcpy(slot->address.data(), address, 16);
  slot->first_seen_ms = now_ms;
  slot->last_seen_ms = now_ms;
  slot->used = true;
  slot->tentative = how == How::kProbe;
  counters_.learned += 1;
  changed(mac);
  if (how == How::kProbe) {
    probes_[next_probe_] = Probe{mac.key(), slot->address, now_ms};
    next_probe_ = (next_probe_ + 1) % kDadRing;
    last_probe_ms_ = now_ms;
  } else {
    lose_probe(mac.key(), address, now_ms);
  }
}

// `winner` advertised or used `address`: a MAC that probed for it in the last kDadWindowMs and
// has it still tentative lost the detection.
void Neighbours::lose_probe(uint64_t winner, const uint8_t* address, int64_t now_ms) {
  // Most frames: no probe in the window, nothing to look at.
  if (last_probe_ms_ == INT64_MIN || now_ms - last_probe_ms_ > kDadWindowMs) return;
  for (Probe& p : probes_) {
    if (p.at_ms == INT64_MIN || now_ms - p.at_ms > kDadWindowMs || p.mac == winner ||
        std::memcmp(p.address.data(), address, 16) != 0) {
      continue;
    }
    p.at_ms = INT64_MIN;
    const auto it = index_.find(p.mac);
    if (it == index_.end()) continue;
    Record& rec = records_[it->second];
    for (Slot& s : rec.slots) {
      if (s.used && s.tentative && std::memcmp(s.address.data(), address, 16) == 0) {
        s.used = false;
        counters_.dad_conflicts += 1;
        changed(rec.mac);
      }
    }
  }
}

uint32_t Neighbours::record_for(const sw::MacAddress& mac, int64_t now_ms) {
  const auto it = index_.find(mac.key());
  uint32_t r = kNone;
  if (it != index_.end()) {
    r = it->second;
    unlink(r);
  } else {
    if (!free_.empty()) {
      r = free_.back();
      free_.pop_back();
    } else if (records_.size() < config_.max_macs) {
      r = static_cast<uint32_t>(records_.size());
      records_.emplace_back();
    } else {
      r = tail_;  // the MAC seen least recently makes room
      const sw::MacAddress gone = records_[r].mac;
      unlink(r);
      index_.erase(gone.key());
      counters_.evicted += 1;
      changed(gone);
    }
    records_[r] = Record{};
    records_[r].mac = mac;
    index_.emplace(mac.key(), r);
  }
  records_[r].last_seen_ms = now_ms;
  push_front(r);
  return r;
}

void Neighbours::expire(int64_t now_ms) {
  next_sweep_ms_ = now_ms + kSweepMs;
  const int64_t cutoff = now_ms - config_.expiry_ms;
  // From the least recently seen: a record seen after the cutoff may still hold old addresses,
  // so every record is looked at (O(records)), once per kSweepMs at most from observe().
  for (uint32_t r = tail_; r != kNone;) {
    Record& rec = records_[r];
    const uint32_t prev = rec.prev;
    bool any = false;
    bool gone = false;
    for (Slot& s : rec.slots) {
      if (!s.used) continue;
      if (s.last_seen_ms <= cutoff) {
        s.used = false;
        counters_.expired += 1;
        gone = true;
      } else {
        any = true;
      }
    }
    if (gone) changed(rec.mac);
    if (!any) release(r);
    r = prev;
  }
}

void Neighbours::release(uint32_t r) {
  unlink(r);
  index_.erase(records_[r].mac.key());
  free_.push_back(r);
}

void Neighbours::unlink(uint32_t r) {
  Record& rec = records_[r];
  if (rec.prev != kNone) {
    records_[rec.prev].next = rec.next;
  } else if (head_ == r) {
    head_ = rec.next;
  }
  if (rec.next != kNone) {
    records_[rec.next].prev = rec.prev;
  } else if (tail_ == r) {
    tail_ = rec.prev;
  }
  rec.prev = rec.next = kNone;
}

void Neighbours::push_front(uint32_t r) {
  Record& rec = records_[r];
  rec.prev = kNone;
  rec.next = head_;
  if (head_ != kNone) records_[head_].prev = r;
  head_ = r;
  if (tail_ == kNone) tail_ = r;
}

void Neighbours::changed(const sw::MacAddress& mac) {
  generation_ += 1;
  if (on_change_) on_change_(mac);
}

namespace {

std::vector<Neighbours::Seen> sorted(std::vector<Neighbours::Seen> v) {
  std::sort(v.begin(), v.end(), [](const Neighbours::Seen& a, const Neighbours::Seen& b) {
    if (a.first_seen_ms != b.first_seen_ms) return a.first_seen_ms < b.first_seen_ms;
    return a.address.bytes < b.address.bytes;
  });
  return v;
}

}  // namespace

std::vector<sw::IpAddress> Neighbours::addresses(const sw::MacAddress& mac) const {
  std::vector<sw::IpAddress> out;
  const auto it = index_.find(mac.key());
  if (it == index_.end()) return out;
  std::vector<Seen> seen;
  for (const Slot& s : records_[it->second].slots) {
    if (s.used)
      seen.push_back(
          {sw::IpAddress::v6(s.address.data()), s.first_seen_ms, s.last_seen_ms, s.tentative});
  }
  for (const Seen& s : sorted(std::move(seen))) out.push_back(s.address);
  return out;
}

std::vector<Neighbours::Entry> Neighbours::entries() const {
  std::vector<Entry> out;
  out.reserve(index_.size());
  for (const auto& [key, r] : index_) {
    const Record& rec = records_[r];
    Entry e{rec.mac, {}};
    for (const Slot& s : rec.slots) {
      if (s.used)
        e.addresses.push_back(
            {sw::IpAddress::v6(s.address.data()), s.first_seen_ms, s.last_seen_ms, s.tentative});
    }
    if (e.addresses.empty()) continue;
    e.addresses = sorted(std::move(e.addresses));
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(),
            [](const Entry& a, const Entry& b) { return a.mac.key() < b.mac.key(); });
  return out;
}

}  // namespace qswitch::slirp
