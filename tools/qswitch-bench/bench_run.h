// tools/qswitch-bench/bench_run.h: one benchmark run, from connecting to the summed result.
//
// Theory of operation
// - plan_ports() decides who sends to whom: pair 0->1; bidir 0->1 and 1->0; mesh i->(i+1)%P;
//   spread i->(i+1)%P, (i+2)%P, ..., (i+P-1)%P in turn (frame k of port i to the k-th of the
//   other P-1 ports, round robin), so every port receives from every other. Ports outside those
//   roles only listen (they see flooded frames, counted as foreign).
// - run_bench() connects every port (all connected before any traffic), starts one thread per
//   port, and drives the phases: every port sends its hello broadcast; 200 ms later warmup
//   traffic starts; after --warmup the measurement window opens, after --time it closes; then a
//   drain lets frames in flight arrive (until every receiver has been quiet for 200 ms, at most
//   2 s). Waits are sliced into 10 ms sleeps so a failed port ends the run at once.
// - Results: rates come from the measurement window only (frames received between the moments
//   the receiving port saw "measure" and "drain", over the main thread's measured duration).
//   Loss is over the whole run: per sender and receiver, the data frames the sender sent to that
//   receiver (frames_sent_to(): its frames go to its receivers in turn) minus the valid ones the
//   receiver got from it, summed over the pairs.
// - --cpu-pid: the switch's CPU time (bench_cpu.h) is read right after the phase moves to
//   measure and right after it moves to drain, the instants the ports note their counters; a
//   read that fails then fails the run.
// - --vlan: plan_ports() gives each port its tag and what it receives from its sender: the
//   sender's untagged frame, tagged again or padded to 60 (received_frame_size, bench_frame.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tools/qswitch-bench/bench_options.h"
#include "tools/qswitch-bench/bench_port.h"

namespace qswitch::tools {

struct BenchReport {
  std::string target;
  BenchMode mode = BenchMode::kPair;
  uint32_t size = 0;
  uint32_t ports = 0;
  uint16_t vlan = 0;         // --vlan VID, 0 without
  uint64_t vlan_ports = 0;   // bit i: port i tagged
  std::string vlan_text;     // as vlan_text(): "10", "10:0", "" without --vlan
  double seconds = 0;        // measured window, as timed
  uint64_t rx_frames = 0;    // in the window
  uint64_t tx_frames = 0;    // in the window
  uint64_t rx_bytes = 0;     // Ethernet bytes in the window
  uint64_t tx_total = 0;     // whole run
  uint64_t rx_total = 0;     // whole run
  uint64_t loss_frames = 0;  // whole run
  uint64_t reordered = 0;
  uint64_t corrupt = 0;
  uint64_t foreign = 0;
  bool cpu_measured = false;  // --cpu-pid given and read at both ends of the window
  double cpu_seconds = 0;     // the switch's CPU time (user + system) in the window
  bool completed = false;     // false: a connection failed; `error` says which and why
  std::string error;

  double fps() const { return seconds > 0 ? static_cast<double>(rx_frames) / seconds : 0; }
  double gbps() const {
    return seconds > 0 ? static_cast<double>(rx_bytes) * 8 / seconds / 1e9 : 0;
  }
  // The switch's CPU ns per frame received in the window; < 0 when not measured or no frame.
  double cpu_ns_per_frame() const {
    return cpu_measured && rx_frames > 0 ? cpu_seconds * 1e9 / static_cast<double>(rx_frames) : -1;
  }
  double loss_pct() const {
    return tx_total > 0 ? 100.0 * static_cast<double>(loss_frames) / static_cast<double>(tx_total)
                        : 0;
  }
};

std::vector<PortPlan> plan_ports(const BenchOptions& options);
// How many of the first `tx_frames` data frames of `sender` went to port `receiver`.
uint64_t frames_sent_to(const PortPlan& sender, uint64_t tx_frames, uint32_t receiver);
BenchReport run_bench(const BenchOptions& options);

}  // namespace qswitch::tools
