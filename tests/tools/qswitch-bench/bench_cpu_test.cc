// tests/tools/qswitch-bench/bench_cpu_test.cc: reading a process's CPU time from /proc/PID/stat
// (--cpu-pid): utime and stime found after the command name whatever it holds, and the errors
// for a line that is not one or a process that does not exist.
#include "tools/qswitch-bench/bench_cpu.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace qswitch::tools {
namespace {

// A real line (fields 14 and 15, utime and stime, are 7 and 5), with `comm` as the name.
std::string stat_line(const std::string& comm) {
  return "15999 (" + comm +
         ") R 15997 15997 12472 0 -1 4194304 104 0 0 0 7 5 0 0 20 0 1 0 114676 3133440 416 "
         "18446744073709551615 93897705848832 93897705868713 140732516393360 0 0 0 0 0 0 0 0 0 "
         "17 1 0 0 0 0 0\n";
}

TEST(BenchCpuTest, ReadsUtimePlusStime) {
  uint64_t ticks = 0;
  ASSERT_TRUE(parse_proc_stat_cpu(stat_line("qswitch"), ticks));
  EXPECT_EQ(ticks, 12u);
}

TEST(BenchCpuTest, CommandNameWithSpacesAndParenthesesDoesNotShiftTheFields) {
  for (const char* comm :
       {"qemu system x86", "a) R 1 2 3 4 5 6 7 8 9 10 11 12", ")", "((", ") ("}) {
    SCOPED_TRACE(comm);
    uint64_t ticks = 0;
    ASSERT_TRUE(parse_proc_stat_cpu(stat_line(comm), ticks));
    EXPECT_EQ(ticks, 12u);
  }
}

TEST(BenchCpuTest, LargeTickCountsAreRead) {
  uint64_t ticks = 0;
  ASSERT_TRUE(parse_proc_stat_cpu("1 (x) S 0 0 0 0 0 0 0 0 0 0 4000000000 5000000000 0", ticks));
  EXPECT_EQ(ticks, 9000000000u);
}

TEST(BenchCpuTest, LinesThatAreNotAStatLineAreRefused) {
  uint64_t ticks = 99;
  EXPECT_FALSE(parse_proc_stat_cpu("", ticks));
  EXPECT_FALSE(parse_proc_stat_cpu("15999 cat R 1 2 3 4 5 6 7 8 9 10 11", ticks));  // no ')'
  EXPECT_FALSE(parse_proc_stat_cpu("15999 (cat) R 1 2 3 4 5 6 7 8 9 10", ticks));   // no stime
  EXPECT_FALSE(parse_proc_stat_cpu("15999 (cat) R 1 2 3 4 5 6 7 8 9 10 x 0", ticks));
  EXPECT_FALSE(parse_proc_stat_cpu("15999 (cat) R 1 2 3 4 5 6 7 8 9 10 11 5s", ticks));
  EXPECT_FALSE(parse_proc_stat_cpu("15999 (cat) R 1 2 3 4 5 6 7 8 9 10 -1 0", ticks));
  EXPECT_EQ(ticks, 99u);  // untouched
}

TEST(BenchCpuTest, ReadsThisProcessTwiceWithoutGoingBack) {
  uint64_t first = 0;
  uint64_t second = 0;
  std::string error;
  ASSERT_TRUE(read_process_cpu_ns(getpid(), first, error)) << error;
  ASSERT_TRUE(read_process_cpu_ns(getpid(), second, error)) << error;
  EXPECT_GE(second, first);
  // Whole ticks: a multiple of 1e9 / _SC_CLK_TCK ns.
  const auto tick_ns = static_cast<uint64_t>(1'000'000'000 / sysconf(_SC_CLK_TCK));
  EXPECT_EQ(second % tick_ns, 0u);
}

TEST(BenchCpuTest, AProcessThatDoesNotExistIsAnErrorNamingTheFile) {
  uint64_t ns = 0;
  std::string error;
  // Above any pid_max Linux allows (PID_MAX_LIMIT is 4194304).
  EXPECT_FALSE(read_process_cpu_ns(2'000'000'000, ns, error));
  EXPECT_NE(error.find("/proc/2000000000/stat"), std::string::npos) << error;
  EXPECT_NE(error.find("no process 2000000000"), std::string::npos) << error;
}

}  // namespace
}  // namespace qswitch::tools
