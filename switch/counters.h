// switch/counters.h: every counter the switch core keeps, each named and explained once.
//
// Theory of operation
// - The data path bumps plain uint64_t fields of two structs: PortCounters (one per port) and
//   SwitchCounters (one per switch). Nothing else happens per frame.
// - Each struct has one constexpr table, kPortCounters and kSwitchCounters, of
//   {name, help, member pointer}: the name is what every rendering prints (the SIGUSR1/exit stats
//   text "name=value", the `ports`/`stats` JSON keys, and /metrics as qswitch_port_<name>_total
//   or qswitch_<name>_total), the help is the counter's meaning (the /metrics HELP line). The
//   meaning is written there and nowhere else; a renderer walks the table, so a counter added to
//   a struct and its table shows up in all three renderings at once.
// - Counters a kind of port keeps beyond PortCounters (VXLAN's bad headers, ...) are described
//   by the same CounterInfo {name, help}, written where the kind counts them
//   (backends::LoopPort::for_each_extra_counter).
// - A "count" counts items, a "size" bytes (house style); every drop reason has its own counter.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qswitch::sw {

// A counter's name and meaning.
struct CounterInfo {
  const char* name;
  const char* help;  // one sentence, ending in '.'
};

// A counter of struct T: its name and meaning, and where its value lives.
template <typename T>
struct CounterField {
  const char* name;
  const char* help;
  uint64_t T::*field;

  constexpr CounterInfo info() const { return {name, help}; }
};

// f(name, value) for each counter of `table`, in table order: every counter struct's
// for_each() is this over its own table.
template <typename T, size_t N, typename F>
void for_each_counter(const T& counters, const CounterField<T> (&table)[N], F&& f) {
  for (const CounterField<T>& c : table) f(c.name, counters.*c.field);
}

// What each port counts; see kPortCounters for the meaning of each field.
struct PortCounters {
  uint64_t rx_frames = 0;
  uint64_t rx_bytes = 0;
  uint64_t tx_frames = 0;
  uint64_t tx_bytes = 0;
  uint64_t drop_queue_full = 0;
  uint64_t drop_bad_length = 0;
  uint64_t drop_bad_source = 0;
  uint64_t drop_same_port = 0;
  uint64_t drop_port_closed = 0;
  uint64_t rx_paused = 0;
  uint64_t rx_throttled = 0;
  uint64_t dup_mac = 0;
  uint64_t drop_mac_spoof = 0;
  uint64_t drop_ip_spoof = 0;
  uint64_t tx_copied = 0;
  uint64_t congestion_timeouts = 0;
  uint64_t drop_vlan_tagged = 0;
  uint64_t drop_vlan_untagged = 0;
  uint64_t drop_vlan_not_member = 0;

  // f(name, value) for each counter, in kPortCounters order.
  template <typename F>
  void for_each(F&& f) const;
};

// In the order every rendering lists them.
inline constexpr CounterField<PortCounters> kPortCounters[] = {
    {"rx_frames", "Frames received from the port's peer.", &PortCounters::rx_frames},
    {"rx_bytes", "Bytes of frames received from the port's peer.", &PortCounters::rx_bytes},
    {"tx_frames", "Frames written to the port's peer.", &PortCounters::tx_frames},
    {"tx_bytes", "Bytes of frames written to the port's peer.", &PortCounters::tx_bytes},
    {"drop_queue_full", "Frames not sent to the port because its output queue was full.",
     &PortCounters::drop_queue_full},
    {"drop_bad_length", "Frames received with a length outside 14..65549 (the port is closed).",
     &PortCounters::drop_bad_length},
    {"drop_bad_source", "Frames received with a multicast source MAC.",
     &PortCounters::drop_bad_source},
    {"drop_same_port", "Frames received for a MAC learned on the same port.",
     &PortCounters::drop_same_port},
    {"drop_port_closed", "Queued output frames lost because the port closed.",
     &PortCounters::drop_port_closed},
    {"rx_paused", "Times reading paused because every receive chunk was held by outputs.",
     &PortCounters::rx_paused},
    {"rx_throttled", "Times reading paused because a unicast destination was congested.",
     &PortCounters::rx_throttled},
    {"dup_mac", "Duplicate-MAC (flapping) events involving the port.", &PortCounters::dup_mac},
    {"drop_mac_spoof",
     "Frames received with a source MAC the port may not use (pinned to another port, or not one "
     "of a secured port's own), or a secured port's ARP naming another sender MAC.",
     &PortCounters::drop_mac_spoof},
    {"drop_ip_spoof",
     "Frames a secured port sent from an IP address it was not given (IPv4 or IPv6 source, ARP "
     "sender, neighbour advertisement target), or whose IP headers the switch could not read.",
     &PortCounters::drop_ip_spoof},
    {"tx_copied",
     "Queued frames copied out of a sender's receive memory because the sender ran short.",
     &PortCounters::tx_copied},
    {"congestion_timeouts",
     "Times the port stayed congested past the bound and stopped holding its senders back.",
     &PortCounters::congestion_timeouts},
    {"drop_vlan_tagged", "Frames received with an 802.1Q VLAN tag on an access port.",
     &PortCounters::drop_vlan_tagged},
    {"drop_vlan_untagged",
     "Frames received untagged (or priority-tagged) on a trunk port without a native VLAN.",
     &PortCounters::drop_vlan_untagged},
    {"drop_vlan_not_member",
     "Frames received on a trunk port tagged for a VLAN it does not carry (or with a tag cut "
     "short).",
     &PortCounters::drop_vlan_not_member},
};

