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
#include "tests/e2e/guest_lab.h"
#include "tests/e2e/host_side.h"

namespace qswitch::e2e {
namespace {

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

class SlirpDnsE2eTest : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(E2eTest::SetUp());
    ASSERT_NO_FATAL_FAILURE(start_slirp_switch(sw_, "sw", "restrict=on", &sock_, &ctl_));
    GuestOptions g;
    g.name = "g1";
    g.ip_cidr = "dhcp";
    g.mac = "52:54:00:5e:00:31";
    g.netdev = unix_netdev(sock_, false);
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
