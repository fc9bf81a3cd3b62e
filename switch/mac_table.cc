// switch/mac_table.cc: the MAC learning table (see mac_table.h for the model).
//
// Theory of operation
// - index_ is open addressing with linear probing at a load factor of at most 1/2. Each cell
//   packs the low 32 bits of the key's hash (its home bucket is those bits & index_mask_, the
//   rest act as a tag) with the slab slot, so a probe compares tags without touching the slab and
//   deletion can find every cell's home without rehashing; an entry keeps the same 32 bits
//   (hash_lo) to find its own cell. Deletion shifts the following cells of the run back
//   (Knuth 6.4, algorithm R): no tombstones, so probe runs never grow with churn.
// - Each port keeps a doubly linked LRU list threaded through the slab (lru_prev/lru_next).
//   A refresh always stores last_seen, but moves the entry to its list's tail only when
//   kLruGranularityMs have passed since it was last put there (lru_stamp), so the common case,
//   a guest sending many frames per second, is a compare and a store. Lists stay ordered by
//   lru_stamp, and last_seen - lru_stamp < kLruGranularityMs, which is what lets expire() stop
//   at the first entry whose lru_stamp is younger than age_ms and still be exact.
// - An existing entry that has already aged out (invisible to lookup) is reused as a new one:
//   learn() reports kNew, not kMoved or kRefreshed, and its move history is forgotten, since a
//   guest that was silent for age_ms and comes back elsewhere is not a flapping MAC.
// - Eviction scans the per-port counts for the largest (ties: the port whose oldest entry is
//   oldest). That is O(ports) but runs only when the table is full, and port ids are dense.
// - learn() with kNoPort is ignored (returns a default kNew outcome and stores nothing).
#include "switch/mac_table.h"

#include <algorithm>
#include <random>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace qswitch::sw {

namespace {

constexpr uint32_t kMaxEntriesLimit = 1u << 24;

uint64_t random_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ uint64_t { rd() };
}

uint32_t cell_slot(uint64_t cell) { return static_cast<uint32_t>(cell); }
uint32_t cell_hash(uint64_t cell) { return static_cast<uint32_t>(cell >> 32); }
uint64_t make_cell(uint64_t hash, uint32_t slot) {
  return (uint64_t{static_cast<uint32_t>(hash)} << 32) | slot;
}

}  // namespace

MacTable::MacTable(const MacTableConfig& config)
    : config_(config), seed_(config.seed != 0 ? config.seed : random_seed()) {
  config_.max_entries = std::clamp(config_.max_entries, 1u, kMaxEntriesLimit);
  slab_.resize(config_.max_entries);
  free_slots_.reserve(config_.max_entries);
  for (uint32_t i = config_.max_entries; i > 0; --i) free_slots_.push_back(i - 1);
  uint64_t index_size = 8;
  while (index_size < 2 * uint64_t{config_.max_entries}) index_size *= 2;
  index_.assign(index_size, kEmpty);
  index_mask_ = index_size - 1;
}

uint64_t MacTable::hash(uint64_t key) const {
  return XXH3_64bits_withSeed(&key, sizeof key, seed_);
}

uint64_t MacTable::find_index(uint64_t key, uint64_t h) const {
  const uint32_t tag = static_cast<uint32_t>(h);
  for (uint64_t pos = h & index_mask_;; pos = (pos + 1) & index_mask_) {
    const uint64_t cell = index_[pos];
    if (cell_slot(cell) == kNil) return kNotFound;
    if (cell_hash(cell) == tag && slab_[cell_slot(cell)].key == key) return pos;
  }
}

void MacTable::index_insert(uint64_t h, uint32_t slot) {
  uint64_t pos = h & index_mask_;
  while (cell_slot(index_[pos]) != kNil) pos = (pos + 1) & index_mask_;
  index_[pos] = make_cell(h, slot);
}

