// tests/integration/slirp_dhcp_test.cc: the slirp port as guests on the switch see it, with no
// guests: synthetic DHCP clients and ARP over real stream connections to `qswitch --slirp`.
//
// Every client is its own FrameClient connection (its own switch port) with its own MAC, as a
// QEMU guest would be. The slirp port is just another port, so broadcast replies reach every
// client: a client matches its replies on xid and chaddr and skips the rest. Replies are decoded
// fully (tests/support/dhcp_client.h) and checked against what QEMU's -nic user gives a guest:
// server and router 10.0.2.2, DNS 10.0.2.3, netmask 255.255.255.0, first address 10.0.2.15, all
// from libslirp's MAC for 10.0.2.2, 52:55:0a:00:02:02. The last test (issue 9) has the DHCP
// server answer a flood of DISCOVERs while a guest that never reads holds the broadcast replies.
#include <sys/resource.h>

#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/stuck_peer.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/dhcp_client.h"
#include "tests/support/ip_frames.h"

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::ControlClient;
using test_support::DhcpClientMessage;
using test_support::DhcpExchange;
using test_support::DhcpExpect;
using test_support::DhcpType;
using test_support::ipv4;
using test_support::ipv4_to_string;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::test_mac;

constexpr Mac kSlirpMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x02};  // libslirp's for 10.0.2.2
constexpr Mac kSlirpDnsMac = {0x52, 0x55, 0x0a, 0x00, 0x02, 0x03};
constexpr uint32_t kGateway = ipv4(10, 0, 2, 2);
constexpr uint32_t kDns = ipv4(10, 0, 2, 3);
constexpr uint32_t kFirstAddress = ipv4(10, 0, 2, 15);
constexpr uint32_t kLastAddress = ipv4(10, 0, 2, 254);

const DhcpExpect kExpect{.server_mac = kSlirpMac,
                         .server_id = kGateway,
                         .router = kGateway,
                         .dns = kDns,
                         .netmask = ipv4(255, 255, 255, 0)};

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

class SlirpDhcpTest : public SwitchFixture {
 protected:
  // One new connection for `mac`, then a full exchange on it.
  ::testing::AssertionResult lease_on_new_connection(const Mac& mac, uint32_t xid,
                                                     uint32_t* address,
                                                     FrameClient* keep = nullptr) {
    std::vector<FrameClient> c;
    if (auto r = connect_clients(1, &c); !r) return r;
    std::string why;
    auto ex = test_support::run_dhcp_exchange(c[0], mac, xid, false, kExpect, 5s, &why);
    if (!ex) return ::testing::AssertionFailure() << why;
    *address = ex->address();
    if (keep != nullptr) *keep = std::move(c[0]);
    return ::testing::AssertionSuccess();
  }

  // Discards whatever is already waiting on each client (others' broadcasts), without waiting.
  static void discard_pending(std::vector<FrameClient>& clients) {
    for (auto& c : clients) {
      for (int i = 0; i < 10000 && c.recv_frame(Millis(0)).ok(); ++i) {
      }
    }
  }

  // The control API: one reply's "result" (a null json, and a test failure, when not ok).
  nlohmann::json ask(const nlohmann::json& request) {
    if (!ctl_) {
      std::string why;
      if (sw_.control().empty()) {
        ADD_FAILURE() << "qswitch printed no \"control unix:PATH\" line";
        return {};
      }
      ctl_ = ControlClient::connect(sw_.control(), &why);
      if (!ctl_) {
        ADD_FAILURE() << "control connect: " << why;
        return {};
      }
    }
    auto line = ctl_->request(request.dump());
    if (!line.ok()) {
      ADD_FAILURE() << request.dump() << ": " << to_string(line.status) << " " << line.error;
      return {};
    }
    auto j = nlohmann::json::parse(line.line, nullptr, false);
    if (!j.is_object() || !j.value("ok", false) || !j.contains("result")) {
      ADD_FAILURE() << request.dump() << " -> " << line.line;
      return {};
    }
    return j["result"];
  }
  // A counter of the slirp port's row in `ports` (its kind-specific ones included); -1 when
  // the row or the counter is missing.
  int64_t slirp_counter(const std::string& name) {
    const nlohmann::json rows = ask({{"cmd", "ports"}});
    if (!rows.is_array()) return -1;
    for (const auto& row : rows) {
      if (row.value("kind", "") != "slirp" || !row.contains("counters")) continue;
      const auto& c = row["counters"];
      return c.contains(name) ? c[name].get<int64_t>() : -1;
    }
    return -1;
  }
  // The id of the port `ports` lists `mac` on; -1 when none does.
  int64_t port_with_mac(const Mac& mac) {
    const nlohmann::json rows = ask({{"cmd", "ports"}});
    if (!rows.is_array()) return -1;
    for (const auto& row : rows) {
      if (!row.contains("macs") || !row["id"].is_number()) continue;
      for (const auto& m : row["macs"]) {
        if (m == mac_to_string(mac)) return row["id"].get<int64_t>();
      }
    }
    return -1;
  }
  // `dhcp.leases`' row for `mac` (a null json when it has none).
  nlohmann::json lease_row(const Mac& mac) {
    const nlohmann::json rows = ask({{"cmd", "dhcp.leases"}});
    if (!rows.is_array()) return {};
    for (const auto& row : rows) {
      if (row.value("mac", "") == mac_to_string(mac)) return row;
    }
    return {};
  }

