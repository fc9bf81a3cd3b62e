// tests/e2e/slirp_dns_e2e_test.cc: a real Linux guest asks the slirp port's DNS address over UDP
// (busybox nslookup) and over TCP (busybox nc with a hand-made query: the guest's own TCP stack
// against the port's one-shot TCP responder, slirp/dns_frontend.h).
//
// Theory of operation: one `qswitch --listen unix:DIR/sw.sock --slirp=restrict=on`, one DHCP
// guest (tools/make-guest-image). The guest resolves a name of the lab's domain that does not
// exist (NXDOMAIN) and a PTR in the segment; over TCP it sends [length][query for the apex SOA]
// and the reply bytes come back through `od`. The slirp port's dns_* counters are read with
// `qswitch ctl --json ports`.
// Network safety: only names of qswitch.internal and 10.0.2.0/24's reverse zone are asked, and
// restrict=on forwards nothing to the host's resolver.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/guest.h"
#include "tests/e2e/host_side.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"

namespace qswitch::e2e {
namespace {

using namespace std::chrono_literals;
using test_support::LaunchOptions;
using test_support::QswitchProcess;
using test_support::TempDir;

constexpr auto kBootTimeout = 120s;
constexpr auto kCommandTimeout = 60s;

// [length][query]: id 0xabcd, RD, one question "qswitch.internal" SOA IN, as printf octal escapes.
std::string tcp_query_printf() {
  std::vector<uint8_t> m = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  for (const char* label : {"qswitch", "internal"}) {
    m.push_back(static_cast<uint8_t>(std::strlen(label)));
    m.insert(m.end(), label, label + std::strlen(label));
  }
  m.insert(m.end(), {0, 0, 6, 0, 1});
  std::vector<uint8_t> wire = {static_cast<uint8_t>(m.size() >> 8), static_cast<uint8_t>(m.size())};
  wire.insert(wire.end(), m.begin(), m.end());
  std::string out;
  for (uint8_t b : wire) {
    char esc[8];
    std::snprintf(esc, sizeof esc, "\\%03o", b);
    out += esc;
  }
  return out;
}

class SlirpDnsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = missing_e2e_prerequisites();
    ASSERT_EQ(missing, "") << "end-to-end tests need: " << missing;
    ASSERT_FALSE(dir_.path().empty()) << "cannot create a temp dir under /tmp";
    sock_ = dir_.file("sw.sock");
    LaunchOptions options;
    options.binary = qswitch_binary();
    options.args = {"--listen", "unix:" + sock_, "--slirp=restrict=on"};
    options.stderr_path = dir_.file("sw.log");
    ASSERT_TRUE(sw_.start(options, 10s)) << sw_.error();
    for (const std::string& line : sw_.stdout_lines()) {
      if (line.rfind("control unix:", 0) == 0) ctl_ = line.substr(std::strlen("control unix:"));
    }
    ASSERT_NE(ctl_, "") << sw_.stdout_text();
    GuestOptions g;
    g.name = "g1";
    g.ip_cidr = "dhcp";
    g.mac = "52:54:00:5e:00:31";
    g.netdev = "stream,id=n0,server=off,addr.type=unix,addr.path=" + sock_;
    std::string error;
    guest_ = Guest::start(g, dir_.path(), &error);
    ASSERT_NE(guest_, nullptr) << error;
    ASSERT_TRUE(guest_->wait_ready(kBootTimeout, &error)) << error;
  }

  int64_t counter(const std::string& name) {
    const CtlResult r = run_ctl(ctl_, {"--json", "ports"}, dir_.file("ctl.err"));
    const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object() || !j.contains("result") || !j["result"].is_array()) return -1;
    for (const auto& row : j["result"]) {
      if (row.value("kind", "") != "slirp" || !row.contains("counters")) continue;
      return row["counters"].value(name, int64_t{-1});
    }
    return -1;
  }

  TempDir dir_{"qs-dns-e2e-"};
  QswitchProcess sw_;
  std::string sock_;
  std::string ctl_;
  std::unique_ptr<Guest> guest_;
};

TEST_F(SlirpDnsE2eTest, GuestGetsAnswersOverUdpAndTcp) {
  // UDP: busybox nslookup against the DHCP-given server.
  CommandResult nx = guest_->run("nslookup nosuch.qswitch.internal 10.0.2.3 2>&1", kCommandTimeout);
  ASSERT_TRUE(nx.completed) << guest_->diagnostics();
  EXPECT_NE(nx.output.find("NXDOMAIN"), std::string::npos) << nx.output;
  CommandResult ptr = guest_->run("nslookup 10.0.2.99 10.0.2.3 2>&1", kCommandTimeout);
  ASSERT_TRUE(ptr.completed) << guest_->diagnostics();
  EXPECT_NE(ptr.output.find("NXDOMAIN"), std::string::npos) << ptr.output;
  EXPECT_GE(counter("dns_udp_answered"), 2);

  // TCP: the guest's kernel opens the connection; stdin stays open 3 s, the responder answers
  // and closes, nc ends on the server's FIN.
  CommandResult tcp = guest_->run(
      "(printf '" + tcp_query_printf() + "'; sleep 3) | timeout 10 nc 10.0.2.3 53 | od -An -tx1",
      kCommandTimeout);
  ASSERT_TRUE(tcp.completed) << guest_->diagnostics();
  std::istringstream hex(tcp.output);
  std::vector<int> bytes;
  std::string tok;
  while (hex >> tok) bytes.push_back(static_cast<int>(std::stoul(tok, nullptr, 16)));
  ASSERT_GE(bytes.size(), 2u + 12u) << "reply over TCP: '" << tcp.output << "'";
  EXPECT_EQ((bytes[0] << 8) | bytes[1], static_cast<int>(bytes.size()) - 2) << tcp.output;
  EXPECT_EQ(bytes[2], 0xab);
  EXPECT_EQ(bytes[3], 0xcd);
  EXPECT_NE(bytes[4] & 0x80, 0) << "QR";
  EXPECT_NE(bytes[4] & 0x04, 0) << "AA";
  EXPECT_EQ(bytes[5] & 0x0f, 0) << "NOERROR";
  EXPECT_EQ((bytes[8] << 8) | bytes[9], 1) << "one answer: the SOA";
  EXPECT_EQ(counter("dns_tcp_answered"), 1);
  EXPECT_EQ(counter("dns_tcp_reset"), 0);
}

}  // namespace
}  // namespace qswitch::e2e
