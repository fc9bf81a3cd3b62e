// backends/runtime/switch_snapshot.h: the switch's ports and counters at one moment, as typed
// values.
//
// Theory of operation
// - SwitchLoop::snapshot() builds a SwitchSnapshot from the loop's port registry (switch_loop.h)
//   and the switch's counters, in one place; every view of the counters renders one: the
//   SIGUSR1/exit text (stats_text() here, logged by SwitchLoop::print_stats()), the `ports` and
//   `stats` control commands (tools/qswitch/services/switch_commands.cc) and /metrics
//   (tools/qswitch/services/metrics_text.cc). None of them walks the ports itself.
// - Names and meanings come from the counter tables (switch/counters.h) and, for the counters
//   only some kinds of port keep, from the kind (LoopPort::for_each_extra_counter()).
// - Built on demand, on the loop (a signal, a control request, a scrape): nothing is kept and
//   nothing is added to the data path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "switch/counters.h"
#include "switch/mac_address.h"
#include "switch/types.h"
#include "switch/vlan.h"

namespace qswitch::backends {

// A counter only some kinds of port keep, with its value.
struct ExtraCounter {
  sw::CounterInfo info;
  uint64_t value = 0;
};

struct PortSnapshot {
  sw::PortId id = sw::kNoPort;
  uint64_t serial = 0;       // LoopPort::serial(): never reused, unlike the id
  const char* kind = "";     // LoopPort::kind(): "stream", "dgram", ...
  std::string peer;          // describe()
  std::string endpoint;      // LoopPort::endpoint_id(), empty for most
  std::string first_mac;     // empty until the port sent a frame
  sw::Millis up_since = 0;   // loop time of adopt()
  size_t queued_bytes = 0;   // queued to the port, not yet taken by its peer
  sw::VlanMembership vlans;  // the VLANs the port carries
  // Port security (switch/port_security.h): on or off, how many MACs, the ones it holds.
  bool secured = false;
  uint32_t max_macs = 0;
  std::vector<sw::MacAddress> held_macs;
  sw::PortCounters counters;
  std::vector<ExtraCounter> extra;  // the kind's own counters, in the kind's order
};

struct SwitchSnapshot {
  sw::Millis now = 0;               // loop time the snapshot was taken
  std::vector<PortSnapshot> ports;  // every port on the switch, by id
  std::vector<PortSnapshot>
      closed_ports;  // the last ports that closed (final counters), oldest first
  sw::SwitchCounters counters;
  size_t mac_entries = 0;
  size_t mac_capacity = 0;
  // Per VLAN some port carries (switch/vlan.h): its ports and its live MAC entries.
  struct Vlan {
    size_t ports = 0;
    size_t macs = 0;
  };
  std::map<uint16_t, Vlan> vlans;

  size_t port_count() const { return ports.size(); }
  // The sum of the ports' queued_bytes.
  uint64_t queued_bytes() const;
};

// The SIGUSR1/exit stats text, one line each (without the log prefix and newline):
//   "stats closed port <id> <peer> <name>=<value>..." for each closed port (oldest first),
//   "stats port <id> <peer> <name>=<value>..." for each port (by id),
//   "stats switch ports=<n> macs=<n> <name>=<value>...".
// A port's counters are kPortCounters' then the kind's own; the switch's are kSwitchCounters'.
std::vector<std::string> stats_text(const SwitchSnapshot& snapshot);

}  // namespace qswitch::backends