template <typename F>
void PortCounters::for_each(F&& f) const {
  for_each_counter(*this, kPortCounters, f);
}

// What the switch counts as a whole; see kSwitchCounters for the meaning of each field.
struct SwitchCounters {
  uint64_t frames_in = 0;
  uint64_t unicast = 0;
  uint64_t flooded = 0;
  uint64_t mac_moves = 0;
  uint64_t dup_mac_events = 0;
  uint64_t dup_mac_warnings = 0;
  uint64_t mac_spoofs = 0;
  uint64_t ip_spoofs = 0;
  uint64_t chunk_reliefs = 0;
  uint64_t gso_cut = 0;
  uint64_t gso_segments = 0;
  uint64_t gso_dropped = 0;
  uint64_t split_copies = 0;
  uint64_t split_dropped = 0;
  uint64_t vlan_tag_pushes = 0;
  uint64_t vlan_tag_pops = 0;
  uint64_t vlan_dropped = 0;
  // Kept by the MAC table (MacTable::eviction_count()); L2Switch::counters() copies it in.
  uint64_t mac_evictions = 0;

  // f(name, value) for each counter, in kSwitchCounters order.
  template <typename F>
  void for_each(F&& f) const;
};

// In the order every rendering lists them (dup_mac_warnings came last to the text and /metrics).
inline constexpr CounterField<SwitchCounters> kSwitchCounters[] = {
    {"frames_in", "Frames received by the switch from all ports.", &SwitchCounters::frames_in},
    {"unicast", "Frames sent to exactly one learned port.", &SwitchCounters::unicast},
    {"flooded", "Frames flooded to every port but their source.", &SwitchCounters::flooded},
    {"mac_moves", "Times a learned MAC moved to another port.", &SwitchCounters::mac_moves},
    {"dup_mac_events", "Duplicate-MAC (flapping) events.", &SwitchCounters::dup_mac_events},
    {"mac_evictions", "MAC table entries evicted because the table was full.",
     &SwitchCounters::mac_evictions},
    {"mac_spoofs", "Frames dropped for a source MAC pinned to another port.",
     &SwitchCounters::mac_spoofs},
    {"chunk_reliefs",
     "Times a port ran short of receive memory and output queues copied their frames out.",
     &SwitchCounters::chunk_reliefs},
    {"dup_mac_warnings",
     "Duplicate-MAC events that were logged as a warning (the rest were rate-limited).",
     &SwitchCounters::dup_mac_warnings},
    {"gso_cut",
     "Large TCP segments from a guest cut in software for ports that take only ordinary frames.",
     &SwitchCounters::gso_cut},
    {"gso_segments", "Frames those cuts produced.", &SwitchCounters::gso_segments},
    {"gso_dropped",
     "Large TCP segments not delivered to ports that needed them cut (no segment memory left).",
     &SwitchCounters::gso_dropped},
    {"split_copies",
     "Frames lent from a guest's memory (zero copy) copied whole for a port that takes only "
     "contiguous frames.",
     &SwitchCounters::split_copies},
    {"split_dropped",
     "Frames lent from a guest's memory not delivered to ports that needed them copied (no "
     "memory left).",
     &SwitchCounters::split_dropped},
    {"vlan_tag_pushes",
     "Frames given an 802.1Q tag (once per frame) for the trunk ports that carry their VLAN "
     "tagged.",
     &SwitchCounters::vlan_tag_pushes},
    {"vlan_tag_pops",
     "Frames stripped of their 802.1Q tag (once per frame) for the ports that carry their VLAN "
     "untagged.",
     &SwitchCounters::vlan_tag_pops},
    {"vlan_dropped",
     "Frames not delivered to ports that needed a VLAN tag pushed or popped (no memory left, or "
     "the tagged frame would exceed 65549 bytes).",
     &SwitchCounters::vlan_dropped},
    {"ip_spoofs",
     "Frames secured ports sent from IP addresses they were not given (every port's "
     "drop_ip_spoof).",
     &SwitchCounters::ip_spoofs},
};

template <typename F>
void SwitchCounters::for_each(F&& f) const {
  for_each_counter(*this, kSwitchCounters, f);
}

}  // namespace qswitch::sw
