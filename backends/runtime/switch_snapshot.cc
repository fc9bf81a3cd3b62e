// backends/runtime/switch_snapshot.cc: see the header.
#include "backends/runtime/switch_snapshot.h"

namespace qswitch::backends {

namespace {

void append(std::string& text, const char* name, uint64_t value) {
  text += ' ';
  text += name;
  text += '=';
  text += std::to_string(value);
}

std::string port_line(const char* prefix, const PortSnapshot& p) {
  std::string line = prefix;
  line += std::to_string(p.id);
  line += ' ';
  line += p.peer;
  p.counters.for_each([&](const char* name, uint64_t v) { append(line, name, v); });
  for (const ExtraCounter& e : p.extra) append(line, e.info.name, e.value);
  return line;
}

}  // namespace

uint64_t SwitchSnapshot::queued_bytes() const {
  uint64_t sum = 0;
  for (const PortSnapshot& p : ports) sum += p.queued_bytes;
  return sum;
}

std::vector<std::string> stats_text(const SwitchSnapshot& snapshot) {
  std::vector<std::string> lines;
  lines.reserve(snapshot.closed_ports.size() + snapshot.ports.size() + 1);
  for (const PortSnapshot& p : snapshot.closed_ports) {
    lines.push_back(port_line("stats closed port ", p));
  }
  for (const PortSnapshot& p : snapshot.ports) lines.push_back(port_line("stats port ", p));
  std::string line = "stats switch";
  append(line, "ports", snapshot.port_count());
  append(line, "macs", snapshot.mac_entries);
  snapshot.counters.for_each([&](const char* name, uint64_t v) { append(line, name, v); });
  lines.push_back(std::move(line));
  return lines;
}

}  // namespace qswitch::backends
