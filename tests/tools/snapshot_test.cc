// tests/tools/snapshot_test.cc: the switch snapshot and its three renderings.
// - SwitchLoop::snapshot() over a real loop with stream and datagram ports on socketpairs: every
//   live port once, by id (ids reused out of adoption order), its counters, kind and the kind's
//   own counters; closed ports in their own list.
// - stats_text() (the SIGUSR1/exit lines) of a hand-made snapshot, line for line.
// - Every counter of kPortCounters and kSwitchCounters, and every kind-specific counter, appears
//   with its value in all three renderings (stats text, the `ports`/`stats` JSON commands,
//   /metrics), so a counter cannot be forgotten by one of them.
#include "backends/runtime/switch_snapshot.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backends/dgram/dgram_port.h"
#include "backends/runtime/switch_loop.h"
#include "backends/stream/stream_port.h"
#include "switch/counters.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/endpoints.h"
#include "tools/qswitch/services/metrics_text.h"
#include "tools/qswitch/services/switch_commands.h"

namespace qswitch::tools {
namespace {

using json = nlohmann::json;

// A StreamPort on one end of a socketpair; the other end is kept open in `peers`.
backends::LoopPort& add_stream(backends::SwitchLoop& loop, const std::string& describe,
                               std::vector<io::Fd>& peers) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  peers.push_back(io::Fd::adopt(sv[1]));
  return loop.adopt(std::make_unique<backends::StreamPort>(loop, io::Fd::adopt(sv[0]), describe));
}

backends::LoopPort& add_dgram(backends::SwitchLoop& loop, const std::string& describe,
                              std::vector<io::Fd>& peers) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  peers.push_back(io::Fd::adopt(sv[1]));
  std::string error;
  backends::LoopPort* p =
      backends::adopt_connected_dgram(loop, io::Fd::adopt(sv[0]), describe, error);
  EXPECT_NE(p, nullptr) << error;
  return *p;
}

TEST(SwitchSnapshotTest, ListsEveryLivePortOnceByIdWithItsKindAndCounters) {
  backends::SwitchLoop loop(backends::LoopConfig{});
  std::vector<io::Fd> peers;
  backends::LoopPort& a = add_stream(loop, "unix:/a", peers);
  backends::LoopPort& b = add_stream(loop, "unix:/b", peers);
  backends::LoopPort& c = add_stream(loop, "unix:/c", peers);
  const sw::PortId ida = a.id(), idb = b.id(), idc = c.id();
  ASSERT_LT(ida, idb);
  ASSERT_LT(idb, idc);
  b.counters().rx_frames = 7;
  b.close("test closes it");
  // The datagram port comes last but takes b's id: the snapshot is still by id.
  backends::LoopPort& d = add_dgram(loop, "exec:d", peers);
  ASSERT_EQ(d.id(), idb);
  a.counters().tx_bytes = 11;

  const backends::SwitchSnapshot s = loop.snapshot();
  ASSERT_EQ(s.ports.size(), 3u);
  EXPECT_EQ(s.port_count(), loop.fabric().port_count());
  std::set<uint64_t> serials;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const backends::PortSnapshot& p = s.ports[i];
    if (i > 0) {
      EXPECT_LT(s.ports[i - 1].id, p.id) << "not sorted by id";
    }
    const backends::LoopPort* live = loop.port(p.id);
    ASSERT_NE(live, nullptr) << p.id;
    EXPECT_EQ(loop.fabric().port(p.id), live) << "the registry and the switch disagree";
    EXPECT_EQ(p.peer, live->describe());
    EXPECT_EQ(std::string(p.kind), live->kind());
    EXPECT_EQ(p.serial, live->serial());
    serials.insert(p.serial);
  }
  EXPECT_EQ(serials.size(), 3u);
  size_t live_ports = 0;
  loop.for_each_port([&](const backends::LoopPort&) { ++live_ports; });
  EXPECT_EQ(live_ports, 3u);

  EXPECT_EQ(s.ports[0].id, ida);
  EXPECT_EQ(s.ports[0].counters.tx_bytes, 11u);
  ASSERT_EQ(s.ports[0].extra.size(), 1u) << "a stream port's one counter of its own";
  EXPECT_STREQ(s.ports[0].extra[0].info.name, "drop_control_request");
  EXPECT_EQ(s.ports[0].extra[0].value, 0u);
  EXPECT_EQ(s.ports[1].id, idb);
  EXPECT_EQ(s.ports[1].peer, "exec:d");
  EXPECT_EQ(std::string(s.ports[1].kind), "dgram");
  ASSERT_EQ(s.ports[1].extra.size(), 2u);
  for (const backends::ExtraCounter& e : s.ports[1].extra) {
    EXPECT_NE(std::string(e.info.help), "") << e.info.name << " has no help";
  }
  EXPECT_EQ(s.ports[2].id, idc);
  EXPECT_EQ(std::string(s.ports[2].kind), "stream");

  ASSERT_EQ(s.closed_ports.size(), 1u);
  EXPECT_EQ(s.closed_ports[0].id, idb);
  EXPECT_EQ(s.closed_ports[0].peer, "unix:/b");
  EXPECT_EQ(s.closed_ports[0].counters.rx_frames, 7u);
  EXPECT_EQ(loop.port(sw::kNoPort), nullptr);
}