  // Sends an ARP request for the gateway from `mac` and passes every frame that arrives before
  // libslirp's reply to `seen`. The slirp port handles a port's frames in order, so when the
  // reply comes every DHCP message sent before it has been answered (or refused).
  static ::testing::AssertionResult until_barrier(
      FrameClient& c, const Mac& mac, const std::function<void(const std::vector<uint8_t>&)>& seen,
      Millis timeout = 10s) {
    if (!c.send_frame(test_support::make_arp_request(mac, 0, kGateway))) {
      return ::testing::AssertionFailure() << "sending the ARP barrier: " << c.last_error();
    }
    const auto deadline = Clock::now() + timeout;
    for (int i = 0; i < 100000; ++i) {
      RecvResult r = c.recv_frame(time_left(deadline));
      if (!r.ok()) {
        return ::testing::AssertionFailure()
               << "waiting for the ARP reply from the gateway: " << to_string(r.status) << " "
               << r.error;
      }
      std::string why;
      auto arp = test_support::parse_arp(r.frame, &why);
      if (arp && arp->op == 2 && arp->sender_ip == kGateway && arp->target_mac == mac) {
        return ::testing::AssertionSuccess();
      }
      seen(r.frame);
    }
    return ::testing::AssertionFailure() << "no ARP reply among 100000 frames";
  }

  // A guest inventing MACs: from one connection, a DISCOVER for every MAC, then a REQUEST for
  // every OFFER it got. Returns the address ACKed to each MAC (by index into `macs`).
  ::testing::AssertionResult bind_all(FrameClient& c, const std::vector<Mac>& macs,
                                      uint32_t xid_base, std::map<size_t, uint32_t>* acked) {
    auto reply_to = [&](const std::vector<uint8_t>& f, DhcpType type,
                        std::map<size_t, uint32_t>* out) {
      std::string why;
      auto r = test_support::parse_dhcp_reply(f, &why);
      if (!r || r->type() != std::optional<DhcpType>(type)) return;
      for (size_t i = 0; i < macs.size(); ++i) {
        if (r->chaddr == macs[i] && r->xid == xid_base + i) (*out)[i] = r->yiaddr;
      }
    };
    for (size_t i = 0; i < macs.size(); ++i) {
      DhcpClientMessage m;
      m.mac = macs[i];
      m.xid = xid_base + static_cast<uint32_t>(i);
      m.type = DhcpType::kDiscover;
      if (!c.send_frame(test_support::make_dhcp_frame(m))) {
        return ::testing::AssertionFailure() << "DISCOVER " << i << ": " << c.last_error();
      }
    }
    std::map<size_t, uint32_t> offered;
    if (auto r = until_barrier(c, macs[0],
                               [&](const auto& f) { reply_to(f, DhcpType::kOffer, &offered); });
        !r) {
      return r;
    }
    for (const auto& [i, addr] : offered) {
      DhcpClientMessage m;
      m.mac = macs[i];
      m.xid = xid_base + static_cast<uint32_t>(i);
      m.type = DhcpType::kRequest;
      m.requested_ip = addr;
      m.server_id = kGateway;
      if (!c.send_frame(test_support::make_dhcp_frame(m))) {
        return ::testing::AssertionFailure() << "REQUEST " << i << ": " << c.last_error();
      }
    }
    acked->clear();
    return until_barrier(c, macs[0], [&](const auto& f) { reply_to(f, DhcpType::kAck, acked); });
  }

  std::optional<ControlClient> ctl_;

  // The live port whose peer names slirp, from a stats snapshot.
  static const test_support::PortStats* slirp_port(const StatsSnapshot& s) {
    for (const auto& [id, p] : s.ports) {
      if (p.peer.find("slirp") != std::string::npos) return &p;
    }
    return nullptr;
  }
};

// Raises the soft RLIMIT_NOFILE to at least `want` (bounded by the hard limit); the qswitch child
// inherits it. False when the hard limit is lower.
bool raise_fd_limit(rlim_t want) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= want) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want) return false;
  lim.rlim_cur = want;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

