// tests/e2e/subprocess.h: a child process whose stdin and stdout are pipes held by the test.
//
// Theory of operation: spawn() forks and execs argv[0] (looked up in PATH); the child's
// stdin and stdout are pipes, its stderr goes to a file (so a test reads logs after the fact and a
// chatty child never blocks on a full pipe). Everything the child writes on stdout is appended to
// output(); wait_for() reads (poll, bounded by a deadline) until a predicate over that text holds.
// The destructor ends the child by its own pid only: SIGTERM, up to 3 s of grace, then SIGKILL, and
// always reaps it. The child also gets PR_SET_PDEATHSIG=SIGKILL, so a test that crashes or is
// killed by a ctest timeout leaves no QEMU running. SIGPIPE is ignored process-wide so writing to a
// dead child is an error, not a kill.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qswitch::e2e {

class Subprocess {
 public:
  // Returns nullptr and sets *error when the program cannot be started.
  static std::unique_ptr<Subprocess> spawn(const std::vector<std::string>& argv,
                                           const std::string& stderr_path, std::string* error);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // Everything read from the child's stdout so far.
  const std::string& output() const { return output_; }

  // Writes all of `text` to the child's stdin. False when the child is gone.
  bool write_stdin(std::string_view text);

  // Reads stdout until done(output()) is true (returns true), the timeout passes or stdout reaches
  // EOF (returns false; done is checked once more after the last read).
  bool wait_for(const std::function<bool(const std::string&)>& done,
                std::chrono::milliseconds timeout);
  // Reads whatever is available without waiting.
  void drain();

  // Sends `signal` to the child. Returns false if it has already been reaped.
  bool send_signal(int signal);
  // Waits up to `timeout` for the child to exit; returns its wait status, or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running() const { return !reaped_; }

 private:
  Subprocess() = default;
  // One read attempt; returns false at EOF or error.
  bool read_some();

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  bool stdout_eof_ = false;
  bool reaped_ = false;
  int status_ = 0;
  std::string output_;
};

// A readable description of a wait status: "exit 0", "signal 9".
std::string describe_wait_status(int status);

}  // namespace qswitch::e2e
