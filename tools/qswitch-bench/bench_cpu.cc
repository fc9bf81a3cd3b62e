// tools/qswitch-bench/bench_cpu.cc: reading a process's CPU time from /proc (see bench_cpu.h).
#include "tools/qswitch-bench/bench_cpu.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace qswitch::tools {

namespace {

// utime is field 14 and stime field 15 (proc(5), counting from 1); the text after the last ')'
// starts with field 3 (state).
constexpr int kFirstFieldAfterComm = 3;
constexpr int kUtimeField = 14;
constexpr int kStimeField = 15;

// The next space-separated token of `rest` (leading spaces skipped); empty at the end.
std::string_view next_token(std::string_view& rest) {
  size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  size_t end = rest.find_first_of(" \n");
  std::string_view token = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return token;
}

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

bool parse_proc_stat_cpu(std::string_view stat, uint64_t& ticks) {
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return false;
  std::string_view rest = stat.substr(close + 1);
  uint64_t utime = 0;
  uint64_t stime = 0;
  for (int field = kFirstFieldAfterComm; field <= kStimeField; ++field) {
    std::string_view token = next_token(rest);
    if (token.empty()) return false;
    if (field == kUtimeField && !parse_u64(token, utime)) return false;
    if (field == kStimeField && !parse_u64(token, stime)) return false;
  }
  ticks = utime + stime;
  return true;
}

bool read_process_cpu_ns(int pid, uint64_t& ns, std::string& error) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read " + path + ": " + std::strerror(errno) +
            (errno == ENOENT ? " (no process " + std::to_string(pid) + ")" : std::string());
    return false;
  }
  // The line is a few hundred bytes; comm is at most 15 bytes (TASK_COMM_LEN 16).
  char buf[4096];
  size_t len = 0;
  while (len < sizeof buf) {
    ssize_t n = read(fd, buf + len, sizeof buf - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = "cannot read " + path + ": " + std::strerror(errno);
      close(fd);
      return false;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  close(fd);
  uint64_t ticks = 0;
  if (!parse_proc_stat_cpu(std::string_view(buf, len), ticks)) {
    error = "cannot parse " + path + ": no utime and stime after the command name";
    return false;
  }
  long hz = sysconf(_SC_CLK_TCK);
  if (hz <= 0) {
    error = "sysconf(_SC_CLK_TCK) failed";
    return false;
  }
  const uint64_t per_s = static_cast<uint64_t>(hz);
  ns = ticks / per_s * 1'000'000'000 + ticks % per_s * 1'000'000'000 / per_s;
  return true;
}

}  // namespace qswitch::tools