TEST_F(SlirpDhcpTest, TwoHundredClientsGetDistinctAddresses) {
  constexpr size_t kClients = 200;
  ASSERT_TRUE(raise_fd_limit(1024)) << "need RLIMIT_NOFILE >= 1024 for 200 clients";
  const auto started = Clock::now();
  const auto deadline = started + 60s;
  ASSERT_TRUE(start_switch({"--slirp"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(kClients, &c));
  std::vector<uint32_t> address(kClients, 0);
  for (size_t i = 0; i < kClients; ++i) {
    const Mac mac = test_mac(0x100 + static_cast<uint32_t>(i));
    const uint32_t xid = 0x5a000000u + static_cast<uint32_t>(i) * 7919u;
    std::string why;
    // Half the clients ask for broadcast replies (RFC 2131 section 4.1), half for unicast.
    auto ex = test_support::run_dhcp_exchange(c[i], mac, xid, i % 2 == 0, kExpect,
                                              std::min<Millis>(time_left(deadline), 5s), &why);
    ASSERT_TRUE(ex) << "client " << i << " (" << mac_to_string(mac) << "): " << why;
    address[i] = ex->address();
    if (i % 10 == 9) discard_pending(c);
  }
  const auto elapsed = Clock::now() - started;

  EXPECT_EQ(ipv4_to_string(address[0]), "10.0.2.15") << "the first client's address";
  std::set<uint32_t> distinct;
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_TRUE(address[i] >= kFirstAddress && address[i] <= kLastAddress)
        << "client " << i << " got " << ipv4_to_string(address[i])
        << ", outside 10.0.2.15..10.0.2.254";
    EXPECT_TRUE(distinct.insert(address[i]).second)
        << "client " << i << " got " << ipv4_to_string(address[i]) << ", already given out";
  }
  EXPECT_EQ(distinct.size(), kClients);
  // The contract: each further MAC gets the next address.
  for (size_t i = 0; i < kClients; ++i) {
    EXPECT_EQ(ipv4_to_string(address[i]), ipv4_to_string(kFirstAddress + static_cast<uint32_t>(i)))
        << "client " << i << " (the " << i + 1 << "th MAC to ask)";
  }
  EXPECT_LT(elapsed, 60s);
  EXPECT_TRUE(sw_.running());
}

TEST_F(SlirpDhcpTest, PinnedLeaseIsHonoured) {
  constexpr size_t kOthers = 90;  // enough that sequential allocation would reach 10.0.2.99
  const Mac pinned = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
  const uint32_t kPinned = ipv4(10, 0, 2, 99);
  ASSERT_TRUE(start_switch({"--slirp=lease=52:54:00:aa:bb:cc:10.0.2.99"}));
  const auto deadline = Clock::now() + 60s;
  // Others ask first, one connection each, while the pinned MAC has not asked yet.
  for (size_t i = 0; i < kOthers; ++i) {
    uint32_t got = 0;
    ASSERT_TRUE(lease_on_new_connection(test_mac(0x200 + static_cast<uint32_t>(i)),
                                        0x61000000u + static_cast<uint32_t>(i), &got))
        << "client " << i;
    ASSERT_NE(got, kPinned) << "client " << i << " (" << mac_to_string(test_mac(0x200 + i))
                            << ") was given the address pinned to 52:54:00:aa:bb:cc";
    ASSERT_LT(Clock::now(), deadline);
  }
  uint32_t got = 0;
  ASSERT_TRUE(lease_on_new_connection(pinned, 0x62000001u, &got));
  EXPECT_EQ(ipv4_to_string(got), "10.0.2.99");

  // Another MAC that asks for .99 by name is not given it.
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  const Mac other = test_mac(0x2ff);
  DhcpClientMessage req;
  req.mac = other;
  req.xid = 0x62000002u;
  req.type = DhcpType::kRequest;
  req.requested_ip = kPinned;
  req.server_id = kGateway;
  ASSERT_TRUE(c[0].send_frame(test_support::make_dhcp_frame(req)));
  std::string why;
  auto reply = test_support::wait_dhcp_reply(c[0], other, req.xid, 1500ms, &why);
  if (reply) {
    EXPECT_NE(reply->type(), std::optional<DhcpType>(DhcpType::kAck))
        << "a REQUEST for the pinned 10.0.2.99 from " << mac_to_string(other)
        << " was ACKed (yiaddr " << ipv4_to_string(reply->yiaddr) << ")";
    EXPECT_NE(reply->yiaddr, kPinned);
  }
  // And its own DISCOVER gets some other address.
  auto ex = test_support::run_dhcp_exchange(c[0], other, 0x62000003u, false, kExpect, 5s, &why);
  ASSERT_TRUE(ex) << why;
  EXPECT_NE(ex->address(), kPinned);

  // The control channel lists the pin.
  ASSERT_FALSE(sw_.control().empty()) << "qswitch printed no \"control unix:PATH\" line";
  auto ctl = ControlClient::connect(sw_.control(), &why);
  ASSERT_TRUE(ctl) << why;
  auto line = ctl->request(R"({"cmd":"dhcp.leases"})");
  ASSERT_TRUE(line.ok()) << to_string(line.status) << " " << line.error;
  auto j = nlohmann::json::parse(line.line, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.value("ok", false) && j["result"].is_array()) << line.line;
  bool listed = false;
  for (const auto& lease : j["result"]) {
    if (lease.value("mac", "") == "52:54:00:aa:bb:cc") {
      listed = true;
      EXPECT_EQ(lease.value("ip", ""), "10.0.2.99") << lease.dump();
      EXPECT_EQ(lease.value("pinned", false), true) << lease.dump();
    } else {
      EXPECT_NE(lease.value("ip", ""), "10.0.2.99") << lease.dump();
    }
  }
  EXPECT_TRUE(listed) << "dhcp.leases does not list the pinned MAC: " << line.line;
}

TEST_F(SlirpDhcpTest, SameMacKeepsItsAddressAcrossReboot) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  const Mac a = test_mac(0x301);
  const Mac b = test_mac(0x302);
  FrameClient a_conn;
  FrameClient b_conn;
  uint32_t a_addr = 0;
  uint32_t b_addr = 0;
  ASSERT_TRUE(lease_on_new_connection(a, 0x71000001u, &a_addr, &a_conn));
  ASSERT_TRUE(lease_on_new_connection(b, 0x71000002u, &b_addr, &b_conn));
  EXPECT_EQ(ipv4_to_string(a_addr), "10.0.2.15");
  EXPECT_EQ(ipv4_to_string(b_addr), "10.0.2.16");

  // A's guest "reboots": its connection goes away, a new one comes with a new xid.
  a_conn.close();
  uint32_t again = 0;
  ASSERT_TRUE(lease_on_new_connection(a, 0x71000003u, &again, &a_conn));
  EXPECT_EQ(ipv4_to_string(again), ipv4_to_string(a_addr)) << "A's address after a reboot";

  // B asks again while still up, on the same connection.
  std::string why;
  auto ex = test_support::run_dhcp_exchange(b_conn, b, 0x71000004u, true, kExpect, 5s, &why);
  ASSERT_TRUE(ex) << why;
  EXPECT_EQ(ipv4_to_string(ex->address()), ipv4_to_string(b_addr)) << "B asking again";

  // A reboots again and, like dhclient with a stored lease, asks for its address in INIT-REBOOT
  // (REQUEST with option 50 and no server id, RFC 2131 section 4.3.2).
  a_conn.close();
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  DhcpClientMessage req;
  req.mac = a;
  req.xid = 0x71000005u;
  req.type = DhcpType::kRequest;
  req.requested_ip = a_addr;
  ASSERT_TRUE(c[0].send_frame(test_support::make_dhcp_frame(req)));
  auto ack = test_support::wait_dhcp_reply(c[0], a, req.xid, 3s, &why);
  ASSERT_TRUE(ack) << "INIT-REBOOT REQUEST for " << ipv4_to_string(a_addr) << ": " << why;
  EXPECT_EQ(test_support::check_dhcp_reply(*ack, DhcpType::kAck, a, req.xid, kExpect), "");
  EXPECT_EQ(ipv4_to_string(ack->yiaddr), ipv4_to_string(a_addr));

  // A new MAC does not get either kept address.
  uint32_t c_addr = 0;
  ASSERT_TRUE(lease_on_new_connection(test_mac(0x303), 0x71000006u, &c_addr));
  EXPECT_EQ(ipv4_to_string(c_addr), "10.0.2.17");
}