void MacTable::index_erase(uint64_t hole) {
  uint64_t pos = hole;
  for (;;) {
    pos = (pos + 1) & index_mask_;
    const uint64_t cell = index_[pos];
    if (cell_slot(cell) == kNil) break;
    const uint64_t home = cell_hash(cell) & index_mask_;
    // The cell may fill the hole unless its home lies cyclically in (hole, pos].
    if (((pos - home) & index_mask_) >= ((pos - hole) & index_mask_)) {
      index_[hole] = cell;
      hole = pos;
    }
  }
  index_[hole] = kEmpty;
}

MacTable::PortList& MacTable::port_list(PortId port) {
  if (port >= ports_.size()) ports_.resize(size_t{port} + 1);
  return ports_[port];
}

void MacTable::list_unlink(uint32_t slot) {
  Entry& e = slab_[slot];
  PortList& list = ports_[e.port];
  if (e.lru_prev != kNil) {
    slab_[e.lru_prev].lru_next = e.lru_next;
  } else {
    list.head = e.lru_next;
  }
  if (e.lru_next != kNil) {
    slab_[e.lru_next].lru_prev = e.lru_prev;
  } else {
    list.tail = e.lru_prev;
  }
  e.lru_prev = kNil;
  e.lru_next = kNil;
  --list.count;
}

void MacTable::list_append(uint32_t slot, PortId port, Millis now) {
  PortList& list = port_list(port);
  Entry& e = slab_[slot];
  e.port = port;
  e.lru_stamp = now;
  e.lru_prev = list.tail;
  e.lru_next = kNil;
  if (list.tail != kNil) {
    slab_[list.tail].lru_next = slot;
  } else {
    list.head = slot;
  }
  list.tail = slot;
  ++list.count;
}

void MacTable::remove_slot(uint32_t slot) {
  if (slab_[slot].pinned) {
    slab_[slot].pinned = false;
    --ports_[slab_[slot].port].pinned;
  }
  const uint32_t h = slab_[slot].hash_lo;
  uint64_t pos = h & index_mask_;
  while (cell_slot(index_[pos]) != slot) pos = (pos + 1) & index_mask_;
  index_erase(pos);
  list_unlink(slot);
  slab_[slot].port = kNoPort;
  free_slots_.push_back(slot);
  --size_;
}

uint32_t MacTable::evict_one() {
  // Pinned entries are never evicted and do not count towards a port's share; kNil when the
  // table holds nothing but pinned entries.
  PortId victim = kNoPort;
  uint32_t victim_oldest = kNil;
  for (PortId p = 0; p < ports_.size(); ++p) {
    const PortList& list = ports_[p];
    const uint32_t learned = list.count - list.pinned;
    if (learned == 0) continue;
    uint32_t oldest = list.head;
    while (slab_[oldest].pinned) oldest = slab_[oldest].lru_next;
    const uint32_t victim_learned =
        victim == kNoPort ? 0 : ports_[victim].count - ports_[victim].pinned;
    if (victim == kNoPort || learned > victim_learned ||
        (learned == victim_learned && slab_[oldest].lru_stamp < slab_[victim_oldest].lru_stamp)) {
      victim = p;
      victim_oldest = oldest;
    }
  }
  if (victim == kNoPort) return kNil;
  remove_slot(victim_oldest);
  ++evictions_;
  const uint32_t slot = free_slots_.back();
  free_slots_.pop_back();
  return slot;
}

LearnOutcome MacTable::learn(const MacAddress& mac, uint16_t vlan, PortId port, Millis now) {
  return learn(mac_key(mac, vlan), port, now);
}

