// tests/integration/reload_test.cc: `qswitch ctl reload` and SIGHUP (docs/lab-file.md,
// "Reload") over real sockets: a qswitch started from a lab file, clients exchanging frames, the
// file edited, then reloaded. Connected clients keep their ports, ids and learned MACs and their
// frames still cross; an added listener accepts, a removed one refuses; a VLAN or port security
// change applies to the live port; a slirp host forward appears; slirp ports restart, join and
// leave with their control commands following; a datagram socket restarts for a VLAN change. An
// invalid file, a setting that cannot change live, and a new listener that cannot bind change
// nothing.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/loopback_port.h"

namespace qswitch::integration {
namespace {

using json = nlohmann::json;
using test_support::test_mac;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class ReloadTest : public SwitchFixture {
 protected:
  std::string dir() const { return tmp_.path(); }
  std::string sock(const std::string& name) const { return "unix:" + dir() + "/" + name; }
  void write_lab(const std::string& text) { std::ofstream(tmp_.file("lab.toml")) << text; }
  std::string lab_path() const { return dir() + "/lab.toml"; }

  // [switch] with the control socket lab.ctl and `extra` switch keys.
  std::string header(const std::string& extra = "") const {
    return "[switch]\ncontrol = \"unix:" + dir() + "/lab.ctl\"\n" + extra + "\n";
  }
  std::string listen(const std::string& name, const std::string& keys = "") const {
    return "[[listen]]\naddress = \"" + sock(name) + "\"\n" + keys + "\n";
  }

  // The whole reply to `request` (the error replies matter here).
  json reply_of(const json& request) {
    std::string error;
    auto ctl = test_support::ControlClient::connect(sw_.control(), &error);
    if (!ctl) {
      ADD_FAILURE() << "control connect: " << error;
      return json();
    }
    const test_support::LineResult r = ctl->request(request.dump());
    if (!r.ok()) {
      ADD_FAILURE() << "no reply to " << request.dump() << ": " << r.error;
      return json();
    }
    return json::parse(r.line, nullptr, false);
  }
  json reload() { return reply_of({{"cmd", "reload"}}); }

  // "port MAC VLAN" for every `macs` row: what the table holds, by port.
  std::vector<std::string> mac_table() {
    std::vector<std::string> rows;
    for (const json& r : control_result(sw_, {{"cmd", "macs"}})) {
      rows.push_back(std::to_string(r.value("port", 0u)) + " " + r.value("mac", "") + " " +
                     std::to_string(r.value("vlan", 0u)));
    }
    return rows;
  }
  // The endpoint ids of the listeners `stats` lists, with their addresses.
  std::vector<std::string> listeners() {
    std::vector<std::string> out;
    const json stats = control_result(sw_, {{"cmd", "stats"}});
    for (const json& r : stats["listeners"]) {
      const std::string endpoint = r.value("endpoint", "");
      if (endpoint == "control") continue;
      out.push_back(endpoint + " " + r.value("address", ""));
    }
    return out;
  }
  // Whether a stream client can connect to `address` now (one try, no retry).
  static bool accepts(const std::string& address) {
    std::string error;
    return FrameClient::connect(address, &error, 0ms).has_value();
  }
};

TEST_F(ReloadTest, KeepsUnchangedPortsConnectionsAndTheirMacs) {
  ASSERT_FALSE(dir().empty());
  const uint16_t fwd_port = test_support::free_loopback_tcp_port();
  ASSERT_NE(fwd_port, 0);
  const std::string slirp = "[[slirp]]\nrestrict = true\n";
  const std::string guest =
      "[[guest]]\nname = \"bee\"\nmac = \"" + test_support::mac_to_string(test_mac(2)) + "\"\n\n";
  write_lab(header() + guest + listen("a.sock", "name = \"a\"") + listen("b.sock") +
            listen("c.sock") + listen("e.sock") + slirp);
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  // a and b talk; c's guest will move to VLAN 20.
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("a.sock")));
  ASSERT_TRUE(connect_clients(1, &c, sock("b.sock")));
  ASSERT_TRUE(connect_clients(1, &c, sock("c.sock")));
  ASSERT_TRUE(announce(c, {test_mac(1), test_mac(2), test_mac(3)}));
  ASSERT_TRUE(send_and_expect(c[0], c[1], test_mac(2), test_mac(1), 300, 1));
  const json a_before = port_with_mac(sw_, test_mac(1));
  const json b_before = port_with_mac(sw_, test_mac(2));
  const json c_before = port_with_mac(sw_, test_mac(3));
  EXPECT_EQ(a_before["name"], "a") << a_before;
  EXPECT_TRUE(b_before["name"].is_null()) << b_before;
  // The [[guest]] name of the MAC b's client sends from.
  EXPECT_EQ(b_before["guests"], json::array({"bee"})) << b_before;
  EXPECT_EQ(a_before["guests"], json::array()) << a_before;
  bool named = false;
  for (const json& m : control_result(sw_, {{"cmd", "macs"}})) {
    if (m.value("mac", "") == test_support::mac_to_string(test_mac(2))) named = m["guest"] == "bee";
  }
  EXPECT_TRUE(named);
  const std::vector<std::string> macs_before = mac_table();
  // A listener added at run time: not the file's, so the reload leaves it alone.
  const json added = control_result(
      sw_, {{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", sock("x.sock")}}}});
  ASSERT_TRUE(added.is_object());

  // Edit: rename a, remove e, add d, c onto VLAN 20, a host forward on the slirp port.
  write_lab(header() + guest + listen("a.sock", "name = \"alpha\"") + listen("b.sock") +
            listen("c.sock", "vlan = 20") + listen("d.sock") + slirp +
            "hostfwd = [\"tcp:127.0.0.1:" + std::to_string(fwd_port) + "-:80\"]\n");
  const json r = reload();
  ASSERT_TRUE(r.value("ok", false)) << r;
  const json& result = r["result"];
  EXPECT_EQ(result["added"], json::array({"listen " + sock("d.sock")})) << r;
  EXPECT_EQ(result["removed"], json::array({"listen " + sock("e.sock")})) << r;
  EXPECT_EQ(result["changed"],
            json::array({"listen " + sock("a.sock") + ": name",
                         "listen " + sock("c.sock") + ": vlan", "slirp vlan=1: hostfwd"}))
      << r;
  EXPECT_EQ(result["unchanged"], json::array({"listen " + sock("b.sock")})) << r;
  EXPECT_EQ(result["restarted"], json::array()) << r;

  // a and b: the same ports, the same MACs learned on them, and frames still cross.
  const json a_after = port_with_mac(sw_, test_mac(1));
  const json b_after = port_with_mac(sw_, test_mac(2));
  EXPECT_EQ(a_after["id"], a_before["id"]);
  EXPECT_EQ(b_after["id"], b_before["id"]);
  EXPECT_EQ(a_after["name"], "alpha") << a_after;
  const json stats = control_result(sw_, {{"cmd", "stats"}});
  EXPECT_EQ(stats["listeners"][0].value("address", ""), sock("a.sock")) << stats["listeners"];
  EXPECT_EQ(stats["listeners"][0]["name"], "alpha") << stats["listeners"];
  EXPECT_GE(a_after["uptime_s"].get<uint64_t>(), a_before["uptime_s"].get<uint64_t>());
  EXPECT_GE(port_counter(b_after, "rx_frames"), port_counter(b_before, "rx_frames"));
  std::vector<std::string> kept;
  for (const std::string& m : mac_table()) {
    if (m.find(test_support::mac_to_string(test_mac(3))) == std::string::npos) kept.push_back(m);
  }
  std::vector<std::string> kept_before;
  for (const std::string& m : macs_before) {
    if (m.find(test_support::mac_to_string(test_mac(3))) == std::string::npos) {
      kept_before.push_back(m);
    }
  }
  EXPECT_EQ(kept, kept_before);
  ASSERT_TRUE(send_and_expect(c[0], c[1], test_mac(2), test_mac(1), 300, 2));
  ASSERT_TRUE(send_and_expect(c[1], c[0], test_mac(1), test_mac(2), 1500, 3));

  // c: the same connection and port, now an access port of VLAN 20; a's frames to it (VLAN 1)
  // no longer reach it.
  uint32_t c_id = 0;
  ASSERT_TRUE(c[2].send_frame(test_support::make_frame(test_mac(1), test_mac(3), 100, 4)));
  ASSERT_TRUE(port_id(test_mac(3), &c_id));
  EXPECT_EQ(json(c_id), c_before["id"]);
  const json c_after = port_with_mac(sw_, test_mac(3));
  EXPECT_EQ(c_after["vlan"], json({{"mode", "access"}, {"vlan", 20}})) << c_after;
  ASSERT_TRUE(expect_silence(c[0], "a (VLAN 1) from c (VLAN 20)"));
  ASSERT_TRUE(c[0].send_frame(test_support::make_frame(test_mac(3), test_mac(1), 100, 5)));
  ASSERT_TRUE(expect_silence(c[2], "c (VLAN 20) from a (VLAN 1)"));

  // d accepts and joins VLAN 1; e refuses; the run-time listener is still there.
  ASSERT_TRUE(connect_clients(1, &c, sock("d.sock")));
  ASSERT_TRUE(send_and_expect(c[3], c[0], test_mac(1), test_mac(4), 200, 6));
  EXPECT_FALSE(accepts(sock("e.sock")));
  EXPECT_FALSE(exists(dir() + "/e.sock"));
  EXPECT_TRUE(accepts(sock("x.sock")));
  // The slirp port has the new forward.
  const json forwards = control_result(sw_, {{"cmd", "hostfwd.list"}});
  ASSERT_EQ(forwards.size(), 1u) << forwards;
  EXPECT_EQ(forwards[0].value("host_port", 0), fwd_port) << forwards;
}

TEST_F(ReloadTest, PortSecurityTurnsOnForALiveConnection) {
  ASSERT_FALSE(dir().empty());
  write_lab(header("slirp = false") + listen("a.sock") + listen("b.sock"));
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("a.sock")));
  ASSERT_TRUE(connect_clients(1, &c, sock("b.sock")));
  ASSERT_TRUE(announce(c, {test_mac(1), test_mac(2)}));
  uint32_t b_id = 0;
  ASSERT_TRUE(port_id(test_mac(2), &b_id));
  // b's ports may send only from test_mac(2) from now on, the live one too.
  write_lab(header("slirp = false") + listen("a.sock") +
            listen("b.sock", "port-security = true\nmac = [\"" +
                                 test_support::mac_to_string(test_mac(2)) + "\"]"));
  const json r = reload();
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["changed"], json::array({"listen " + sock("b.sock") + ": port-security"}))
      << r;
  ASSERT_TRUE(send_and_expect(c[1], c[0], test_mac(1), test_mac(2), 200, 1));
  ASSERT_TRUE(c[1].send_frame(test_support::make_frame(test_mac(1), test_mac(9), 200, 2)));
  ASSERT_TRUE(wait_port_counter(b_id, "drop_mac_spoof", 1));
  ASSERT_TRUE(expect_silence(c[0], "a, from b's spoofed MAC"));
  uint32_t again = 0;
  ASSERT_TRUE(port_id(test_mac(2), &again));
  EXPECT_EQ(again, b_id);
}

