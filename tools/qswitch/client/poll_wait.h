// tools/qswitch/client/poll_wait.h: bounded waits for the command-line clients (qswitch ctl,
// qswitch exec), which use blocking-style calls on non-blocking sockets with a deadline.
#pragma once

#include <poll.h>
#include <time.h>

#include <cerrno>
#include <cstdint>

namespace qswitch::tools {

inline int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Waits for `events` on fd until `deadline_ms` (monotonic_ms() time); false on timeout. An error
// returns true: the call that follows reports it.
inline bool wait_for(int fd, short events, int64_t deadline_ms) {
  for (;;) {
    const int64_t left = deadline_ms - monotonic_ms();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(left));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;
  }
}

}  // namespace qswitch::tools
