// tests/tools/control_server_test.cc: the control channel's line server over a real unix socket.
// The server runs on a libuv loop in a thread of the test; clients are plain blocking sockets
// (every read bounded by a timeout). The handlers are trivial and recognisable so each reply
// shows which request produced it, and in which order.
#include "tools/qswitch/services/control_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.h"

namespace qswitch::tools {
namespace {

using namespace std::chrono_literals;

// A blocking unix-socket client that reads lines; every call gives up after `timeout_s`.
class LineClient {
 public:
  explicit LineClient(const std::string& path, int timeout_s = 10) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) == 0;
  }
  ~LineClient() { close(); }
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void shutdown_write() { ::shutdown(fd_, SHUT_WR); }

  // One sendmsg of `data` with `fds` attached (SCM_RIGHTS); false unless all of it went.
  bool send_with_fds(std::string_view data, const std::vector<int>& fds) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()));
    if (!fds.empty()) {
      msg.msg_control = control.data();
      msg.msg_controllen = control.size();
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    return n == static_cast<ssize_t>(data.size());
  }

  bool send_all(std::string_view data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // The next line without its '\n'; nullopt on EOF, error or timeout.
  std::optional<std::string> read_line() {
    for (;;) {
      const size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      char tmp[65536];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        last_error_ = n == 0 ? 0 : errno;
        return std::nullopt;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  // True when the server closed (EOF or reset) rather than the read timing out.
  bool closed_by_peer() const { return last_error_ != EAGAIN && last_error_ != EWOULDBLOCK; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
  int last_error_ = 0;
};

class ControlServerTest : public ::testing::Test {
 protected:
  void start(ControlLimits limits = {}) {
    ASSERT_FALSE(dir_.path().empty()) << "could not create a temp dir";
    path_ = dir_.file("run/qswitch/test.ctl");
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) { uv_stop(a->loop); });
    ControlHandlers h;
    h.line = [this](std::string_view line) {
      ++lines_;
      size_t seen = max_line_seen_.load();
      while (line.size() > seen && !max_line_seen_.compare_exchange_weak(seen, line.size())) {
      }
      if (line == "big") return std::string(100 * 1024, 'B');
      if (line.size() > 100) return "len=" + std::to_string(line.size());
      return "reply:" + std::string(line);
    };
    h.too_long = [](size_t limit) { return "TOO_LONG " + std::to_string(limit); };
    h.busy = [](size_t max) { return "BUSY " + std::to_string(max); };
    h.too_many_fds = [](size_t max) { return "TOO_MANY_FDS " + std::to_string(max); };
    if (use_fd_handler_) {
      // "keep": keeps the first fd; replies with the count and the inode of each fd, so the test
      // sees which fds reached which line.
      h.line_fds = [this](std::string_view line, std::vector<io::Fd>& fds, Takeover&) {
        ++lines_;
        std::string reply = std::string(line) + " fds=" + std::to_string(fds.size());
        for (const io::Fd& fd : fds) {
          struct stat st {};
          ::fstat(fd.get(), &st);
          reply += " ino=" + std::to_string(st.st_ino);
          const int flags = ::fcntl(fd.get(), F_GETFD);
          if ((flags & FD_CLOEXEC) == 0) reply += " NOT-CLOEXEC";
        }
        if (line == "keep" && !fds.empty()) {
          std::lock_guard<std::mutex> lock(kept_mu_);
          kept_.push_back(std::move(fds[0]));
        }
        return reply;
      };
    }
    server_ = std::make_unique<ControlServer>(&loop_, path_, std::move(h), limits);
    ASSERT_TRUE(server_->ok()) << server_->error();
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      uv_async_send(&stop_);
      thread_.join();
    }
    server_.reset();
    if (loop_ready_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);  // the close callbacks free the handles
      EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle outlived the server";
    }
  }

  // Stops the loop thread so the server can be inspected from the test thread.
  void stop_loop() {
    uv_async_send(&stop_);
    thread_.join();
  }

  test_support::TempDir dir_{"qsw-ctl-"};
  std::string path_;
  uv_loop_t loop_{};
  bool loop_ready_ = false;
  uv_async_t stop_{};
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  std::atomic<int> lines_{0};
  std::atomic<size_t> max_line_seen_{0};
  bool use_fd_handler_ = false;
  std::mutex kept_mu_;
  std::vector<io::Fd> kept_;  // fds a "keep" line kept
};

TEST_F(ControlServerTest, SocketIsPrivateAndRemovedWithTheServer) {
  start();
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.file("run/qswitch").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  stop_loop();
  server_.reset();
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "socket file left behind";
}

TEST_F(ControlServerTest, SecondServerOnALiveSocketIsRefused) {
  start();
  ControlServer second(&loop_, path_, ControlHandlers{});
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.error().find("in use"), std::string::npos) << second.error();
}