TEST_F(ReloadTest, SlirpPortsRestartAndJoinAndTheirCommandsFollow) {
  ASSERT_FALSE(dir().empty());
  const uint16_t fwd = test_support::free_loopback_tcp_port();
  ASSERT_NE(fwd, 0);
  const std::string forward = "hostfwd = [\"tcp:127.0.0.1:" + std::to_string(fwd) + "-:80\"]\n";
  write_lab(header() + listen("a.sock") + "[[slirp]]\nrestrict = true\n" + forward);
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("a.sock")));
  const json slirp_before = port_of_kind(sw_, "slirp");
  // restrict off: the VLAN 1 slirp port restarts (its forward with it); a second one on VLAN 20.
  write_lab(header() + listen("a.sock") + "[[slirp]]\n" + forward +
            "\n[[slirp]]\nvlan = 20\nnet = \"10.0.20.0/24\"\nname = \"nat20\"\n");
  const json r = reload();
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["restarted"], json::array({"slirp vlan=1: settings"})) << r;
  EXPECT_EQ(r["result"]["added"], json::array({"slirp vlan=20"})) << r;
  EXPECT_EQ(r["result"]["unchanged"], json::array({"listen " + sock("a.sock")})) << r;
  // The commands reach the new ports, by VLAN.
  const json v1 = control_result(sw_, {{"cmd", "hostfwd.list"}, {"args", {{"vlan", 1}}}});
  ASSERT_EQ(v1.size(), 1u) << v1;
  EXPECT_EQ(v1[0].value("host_port", 0), fwd);
  const json v20 = control_result(sw_, {{"cmd", "usernet"}, {"args", {{"vlan", 20}}}});
  EXPECT_TRUE(v20.is_object()) << v20;
  std::vector<std::string> slirp_rows;
  for (const json& row : control_result(sw_, {{"cmd", "ports"}})) {
    if (row.value("kind", "") != "slirp") continue;
    slirp_rows.push_back(row.value("peer", "") + " " + row["vlan"].dump() + " " +
                         row["name"].dump());
  }
  EXPECT_EQ(slirp_rows.size(), 2u);
  EXPECT_NE(slirp_before.value("peer", ""), "");
  // The new VLAN 1 port no longer restricts: its describe() lacks restrict=on.
  for (const std::string& row : slirp_rows) EXPECT_EQ(row.find("restrict=on"), std::string::npos);
  EXPECT_EQ(std::count_if(slirp_rows.begin(), slirp_rows.end(),
                          [](const std::string& row) {
                            return row.find("{\"mode\":\"access\",\"vlan\":20} \"nat20\"") !=
                                   std::string::npos;
                          }),
            1)
      << slirp_rows[0] << "\n"
      << slirp_rows[1];
  // The client on a.sock kept its connection through it all.
  ASSERT_TRUE(expect_silence(c[0], "a's client"));
  // Back to one slirp port: VLAN 20's goes, and the commands say it is gone.
  write_lab(header() + listen("a.sock") + "[[slirp]]\n" + forward);
  const json back = reload();
  ASSERT_TRUE(back.value("ok", false)) << back;
  EXPECT_EQ(back["result"]["removed"], json::array({"slirp vlan=20"})) << back;
  const json gone = reply_of({{"cmd", "usernet"}, {"args", {{"vlan", 20}}}});
  EXPECT_FALSE(gone.value("ok", true)) << gone;
  EXPECT_NE(gone.value("error", "").find("no slirp port on VLAN 20"), std::string::npos) << gone;
}

