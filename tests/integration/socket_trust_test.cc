// tests/integration/socket_trust_test.cc: qswitch refuses a default socket directory that another
// user could control, and `qswitch ctl` / `qswitch exec` refuse a control socket served by another
// user before sending it anything (tools/qswitch/config/socket_trust.h; docs/control-protocol.md,
// "Who trusts whom").
//
// These tests need root (label `root`): they make directories owned by uid 65534 (nobody) and run
// a fake control server as that uid. Run as another user they fail saying so.
//
// Where the default directory is:
// - kXdg: XDG_RUNTIME_DIR=<tmp>/xdg, so the directory is <tmp>/xdg/qswitch;
// - kTmp: XDG_RUNTIME_DIR unset, so it is /tmp/qswitch-0. The test never touches the real /tmp:
//   every qswitch (daemon and clients) runs in a mount namespace of its own (util-linux unshare)
//   where <tmp>/tmp is bind-mounted on /tmp; the test prepares and inspects <tmp>/tmp/qswitch-0.
//
// What is asserted is what a user and the squatter observe: the exit status and the message of
// the refused command, what is (not) created in the directory, whether the switch answers
// `qswitch ctl`, and the bytes and fds the foreign server received (counted by that server).
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

constexpr uid_t kNobody = 65534;
constexpr const char* kUnshare = "/usr/bin/unshare";

using Clock = std::chrono::steady_clock;

int64_t ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : left;
}

