// tools/qswitch-bench/bench_run.cc: connect, run the phases, sum the ports (see bench_run.h).
#include "tools/qswitch-bench/bench_run.h"

#include <chrono>
#include <memory>
#include <thread>

#include "tools/qswitch-bench/bench_cpu.h"

namespace qswitch::tools {

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kHelloWaitNs = 3000 * kMs;
constexpr int64_t kLearnPauseNs = 200 * kMs;
constexpr int64_t kDrainQuietNs = 200 * kMs;
constexpr int64_t kDrainMaxNs = 2000 * kMs;
constexpr auto kSlice = std::chrono::milliseconds(10);

// Sleeps until `deadline_ns` in 10 ms slices; false as soon as a port fails.
bool sleep_until(int64_t deadline_ns, const RunShared& shared) {
  while (monotonic_ns() < deadline_ns) {
    if (shared.failed.load(std::memory_order_acquire)) return false;
    std::this_thread::sleep_for(kSlice);
  }
  return !shared.failed.load(std::memory_order_acquire);
}

}  // namespace

std::vector<PortPlan> plan_ports(const BenchOptions& options) {
  const uint32_t n = options.ports;
  std::vector<PortPlan> plans(n);
  for (uint32_t i = 0; i < n; ++i) {
    plans[i].index = i;
    plans[i].size = options.size;
    plans[i].vlan = options.vlan_of(i);
  }
  auto link = [&](uint32_t from, uint32_t to) {
    plans[from].send_to.push_back(to);
    plans[to].senders |= uint64_t{1} << from;
  };
  switch (options.mode) {
    case BenchMode::kPair:
      link(0, 1);
      break;
    case BenchMode::kBidir:
      link(0, 1);
      link(1, 0);
      break;
    case BenchMode::kMesh:
      for (uint32_t i = 0; i < n; ++i) link(i, (i + 1) % n);
      break;
    case BenchMode::kSpread:
      for (uint32_t i = 0; i < n; ++i) {
        for (uint32_t k = 1; k < n; ++k) link(i, (i + k) % n);
      }
      break;
  }
  // What each port receives from each port that may send to it: the sender's untagged frame,
  // tagged again or padded to 60 (received_frame_size).
  for (PortPlan& p : plans) {
    p.rx_from.resize(n);
    for (uint32_t j = 0; j < n; ++j) {
      const PortPlan& from = plans[j];
      p.rx_from[j].size = received_frame_size(from.size, from.vlan, p.vlan);
      p.rx_from[j].sent_size = from.size - tag_size(from.vlan);
    }
  }
  return plans;
}

uint64_t frames_sent_to(const PortPlan& sender, uint64_t tx_frames, uint32_t receiver) {
  const uint64_t turns = sender.send_to.size();
  uint64_t sent = 0;
  for (uint64_t d = 0; d < turns; ++d) {
    // Frames d, d + turns, d + 2 * turns, ... below tx_frames went to send_to[d].
    if (sender.send_to[d] == receiver && d < tx_frames) sent += (tx_frames - d - 1) / turns + 1;
  }
  return sent;
}

