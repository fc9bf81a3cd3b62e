// tools/qswitch/metrics_text.h: the switch's counters in the Prometheus text exposition format,
// version 0.0.4 (what `GET /metrics` on --metrics returns).
//
// Theory of operation
// - A pure function of the switch's state, rendered on demand (on the loop, per scrape): nothing
//   is kept between scrapes and nothing is added to the data path.
// - Every metric family is written as "# HELP", "# TYPE", then all its samples together, as the
//   format requires. Per-port counters come from sw::PortCounters::for_each, so a counter added
//   there shows up here as qswitch_port_<name>_total without a change in this file (with a
//   generic help text until one is written in metrics_text.cc).
// - Ports are labelled port="<id>" and peer="<describe()>", in id order. Label values are escaped
//   as the format says (backslash, double quote, line feed); HELP text escapes backslash and line
//   feed. Port ids are reused after a port closes, but a new peer has a new peer label (the pid or
//   the source port differs), so a reused id starts a new series rather than resetting one.
// - Ports that have closed are not listed (their series simply end).
#pragma once

#include <string>
#include <string_view>

#include "switch/l2_switch.h"

namespace qswitch::tools {

// The whole exposition, ending in '\n'. For a SwitchLoop pass loop.fabric().
std::string render_metrics(const sw::L2Switch& fabric);

// A label value escaped for the text format: '\' -> "\\", '"' -> "\"", LF -> "\n".
std::string escape_label_value(std::string_view value);

}  // namespace qswitch::tools