int64_t monotonic_ms() {  // async-signal-safe: used after fork
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Writes `v` in decimal to `out` (no allocation, no locale: used after fork).
size_t put_u64(char* out, uint64_t v) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

// A control socket served by another user: a child process that runs as uid 65534, listens on
// a unix socket, accepts connections one at a time until stop() and counts what clients send
// it: bytes, and fds passed with SCM_RIGHTS. It never writes to a client; it closes a
// connection as soon as something arrived on it (so an old client fails fast instead of
// waiting 10 s for a reply).
class ForeignServer {
 public:
  struct Report {
    uint64_t connections = 0;
    uint64_t bytes = 0;
    uint64_t fds = 0;
  };

  ForeignServer() = default;
  ForeignServer(const ForeignServer&) = delete;
  ForeignServer& operator=(const ForeignServer&) = delete;
  ~ForeignServer() {
    if (stop_w_ >= 0) ::close(stop_w_);
    if (report_r_ >= 0) ::close(report_r_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);  // our own child only
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Forks; the child drops to uid/gid 65534 and listens on `path` (its directory must let uid
  // 65534 create it). True once it listens (within 5 s).
  ::testing::AssertionResult start(const std::string& path) {
    int stop_pipe[2];
    int report_pipe[2];
    if (::pipe2(stop_pipe, O_CLOEXEC) != 0) return ::testing::AssertionFailure() << "pipe2";
    if (::pipe2(report_pipe, O_CLOEXEC) != 0) {
      ::close(stop_pipe[0]);
      ::close(stop_pipe[1]);
      return ::testing::AssertionFailure() << "pipe2";
    }
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (path.size() >= sizeof sun.sun_path) return ::testing::AssertionFailure() << "long path";
    std::memcpy(sun.sun_path, path.data(), path.size());
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
    if (pid == 0) {
      // Child: only system calls from here on.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(9);
      ::close(stop_pipe[1]);
      ::close(report_pipe[0]);
      serve(sun, stop_pipe[0], report_pipe[1]);
    }
    pid_ = pid;
    ::close(stop_pipe[0]);
    ::close(report_pipe[1]);
    stop_w_ = stop_pipe[1];
    report_r_ = report_pipe[0];
    std::string got;
    if (!read_until(1, Clock::now() + 5s, got) || got != "R") {
      return ::testing::AssertionFailure()
             << "the uid " << kNobody << " server did not start listening on " << path << " (got '"
             << got << "'; exit codes: 10 setuid, 11 socket/bind/listen)";
    }
    return ::testing::AssertionSuccess();
  }

  // Tells the child to stop and reads what it saw; nullopt when it did not answer within 5 s.
  std::optional<Report> stop() {
    if (stop_w_ < 0) return std::nullopt;
    ::close(stop_w_);
    stop_w_ = -1;
    std::string text;
    const bool complete =
        read_until(64, Clock::now() + 5s, text) && !text.empty() && text.back() == '\n';
    if (pid_ > 0) {
      int status = 0;
      for (int i = 0; i < 500 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(10'000);
      ::kill(pid_, SIGKILL);  // no-op when it has exited; it is our own child either way
      ::waitpid(pid_, nullptr, WNOHANG);
      pid_ = -1;
    }
    if (!complete) return std::nullopt;
    Report r;
    if (std::sscanf(text.c_str(), "%" SCNu64 " %" SCNu64 " %" SCNu64, &r.connections, &r.bytes,
                    &r.fds) != 3) {
      return std::nullopt;
    }
    return r;
  }

 private:
  [[noreturn]] static void serve(const sockaddr_un& sun, int stop_r, int report_w) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      _exit(10);
    }
    const int ls = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0 || ::bind(ls, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) != 0 ||
        ::listen(ls, 8) != 0) {
      _exit(11);
    }
    if (::write(report_w, "R", 1) != 1) _exit(12);
    uint64_t connections = 0;
    uint64_t bytes = 0;
    uint64_t fds = 0;
    int conn = -1;
    // Bounded: 60 s and 100000 turns at most, whatever the test does.
    const int64_t end_ms = monotonic_ms() + 60'000;
    for (int turn = 0; turn < 100'000; ++turn) {
      const int64_t left = end_ms - monotonic_ms();
      if (left <= 0) break;
      pollfd p[3] = {{stop_r, POLLIN, 0}, {ls, POLLIN, 0}, {conn, POLLIN, 0}};
      const int n = ::poll(p, conn >= 0 ? 3 : 2, static_cast<int>(left));
      if (n <= 0) continue;
      // The test closed its end: report, once the connections a client made before it are
      // counted (a client that connected and left at once may still be in the backlog).
      const bool pending =
          (conn < 0 && (p[1].revents & POLLIN) != 0) || (conn >= 0 && p[2].revents != 0);
      if (p[0].revents != 0 && !pending) break;
      if (conn < 0 && (p[1].revents & POLLIN) != 0) {
        conn = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (conn >= 0) ++connections;
        continue;
      }
      if (conn >= 0 && p[2].revents != 0) {
        char buf[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(16 * sizeof(int))];
        iovec iov{buf, sizeof buf};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t r = ::recvmsg(conn, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r > 0) bytes += static_cast<uint64_t>(r);
        if (r >= 0) {
          for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
            const size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; ++i) {
              int fd = -1;
              std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
              ::close(fd);
              ++fds;
            }
          }
        }
        if (r >= 0 || (errno != EAGAIN && errno != EINTR)) {
          ::close(conn);
          conn = -1;
        }
      }
    }
    char out[80];
    size_t len = put_u64(out, connections);
    out[len++] = ' ';
    len += put_u64(out + len, bytes);
    out[len++] = ' ';
    len += put_u64(out + len, fds);
    out[len++] = '\n';
    (void)!::write(report_w, out, len);
    _exit(0);
  }

  // Reads from the report pipe until `max` bytes, a '\n' or EOF, before `deadline`.
  bool read_until(size_t max, Clock::time_point deadline, std::string& out) {
    for (int i = 0; i < 1000 && out.size() < max; ++i) {
      if (!out.empty() && out.back() == '\n') return true;
      pollfd p{report_r_, POLLIN, 0};
      const int n = ::poll(&p, 1, static_cast<int>(ms_left(deadline)));
      if (n == 0) return false;
      if (n < 0) continue;
      char c[64];
      const ssize_t r = ::read(report_r_, c, std::min(sizeof c, max - out.size()));
      if (r <= 0) return !out.empty();
      out.append(c, static_cast<size_t>(r));
    }
    return !out.empty();
  }

  pid_t pid_ = -1;
  int stop_w_ = -1;    // closing it tells the child to report and exit
  int report_r_ = -1;  // the child writes "R" once listening, then "CONNECTIONS BYTES FDS\n"
};

enum class Where { kXdg, kTmp };

void PrintTo(Where where, std::ostream* os) {
  *os << (where == Where::kXdg ? "XDG_RUNTIME_DIR set" : "XDG_RUNTIME_DIR unset");
}

std::string where_name(const ::testing::TestParamInfo<Where>& info) {
  return info.param == Where::kXdg ? "XdgRuntimeDir" : "TmpFallback";
}

