// tools/qswitch-bench/bench_report.h: a BenchReport as one human line or one JSON object.
// Human:  unix:/tmp/x.sock pair size=64 ports=2 time=3.00s rx=12.30 Mfps 6.30 Gbit/s loss=0.00%
//         lost=0 reorder=0 corrupt=0 foreign=0   (one line; " FAILED: why" when it failed;
//         " vlan=10" or " vlan=10:0" after ports= with --vlan; " switch_cpu=0.912s
//         (74.1 ns/frame)" after foreign= with --cpu-pid, the part in brackets when any frame
//         arrived in the window)
// JSON:   {"target":...,"mode":...,"size":..,"ports":..,"vlan":10|null,"tagged_ports":[0,..],
//         "seconds":..,"rx_frames":..,"tx_frames":..,"fps":..,"gbps":..,"loss_frames":..,
//         "loss_pct":..,"reordered":..,"corrupt":..,"foreign":..,"switch_cpu_s":..|null,
//         "switch_cpu_ns_per_frame":..|null,"completed":..}   (one line; "error" added when the
//         run failed; the switch_cpu fields are null without --cpu-pid, ns_per_frame also when
//         no frame arrived in the window)
#pragma once

#include <string>

#include "tools/qswitch-bench/bench_run.h"

namespace qswitch::tools {

std::string format_human(const BenchReport& report);
std::string format_json(const BenchReport& report);

}  // namespace qswitch::tools
