// backends/runtime/io/accept_watch.h: watches a listening socket and accepts from it, backing off
// when the process runs out of file descriptors or memory. Every listener uses it: the stream
// listeners, the control server and the metrics server.
//
// Theory of operation
// - A listening socket is readable (level-triggered) for as long as a connection waits in its
//   backlog. When accept() fails for lack of resources (EMFILE: the process's fd limit; ENFILE:
//   the system's; ENOBUFS, ENOMEM: kernel memory) the connection stays in the backlog and the
//   socket stays readable, so polling it again at once spins the loop at 100 % of a core
//   without accepting anything.
// - So on such an error the watch stops polling the socket for a back-off: 100 ms, doubling on
//   each further one up to 1 s, and back to 100 ms once an accept succeeds. A timer starts the
//   poll again by itself. Each back-off is counted (accept_backoffs) and logged, at most one
//   line per 5 s with the count so far. An unexpected error (EBADF, EINVAL: a bug, but one that
//   would spin too) backs off the same way.
// - The waiting connection is kept, not refused. The usual alternative (libev's and nginx's
//   spare fd: close a spare /dev/null fd, accept, close the connection, reopen the spare) tells
//   the client at once, but a QEMU 7.2 stream client whose connection is closed never redials:
//   its guest would lose the network for good, while a guest that waits is served as soon as
//   another port goes. The kernel bounds the backlog (SOMAXCONN) and refuses clients beyond it.
// - Headroom: the listeners leave the process's last kHeadroomFds fds alone, for qswitch's own
//   needs while guests hold every other one: a control client, a redial, a capture file (and,
//   in the sanitizer build, the pipe UBSan opens to check a vptr). One process-wide pool holds
//   that many spare fds (/dev/null) while fds are plentiful. Before an accept a listener makes
//   sure the pool is full (free while it is; otherwise it tries to fill it, all or nothing);
//   when an accept fails for lack of fds, or fewer than two fds are left after one succeeds,
//   the pool is closed, so kHeadroomFds fds are free again, and the listener backs off. It
//   accepts again only once the pool can be filled again, i.e. once fds have come back.
// - The control listener may accept into the headroom (Options::may_use_headroom): out of fds,
//   it closes the pool and accepts anyway, so the operator still gets in and sees why
//   (`qswitch ctl stats`). When the headroom is used up too it backs off like the others.
// - Errors that concern one connection only (ECONNABORTED: the client gave up first; EPROTO,
//   EPERM, and the network errors accept(2) says to treat like EAGAIN) are counted
//   (accept_errors) and logged at a limited rate; the poll goes on. EAGAIN and EINTR are not
//   errors.
// - Lifetime: the watch does not own the listening fd; its owner keeps the fd open until the
//   watch is stopped or destroyed (declare the watch after the fd). on_connection must not
//   destroy the watch.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "switch/counters.h"

namespace qswitch::io {

// A listener's counters (stats shows them per listener); see kAcceptCounters.
struct AcceptCounters {
  uint64_t accepted = 0;
  uint64_t accept_backoffs = 0;
  uint64_t accept_errors = 0;

  // f(name, value) for each counter, in kAcceptCounters order.
  template <typename F>
  void for_each(F&& f) const;
};

inline constexpr sw::CounterField<AcceptCounters> kAcceptCounters[] = {
    {"accepted", "Connections accepted.", &AcceptCounters::accepted},
    {"accept_backoffs", "Times the listener stopped polling (out of fds or memory) and backed off.",
     &AcceptCounters::accept_backoffs},
    {"accept_errors", "Connections lost to an error of their own (ECONNABORTED).",
     &AcceptCounters::accept_errors},
};

template <typename F>
void AcceptCounters::for_each(F&& f) const {
  sw::for_each_counter(*this, kAcceptCounters, f);
}

class AcceptWatch {
 public:
  static constexpr uint64_t kMinBackoffMs = 100;
  static constexpr uint64_t kMaxBackoffMs = 1000;
  static constexpr int kAcceptsPerWake = 64;
  static constexpr int kHeadroomFds = 4;

  struct Options {
    bool may_use_headroom = false;  // accept into the headroom when fds run out (control)
  };

  explicit AcceptWatch(uv_loop_t* loop) : AcceptWatch(loop, Options{}) {}
  AcceptWatch(uv_loop_t* loop, Options options);
  ~AcceptWatch() { stop(); }
  AcceptWatch(const AcceptWatch&) = delete;
  AcceptWatch& operator=(const AcceptWatch&) = delete;

  // Starts polling `fd` (a listening, non-blocking socket the caller keeps open). Each wake-up
  // accepts up to kAcceptsPerWake connections (so one listener cannot starve the loop) and hands
  // each to `on_connection`, which owns it from then on. `name` starts the log lines ("listen
  // unix:/run/x.sock").
  void start(int fd, std::string name, std::function<void(Fd)> on_connection);
  // Stops polling and the back-off timer for good.
  void stop();

  const AcceptCounters& counters() const { return counters_; }
  // True while the poll is stopped for a back-off.
  bool backing_off() const { return backing_off_; }

 private:
  void on_readable();
  // One accept4(SOCK_NONBLOCK | SOCK_CLOEXEC). An invalid Fd: nothing more to accept in this
  // wake-up (the backlog is empty, or the watch is now backing off).
  Fd accept_one();
  // Stops polling for the current delay. `err` is the accept error; 0: out of fds after an
  // accept that worked, or no headroom to accept with.
  void back_off(int err);
  void resume();
  void log_error(const char* what, int err);

  uv_loop_t* loop_;
  Options options_;
  int fd_ = -1;
  std::string name_;
  std::function<void(Fd)> on_connection_;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;
  bool polling_ = false;
  bool backing_off_ = false;
  uint64_t delay_ms_ = kMinBackoffMs;
  AcceptCounters counters_;
  RateLimit backoff_log_{1, 5'000};
  RateLimit headroom_log_{1, 5'000};
  RateLimit error_log_{1, 5'000};
};

// Raises the soft RLIMIT_NOFILE to the hard limit (a switch holds one fd per port). Returns the
// soft limit now in force; *before is what it was.
uint64_t raise_fd_limit(uint64_t* before);
// The soft RLIMIT_NOFILE (for log lines).
uint64_t fd_limit();

}  // namespace qswitch::io
