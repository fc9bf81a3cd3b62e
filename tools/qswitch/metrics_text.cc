// tools/qswitch/metrics_text.cc: see the header.
#include "tools/qswitch/metrics_text.h"

#include "backends/switch_loop.h"

#include <algorithm>
#include <map>
#include <cstdint>
#include <cstring>
#include <vector>

namespace qswitch::tools {

namespace {

struct Help {
  const char* counter;
  const char* text;
};

// One line per sw::PortCounters field; a field missing here gets a generic text.
constexpr Help kPortHelp[] = {
    {"rx_frames", "Frames received from the port's peer."},
    {"rx_bytes", "Bytes of frames received from the port's peer."},
    {"tx_frames", "Frames written to the port's peer."},
    {"tx_bytes", "Bytes of frames written to the port's peer."},
    {"drop_queue_full", "Frames not sent to the port because its output queue was full."},
    {"drop_bad_length", "Frames received with a length outside 14..65549 (the port is closed)."},
    {"drop_bad_source", "Frames received with a multicast source MAC."},
    {"drop_same_port", "Frames received for a MAC learned on the same port."},
    {"drop_port_closed", "Queued output frames lost because the port closed."},
    {"rx_paused", "Times reading paused because every receive chunk was held by outputs."},
    {"rx_throttled", "Times reading paused because a unicast destination was congested."},
    {"dup_mac", "Duplicate-MAC (flapping) events involving the port."},
    {"drop_mac_spoof", "Frames received with a source MAC pinned to another port."},
    {"tx_copied",
     "Queued frames copied out of a sender's receive memory because the sender ran short."},
    {"congestion_timeouts",
     "Times the port stayed congested past the bound and stopped holding its senders back."},
};

std::string escape_help(std::string_view text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

void family(std::string& out, const std::string& name, const char* type, std::string_view help) {
  out += "# HELP " + name + ' ' + escape_help(help) + '\n';
  out += "# TYPE " + name + ' ' + type + '\n';
}

void sample(std::string& out, const std::string& name, const std::string& labels, uint64_t value) {
  out += name;
  out += labels;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string render_metrics(const sw::L2Switch& fabric) {
  struct PortRow {
    sw::PortId id;
    std::string labels;  // {port="3",peer="..."}
    std::vector<uint64_t> values;  // in PortCounters::for_each order
    std::vector<std::pair<std::string, uint64_t>> extra;  // kind-specific counters
    uint64_t queued_bytes = 0;
  };
  std::vector<PortRow> rows;
  fabric.for_each_port([&](const sw::Port& p) {
    PortRow row;
    row.id = p.id();
    row.labels = "{port=\"" + std::to_string(p.id()) + "\",peer=\"" +
                 escape_label_value(p.describe()) + "\"}";
    p.counters().for_each([&](const char*, uint64_t v) { row.values.push_back(v); });
    // Every port of a SwitchLoop is a LoopPort (adopt() is the only way onto it).
    const auto& lp = static_cast<const backends::LoopPort&>(p);
    lp.for_each_extra_counter(
        [&](const char* name, uint64_t v) { row.extra.emplace_back(name, v); });
    row.queued_bytes = lp.queued_bytes();
    rows.push_back(std::move(row));
  });
  std::sort(rows.begin(), rows.end(),
            [](const PortRow& a, const PortRow& b) { return a.id < b.id; });

  std::string out;
  out.reserve(512 + rows.size() * 1024);

  family(out, "qswitch_port_up", "gauge", "1 for every port attached to the switch.");
  for (const PortRow& r : rows) sample(out, "qswitch_port_up", r.labels, 1);
  family(out, "qswitch_port_queued_bytes", "gauge",
         "Bytes of frames queued to the port that its peer has not taken yet.");
  for (const PortRow& r : rows) sample(out, "qswitch_port_queued_bytes", r.labels, r.queued_bytes);

  std::vector<const char*> names;
  sw::PortCounters{}.for_each([&](const char* name, uint64_t) { names.push_back(name); });
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string metric = std::string("qswitch_port_") + names[i] + "_total";
    std::string help = std::string("Per-port counter ") + names[i] + '.';
    for (const Help& h : kPortHelp) {
      if (std::strcmp(h.counter, names[i]) == 0) help = h.text;
    }
    family(out, metric, "counter", help);
    for (const PortRow& r : rows) sample(out, metric, r.labels, r.values[i]);
  }

  // Counters only some kinds of port keep (VXLAN's bad headers, ...): one family each, with a
  // sample for every port that has it.
  std::map<std::string, std::vector<std::pair<const PortRow*, uint64_t>>> extra;
  for (const PortRow& r : rows) {
    for (const auto& [name, v] : r.extra) extra[name].emplace_back(&r, v);
  }
  for (const auto& [name, samples] : extra) {
    const std::string metric = "qswitch_port_" + name + "_total";
    family(out, metric, "counter", "Per-port counter " + name + " (ports of the kinds that keep it).");
    for (const auto& [row, v] : samples) sample(out, metric, row->labels, v);
  }

  const sw::SwitchCounters& sc = fabric.counters();
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } counters[] = {
      {"qswitch_frames_in_total", "Frames received by the switch from all ports.", sc.frames_in},
      {"qswitch_unicast_total", "Frames sent to exactly one learned port.", sc.unicast},
      {"qswitch_flooded_total", "Frames flooded to every port but their source.", sc.flooded},
      {"qswitch_mac_moves_total", "Times a learned MAC moved to another port.", sc.mac_moves},
      {"qswitch_dup_mac_events_total", "Duplicate-MAC (flapping) events.", sc.dup_mac_events},
      {"qswitch_mac_evictions_total", "MAC table entries evicted because the table was full.",
       fabric.macs().eviction_count()},
      {"qswitch_mac_spoofs_total", "Frames dropped for a source MAC pinned to another port.",
       sc.mac_spoofs},
      {"qswitch_chunk_reliefs_total",
       "Times a port ran short of receive memory and output queues copied their frames out.",
       sc.chunk_reliefs},
  };
  for (const auto& c : counters) {
    family(out, c.name, "counter", c.help);
    sample(out, c.name, "", c.value);
  }
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } gauges[] = {
      {"qswitch_ports", "Ports attached to the switch.", fabric.port_count()},
      {"qswitch_mac_entries", "Entries in the MAC table.", fabric.macs().size()},
      {"qswitch_mac_capacity", "Most entries the MAC table holds (--mac-max).",
       fabric.macs().capacity()},
  };
  for (const auto& g : gauges) {
    family(out, g.name, "gauge", g.help);
    sample(out, g.name, "", g.value);
  }
  return out;
}

}  // namespace qswitch::tools