// Garbage a guest could send to UDP 67. Each is a whole, well-framed Ethernet frame: only its
// IPv4/UDP/BOOTP content is wrong.
std::vector<std::pair<std::string, std::vector<uint8_t>>> garbage_frames(const Mac& mac,
                                                                         const Mac& eth_dst) {
  using test_support::make_udp_frame;
  std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
  const uint32_t bcast = ipv4(255, 255, 255, 255);
  auto udp = [&](std::vector<uint8_t> payload) {
    return make_udp_frame(eth_dst, mac, 0, bcast, 68, 67, payload);
  };
  DhcpClientMessage m;
  m.mac = mac;
  m.xid = 0x0badf00d;
  const std::vector<uint8_t> good = test_support::make_dhcp_payload(m);
  constexpr size_t kOpts = 240;  // first option byte: after 236 fixed bytes and the cookie

  out.push_back({"empty UDP payload", udp({})});
  out.push_back({"10 zero bytes", udp(std::vector<uint8_t>(10, 0))});
  out.push_back({"BOOTP cut at 100 bytes", udp({good.begin(), good.begin() + 100})});
  out.push_back({"BOOTP cut just before the cookie", udp({good.begin(), good.begin() + 236})});
  {
    auto p = good;
    p[236] = 0;  // no magic cookie: plain BOOTP, which the server need not answer
    out.push_back({"no magic cookie", udp(p)});
  }
  {
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    p.insert(p.end(), {53, 1});  // option 53 length 1, then the message ends
    out.push_back({"message type option cut off", udp(p)});
  }
  {
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    p.insert(p.end(), {53, 200, 1});
    out.push_back({"option length past the end", udp(p)});
  }
  {
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    p.insert(p.end(), {53, 0, 255});
    out.push_back({"message type of length 0", udp(p)});
  }
  {
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    p.insert(p.end(), {53, 1, 99, 255});
    out.push_back({"unknown message type 99", udp(p)});
  }
  {
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    p.insert(p.end(), {55, 2, 1, 3, 255});
    out.push_back({"no message type option", udp(p)});
  }
  {
    auto p = good;
    p[0] = 2;  // BOOTREPLY from a client
    out.push_back({"op BOOTREPLY", udp(p)});
  }
  {
    auto p = good;
    p[2] = 0;
    out.push_back({"hlen 0", udp(p)});
  }
  {
    auto p = good;
    p[2] = 200;
    out.push_back({"hlen 200", udp(p)});
  }
  {
    // Random option bytes after a valid cookie, never containing a message type option.
    std::mt19937 rng(12345);
    std::vector<uint8_t> p(good.begin(), good.begin() + kOpts);
    for (int i = 0; i < 300; ++i) {
      auto b = static_cast<uint8_t>(rng());
      p.push_back(b == 53 ? 52 : b);
    }
    out.push_back({"random options", udp(p)});
  }
  {
    auto f = udp(good);
    f[14 + 2] = 0x05;  // IPv4 total length 1500 in a ~342-byte frame
    f[14 + 3] = 0xdc;
    f[14 + 10] = f[14 + 11] = 0;
    uint16_t sum = test_support::internet_checksum(std::span(f).subspan(14, 20));
    f[14 + 10] = static_cast<uint8_t>(sum >> 8);
    f[14 + 11] = static_cast<uint8_t>(sum);
    out.push_back({"IPv4 total length past the frame", f});
  }
  {
    auto f = udp(good);
    f[34 + 4] = 0x07;  // UDP length 2000
    f[34 + 5] = 0xd0;
    f[34 + 6] = f[34 + 7] = 0;  // no UDP checksum, so only the length is wrong
    out.push_back({"UDP length past the datagram", f});
  }
  {
    auto f = udp(good);
    f[14 + 10] ^= 0x5a;
    out.push_back({"bad IPv4 header checksum", f});
  }
  {
    auto f = udp(good);
    f.resize(14 + 20 + 4);  // UDP header cut in the middle
    f[14 + 2] = 0;
    f[14 + 3] = 24;
    f[14 + 10] = f[14 + 11] = 0;
    uint16_t sum = test_support::internet_checksum(std::span(f).subspan(14, 20));
    f[14 + 10] = static_cast<uint8_t>(sum >> 8);
    f[14 + 11] = static_cast<uint8_t>(sum);
    out.push_back({"UDP header truncated", f});
  }
  {
    auto f = udp(good);
    f[14] = 0x4f;  // IHL 60 bytes: options that are really the UDP header and BOOTP
    out.push_back({"IPv4 header length 60 with a wrong checksum", f});
  }
  return out;
}

