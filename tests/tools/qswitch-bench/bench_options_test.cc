// tests/tools/qswitch-bench/bench_options_test.cc: qswitch-bench's --vlan, --mode and --cpu-pid
// options, the port plan they lead to (who sends to whom, who tags, what each receiver expects
// from each sender, how many frames went to each receiver) and how the report says them.
#include "tools/qswitch-bench/bench_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/qswitch-bench/bench_report.h"
#include "tools/qswitch-bench/bench_run.h"

namespace qswitch::tools {
namespace {

ParseOutcome parse(std::vector<std::string> args) {
  args.insert(args.begin(), "qswitch-bench");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  return parse_bench_options(static_cast<int>(argv.size()), argv.data());
}

// The error of a refused command line ("" when it was accepted).
std::string refusal(std::vector<std::string> args) {
  ParseOutcome out = parse(std::move(args));
  return out.options ? "" : out.error;
}

TEST(BenchOptionsTest, NoVlanLeavesEveryPortUntagged) {
  ParseOutcome out = parse({"unix:/tmp/x.sock"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->vlan, 0);
  EXPECT_EQ(out.options->vlan_of(0), 0);
  EXPECT_EQ(out.options->vlan_of(1), 0);
  EXPECT_EQ(vlan_text(*out.options), "");
}

TEST(BenchOptionsTest, VlanWithoutPortsTagsEveryPort) {
  ParseOutcome out = parse({"--vlan", "10", "--ports", "3", "--mode", "mesh", "unix:/tmp/x"});
  ASSERT_TRUE(out.options) << out.error;
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(out.options->vlan_of(i), 10) << i;
  EXPECT_EQ(out.options->vlan_of(3), 0);
  EXPECT_EQ(vlan_text(*out.options), "10");
}

TEST(BenchOptionsTest, VlanWithPortsTagsOnlyThose) {
  ParseOutcome out = parse({"--vlan=4094:0,2", "--ports", "3", "unix:/tmp/x"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->vlan_of(0), 4094);
  EXPECT_EQ(out.options->vlan_of(1), 0);
  EXPECT_EQ(out.options->vlan_of(2), 4094);
  EXPECT_EQ(vlan_text(*out.options), "4094:0,2");
}

TEST(BenchOptionsTest, VlanListingEveryPortIsTheSameAsNone) {
  ParseOutcome out = parse({"--vlan", "7:1,0", "unix:/tmp/x"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(vlan_text(*out.options), "7");
}

TEST(BenchOptionsTest, BadVlansAreRefusedNamingTheValue) {
  EXPECT_NE(refusal({"--vlan", "0", "unix:/x"}).find("bad --vlan '0': expected VID[:PORTS]"),
            std::string::npos);
  EXPECT_NE(refusal({"--vlan", "4095", "unix:/x"}).find("VID 1..4094"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "ten", "unix:/x"}).find("bad --vlan 'ten'"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:", "unix:/x"}).find("port indexes 0..63"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:0,", "unix:/x"}).find("port indexes"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:64", "unix:/x"}).find("port indexes"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:0,0", "unix:/x"}).find("port 0 twice"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:2", "unix:/x"}).find("no port 2 (ports are 0..1)"),
            std::string::npos);
  EXPECT_NE(refusal({"--vlan"}).find("--vlan needs a value"), std::string::npos);
}

TEST(BenchOptionsTest, DirectTagsBothPortsOrNone) {
  EXPECT_EQ(refusal({"--vlan", "10", "--direct"}), "");
  EXPECT_EQ(refusal({"--vlan", "10:0,1", "--direct=dgram"}), "");
  EXPECT_NE(refusal({"--vlan", "10:0", "--direct"}).find("with --direct: no switch"),
            std::string::npos);
}

TEST(BenchOptionsTest, MixedTaggingLeavesRoomForAPushedTag) {
  EXPECT_EQ(refusal({"--vlan", "10:0", "--size", "65545", "unix:/x"}), "");
  EXPECT_NE(refusal({"--vlan", "10:0", "--size", "65546", "unix:/x"}).find("expected 60..65545"),
            std::string::npos);
  EXPECT_NE(refusal({"--vlan", "10:1", "--size", "9234", "vde:/x"}).find("expected 60..9230"),
            std::string::npos);
  // Every port tagged: nothing grows.
  EXPECT_EQ(refusal({"--vlan", "10", "--size", "65549", "unix:/x"}), "");
}

TEST(BenchOptionsTest, UsageNamesTheVlanOption) {
  EXPECT_NE(bench_usage().find("--vlan VID[:PORTS]"), std::string::npos);
  EXPECT_NE(bench_usage().find("tagged_ports"), std::string::npos);
}

TEST(BenchPlanTest, PairWithTheSenderTaggedExpectsThePop) {
  ParseOutcome out = parse({"--vlan", "10:0", "--size", "62", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].vlan, 10);
  EXPECT_EQ(plans[1].vlan, 0);
  EXPECT_EQ(plans[0].size, 62u);
  EXPECT_EQ(plans[1].rx_from[0].sent_size, 58u);  // the untagged frame
  EXPECT_EQ(plans[1].rx_from[0].size, 60u);       // padded
}

TEST(BenchPlanTest, BidirWithOnePortTaggedExpectsPushAndPop) {
  ParseOutcome out = parse({"--vlan", "10:1", "--mode", "bidir", "--size", "1514", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  EXPECT_EQ(plans[1].rx_from[0].size, 1518u);  // 0 -> 1: pushed
  EXPECT_EQ(plans[1].rx_from[0].sent_size, 1514u);
  EXPECT_EQ(plans[0].rx_from[1].size, 1510u);  // 1 -> 0: popped
  EXPECT_EQ(plans[0].rx_from[1].sent_size, 1510u);
}

TEST(BenchPlanTest, EveryPortTaggedReceivesWhatWasSent) {
  ParseOutcome out = parse({"--vlan", "10", "--size", "64", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  EXPECT_EQ(plans[1].rx_from[0].size, 64u);
  EXPECT_EQ(plans[1].rx_from[0].sent_size, 60u);
}

TEST(BenchReportTest, ReportsSayTheVlanSetting) {
  BenchReport r;
  r.target = "unix:/x";
  r.size = 64;
  r.ports = 2;
  r.completed = true;
  EXPECT_NE(format_json(r).find("\"ports\":2,\"vlan\":null,\"tagged_ports\":[],\"seconds\""),
            std::string::npos)
      << format_json(r);
  EXPECT_EQ(format_human(r).find("vlan"), std::string::npos);

  r.vlan = 10;
  r.vlan_ports = 1;
  r.vlan_text = "10:0";
  EXPECT_NE(format_json(r).find("\"vlan\":10,\"tagged_ports\":[0],"), std::string::npos)
      << format_json(r);
  EXPECT_NE(format_human(r).find("ports=2 vlan=10:0 time="), std::string::npos) << format_human(r);
  r.vlan_ports = 3;
  EXPECT_NE(format_json(r).find("\"tagged_ports\":[0,1]"), std::string::npos);
}

TEST(BenchOptionsTest, SpreadModeIsAccepted) {
  ParseOutcome out = parse({"--mode", "spread", "--ports", "8", "unix:/tmp/x"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->mode, BenchMode::kSpread);
  EXPECT_EQ(mode_name(out.options->mode), "spread");
  EXPECT_EQ(refusal({"--mode=spread", "unix:/a,unix:/b,unix:/c"}), "");
  EXPECT_NE(bench_usage().find("spread: every port sends to each of the others in turn"),
            std::string::npos);
}

TEST(BenchOptionsTest, BadModeNamesTheValueAndEveryMode) {
  EXPECT_EQ(refusal({"--mode", "spray", "unix:/x"}),
            "bad --mode 'spray': expected pair, bidir, mesh or spread");
  EXPECT_EQ(refusal({"--mode", "", "unix:/x"}),
            "bad --mode '': expected pair, bidir, mesh or spread");
}

TEST(BenchOptionsTest, CpuPidTakesAProcessId) {
  ParseOutcome out = parse({"unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->cpu_pid, 0);
  out = parse({"--cpu-pid", "1234", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->cpu_pid, 1234);
  out = parse({"--cpu-pid=4194304", "--direct"});
  ASSERT_TRUE(out.options) << out.error;
  EXPECT_EQ(out.options->cpu_pid, 4194304);
  for (const char* bad : {"0", "-1", "4194305", "12x", "", "pid"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(
        refusal({"--cpu-pid", bad, "unix:/x"}),
        "bad --cpu-pid '" + std::string(bad) + "': expected a process id, an integer 1..4194304");
  }
  EXPECT_EQ(refusal({"unix:/x", "--cpu-pid"}), "--cpu-pid needs a value");
  EXPECT_NE(bench_usage().find("--cpu-pid PID"), std::string::npos);
  EXPECT_NE(bench_usage().find("switch_cpu_ns_per_frame"), std::string::npos);
}

TEST(BenchPlanTest, SpreadSendsToEveryOtherPortInTurn) {
  ParseOutcome out = parse({"--mode", "spread", "--ports", "8", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  ASSERT_EQ(plans.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) {
    SCOPED_TRACE(i);
    const PortPlan& p = plans[i];
    ASSERT_EQ(p.send_to.size(), 7u);
    // The k-th of the other seven; and it hears from everyone else.
    for (uint32_t k = 0; k < 7; ++k) EXPECT_EQ(p.send_to[k], (i + 1 + k) % 8);
    EXPECT_EQ(p.senders, 0xffu & ~(1u << i));
    ASSERT_EQ(p.rx_from.size(), 8u);
    EXPECT_EQ(p.rx_from[(i + 1) % 8].size, 64u);
    EXPECT_TRUE(p.sends());
    EXPECT_TRUE(p.receives());
  }
}

TEST(BenchPlanTest, SpreadWithOnePortTaggedExpectsEachSendersForm) {
  ParseOutcome out =
      parse({"--mode", "spread", "--vlan", "10:0", "--size", "1514", "unix:/a,unix:/b,unix:/c"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  // Port 1 (untagged) gets port 0's frames popped and port 2's as sent.
  EXPECT_EQ(plans[1].rx_from[0].size, 1510u);
  EXPECT_EQ(plans[1].rx_from[0].sent_size, 1510u);
  EXPECT_EQ(plans[1].rx_from[2].size, 1514u);
  // Port 0 (tagged) gets both pushed.
  EXPECT_EQ(plans[0].rx_from[1].size, 1518u);
  EXPECT_EQ(plans[0].rx_from[2].size, 1518u);
  EXPECT_EQ(plans[0].rx_from[2].sent_size, 1514u);
}

TEST(BenchPlanTest, PairBidirAndMeshKeepOneReceiverEach) {
  ParseOutcome out = parse({"--ports", "3", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  EXPECT_EQ(plans[0].send_to, std::vector<uint32_t>{1});
  EXPECT_EQ(plans[1].senders, 1u);
  EXPECT_FALSE(plans[1].sends());
  EXPECT_FALSE(plans[2].receives());  // only listens

  out = parse({"--mode", "bidir", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  plans = plan_ports(*out.options);
  EXPECT_EQ(plans[0].send_to, std::vector<uint32_t>{1});
  EXPECT_EQ(plans[1].send_to, std::vector<uint32_t>{0});
  EXPECT_EQ(plans[0].senders, 2u);

  out = parse({"--mode", "mesh", "--ports", "4", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  plans = plan_ports(*out.options);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(plans[i].send_to, std::vector<uint32_t>{(i + 1) % 4});
    EXPECT_EQ(plans[i].senders, uint64_t{1} << ((i + 3) % 4));
  }
}

TEST(BenchPlanTest, FramesSentToCountsEachReceiversTurns) {
  ParseOutcome out = parse({"--mode", "spread", "--ports", "8", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  // Port 0's frames 0..14 go to 1, 2, ..., 7, 1, 2, ...: frames 0, 7 and 14 to port 1.
  EXPECT_EQ(frames_sent_to(plans[0], 15, 1), 3u);
  EXPECT_EQ(frames_sent_to(plans[0], 15, 2), 2u);
  EXPECT_EQ(frames_sent_to(plans[0], 15, 7), 2u);
  EXPECT_EQ(frames_sent_to(plans[0], 15, 0), 0u);  // not to itself
  uint64_t total = 0;
  for (uint32_t r = 0; r < 8; ++r) total += frames_sent_to(plans[0], 15, r);
  EXPECT_EQ(total, 15u);
  EXPECT_EQ(frames_sent_to(plans[3], 0, 4), 0u);
  EXPECT_EQ(frames_sent_to(plans[3], 1, 4), 1u);
  EXPECT_EQ(frames_sent_to(plans[3], 1, 5), 0u);

  out = parse({"unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  plans = plan_ports(*out.options);
  EXPECT_EQ(frames_sent_to(plans[0], 1000, 1), 1000u);
  EXPECT_EQ(frames_sent_to(plans[1], 1000, 0), 0u);  // port 1 sends nothing in pair mode
}

TEST(BenchReportTest, SwitchCpuIsNullWithoutCpuPidAndPerFrameWithIt) {
  BenchReport r;
  r.target = "unix:/x";
  r.mode = BenchMode::kSpread;
  r.size = 64;
  r.ports = 8;
  r.seconds = 1;
  r.rx_frames = 2'000'000;
  r.completed = true;
  EXPECT_NE(format_json(r).find("\"mode\":\"spread\""), std::string::npos) << format_json(r);
  EXPECT_NE(
      format_json(r).find("\"foreign\":0,\"switch_cpu_s\":null,\"switch_cpu_ns_per_frame\":null,"
                          "\"completed\":true}"),
      std::string::npos)
      << format_json(r);
  EXPECT_EQ(format_human(r).find("cpu"), std::string::npos) << format_human(r);

  r.cpu_measured = true;
  r.cpu_seconds = 0.5;  // 0.5 s over 2 M frames: 250 ns each
  EXPECT_NE(format_json(r).find("\"switch_cpu_s\":0.500000,\"switch_cpu_ns_per_frame\":250.0,"),
            std::string::npos)
      << format_json(r);
  EXPECT_NE(format_human(r).find(" foreign=0 switch_cpu=0.500s (250.0 ns/frame)"),
            std::string::npos)
      << format_human(r);

  r.rx_frames = 0;  // measured, but nothing to divide by
  EXPECT_NE(format_json(r).find("\"switch_cpu_s\":0.500000,\"switch_cpu_ns_per_frame\":null"),
            std::string::npos)
      << format_json(r);
  EXPECT_NE(format_human(r).find("switch_cpu=0.500s"), std::string::npos);
  EXPECT_EQ(format_human(r).find("ns/frame"), std::string::npos);
}

}  // namespace
}  // namespace qswitch::tools
