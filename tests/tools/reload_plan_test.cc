// tests/tools/reload_plan_test.cc: the reload plan (reload_plan.h) from two lab files alone:
// matching by identity, unchanged / changed in place / restarted / added / removed, the slirp
// host forward diff, and the switch-wide settings that make a reload fail.
#include "tools/qswitch/services/reload_plan.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qswitch::tools {
namespace {

LabFile lab_of(std::string_view text) {
  LabFileResult r = parse_lab_file(text, "lab.toml");
  EXPECT_TRUE(r.lab) << r.error;
  return r.lab ? std::move(*r.lab) : LabFile{};
}

std::vector<std::string> labels(const std::vector<ReloadItem>& items) {
  std::vector<std::string> out;
  for (const ReloadItem& i : items) out.push_back(i.label());
  return out;
}

using Strings = std::vector<std::string>;

constexpr std::string_view kBase = R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[listen]]
address = "unix:/run/lab/b.sock"
vlan = 10
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:8080-:80", "tcp:127.0.0.1:2222-:22"]
)";

TEST(ReloadPlanTest, SameFileChangesNothing) {
  const ReloadPlan plan = plan_reload(lab_of(kBase), lab_of(kBase));
  EXPECT_EQ(plan.error, "");
  EXPECT_TRUE(plan.no_change());
  EXPECT_EQ(labels(plan.unchanged),
            (Strings{"listen unix:/run/lab/a.sock", "listen unix:/run/lab/b.sock",
                     "connect tcp:127.0.0.1:7000", "slirp vlan=10"}));
}