TEST_F(SlirpDhcpTest, GarbageDhcpGetsNothingAndBreaksNothing) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  std::vector<FrameClient> g;
  ASSERT_TRUE(connect_clients(1, &g));
  const Mac gmac = test_mac(0x401);
  size_t sent = 0;
  for (const Mac& dst : {kBroadcastMac, kSlirpMac}) {
    for (const auto& [name, frame] : garbage_frames(gmac, dst)) {
      ASSERT_TRUE(g[0].send_frame(frame)) << name << ": " << g[0].last_error();
      ++sent;
    }
  }
  // Nothing comes back: no DHCP reply, nothing IPv4 from the slirp port.
  const auto quiet_until = Clock::now() + 1500ms;
  size_t other = 0;
  for (;;) {
    RecvResult r = g[0].recv_frame(time_left(quiet_until));
    if (r.status == RecvResult::Status::kTimeout) break;
    ASSERT_TRUE(r.ok()) << "the garbage sender's port: " << to_string(r.status) << " " << r.error;
    std::string why;
    auto udp = test_support::parse_udp_frame(r.frame, &why);
    EXPECT_FALSE(udp && udp->src_port == 67)
        << "a reply from UDP 67 to garbage, " << r.frame.size() << " bytes to "
        << mac_to_string(test_support::frame_dst(r.frame));
    EXPECT_FALSE(test_support::frame_src(r.frame) == kSlirpMac &&
                 test_support::frame_ethertype(r.frame) == test_support::kEthertypeIpv4)
        << "an IPv4 frame from the slirp port in answer to garbage";
    ++other;
  }
  EXPECT_EQ(other, 0u) << "frames received after sending " << sent << " garbage frames";

  // A proper client still gets the first address: garbage took no lease.
  uint32_t addr = 0;
  ASSERT_TRUE(lease_on_new_connection(test_mac(0x402), 0x81000001u, &addr));
  EXPECT_EQ(ipv4_to_string(addr), "10.0.2.15");
  // And so does the garbage sender, on the port it sent garbage from.
  std::string why;
  auto ex = test_support::run_dhcp_exchange(g[0], gmac, 0x81000002u, false, kExpect, 5s, &why);
  ASSERT_TRUE(ex) << "the garbage sender: " << why;
  EXPECT_EQ(ipv4_to_string(ex->address()), "10.0.2.16");

  ASSERT_TRUE(sw_.running());
  auto stats = sw_.stats();
  ASSERT_TRUE(stats) << sw_.error();
  const auto* slirp = slirp_port(*stats);
  ASSERT_NE(slirp, nullptr) << "no live port whose peer names slirp in:\n" << stats->text;
  EXPECT_GT(slirp->get("rx_frames"), 0u) << "the slirp port's replies should be counted";
  EXPECT_GT(slirp->get("tx_frames"), 0u) << "frames sent to the slirp port should be counted";
  uint32_t gid = 0;
  ASSERT_TRUE(port_id(gmac, &gid));
  EXPECT_NE(stats->port(gid), nullptr) << "the garbage sender's port " << gid << " was closed";
}

