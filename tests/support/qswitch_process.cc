// tests/support/qswitch_process.cc: see qswitch_process.h.
#include "tests/support/qswitch_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/control_client.h"

extern char** environ;

namespace qswitch::test_support {
namespace {

using Clock = std::chrono::steady_clock;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

std::string read_file_from(const std::string& path, size_t from) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(from));
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "key=value" tokens with numeric values, from `rest`.
void parse_counters(const std::string& rest, std::map<std::string, uint64_t>* out) {
  std::istringstream ss(rest);
  std::string tok;
  while (ss >> tok) {
    size_t eq = tok.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string value = tok.substr(eq + 1);
    if (value.empty() ||
        !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
      continue;
    }
    (*out)[tok.substr(0, eq)] = std::strtoull(value.c_str(), nullptr, 10);
  }
}

}  // namespace

uint64_t PortStats::get(const std::string& name) const {
  auto it = counters.find(name);
  return it == counters.end() ? 0 : it->second;
}

uint64_t StatsSnapshot::sum(const std::string& name) const {
  uint64_t total = 0;
  for (const auto& [id, p] : ports) total += p.get(name);
  for (const auto& p : closed_ports) total += p.get(name);
  return total;
}

const PortStats* StatsSnapshot::port(uint32_t id) const {
  auto it = ports.find(id);
  return it == ports.end() ? nullptr : &it->second;
}

const PortStats* StatsSnapshot::closed_port(uint32_t id) const {
  const PortStats* found = nullptr;
  for (const auto& p : closed_ports) {
    if (p.port == id) found = &p;
  }
  return found;
}

StatsSnapshot parse_stats(const std::string& text) {
  static const std::string kPort = "qswitch: stats port ";
  static const std::string kClosedPort = "qswitch: stats closed port ";
  static const std::string kSwitch = "qswitch: stats switch";
  StatsSnapshot snap;
  snap.text = text;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t at = line.find(kPort);
    size_t prefix = kPort.size();
    const bool closed = at == std::string::npos && line.find(kClosedPort) != std::string::npos;
    if (closed) {
      at = line.find(kClosedPort);
      prefix = kClosedPort.size();
    }
    if (at != std::string::npos) {
      std::istringstream ss(line.substr(at + prefix));
      PortStats p;
      p.closed = closed;
      std::string id;
      ss >> id >> p.peer;
      if (id.empty() ||
          !std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); })) {
        continue;
      }
      p.port = static_cast<uint32_t>(std::strtoul(id.c_str(), nullptr, 10));
      std::string rest;
      std::getline(ss, rest);
      parse_counters(rest, &p.counters);
      if (closed) {
        snap.closed_ports.push_back(std::move(p));
      } else {
        snap.ports[p.port] = std::move(p);
      }
      continue;
    }
    at = line.find(kSwitch);
    if (at != std::string::npos) {
      parse_counters(line.substr(at + kSwitch.size()), &snap.switch_counters);
    }
  }
  return snap;
}

