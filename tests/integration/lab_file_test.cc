// tests/integration/lab_file_test.cc: qswitch started from a lab file (`--config lab.toml`,
// docs/lab-file.md) as a user starts it: its listeners and control socket are the file's, frames
// cross between its ports, `ports` lists them; `--check` prints a configuration that starts the
// same switch; an invalid file is exit status 2 with FILE:LINE:COLUMN on stderr, and nothing
// starts.
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using test_support::test_mac;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class LabFileSwitchTest : public SwitchFixture {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    std::string path = tmp_.file(name);
    std::ofstream(path) << text;
    return path;
  }
  // A lab with two listeners (a.sock, b.sock), its control socket lab.ctl and no slirp port.
  std::string two_listener_lab() {
    const std::string dir = tmp_.path();
    return "[switch]\ncontrol = \"unix:" + dir + "/lab.ctl\"\nslirp = false\n\n" +
           "[[listen]]\naddress = \"unix:" + dir + "/a.sock\"\nname = \"a\"\n\n" +
           "[[listen]]\naddress = \"unix:" + dir + "/b.sock\"\nname = \"b\"\n";
  }
  // Runs qswitch ARGS to its exit (within 5 s), with its stderr in a file of its own.
  std::optional<int> run_to_exit(std::vector<std::string> args, QswitchProcess* p) {
    LaunchOptions o = launch_options(std::move(args));
    o.stderr_path = tmp_.file("run-" + std::to_string(runs_++) + ".stderr");
    if (!p->launch(o)) return std::nullopt;
    return p->wait_exit(5s);
  }
  size_t runs_ = 0;
};

TEST_F(LabFileSwitchTest, StartsTheFilesListenersAndControlSocketAndForwardsBetweenThem) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string lab = write("lab.toml", two_listener_lab());
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab}))) << sw_.error();
  const std::string a = "unix:" + tmp_.file("a.sock");
  const std::string b = "unix:" + tmp_.file("b.sock");
  EXPECT_EQ(sw_.listening(), (std::vector<std::string>{a, b})) << sw_.stdout_text();
  EXPECT_EQ(sw_.control(), "unix:" + tmp_.file("lab.ctl"));

  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, a));
  ASSERT_TRUE(connect_clients(1, &c, b));
  ASSERT_TRUE(announce(c, {test_mac(1), test_mac(2)}));
  ASSERT_TRUE(send_and_expect(c[0], c[1], test_mac(2), test_mac(1), 300, 1));
  ASSERT_TRUE(send_and_expect(c[1], c[0], test_mac(1), test_mac(2), 1500, 2));

  // The file's two listeners are the two endpoints; no slirp port (slirp = false).
  const nlohmann::json ports = control_result(sw_, {{"cmd", "ports"}});
  ASSERT_TRUE(ports.is_array()) << ports;
  EXPECT_EQ(ports.size(), 2u) << ports;
  const nlohmann::json row_a = port_with_mac(sw_, test_mac(1));
  const nlohmann::json row_b = port_with_mac(sw_, test_mac(2));
  EXPECT_EQ(row_a.value("endpoint", ""), "listen-1") << row_a;
  EXPECT_EQ(row_b.value("endpoint", ""), "listen-2") << row_b;
  EXPECT_EQ(row_a.value("kind", ""), "stream") << row_a;
  EXPECT_GE(port_counter(row_b, "rx_frames"), 2u) << row_b;
}

TEST_F(LabFileSwitchTest, CheckPrintsAConfigurationThatStartsTheSameSwitch) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string lab = write("lab.toml", two_listener_lab());
  QswitchProcess check;
  ASSERT_EQ(run_to_exit({"--config", lab, "--check", "--mac-age", "77"}, &check),
            std::optional<int>(0))
      << check.stderr_text();
  const std::string resolved = check.stdout_text();
  EXPECT_NE(resolved.find("mac-age = 77\n"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("name = \"b\"\n"), std::string::npos) << resolved;
  EXPECT_FALSE(exists(tmp_.file("a.sock"))) << "--check started a listener";

  ASSERT_TRUE(sw_.start(launch_options({"--config", write("resolved.toml", resolved)})))
      << sw_.error();
  const std::string b = "unix:" + tmp_.file("b.sock");
  EXPECT_EQ(sw_.listening(), (std::vector<std::string>{"unix:" + tmp_.file("a.sock"), b}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(2, &c, b));
  ASSERT_TRUE(announce(c, {test_mac(3), test_mac(4)}));
}

TEST_F(LabFileSwitchTest, AnInvalidFileIsExitStatusTwoWithFileLineColumnAndNothingStarts) {
  ASSERT_FALSE(tmp_.path().empty());
  const std::string ok_sock = tmp_.file("ok.sock");
  const std::string bad = write("bad.toml", "[[listen]]\naddress = \"unix:" + ok_sock + "\"\n" +
                                                "[[listen]]\naddress = \"udp:x\"\n");
  QswitchProcess check;
  ASSERT_EQ(run_to_exit({"--config", bad, "--check"}, &check), std::optional<int>(2));
  const std::string err = check.stderr_text();
  EXPECT_NE(
      err.find(bad + ":4:11: listen[1].address: 'udp:x': expected unix:PATH or tcp:HOST:PORT"),
      std::string::npos)
      << err;
  EXPECT_EQ(check.stdout_text(), "");

  QswitchProcess run;
  ASSERT_EQ(run_to_exit({"--config", bad}, &run), std::optional<int>(2));
  EXPECT_NE(run.stderr_text().find(bad + ":4:11: "), std::string::npos) << run.stderr_text();
  EXPECT_FALSE(exists(ok_sock)) << "a listener of an invalid file was started";

  QswitchProcess missing;
  ASSERT_EQ(run_to_exit({"--config", tmp_.file("none.toml"), "--check"}, &missing),
            std::optional<int>(2));
  EXPECT_NE(missing.stderr_text().find(tmp_.file("none.toml") + ": cannot read the lab file"),
            std::string::npos)
      << missing.stderr_text();
}

}  // namespace
}  // namespace qswitch::integration