class SocketTrustTest : public SwitchFixture {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_FAIL() << "this test needs root (it creates directories owned by uid " << kNobody
                   << " and runs a server as that uid); it is labelled `root`: run it as root "
                      "or leave it out with ctest -LE root";
    }
    ASSERT_FALSE(tmp_.path().empty());
    // uid 65534 must reach the directories below it (its server's socket lives there).
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0711), 0) << std::strerror(errno);
  }

  struct Run {
    std::optional<int> status;
    std::string out;
    std::string err;
  };

  // Runs `qswitch ARGS...` to completion (10 s) with `env` set.
  Run run(const LaunchOptions& o) {
    QswitchProcess p;
    Run r;
    if (!p.launch(o)) {
      r.err = p.error();
      return r;
    }
    r.status = p.wait_exit(10s);
    r.out = p.stdout_text();
    r.err = p.stderr_text();
    return r;
  }

  LaunchOptions with_stderr(LaunchOptions o) {
    o.stderr_path = tmp_.file("run-" + std::to_string(runs_++) + ".stderr");
    return o;
  }

  int runs_ = 0;
};

// --- The default directory -------------------------------------------------------------------

class DefaultDirTest : public SocketTrustTest, public ::testing::WithParamInterface<Where> {
 protected:
  void SetUp() override {
    SocketTrustTest::SetUp();
    if (HasFatalFailure()) return;
    if (GetParam() == Where::kXdg) {
      const std::string xdg = tmp_.file("xdg");
      ASSERT_EQ(::mkdir(xdg.c_str(), 0711), 0) << std::strerror(errno);
      ASSERT_EQ(::chmod(xdg.c_str(), 0711), 0);
      dir_ = xdg + "/qswitch";
      dir_seen_ = dir_;
    } else {
      ASSERT_EQ(::access(kUnshare, X_OK), 0)
          << kUnshare << " (util-linux) is needed to give qswitch a private /tmp";
      fake_tmp_ = tmp_.file("tmp");
      ASSERT_EQ(::mkdir(fake_tmp_.c_str(), 0700), 0) << std::strerror(errno);
      ASSERT_EQ(::chmod(fake_tmp_.c_str(), 01777), 0);  // as /tmp is
      dir_ = fake_tmp_ + "/qswitch-" + std::to_string(::getuid());
      dir_seen_ = "/tmp/qswitch-" + std::to_string(::getuid());
    }
  }

  // `qswitch ARGS...` with the default directory of this parameter.
  LaunchOptions qswitch(std::vector<std::string> args) {
    LaunchOptions o = launch_options({});
    if (GetParam() == Where::kXdg) {
      o.args = std::move(args);
      o.env_set.push_back({"XDG_RUNTIME_DIR", tmp_.file("xdg")});
    } else {
      o.binary = kUnshare;
      // The binary is opened (fd 9) before /tmp is covered, and run through /proc/self/fd/9:
      // the build tree may itself be under /tmp (a CI clone in /tmp/ci).
      o.args = {"--mount",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
                "exec 9<\"$1\" && mount --bind \"$0\" /tmp && shift && exec /proc/self/fd/9 \"$@\"",
                fake_tmp_,
                qswitch_binary()};
      for (std::string& a : args) o.args.push_back(std::move(a));
      o.env_unset.push_back("XDG_RUNTIME_DIR");
    }
    return with_stderr(std::move(o));
  }

  // Starts the zero-configuration switch (`qswitch --no-slirp`) and expects it to refuse the
  // directory: no "ready", exit status 1, a message naming the directory and `fact`.
  void expect_daemon_refuses(const std::string& fact) {
    QswitchProcess p;
    ASSERT_TRUE(p.launch(qswitch({"--no-slirp"}))) << p.error();
    const bool ready = p.wait_ready(10s);
    ASSERT_FALSE(ready) << "qswitch started in " << dir_seen_ << ":\n" << p.stdout_text();
    const std::optional<int> status = p.wait_exit(10s);
    const std::string err = p.stderr_text();
    EXPECT_EQ(status, std::optional<int>(1)) << "stderr:\n" << err;
    EXPECT_NE(err.find(dir_seen_), std::string::npos) << "the message should name the directory:\n"
                                                      << err;
    EXPECT_NE(err.find(fact), std::string::npos) << "the message should say '" << fact << "':\n"
                                                 << err;
  }

  std::string dir_;       // the default directory, as the test reaches it
  std::string dir_seen_;  // the same, as qswitch sees it
  std::string fake_tmp_;  // kTmp: what qswitch sees as /tmp
};

