// tools/qswitch/services/metrics_text.h: the switch's counters in the Prometheus text exposition
// format, version 0.0.4 (what `GET /metrics` on --metrics returns).
//
// Theory of operation
// - A pure function of a snapshot of the switch, taken on demand (on the loop, per scrape):
//   nothing is kept between scrapes and nothing is added to the data path.
// - Every metric family is written as "# HELP", "# TYPE", then all its samples together, as the
//   format requires. It renders a backends::SwitchSnapshot: the per-port and switch-wide
//   counters are the tables of switch/counters.h (qswitch_port_<name>_total and
//   qswitch_<name>_total, their help the table's), the kinds' own counters carry the help their
//   kind gives them; a counter added there shows up here without a change in this file.
// - Ports are labelled port="<id>" and peer="<describe()>", in id order. Label values are escaped
//   as the format says (backslash, double quote, line feed); HELP text escapes backslash and line
//   feed. Port ids are reused after a port closes, but a new peer has a new peer label (the pid or
//   the source port differs), so a reused id starts a new series rather than resetting one.
// - Ports that have closed are not listed (their series simply end).
#pragma once

#include <string>
#include <string_view>

#include "backends/runtime/switch_snapshot.h"

namespace qswitch::tools {

// The whole exposition, ending in '\n'. For a SwitchLoop pass loop.snapshot().
std::string render_metrics(const backends::SwitchSnapshot& snapshot);

// A label value escaped for the text format: '\' -> "\\", '"' -> "\"", LF -> "\n".
std::string escape_label_value(std::string_view value);

}  // namespace qswitch::tools