TEST_F(ControlServerTest, LineSplitAcrossWritesIsOneRequest) {
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send_all("hel"));
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(c.send_all("lo wor"));
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(c.send_all("ld\n"));
  EXPECT_EQ(c.read_line(), "reply:hello world");
  EXPECT_EQ(lines_.load(), 1);
}

TEST_F(ControlServerTest, TwoRequestsInOneWriteGetTwoRepliesInOrder) {
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.send_all("first\nsecond\n"));
  EXPECT_EQ(c.read_line(), "reply:first");
  EXPECT_EQ(c.read_line(), "reply:second");
}

TEST_F(ControlServerTest, ManyPipelinedRequestsAreAnsweredInOrder) {
  start();
  LineClient c(path_);
  std::string burst;
  for (int i = 0; i < 2000; ++i) burst += "n" + std::to_string(i) + "\n";
  ASSERT_TRUE(c.send_all(burst));
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(c.read_line(), "reply:n" + std::to_string(i)) << "at " << i;
  }
}

TEST_F(ControlServerTest, CarriageReturnBeforeNewlineIsDropped) {
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.send_all("dos\r\n"));
  EXPECT_EQ(c.read_line(), "reply:dos");
}

TEST_F(ControlServerTest, LineOfExactlyTheLimitIsARequest) {
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.send_all(std::string(65536, 'x') + "\n"));
  EXPECT_EQ(c.read_line(), "len=65536");
  ASSERT_TRUE(c.send_all(std::string(65537, 'x') + "\n"));
  EXPECT_EQ(c.read_line(), "TOO_LONG 65536");
}

TEST_F(ControlServerTest, TenMegabyteLineGetsTooLongAndTheConnectionStillAnswers) {
  start();
  LineClient c(path_);
  const std::string huge(10 * 1024 * 1024, 'z');
  ASSERT_TRUE(c.send_all(huge));
  ASSERT_TRUE(c.send_all("\nping\n"));
  EXPECT_EQ(c.read_line(), "TOO_LONG 65536");
  EXPECT_EQ(c.read_line(), "reply:ping");
  EXPECT_EQ(lines_.load(), 1) << "the long line must not reach the handler";
  EXPECT_LE(max_line_seen_.load(), 65536u);
}

TEST_F(ControlServerTest, HundredClientsAtOnceEachGetAReply) {
  ControlLimits limits;
  limits.max_clients = 128;
  start(limits);
  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < 100; ++i) {
    clients.push_back(std::make_unique<LineClient>(path_));
    ASSERT_TRUE(clients.back()->connected()) << "client " << i;
  }
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(clients[i]->send_all("c" + std::to_string(i) + "\n"));
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(clients[i]->read_line(), "reply:c" + std::to_string(i)) << "client " << i;
  }
}

TEST_F(ControlServerTest, ClientsBeyondTheLimitGetABusyReplyAndAreClosed) {
  start();  // the default limit
  const int limit = static_cast<int>(tools::ControlLimits{}.max_clients);
  const int total = limit + 36;
  std::vector<std::unique_ptr<LineClient>> clients;
  for (int i = 0; i < total; ++i) {
    clients.push_back(std::make_unique<LineClient>(path_));
    ASSERT_TRUE(clients.back()->connected()) << "client " << i;
  }
  int served = 0, busy = 0;
  for (int i = 0; i < total; ++i) {
    clients[i]->send_all("c" + std::to_string(i) + "\n");  // a refused client may see EPIPE
    const auto line = clients[i]->read_line();
    ASSERT_TRUE(line.has_value()) << "client " << i << " got no reply at all";
    if (*line == "reply:c" + std::to_string(i)) {
      ++served;
    } else {
      EXPECT_EQ(*line, "BUSY " + std::to_string(limit)) << "client " << i;
      ++busy;
      EXPECT_FALSE(clients[i]->read_line().has_value()) << "a refused client is closed";
      EXPECT_TRUE(clients[i]->closed_by_peer());
    }
  }
  EXPECT_EQ(served, limit);
  EXPECT_EQ(busy, 36);
  // Slots come back when clients leave.
  clients.clear();
  bool served_again = false;
  for (int attempt = 0; attempt < 200 && !served_again; ++attempt) {
    LineClient late(path_);
    late.send_all("late\n");
    const auto line = late.read_line();
    served_again = line == "reply:late";
    if (!served_again) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(served_again) << "no slot freed after every client closed";
}

TEST_F(ControlServerTest, ClientThatDisconnectsMidRequestDoesNotDisturbOthers) {
  start();
  LineClient steady(path_);
  ASSERT_TRUE(steady.send_all("before\n"));
  EXPECT_EQ(steady.read_line(), "reply:before");
  {
    LineClient quitter(path_);
    ASSERT_TRUE(quitter.send_all("{\"cmd\":\"hostfwd.a"));  // no newline, then gone
  }
  {
    LineClient rude(path_);  // sends requests and leaves without reading the replies
    ASSERT_TRUE(rude.send_all("one\ntwo\nbig\n"));
  }
  {
    LineClient mid_long(path_);  // gone in the middle of an over-long line
    ASSERT_TRUE(mid_long.send_all(std::string(200000, 'q')));
  }
  ASSERT_TRUE(steady.send_all("after\n"));
  EXPECT_EQ(steady.read_line(), "reply:after");
  LineClient fresh(path_);
  ASSERT_TRUE(fresh.send_all("new\n"));
  EXPECT_EQ(fresh.read_line(), "reply:new");
}

TEST_F(ControlServerTest, HalfClosedClientStillGetsItsReply) {
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.send_all("one\nlast-without-newline"));
  c.shutdown_write();
  EXPECT_EQ(c.read_line(), "reply:one");
  EXPECT_EQ(c.read_line(), "reply:last-without-newline");
  EXPECT_FALSE(c.read_line().has_value());
  EXPECT_TRUE(c.closed_by_peer()) << "the server closes once the replies are out";
}