TEST(SwitchSnapshotTest, StatsTextIsOneLinePerClosedPortPortAndSwitch) {
  backends::SwitchSnapshot s;
  backends::PortSnapshot p;
  p.id = 3;
  p.peer = "unix:/x";
  p.counters.rx_frames = 1;
  p.counters.congestion_timeouts = 2;
  p.extra.push_back({{"tap_link_down", "help"}, 4});
  backends::PortSnapshot closed = p;
  closed.id = 1;
  closed.extra.clear();
  s.ports.push_back(p);
  s.closed_ports.push_back(closed);
  s.mac_entries = 5;
  s.counters.frames_in = 6;
  s.counters.mac_evictions = 7;
  s.counters.dup_mac_warnings = 8;
  const std::string zeros =
      " tx_frames=0 tx_bytes=0 drop_queue_full=0 drop_bad_length=0 drop_bad_source=0 "
      "drop_same_port=0 drop_port_closed=0 rx_paused=0 rx_throttled=0 dup_mac=0 "
      "drop_mac_spoof=0 drop_ip_spoof=0 tx_copied=0 congestion_timeouts=2 drop_vlan_tagged=0 "
      "drop_vlan_untagged=0 drop_vlan_not_member=0";
  const std::vector<std::string> lines = backends::stats_text(s);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "stats closed port 1 unix:/x rx_frames=1 rx_bytes=0" + zeros);
  EXPECT_EQ(lines[1], "stats port 3 unix:/x rx_frames=1 rx_bytes=0" + zeros + " tap_link_down=4");
  EXPECT_EQ(lines[2],
            "stats switch ports=1 macs=5 frames_in=6 unicast=0 flooded=0 mac_moves=0 "
            "dup_mac_events=0 mac_evictions=7 mac_spoofs=0 chunk_reliefs=0 dup_mac_warnings=8 "
            "gso_cut=0 gso_segments=0 gso_dropped=0 split_copies=0 split_dropped=0 "
            "vlan_tag_pushes=0 vlan_tag_pops=0 vlan_dropped=0 ip_spoofs=0");
}

TEST(SwitchSnapshotTest, EveryCounterAppearsInTheTextTheJsonAndTheMetrics) {
  backends::SwitchLoop loop(backends::LoopConfig{});
  std::vector<io::Fd> peers;
  backends::LoopPort& a = add_stream(loop, "unix:/a", peers);
  backends::LoopPort& d = add_dgram(loop, "exec:d", peers);
  // Distinct values, so a counter shown under another's name would be caught.
  uint64_t v = 1000;
  for (backends::LoopPort* p : {&a, &d}) {
    for (const auto& c : sw::kPortCounters) p->counters().*c.field = ++v;
  }
  Endpoints endpoints(loop);
  ControlApi api;
  register_switch_commands(api, loop, endpoints);
  const json ports = json::parse(api.handle_line(R"({"cmd":"ports"})"));
  const json stats = json::parse(api.handle_line(R"({"cmd":"stats"})"));
  ASSERT_TRUE(ports["ok"].get<bool>()) << ports.dump();
  ASSERT_TRUE(stats["ok"].get<bool>()) << stats.dump();
  const backends::SwitchSnapshot s = loop.snapshot();
  const std::vector<std::string> text = backends::stats_text(s);
  const std::string metrics = render_metrics(s);
  ASSERT_EQ(text.size(), 3u);
  ASSERT_EQ(ports["result"].size(), 2u);

  size_t extras = 0;
  for (size_t i = 0; i < s.ports.size(); ++i) {
    const backends::PortSnapshot& p = s.ports[i];
    const std::string& line = text[i];
    const json& row = ports["result"][i];
    ASSERT_EQ(row["id"], p.id);
    const std::string labels =
        "{port=\"" + std::to_string(p.id) + "\",peer=\"" + escape_label_value(p.peer) + "\"}";
    auto check = [&](const char* name, const char* help, uint64_t value) {
      const std::string metric = std::string("qswitch_port_") + name + "_total";
      EXPECT_NE((line + ' ').find(std::string(" ") + name + '=' + std::to_string(value) + ' '),
                std::string::npos)
          << name << " missing from the stats text: " << line;
      EXPECT_EQ(row["counters"].value(name, json()), json(value))
          << name << " missing from ports: " << row.dump();
      EXPECT_NE(metrics.find(metric + labels + ' ' + std::to_string(value) + '\n'),
                std::string::npos)
          << metric << " missing from /metrics";
      EXPECT_NE(metrics.find("# HELP " + metric + ' ' + help + '\n'), std::string::npos)
          << metric << " has not its table's help";
    };
    for (const auto& c : sw::kPortCounters) check(c.name, c.help, p.counters.*c.field);
    for (const backends::ExtraCounter& e : p.extra) {
      check(e.info.name, e.info.help, e.value);
      ++extras;
    }
    EXPECT_EQ(row["counters"].size(), std::size(sw::kPortCounters) + p.extra.size()) << row.dump();
  }
  EXPECT_EQ(extras, 3u) << "the dgram port's drop_unreachable and drop_too_big, the stream port's "
                           "drop_control_request";

  const std::string& line = text.back();
  for (const auto& c : sw::kSwitchCounters) {
    const uint64_t value = s.counters.*c.field;
    const std::string metric = std::string("qswitch_") + c.name + "_total";
    EXPECT_NE((line + ' ').find(std::string(" ") + c.name + '=' + std::to_string(value) + ' '),
              std::string::npos)
        << c.name << " missing from the stats text: " << line;
    EXPECT_EQ(stats["result"].value(c.name, json()), json(value))
        << c.name << " missing from stats: " << stats.dump();
    EXPECT_NE(metrics.find(metric + ' ' + std::to_string(value) + '\n'), std::string::npos)
        << metric << " missing from /metrics";
    EXPECT_NE(metrics.find("# HELP " + metric + ' ' + c.help + '\n'), std::string::npos)
        << metric << " has not its table's help";
  }
}

}  // namespace
}  // namespace qswitch::tools
