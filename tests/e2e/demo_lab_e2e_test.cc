// tests/e2e/demo_lab_e2e_test.cc: the example lab (docs/lab-example.toml) started from its lab
// file by `tools/demo --skip-deps --skip-build --lab docs/lab-example.toml`, as the README shows:
// the demo runs qswitch --config in a network namespace of its own, boots the lab's three guests
// and prints one "ok"/"FAIL" line per check. The test asserts its exit status 0, the check
// lines that say what the lab is (DHCP addresses from VLAN 10's pool, the fixed lease, pings
// within VLAN 10, none from the database VLAN, the forward from 127.0.0.1:8080, the trunk's host
// side reaching both tiers), no FAIL line, and that its namespace is gone afterwards.
// Needs root (the demo's namespace and the lab's tap): otherwise it fails saying so.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/guest.h"
#include "tests/e2e/subprocess.h"
#include "tests/support/temp_dir.h"

namespace qswitch::e2e {
namespace {

using namespace std::chrono_literals;

TEST(DemoLabE2eTest, TheExampleLabStartedFromItsFilePassesEveryCheck) {
  ASSERT_EQ(::geteuid(), 0u) << "tools/demo --lab needs root (it creates a network namespace and "
                                "the lab's tap): run this test as root";
  const std::string missing = missing_e2e_prerequisites();
  ASSERT_EQ(missing, "") << "end-to-end tests need: " << missing;
  ASSERT_EQ(::access(qswitch_binary().c_str(), X_OK), 0)
      << "qswitch binary " << qswitch_binary() << " is missing (build target qswitch)";
  test_support::TempDir dir("qs-demo-lab-e2e-");
  ASSERT_FALSE(dir.path().empty());

  const std::string source = QS_SOURCE_DIR;
  std::string error;
  std::unique_ptr<Subprocess> demo =
      Subprocess::spawn({"env", std::string("QS_BUILD_DIR=") + QS_BUILD_DIR, source + "/tools/demo",
                         "--skip-deps", "--skip-build", "--lab", source + "/docs/lab-example.toml"},
                        dir.file("demo.err"), &error);
  ASSERT_NE(demo, nullptr) << error;
  const pid_t demo_pid = demo->pid();
  // The demo bounds its own waits (boots 120 s, commands 60 s); this bounds the whole.
  demo->wait_for([](const std::string&) { return false; }, 240s);  // until EOF
  const std::optional<int> status = demo->wait_exit(30s);
  const std::string out = demo->output();
  const std::string err = read_text_file(dir.file("demo.err"));
  std::cout << out;
  ASSERT_TRUE(status.has_value()) << "tools/demo did not exit within 270 s\n" << err;
  EXPECT_EQ(describe_wait_status(*status), "exit 0") << out << "\nstderr:\n" << err;

  const std::vector<std::string> expected = {
      "ok    web1 got 10.0.10.10 by DHCP, in VLAN 10's pool 10.0.10.0/24",  // its fixed lease
      "ok    web2 got 10.0.10.100 by DHCP, in VLAN 10's pool",              // dhcpstart
      "ok    db1 is up at 10.0.20.10/24 (static)",
      "ok    web1 -> web2 (10.0.10.100): 3/3 replies (VLAN 10)",
      "ok    web2 -> web1 (10.0.10.10): 3/3 replies (VLAN 10)",
      "ok    web1 -> the gateway 10.0.10.2: 3/3 replies (VLAN 10)",
      "ok    db1 (VLAN 20) -> web1 (VLAN 10, 10.0.10.10): 0/3 replies, no ARP entry",
      "ok    db1 (VLAN 20) -> web2 (VLAN 10, 10.0.10.100): 0/3 replies, no ARP entry",
      "ok    web1 (VLAN 10) -> db1 (VLAN 20, 10.0.20.10): 0/3 replies, no ARP entry",
      "ok    http://127.0.0.1:8080/ (forward tcp:127.0.0.1:8080-10.0.10.10:80) serves web1's page",
      "-> web1 (VLAN 10, 10.0.10.10): 3/3 replies",  // the trunk's host side, tagged 10
      "-> web2 (VLAN 10, 10.0.10.100): 3/3 replies",
      "-> db1 (VLAN 20, 10.0.20.10): 3/3 replies",  // and tagged 20
      "OK: every check of the lab passed",
  };
  for (const std::string& line : expected) {
    EXPECT_NE(out.find(line), std::string::npos) << "expected '" << line << "' in:\n" << out;
  }
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
  struct stat st {};
  const std::string ns = "/run/netns/qswitch-demo-" + std::to_string(demo_pid);
  EXPECT_NE(::stat(ns.c_str(), &st), 0) << ns << " was left behind";
}

}  // namespace
}  // namespace qswitch::e2e