LearnOutcome MacTable::learn(uint64_t key, PortId port, Millis now) {
  LearnOutcome out;
  if (port == kNoPort) return out;
  const uint64_t h = hash(key);
  const uint64_t pos = find_index(key, h);

  if (pos != kNotFound) {
    const uint32_t slot = cell_slot(index_[pos]);
    Entry& e = slab_[slot];
    if (e.pinned && e.port != port) {
      out.result = LearnResult::kPinned;
      out.previous_port = e.port;
      return out;
    }
    const bool aged = !e.pinned && now - e.last_seen >= config_.age_ms;
    if (e.port == port && !aged) {
      out.result = LearnResult::kRefreshed;
      if (now > e.last_seen) e.last_seen = now;
      if (now - e.lru_stamp >= kLruGranularityMs) {
        list_unlink(slot);
        list_append(slot, port, now);
      }
      return out;
    }
    const PortId previous = e.port;
    list_unlink(slot);
    list_append(slot, port, now);
    e.last_seen = now;
    if (aged) {
      e.last_move = kNever;
      return out;  // kNew: the old entry was already gone as far as lookup() is concerned
    }
    out.result = LearnResult::kMoved;
    out.previous_port = previous;
    out.flapping = e.last_move != kNever && now - e.last_move < config_.flap_window_ms;
    e.last_move = now;
    return out;
  }

  uint32_t slot;
  if (size_ == config_.max_entries) {
    slot = evict_one();
    if (slot == kNil) return out;  // only pinned entries: nothing is learned
    out.evicted = true;
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  Entry& e = slab_[slot];
  e.key = key;
  e.last_seen = now;
  e.hash_lo = static_cast<uint32_t>(h);
  e.last_move = kNever;
  list_append(slot, port, now);
  index_insert(h, slot);
  ++size_;
  return out;
}

void MacTable::pin(const MacAddress& mac, uint16_t vlan, PortId port, Millis now) {
  if (port == kNoPort) return;
  const uint64_t key = mac_key(mac, vlan);
  const uint64_t pos = find_index(key, hash(key));
  if (pos != kNotFound) {
    const uint32_t slot = cell_slot(index_[pos]);
    if (slab_[slot].pinned) {
      slab_[slot].pinned = false;
      --ports_[slab_[slot].port].pinned;
    }
  }
  learn(mac, vlan, port, now);
  const uint64_t at = find_index(key, hash(key));
  if (at == kNotFound) return;  // the table is full of pinned entries
  const uint32_t slot = cell_slot(index_[at]);
  slab_[slot].pinned = true;
  ++ports_[port].pinned;
}

PortId MacTable::lookup(const MacAddress& mac, uint16_t vlan, Millis now) const {
  return lookup(mac_key(mac, vlan), now);
}

PortId MacTable::lookup(uint64_t key, Millis now) const {
  const uint64_t pos = find_index(key, hash(key));
  if (pos == kNotFound) return kNoPort;
  const Entry& e = slab_[cell_slot(index_[pos])];
  if (!e.pinned && now - e.last_seen >= config_.age_ms) return kNoPort;
  return e.port;
}

size_t MacTable::expire(Millis now) {
  size_t removed = 0;
  for (PortId p = 0; p < ports_.size(); ++p) {
    uint32_t slot = ports_[p].head;
    // Past the first entry put at the tail less than age_ms ago, every last_seen is younger.
    while (slot != kNil && now - slab_[slot].lru_stamp >= config_.age_ms) {
      const uint32_t next = slab_[slot].lru_next;
      if (!slab_[slot].pinned && now - slab_[slot].last_seen >= config_.age_ms) {
        remove_slot(slot);
        ++removed;
      }
      slot = next;
    }
  }
  return removed;
}

size_t MacTable::flush_port(PortId port) {
  if (port >= ports_.size()) return 0;
  size_t removed = 0;
  while (ports_[port].head != kNil) {
    remove_slot(ports_[port].head);
    ++removed;
  }
  return removed;
}

size_t MacTable::port_entry_count(PortId port) const {
  return port < ports_.size() ? ports_[port].count : 0;
}

void MacTable::for_each(const std::function<void(const MacEntryView&)>& fn) const {
  for (const Entry& e : slab_) {
    if (e.port == kNoPort) continue;
    MacEntryView v;
    for (size_t i = 0; i < 6; ++i) {
      v.mac.bytes[i] = static_cast<uint8_t>(e.key >> (8 * (5 - i)));
    }
    v.vlan = static_cast<uint16_t>((e.key >> 48) & 0x0fffu);
    v.port = e.port;
    v.last_seen = e.last_seen;
    v.pinned = e.pinned;
    fn(v);
  }
}

}  // namespace qswitch::sw
