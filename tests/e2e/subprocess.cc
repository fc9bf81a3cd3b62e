// tests/e2e/subprocess.cc: see subprocess.h.
#include "tests/e2e/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

namespace qswitch::e2e {
namespace {

using Clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

std::unique_ptr<Subprocess> Subprocess::spawn(const std::vector<std::string>& argv,
                                              const std::string& stderr_path, std::string* error) {
  ::signal(SIGPIPE, SIG_IGN);
  if (argv.empty()) {
    *error = "empty command line";
    return nullptr;
  }
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    return nullptr;
  }
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return nullptr;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // Opened before fork so the child only calls async-signal-safe functions (plus execvp).
  int err_fd = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    *error = "cannot open " + stderr_path + ": " + strerror(errno);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) ::close(fd);
    return nullptr;
  }
  // Reports an exec failure to the parent: the write end closes on a successful exec.
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + strerror(errno);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_fd}) ::close(fd);
    return nullptr;
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // The child dies with the test: a crashed or killed test leaves no guest running.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // dup2 clears FD_CLOEXEC on the target, so the child keeps exactly fds 0, 1 and 2.
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_fd, 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  int fork_errno = errno;
  for (int fd : {in_pipe[0], out_pipe[1], err_fd, exec_pipe[1]}) ::close(fd);
  int exec_errno = 0;
  if (pid > 0) {
    ssize_t n;
    do {
      n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;
  }
  ::close(exec_pipe[0]);
  if (pid < 0 || exec_errno != 0) {
    *error = "cannot start " + argv[0] + ": " + strerror(pid < 0 ? fork_errno : exec_errno);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    return nullptr;
  }
  std::unique_ptr<Subprocess> p(new Subprocess());
  p->pid_ = pid;
  p->stdin_fd_ = in_pipe[1];
  p->stdout_fd_ = out_pipe[0];
  ::fcntl(p->stdout_fd_, F_SETFL, ::fcntl(p->stdout_fd_, F_GETFL) | O_NONBLOCK);
  return p;
}

Subprocess::~Subprocess() {
  close_fd(stdin_fd_);
  if (!reaped_) {
    send_signal(SIGTERM);
    if (!wait_exit(std::chrono::milliseconds(3000))) {
      send_signal(SIGKILL);
      wait_exit(std::chrono::milliseconds(5000));
    }
  }
  close_fd(stdout_fd_);
}

bool Subprocess::write_stdin(std::string_view text) {
  while (!text.empty()) {
    if (stdin_fd_ < 0) return false;
    ssize_t n = ::write(stdin_fd_, text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Subprocess::read_some() {
  if (stdout_fd_ < 0 || stdout_eof_) return false;
  char buf[8192];
  for (int i = 0; i < 64; ++i) {  // bounded: at most 512 KiB per call
    ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
    if (n > 0) {
      output_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      stdout_eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
  return true;
}

void Subprocess::drain() { read_some(); }

bool Subprocess::wait_for(const std::function<bool(const std::string&)>& done,
                          std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    read_some();
    if (done(output_)) return true;
    if (stdout_eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{stdout_fd_, POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<long>(left.count(), 200)));
  }
}

bool Subprocess::send_signal(int signal) {
  if (reaped_ || pid_ <= 0) return false;
  return ::kill(pid_, signal) == 0;
}

std::optional<int> Subprocess::wait_exit(std::chrono::milliseconds timeout) {
  if (reaped_) return status_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      status_ = status;
      read_some();
      return status_;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more: nothing left to wait for
      reaped_ = true;
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace qswitch::e2e
