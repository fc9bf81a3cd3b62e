// tests/e2e/exec_e2e_test.cc: a real QEMU guest started by `qswitch exec`: no socket path, a
// socketpair end passed to the switch over the control socket (port.attach), the other to QEMU
// as -netdev dgram local.type=fd; and with --type vhost-user, QEMU's vhost-user chardev
// connected to the launcher's private socket, that connection attached. It pings a guest on a
// stream port of the same switch; when it powers off (QEMU exits, the launcher exits with it)
// `ports` no longer lists its port.
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/guest_lab.h"
#include "tests/support/control_client.h"

namespace qswitch::e2e {
namespace {

using nlohmann::json;
using test_support::ControlClient;

class ExecE2eTest : public GuestLabTest {
 protected:
  // The `ports` rows, or an empty array after a failure it reports.
  json ports(ControlClient& ctl) {
    const test_support::LineResult r = ctl.request(R"({"cmd":"ports"})");
    json reply = r.ok() ? json::parse(r.line, nullptr, false) : json();
    if (!reply.is_object() || !reply.value("ok", false)) {
      ADD_FAILURE() << "ports: " << to_string(r.status) << " " << r.line << r.error;
      return json::array();
    }
    return reply["result"];
  }

  // A guest launched by `qswitch exec --type TYPE` pings a stream guest; when it powers off
  // its port goes.
  void run(const std::string& type) {
    const std::string sock = dir_.file("sw.sock");
    ASSERT_NO_FATAL_FAILURE(start_switch({"--listen", "unix:" + sock}));
    const std::string ctl_path = dir_.file("sw.ctl");
    ASSERT_EQ(qswitch_.control(), "unix:" + ctl_path);

    GuestOptions launched = guest_options(1, "");
    launched.launcher = {qswitch_binary(), "exec",       "--switch", ctl_path, "--type", type,
                         "--mac",          launched.mac, "--"};
    ASSERT_NO_FATAL_FAILURE(start_guest(launched));
    ASSERT_NO_FATAL_FAILURE(start_guest(guest_options(2, unix_netdev(sock, false))));
    ASSERT_NO_FATAL_FAILURE(wait_all_ready());
    ASSERT_NO_FATAL_FAILURE(expect_every_pair_pings());

    std::string error;
    std::optional<ControlClient> ctl = ControlClient::connect(ctl_path, &error);
    ASSERT_TRUE(ctl.has_value()) << error;
    json rows = ports(*ctl);
    ASSERT_EQ(rows.size(), 2u) << rows.dump();
    json exec_row;
    for (const json& r : rows) {
      if (r.value("kind", "") == type) exec_row = r;
    }
    ASSERT_TRUE(exec_row.is_object())
        << "no " << type << " port for the exec'd guest: " << rows.dump();
    EXPECT_EQ(exec_row.value("peer", "").rfind("exec:qemu-system-x86_64", 0), 0u)
        << exec_row.dump();
    EXPECT_NE(exec_row["macs"].dump().find(launched.mac), std::string::npos) << exec_row.dump();

    // The guest powers off: QEMU exits (-no-reboot), the launcher with it, the port goes.
    guests_[0]->send("poweroff -f");
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline) {
      rows = ports(*ctl);
      if (rows.size() == 1) break;
      std::this_thread::sleep_for(200ms);
    }
    ASSERT_EQ(rows.size(), 1u) << "the exec'd guest's port is still listed: " << rows.dump()
                               << guests_[0]->diagnostics();
    EXPECT_EQ(rows[0].value("kind", ""), "stream") << rows.dump();
    const std::string down =
        "port " + exec_row["id"].dump() + " down: " + exec_row.value("peer", std::string("?"));
    EXPECT_TRUE(qswitch_.wait_for_stderr(down, 5s).has_value()) << qswitch_.stderr_text();
  }
};

TEST_F(ExecE2eTest, GuestLaunchedByExecPingsAStreamGuestAndItsPortGoesWhenItExits) { run("dgram"); }

// The same with --type vhost-user: exec adds QEMU's memory as a shared memfd (its -m), a chardev
// to the launcher's private socket and vectors=0 under TCG; the port is a vhost-user one.
TEST_F(ExecE2eTest, VhostUserGuestLaunchedByExecPingsAStreamGuestAndItsPortGoesWhenItExits) {
  run("vhost-user");
}

}  // namespace
}  // namespace qswitch::e2e
