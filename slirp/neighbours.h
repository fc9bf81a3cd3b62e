// slirp/neighbours.h: the IPv6 addresses the slirp port has seen guests use, per MAC (issue 13:
// `qswitch ctl neighbours`, the ipv6 column of `dhcp leases`, AAAA records for guests' names).
// Pure logic: frames in, an injected clock. No sockets, no libuv, no syscalls.
//
// Theory of operation
// - Input is every guest frame that reaches the slirp port (untrusted): the guests' multicast
//   neighbour discovery (NS, NA, RS, MLD: flooded in the VLAN) and everything they send to the
//   gateway. Only untagged IPv6 frames (EtherType 0x86dd) are read; anything else costs one
//   compare. A frame whose Ethernet source is multicast names nobody and is skipped.
// - What is learned, always under the frame's Ethernet source MAC:
//   - the IPv6 source address of every packet, unless it is :: (RFC 4291 2.5.2), multicast, ::1
//     (2.5.3: never sent on a link) or IPv4-mapped (2.5.5.2: never on the wire);
//   - the target of a neighbour advertisement (RFC 4861 4.4, solicited or not: both say "this
//     MAC has that address"), unless its Target Link-Layer Address option names another MAC
//     (a proxy answering for someone else);
//   - the target of a duplicate address detection probe (RFC 4862 5.4.2: an NS from ::, to the
//     target's solicited-node group). Decision: it is recorded, marked tentative, rather than
//     skipped: a guest that has just configured its SLAAC address sends nothing else from it
//     until it talks to someone, and the DNS names need it at once. The mark goes when that MAC
//     is seen using the address (a source or an NA target). If, within kDadWindowMs of the
//     probe, another MAC advertises or uses the address (it defends it, RFC 4862 5.4.4), the
//     prober lost: the tentative address is removed from it. The probes of the last few
//     seconds are kept in a small ring (kDadRing) for that check, so it costs O(kDadRing).
//   Link-local addresses are learned like the others; users of the table filter what they
//   need (AAAA records want the global ones).
// - NDP is read only when it is valid by RFC 4861 7.1: hop limit 255, ICMPv6 code 0, the
//   message long enough for its fixed part (24 bytes for NS and NA), an NS target that is not
//   multicast, a DAD probe to the solicited-node group of its target and with no source
//   link-layer option, an NA to a multicast group with S clear, every option with a non-zero
//   length and inside the message. The ICMPv6 checksum is not checked: the frame's source
//   address is learned without one either, and a guest forges a correct checksum as easily as
//   a source; it guards against corruption, which a virtual link does not have.
// - Extension headers (RFC 8200 4): up to kMaxExtHeaders hop-by-hop, destination options and
//   routing headers are walked to find ICMPv6 (MLD carries hop-by-hop); a fragment header or
//   anything else ends the walk without NDP (RFC 6980: NDP is never fragmented). The source
//   address is learned whatever follows.
// - Bounds: at most max_macs MACs and max_per_mac addresses per MAC. A MAC's addresses sit in a
//   fixed array in its record; a new address when it is full replaces the one seen least
//   recently (counted: replaced). A new MAC when the table is full takes the record of the MAC
//   seen least recently (an intrusive LRU list, O(1); counted: evicted). Records live in one
//   vector, by index, reused once freed; only a MAC seen for the first time allocates (its index
//   node, and the vector's growth until it holds max_macs records): a known MAC's frames never
//   do.
// - Expiry: an address unseen for expiry_ms goes, and a MAC goes with its last address.
//   observe() sweeps (O(records)) at most once per kSweepMs; expire() sweeps now (the owner
//   calls it before listing). A DNS query is itself a frame that passes here, so a listing that
//   answers one is never more than kSweepMs stale.
// - Changes: generation() goes up, and the change callback hears the MAC, whenever a MAC's
//   address set changes (an address learned, replaced, removed, expired, or the MAC evicted).
//   A tentative mark going away or a timestamp moving is not a change. The callback runs
//   inside observe() or expire(); it must not call them.
// - Counters: frames read (ipv6), malformed (IPv6 or NDP that fails the checks above), learned,
//   replaced, expired, evicted, dad_conflicts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "switch/ip_address.h"
#include "switch/mac_address.h"

