// switch/mac_table.h: the MAC learning table.
//
// Theory of operation
// - Key: the 48-bit MAC in the low bits of a uint64_t, VLAN id (0..4095) in bits 48..59, so VLANs
//   need no change of layout. Hash: XXH3 64-bit with a per-table random seed (as OVS hash_mac()
//   with its secret), so a guest cannot pick MACs that collide on purpose.
// - Storage: entries live in a fixed slab of max_entries slots allocated at construction; an
//   open-addressed index (linear probing, backward-shift deletion) of slot numbers finds them.
//   Nothing allocates after construction except the per-port bookkeeping when a new port id
//   first learns.
// - Aging: an entry not refreshed for age_ms is invisible to lookup() at once and removed by
//   expire(), which walks each port's LRU list from its oldest end.
// - Cap and fairness: when the table is full, a new MAC evicts the least recently seen entry of
//   the port that holds the most entries (OVS mac-learning's rule), so one port flooding random
//   source MACs only pushes out its own entries once it is the largest.
// - Moves: a MAC seen on another port is moved there. A MAC that moves again within
//   flap_window_ms of its previous move is reported as flapping (two live ports using one MAC).
// - Pinned entries (pin()): the MACs of the switch's own ports (the slirp gateway). They never
//   age, are never evicted, and never move: learn() from another port reports kPinned and
//   changes nothing, so a guest cannot take the gateway's MAC and receive everyone's traffic.
//   They go with their port (flush_port()).
// - Ports are opaque ids: the table never looks at a port.
// - Not thread-safe: one loop owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "switch/mac_address.h"
#include "switch/types.h"

namespace qswitch::sw {

struct MacTableConfig {
  uint32_t max_entries = 4096;  // clamped to 1..(1 << 24)
  Millis age_ms = 300'000;
  Millis flap_window_ms = 10'000;
  uint64_t seed = 0;  // 0: pick a random seed at construction
};

enum class LearnResult : uint8_t {
  kNew,        // inserted (possibly after evicting another entry)
  kRefreshed,  // already on this port; timestamp updated
  kMoved,      // was on another port, now on this one
  kPinned,     // pinned to another port (previous_port): nothing changed
};

// Eight bytes, returned in one register: as twelve bytes in two registers, GCC assembled it on
// the stack with narrow stores and read it back with wide loads, a store-forwarding stall that
// cost the switch about a sixth of its time per frame (issue 14's profile).
struct LearnOutcome {
  PortId previous_port = kNoPort;  // for kMoved: where it was
  LearnResult result = LearnResult::kNew;
  bool flapping = false;  // kMoved within flap_window_ms of this entry's previous move
  bool evicted = false;   // kNew had to evict another entry to make room
};
static_assert(sizeof(LearnOutcome) == 8);

struct MacEntryView {
  MacAddress mac;
  uint16_t vlan = 0;
  PortId port = kNoPort;
  Millis last_seen = 0;
  bool pinned = false;
};

class MacTable {
 public:
  explicit MacTable(const MacTableConfig& config);
  MacTable(const MacTable&) = delete;
  MacTable& operator=(const MacTable&) = delete;

  LearnOutcome learn(const MacAddress& mac, uint16_t vlan, PortId port, Millis now);
  // The same, by key (mac_key()).
  LearnOutcome learn(uint64_t key, PortId port, Millis now);
  // Puts `mac` on `port` for good (see the theory above), moving it there if it was elsewhere.
  void pin(const MacAddress& mac, uint16_t vlan, PortId port, Millis now);
  // kNoPort when absent or older than age_ms.
  PortId lookup(const MacAddress& mac, uint16_t vlan, Millis now) const;
  // The same, by key (mac_key()).
  PortId lookup(uint64_t key, Millis now) const;
  // Removes entries older than age_ms; returns how many.
  size_t expire(Millis now);
  // Removes every entry on `port`; returns how many.
  size_t flush_port(PortId port);

  size_t size() const { return size_; }
  size_t capacity() const { return config_.max_entries; }
  size_t port_entry_count(PortId port) const;
  uint64_t eviction_count() const { return evictions_; }
  uint64_t seed() const { return seed_; }
  void for_each(const std::function<void(const MacEntryView&)>& fn) const;

 private:
  // Hot fields first: lookup() reads key, last_seen and port only.
  struct Entry {
    uint64_t key = 0;
    Millis last_seen = 0;   // exact time of the last learn()
    PortId port = kNoPort;  // kNoPort: slot is free
    uint32_t lru_prev = kNil;
    uint32_t lru_next = kNil;
    uint32_t hash_lo = 0;  // low 32 bits of hash(key): finds its index cell without rehashing
    Millis lru_stamp = 0;  // when the entry was last put at its port's LRU tail
    Millis last_move = kNever;
    bool pinned = false;
  };
  struct PortList {
    uint32_t head = kNil;  // least recently seen
    uint32_t tail = kNil;  // most recently seen
    uint32_t count = 0;
    uint32_t pinned = 0;  // of count
  };
  static constexpr uint32_t kNil = 0xffffffffu;
  // last_move of an entry that never moved.
  static constexpr Millis kNever = std::numeric_limits<Millis>::min();
  // index_ cell: high 32 bits = low 32 bits of the key's hash (home bucket and a tag that skips
  // most mismatches without touching the slab), low 32 bits = slot. kEmpty has slot == kNil.
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr uint64_t kNotFound = ~uint64_t{0};  // find_index() miss
  // A refresh on the same port moves the entry to its LRU tail only this often.
  static constexpr Millis kLruGranularityMs = 1000;

  uint64_t hash(uint64_t key) const;
  // index_ position holding `key` (whose hash is `h`), or kNotFound.
  uint64_t find_index(uint64_t key, uint64_t h) const;
  void index_insert(uint64_t hash, uint32_t slot);
  void index_erase(uint64_t index_pos);
  void list_unlink(uint32_t slot);
  void list_append(uint32_t slot, PortId port, Millis now);
  PortList& port_list(PortId port);
  void remove_slot(uint32_t slot);
  uint32_t evict_one();  // frees one slot and returns it; kNil when all entries are pinned

  MacTableConfig config_;
  uint64_t seed_;
  std::vector<Entry> slab_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint64_t> index_;  // see kEmpty; size a power of two >= 2 * max_entries
  uint64_t index_mask_ = 0;
  std::vector<PortList> ports_;  // indexed by PortId; grows when a new port id first learns
  size_t size_ = 0;
  uint64_t evictions_ = 0;
};

inline uint64_t mac_key(const MacAddress& mac, uint16_t vlan) {
  return mac.key() | (uint64_t{vlan & 0x0fffu} << 48);
}
// The key of the six MAC bytes at `p` (a frame's destination or source) in `vlan`.
inline uint64_t mac_key(const uint8_t* p, uint16_t vlan) {
  return MacAddress::key_at(p) | (uint64_t{vlan & 0x0fffu} << 48);
}

}  // namespace qswitch::sw
