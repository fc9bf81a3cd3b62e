// bench/switch/mac_table_bench.cc: MAC table microbenchmarks.
//
// Theory of operation: each benchmark builds a table with a fixed seed and a fixed set of random
// unicast MACs outside the timed loop, then times one operation per iteration (lookup, learn) or
// one sweep (expire). Items are table operations (lookups, learns, entries removed), so the
// reported items/s reads as operations per second. The clock is a plain counter (injected, as in
// the switch), advanced the way a busy loop would advance it.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <unordered_set>
#include <vector>

#include "switch/mac_table.h"

namespace qswitch::sw {
namespace {

// `count` distinct unicast MACs, the same ones on every run.
std::vector<MacAddress> random_macs(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::unordered_set<uint64_t> seen;
  std::vector<MacAddress> out;
  out.reserve(count);
  while (out.size() < count) {
    const uint64_t v = rng();
    MacAddress m;
    for (size_t i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(v >> (8 * i));
    m.bytes[0] &= 0xfe;
    if (seen.insert(m.key()).second) out.push_back(m);
  }
  return out;
}

MacTableConfig bench_config(uint32_t max_entries) {
  MacTableConfig c;
  c.max_entries = max_entries;
  c.seed = 0x9e3779b97f4a7c15ull;
  return c;
}

constexpr PortId kPorts = 8;

// Hits on a table holding state.range(0) entries (capacity 4096, the default --mac-max).
void BM_MacLookupHit(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> macs = random_macs(n, 1);
  for (size_t i = 0; i < n; ++i) table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), 0);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.lookup(macs[i], 0, 1));
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MacLookupHit)->Arg(16)->Arg(4096);

// Misses on a full 4096-entry table (unknown unicast: every miss is a flood).
void BM_MacLookupMiss(benchmark::State& state) {
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> macs = random_macs(8192, 2);
  for (size_t i = 0; i < 4096; ++i) table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), 0);
  size_t i = 4096;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.lookup(macs[i], 0, 1));
    if (++i == macs.size()) i = 4096;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MacLookupMiss);

// A known source seen again on its port. The clock advances 1 ms every 64 learns, so most
// refreshes fall within the same second (timestamp store only) and about one in 16 moves its
// entry to the LRU tail.
void BM_MacLearnRefresh(benchmark::State& state) {
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> macs = random_macs(4096, 3);
  for (size_t i = 0; i < macs.size(); ++i) {
    table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), 0);
  }
  size_t i = 0;
  uint64_t calls = 0;
  for (auto _ : state) {
    const Millis now = static_cast<Millis>(++calls / 64);
    benchmark::DoNotOptimize(table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), now));
    if (++i == macs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MacLearnRefresh);

// The worst refresh: every call is more than a second after the previous one for that entry.
void BM_MacLearnRefreshMoveToTail(benchmark::State& state) {
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> macs = random_macs(4096, 4);
  for (size_t i = 0; i < macs.size(); ++i) {
    table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), 0);
  }
  size_t i = 0;
  Millis now = 0;
  for (auto _ : state) {
    now += 1000;
    benchmark::DoNotOptimize(table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), now));
    if (++i == macs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MacLearnRefreshMoveToTail);

// A full table (4096 over 8 ports) while port 0 floods never-seen source MACs: every learn
// evicts (scan for the largest port, unlink its oldest, backward-shift delete) then inserts.
void BM_MacLearnNewWithEviction(benchmark::State& state) {
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> resident = random_macs(4096, 5);
  for (size_t i = 0; i < resident.size(); ++i) {
    table.learn(resident[i], 0, static_cast<PortId>(i % kPorts), 0);
  }
  // 64Ki flood MACs: by the time the ring wraps, its earlier MACs are long evicted.
  const std::vector<MacAddress> flood = random_macs(65536, 6);
  size_t i = 0;
  uint64_t calls = 0;
  for (auto _ : state) {
    const Millis now = static_cast<Millis>(++calls / 64);
    benchmark::DoNotOptimize(table.learn(flood[i], 0, 0, now));
    if (++i == flood.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["evictions"] = static_cast<double>(table.eviction_count());
  state.counters["size"] = static_cast<double>(table.size());
}
BENCHMARK(BM_MacLearnNewWithEviction);

// expire() over a full 4096-entry table in which every entry has aged out. Refilling is not
// timed. Items are entries removed.
void BM_MacExpireSweepAllAged(benchmark::State& state) {
  MacTableConfig c = bench_config(4096);
  c.age_ms = 1000;
  MacTable table(c);
  const std::vector<MacAddress> macs = random_macs(4096, 7);
  Millis now = 0;
  size_t removed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < macs.size(); ++i) {
      table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), now);
    }
    now += c.age_ms;
    state.ResumeTiming();
    removed += table.expire(now);
  }
  if (removed != state.iterations() * macs.size()) state.SkipWithError("expire missed entries");
  state.SetItemsProcessed(static_cast<int64_t>(removed));
}
BENCHMARK(BM_MacExpireSweepAllAged);

// The periodic sweep when nothing is due: a full table, every port's oldest entry still young.
void BM_MacExpireSweepNoneAged(benchmark::State& state) {
  MacTable table(bench_config(4096));
  const std::vector<MacAddress> macs = random_macs(4096, 8);
  for (size_t i = 0; i < macs.size(); ++i) {
    table.learn(macs[i], 0, static_cast<PortId>(i % kPorts), 0);
  }
  for (auto _ : state) benchmark::DoNotOptimize(table.expire(1000));
  if (table.size() != macs.size()) state.SkipWithError("expire removed live entries");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MacExpireSweepNoneAged);

}  // namespace
}  // namespace qswitch::sw