TEST_F(SlirpDhcpTest, ArpForGatewayIsAnswered) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  const Mac mac = test_mac(0x501);
  FrameClient c;
  uint32_t addr = 0;
  ASSERT_TRUE(lease_on_new_connection(mac, 0x91000001u, &addr, &c));
  ASSERT_EQ(ipv4_to_string(addr), "10.0.2.15");

  struct Case {
    uint32_t target;
    Mac want;
  };
  for (const Case& k : {Case{kGateway, kSlirpMac}, Case{kDns, kSlirpDnsMac}}) {
    ASSERT_TRUE(c.send_frame(test_support::make_arp_request(mac, addr, k.target)));
    std::string why;
    RecvResult r = c.recv_frame_matching(
        [&](const std::vector<uint8_t>& f) {
          auto arp = test_support::parse_arp(f, &why);
          return arp && arp->op == 2 && arp->sender_ip == k.target;
        },
        3s);
    ASSERT_TRUE(r.ok()) << "no ARP reply for " << ipv4_to_string(k.target) << ": "
                        << to_string(r.status);
    auto arp = test_support::parse_arp(r.frame, &why);
    ASSERT_TRUE(arp) << why;
    EXPECT_EQ(mac_to_string(arp->sender_mac), mac_to_string(k.want));
    EXPECT_EQ(mac_to_string(arp->eth_src), mac_to_string(k.want));
    EXPECT_EQ(mac_to_string(arp->eth_dst), mac_to_string(mac));
    EXPECT_EQ(mac_to_string(arp->target_mac), mac_to_string(mac));
    EXPECT_EQ(ipv4_to_string(arp->target_ip), ipv4_to_string(addr));
  }
  // An address nobody has gets no answer.
  ASSERT_TRUE(c.send_frame(test_support::make_arp_request(mac, addr, ipv4(10, 0, 2, 77))));
  RecvResult r = c.recv_frame_matching(
      [](const std::vector<uint8_t>& f) {
        std::string why;
        auto arp = test_support::parse_arp(f, &why);
        return arp && arp->op == 2;
      },
      500ms);
  EXPECT_EQ(r.status, RecvResult::Status::kTimeout) << "an ARP reply for 10.0.2.77, which no "
                                                       "one has";
}

// DHCP starvation (issue 9, defect 7): a guest that invents MACs on its one port gets no more
// addresses than the per-port cap (default 8); the refusals are counted, and others still get
// addresses.
TEST_F(SlirpDhcpTest, OnePortInventingFiftyMacsGetsNoMoreThanTheCap) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  std::vector<FrameClient> c;
  ASSERT_TRUE(connect_clients(1, &c));
  std::vector<Mac> macs;
  for (uint32_t i = 0; i < 50; ++i) macs.push_back(test_mac(0x600 + i));
  std::map<size_t, uint32_t> acked;
  ASSERT_TRUE(bind_all(c[0], macs, 0xa1000000u, &acked));
  EXPECT_LE(acked.size(), 8u) << "one port got " << acked.size() << " addresses";
  EXPECT_EQ(acked.size(), 8u) << "the cap is 8, not less";
  std::set<uint32_t> distinct;
  for (const auto& [i, addr] : acked) distinct.insert(addr);
  EXPECT_EQ(distinct.size(), acked.size());
  EXPECT_EQ(slirp_counter("dhcp_over_port_cap"), 42) << "the 42 DISCOVERs refused";

  // Asking again does not get more either.
  ASSERT_TRUE(bind_all(c[0], macs, 0xa2000000u, &acked));
  EXPECT_EQ(acked.size(), 8u);
  EXPECT_EQ(slirp_counter("dhcp_over_port_cap"), 84);

  // Another guest still gets the next address.
  uint32_t addr = 0;
  ASSERT_TRUE(lease_on_new_connection(test_mac(0x6ff), 0xa3000001u, &addr));
  EXPECT_EQ(ipv4_to_string(addr), "10.0.2.23");
  EXPECT_TRUE(sw_.running());
}