TEST_F(ReloadTest, ADatagramSocketRestartsForAVlanChange) {
  ASSERT_FALSE(dir().empty());
  const std::string dgram = "[[dgram]]\naddress = \"" + sock("d.dgram") + "\"\n";
  write_lab(header("slirp = false") + listen("a.sock") + dgram);
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  const json r = reload();
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["unchanged"].size(), 2u) << r;
  write_lab(header("slirp = false") + listen("a.sock") + dgram + "vlan = 7\n");
  const json changed = reload();
  ASSERT_TRUE(changed.value("ok", false)) << changed;
  EXPECT_EQ(changed["result"]["restarted"], json::array({"dgram " + sock("d.dgram") + ": vlan"}))
      << changed;
  const json stats = control_result(sw_, {{"cmd", "stats"}});
  ASSERT_EQ(stats["dgram_sockets"].size(), 1u) << stats;
  EXPECT_EQ(stats["dgram_sockets"][0].value("endpoint", ""), "dgram-2") << stats;
  EXPECT_TRUE(exists(dir() + "/d.dgram"));
}

TEST_F(ReloadTest, AnInvalidFileChangesNothingAndTheReplySaysWhere) {
  ASSERT_FALSE(dir().empty());
  write_lab(header("slirp = false") + listen("a.sock") + listen("b.sock"));
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("a.sock")));
  ASSERT_TRUE(connect_clients(1, &c, sock("b.sock")));
  ASSERT_TRUE(announce(c, {test_mac(1), test_mac(2)}));
  const std::vector<std::string> before = listeners();
  ASSERT_EQ(before.size(), 2u);

  // Line 9, column 8: the bad VLAN id; the new listener before it must not be bound.
  write_lab(header("slirp = false") + listen("d.sock") + listen("a.sock", "vlan = 5000"));
  const json r = reload();
  ASSERT_FALSE(r.value("ok", true)) << r;
  const std::string error = r.value("error", "");
  EXPECT_NE(error.find(lab_path() + ":9:8: listen[1].vlan"), std::string::npos) << error;
  EXPECT_NE(error.find("5000"), std::string::npos) << error;
  EXPECT_NE(error.find("nothing was changed"), std::string::npos) << error;
  EXPECT_EQ(listeners(), before);
  EXPECT_FALSE(exists(dir() + "/d.sock"));
  ASSERT_TRUE(send_and_expect(c[0], c[1], test_mac(2), test_mac(1), 300, 1));
  EXPECT_TRUE(accepts(sock("b.sock")));
}

