// backends/runtime/io/log.h: one-line logs to stderr, prefixed "qswitch: ", and rate limiters so
// that anything a peer can trigger (floods, garbage, connection churn) logs at most a few lines per
// interval.
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

// For a family of lines that a peer can cause many of, each one worth reading in normal use (the
// "port N up/down/first mac" lines): a token bucket of `burst` lines, refilled at `per_second`
// lines a second. The lines it holds back are counted, and the count is logged as one line,
// "N similar lines suppressed (<what>)", just before the next line it lets through, or by
// flush() (which its owner calls from a timer, so a flood that stops is still accounted for).
// Every line held back is in exactly one such summary.
class LogBudget {
 public:
  LogBudget(const char* what, int burst, int per_second)
      : what_(what), burst_(burst), per_second_(per_second) {}
  bool allow(sw::Millis now) {
    // Milli-tokens: per_second tokens a second is per_second milli-tokens a millisecond.
    const int64_t full = int64_t{burst_} * 1000;
    if (last_ < 0) {
      tokens_ = full;
    } else if (now > last_) {
      const int64_t added = (now - last_) * int64_t{per_second_};
      tokens_ = added >= full - tokens_ ? full : tokens_ + added;
    }
    if (last_ < 0 || now > last_) last_ = now;
    if (tokens_ < 1000) {
      ++suppressed_;
      return false;
    }
    tokens_ -= 1000;
    flush();
    return true;
  }
  // Logs the summary of the lines held back since the last one, if any.
  void flush() {
    if (suppressed_ == 0) return;
    log_line("%llu similar lines suppressed (%s)", static_cast<unsigned long long>(suppressed_),
             what_);
    suppressed_ = 0;
  }

 private:
  const char* what_;
  int burst_;
  int per_second_;
  int64_t tokens_ = 0;  // in thousandths of a line
  sw::Millis last_ = -1;
  uint64_t suppressed_ = 0;
};

}  // namespace qswitch::io
