// tools/qswitch/services/metrics_text.cc: see the header.
#include "tools/qswitch/services/metrics_text.h"

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace qswitch::tools {

namespace {

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

std::string render_metrics(const backends::SwitchSnapshot& snapshot) {
  const std::vector<backends::PortSnapshot>& ports = snapshot.ports;  // by id
  std::vector<std::string> labels;  // {port="3",peer="..."}, one per port
  labels.reserve(ports.size());
  for (const backends::PortSnapshot& p : ports) {
    labels.push_back("{port=\"" + std::to_string(p.id) + "\",peer=\"" + escape_label_value(p.peer) +
                     "\"}");
  }

  std::string out;
  out.reserve(512 + ports.size() * 1024);

  family(out, "qswitch_port_up", "gauge", "1 for every port attached to the switch.");
  for (size_t i = 0; i < ports.size(); ++i) sample(out, "qswitch_port_up", labels[i], 1);
  family(out, "qswitch_port_queued_bytes", "gauge",
         "Bytes of frames queued to the port that its peer has not taken yet.");
  for (size_t i = 0; i < ports.size(); ++i) {
    sample(out, "qswitch_port_queued_bytes", labels[i], ports[i].queued_bytes);
  }

  for (const auto& c : sw::kPortCounters) {
    const std::string metric = std::string("qswitch_port_") + c.name + "_total";
    family(out, metric, "counter", c.help);
    for (size_t i = 0; i < ports.size(); ++i) {
      sample(out, metric, labels[i], ports[i].counters.*c.field);
    }
  }

  // Counters only some kinds of port keep (VXLAN's bad headers, ...): one family each, by name,
  // with the help of the first port that has it and a sample for every port that has it.
  struct Extra {
    const char* help;
    std::vector<std::pair<size_t, uint64_t>> samples;  // port index, value
  };
  std::map<std::string, Extra> extra;
  for (size_t i = 0; i < ports.size(); ++i) {
    for (const backends::ExtraCounter& e : ports[i].extra) {
      Extra& x = extra.try_emplace(e.info.name, Extra{e.info.help, {}}).first->second;
      x.samples.emplace_back(i, e.value);
    }
  }
  for (const auto& [name, x] : extra) {
    const std::string metric = "qswitch_port_" + name + "_total";
    family(out, metric, "counter", x.help);
    for (const auto& [i, v] : x.samples) sample(out, metric, labels[i], v);
  }

  for (const auto& c : sw::kSwitchCounters) {
    const std::string metric = std::string("qswitch_") + c.name + "_total";
    family(out, metric, "counter", c.help);
    sample(out, metric, "", snapshot.counters.*c.field);
  }
  const struct {
    const char* name;
    const char* help;
    uint64_t value;
  } gauges[] = {
      {"qswitch_ports", "Ports attached to the switch.", snapshot.port_count()},
      {"qswitch_mac_entries", "Entries in the MAC table.", snapshot.mac_entries},
      {"qswitch_mac_capacity", "Most entries the MAC table holds (--mac-max).",
       snapshot.mac_capacity},
  };
  for (const auto& g : gauges) {
    family(out, g.name, "gauge", g.help);
    sample(out, g.name, "", g.value);
  }
  family(out, "qswitch_vlan_ports", "gauge", "Ports that carry the VLAN (untagged or tagged).");
  for (const auto& [vlan, v] : snapshot.vlans) {
    sample(out, "qswitch_vlan_ports", "{vlan=\"" + std::to_string(vlan) + "\"}", v.ports);
  }
  family(out, "qswitch_vlan_macs", "gauge", "Live MAC table entries in the VLAN.");
  for (const auto& [vlan, v] : snapshot.vlans) {
    sample(out, "qswitch_vlan_macs", "{vlan=\"" + std::to_string(vlan) + "\"}", v.macs);
  }
  return out;
}

}  // namespace qswitch::tools
