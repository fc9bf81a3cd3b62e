// tests/integration/ports_test.cc: the control commands about the switch itself (ports, macs,
// stats, port.add, port.remove) against a running qswitch, checked against what crossed real
// sockets: counters must equal the frames the test sent, the MAC table must hold the MACs the
// clients used, a port added at run time must carry frames, and a removed port's peer must see
// its connection end while everyone else carries on.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using test_support::FrameListener;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::test_mac;

class PortsTest : public SwitchFixture {
 protected:
  ::testing::AssertionResult open_control() {
    if (sw_.control().empty()) {
      return ::testing::AssertionFailure() << "qswitch printed no \"control unix:PATH\" line";
    }
    std::string error;
    auto c = ControlClient::connect(sw_.control(), &error);
    if (!c) return ::testing::AssertionFailure() << "control connect: " << error;
    ctl_ = std::move(*c);
    return ::testing::AssertionSuccess();
  }

  // Sends one request; the parsed reply (a null json when none came).
  json ask(const json& request) {
    const test_support::LineResult r = ctl_->request(request.dump());
    if (!r.ok()) {
      ADD_FAILURE() << "no reply to " << request.dump() << ": " << to_string(r.status) << " "
                    << r.error;
      return json();
    }
    json reply = json::parse(r.line, nullptr, false);
    if (reply.is_discarded()) ADD_FAILURE() << "reply is not JSON: " << r.line;
    return reply;
  }
  json ok_result(const json& request) {
    json reply = ask(request);
    EXPECT_TRUE(reply.is_object() && reply.value("ok", false))
        << request.dump() << " -> " << reply.dump();
    return reply.is_object() && reply.contains("result") ? reply["result"] : json();
  }
  std::string error_of(const json& request) {
    json reply = ask(request);
    EXPECT_TRUE(reply.is_object() && reply.contains("ok") && !reply["ok"].get<bool>())
        << request.dump() << " should fail, got " << reply.dump();
    return reply.is_object() ? reply.value("error", std::string()) : std::string();
  }
  // The `ports` row of the port that learned `mac`; null json if none.
  json port_row_with_mac(const Mac& mac) {
    const std::string want = mac_to_string(mac);
    for (const json& row : ok_result({{"cmd", "ports"}})) {
      for (const json& m : row["macs"]) {
        if (m.get<std::string>() == want) return row;
      }
    }
    return json();
  }

  std::optional<ControlClient> ctl_;
};

TEST_F(PortsTest, PortsMacsAndStatsMatchTheFramesThatCrossed) {
  std::vector<FrameClient> c;
  std::vector<Mac> m;
  ASSERT_TRUE(start_with_clients(3, &c, &m));
  ASSERT_TRUE(open_control());

  const json a0 = port_row_with_mac(m[0]);
  const json b0 = port_row_with_mac(m[1]);
  ASSERT_FALSE(a0.is_null()) << "no port lists " << mac_to_string(m[0]);
  ASSERT_FALSE(b0.is_null()) << "no port lists " << mac_to_string(m[1]);
  EXPECT_EQ(a0["kind"], "stream");
  EXPECT_EQ(a0["state"], "up");
  EXPECT_EQ(a0["endpoint"], "listen-1");
  EXPECT_NE(a0["peer"].get<std::string>().find(address_.substr(5)), std::string::npos) << a0;
  const json s0 = ok_result({{"cmd", "stats"}});

  constexpr int kFrames = 50;
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(send_and_expect(c[0], c[1], m[1], m[0], 200, 1000 + i));
  }
  const json a1 = port_row_with_mac(m[0]);
  const json b1 = port_row_with_mac(m[1]);
  const json s1 = ok_result({{"cmd", "stats"}});
  EXPECT_EQ(
      a1["counters"]["rx_frames"].get<uint64_t>() - a0["counters"]["rx_frames"].get<uint64_t>(),
      uint64_t{kFrames});
  EXPECT_EQ(a1["counters"]["rx_bytes"].get<uint64_t>() - a0["counters"]["rx_bytes"].get<uint64_t>(),
            uint64_t{kFrames} * 200);
  EXPECT_EQ(
      b1["counters"]["tx_frames"].get<uint64_t>() - b0["counters"]["tx_frames"].get<uint64_t>(),
      uint64_t{kFrames});
  EXPECT_EQ(s1["frames_in"].get<uint64_t>() - s0["frames_in"].get<uint64_t>(), uint64_t{kFrames});
  EXPECT_EQ(s1["unicast"].get<uint64_t>() - s0["unicast"].get<uint64_t>(), uint64_t{kFrames});
  EXPECT_EQ(s1["ports"], 3);
  EXPECT_EQ(s1["mac_entries"], 3);
  EXPECT_EQ(s1["mac_capacity"], 4096);

  // The MAC table names each client's MAC on the port `ports` gives it.
  const json macs = ok_result({{"cmd", "macs"}});
  ASSERT_TRUE(macs.is_array());
  EXPECT_EQ(macs.size(), 3u) << macs;
  for (size_t i = 0; i < 3; ++i) {
    const json row = port_row_with_mac(m[i]);
    bool found = false;
    for (const json& e : macs) {
      if (e["mac"] == mac_to_string(m[i])) {
        found = true;
        EXPECT_EQ(e["port"], row["id"]) << e;
        EXPECT_EQ(e["vlan"], 1) << e;  // no VLAN settings: every port is on VLAN 1
        EXPECT_LE(e["age_s"].get<int64_t>(), 5);
      }
    }
    EXPECT_TRUE(found) << mac_to_string(m[i]) << " missing from " << macs;
    EXPECT_EQ(row["vlan"], json({{"mode", "access"}, {"vlan", 1}})) << row;
  }
  // `vlans`: VLAN 1 alone, carried untagged by the three clients' ports, with their three MACs.
  const json vlans = ok_result({{"cmd", "vlans"}});
  ASSERT_TRUE(vlans.is_array() && vlans.size() == 1u) << vlans;
  EXPECT_EQ(vlans[0]["vlan"], 1);
  EXPECT_EQ(vlans[0]["macs"], 3);
  EXPECT_EQ(vlans[0]["tagged_ports"], json::array());
  json ids = json::array();
  for (size_t i = 0; i < 3; ++i) ids.push_back(port_row_with_mac(m[i])["id"]);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(vlans[0]["untagged_ports"], ids) << vlans;
}