TEST_F(ReloadTest, ASettingThatCannotChangeLiveFailsNamingItAndChangesNothing) {
  ASSERT_FALSE(dir().empty());
  write_lab(header("slirp = false") + listen("a.sock"));
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  const std::vector<std::string> before = listeners();
  ASSERT_EQ(before.size(), 1u);
  write_lab(header("slirp = false\nmac-age = 30") + listen("a.sock") + listen("d.sock"));
  const json r = reload();
  ASSERT_FALSE(r.value("ok", true)) << r;
  const std::string error = r.value("error", "");
  EXPECT_NE(error.find("switch.mac-age: 30 (running: 300)"), std::string::npos) << error;
  EXPECT_NE(error.find("restart qswitch to change it"), std::string::npos) << error;
  EXPECT_EQ(listeners(), before);
  EXPECT_FALSE(exists(dir() + "/d.sock"));
}

TEST_F(ReloadTest, ANewListenerThatCannotBindChangesNothing) {
  ASSERT_FALSE(dir().empty());
  // A TCP port this test holds.
  const int held = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(held, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(held, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  ASSERT_EQ(::listen(held, 1), 0);
  socklen_t len = sizeof sin;
  ASSERT_EQ(::getsockname(held, reinterpret_cast<sockaddr*>(&sin), &len), 0);
  const std::string taken = "tcp:127.0.0.1:" + std::to_string(ntohs(sin.sin_port));

  write_lab(header("slirp = false") + listen("a.sock") + listen("b.sock"));
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("b.sock")));
  const std::vector<std::string> before = listeners();
  ASSERT_EQ(before.size(), 2u);
  // b removed, d added (binds), then the taken port (cannot): d is released again, b stays.
  write_lab(header("slirp = false") + listen("a.sock") + listen("d.sock") +
            "[[listen]]\naddress = \"" + taken + "\"\n");
  const json r = reload();
  ::close(held);
  ASSERT_FALSE(r.value("ok", true)) << r;
  const std::string error = r.value("error", "");
  EXPECT_NE(error.find("cannot start listen " + taken), std::string::npos) << error;
  EXPECT_NE(error.find("nothing was changed"), std::string::npos) << error;
  EXPECT_EQ(listeners(), before);
  EXPECT_FALSE(exists(dir() + "/d.sock"));
  EXPECT_TRUE(accepts(sock("b.sock")));
  ASSERT_TRUE(expect_silence(c[0], "b's client"));  // not disconnected
}