// RELEASE and DECLINE count only from the port that holds the lease: another guest sending them
// with A's MAC changes nothing.
TEST_F(SlirpDhcpTest, ReleaseAndDeclineFromAnotherPortChangeNothing) {
  ASSERT_TRUE(start_switch({"--slirp"}));
  const Mac a = test_mac(0x701);
  const Mac b = test_mac(0x702);
  FrameClient a_conn;
  uint32_t a_addr = 0;
  ASSERT_TRUE(lease_on_new_connection(a, 0xb1000001u, &a_addr, &a_conn));
  const int64_t a_port = port_with_mac(a);
  ASSERT_GE(a_port, 0) << "ports does not list " << mac_to_string(a);
  nlohmann::json row = lease_row(a);
  ASSERT_FALSE(row.is_null()) << "dhcp.leases does not list " << mac_to_string(a);
  EXPECT_EQ(row.value("state", ""), "bound") << row.dump();
  EXPECT_EQ(row.value("port", int64_t{-1}), a_port) << row.dump();

  std::vector<FrameClient> bc;
  ASSERT_TRUE(connect_clients(1, &bc));
  DhcpClientMessage release;
  release.mac = a;
  release.xid = 0xb1000002u;
  release.type = DhcpType::kRelease;
  release.ciaddr = a_addr;
  release.server_id = kGateway;
  ASSERT_TRUE(bc[0].send_frame(test_support::make_dhcp_frame(release)));
  ASSERT_TRUE(until_barrier(bc[0], b, [](const auto&) {}));
  row = lease_row(a);
  ASSERT_FALSE(row.is_null()) << "after B's RELEASE, dhcp.leases does not list "
                              << mac_to_string(a);
  EXPECT_EQ(row.value("ip", ""), ipv4_to_string(a_addr)) << row.dump();
  EXPECT_EQ(row.value("state", ""), "bound") << "B released A's lease: " << row.dump();
  EXPECT_EQ(row.value("port", int64_t{-1}), a_port) << row.dump();

  DhcpClientMessage decline;
  decline.mac = a;
  decline.xid = 0xb1000003u;
  decline.type = DhcpType::kDecline;
  decline.requested_ip = a_addr;
  decline.server_id = kGateway;
  ASSERT_TRUE(bc[0].send_frame(test_support::make_dhcp_frame(decline)));
  ASSERT_TRUE(until_barrier(bc[0], b, [](const auto&) {}));
  row = lease_row(a);
  ASSERT_FALSE(row.is_null()) << "after B's DECLINE, dhcp.leases does not list "
                              << mac_to_string(a);
  EXPECT_EQ(row.value("ip", ""), ipv4_to_string(a_addr)) << row.dump();
  EXPECT_EQ(row.value("state", ""), "bound") << row.dump();
  EXPECT_EQ(slirp_counter("dhcp_not_owner"), 2);

  // A renews its address and gets it.
  DhcpClientMessage renew;
  renew.mac = a;
  renew.xid = 0xb1000004u;
  renew.type = DhcpType::kRequest;
  renew.ciaddr = a_addr;
  ASSERT_TRUE(a_conn.send_frame(test_support::make_dhcp_frame(renew)));
  std::string why;
  auto ack = test_support::wait_dhcp_reply(a_conn, a, renew.xid, 3s, &why);
  ASSERT_TRUE(ack) << "A's renewal: " << why;
  EXPECT_EQ(ack->type(), std::optional<DhcpType>(DhcpType::kAck));
  EXPECT_EQ(ipv4_to_string(ack->yiaddr), ipv4_to_string(a_addr));
}

// max-leases-per-port= sets the cap; a port that closes keeps its leases bound but its id, when
// reused, starts with none of them counted.
TEST_F(SlirpDhcpTest, ConfiguredCapHoldsAndAReusedPortIdStartsAtZero) {
  ASSERT_TRUE(start_switch({"--slirp=max-leases-per-port=3"}));
  std::vector<FrameClient> first;
  ASSERT_TRUE(connect_clients(1, &first));
  std::vector<Mac> macs1, macs2;
  for (uint32_t i = 0; i < 5; ++i) {
    macs1.push_back(test_mac(0x800 + i));
    macs2.push_back(test_mac(0x900 + i));
  }
  std::map<size_t, uint32_t> acked;
  ASSERT_TRUE(bind_all(first[0], macs1, 0xc1000000u, &acked));
  EXPECT_EQ(acked.size(), 3u);
  const std::map<size_t, uint32_t> first_leases = acked;
  const int64_t id = port_with_mac(macs1[0]);
  ASSERT_GE(id, 0);

  // The port goes away (as when its guest's QEMU exits); a new one takes its id.
  ask({{"cmd", "port.remove"}, {"args", {{"id", id}}}});
  std::vector<FrameClient> second;
  ASSERT_TRUE(connect_clients(1, &second));
  ASSERT_TRUE(bind_all(second[0], macs2, 0xc2000000u, &acked));
  ASSERT_EQ(port_with_mac(macs2[0]), id) << "the new port did not reuse the id";
  EXPECT_EQ(acked.size(), 3u) << "the new port inherited the closed port's leases";
  EXPECT_EQ(slirp_counter("dhcp_over_port_cap"), 4);
  // The closed port's leases are still bound, to nobody alive.
  for (const auto& [i, addr] : first_leases) {
    const nlohmann::json row = lease_row(macs1[i]);
    ASSERT_FALSE(row.is_null()) << mac_to_string(macs1[i]);
    EXPECT_EQ(row.value("ip", ""), ipv4_to_string(addr)) << row.dump();
    EXPECT_EQ(row.value("state", ""), "bound") << row.dump();
    EXPECT_FALSE(row.contains("port")) << "a closed port's lease names a live port: " << row.dump();
  }

  // A bad value is refused at start: exit 2, naming it.
  for (const char* bad :
       {"max-leases-per-port=-1", "max-leases-per-port=eight", "max-leases-per-port=65537"}) {
    QswitchProcess p;
    ASSERT_TRUE(p.launch(launch_options({"--slirp", bad}))) << bad;
    EXPECT_EQ(p.wait_exit(5s), std::optional<int>(2)) << bad;
    const std::string out = p.stdout_text() + p.stderr_text();
    EXPECT_NE(out.find(bad), std::string::npos) << "the message should name " << bad << ":\n"
                                                << out;
  }
}

