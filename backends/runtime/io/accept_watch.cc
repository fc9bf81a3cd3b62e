// backends/runtime/io/accept_watch.cc: see the header.
#include "backends/runtime/io/accept_watch.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace qswitch::io {

namespace {

// An error of this one connection (accept(2): "Linux accept() passes already-pending network
// errors on the new socket as an error code from accept() ... should be treated like EAGAIN").
bool connection_error(int err) {
  switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

// The process's headroom (see the header): fds are a per-process resource, so one pool serves
// every listener. It lives until the process exits.
class Headroom {
 public:
  bool full() const { return held_ == AcceptWatch::kHeadroomFds; }
  // All or nothing: fills the pool and returns true, or leaves it empty and returns false.
  bool fill() {
    while (!full()) {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        release();
        return false;
      }
      spare_[held_++] = Fd::adopt(fd);
    }
    return true;
  }
  // Closes the spare fds (they are free for anyone again); false when none was held.
  bool release() {
    const bool had = held_ > 0;
    for (Fd& fd : spare_) fd.reset();
    held_ = 0;
    return had;
  }

 private:
  Fd spare_[AcceptWatch::kHeadroomFds];
  int held_ = 0;
};

Headroom& headroom() {
  static Headroom pool;
  return pool;
}

// True when the process can still open two fds (a pipe's worth) beyond the headroom.
bool two_fds_free() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  ::close(p[0]);
  ::close(p[1]);
  return true;
}

}  // namespace

AcceptWatch::AcceptWatch(uv_loop_t* loop, Options options) : loop_(loop), options_(options) {
  headroom().fill();
}

void AcceptWatch::start(int fd, std::string name, std::function<void(Fd)> on_connection) {
  fd_ = fd;
  name_ = std::move(name);
  on_connection_ = std::move(on_connection);
  uv_poll_init_socket(loop_, poll_.get(), fd_);
  poll_.get()->data = this;
  uv_timer_init(loop_, timer_.get());
  timer_.get()->data = this;
  resume();
}

void AcceptWatch::stop() {
  // Closing the handles stops them; their memory goes in their close callbacks.
  poll_.close();
  timer_.close();
  polling_ = false;
  backing_off_ = false;
}

void AcceptWatch::resume() {
  backing_off_ = false;
  if (polling_ || poll_.get() == nullptr) return;
  polling_ = true;
  uv_poll_start(poll_.get(), UV_READABLE, [](uv_poll_t* h, int status, int) {
    // A poll error on a listening socket is not expected; the next accept() reports it.
    (void)status;
    if (h->data != nullptr) static_cast<AcceptWatch*>(h->data)->on_readable();
  });
}

void AcceptWatch::on_readable() {
  for (int i = 0; i < kAcceptsPerWake && !backing_off_; ++i) {
    Fd fd = accept_one();
    if (!fd.valid()) return;
    on_connection_(std::move(fd));
  }
}

Fd AcceptWatch::accept_one() {
  Headroom& room = headroom();
  if (!room.full() && !room.fill() && !options_.may_use_headroom) {
    back_off(0);  // fewer than kHeadroomFds fds free: leave them to qswitch
    return {};
  }
  for (;;) {
    const int raw = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (raw >= 0) {
      Fd fd = Fd::adopt(raw);
      counters_.accepted += 1;
      delay_ms_ = kMinBackoffMs;
      if (!room.full()) {  // only a listener allowed into the headroom gets here
        if (headroom_log_.allow(static_cast<sw::Millis>(uv_now(loop_)))) {
          log_line(
              "%s: out of file descriptors (fd limit %llu): a client got in on the %d fds "
              "kept for qswitch itself",
              name_.c_str(), static_cast<unsigned long long>(fd_limit()), kHeadroomFds);
        }
      }
      if (!two_fds_free()) {
        // That was about the last fd: free the headroom; other listeners stop here.
        const bool was_full = room.full();
        room.release();
        if (!options_.may_use_headroom || !was_full) back_off(0);
      }
      return fd;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return {};
    if (connection_error(err)) {
      counters_.accept_errors += 1;
      log_error("a connection failed before it was accepted", err);
      return {};
    }
    if (err == EMFILE || err == ENFILE) {
      // Free the headroom. The control listener tries once more, on those fds.
      if (room.release() && options_.may_use_headroom) continue;
    }
    back_off(err);
    return {};
  }
}

void AcceptWatch::back_off(int err) {
  counters_.accept_backoffs += 1;
  const uint64_t delay = delay_ms_;
  delay_ms_ = std::min(delay_ms_ * 2, kMaxBackoffMs);
  if (backoff_log_.allow(static_cast<sw::Millis>(uv_now(loop_)))) {
    char what[160];
    if (err == 0 || err == EMFILE || err == ENFILE) {
      std::snprintf(what, sizeof what,
                    "out of file descriptors (%s; fd limit %llu, %d kept for qswitch itself)",
                    err == 0 ? "none left to accept with" : std::strerror(err),
                    static_cast<unsigned long long>(fd_limit()), kHeadroomFds);
    } else {
      std::snprintf(what, sizeof what, "accept failed: %s", std::strerror(err));
    }
    log_line(
        "%s: %s; not accepting for %llu ms, connections wait in the backlog (back-off %llu "
        "since start)",
        name_.c_str(), what, static_cast<unsigned long long>(delay),
        static_cast<unsigned long long>(counters_.accept_backoffs));
  }
  if (poll_.get() == nullptr) return;  // stopped
  if (polling_) {
    uv_poll_stop(poll_.get());
    polling_ = false;
  }
  backing_off_ = true;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<AcceptWatch*>(t->data)->resume();
      },
      delay, 0);
}

void AcceptWatch::log_error(const char* what, int err) {
  if (!error_log_.allow(static_cast<sw::Millis>(uv_now(loop_)))) return;
  log_line("%s: %s: %s (%llu so far)", name_.c_str(), what, std::strerror(err),
           static_cast<unsigned long long>(counters_.accept_errors));
}

uint64_t fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  return static_cast<uint64_t>(lim.rlim_cur);
}

uint64_t raise_fd_limit(uint64_t* before) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
    *before = 0;
    return 0;
  }
  *before = static_cast<uint64_t>(lim.rlim_cur);
  if (lim.rlim_cur < lim.rlim_max) {
    // An unlimited hard limit cannot be the soft one (the kernel caps fds at fs.nr_open): then
    // the soft limit stays where it is.
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (lim.rlim_max != RLIM_INFINITY && ::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      return static_cast<uint64_t>(raised.rlim_cur);
    }
  }
  return *before;
}

}  // namespace qswitch::io