TEST_F(ReloadTest, SighupAppliesTheFile) {
  ASSERT_FALSE(dir().empty());
  write_lab(header("slirp = false") + listen("a.sock"));
  ASSERT_TRUE(sw_.start(launch_options({"--config", lab_path()}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, sock("a.sock")));
  write_lab(header("slirp = false") + listen("a.sock") + listen("d.sock"));
  ASSERT_TRUE(sw_.signal(SIGHUP));
  // The new listener accepts (FrameClient retries a refused connect until its deadline).
  ASSERT_TRUE(connect_clients(1, &c, sock("d.sock")));
  ASSERT_TRUE(announce(c, {test_mac(1), test_mac(2)}));
  EXPECT_EQ(listeners(),
            (std::vector<std::string>{"listen-1 " + sock("a.sock"), "listen-2 " + sock("d.sock")}));
  // A bad file (it would remove both listeners were it read as valid): the switch keeps running
  // as it was. The next good file shows it: a and d keep their endpoints, e is the only new one.
  write_lab(header("slirp = false") + "[[listen]]\nadress = \"x\"\n");
  ASSERT_TRUE(sw_.signal(SIGHUP));
  ASSERT_TRUE(send_and_expect(c[1], c[0], test_mac(1), test_mac(2), 200, 1));
  write_lab(header("slirp = false") + listen("a.sock") + listen("d.sock") + listen("e.sock"));
  ASSERT_TRUE(sw_.signal(SIGHUP));
  ASSERT_TRUE(connect_clients(1, &c, sock("e.sock")));
  EXPECT_EQ(listeners(),
            (std::vector<std::string>{"listen-1 " + sock("a.sock"), "listen-2 " + sock("d.sock"),
                                      "listen-3 " + sock("e.sock")}));
  ASSERT_TRUE(send_and_expect(c[0], c[1], test_mac(2), test_mac(1), 200, 2));
}

TEST_F(ReloadTest, ASwitchWithoutALabFileSaysReloadNeedsOne) {
  ASSERT_TRUE(start_switch());
  const json r = reload();
  ASSERT_FALSE(r.value("ok", true)) << r;
  EXPECT_NE(r.value("error", "").find("--config"), std::string::npos) << r;
}

}  // namespace
}  // namespace qswitch::integration