QswitchProcess::~QswitchProcess() {
  kill_now();
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

bool QswitchProcess::launch(const LaunchOptions& options) {
  if (pid_ > 0) {
    error_ = "launch: already launched";
    return false;
  }
  if (options.stderr_path.empty()) {
    error_ = "launch: stderr_path is required";
    return false;
  }
  stderr_path_ = options.stderr_path;

  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::vector<std::string> arg_store;
  arg_store.push_back(options.binary);
  arg_store.insert(arg_store.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (auto& a : arg_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    std::string key = kv.substr(0, kv.find('='));
    bool drop = std::find(options.env_unset.begin(), options.env_unset.end(), key) !=
                options.env_unset.end();
    for (const auto& [k, v] : options.env_set) drop = drop || k == key;
    if (!drop) env_store.push_back(kv);
  }
  for (const auto& [k, v] : options.env_set) env_store.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    error_ = std::string("pipe2: ") + std::strerror(errno);
    return false;
  }
  int err_fd =
      ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (err_fd < 0 || null_fd < 0) {
    error_ = "open " + stderr_path_ + " or /dev/null: " + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    if (err_fd >= 0) ::close(err_fd);
    if (null_fd >= 0) ::close(null_fd);
    return false;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    error_ = std::string("fork: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    ::close(err_fd);
    ::close(null_fd);
    return false;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_fd, 2);
    if (options.nofile_limit > 0) {
      const rlimit lim{options.nofile_limit, options.nofile_limit};
      if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        const char msg[] = "qswitch test launcher: setrlimit(RLIMIT_NOFILE) failed\n";
        ssize_t ignored = ::write(2, msg, sizeof msg - 1);
        (void)ignored;
        ::_exit(126);
      }
    }
    ::execve(argv[0], argv.data(), envp.data());
    const char msg[] = "qswitch test launcher: execve failed\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_fd);
  ::close(null_fd);
  stdout_fd_ = out_pipe[0];
  ::fcntl(stdout_fd_, F_SETFL, ::fcntl(stdout_fd_, F_GETFL) | O_NONBLOCK);
  pid_ = pid;
  reaped_ = false;
  return true;
}

void QswitchProcess::take_line(const std::string& line) {
  stdout_lines_.push_back(line);
  if (line.rfind("listening ", 0) == 0) listening_.push_back(line.substr(10));
  if (line.rfind("connecting ", 0) == 0) connecting_.push_back(line.substr(11));
  if (line.rfind("join with:", 0) == 0) join_lines_.push_back(line);
  if (line.rfind("control ", 0) == 0) control_ = line.substr(8);
}

void QswitchProcess::read_stdout(Millis timeout, bool until_ready, bool* saw_ready) {
  auto deadline = Clock::now() + timeout;
  char buf[4096];
  while (stdout_fd_ >= 0) {
    ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n > 0) {
      stdout_partial_.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = stdout_partial_.find('\n')) != std::string::npos) {
        std::string line = stdout_partial_.substr(0, nl);
        stdout_partial_.erase(0, nl + 1);
        take_line(line);
        if (line == "ready" && saw_ready != nullptr) *saw_ready = true;
      }
      if (until_ready && saw_ready != nullptr && *saw_ready) return;
      continue;
    }
    if (n == 0) {  // EOF: the child closed stdout (or exited)
      if (!stdout_partial_.empty()) take_line(stdout_partial_);
      stdout_partial_.clear();
      ::close(stdout_fd_);
      stdout_fd_ = -1;
      return;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return;
    Millis left = time_left(deadline);
    if (left.count() == 0) return;
    pollfd p{stdout_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50))) < 0 &&
        errno != EINTR) {
      return;
    }
    if (until_ready && !running()) {
      // Exited: collect whatever is still in the pipe, then stop.
      deadline = Clock::now();
    }
  }
}

bool QswitchProcess::wait_ready(Millis timeout) {
  bool ready = false;
  read_stdout(timeout, true, &ready);
  if (ready) return true;
  std::string state =
      running() ? "still running" : "exited with status " + std::to_string(exit_status_);
  error_ = "qswitch did not print \"ready\" within " + std::to_string(timeout.count()) + " ms (" +
           state + ")\n--- stdout ---\n" + stdout_text() + "--- stderr ---\n" + stderr_text();
  return false;
}

bool QswitchProcess::start(const LaunchOptions& options, Millis timeout) {
  return launch(options) && wait_ready(timeout);
}

bool QswitchProcess::running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

bool QswitchProcess::signal(int sig) {
  if (!running()) {
    error_ = "signal: qswitch is not running";
    return false;
  }
  return ::kill(pid_, sig) == 0;
}

std::optional<int> QswitchProcess::wait_exit(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    read_stdout(Millis(0), false, nullptr);
    if (!running()) {
      if (pid_ <= 0) return std::nullopt;
      read_stdout(Millis(100), false, nullptr);
      return exit_status_;
    }
    if (time_left(deadline).count() == 0) return std::nullopt;
    std::this_thread::sleep_for(Millis(10));
  }
}

void QswitchProcess::kill_now() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) {
      reaped_ = true;
      exit_status_ = 128 + SIGKILL;
    }
  }
}

std::string QswitchProcess::stdout_text() const {
  std::string out;
  for (const auto& l : stdout_lines_) out += l + "\n";
  return out + stdout_partial_;
}

std::string QswitchProcess::stderr_text() const { return read_file_from(stderr_path_, 0); }

size_t QswitchProcess::stderr_size() const {
  struct stat st {};
  if (::stat(stderr_path_.c_str(), &st) != 0) return 0;
  return static_cast<size_t>(st.st_size);
}