TEST_P(DefaultDirTest, DaemonRefusesDirectoryOwnedByAnotherUser) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::chown(dir_.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  expect_daemon_refuses("uid " + std::to_string(kNobody));
  struct stat st {};
  EXPECT_NE(::lstat((dir_ + "/default.sock").c_str(), &st), 0)
      << "qswitch made a socket in another user's directory";
}

TEST_P(DefaultDirTest, DaemonRefusesWorldWritableDirectory) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0) << std::strerror(errno);
  expect_daemon_refuses("0777");
  struct stat st {};
  EXPECT_NE(::lstat((dir_ + "/default.sock").c_str(), &st), 0)
      << "qswitch made a socket in a directory anyone can write";
}

TEST_P(DefaultDirTest, DaemonRefusesGroupWritableDirectory) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0) << std::strerror(errno);
  expect_daemon_refuses("0770");
}

TEST_P(DefaultDirTest, DaemonRefusesSymlinkEvenToAGoodDirectory) {
  // The link points at a private directory of ours: still refused, since whoever made the link
  // chose where the sockets go (and can point it elsewhere later).
  // A relative link, so that it resolves inside qswitch's private /tmp too.
  const std::string target = dir_.substr(0, dir_.rfind('/')) + "/elsewhere";
  ASSERT_EQ(::mkdir(target.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::symlink("elsewhere", dir_.c_str()), 0) << std::strerror(errno);
  expect_daemon_refuses("symbolic link");
  struct stat st {};
  EXPECT_NE(::lstat((target + "/default.sock").c_str(), &st), 0)
      << "qswitch followed the symbolic link";
}

TEST_P(DefaultDirTest, DaemonCreatesAMissingDirectoryPrivateAndServes) {
  QswitchProcess p;
  const mode_t old_umask = ::umask(0);  // qswitch must not rely on the caller's umask
  const bool launched = p.launch(qswitch({"--no-slirp"}));
  ::umask(old_umask);
  ASSERT_TRUE(launched) << p.error();
  ASSERT_TRUE(p.wait_ready(10s)) << p.error();
  struct stat st {};
  ASSERT_EQ(::lstat(dir_.c_str(), &st), 0) << dir_ << ": " << std::strerror(errno);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_mode & 07777, 0700u)
      << dir_seen_ << " has mode " << std::oct << (st.st_mode & 07777);
  const Run r = run(qswitch({"ctl", "version"}));
  EXPECT_EQ(r.status, std::optional<int>(0)) << "stdout:\n" << r.out << "stderr:\n" << r.err;
}

TEST_P(DefaultDirTest, DaemonUsesAnExistingPrivateDirectory) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  QswitchProcess p;
  ASSERT_TRUE(p.launch(qswitch({"--no-slirp"}))) << p.error();
  ASSERT_TRUE(p.wait_ready(10s)) << p.error();
  EXPECT_EQ(p.control(), "unix:" + dir_seen_ + "/default.ctl") << p.stdout_text();
  const Run r = run(qswitch({"ctl", "version"}));
  EXPECT_EQ(r.status, std::optional<int>(0)) << "stdout:\n" << r.out << "stderr:\n" << r.err;
}