// Issue 9: a receiver that never reads holds nobody back, with the slirp port as the sender. The
// slirp port writes what it sends to guests (here: its DHCP server's replies) into receive chunks
// of its own; before the fix, once S's queue held a broadcast reply from each of them, the slirp
// port had nowhere to write and dropped everything it sent, to every guest.
//
// B asks by DISCOVER, unicast to the gateway's MAC (so S's queue holds only the slirp port's
// frames), `window` at a time; every tenth asks for a broadcast reply (RFC 2131 section 4.1).
// B must receive every reply of a window before the next goes.
TEST_F(SlirpDhcpTest, SlirpKeepsAnsweringPastAReceiverThatNeverReads) {
  constexpr uint32_t kRequests = 60000;  // replies: ~21 MB, ~6000 broadcasts (2 MB) for S
  constexpr uint32_t kBroadcastEvery = 10;
  constexpr uint32_t kWindow = 100;
  constexpr uint32_t kXidBase = 0x7a000000;
  ASSERT_TRUE(start_switch({"--slirp"}));
  std::vector<FrameClient> c;  // B, S
  ASSERT_TRUE(connect_clients(1, &c));
  {
    std::string error;
    auto s = FrameClient::connect(address_, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    ASSERT_TRUE(s) << error;
    c.push_back(std::move(*s));
  }
  const Mac mb = test_mac(0x601), ms = test_mac(0x602);
  ASSERT_TRUE(announce(c, {mb, ms}));
  // From here on S never reads.

  uint32_t sent = 0, sent_broadcast = 0, got_unicast = 0, got_broadcast = 0, bad = 0;
  std::string failure;
  std::vector<uint8_t> wire;
  for (uint32_t window = 0; sent < kRequests && failure.empty(); ++window) {
    wire.clear();
    const uint32_t first = sent;
    uint32_t want_broadcast = 0;
    for (uint32_t i = 0; i < kWindow && sent < kRequests; ++i, ++sent) {
      DhcpClientMessage m;
      m.mac = mb;
      m.xid = kXidBase + sent;
      m.broadcast_flag = sent % kBroadcastEvery == kBroadcastEvery - 1;
      want_broadcast += m.broadcast_flag ? 1 : 0;
      FrameClient::append_wire(
          &wire, test_support::make_udp_frame(
                     kSlirpMac, mb, 0, ipv4(255, 255, 255, 255), test_support::kDhcpClientPort,
                     test_support::kDhcpServerPort, test_support::make_dhcp_payload(m)));
    }
    sent_broadcast += want_broadcast;
    if (!c[0].send_raw(wire, 2000ms)) {
      failure = "B could not send window " + std::to_string(window) + ": " + c[0].last_error();
      sent = first;
      break;
    }
    uint32_t want = sent - first;
    const auto deadline = Clock::now() + 5s;
    while (want > 0) {
      RecvResult r = c[0].recv_frame(time_left(deadline));
      if (!r.ok()) {
        failure = "B: " + std::string(to_string(r.status)) + " " + r.error + ": " +
                  std::to_string(want) + " replies of window " + std::to_string(window) +
                  " missing after 5 s (" + std::to_string(got_unicast + got_broadcast) + " of " +
                  std::to_string(sent) + " replies arrived)";
        break;
      }
      std::string why;
      auto reply = test_support::parse_dhcp_reply(r.frame, &why);
      if (!reply) continue;  // not a DHCP reply: not what this test counts
      if (reply->xid < kXidBase + first || reply->xid >= kXidBase + sent ||
          reply->type() != std::optional<DhcpType>(DhcpType::kOffer) || reply->chaddr != mb) {
        ++bad;
        continue;
      }
      const bool broadcast = (reply->xid - kXidBase) % kBroadcastEvery == kBroadcastEvery - 1;
      if (reply->eth_dst != (broadcast ? kBroadcastMac : mb)) ++bad;
      ++(broadcast ? got_broadcast : got_unicast);
      --want;
    }
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(sent, kRequests);
  EXPECT_EQ(got_unicast + got_broadcast, sent);
  EXPECT_EQ(got_broadcast, sent_broadcast);
  EXPECT_EQ(bad, 0u);

  std::string error;
  const nlohmann::json rows = stuck::ports(sw_.control(), &error);
  ASSERT_TRUE(rows.is_array()) << error;
  const nlohmann::json s = stuck::row_with_mac(rows, ms);
  ASSERT_TRUE(s.is_object()) << "no port has learned S's MAC: " << rows.dump();
  EXPECT_GT(stuck::counter(s, "drop_queue_full").value_or(0), 0u)
      << "S's queue never overflowed: " << s.dump();
  EXPECT_GT(stuck::counter(s, "tx_copied").value_or(0), 0u)
      << "S's queue never let go of the slirp port's chunks: " << s.dump();
  const nlohmann::json slirp = stuck::row_of_kind(rows, "slirp");
  ASSERT_TRUE(slirp.is_object()) << rows.dump();
  EXPECT_EQ(stuck::counter(slirp, "rx_paused").value_or(0), 0u)
      << "the slirp port dropped frames for want of buffers: " << slirp.dump();
}

}  // namespace
}  // namespace qswitch::integration
