// tests/backends/log_budget_test.cc: io::LogBudget, the token bucket for the port lines, on an
// injected clock. What it lets through and what it counts as suppressed (the summary lines go to
// stderr; here only the decisions are checked).
#include <gtest/gtest.h>

#include "backends/runtime/io/log.h"

namespace qswitch::io {
namespace {

// How many of `count` lines at time `now` are allowed.
int allowed(LogBudget& b, sw::Millis now, int count) {
  int n = 0;
  for (int i = 0; i < count; ++i) n += b.allow(now) ? 1 : 0;
  return n;
}

TEST(LogBudgetTest, AllowsTheBurstThenRefillsAtTheRate) {
  LogBudget b("test lines", 20, 5);
  EXPECT_EQ(allowed(b, 1000, 100), 20);  // the burst
  EXPECT_EQ(allowed(b, 1000, 10), 0);
  EXPECT_EQ(allowed(b, 1199, 10), 0);  // 199 ms: not yet one line's worth
  EXPECT_EQ(allowed(b, 1200, 10), 1);  // 200 ms at 5/s: one line
  EXPECT_EQ(allowed(b, 2200, 10), 5);  // one more second: five
}

TEST(LogBudgetTest, RefillsNoFurtherThanTheBurst) {
  LogBudget b("test lines", 20, 5);
  EXPECT_EQ(allowed(b, 0, 20), 20);
  EXPECT_EQ(allowed(b, 3'600'000, 100), 20);  // an hour later: the burst again, no more
}

TEST(LogBudgetTest, AClockThatGoesBackRefillsNothing) {
  LogBudget b("test lines", 2, 5);
  EXPECT_EQ(allowed(b, 10'000, 5), 2);
  EXPECT_EQ(allowed(b, 5'000, 5), 0);
  EXPECT_EQ(allowed(b, 10'200, 5), 1);
}

}  // namespace
}  // namespace qswitch::io
