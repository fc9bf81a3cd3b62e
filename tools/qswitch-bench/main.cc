// tools/qswitch-bench/main.cc: qswitch-bench, a frame-rate benchmark for any virtual switch.
// Parses the command line, runs one measurement, prints one line (or one JSON object).
// Exit: 0 run completed, 1 a connection failed or frames arrived corrupt, 2 bad usage (a
// --cpu-pid whose /proc/PID/stat cannot be read included: checked before any connection).
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <string>

#include "tools/qswitch-bench/bench_cpu.h"
#include "tools/qswitch-bench/bench_options.h"
#include "tools/qswitch-bench/bench_report.h"
#include "tools/qswitch-bench/bench_run.h"

int main(int argc, char** argv) {
  using namespace qswitch::tools;
  ParseOutcome parsed = parse_bench_options(argc, argv);
  if (parsed.help) {
    std::fputs(bench_usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.options) {
    std::fprintf(stderr, "qswitch-bench: %s\n", parsed.error.c_str());
    return 2;
  }
  if (parsed.options->cpu_pid != 0) {
    uint64_t ns = 0;
    std::string error;
    if (!read_process_cpu_ns(parsed.options->cpu_pid, ns, error)) {
      std::fprintf(stderr, "qswitch-bench: bad --cpu-pid %d: %s\n", parsed.options->cpu_pid,
                   error.c_str());
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);  // a closed peer is an error return, not a signal

  BenchReport report = run_bench(*parsed.options);
  std::string line = parsed.options->json ? format_json(report) : format_human(report);
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!report.completed) {
    std::fprintf(stderr, "qswitch-bench: %s\n", report.error.c_str());
    return 1;
  }
  if (report.corrupt > 0) {
    std::fprintf(stderr, "qswitch-bench: %llu corrupt frames\n",
                 static_cast<unsigned long long>(report.corrupt));
    return 1;
  }
  return 0;
}
