// tools/qswitch-bench/bench_report.h: a BenchReport as one human line or one JSON object.
// Human:  unix:/tmp/x.sock pair size=64 ports=2 time=3.00s rx=12.30 Mfps 6.30 Gbit/s loss=0.00%
//         lost=0 reorder=0 corrupt=0 foreign=0   (one line; " FAILED: why" when it failed;
//         " vlan=10" or " vlan=10:0" after ports= with --vlan)
// JSON:   {"target":...,"mode":...,"size":..,"ports":..,"vlan":10|null,"tagged_ports":[0,..],
//         "seconds":..,"rx_frames":..,"tx_frames":..,"fps":..,"gbps":..,"loss_frames":..,
//         "loss_pct":..,"reordered":..,"corrupt":..,"foreign":..}   (one line; "error" added
//         when the run failed)
#pragma once

#include <string>

#include "tools/qswitch-bench/bench_run.h"

namespace qswitch::tools {

std::string format_human(const BenchReport& report);
std::string format_json(const BenchReport& report);

}  // namespace qswitch::tools