// A squatter owns the default directory and serves a control socket in it: `qswitch ctl` and
// `qswitch exec` with no --sock/--switch refuse the directory and send it nothing.
TEST_P(DefaultDirTest, ClientsRefuseADirectoryOwnedByAnotherUser) {
  ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::chown(dir_.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  ForeignServer squatter;
  ASSERT_TRUE(squatter.start(dir_ + "/default.ctl"));

  const Run ctl = run(qswitch({"ctl", "version"}));
  EXPECT_EQ(ctl.status, std::optional<int>(1)) << "stdout:\n" << ctl.out << "stderr:\n" << ctl.err;
  EXPECT_NE(ctl.err.find(dir_seen_), std::string::npos) << "stderr should name the directory:\n"
                                                        << ctl.err;
  EXPECT_NE(ctl.err.find("uid " + std::to_string(kNobody)), std::string::npos)
      << "stderr should name its owner:\n"
      << ctl.err;

  const std::string ran = tmp_.file("program-ran");
  const Run exec = run(qswitch({"exec", "--", "/usr/bin/touch", ran}));
  EXPECT_EQ(exec.status, std::optional<int>(1)) << "stdout:\n"
                                                << exec.out << "stderr:\n"
                                                << exec.err;
  EXPECT_NE(exec.err.find(dir_seen_), std::string::npos) << "stderr should name the directory:\n"
                                                         << exec.err;
  EXPECT_NE(::access(ran.c_str(), F_OK), 0) << "qswitch exec ran the program";

  const std::optional<ForeignServer::Report> seen = squatter.stop();
  ASSERT_TRUE(seen) << "the uid " << kNobody << " server did not report";
  EXPECT_EQ(seen->bytes, 0u) << "the clients sent the squatter's server " << seen->bytes
                             << " bytes";
  EXPECT_EQ(seen->fds, 0u) << "qswitch exec passed the squatter's server " << seen->fds << " fds";
}

INSTANTIATE_TEST_SUITE_P(Both, DefaultDirTest, ::testing::Values(Where::kXdg, Where::kTmp),
                         where_name);

// --- The server at the other end of a control socket -----------------------------------------

class ControlPeerTest : public SocketTrustTest {
 protected:
  void SetUp() override {
    SocketTrustTest::SetUp();
    if (HasFatalFailure()) return;
    // A directory uid 65534 may create its socket in, outside any default directory: only the
    // server's uid can tell the clients that this is not their switch.
    const std::string dir = tmp_.file("srv");
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << std::strerror(errno);
    ASSERT_EQ(::chown(dir.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
    path_ = dir + "/other.ctl";
    ASSERT_TRUE(server_.start(path_));
  }

  LaunchOptions qswitch(std::vector<std::string> args) {
    LaunchOptions o = launch_options(std::move(args));
    o.env_set.push_back({"XDG_RUNTIME_DIR", tmp_.path()});  // nothing reaches a real switch
    return with_stderr(std::move(o));
  }

  void expect_refused(const Run& r) {
    EXPECT_EQ(r.status, std::optional<int>(1)) << "stdout:\n" << r.out << "stderr:\n" << r.err;
    EXPECT_NE(r.err.find(path_), std::string::npos) << "stderr should name the socket:\n" << r.err;
    EXPECT_NE(r.err.find("uid " + std::to_string(kNobody)), std::string::npos)
        << "stderr should name the server's uid:\n"
        << r.err;
  }

  ForeignServer server_;
  std::string path_;
};

TEST_F(ControlPeerTest, CtlRefusesAServerOfAnotherUidBeforeSendingAnything) {
  expect_refused(run(qswitch({"ctl", "--sock", path_, "version"})));
  const std::optional<ForeignServer::Report> seen = server_.stop();
  ASSERT_TRUE(seen) << "the uid " << kNobody << " server did not report";
  EXPECT_EQ(seen->connections, 1u) << "ctl should have connected once (to read SO_PEERCRED)";
  EXPECT_EQ(seen->bytes, 0u) << "ctl sent the other user's server " << seen->bytes << " bytes";
}

TEST_F(ControlPeerTest, ExecRefusesAServerOfAnotherUidBeforeSendingAnFd) {
  const std::string ran = tmp_.file("program-ran");
  expect_refused(run(qswitch({"exec", "--switch", path_, "--", "/usr/bin/touch", ran})));
  EXPECT_NE(::access(ran.c_str(), F_OK), 0) << "qswitch exec ran the program";
  const std::optional<ForeignServer::Report> seen = server_.stop();
  ASSERT_TRUE(seen) << "the uid " << kNobody << " server did not report";
  EXPECT_EQ(seen->connections, 1u) << "exec should have connected once (to read SO_PEERCRED)";
  EXPECT_EQ(seen->bytes, 0u) << "exec sent the other user's server " << seen->bytes << " bytes";
  EXPECT_EQ(seen->fds, 0u) << "exec passed the other user's server " << seen->fds << " fds";
}

TEST_F(ControlPeerTest, CtlCaptureRefusesAServerOfAnotherUid) {
  expect_refused(
      run(qswitch({"ctl", "--sock", path_, "capture", "-w", tmp_.file("x.pcap"), "--count", "1"})));
  const std::optional<ForeignServer::Report> seen = server_.stop();
  ASSERT_TRUE(seen) << "the uid " << kNobody << " server did not report";
  EXPECT_EQ(seen->bytes, 0u) << "ctl capture sent the other user's server " << seen->bytes
                             << " bytes";
}

}  // namespace
}  // namespace qswitch::integration
