// tests/switch/mac_table_test.cc: unit tests of the MAC learning table.
//
// Theory of operation: every test drives MacTable through its public API with an injected
// clock (plain Millis values), then reads back lookup(), counts and for_each(). The randomized
// tests use fixed seeds, so a failure reproduces, and compare the table against a std::map model
// after every operation.
#include "switch/mac_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace qswitch::sw {
namespace {

MacAddress mac_from(uint64_t v) {
  MacAddress m;
  for (size_t i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(v >> (8 * (5 - i)));
  m.bytes[0] &= 0xfe;  // unicast
  return m;
}

MacAddress mac(const char* text) { return MacAddress::parse(text).value(); }

MacTableConfig config(uint32_t max_entries = 4096, Millis age_ms = 300'000,
                      Millis flap_window_ms = 10'000, uint64_t seed = 42) {
  MacTableConfig c;
  c.max_entries = max_entries;
  c.age_ms = age_ms;
  c.flap_window_ms = flap_window_ms;
  c.seed = seed;
  return c;
}

TEST(MacTableTest, LearnsThenLooksUp) {
  MacTable t(config());
  const LearnOutcome o = t.learn(mac("52:54:00:12:34:56"), 0, 3, 1000);
  EXPECT_EQ(o.result, LearnResult::kNew);
  EXPECT_FALSE(o.evicted);
  EXPECT_EQ(t.lookup(mac("52:54:00:12:34:56"), 0, 1001), 3u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.port_entry_count(3), 1u);
}

TEST(MacTableTest, UnknownMacIsNoPort) {
  MacTable t(config());
  EXPECT_EQ(t.lookup(mac("52:54:00:00:00:01"), 0, 0), kNoPort);
  t.learn(mac("52:54:00:00:00:01"), 0, 1, 0);
  EXPECT_EQ(t.lookup(mac("52:54:00:00:00:02"), 0, 0), kNoPort);
  EXPECT_EQ(t.port_entry_count(7), 0u);
}

TEST(MacTableTest, VlanIdsAreDistinctKeys) {
  MacTable t(config());
  const MacAddress m = mac("52:54:00:aa:bb:cc");
  t.learn(m, 0, 1, 0);
  t.learn(m, 10, 2, 0);
  EXPECT_EQ(t.learn(m, 4095, 3, 0).result, LearnResult::kNew);
  EXPECT_EQ(t.lookup(m, 0, 1), 1u);
  EXPECT_EQ(t.lookup(m, 10, 1), 2u);
  EXPECT_EQ(t.lookup(m, 4095, 1), 3u);
  EXPECT_EQ(t.lookup(m, 11, 1), kNoPort);
  EXPECT_EQ(t.size(), 3u);
  std::set<uint16_t> vlans;
  t.for_each([&](const MacEntryView& v) {
    EXPECT_EQ(v.mac, m);
    vlans.insert(v.vlan);
  });
  EXPECT_EQ(vlans, (std::set<uint16_t>{0, 10, 4095}));
}

TEST(MacTableTest, AgesOutIdleEntry) {
  MacTable t(config(4096, 5000));
  const MacAddress m = mac("52:54:00:00:00:01");
  t.learn(m, 0, 1, 10'000);
  EXPECT_EQ(t.lookup(m, 0, 14'999), 1u);
  EXPECT_EQ(t.expire(14'999), 0u);
  // Invisible at once, before any expire().
  EXPECT_EQ(t.lookup(m, 0, 15'000), kNoPort);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.expire(15'000), 1u);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.port_entry_count(1), 0u);
  EXPECT_EQ(t.expire(20'000), 0u);
}

TEST(MacTableTest, RefreshKeepsEntryAlive) {
  MacTable t(config(4096, 5000));
  const MacAddress a = mac("52:54:00:00:00:0a");
  const MacAddress b = mac("52:54:00:00:00:0b");
  t.learn(a, 0, 1, 0);
  t.learn(b, 0, 1, 0);
  // Within the same second: no LRU move, but the timestamp still counts.
  EXPECT_EQ(t.learn(a, 0, 1, 500).result, LearnResult::kRefreshed);
  EXPECT_EQ(t.lookup(a, 0, 5400), 1u);
  EXPECT_EQ(t.lookup(b, 0, 5400), kNoPort);
  EXPECT_EQ(t.expire(5400), 1u);  // b only
  EXPECT_EQ(t.lookup(a, 0, 5400), 1u);
  // Later refreshes move it to the tail.
  EXPECT_EQ(t.learn(a, 0, 1, 4000).result, LearnResult::kRefreshed);
  EXPECT_EQ(t.learn(a, 0, 1, 8000).result, LearnResult::kRefreshed);
  EXPECT_EQ(t.expire(12'999), 0u);
  EXPECT_EQ(t.lookup(a, 0, 12'999), 1u);
  EXPECT_EQ(t.expire(13'000), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(MacTableTest, StationMoveReportsPreviousPort) {
  MacTable t(config());
  const MacAddress m = mac("52:54:00:00:00:01");
  t.learn(m, 0, 1, 0);
  const LearnOutcome o = t.learn(m, 0, 2, 100);
  EXPECT_EQ(o.result, LearnResult::kMoved);
  EXPECT_EQ(o.previous_port, 1u);
  EXPECT_FALSE(o.flapping);
  EXPECT_EQ(t.lookup(m, 0, 100), 2u);
  EXPECT_EQ(t.port_entry_count(1), 0u);
  EXPECT_EQ(t.port_entry_count(2), 1u);
  EXPECT_EQ(t.size(), 1u);
}

TEST(MacTableTest, ReportsFlappingOnlyForSecondMoveInsideWindow) {
  MacTable t(config(4096, 300'000, 10'000));
  const MacAddress m = mac("52:54:00:12:34:56");
  t.learn(m, 0, 1, 0);
  LearnOutcome o = t.learn(m, 0, 2, 100);  // first move: never flapping
  EXPECT_EQ(o.result, LearnResult::kMoved);
  EXPECT_FALSE(o.flapping);
  o = t.learn(m, 0, 1, 20'100);  // second move, 20 s after the first: outside the window
  EXPECT_EQ(o.result, LearnResult::kMoved);
  EXPECT_FALSE(o.flapping);
  o = t.learn(m, 0, 2, 25'000);  // 4.9 s after the previous move
  EXPECT_EQ(o.result, LearnResult::kMoved);
  EXPECT_EQ(o.previous_port, 1u);
  EXPECT_TRUE(o.flapping);
  o = t.learn(m, 0, 2, 25'001);  // same port: a refresh is never flapping
  EXPECT_EQ(o.result, LearnResult::kRefreshed);
  EXPECT_FALSE(o.flapping);
  o = t.learn(m, 0, 1, 34'999);  // 9.999 s after the previous move
  EXPECT_TRUE(o.flapping);
}

TEST(MacTableTest, AgedEntrySeenOnAnotherPortIsNewNotMoved) {
  MacTable t(config(4096, 5000));
  const MacAddress m = mac("52:54:00:00:00:01");
  t.learn(m, 0, 1, 0);
  t.learn(m, 0, 2, 10);  // a move, so a later one could look like flapping
  const LearnOutcome o = t.learn(m, 0, 3, 6000);
  EXPECT_EQ(o.result, LearnResult::kNew);
  EXPECT_FALSE(o.flapping);
  EXPECT_EQ(t.lookup(m, 0, 6000), 3u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.port_entry_count(2), 0u);
  // Its move history went with the old entry: the next move is a first move again.
  LearnOutcome moved = t.learn(m, 0, 4, 6100);
  EXPECT_EQ(moved.result, LearnResult::kMoved);
  EXPECT_EQ(moved.previous_port, 3u);
  EXPECT_FALSE(moved.flapping);
  EXPECT_EQ(t.learn(m, 0, 4, 20'000).result, LearnResult::kNew);  // aged on the same port
}

TEST(MacTableTest, FlushPortRemovesOnlyThatPort) {
  MacTable t(config());
  for (uint64_t i = 0; i < 10; ++i) t.learn(mac_from(0x525400000000 + i), 0, 1, 0);
  for (uint64_t i = 10; i < 13; ++i) t.learn(mac_from(0x525400000000 + i), 0, 2, 0);
  EXPECT_EQ(t.flush_port(1), 10u);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.port_entry_count(1), 0u);
  EXPECT_EQ(t.port_entry_count(2), 3u);
  for (uint64_t i = 0; i < 10; ++i)
    EXPECT_EQ(t.lookup(mac_from(0x525400000000 + i), 0, 1), kNoPort);
  for (uint64_t i = 10; i < 13; ++i) EXPECT_EQ(t.lookup(mac_from(0x525400000000 + i), 0, 1), 2u);
  EXPECT_EQ(t.flush_port(1), 0u);
  EXPECT_EQ(t.flush_port(99), 0u);
  // Slots are reusable after a flush.
  EXPECT_EQ(t.learn(mac_from(0x525400000000), 0, 1, 2).result, LearnResult::kNew);
  EXPECT_EQ(t.lookup(mac_from(0x525400000000), 0, 2), 1u);
}

TEST(MacTableTest, NeverExceedsMaxEntriesAndCountsEvictions) {
  MacTable t(config(100));
  EXPECT_EQ(t.capacity(), 100u);
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_FALSE(t.learn(mac_from(0x020000000000 + i), 0, i % 3, static_cast<Millis>(i)).evicted);
  }
  EXPECT_EQ(t.size(), 100u);
  EXPECT_EQ(t.eviction_count(), 0u);
  for (uint64_t i = 100; i < 350; ++i) {
    const LearnOutcome o = t.learn(mac_from(0x020000000000 + i), 0, i % 3, static_cast<Millis>(i));
    EXPECT_EQ(o.result, LearnResult::kNew);
    EXPECT_TRUE(o.evicted);
    EXPECT_EQ(t.size(), 100u);
  }
  EXPECT_EQ(t.eviction_count(), 250u);
  EXPECT_EQ(t.port_entry_count(0) + t.port_entry_count(1) + t.port_entry_count(2), 100u);
  // The newest entry is always there; the oldest went first.
  EXPECT_NE(t.lookup(mac_from(0x020000000000 + 349), 0, 400), kNoPort);
  EXPECT_EQ(t.lookup(mac_from(0x020000000000 + 0), 0, 400), kNoPort);
}

TEST(MacTableTest, FloodingPortEvictsOnlyItsOwnEntriesOnceLargest) {
  MacTable t(config(256));
  std::vector<MacAddress> quiet;
  for (uint64_t i = 0; i < 5; ++i) {
    quiet.push_back(mac_from(0x525400aa0000 + i));
    t.learn(quiet.back(), 0, 1, 0);
  }
  std::mt19937_64 rng(7);
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 5; ++i) seen.insert(mac_key(quiet[i], 0));
  Millis now = 0;
  size_t flooded = 0;
  while (flooded < 5000) {
    const MacAddress m = mac_from(rng());
    if (!seen.insert(mac_key(m, 0)).second) continue;
    ++flooded;
    now += 1;
    t.learn(m, 0, 0, now);
    ASSERT_LE(t.size(), 256u);
  }
  EXPECT_EQ(t.size(), 256u);
  EXPECT_EQ(t.port_entry_count(1), 5u);
  EXPECT_EQ(t.port_entry_count(0), 251u);
  EXPECT_EQ(t.eviction_count(), 5000u - 251u);
  for (const MacAddress& m : quiet) EXPECT_EQ(t.lookup(m, 0, now), 1u);
}

TEST(MacTableTest, LargestPortLosesEntriesEvenIfItIsNotTheNewcomer) {
  MacTable t(config(8));
  for (uint64_t i = 0; i < 5; ++i) t.learn(mac_from(0x525400bb0000 + i), 0, 1, 0);
  for (uint64_t i = 0; i < 3; ++i) t.learn(mac_from(0x525400cc0000 + i), 0, 2, 1);
  EXPECT_TRUE(t.learn(mac_from(0x525400cc0003), 0, 2, 2).evicted);
  EXPECT_EQ(t.port_entry_count(1), 4u);
  EXPECT_EQ(t.port_entry_count(2), 4u);
  EXPECT_EQ(t.lookup(mac_from(0x525400bb0000), 0, 2), kNoPort);  // port 1's oldest
  EXPECT_EQ(t.lookup(mac_from(0x525400bb0001), 0, 2), 1u);
}

struct ModelEntry {
  PortId port = kNoPort;
  Millis last_seen = 0;
  bool has_moved = false;
  Millis last_move = 0;
};

// A table that never fills (the key pool is no bigger than max_entries), so the model needs no
// eviction rule: every other behaviour is compared exactly.
TEST(MacTableTest, RandomOperationsMatchMapModel) {
  constexpr uint32_t kMax = 64;  // index of 128 cells, half full at most: long probe runs
  constexpr Millis kAge = 3000;
  constexpr Millis kFlap = 2000;
  MacTable t(config(kMax, kAge, kFlap, 12345));
  std::mt19937_64 rng(2024);
  std::vector<std::pair<MacAddress, uint16_t>> pool;
  for (uint32_t i = 0; i < kMax; ++i)
    pool.emplace_back(mac_from(rng()), static_cast<uint16_t>(i % 3));
  std::map<uint64_t, ModelEntry> model;
  Millis now = 0;
  for (int op = 0; op < 20'000; ++op) {
    now += static_cast<Millis>(rng() % 300);
    const uint64_t r = rng() % 100;
    if (r < 85) {
      const auto& [m, vlan] = pool[rng() % pool.size()];
      const PortId port = static_cast<PortId>(rng() % 4);
      const LearnOutcome o = t.learn(m, vlan, port, now);
      auto it = model.find(mac_key(m, vlan));
      if (it == model.end() || now - it->second.last_seen >= kAge) {
        ASSERT_EQ(o.result, LearnResult::kNew) << "op " << op;
        model[mac_key(m, vlan)] = ModelEntry{port, now, false, 0};
      } else if (it->second.port == port) {
        ASSERT_EQ(o.result, LearnResult::kRefreshed) << "op " << op;
        it->second.last_seen = now;
      } else {
        ASSERT_EQ(o.result, LearnResult::kMoved) << "op " << op;
        ASSERT_EQ(o.previous_port, it->second.port);
        ASSERT_EQ(o.flapping, it->second.has_moved && now - it->second.last_move < kFlap);
        it->second = ModelEntry{port, now, true, now};
      }
      ASSERT_FALSE(o.evicted);
    } else if (r < 95) {
      size_t expected = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (now - it->second.last_seen >= kAge) {
          it = model.erase(it);
          ++expected;
        } else {
          ++it;
        }
      }
      ASSERT_EQ(t.expire(now), expected) << "op " << op;
    } else {
      const PortId port = static_cast<PortId>(rng() % 5);
      size_t expected = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (it->second.port == port) {
          it = model.erase(it);
          ++expected;
        } else {
          ++it;
        }
      }
      ASSERT_EQ(t.flush_port(port), expected) << "op " << op;
    }
    ASSERT_EQ(t.size(), model.size()) << "op " << op;
    size_t per_port = 0;
    for (PortId p = 0; p < 5; ++p) per_port += t.port_entry_count(p);
    ASSERT_EQ(per_port, model.size());
    for (const auto& [m, vlan] : pool) {
      auto it = model.find(mac_key(m, vlan));
      const PortId want =
          (it == model.end() || now - it->second.last_seen >= kAge) ? kNoPort : it->second.port;
      ASSERT_EQ(t.lookup(m, vlan, now), want) << "op " << op << " mac " << m.to_string();
    }
    size_t listed = 0;
    t.for_each([&](const MacEntryView& v) {
      ++listed;
      auto it = model.find(mac_key(v.mac, v.vlan));
      ASSERT_NE(it, model.end());
      EXPECT_EQ(v.port, it->second.port);
      EXPECT_EQ(v.last_seen, it->second.last_seen);
    });
    ASSERT_EQ(listed, model.size());
  }
}

// More keys than slots: evictions, moves and removals interleave. The model remembers where each
// key was last learned; whatever the table still holds must agree with it and be findable.
TEST(MacTableTest, RandomOperationsWithEvictionStayConsistent) {
  constexpr uint32_t kMax = 50;
  MacTable t(config(kMax, 1'000'000, 10'000, 99));
  std::mt19937_64 rng(77);
  std::vector<MacAddress> pool;
  for (int i = 0; i < 300; ++i) pool.push_back(mac_from(rng()));
  std::map<uint64_t, ModelEntry> last_learned;
  uint64_t evicted_flags = 0;
  Millis now = 0;
  for (int op = 0; op < 20'000; ++op) {
    now += static_cast<Millis>(rng() % 50);
    if (rng() % 100 < 97) {
      const MacAddress& m = pool[rng() % pool.size()];
      const PortId port = static_cast<PortId>(rng() % 6);
      const size_t before = t.size();
      const LearnOutcome o = t.learn(m, 0, port, now);
      if (o.evicted) {
        ++evicted_flags;
        ASSERT_EQ(before, kMax);
      }
      last_learned[mac_key(m, 0)] = ModelEntry{port, now, false, 0};
    } else {
      const PortId port = static_cast<PortId>(rng() % 6);
      const size_t before = t.size();
      const size_t count = t.port_entry_count(port);
      ASSERT_EQ(t.flush_port(port), count);
      ASSERT_EQ(t.size(), before - count);
      for (auto& [key, e] : last_learned) {
        if (e.port == port) e.port = kNoPort;  // gone for sure
      }
    }
    ASSERT_LE(t.size(), kMax);
    std::set<uint64_t> present;
    t.for_each([&](const MacEntryView& v) {
      present.insert(mac_key(v.mac, v.vlan));
      auto it = last_learned.find(mac_key(v.mac, v.vlan));
      ASSERT_NE(it, last_learned.end());
      EXPECT_EQ(v.port, it->second.port);
      EXPECT_EQ(v.last_seen, it->second.last_seen);
    });
    ASSERT_EQ(present.size(), t.size());
    size_t per_port = 0;
    for (PortId p = 0; p < 6; ++p) per_port += t.port_entry_count(p);
    ASSERT_EQ(per_port, t.size());
    for (const MacAddress& m : pool) {
      const uint64_t k = mac_key(m, 0);
      const PortId want = present.count(k) ? last_learned[k].port : kNoPort;
      ASSERT_EQ(t.lookup(m, 0, now), want) << "op " << op;
    }
  }
  EXPECT_EQ(t.eviction_count(), evicted_flags);
  EXPECT_GT(evicted_flags, 1000u);
}

TEST(MacTableTest, TablesWithDifferentSeedsEachFindTheirEntries) {
  MacTable a(config(128, 300'000, 10'000, 1));
  MacTable b(config(128, 300'000, 10'000, 2));
  EXPECT_EQ(a.seed(), 1u);
  EXPECT_EQ(b.seed(), 2u);
  for (uint64_t i = 0; i < 100; ++i) {
    a.learn(mac_from(0x525400000100 + i), 0, static_cast<PortId>(i % 4), 0);
    b.learn(mac_from(0x525400000100 + i), 0, static_cast<PortId>((i + 1) % 4), 0);
  }
  for (uint64_t i = 0; i < 100; ++i) {
    EXPECT_EQ(a.lookup(mac_from(0x525400000100 + i), 0, 1), i % 4);
    EXPECT_EQ(b.lookup(mac_from(0x525400000100 + i), 0, 1), (i + 1) % 4);
  }
}

TEST(MacTableTest, ZeroSeedPicksARandomSeed) {
  MacTable a(config(16, 300'000, 10'000, 0));
  MacTable b(config(16, 300'000, 10'000, 0));
  EXPECT_NE(a.seed(), 0u);
  EXPECT_NE(a.seed(), b.seed());  // equal with probability 2^-64
}

TEST(MacTableTest, PortIdsFarApartAreIndependent) {
  MacTable t(config());
  const MacAddress a = mac("52:54:00:00:00:01");
  const MacAddress b = mac("52:54:00:00:00:02");
  t.learn(a, 0, 0, 0);
  t.learn(b, 0, 1000, 0);
  EXPECT_EQ(t.lookup(a, 0, 1), 0u);
  EXPECT_EQ(t.lookup(b, 0, 1), 1000u);
  EXPECT_EQ(t.port_entry_count(0), 1u);
  EXPECT_EQ(t.port_entry_count(1000), 1u);
  EXPECT_EQ(t.port_entry_count(500), 0u);
  EXPECT_EQ(t.flush_port(1000), 1u);
  EXPECT_EQ(t.lookup(a, 0, 1), 0u);
  EXPECT_EQ(t.lookup(b, 0, 1), kNoPort);
  const LearnOutcome o = t.learn(a, 0, 1000, 2);
  EXPECT_EQ(o.result, LearnResult::kMoved);
  EXPECT_EQ(o.previous_port, 0u);
}

TEST(MacTableTest, LearnOnNoPortStoresNothing) {
  MacTable t(config());
  t.learn(mac("52:54:00:00:00:01"), 0, kNoPort, 0);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.lookup(mac("52:54:00:00:00:01"), 0, 0), kNoPort);
}

TEST(MacTableTest, ZeroMaxEntriesIsClampedToOne) {
  MacTable t(config(0));
  EXPECT_EQ(t.capacity(), 1u);
  t.learn(mac("52:54:00:00:00:01"), 0, 1, 0);
  EXPECT_TRUE(t.learn(mac("52:54:00:00:00:02"), 0, 1, 1).evicted);
  EXPECT_EQ(t.lookup(mac("52:54:00:00:00:02"), 0, 1), 1u);
  EXPECT_EQ(t.lookup(mac("52:54:00:00:00:01"), 0, 1), kNoPort);
  EXPECT_EQ(t.size(), 1u);
}

// --- Pinned entries (the MACs of the switch's own ports) ----------------------------------------

std::set<uint64_t> pinned_keys(const MacTable& t) {
  std::set<uint64_t> keys;
  t.for_each([&](const MacEntryView& v) {
    if (v.pinned) keys.insert(mac_key(v.mac, v.vlan));
  });
  return keys;
}

TEST(MacTableTest, APinnedMacLearnedFromAnotherPortStaysWithItsOwner) {
  MacTable t(config());
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.pin(gw, 0, 1, 0);
  EXPECT_EQ(t.lookup(gw, 0, 0), 1u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(pinned_keys(t), (std::set<uint64_t>{mac_key(gw, 0)}));

  const LearnOutcome o = t.learn(gw, 0, 2, 100);
  EXPECT_EQ(o.result, LearnResult::kPinned);
  EXPECT_EQ(o.previous_port, 1u) << "kPinned must name the owner";
  EXPECT_FALSE(o.evicted);
  EXPECT_FALSE(o.flapping);
  EXPECT_EQ(t.lookup(gw, 0, 100), 1u);
  EXPECT_EQ(t.port_entry_count(1), 1u);
  EXPECT_EQ(t.port_entry_count(2), 0u);
  EXPECT_EQ(t.size(), 1u);
  // Again and again: nothing changes, and it is never reported as a move.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(t.learn(gw, 0, 3, 200 + i).result, LearnResult::kPinned);
  EXPECT_EQ(t.lookup(gw, 0, 300), 1u);
  // The owner itself refreshes it as any entry.
  EXPECT_EQ(t.learn(gw, 0, 1, 400).result, LearnResult::kRefreshed);
  EXPECT_EQ(t.lookup(gw, 0, 400), 1u);
  // Pinning is per key: the same MAC on another VLAN is an ordinary entry.
  EXPECT_EQ(t.learn(gw, 5, 2, 500).result, LearnResult::kNew);
  EXPECT_EQ(t.learn(gw, 5, 3, 600).result, LearnResult::kMoved);
}

TEST(MacTableTest, PinnedEntriesNeverAge) {
  MacTable t(config(4096, 5000));
  const MacAddress gw = mac("52:55:0a:00:02:02");
  const MacAddress guest = mac("52:54:00:00:00:01");
  t.pin(gw, 0, 1, 0);
  t.learn(guest, 0, 1, 0);
  EXPECT_EQ(t.lookup(gw, 0, 5000), 1u);
  EXPECT_EQ(t.lookup(guest, 0, 5000), kNoPort);
  EXPECT_EQ(t.expire(5000), 1u) << "only the guest's entry ages out";
  EXPECT_EQ(t.expire(1'000'000'000), 0u);
  EXPECT_EQ(t.lookup(gw, 0, 1'000'000'000), 1u);
  EXPECT_EQ(t.size(), 1u);
  // Long after age_ms, another port still cannot take it (an aged entry would be reused).
  EXPECT_EQ(t.learn(gw, 0, 2, 1'000'000'001).result, LearnResult::kPinned);
  EXPECT_EQ(t.lookup(gw, 0, 1'000'000'001), 1u);
}

TEST(MacTableTest, AFullTableEvictsAnUnpinnedEntryInsteadOfAPinnedOne) {
  MacTable t(config(4));
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.pin(gw, 0, 0, 0);  // the oldest entry of the largest port
  for (uint64_t i = 0; i < 3; ++i) t.learn(mac_from(0x525400000010 + i), 0, 0, 1 + i);
  ASSERT_EQ(t.size(), 4u);
  const LearnOutcome o = t.learn(mac_from(0x525400000020), 0, 1, 10);
  EXPECT_TRUE(o.evicted);
  EXPECT_EQ(t.lookup(gw, 0, 10), 0u) << "the pinned entry was evicted";
  EXPECT_EQ(t.lookup(mac_from(0x525400000010), 0, 10), kNoPort)
      << "the oldest unpinned entry of the largest port goes first";
  EXPECT_EQ(t.lookup(mac_from(0x525400000011), 0, 10), 0u);
  // Keep flooding new MACs from two ports: the pinned entry survives every eviction.
  for (uint64_t i = 0; i < 200; ++i) {
    const Millis now = 20 + static_cast<Millis>(i);
    t.learn(mac_from(0x525400001000 + i), 0, static_cast<PortId>(1 + i % 2), now);
    ASSERT_EQ(t.lookup(gw, 0, now), 0u) << i;
    ASSERT_EQ(t.size(), 4u);
  }
  EXPECT_EQ(t.port_entry_count(0), 1u);
}

TEST(MacTableTest, APortHoldingOnlyPinnedEntriesIsNeverTheEvictionVictim) {
  MacTable t(config(4));
  t.pin(mac("52:55:0a:00:02:02"), 0, 0, 0);
  t.pin(mac("52:55:0a:00:02:03"), 0, 0, 0);
  t.learn(mac_from(0x525400000010), 0, 1, 1);
  t.learn(mac_from(0x525400000011), 0, 2, 2);
  // Port 0 is the largest, but all it holds is pinned: port 1's (older) entry goes.
  EXPECT_TRUE(t.learn(mac_from(0x525400000012), 0, 3, 3).evicted);
  EXPECT_EQ(t.port_entry_count(0), 2u);
  EXPECT_EQ(t.lookup(mac_from(0x525400000010), 0, 3), kNoPort);
  EXPECT_EQ(t.lookup(mac_from(0x525400000011), 0, 3), 2u);
  EXPECT_EQ(t.lookup(mac_from(0x525400000012), 0, 3), 3u);
}

TEST(MacTableTest, PinningANewMacInAFullTableEvictsAnUnpinnedEntry) {
  MacTable t(config(4));
  for (uint64_t i = 0; i < 4; ++i) {
    t.learn(mac_from(0x525400000010 + i), 0, 1, static_cast<Millis>(i));
  }
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.pin(gw, 0, 0, 10);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.lookup(gw, 0, 10), 0u);
  EXPECT_EQ(t.lookup(mac_from(0x525400000010), 0, 10), kNoPort);
  EXPECT_EQ(t.eviction_count(), 1u);
  EXPECT_EQ(pinned_keys(t), (std::set<uint64_t>{mac_key(gw, 0)}));
}

TEST(MacTableTest, FlushPortRemovesItsPinnedEntriesToo) {
  MacTable t(config(4));
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.pin(gw, 0, 1, 0);
  t.learn(mac_from(0x525400000010), 0, 1, 0);
  t.learn(mac_from(0x525400000011), 0, 2, 0);
  EXPECT_EQ(t.flush_port(1), 2u);
  EXPECT_EQ(t.lookup(gw, 0, 1), kNoPort);
  EXPECT_TRUE(pinned_keys(t).empty());
  // The MAC is free again: an ordinary entry, which moves like any other.
  EXPECT_EQ(t.learn(gw, 0, 2, 2).result, LearnResult::kNew);
  EXPECT_EQ(t.learn(gw, 0, 3, 3).result, LearnResult::kMoved);
  EXPECT_TRUE(pinned_keys(t).empty());
  // The port's pin bookkeeping is gone with it: a full table of its new entries evicts them.
  t.flush_port(2);
  t.flush_port(3);
  for (uint64_t i = 0; i < 10; ++i) {
    t.learn(mac_from(0x525400000100 + i), 0, 1, 10 + static_cast<Millis>(i));
    ASSERT_LE(t.size(), 4u);
  }
  EXPECT_EQ(t.port_entry_count(1), 4u);
  EXPECT_EQ(t.lookup(mac_from(0x525400000109), 0, 20), 1u);
}

TEST(MacTableTest, PinningAMacLearnedElsewhereMovesItToTheOwner) {
  MacTable t(config());
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.learn(gw, 0, 2, 0);  // a guest got there first
  t.pin(gw, 0, 1, 10);
  EXPECT_EQ(t.lookup(gw, 0, 10), 1u);
  EXPECT_EQ(t.port_entry_count(1), 1u);
  EXPECT_EQ(t.port_entry_count(2), 0u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.learn(gw, 0, 2, 20).result, LearnResult::kPinned);
  EXPECT_EQ(t.lookup(gw, 0, 20), 1u);
}

TEST(MacTableTest, PinningAMacPinnedElsewhereMovesThePin) {
  MacTable t(config());
  const MacAddress gw = mac("52:55:0a:00:02:02");
  t.pin(gw, 0, 1, 0);
  t.pin(gw, 0, 2, 10);
  EXPECT_EQ(t.lookup(gw, 0, 10), 2u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(pinned_keys(t).size(), 1u);
  const LearnOutcome o = t.learn(gw, 0, 1, 20);
  EXPECT_EQ(o.result, LearnResult::kPinned);
  EXPECT_EQ(o.previous_port, 2u);
  // Pinning twice on the same port is harmless; flushing the old owner changes nothing.
  t.pin(gw, 0, 2, 30);
  EXPECT_EQ(t.flush_port(1), 0u);
  EXPECT_EQ(t.lookup(gw, 0, 40), 2u);
  EXPECT_EQ(t.flush_port(2), 1u);
  EXPECT_TRUE(pinned_keys(t).empty());
}

TEST(MacTableTest, PinOnNoPortStoresNothing) {
  MacTable t(config());
  t.pin(mac("52:55:0a:00:02:02"), 0, kNoPort, 0);
  EXPECT_EQ(t.size(), 0u);
}

// Random learning from every port (pinned MACs included), aging, eviction and port flushes: the
// pinned entries stay with their owners throughout; everything else stays consistent.
TEST(MacTableTest, RandomOperationsNeverMoveAgeOrEvictPinnedEntries) {
  constexpr uint32_t kMax = 40;
  constexpr Millis kAge = 20'000;
  MacTable t(config(kMax, kAge, 10'000, 5));
  std::mt19937_64 rng(31);
  std::vector<MacAddress> pool;
  for (int i = 0; i < 200; ++i) pool.push_back(mac_from(rng()));
  // Three pinned MACs, on ports 0, 0 and 4.
  std::map<uint64_t, PortId> pins;
  auto pin = [&](size_t i, PortId port, Millis now) {
    t.pin(pool[i], 0, port, now);
    pins[mac_key(pool[i], 0)] = port;
  };
  pin(0, 0, 0);
  pin(1, 0, 0);
  pin(2, 4, 0);
  Millis now = 0;
  uint64_t spoofs = 0;
  for (int op = 0; op < 20'000; ++op) {
    now += static_cast<Millis>(rng() % 40);
    const uint64_t r = rng() % 1000;
    if (r < 960) {
      const MacAddress& m = pool[rng() % pool.size()];
      const PortId port = static_cast<PortId>(rng() % 6);
      const LearnOutcome o = t.learn(m, 0, port, now);
      const auto it = pins.find(mac_key(m, 0));
      if (it != pins.end() && it->second != port) {
        ASSERT_EQ(o.result, LearnResult::kPinned) << "op " << op;
        ASSERT_EQ(o.previous_port, it->second) << "op " << op;
        ++spoofs;
      } else {
        ASSERT_NE(o.result, LearnResult::kPinned) << "op " << op;
      }
    } else if (r < 990) {
      t.expire(now);
    } else {
      // Flush a port; when it owned pins, they go, and are pinned again on another port.
      const PortId port = static_cast<PortId>(rng() % 6);
      t.flush_port(port);
      std::vector<size_t> lost;
      for (size_t i = 0; i < 3; ++i) {
        if (pins[mac_key(pool[i], 0)] == port) lost.push_back(i);
      }
      for (size_t i : lost) {
        ASSERT_EQ(t.lookup(pool[i], 0, now), kNoPort);
        pins.erase(mac_key(pool[i], 0));
      }
      for (size_t i : lost) pin(i, static_cast<PortId>((port + 1) % 6), now);
    }
    ASSERT_LE(t.size(), kMax);
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_EQ(t.lookup(pool[i], 0, now), pins[mac_key(pool[i], 0)]) << "op " << op;
    }
    std::set<uint64_t> want;
    for (const auto& entry : pins) want.insert(entry.first);
    ASSERT_EQ(pinned_keys(t), want) << "op " << op;
    size_t per_port = 0;
    for (PortId p = 0; p < 6; ++p) per_port += t.port_entry_count(p);
    ASSERT_EQ(per_port, t.size());
  }
  EXPECT_GT(spoofs, 100u);
  EXPECT_GT(t.eviction_count(), 100u);
}

}  // namespace
}  // namespace qswitch::sw

namespace qswitch::sw {
namespace {

// Found by review: a table holding nothing but pinned entries had no eviction victim, and
// learning one more MAC indexed the port list with kNoPort.
TEST(MacTablePinnedFullTest, TableFullOfPinnedEntriesLearnsNothingMore) {
  MacTable t(MacTableConfig{.max_entries = 2, .age_ms = 1000, .flap_window_ms = 100, .seed = 7});
  MacAddress a{}, b{}, c{};
  a.bytes = {0x52, 0x55, 0, 0, 0, 1};
  b.bytes = {0x52, 0x55, 0, 0, 0, 2};
  c.bytes = {0x02, 0, 0, 0, 0, 3};
  t.pin(a, 0, 0, 0);
  t.pin(b, 0, 1, 0);
  t.learn(c, 0, 2, 10);
  EXPECT_EQ(t.lookup(c, 0, 10), kNoPort);
  EXPECT_EQ(t.lookup(a, 0, 10), 0u);
  EXPECT_EQ(t.lookup(b, 0, 10), 1u);
  EXPECT_EQ(t.size(), 2u);
  t.pin(c, 0, 2, 10);  // no room either
  EXPECT_EQ(t.lookup(c, 0, 10), kNoPort);
}

// Pinned entries do not make their port the "largest" one: with a pinned gateway MAC and one
// learned MAC on port 0, and two learned MACs on port 1, port 1 loses an entry.
TEST(MacTablePinnedFullTest, PinnedEntriesDoNotCountTowardsTheLargestPort) {
  MacTable t(MacTableConfig{.max_entries = 4, .age_ms = 100000, .flap_window_ms = 100, .seed = 7});
  auto mac = [](uint8_t n) {
    MacAddress m{};
    m.bytes = {0x02, 0, 0, 0, 0, n};
    return m;
  };
  t.pin(mac(1), 0, 0, 0);
  t.learn(mac(2), 0, 0, 1);
  t.learn(mac(3), 0, 1, 2);
  t.learn(mac(4), 0, 1, 3);
  t.learn(mac(5), 0, 2, 4);  // full: evicts port 1's oldest (mac 3), not port 0's mac 2
  EXPECT_EQ(t.lookup(mac(1), 0, 5), 0u);
  EXPECT_EQ(t.lookup(mac(2), 0, 5), 0u);
  EXPECT_EQ(t.lookup(mac(3), 0, 5), kNoPort);
  EXPECT_EQ(t.lookup(mac(4), 0, 5), 1u);
  EXPECT_EQ(t.lookup(mac(5), 0, 5), 2u);
}

}  // namespace
}  // namespace qswitch::sw