std::optional<size_t> QswitchProcess::wait_for_stderr(const std::string& needle, Millis timeout,
                                                      size_t from) const {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const std::string text = read_file_from(stderr_path_, from);
    size_t at = text.find(needle);
    if (at != std::string::npos) {
      size_t nl = text.find('\n', at);
      return from + (nl == std::string::npos ? text.size() : nl + 1);
    }
    if (time_left(deadline).count() == 0) return std::nullopt;
    std::this_thread::sleep_for(Millis(10));
  }
}

size_t QswitchProcess::count_stderr_lines(const std::string& needle) const {
  std::istringstream lines(stderr_text());
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) n += line.find(needle) != std::string::npos;
  return n;
}

namespace {

// One request on a fresh control connection; the reply's "result", or nullopt with `error`.
std::optional<nlohmann::json> control_request(const std::string& control, const std::string& cmd,
                                              Millis timeout, std::string* error) {
  if (control.empty()) {
    *error = "qswitch printed no \"control\" line (started with --control none?)";
    return std::nullopt;
  }
  auto ctl = ControlClient::connect(control, error, timeout);
  if (!ctl) return std::nullopt;
  const LineResult r = ctl->request(R"({"cmd":")" + cmd + R"("})", timeout);
  if (!r.ok()) {
    *error = "no reply to " + cmd + " from " + control + ": " + to_string(r.status) + " " + r.error;
    return std::nullopt;
  }
  nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
  if (!reply.is_object() || !reply.value("ok", false) || !reply.contains("result")) {
    *error = cmd + " failed: " + r.line;
    return std::nullopt;
  }
  return std::move(reply["result"]);
}

// A `ports` row or a `stats` "closed_ports" row: id, "peer" and "counters".
std::optional<PortStats> port_stats_of(const nlohmann::json& row) {
  if (!row.is_object() || !row.contains("id") || !row["id"].is_number_unsigned()) {
    return std::nullopt;
  }
  PortStats p;
  p.port = row["id"].get<uint32_t>();
  p.peer = row.value("peer", "");
  const nlohmann::json counters = row.value("counters", nlohmann::json::object());
  for (const auto& [name, value] : counters.items()) {
    if (value.is_number_unsigned()) p.counters[name] = value.get<uint64_t>();
  }
  return p;
}

}  // namespace

std::optional<StatsSnapshot> QswitchProcess::stats(Millis timeout) {
  std::optional<nlohmann::json> ports = control_request(control_, "ports", timeout, &error_);
  if (!ports) return std::nullopt;
  std::optional<nlohmann::json> sw = control_request(control_, "stats", timeout, &error_);
  if (!sw) return std::nullopt;
  StatsSnapshot snap;
  snap.text = "ports: " + ports->dump() + "\nstats: " + sw->dump() + "\n";
  for (const nlohmann::json& row : *ports) {
    std::optional<PortStats> p = port_stats_of(row);
    if (p) snap.ports[p->port] = std::move(*p);  // a dialler still waiting has no id
  }
  for (const nlohmann::json& row : sw->value("closed_ports", nlohmann::json::array())) {
    std::optional<PortStats> p = port_stats_of(row);
    if (p) snap.closed_ports.push_back(std::move(*p));
  }
  for (const auto& [name, value] : sw->items()) {
    if (value.is_number_unsigned()) snap.switch_counters[name] = value.get<uint64_t>();
  }
  return snap;
}

std::optional<uint32_t> QswitchProcess::port_id_for_mac(const std::string& mac, Millis timeout) {
  const std::string want = lower(mac);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::optional<nlohmann::json> macs =
        control_request(control_, "macs", std::max(time_left(deadline), Millis(100)), &error_);
    if (!macs) return std::nullopt;
    for (const nlohmann::json& row : *macs) {
      if (lower(row.value("mac", "")) == want && row.contains("port") &&
          row["port"].is_number_unsigned()) {
        return row["port"].get<uint32_t>();
      }
    }
    if (time_left(deadline).count() == 0) {
      error_ = "no port learned " + mac + " within " + std::to_string(timeout.count()) +
               " ms (macs: " + macs->dump() + ")";
      return std::nullopt;
    }
    std::this_thread::sleep_for(Millis(10));  // polling the MAC table, bounded by the deadline
  }
}

std::optional<long> QswitchProcess::rss_kib() const {
  if (pid_ <= 0 || reaped_) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return std::nullopt;
}

}  // namespace qswitch::test_support