BenchReport run_bench(const BenchOptions& options) {
  BenchReport report;
  report.target = options.target_text;
  report.mode = options.mode;
  report.size = options.size;
  report.ports = options.ports;
  report.vlan = options.vlan;
  report.vlan_ports = options.vlan != 0 ? options.vlan_ports : 0;
  report.vlan_text = vlan_text(options);

  std::vector<BenchLink> links(options.ports);
  if (options.direct) {
    if (!open_direct_pair(options.direct_dgram, links[0], links[1], report.error)) {
      return report;
    }
  } else {
    for (uint32_t i = 0; i < options.ports; ++i) {
      std::string error;
      links[i] = open_link(options.addr_for(i), error);
      if (links[i].kind() == BenchLink::Kind::kNone) {
        report.error = "port " + std::to_string(i) + ": " + error;
        return report;
      }
    }
  }

  RunShared shared;
  std::vector<PortPlan> plans = plan_ports(options);
  std::vector<std::unique_ptr<BenchPort>> ports;
  ports.reserve(options.ports);
  for (uint32_t i = 0; i < options.ports; ++i) {
    ports.push_back(std::make_unique<BenchPort>(plans[i], std::move(links[i]), shared));
  }
  std::vector<std::thread> threads;
  threads.reserve(ports.size());
  for (auto& port : ports) threads.emplace_back([p = port.get()] { p->run(); });

  int64_t t_measure = 0;
  int64_t t_drain = 0;
  bool ok = true;
  // Hello: every port's broadcast is out, then the switch gets 200 ms to learn.
  int64_t hello_deadline = monotonic_ns() + kHelloWaitNs;
  while (ok) {
    bool all = true;
    for (auto& port : ports) all = all && port->hello_sent();
    if (all) break;
    if (monotonic_ns() > hello_deadline) {
      report.error = "ports did not get their hello frames out within 3 s";
      ok = false;
      break;
    }
    if (shared.failed.load()) ok = false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ok = ok && sleep_until(monotonic_ns() + kLearnPauseNs, shared);
  if (ok) {
    shared.phase.store(Phase::kWarmup, std::memory_order_release);
    ok = sleep_until(monotonic_ns() + static_cast<int64_t>(options.warmup * 1e9), shared);
  }
  // --cpu-pid: the switch's CPU time when the window opens and when it closes.
  uint64_t cpu_start_ns = 0;
  uint64_t cpu_end_ns = 0;
  std::string cpu_error;
  auto read_cpu = [&](uint64_t& ns) {
    if (options.cpu_pid != 0 && cpu_error.empty()) {
      read_process_cpu_ns(options.cpu_pid, ns, cpu_error);
    }
  };
  if (ok) {
    t_measure = monotonic_ns();
    shared.phase.store(Phase::kMeasure, std::memory_order_release);
    read_cpu(cpu_start_ns);
    ok = sleep_until(t_measure + static_cast<int64_t>(options.seconds * 1e9), shared);
    t_drain = monotonic_ns();
    shared.phase.store(Phase::kDrain, std::memory_order_release);
    read_cpu(cpu_end_ns);
  }
  if (ok) {
    int64_t drain_deadline = t_drain + kDrainMaxNs;
    while (monotonic_ns() < drain_deadline && !shared.failed.load()) {
      int64_t now = monotonic_ns();
      bool quiet = true;
      for (auto& port : ports) {
        if (port->plan().sends() && !port->tx_done()) quiet = false;
        if (port->plan().receives() && now - port->last_rx_ns() < kDrainQuietNs) quiet = false;
      }
      if (quiet) break;
      std::this_thread::sleep_for(kSlice);
    }
  }
  shared.phase.store(Phase::kStop, std::memory_order_release);
  for (auto& t : threads) t.join();

  for (auto& port : ports) {
    const PortResult& r = port->result();
    if (!r.error.empty() && report.error.empty()) {
      report.error =
          "port " + std::to_string(port->plan().index) + " (" +
          (options.direct ? options.target_text : options.addr_for(port->plan().index).text) +
          "): " + r.error;
    }
    const PortTotals& m = r.at_phase[static_cast<int>(Phase::kMeasure)];
    const PortTotals& d = r.at_phase[static_cast<int>(Phase::kDrain)];
    report.tx_frames += d.tx_frames - m.tx_frames;
    report.rx_frames += d.rx_frames - m.rx_frames;
    report.rx_bytes += d.rx_bytes - m.rx_bytes;
    report.tx_total += r.final.tx_frames;
    report.rx_total += r.final.rx_frames;
    report.reordered += r.reordered;
    report.corrupt += r.corrupt;
    report.foreign += r.foreign;
    // Per sender: what it sent here against what arrived here from it.
    const PortPlan& plan = port->plan();
    for (auto& sender : ports) {
      const uint32_t j = sender->plan().index;
      if (j >= 64 || ((plan.senders >> j) & 1) == 0) continue;
      uint64_t sent = frames_sent_to(sender->plan(), sender->result().final.tx_frames, plan.index);
      uint64_t got = j < r.rx_by_sender.size() ? r.rx_by_sender[j] : 0;
      if (sent > got) report.loss_frames += sent - got;
    }
  }
  report.seconds = t_drain > t_measure ? static_cast<double>(t_drain - t_measure) / 1e9 : 0;
  if (ok && options.cpu_pid != 0) {
    if (cpu_error.empty()) {
      report.cpu_measured = true;
      report.cpu_seconds =
          cpu_end_ns > cpu_start_ns ? static_cast<double>(cpu_end_ns - cpu_start_ns) / 1e9 : 0;
    } else if (report.error.empty()) {
      report.error = "--cpu-pid " + std::to_string(options.cpu_pid) + ": " + cpu_error;
    }
  }
  report.completed = ok && report.error.empty();
  return report;
}

}  // namespace qswitch::tools
