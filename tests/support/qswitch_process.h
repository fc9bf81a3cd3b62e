// tests/support/qswitch_process.h: one qswitch process under test, and what it printed.
//
// Theory of operation
// - launch() forks and execs the binary with the given arguments and environment changes. The
//   child's stdout is a pipe the test reads; its stderr goes to a file (so nothing is lost and it
//   can be searched at any time); the child gets PR_SET_PDEATHSIG(SIGKILL) so it cannot outlive
//   a crashed test. Every fd the test holds is close-on-exec. nofile_limit sets the child's
//   RLIMIT_NOFILE (soft = hard) before exec, as prlimit(1) would.
// - wait_ready() reads stdout lines until "ready" (the contract: printed and flushed after all
//   listeners are bound), collecting "listening ..." / "connecting ..." / "join with: ..." /
//   "control ..." lines.
// - signal(), wait_exit() and the destructor act only on this object's own pid, and only while
//   it has not been reaped. The destructor SIGKILLs and reaps a child still running.
// - stats() reads the live ports, the recently closed ports' final counters and the switch
//   counters through the control socket (the `ports` and `stats` commands of the printed
//   "control" address); port_id_for_mac() reads the `macs` table.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qswitch::test_support {

using Millis = std::chrono::milliseconds;

struct LaunchOptions {
  std::string binary;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env_set;  // added or replaced
  std::vector<std::string> env_unset;
  std::string stderr_path;  // required: where the child's stderr goes
  // > 0: the child's RLIMIT_NOFILE, soft and hard, set between fork and exec (so qswitch cannot
  // raise it).
  unsigned long nofile_limit = 0;
};

// One "qswitch: stats port ..." line, or one "qswitch: stats closed port ..." line (the final
// counters of a port that has gone; qswitch keeps a bounded history of them).
struct PortStats {
  uint32_t port = 0;
  bool closed = false;
  std::string peer;
  std::map<std::string, uint64_t> counters;
  uint64_t get(const std::string& name) const;  // 0 when absent
  bool has(const std::string& name) const { return counters.count(name) != 0; }
};

struct StatsSnapshot {
  std::map<uint32_t, PortStats> ports;  // live ports by id; the last line seen for each id
  std::vector<PortStats> closed_ports;  // "stats closed port" lines, in the order printed
  // From `stats` ("mac_entries", ...), or from "qswitch: stats switch ..." ("macs", ...).
  std::map<std::string, uint64_t> switch_counters;
  std::string text;                             // the replies or stderr text the snapshot came from
  uint64_t sum(const std::string& name) const;  // over live and closed ports
  const PortStats* port(uint32_t id) const;     // a live port
  // The last closed-port line for `id` (port ids are reused), or nullptr.
  const PortStats* closed_port(uint32_t id) const;
};

// Parses all stats lines in `text` (later lines for the same port replace earlier ones).
StatsSnapshot parse_stats(const std::string& text);

class QswitchProcess {
 public:
  QswitchProcess() = default;
  ~QswitchProcess();
  QswitchProcess(const QswitchProcess&) = delete;
  QswitchProcess& operator=(const QswitchProcess&) = delete;

  // Starts the child. False with error() set when fork/exec setup failed (exec failure itself
  // shows as exit status 127 with a message in stderr).
  bool launch(const LaunchOptions& options);
  // Reads stdout until the "ready" line. False with error() (including stderr) on EOF, exit or
  // timeout.
  bool wait_ready(Millis timeout = Millis(5000));
  // launch() + wait_ready().
  bool start(const LaunchOptions& options, Millis timeout = Millis(5000));

  pid_t pid() const { return pid_; }
  bool running();  // started, not yet exited (reaps it if it has exited)
  bool signal(int sig);
  // Waits for the child to exit; its exit code, or 128 + signal number when killed by a signal.
  // Also collects the rest of stdout.
  std::optional<int> wait_exit(Millis timeout);
  // SIGKILL + reap (only this child), if still running.
  void kill_now();

  const std::string& error() const { return error_; }
  const std::vector<std::string>& stdout_lines() const { return stdout_lines_; }
  std::string stdout_text() const;
  // Endpoints from "listening X" / "connecting X" lines, in order.
  const std::vector<std::string>& listening() const { return listening_; }
  const std::vector<std::string>& connecting() const { return connecting_; }
  // Full "join with: ..." lines.
  const std::vector<std::string>& join_lines() const { return join_lines_; }
  // The address from the "control X" line (e.g. "unix:/run/user/1000/qswitch/default.ctl"),
  // empty when qswitch printed none.
  const std::string& control() const { return control_; }

  std::string stderr_text() const;
  size_t stderr_size() const;
  // Waits until stderr (from byte `from` on) contains `needle`; returns the byte offset just past
  // the line holding it, or nullopt on timeout.
  std::optional<size_t> wait_for_stderr(const std::string& needle, Millis timeout,
                                        size_t from = 0) const;
  // Counts lines of stderr containing `needle`.
  size_t count_stderr_lines(const std::string& needle) const;

  // The live ports (`ports`: peer is a row's "peer", counters its "counters"), the closed
  // ports (`stats`' "closed_ports" rows, read the same way) and the switch counters (`stats`: its
  // numeric fields), through the control socket. nullopt with error() when there is no control
  // socket or no reply.
  std::optional<StatsSnapshot> stats(Millis timeout = Millis(3000));
  // The port that has learned `mac` in the `macs` table, waiting until one has (or `timeout`).
  std::optional<uint32_t> port_id_for_mac(const std::string& mac, Millis timeout = Millis(3000));

  // VmRSS of the child in KiB (from /proc/PID/status), or nullopt.
  std::optional<long> rss_kib() const;

 private:
  void read_stdout(Millis timeout, bool until_ready, bool* saw_ready);
  void take_line(const std::string& line);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_status_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_partial_;
  std::vector<std::string> stdout_lines_;
  std::vector<std::string> listening_;
  std::vector<std::string> connecting_;
  std::vector<std::string> join_lines_;
  std::string control_;
  std::string stderr_path_;
  std::string error_;
};

}  // namespace qswitch::test_support
