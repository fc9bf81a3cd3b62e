// backends/io/log.h: one-line logs to stderr, prefixed "qswitch: ", and a rate limiter so that
// anything a peer can trigger (floods, garbage) logs at most a few lines per interval.
#pragma once

#include <cstdint>

#include "switch/types.h"

namespace qswitch::io {

void log_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Allows `burst` events per `interval_ms`; counts what it suppressed so the next allowed line
// can say "(N more suppressed)".
class RateLimit {
 public:
  RateLimit(int burst, sw::Millis interval_ms) : burst_(burst), interval_ms_(interval_ms) {}
  bool allow(sw::Millis now) {
    if (window_start_ < 0 || now - window_start_ >= interval_ms_) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ < burst_) {
      ++used_;
      return true;
    }
    ++suppressed_;
    return false;
  }
  uint64_t take_suppressed() {
    const uint64_t s = suppressed_;
    suppressed_ = 0;
    return s;
  }

 private:
  int burst_;
  sw::Millis interval_ms_;
  sw::Millis window_start_ = -1;
  int used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace qswitch::io
