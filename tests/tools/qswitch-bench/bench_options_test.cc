// tests/tools/qswitch-bench/bench_options_test.cc: qswitch-bench's --vlan option, the port plan
// it leads to (who tags, what each receiver expects) and how the report says it.
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
  EXPECT_EQ(plans[1].rx_sent_size, 58u);  // the untagged frame
  EXPECT_EQ(plans[1].rx_size, 60u);       // padded
}

TEST(BenchPlanTest, BidirWithOnePortTaggedExpectsPushAndPop) {
  ParseOutcome out = parse({"--vlan", "10:1", "--mode", "bidir", "--size", "1514", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  EXPECT_EQ(plans[1].rx_size, 1518u);  // 0 -> 1: pushed
  EXPECT_EQ(plans[1].rx_sent_size, 1514u);
  EXPECT_EQ(plans[0].rx_size, 1510u);  // 1 -> 0: popped
  EXPECT_EQ(plans[0].rx_sent_size, 1510u);
}

TEST(BenchPlanTest, EveryPortTaggedReceivesWhatWasSent) {
  ParseOutcome out = parse({"--vlan", "10", "--size", "64", "unix:/x"});
  ASSERT_TRUE(out.options) << out.error;
  std::vector<PortPlan> plans = plan_ports(*out.options);
  EXPECT_EQ(plans[1].rx_size, 64u);
  EXPECT_EQ(plans[1].rx_sent_size, 60u);
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

}  // namespace
}  // namespace qswitch::tools