TEST(ReloadPlanTest, MatchesByIdentityNotPosition) {
  // The same two listeners, written the other way round: nothing to do.
  const LabFile swapped = lab_of(R"(
[[listen]]
address = "unix:/run/lab/b.sock"
vlan = 10
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:2222-:22", "tcp:127.0.0.1:8080-:80"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), swapped);
  EXPECT_TRUE(plan.no_change());
  ASSERT_EQ(plan.unchanged.size(), 4u);
  EXPECT_EQ(plan.unchanged[0].identity, "unix:/run/lab/b.sock");
  EXPECT_EQ(plan.unchanged[0].old_index, 1u);
  EXPECT_EQ(plan.unchanged[0].new_index, 0u);
}

TEST(ReloadPlanTest, AddsAndRemovesListeners) {
  const LabFile next = lab_of(R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[listen]]
address = "unix:/run/lab/c.sock"
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:8080-:80", "tcp:127.0.0.1:2222-:22"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), next);
  EXPECT_EQ(plan.error, "");
  EXPECT_EQ(labels(plan.added), Strings{"listen unix:/run/lab/c.sock"});
  EXPECT_EQ(plan.added[0].new_index, 1u);
  EXPECT_EQ(labels(plan.removed), Strings{"listen unix:/run/lab/b.sock"});
  EXPECT_EQ(plan.removed[0].old_index, 1u);
  EXPECT_TRUE(plan.changed.empty());
  EXPECT_TRUE(plan.restarted.empty());
  EXPECT_EQ(plan.unchanged.size(), 3u);
}

TEST(ReloadPlanTest, VlanSecurityAndNameChangeInPlace) {
  const LabFile next = lab_of(R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "frontend"
[[listen]]
address = "unix:/run/lab/b.sock"
trunk = "10,20"
port-security = true
[[connect]]
address = "tcp:127.0.0.1:7000"
vlan = 30
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:8080-:80", "tcp:127.0.0.1:2222-:22"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), next);
  EXPECT_TRUE(plan.added.empty());
  EXPECT_TRUE(plan.removed.empty());
  EXPECT_TRUE(plan.restarted.empty());
  ASSERT_EQ(plan.changed.size(), 3u);
  EXPECT_EQ(plan.changed[0].label(), "listen unix:/run/lab/a.sock");
  EXPECT_EQ(plan.changed[0].what, Strings{"name"});
  EXPECT_EQ(plan.changed[1].label(), "listen unix:/run/lab/b.sock");
  EXPECT_EQ(plan.changed[1].what, (Strings{"vlan", "port-security"}));
  EXPECT_EQ(plan.changed[2].label(), "connect tcp:127.0.0.1:7000");
  EXPECT_EQ(plan.changed[2].what, Strings{"vlan"});
}

TEST(ReloadPlanTest, SlirpForwardsAreEditedInPlace) {
  const LabFile next = lab_of(R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[listen]]
address = "unix:/run/lab/b.sock"
vlan = 10
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:8080-:8000", "udp:127.0.0.1:5353-:53"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), next);
  ASSERT_EQ(plan.changed.size(), 1u);
  const ReloadItem& s = plan.changed[0];
  EXPECT_EQ(s.label(), "slirp vlan=10");
  EXPECT_EQ(s.what, Strings{"hostfwd"});
  Strings removed, added;
  for (const auto& f : s.hostfwd_remove) removed.push_back(f.to_string());
  for (const auto& f : s.hostfwd_add) added.push_back(f.to_string());
  // 8080 goes to another guest port: stopped and started again, under the same host socket.
  EXPECT_EQ(removed, (Strings{"tcp:127.0.0.1:8080-:80", "tcp:127.0.0.1:2222-:22"}));
  EXPECT_EQ(added, (Strings{"tcp:127.0.0.1:8080-:8000", "udp:127.0.0.1:5353-:53"}));
  EXPECT_TRUE(plan.restarted.empty());
}

TEST(ReloadPlanTest, SlirpDnsRecordsAreEditedInPlace) {
  const std::string before = R"(
[[slirp]]
dns-record = ["files=10.0.2.100", "old=10.0.2.101"]
lease = ["52:54:00:00:00:01:10.0.2.20:web1"]
)";
  const LabFile next = lab_of(R"(
[[slirp]]
dns-record = ["files=10.0.2.100", "files=fec0::100", "new=10.0.2.102"]
lease = ["52:54:00:00:00:01:10.0.2.20:web1"]
)");
  const ReloadPlan plan = plan_reload(lab_of(before), next);
  ASSERT_EQ(plan.changed.size(), 1u);
  const ReloadItem& s = plan.changed[0];
  EXPECT_EQ(s.what, Strings{"dns-record"});
  Strings removed, added;
  for (const auto& r : s.dns_record_remove) removed.push_back(r.name + "=" + r.addr.to_string());
  for (const auto& r : s.dns_record_add) added.push_back(r.name + "=" + r.addr.to_string());
  EXPECT_EQ(removed, Strings{"old=10.0.2.101"});
  EXPECT_EQ(added, (Strings{"files=fec0::100", "new=10.0.2.102"}));
  EXPECT_TRUE(plan.restarted.empty());
  // A lease's name is a DHCP setting: the port restarts (leases are the DHCP server's).
  const ReloadPlan renamed = plan_reload(lab_of(before), lab_of(R"(
[[slirp]]
dns-record = ["files=10.0.2.100", "old=10.0.2.101"]
lease = ["52:54:00:00:00:01:10.0.2.20:web2"]
)"));
  ASSERT_EQ(renamed.restarted.size(), 1u);
  EXPECT_EQ(renamed.restarted[0].what, Strings{"settings"});
}

TEST(ReloadPlanTest, OtherSlirpSettingsRestartThePort) {
  const LabFile next = lab_of(R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[listen]]
address = "unix:/run/lab/b.sock"
vlan = 10
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 10
net = "10.0.10.0/24"
restrict = true
hostfwd = ["tcp:127.0.0.1:8080-:80"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), next);
  EXPECT_TRUE(plan.changed.empty());
  ASSERT_EQ(plan.restarted.size(), 1u);
  EXPECT_EQ(plan.restarted[0].label(), "slirp vlan=10");
  EXPECT_EQ(plan.restarted[0].what, Strings{"settings"});
}

TEST(ReloadPlanTest, SlirpOnAnotherVlanIsAnotherPort) {
  const LabFile next = lab_of(R"(
[[listen]]
address = "unix:/run/lab/a.sock"
name = "web"
[[listen]]
address = "unix:/run/lab/b.sock"
vlan = 10
[[connect]]
address = "tcp:127.0.0.1:7000"
[[slirp]]
vlan = 20
net = "10.0.10.0/24"
hostfwd = ["tcp:127.0.0.1:8080-:80", "tcp:127.0.0.1:2222-:22"]
)");
  const ReloadPlan plan = plan_reload(lab_of(kBase), next);
  EXPECT_EQ(labels(plan.added), Strings{"slirp vlan=20"});
  EXPECT_EQ(labels(plan.removed), Strings{"slirp vlan=10"});
}

TEST(ReloadPlanTest, DatagramVlanChangeRestartsTheSocket) {
  const LabFile a = lab_of("[[dgram]]\naddress = \"unix:/run/lab/d.sock\"\n");
  const LabFile b = lab_of("[[dgram]]\naddress = \"unix:/run/lab/d.sock\"\nvlan = 4\n");
  const LabFile c = lab_of("[[dgram]]\naddress = \"unix:/run/lab/d.sock\"\nname = \"lab\"\n");
  const ReloadPlan vlan = plan_reload(a, b);
  ASSERT_EQ(vlan.restarted.size(), 1u);
  EXPECT_EQ(vlan.restarted[0].what, Strings{"vlan"});
  const ReloadPlan renamed = plan_reload(a, c);
  ASSERT_EQ(renamed.changed.size(), 1u);
  EXPECT_EQ(renamed.changed[0].what, Strings{"name"});
}

TEST(ReloadPlanTest, TapAndVxlanMatchByNameAndVni) {
  const LabFile a = lab_of(R"(
[[tap]]
ifname = "qs0"
[[vxlan]]
vni = 42
local = "127.0.0.1:4789"
remote = ["127.0.0.2:4789"]
)");
  const LabFile b = lab_of(R"(
[[tap]]
ifname = "qs0"
vlan = 3
[[vxlan]]
vni = 42
local = "127.0.0.1:4789"
remote = ["127.0.0.3:4789"]
[[vxlan]]
vni = 43
local = "127.0.0.1:4790"
remote = ["127.0.0.2:4789"]
)");
  const ReloadPlan plan = plan_reload(a, b);
  ASSERT_EQ(plan.changed.size(), 1u);
  EXPECT_EQ(plan.changed[0].label(), "tap qs0");
  EXPECT_EQ(plan.changed[0].what, Strings{"vlan"});
  // Another remote is more than membership: the port restarts.
  EXPECT_EQ(labels(plan.restarted), Strings{"vxlan vni=42 local=127.0.0.1:4789"});
  EXPECT_EQ(labels(plan.added), Strings{"vxlan vni=43 local=127.0.0.1:4790"});
}

TEST(ReloadPlanTest, DuplicateIdentitiesMatchInOrder) {
  const LabFile a = lab_of(R"(
[[connect]]
address = "tcp:127.0.0.1:7000"
[[connect]]
address = "tcp:127.0.0.1:7000"
vlan = 5
)");
  const LabFile b = lab_of(R"(
[[connect]]
address = "tcp:127.0.0.1:7000"
)");
  const ReloadPlan plan = plan_reload(a, b);
  EXPECT_EQ(plan.unchanged.size(), 1u);
  ASSERT_EQ(plan.removed.size(), 1u);
  EXPECT_EQ(plan.removed[0].old_index, 1u);
}

TEST(ReloadPlanTest, SwitchSettingsThatCannotChangeLiveFailNamingTheKey) {
  const struct {
    const char* key;
    const char* line;
  } cases[] = {
      {"switch.control", "control = \"unix:/run/lab/other.ctl\""},
      {"switch.metrics", "metrics = \"tcp:127.0.0.1:9100\""},
      {"switch.pcap", "pcap = \"/tmp/lab.pcap\""},
      {"switch.queue-size", "queue-size = 2097152"},
      {"switch.mac-age", "mac-age = 60"},
      {"switch.mac-max", "mac-max = 100"},
  };
  const LabFile running = lab_of(kBase);
  for (const auto& c : cases) {
    const LabFile next = lab_of("[switch]\n" + std::string(c.line) + "\n" + std::string(kBase));
    const ReloadPlan plan = plan_reload(running, next);
    EXPECT_EQ(plan.error.rfind(std::string(c.key) + ": ", 0), 0u) << plan.error;
    EXPECT_NE(plan.error.find("restart qswitch to change it"), std::string::npos) << plan.error;
    EXPECT_TRUE(plan.no_change() && plan.unchanged.empty()) << c.key;
  }
  // guests shapes only the join lines printed at start.
  const ReloadPlan guests =
      plan_reload(running, lab_of("[switch]\nguests = 5\n" + std::string(kBase)));
  EXPECT_EQ(guests.error, "");
}

}  // namespace
}  // namespace qswitch::tools