TEST_F(ControlServerTest, ClientThatNeverReadsIsClosedAfterAMegabyteOfReplies) {
  start();
  LineClient c(path_);
  int sent = 0;
  for (; sent < 400; ++sent) {  // 400 x 100 KiB of replies if nobody stopped it
    if (!c.send_all("big\n")) break;
    std::this_thread::sleep_for(1ms);
  }
  // Now read: whatever reached the socket buffer, then the close.
  int replies = 0;
  while (auto line = c.read_line()) {
    EXPECT_EQ(line->size(), 100u * 1024u);
    ++replies;
    ASSERT_LT(replies, 400) << "the server kept answering a client that never read";
  }
  EXPECT_TRUE(c.closed_by_peer()) << "timed out instead of being closed";
  EXPECT_LT(replies, 40) << "sent " << sent << " requests";
  LineClient other(path_);
  ASSERT_TRUE(other.send_all("still here\n"));
  EXPECT_EQ(other.read_line(), "reply:still here");
}

TEST_F(ControlServerTest, IdleClientIsClosedAfterTheIdleTime) {
  ControlLimits limits;
  limits.idle_ms = 300;
  start(limits);
  LineClient active(path_);
  LineClient idle(path_);
  ASSERT_TRUE(idle.connected());
  const auto t0 = std::chrono::steady_clock::now();
  // The active one keeps talking for longer than the idle time and is never closed.
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(active.send_all("tick\n"));
    ASSERT_EQ(active.read_line(), "reply:tick") << "round " << i;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_FALSE(idle.read_line().has_value());
  EXPECT_TRUE(idle.closed_by_peer());
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 5s);
}

// fds passed with lines (SCM_RIGHTS). Pipes make what happened to a passed fd visible: once the
// server has closed its copy of a write end (and the test closed its own), the read end sees EOF.
struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
      r = p[0];
      w = p[1];
    }
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  void close_write() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  ino_t ino() const {
    struct stat st {};
    ::fstat(r, &st);
    return st.st_ino;
  }
  // True when every write end is closed (EOF within `timeout`), false while one is still open.
  bool write_end_closed(std::chrono::milliseconds timeout = 2000ms) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      char c;
      const ssize_t n = ::read(r, &c, 1);
      if (n == 0) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
  }
};

size_t open_fd_count() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own fd
}

TEST_F(ControlServerTest, FdsPassedWithALineReachThatLinesHandler) {
  use_fd_handler_ = true;
  start();
  LineClient c(path_);
  ASSERT_TRUE(c.connected());
  Pipe a;
  Pipe b;
  ASSERT_TRUE(c.send_all("plain\n"));
  ASSERT_TRUE(c.send_with_fds("keep\n", {a.w, b.w}));
  ASSERT_TRUE(c.send_all("after\n"));
  EXPECT_EQ(c.read_line(), "plain fds=0");
  EXPECT_EQ(c.read_line(),
            "keep fds=2 ino=" + std::to_string(a.ino()) + " ino=" + std::to_string(b.ino()));
  EXPECT_EQ(c.read_line(), "after fds=0");
  a.close_write();
  b.close_write();
  // The handler kept the first; the server closed the one it did not take.
  EXPECT_TRUE(b.write_end_closed()) << "an fd the handler did not take was left open";
  EXPECT_FALSE(a.write_end_closed(200ms)) << "the fd the handler kept was closed";
  stop_loop();
  kept_.clear();
  EXPECT_TRUE(a.write_end_closed());
}

