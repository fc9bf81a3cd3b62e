// tools/qswitch-bench/bench_cpu.h: the CPU time another process has used (--cpu-pid).
//
// Theory of operation
// - /proc/PID/stat (proc(5)) is one line: "pid (comm) state ppid pgrp ...". utime and stime,
//   fields 14 and 15, are the CPU time the process has spent in user and kernel mode, in clock
//   ticks (sysconf(_SC_CLK_TCK)); for a process (not one of its threads) they sum every thread.
//   comm is whatever name the process gave itself (prctl(PR_SET_NAME)) and may hold spaces and
//   ')', so fields are counted from after the LAST ')' in the line, where field 3 starts.
// - run_bench() reads it at the instants the measured window opens and closes (when it moves
//   the phase to measure and to drain, which is when the ports note their frame counts); the
//   difference over the frames received in the window is the switch's CPU per forwarded frame.
// - Resolution is one tick (10 ms with the usual 100 ticks/s): over a 3 s window that is 0.3 %
//   of one busy core. It is read twice per run, from the main thread, outside the ports' loops.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace qswitch::tools {

// utime + stime (ticks) from the text of a /proc/PID/stat line; false when the text is not one
// (no ')', fewer fields, or a field that is not a number).
bool parse_proc_stat_cpu(std::string_view stat, uint64_t& ticks);

// The CPU time (user + system) process `pid` has used, in ns, from /proc/PID/stat. False with
// `error` naming the file and why it could not be read or parsed.
bool read_process_cpu_ns(int pid, uint64_t& ns, std::string& error);

}  // namespace qswitch::tools
