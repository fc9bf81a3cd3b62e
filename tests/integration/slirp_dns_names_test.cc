// tests/integration/slirp_dns_names_test.cc: where the slirp port's DNS names come from, seen
// from outside (issue 13): synthetic DHCP clients over real stream connections to `qswitch
// --slirp` send host names (option 12), and `dns.list` / `qswitch ctl dns list` show each name
// with its leased address and source; static records from `--slirp dns-record=`, lease=..:NAME
// and `ctl dns add|remove`; a lab file's [[guest]] names and a dns-record edit applied by
// reload. The DNS answers themselves (queries over UDP and TCP) are tested with the responder.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/dhcp_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/loopback_port.h"

namespace qswitch::integration {
namespace {

using json = nlohmann::json;
using test_support::DhcpExpect;
using test_support::ipv4;
using test_support::ipv4_to_string;
using test_support::mac_to_string;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr uint32_t kGateway = ipv4(10, 0, 2, 2);
const DhcpExpect kExpect{.server_mac = kSlirpMac,
                         .server_id = kGateway,
                         .router = kGateway,
                         .dns = ipv4(10, 0, 2, 3),
                         .netmask = ipv4(255, 255, 255, 0)};

class SlirpDnsNamesTest : public SwitchFixture {
 protected:
  struct Run {
    std::optional<int> status;
    std::string out;
    std::string err;
  };
  // `qswitch ctl --sock CONTROL ARGS...`, to its exit.
  Run ctl(std::vector<std::string> args) {
    std::string path = sw_.control();
    if (path.rfind("unix:", 0) == 0) path = path.substr(5);
    args.insert(args.begin(), {"ctl", "--sock", path});
    QswitchProcess p;
    LaunchOptions o = launch_options(std::move(args));
    o.stderr_path = tmp_.file("ctl-" + std::to_string(runs_++) + ".stderr");
    Run r;
    if (!p.launch(o)) {
      r.err = p.error();
      return r;
    }
    r.status = p.wait_exit(5s);
    r.out = p.stdout_text();
    std::ifstream in(o.stderr_path);
    r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    return r;
  }
  // The whole reply (ok or not) to one request.
  json reply_of(const json& request) {
    std::string error;
    auto c = test_support::ControlClient::connect(sw_.control(), &error);
    if (!c) {
      ADD_FAILURE() << "control connect: " << error;
      return json();
    }
    const test_support::LineResult r = c->request(request.dump());
    if (!r.ok()) {
      ADD_FAILURE() << "no reply to " << request.dump() << ": " << r.error;
      return json();
    }
    return json::parse(r.line, nullptr, false);
  }
  // dns.list's rows for `name` (the winner first, then losing claims).
  std::vector<json> rows_for(const std::string& name) {
    std::vector<json> out;
    for (const json& row : control_result(sw_, {{"cmd", "dns.list"}})) {
      if (row.value("name", "") == name) out.push_back(row);
    }
    return out;
  }
  // A full DHCP exchange for `mac` sending `hostname`, on `client`; the leased address.
  ::testing::AssertionResult lease(FrameClient& client, const Mac& mac, uint32_t xid,
                                   const std::string& hostname, uint32_t* address,
                                   test_support::DhcpExchange* exchange = nullptr) {
    std::string why;
    auto ex = test_support::run_dhcp_exchange(client, mac, xid, false, kExpect, 5s, &why, hostname);
    if (!ex) return ::testing::AssertionFailure() << why;
    *address = ex->address();
    if (exchange != nullptr) *exchange = *ex;
    return ::testing::AssertionSuccess();
  }
  int64_t slirp_counter(const std::string& name) {
    const json row = port_of_kind(sw_, "slirp");
    if (!row.contains("counters") || !row["counters"].contains(name)) return -1;
    return row["counters"][name].get<int64_t>();
  }
  static json addresses(std::initializer_list<const char*> list) {
    json a = json::array();
    for (const char* s : list) a.push_back(s);
    return a;
  }