TEST_F(ControlServerTest, FdsSentBeforeTheEndOfALineBelongToThatLine) {
  use_fd_handler_ = true;
  start();
  LineClient c(path_);
  Pipe a;
  // The fd rides with the start of the line; the rest follows in other writes.
  ASSERT_TRUE(c.send_all("first\n"));
  ASSERT_TRUE(c.send_with_fds("sec", {a.w}));
  std::this_thread::sleep_for(30ms);
  ASSERT_TRUE(c.send_all("ond\nthird\n"));
  EXPECT_EQ(c.read_line(), "first fds=0");
  EXPECT_EQ(c.read_line(), "second fds=1 ino=" + std::to_string(a.ino()));
  EXPECT_EQ(c.read_line(), "third fds=0");
}

TEST_F(ControlServerTest, ReceivedFdsAreCloseOnExec) {
  use_fd_handler_ = true;
  start();
  LineClient c(path_);
  Pipe a;
  ASSERT_TRUE(c.send_with_fds("look\n", {a.w}));
  const std::optional<std::string> reply = c.read_line();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->find("NOT-CLOEXEC"), std::string::npos) << *reply;
  EXPECT_NE(reply->find("fds=1"), std::string::npos) << *reply;
}

TEST_F(ControlServerTest, LineWithTooManyFdsIsRefusedAndAllItsFdsClosed) {
  use_fd_handler_ = true;
  start();  // max_fds_per_line 4
  LineClient c(path_);
  std::vector<std::unique_ptr<Pipe>> pipes;
  std::vector<int> ends;
  for (int i = 0; i < 5; ++i) {
    pipes.push_back(std::make_unique<Pipe>());
    ends.push_back(pipes.back()->w);
  }
  ASSERT_TRUE(c.send_with_fds("keep\n", ends));
  EXPECT_EQ(c.read_line(), "TOO_MANY_FDS 4");
  for (auto& p : pipes) p->close_write();
  for (size_t i = 0; i < pipes.size(); ++i) {
    EXPECT_TRUE(pipes[i]->write_end_closed()) << "fd " << i << " of a refused line left open";
  }
  EXPECT_EQ(lines_.load(), 0) << "the handler ran for a refused line";
  // The connection still answers, and fds within the limit work.
  Pipe ok;
  ASSERT_TRUE(c.send_with_fds("next\n", {ok.w}));
  EXPECT_EQ(c.read_line(), "next fds=1 ino=" + std::to_string(ok.ino()));
}

TEST_F(ControlServerTest, FdsSentToAHandlerThatTakesNoneAreClosed) {
  start();  // the plain `line` handler
  LineClient c(path_);
  Pipe a;
  Pipe b;
  ASSERT_TRUE(c.send_with_fds("hello\n", {a.w, b.w}));
  EXPECT_EQ(c.read_line(), "reply:hello");
  a.close_write();
  b.close_write();
  EXPECT_TRUE(a.write_end_closed()) << "a handler that takes no fds leaves them to be closed";
  EXPECT_TRUE(b.write_end_closed());
}

TEST_F(ControlServerTest, PassingFdsLeaksNoneWhateverHappensToTheLine) {
  use_fd_handler_ = true;
  ControlLimits limits;
  limits.max_line_size = 1000;
  start(limits);
  const size_t before = open_fd_count();
  ASSERT_GT(before, 0u);
  {
    LineClient c(path_);
    for (int i = 0; i < 50; ++i) {  // a handler that keeps none
      Pipe p;
      ASSERT_TRUE(c.send_with_fds("line" + std::to_string(i) + "\n", {p.r, p.w}));
      ASSERT_EQ(c.read_line(), "line" + std::to_string(i) + " fds=2 ino=" +
                                   std::to_string(p.ino()) + " ino=" + std::to_string(p.ino()));
    }
    Pipe p;
    // fds on a line that is too long.
    ASSERT_TRUE(c.send_with_fds(std::string(2000, 'x') + "\n", {p.w}));
    EXPECT_EQ(c.read_line(), "TOO_LONG 1000");
    // More fds than the control buffer holds: MSG_CTRUNC; the kernel closes what did not fit.
    std::vector<int> many(40, p.w);
    ASSERT_TRUE(c.send_with_fds("many\n", many));
    EXPECT_EQ(c.read_line(), "TOO_MANY_FDS 4");
    // fds with an unfinished line, then the client goes away.
    ASSERT_TRUE(c.send_with_fds("unfinish", {p.r, p.w}));
    std::this_thread::sleep_for(50ms);
  }
  {
    LineClient gone(path_);
    Pipe p;
    ASSERT_TRUE(gone.send_with_fds("x", {p.w}));
    gone.close();
  }
  // The server closes those clients on EOF (and runs the unfinished line, whose fds close).
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  size_t after = open_fd_count();
  while (after != before && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    after = open_fd_count();
  }
  EXPECT_EQ(after, before) << "fds leaked";
}

}  // namespace
}  // namespace qswitch::tools