// `ports` shows per port the bytes queued to it that its peer has not taken yet, `stats` their
// sum (the soak's queued-bytes figure): a client that does not read has some; once it has read
// everything, none.
TEST_F(PortsTest, QueuedBytesShowWhatAPeerHasNotTakenYet) {
  std::vector<FrameClient> c;
  std::vector<Mac> m;
  ASSERT_TRUE(start_with_clients(2, &c, &m));
  ASSERT_TRUE(open_control());
  EXPECT_EQ(port_row_with_mac(m[1])["queued_bytes"], 0) << port_row_with_mac(m[1]);
  // 300 frames of 1400 bytes (420 KB) to c[1], which reads nothing for now: more than its
  // socket takes, less than half of its 1 MiB queue (no congestion, nothing dropped).
  constexpr int kFrames = 300;
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(
        c[0].send_frame(test_support::make_frame(m[1], m[0], 1400, static_cast<uint32_t>(i))))
        << c[0].last_error();
  }
  json row;
  for (int i = 0; i < 250; ++i) {
    row = port_row_with_mac(m[1]);
    if (row.is_object() && row["queued_bytes"].get<uint64_t>() > 0) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GT(row["queued_bytes"].get<uint64_t>(), 0u) << row;
  EXPECT_LE(row["queued_bytes"].get<uint64_t>(), uint64_t{kFrames} * (1400 + 4)) << row;
  EXPECT_GE(ok_result({{"cmd", "stats"}})["queued_bytes"].get<uint64_t>(),
            row["queued_bytes"].get<uint64_t>());
  for (int i = 0; i < kFrames; ++i) {
    RecvResult r = c[1].recv_frame(5s);
    ASSERT_TRUE(r.ok()) << "frame " << i << " of " << kFrames;
  }
  for (int i = 0; i < 250; ++i) {
    row = port_row_with_mac(m[1]);
    if (row.is_object() && row["queued_bytes"].get<uint64_t>() == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(row["queued_bytes"], 0) << row;
  EXPECT_EQ(ok_result({{"cmd", "stats"}})["queued_bytes"], 0);
}

TEST_F(PortsTest, PortAddedAtRunTimeCarriesFramesAndRemoveDisconnectsItsGuests) {
  std::vector<FrameClient> c;
  std::vector<Mac> m;
  ASSERT_TRUE(start_with_clients(2, &c, &m));
  ASSERT_TRUE(open_control());

  const std::string second = "unix:" + tmp_.file("second.sock");
  const json added =
      ok_result({{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", second}}}});
  ASSERT_EQ(added["endpoint"], "listen-2") << added;
  std::string error;
  auto late = FrameClient::connect(second, &error);
  ASSERT_TRUE(late) << error;
  const Mac late_mac = test_mac(77);
  // The new guest announces itself, then unicast flows both ways with a first-listener client.
  ASSERT_TRUE(send_and_expect(*late, c[0], kBroadcastMac, late_mac, 64, 1));
  ASSERT_TRUE(c[1].recv_frame(3s).ok()) << "the broadcast did not reach the second client";
  ASSERT_TRUE(send_and_expect(c[0], *late, late_mac, m[0], 300, 2));
  ASSERT_TRUE(send_and_expect(*late, c[1], m[1], late_mac, 300, 3));
  EXPECT_EQ(port_row_with_mac(late_mac)["endpoint"], "listen-2");

  const json removed = ok_result({{"cmd", "port.remove"}, {"args", {{"id", "listen-2"}}}});
  EXPECT_EQ(removed["removed"], "listen-2");
  EXPECT_TRUE(late->wait_eof(3s)) << "the guest of a removed listener stays connected";
  EXPECT_TRUE(port_row_with_mac(late_mac).is_null()) << "its MAC is still learned";
  for (const json& e : ok_result({{"cmd", "macs"}})) EXPECT_NE(e["mac"], mac_to_string(late_mac));
  // Nobody accepts on the removed socket any more; the first listener's guests carry on.
  EXPECT_FALSE(FrameClient::connect(second, &error, 500ms));
  ASSERT_TRUE(send_and_expect(c[0], c[1], m[1], m[0], 128, 4));
}

TEST_F(PortsTest, PortAddConnectDialsAPeerAndRemovingItsPortStopsTheRedial) {
  std::vector<FrameClient> c;
  std::vector<Mac> m;
  ASSERT_TRUE(start_with_clients(1, &c, &m));
  ASSERT_TRUE(open_control());

  std::string error;
  auto peer_listener = FrameListener::listen("unix:" + tmp_.file("peer.sock"), &error);
  ASSERT_TRUE(peer_listener) << error;
  const json added =
      ok_result({{"cmd", "port.add"},
                 {"args", {{"mode", "connect"}, {"address", peer_listener->address()}}}});
  ASSERT_EQ(added["endpoint"], "connect-1") << added;
  auto peer = peer_listener->accept(5s, &error);
  ASSERT_TRUE(peer) << "qswitch did not dial: " << error;
  const Mac peer_mac = test_mac(88);
  ASSERT_TRUE(send_and_expect(*peer, c[0], kBroadcastMac, peer_mac, 64, 1));
  ASSERT_TRUE(send_and_expect(c[0], *peer, peer_mac, m[0], 500, 2));
  const json row = port_row_with_mac(peer_mac);
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["endpoint"], "connect-1");

  // Removing the dialled port by its id removes the dialler: no redial follows.
  const json removed = ok_result({{"cmd", "port.remove"}, {"args", {{"id", row["id"]}}}});
  EXPECT_EQ(removed["endpoint"], "connect-1") << removed;
  EXPECT_TRUE(peer->wait_eof(3s)) << "the dialled peer stays connected";
  EXPECT_FALSE(peer_listener->accept(1500ms, &error)) << "qswitch redialled a removed port";
  for (const json& r : ok_result({{"cmd", "ports"}})) EXPECT_NE(r["endpoint"], "connect-1") << r;
}

TEST_F(PortsTest, BadPortRequestsGetErrorsAndChangeNothing) {
  std::vector<FrameClient> c;
  std::vector<Mac> m;
  ASSERT_TRUE(start_with_clients(2, &c, &m));
  ASSERT_TRUE(open_control());
  const json before = ok_result({{"cmd", "ports"}});

  EXPECT_NE(error_of({{"cmd", "port.add"}, {"args", {{"mode", "bridge"}, {"address", "unix:/x"}}}})
                .find("bridge"),
            std::string::npos);
  EXPECT_NE(error_of({{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", "udp:1"}}}})
                .find("udp:1"),
            std::string::npos);
  // The switch's own socket is live: listening there again must fail and leave it working.
  EXPECT_NE(error_of({{"cmd", "port.add"}, {"args", {{"mode", "listen"}, {"address", address_}}}})
                .find("in use"),
            std::string::npos);
  EXPECT_FALSE(error_of({{"cmd", "port.add"}, {"args", {{"mode", "listen"}}}}).empty());
  EXPECT_NE(error_of({{"cmd", "port.remove"}, {"args", {{"id", "9999"}}}}).find("9999"),
            std::string::npos);
  EXPECT_NE(error_of({{"cmd", "port.remove"}, {"args", {{"id", "listen-99"}}}}).find("listen-99"),
            std::string::npos);
  EXPECT_FALSE(error_of({{"cmd", "port.remove"}, {"args", {{"id", json::array()}}}}).empty());
  EXPECT_FALSE(error_of({{"cmd", "ports"}, {"args", {{"verbose", "yes"}}}}).empty());

  const json after = ok_result({{"cmd", "ports"}});
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) EXPECT_EQ(after[i]["id"], before[i]["id"]);
  ASSERT_TRUE(send_and_expect(c[0], c[1], m[1], m[0], 100, 9));
  std::string error;
  EXPECT_TRUE(FrameClient::connect(address_, &error)) << "the switch socket stopped accepting";
}

}  // namespace
}  // namespace qswitch::integration