namespace qswitch::slirp {

struct NeighbourConfig {
  size_t max_macs = 4096;                // MACs kept at most
  int64_t expiry_ms = 30LL * 60 * 1000;  // an address unseen this long is forgotten
};

class Neighbours {
 public:
  static constexpr size_t kMaxPerMac = 8;  // addresses per MAC (link-local, SLAAC, temporary..)
  static constexpr uint32_t kMaxExtHeaders = 4;
  static constexpr int64_t kDadWindowMs = 5000;  // a probe lost to a defender within this
  static constexpr size_t kDadRing = 64;
  static constexpr int64_t kSweepMs = 1000;

  struct Seen {
    sw::IpAddress address;
    int64_t first_seen_ms = 0;
    int64_t last_seen_ms = 0;
    bool tentative = false;  // named only by a DAD probe so far
  };
  struct Entry {
    sw::MacAddress mac;
    std::vector<Seen> addresses;  // by first seen, then address
  };
  struct Counters {
    uint64_t ipv6 = 0, malformed = 0, learned = 0, replaced = 0, expired = 0, evicted = 0,
             dad_conflicts = 0;
  };
  using ChangeFn = std::function<void(const sw::MacAddress&)>;

  explicit Neighbours(const NeighbourConfig& config = {});

  // Reads one Ethernet frame (no length prefix) a guest sent; `now_ms` is a monotonic clock.
  void observe(const uint8_t* frame, size_t size, int64_t now_ms);
  // Forgets what has been unseen for expiry_ms at `now_ms`.
  void expire(int64_t now_ms);

  // The MAC's addresses (tentative ones too), by first seen; empty for an unknown MAC.
  std::vector<sw::IpAddress> addresses(const sw::MacAddress& mac) const;
  // Every MAC with its addresses, by MAC (allocates: for the control API).
  std::vector<Entry> entries() const;
  size_t mac_count() const { return index_.size(); }

  uint64_t generation() const { return generation_; }
  void set_on_change(ChangeFn fn) { on_change_ = std::move(fn); }
  const Counters& counters() const { return counters_; }
  const NeighbourConfig& config() const { return config_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct Slot {
    std::array<uint8_t, 16> address{};
    int64_t first_seen_ms = 0;
    int64_t last_seen_ms = 0;
    bool used = false;
    bool tentative = false;
  };
  struct Record {
    sw::MacAddress mac;
    int64_t last_seen_ms = 0;
    uint32_t prev = kNone;  // LRU list: head is the most recently seen
    uint32_t next = kNone;
    std::array<Slot, kMaxPerMac> slots{};
  };
  struct Probe {
    uint64_t mac = 0;
    std::array<uint8_t, 16> address{};
    int64_t at_ms = INT64_MIN;
  };
  enum class How : uint8_t { kUsed, kProbe };

  void learn(const sw::MacAddress& mac, const uint8_t* address, How how, int64_t now_ms);
  uint32_t record_for(const sw::MacAddress& mac, int64_t now_ms);
  void lose_probe(uint64_t winner, const uint8_t* address, int64_t now_ms);
  void release(uint32_t r);
  void unlink(uint32_t r);
  void push_front(uint32_t r);
  void changed(const sw::MacAddress& mac);
  void read_ndp(const sw::MacAddress& mac, const uint8_t* ip, const uint8_t* icmp, size_t size,
                int64_t now_ms);

  NeighbourConfig config_;
  std::vector<Record> records_;  // by index (the LRU links and index_ hold indices)
  std::vector<uint32_t> free_;
  std::unordered_map<uint64_t, uint32_t> index_;  // MacAddress::key() -> records_ index
  uint32_t head_ = kNone, tail_ = kNone;
  std::array<Probe, kDadRing> probes_{};
  size_t next_probe_ = 0;
  int64_t last_probe_ms_ = INT64_MIN;  // no probe in the window: nothing to look at
  int64_t next_sweep_ms_ = INT64_MIN;
  uint64_t generation_ = 0;
  ChangeFn on_change_;
  Counters counters_;
};

}  // namespace qswitch::slirp