  int runs_ = 0;
};

TEST_F(SlirpDnsNamesTest, DhcpHostnamesAreListedWithTheirLeasesAndRenamesFollow) {
  ASSERT_TRUE(start_switch(
      {"--slirp=restrict=on,lease=" + mac_to_string(test_mac(9)) + ":10.0.2.50:pinned"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(2, &c));
  const Mac a = test_mac(1);
  const Mac b = test_mac(2);

  uint32_t addr_a = 0;
  test_support::DhcpExchange ex;
  ASSERT_TRUE(lease(c[0], a, 0x1001, "Web1", &addr_a, &ex));
  // The ACK gives the guest its domain (15) and search list (119): short names work.
  ASSERT_EQ(ex.ack.options.count(15), 1u);
  EXPECT_EQ(std::string(ex.ack.options.at(15).begin(), ex.ack.options.at(15).end()),
            "qswitch.internal");
  EXPECT_EQ(ex.ack.options.count(119), 1u);

  std::vector<json> web1 = rows_for("web1.qswitch.internal");
  ASSERT_EQ(web1.size(), 1u) << control_result(sw_, {{"cmd", "dns.list"}});
  EXPECT_EQ(web1[0]["addresses"], addresses({ipv4_to_string(addr_a).c_str()})) << web1[0];
  EXPECT_EQ(web1[0].value("source", ""), "dhcp-hostname") << web1[0];
  EXPECT_EQ(web1[0].value("mac", ""), mac_to_string(a)) << web1[0];
  // The built-in names and the lease= name, from the start.
  std::vector<json> host = rows_for("host.qswitch.internal");
  ASSERT_EQ(host.size(), 1u);
  EXPECT_EQ(host[0]["addresses"], addresses({"10.0.2.2", "fec0::2"})) << host[0];
  EXPECT_EQ(host[0].value("source", ""), "host");
  std::vector<json> pinned = rows_for("pinned.qswitch.internal");
  ASSERT_EQ(pinned.size(), 1u);
  EXPECT_EQ(pinned[0]["addresses"], addresses({"10.0.2.50"})) << pinned[0];
  EXPECT_EQ(pinned[0].value("source", ""), "lease");
  // dhcp.leases shows the host name it sent (lower case is the DNS name's; the lease keeps it).
  bool listed = false;
  for (const json& row : control_result(sw_, {{"cmd", "dhcp.leases"}})) {
    if (row.value("mac", "") == mac_to_string(a)) {
      EXPECT_EQ(row.value("hostname", ""), "Web1") << row;
      listed = true;
    }
  }
  EXPECT_TRUE(listed);

  // The guest reboots under another name: the new one answers, the old one is gone.
  uint32_t again = 0;
  ASSERT_TRUE(lease(c[0], a, 0x1002, "web2", &again));
  EXPECT_EQ(again, addr_a);
  EXPECT_TRUE(rows_for("web1.qswitch.internal").empty());
  ASSERT_EQ(rows_for("web2.qswitch.internal").size(), 1u);

  // A second guest claims web2: the first holder keeps it, the loser is listed and counted.
  uint32_t addr_b = 0;
  ASSERT_TRUE(lease(c[1], b, 0x2001, "web2", &addr_b));
  ASSERT_NE(addr_b, addr_a);
  std::vector<json> web2 = rows_for("web2.qswitch.internal");
  ASSERT_EQ(web2.size(), 2u) << control_result(sw_, {{"cmd", "dns.list"}});
  EXPECT_EQ(web2[0]["addresses"], addresses({ipv4_to_string(addr_a).c_str()})) << web2[0];
  EXPECT_EQ(web2[1].value("mac", ""), mac_to_string(b)) << web2[1];
  EXPECT_EQ(web2[1].value("conflict", ""), "held by dhcp-hostname " + mac_to_string(a)) << web2[1];
  EXPECT_EQ(slirp_counter("dns_name_conflicts"), 1);

  // A host name that is not a host name label is ignored and counted, never listed.
  ASSERT_TRUE(lease(c[1], b, 0x2002, "bad_name!", &addr_b));
  EXPECT_EQ(slirp_counter("dns_bad_hostname"), 1);
  for (const json& row : control_result(sw_, {{"cmd", "dns.list"}})) {
    EXPECT_EQ(row.value("name", "").find("bad"), std::string::npos) << row;
  }

  // `qswitch ctl dns list` prints the same as a table.
  const Run r = ctl({"dns", "list"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  EXPECT_NE(r.out.find("web2.qswitch.internal"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(ipv4_to_string(addr_a)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dhcp-hostname"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("held by"), std::string::npos) << r.out;
}

TEST_F(SlirpDnsNamesTest, StaticRecordsFromTheCommandLineAndCtlRoundTrip) {
  ASSERT_TRUE(
      start_switch({"--slirp=restrict=on,dns-record=files=10.0.2.100,dns-record=files=fec0::100,"
                    "dns-record=www.example.test=10.0.2.101"}));
  std::vector<json> files = rows_for("files.qswitch.internal");
  ASSERT_EQ(files.size(), 1u) << control_result(sw_, {{"cmd", "dns.list"}});
  EXPECT_EQ(files[0]["addresses"], addresses({"10.0.2.100", "fec0::100"})) << files[0];
  EXPECT_EQ(files[0].value("source", ""), "static");
  ASSERT_EQ(rows_for("www.example.test").size(), 1u);

  Run r = ctl({"dns", "add", "Extra", "10.0.2.77"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  r = ctl({"dns", "add", "extra", "fec0::77"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  r = ctl({"dns", "list"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.err;
  EXPECT_NE(r.out.find("extra.qswitch.internal"), std::string::npos) << r.out;
  std::vector<json> extra = rows_for("extra.qswitch.internal");
  ASSERT_EQ(extra.size(), 1u);
  EXPECT_EQ(extra[0]["addresses"], addresses({"10.0.2.77", "fec0::77"})) << extra[0];

  // Refusals name the value: error replies exit 1; a bad command line exits 2.
  r = ctl({"dns", "add", "bad_name", "10.0.2.78"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("'bad_name'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("letters, digits"), std::string::npos) << r.err;
  r = ctl({"dns", "add", "ok", "10.0.2.300"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("10.0.2.300"), std::string::npos) << r.err;
  r = ctl({"dns", "add", "gateway", "10.0.2.78"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("built in"), std::string::npos) << r.err;
  r = ctl({"dns", "add", "extra", "10.0.2.77"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("already"), std::string::npos) << r.err;
  r = ctl({"dns", "add", "lonely"});
  EXPECT_EQ(r.status, std::optional<int>(2)) << r.out << r.err;
  EXPECT_NE(r.err.find("dns add takes a name and an address"), std::string::npos) << r.err;
  const json bogus =
      reply_of({{"cmd", "dns.add"}, {"args", {{"name", "a"}, {"addr", "10.0.2.5"}, {"ttl", 5}}}});
  EXPECT_FALSE(bogus.value("ok", true)) << bogus;
  EXPECT_NE(bogus.value("error", "").find("ttl"), std::string::npos) << bogus;

  r = ctl({"dns", "remove", "extra", "10.0.2.78"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("no record 10.0.2.78"), std::string::npos) << r.err;
  r = ctl({"dns", "remove", "extra", "10.0.2.77"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  extra = rows_for("extra.qswitch.internal");
  ASSERT_EQ(extra.size(), 1u);
  EXPECT_EQ(extra[0]["addresses"], addresses({"fec0::77"})) << extra[0];
  r = ctl({"dns", "remove", "extra"});
  ASSERT_EQ(r.status, std::optional<int>(0)) << r.out << r.err;
  EXPECT_TRUE(rows_for("extra.qswitch.internal").empty());
  r = ctl({"dns", "remove", "extra"});
  EXPECT_EQ(r.status, std::optional<int>(1)) << r.out << r.err;
  EXPECT_NE(r.err.find("no static record named 'extra.qswitch.internal'"), std::string::npos)
      << r.err;
}

// An exec port's name (what `qswitch exec --name N` sends in port.attach) names the MAC that
// gets its lease through that port, over the host name the guest sends.
TEST_F(SlirpDnsNamesTest, AnAttachedPortsNameNamesItsGuest) {
  ASSERT_TRUE(start_switch({"--slirp=restrict=on"}));
  int sv[2] = {-1, -1};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0) << std::strerror(errno);
  std::string error;
  auto control = test_support::ControlClient::connect(sw_.control(), &error);
  ASSERT_TRUE(control) << error;
  const json attach = {{"cmd", "port.attach"}, {"args", {{"type", "stream"}, {"name", "ExecBox"}}}};
  ASSERT_TRUE(control->send_line_with_fd(attach.dump(), sv[0])) << control->last_error();
  ::close(sv[0]);
  const test_support::LineResult line = control->read_line();
  ASSERT_TRUE(line.ok()) << line.error;
  ASSERT_TRUE(json::parse(line.line, nullptr, false).value("ok", false)) << line.line;
  FrameClient guest(sv[1]);  // QEMU's end: the switch's port is up while `control` is open
  uint32_t addr = 0;
  ASSERT_TRUE(lease(guest, test_mac(5), 0x5001, "fromdhcp", &addr));
  std::vector<json> box = rows_for("execbox.qswitch.internal");
  ASSERT_EQ(box.size(), 1u) << control_result(sw_, {{"cmd", "dns.list"}});
  EXPECT_EQ(box[0]["addresses"], addresses({ipv4_to_string(addr).c_str()})) << box[0];
  EXPECT_EQ(box[0].value("source", ""), "exec");
  EXPECT_EQ(box[0].value("mac", ""), mac_to_string(test_mac(5)));
  EXPECT_TRUE(rows_for("fromdhcp.qswitch.internal").empty());
}

TEST_F(SlirpDnsNamesTest, BadDnsRecordOnTheCommandLineExitsTwoNamingIt) {
  QswitchProcess p;
  LaunchOptions o = launch_options({"--slirp=dns-record=no_good=10.0.2.100"});
  o.stderr_path = tmp_.file("bad.stderr");
  ASSERT_TRUE(p.launch(o)) << p.error();
  EXPECT_EQ(p.wait_exit(5s), std::optional<int>(2));
  std::ifstream in(o.stderr_path);
  const std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(err.find("dns-record=no_good=10.0.2.100"), std::string::npos) << err;
}

TEST_F(SlirpDnsNamesTest, LabGuestNamesAndDnsRecordEditsByReload) {
  const std::string dir = tmp_.path();
  const std::string header = "[switch]\ncontrol = \"unix:" + dir + "/lab.ctl\"\n\n[[listen]]\n" +
                             "address = \"unix:" + dir + "/a.sock\"\n\n";
  const std::string guest =
      "[[guest]]\nname = \"labbox\"\nmac = \"" + mac_to_string(test_mac(3)) + "\"\n\n";
  const auto write_lab = [&](const std::string& records) {
    std::ofstream(tmp_.file("lab.toml"))
        << header << guest << "[[slirp]]\nrestrict = true\ndns-record = [" << records << "]\n";
  };
  write_lab("\"files=10.0.2.100\", \"old=10.0.2.101\"");
  ASSERT_TRUE(sw_.start(launch_options({"--config", dir + "/lab.toml"}))) << sw_.error();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c, "unix:" + dir + "/a.sock"));
  // The lab's name for the MAC wins over the host name it sends.
  uint32_t addr = 0;
  ASSERT_TRUE(lease(c[0], test_mac(3), 0x3001, "whatever", &addr));
  std::vector<json> box = rows_for("labbox.qswitch.internal");
  ASSERT_EQ(box.size(), 1u) << control_result(sw_, {{"cmd", "dns.list"}});
  EXPECT_EQ(box[0]["addresses"], addresses({ipv4_to_string(addr).c_str()})) << box[0];
  EXPECT_EQ(box[0].value("source", ""), "lab");
  EXPECT_TRUE(rows_for("whatever.qswitch.internal").empty());
  ASSERT_EQ(rows_for("old.qswitch.internal").size(), 1u);
  const json before = port_of_kind(sw_, "slirp");

  // A runtime record stays; the file's old one goes, its new one comes; the port is the same.
  ASSERT_EQ(ctl({"dns", "add", "runtime", "10.0.2.120"}).status, std::optional<int>(0));
  write_lab("\"files=10.0.2.100\", \"new=10.0.2.102\"");
  const json r = reply_of({{"cmd", "reload"}});
  ASSERT_TRUE(r.value("ok", false)) << r;
  EXPECT_EQ(r["result"]["changed"], json::array({"slirp vlan=1: dns-record"})) << r;
  EXPECT_TRUE(rows_for("old.qswitch.internal").empty());
  ASSERT_EQ(rows_for("new.qswitch.internal").size(), 1u);
  ASSERT_EQ(rows_for("runtime.qswitch.internal").size(), 1u);
  ASSERT_EQ(rows_for("labbox.qswitch.internal").size(), 1u);
  EXPECT_EQ(port_of_kind(sw_, "slirp").value("id", -1), before.value("id", -2));
}

}  // namespace
// hostfwd to a guest by DNS name: resolved when added, from the names the DNS answers (a
// guest's DHCP host name and lease, a static record's addresses), in the forward's family.
TEST_F(SlirpDnsNamesTest, HostForwardsToAGuestByNameTakeTheNamesAddressOfTheirFamily) {
  ASSERT_TRUE(
      start_switch({"--slirp=restrict=on,dns-record=files=10.0.2.100,dns-record=files=fec0::100"}));
  const uint16_t port_a = test_support::free_loopback_tcp_port();
  const uint16_t port_b = test_support::free_loopback_tcp_port();
  const uint16_t port_c = test_support::free_loopback_tcp_port();
  ASSERT_TRUE(port_a != 0 && port_b != 0 && port_c != 0);
  const auto add = [&](const std::string& spec) {
    return reply_of({{"cmd", "hostfwd.add"}, {"args", {{"spec", spec}}}});
  };
  // Not a name the DNS answers yet: refused, saying so.
  const std::string web4 = "tcp::" + std::to_string(port_a) + "-web1:80";
  json reply = add(web4);
  EXPECT_FALSE(reply.value("ok", true)) << reply.dump();
  EXPECT_NE(reply.value("error", "").find("web1.qswitch.internal is not one the slirp port's"),
            std::string::npos)
      << reply.dump();

  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  uint32_t addr = 0;
  ASSERT_TRUE(lease(c[0], test_mac(1), 0x2001, "web1", &addr));
  reply = add(web4);
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  EXPECT_EQ(reply["result"].value("guest_addr", ""), ipv4_to_string(addr)) << reply.dump();
  EXPECT_EQ(reply["result"].value("spec", ""),
            "tcp:127.0.0.1:" + std::to_string(port_a) + "-web1:80")
      << reply.dump();
  // An IPv6 forward to web1: it has no IPv6 address in the table (no SLAAC seen).
  reply = add("tcp:[::1]:" + std::to_string(port_b) + "-web1.qswitch.internal:80");
  EXPECT_FALSE(reply.value("ok", true)) << reply.dump();
  EXPECT_NE(reply.value("error", "").find("has no IPv6 address"), std::string::npos)
      << reply.dump();
  // A static record, by IPv6.
  reply = add("udp:[::1]:" + std::to_string(port_b) + "-files:53");
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  EXPECT_EQ(reply["result"].value("guest_addr", ""), "fec0::100") << reply.dump();
  reply = add("tcp::" + std::to_string(port_c) + "-FILES.qswitch.internal:22");
  ASSERT_TRUE(reply.value("ok", false)) << reply.dump();
  EXPECT_EQ(reply["result"].value("guest_addr", ""), "10.0.2.100") << reply.dump();
  const json list = control_result(sw_, {{"cmd", "hostfwd.list"}});
  EXPECT_EQ(list.size(), 3u) << list.dump();
}

}  // namespace qswitch::integration
