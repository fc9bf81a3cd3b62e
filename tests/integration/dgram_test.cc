// tests/integration/dgram_test.cc: qswitch's datagram ports over real sockets.
//
// Each test starts qswitch with a stream listener (SwitchFixture) and the --dgram sockets it
// needs, and talks to it with DgramClients (one frame per datagram, as QEMU's -netdev dgram) and
// FrameClients (stream framing). What is asserted is what crossed the sockets and the counters
// read through the control API (`ports` rows and `stats`; the stuck-receiver tests of issue 9
// through tests/integration/stuck_peer.h).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/integration/stuck_peer.h"
#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"
#include "tests/support/dgram_client.h"

namespace qswitch::integration {
namespace {

using test_support::DgramClient;
using test_support::frame_is_intact;
using test_support::make_frame;
using test_support::test_mac;

const Mac kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

class DgramTest : public SwitchFixture {
 protected:
  std::string dgram_path() { return tmp_.file("sw.dgram"); }

  // A unix datagram client bound to <tmp>/<name>.dgram, sending to the switch's socket.
  DgramClient unix_client(const std::string& name) {
    std::string error;
    auto c = DgramClient::open(tmp_.file(name + ".dgram"), "unix:" + dgram_path(), &error);
    EXPECT_TRUE(c.has_value()) << error;
    return c ? std::move(*c) : DgramClient();
  }

  // Counter `name` of the first --dgram socket, from the control socket's `stats` reply (the
  // datagrams that belong to no port); -1 when it cannot be read.
  int64_t socket_counter(const std::string& name) {
    std::string error;
    auto c = test_support::ControlClient::connect(sw_.control(), &error);
    EXPECT_TRUE(c.has_value()) << error;
    if (!c) return -1;
    const test_support::LineResult r = c->request(R"({"cmd":"stats"})");
    EXPECT_TRUE(r.ok()) << r.error;
    const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
    if (reply.is_discarded() || !reply.contains("result")) {
      ADD_FAILURE() << "bad stats reply: " << r.line;
      return -1;
    }
    const nlohmann::json& sockets = reply["result"]["dgram_sockets"];
    if (!sockets.is_array() || sockets.empty() || !sockets[0].contains(name)) {
      ADD_FAILURE() << "no dgram_sockets[0]." << name << " in " << r.line;
      return -1;
    }
    return sockets[0][name].get<int64_t>();
  }

  // The port number in qswitch's "dgram udp:127.0.0.1:PORT" line, or "" when it printed none.
  std::string udp_port() {
    const std::string out = sw_.stdout_text();
    const std::string head = "dgram udp:127.0.0.1:";
    const size_t at = out.find(head);
    if (at == std::string::npos) return "";
    const size_t begin = at + head.size();
    return out.substr(begin, out.find_first_not_of("0123456789", begin) - begin);
  }

  // A stream client that never reads once it has announced itself (a paused VM): a small
  // receive buffer, so the switch's queue for it fills early.
  ::testing::AssertionResult stuck_stream_client(FrameClient* out) {
    std::string error;
    auto c = FrameClient::connect(address_, FrameClient::Options{.rcvbuf_size = 4096}, &error);
    if (!c) return ::testing::AssertionFailure() << error;
    *out = std::move(*c);
    return ::testing::AssertionSuccess();
  }

  // Connects the datagram client to the switch's socket, so that poll() on it waits for room in
  // the switch's receive queue (a unix socket) and only the switch's datagrams reach it.
  static ::testing::AssertionResult connect_to(const DgramClient& c, const sockaddr* to,
                                               socklen_t len) {
    if (::connect(c.fd(), to, len) == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "connect " << c.name() << ": " << std::strerror(errno);
  }
  ::testing::AssertionResult connect_to_unix_switch(const DgramClient& c) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", dgram_path().c_str());
    return connect_to(c, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
  }
  static ::testing::AssertionResult connect_to_udp_switch(const DgramClient& c,
                                                          const std::string& port) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(std::stoi(port)));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect_to(c, reinterpret_cast<sockaddr*>(&in), sizeof in);
  }

  // The `ports` rows through the control socket (a test failure and null json when unreadable).
  nlohmann::json port_rows() {
    std::string error;
    nlohmann::json rows = stuck::ports(sw_.control(), &error);
    EXPECT_TRUE(rows.is_array()) << error;
    return rows;
  }

  // A is a datagram peer (kind K as the sender: its frames sit in the socket's receive chunks),
  // B a stream client, S a stream client that never reads.
  void sender_past_stuck_stream_receiver(DgramClient& a, const Mac& ma) {
    std::vector<FrameClient> c;  // B, S
    ASSERT_TRUE(connect_clients(1, &c));
    FrameClient stuck;
    ASSERT_TRUE(stuck_stream_client(&stuck));
    c.push_back(std::move(stuck));
    const Mac mb = test_mac(2), ms = test_mac(3);
    ASSERT_TRUE(announce(c, {mb, ms}));
    // A becomes a port with its first frame; B sees it. From here on S never reads.
    ASSERT_TRUE(a.send_frame(make_frame(kBroadcast, ma, 64, 0x30000000))) << a.last_error();
    RecvResult r = c[0].recv_frame(3s);
    ASSERT_TRUE(r.ok()) << "B did not receive A's first broadcast: " << to_string(r.status);
    ASSERT_EQ(test_support::frame_src(r.frame), ma);

    const stuck::Traffic t;
    const stuck::Outcome o = stuck::run_windowed(stuck::datagram_sender(a.fd()), c[0], ma, mb, t);
    stuck::expect_everything_arrived(o, t);
    const nlohmann::json s = stuck::row_with_mac(port_rows(), ms);
    ASSERT_TRUE(s.is_object()) << "no port has learned S's MAC";
    EXPECT_GT(stuck::counter(s, "drop_queue_full").value_or(0), 0u)
        << "S's queue never overflowed: " << s.dump();
    EXPECT_GT(stuck::counter(s, "tx_copied").value_or(0), 0u)
        << "S's queue never let go of A's receive chunks: " << s.dump();
  }

  // A and B are stream clients, S a datagram peer that joins (`s_send` sends its first frame)
  // and never reads. `before_traffic` runs once S is a port.
  void stuck_dgram_receiver_holds_nobody_back(
      const std::function<bool(const std::vector<uint8_t>&)>& s_send, const Mac& ms,
      const stuck::Traffic& t,
      const std::function<::testing::AssertionResult()>& before_traffic = {}) {
    std::vector<FrameClient> c;  // A, B
    ASSERT_TRUE(connect_clients(2, &c));
    const Mac ma = test_mac(1), mb = test_mac(2);
    ASSERT_TRUE(announce(c, {ma, mb}));
    ASSERT_TRUE(s_send(make_frame(kBroadcast, ms, 64, 0x30000000))) << "S's first frame";
    for (FrameClient& x : c) {
      RecvResult r = x.recv_frame(3s);
      ASSERT_TRUE(r.ok()) << "S's first broadcast did not arrive: " << to_string(r.status);
      ASSERT_EQ(test_support::frame_src(r.frame), ms);
    }
    if (before_traffic) {
      ASSERT_TRUE(before_traffic());
    }
    const stuck::Outcome o = stuck::run_windowed(stuck::stream_sender(c[0]), c[1], ma, mb, t);
    stuck::expect_everything_arrived(o, t);
    const nlohmann::json row = stuck::row_with_mac(port_rows(), ms);
    ASSERT_TRUE(row.is_object()) << "no port has learned S's MAC";
    EXPECT_GT(stuck::counter(row, "drop_queue_full").value_or(0), 0u)
        << "S's queue never overflowed: " << row.dump();
    EXPECT_GT(stuck::counter(row, "tx_copied").value_or(0), 0u)
        << "S's queue never let go of A's receive chunks: " << row.dump();
  }

  // The `ports` reply's rows; null json when it cannot be read.
  nlohmann::json ports() {
    std::string error;
    auto c = test_support::ControlClient::connect(sw_.control(), &error);
    EXPECT_TRUE(c.has_value()) << error;
    if (!c) return nlohmann::json();
    const test_support::LineResult r = c->request(R"({"cmd":"ports"})");
    EXPECT_TRUE(r.ok()) << r.error;
    const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
    if (reply.is_discarded() || !reply.contains("result")) {
      ADD_FAILURE() << "bad ports reply: " << r.line;
      return nlohmann::json();
    }
    return reply["result"];
  }
  std::string ports_text() { return ports().dump(); }
  // The `ports` row of the (first) port of kind dgram; null json when there is none.
  nlohmann::json dgram_port_row() {
    for (const nlohmann::json& row : ports()) {
      if (row.value("kind", "") == "dgram") return row;
    }
    return nlohmann::json();
  }

  // The stats line of the live port described as `peer`, or nullptr.
  static const test_support::PortStats* port_of(const StatsSnapshot& s, const std::string& peer) {
    for (const auto& [id, p] : s.ports) {
      if (p.peer.find(peer) != std::string::npos) return &p;
    }
    return nullptr;
  }
};

TEST_F(DgramTest, EachUnixSenderBecomesAPortAndFramesCrossBothWays) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  EXPECT_NE(sw_.stdout_text().find("dgram unix:" + dgram_path() + "\n"), std::string::npos)
      << sw_.stdout_text();
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  DgramClient a = unix_client("a"), b = unix_client("b");
  const Mac ma = test_mac(1), mb = test_mac(2), ms = test_mac(3);

  // A broadcast from a reaches the stream client and (once b is a port) b.
  ASSERT_TRUE(b.send_frame(make_frame(kBroadcast, mb, 60, 1))) << b.last_error();
  RecvResult r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok()) << to_string(r.status);
  EXPECT_TRUE(frame_is_intact(r.frame, 60));
  ASSERT_TRUE(a.send_frame(make_frame(kBroadcast, ma, 100, 2))) << a.last_error();
  r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(test_support::frame_seq(r.frame), 2u);
  r = b.recv_frame(3s);
  ASSERT_TRUE(r.ok()) << "b did not get a's broadcast: " << to_string(r.status);
  EXPECT_EQ(r.frame.size(), 100u) << "a datagram carries the frame alone, no length prefix";
  EXPECT_TRUE(frame_is_intact(r.frame, 100));

  // Unicast from the stream side to a, padded to 60 bytes on the way out, and nothing to b.
  ASSERT_TRUE(streams[0].send_frame(make_frame(ma, ms, 20, 3)));
  r = a.recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.frame.size(), 60u);
  EXPECT_TRUE(frame_is_intact(r.frame, 20));
  EXPECT_FALSE(b.recv_frame(300ms).ok()) << "unicast for a leaked to b";
  // A jumbo frame from a to the stream client.
  ASSERT_TRUE(a.send_frame(make_frame(ms, ma, 65549, 4))) << a.last_error();
  r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.frame.size(), 65549u);
  EXPECT_TRUE(frame_is_intact(r.frame, 65549));

  auto stats = sw_.stats(5s);
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  EXPECT_EQ(stats->ports.size(), 3u) << stats->text;
  const auto* pa = port_of(*stats, a.name());
  ASSERT_NE(pa, nullptr) << stats->text;
  EXPECT_EQ(pa->get("rx_frames"), 2u) << stats->text;
  EXPECT_EQ(pa->get("tx_frames"), 1u) << stats->text;  // the unicast (b's broadcast came first)
}

TEST_F(DgramTest, BadDatagramsAreDroppedAndCountedAndThePortKeepsWorking) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  DgramClient a = unix_client("a");
  const Mac ma = test_mac(1);
  // From a sender with no port yet: a bad datagram creates none.
  ASSERT_TRUE(a.send_raw({}));
  std::vector<uint8_t> runt(13, 0xab);
  ASSERT_TRUE(a.send_raw(runt));
  ASSERT_TRUE(a.send_frame(make_frame(kBroadcast, ma, 64, 1)));
  RecvResult r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(test_support::frame_seq(r.frame), 1u);
  // From its port now: empty, runt, oversize (one byte past the largest frame).
  ASSERT_TRUE(a.send_raw({}));
  ASSERT_TRUE(a.send_raw(runt));
  std::vector<uint8_t> oversize = make_frame(kBroadcast, ma, 65549 + 1, 2);
  ASSERT_TRUE(a.send_raw(oversize)) << a.last_error();
  ASSERT_TRUE(a.send_frame(make_frame(kBroadcast, ma, 64, 3)));
  r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok()) << "the port stopped forwarding after bad datagrams";
  EXPECT_EQ(test_support::frame_seq(r.frame), 3u) << "a bad datagram was forwarded";

  auto stats = sw_.stats(5s);
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  const auto* pa = port_of(*stats, a.name());
  ASSERT_NE(pa, nullptr) << stats->text;
  EXPECT_EQ(pa->get("drop_bad_length"), 3u) << stats->text;
  EXPECT_EQ(pa->get("rx_frames"), 2u) << stats->text;
  EXPECT_EQ(stats->ports.size(), 2u) << stats->text;
  EXPECT_GE(sw_.count_stderr_lines("short datagram"), 1u) << sw_.stderr_text();
  // The two bad datagrams sent before a had a port are counted on the socket.
  EXPECT_EQ(socket_counter("drop_bad_length"), 2);
}

TEST_F(DgramTest, APeerWhoseSocketIsGoneIsClosedAndOthersCarryOn) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  DgramClient a = unix_client("a"), b = unix_client("b");
  ASSERT_TRUE(a.send_frame(make_frame(kBroadcast, test_mac(1), 64, 1)));
  ASSERT_TRUE(b.send_frame(make_frame(kBroadcast, test_mac(2), 64, 2)));
  ASSERT_EQ(streams[0].drain(500ms), 2u);
  a.close();  // closes the socket and removes its path, as an exiting QEMU leaves it
  // The next flood finds a's path gone: its port closes, b still gets frames.
  ASSERT_TRUE(streams[0].send_frame(make_frame(kBroadcast, test_mac(3), 64, 3)));
  RecvResult r = b.recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(test_support::frame_seq(r.frame), 3u);
  EXPECT_TRUE(wait_port_count(2, 3s));  // the stream client and b: a's port closed
  ASSERT_TRUE(streams[0].send_frame(make_frame(test_mac(2), test_mac(3), 64, 4)));
  r = b.recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(test_support::frame_seq(r.frame), 4u);
  auto stats = sw_.stats(5s);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->ports.size(), 2u) << stats->text;
}

TEST_F(DgramTest, ConnectedUdpPortForwardsAndDropsWhatUdpCannotCarry) {
  // Our side binds a free port; the peer (the test) binds another; qswitch sends only there.
  std::string error;
  auto peer = DgramClient::open("127.0.0.1:0", "udp:127.0.0.1:9", &error);
  ASSERT_TRUE(peer.has_value()) << error;
  const std::string peer_addr = peer->name().substr(4);
  ASSERT_TRUE(start_switch({"--dgram", "udp:127.0.0.1:0-" + peer_addr}));
  // The switch printed its real port: point the peer at it.
  const std::string out = sw_.stdout_text();
  const size_t at = out.find("dgram udp:127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string ours = out.substr(at + 10, out.find('-', at) - at - 10);
  peer->close();
  peer = DgramClient::open(peer_addr, "udp:" + ours, &error);
  ASSERT_TRUE(peer.has_value()) << error;
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  const Mac mp = test_mac(1), ms = test_mac(2);
  ASSERT_TRUE(peer->send_frame(make_frame(kBroadcast, mp, 1514, 1)));
  RecvResult r = streams[0].recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(frame_is_intact(r.frame, 1514));
  // 65549 bytes do not fit a UDP datagram over IPv4 (65507): dropped and counted, and the next
  // frame still goes.
  ASSERT_TRUE(streams[0].send_frame(make_frame(mp, ms, 65549, 2)));
  ASSERT_TRUE(streams[0].send_frame(make_frame(mp, ms, 1000, 3)));
  r = peer->recv_frame(3s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(test_support::frame_seq(r.frame), 3u);
  // A datagram from any other address is not this port's: ignored (the socket is connected).
  auto stranger = DgramClient::open("127.0.0.1:0", "udp:" + ours, &error);
  ASSERT_TRUE(stranger.has_value()) << error;
  ASSERT_TRUE(stranger->send_frame(make_frame(kBroadcast, test_mac(9), 64, 4)));
  EXPECT_FALSE(streams[0].recv_frame(300ms).ok()) << "a stranger's datagram was forwarded";
  auto stats = sw_.stats(5s);
  ASSERT_TRUE(stats.has_value());
  const auto* p = port_of(*stats, "udp:127.0.0.1:");
  ASSERT_NE(p, nullptr) << stats->text;
  EXPECT_EQ(p->get("drop_too_big"), 1u) << stats->text;
  EXPECT_EQ(p->get("tx_frames"), 1u) << stats->text;
}

// The usual order: the switch starts first, QEMU (the peer) later. Until the peer binds its
// address every datagram to it comes back as an ICMP port unreachable, which a connected UDP socket
// reports as a pending error (EPOLLERR). The port survives that, counts it, and carries frames
// both ways as soon as the peer is there: the same port, not a new one. (Over ::1: the IPv4 ICMP
// output of the machine these tests were written on stopped working for every process, while
// ICMPv6 went on; the code path is the same for both families.)
TEST_F(DgramTest, ConnectedUdpPortStartedBeforeItsPeerCarriesFramesOnceThePeerBinds) {
  // A free UDP port for the peer, and nothing bound on it while the switch starts.
  std::string error;
  auto probe = DgramClient::open("[::1]:0", "udp:[::1]:9", &error);
  ASSERT_TRUE(probe.has_value()) << error;
  const std::string peer_addr = probe->name().substr(4);  // "[::1]:PORT"
  probe->close();
  ASSERT_TRUE(start_switch({"--dgram", "udp:[::1]:0-" + peer_addr}));
  const std::string out = sw_.stdout_text();
  const size_t at = out.find("dgram udp:[::1]:");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string ours = out.substr(at + 10, out.find('-', at) - at - 10);
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  const Mac mp = test_mac(1), ms = test_mac(2);

  const nlohmann::json before = dgram_port_row();
  ASSERT_TRUE(before.is_object()) << "no dgram port in `ports`";
  const uint64_t id = before["id"].get<uint64_t>();
  // Broadcasts while nobody listens on the peer's address: each one is refused by ICMP.
  bool refused = false;
  for (int i = 0; i < 50 && !refused; ++i) {
    ASSERT_TRUE(streams[0].send_frame(make_frame(kBroadcast, ms, 64, 100 + i)));
    for (int polls = 0; polls < 20 && !refused; ++polls) {
      const nlohmann::json row = dgram_port_row();
      ASSERT_TRUE(row.is_object())
          << "the dgram port is gone after an ICMP error: " << ports_text();
      refused = row["counters"].value("drop_unreachable", uint64_t{0}) > 0;
      if (!refused) std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_TRUE(refused) << "no drop_unreachable after 50 refused broadcasts: " << ports_text();

  // The peer appears: frames cross both ways on the same port.
  auto peer = DgramClient::open(peer_addr, "udp:" + ours, &error);
  ASSERT_TRUE(peer.has_value()) << error;
  ASSERT_TRUE(peer->send_frame(make_frame(kBroadcast, mp, 200, 1)));
  RecvResult r = streams[0].recv_frame_matching(
      [](const std::vector<uint8_t>& f) { return test_support::frame_seq(f) == 1u; }, 3s);
  ASSERT_TRUE(r.ok()) << "the peer's frame did not reach the stream client: "
                      << to_string(r.status);
  EXPECT_TRUE(frame_is_intact(r.frame, 200));
  ASSERT_TRUE(streams[0].send_frame(make_frame(mp, ms, 300, 2)));
  // A broadcast sent before the peer bound may still have been on its way: skip those.
  for (int i = 0; i < 60; ++i) {
    r = peer->recv_frame(3s);
    if (!r.ok() || test_support::frame_seq(r.frame) == 2u) break;
  }
  ASSERT_TRUE(r.ok()) << "the stream client's frame did not reach the peer: "
                      << to_string(r.status);
  EXPECT_EQ(test_support::frame_seq(r.frame), 2u);
  EXPECT_TRUE(frame_is_intact(r.frame, 300));

  const nlohmann::json after = dgram_port_row();
  ASSERT_TRUE(after.is_object()) << ports_text();
  EXPECT_EQ(after["id"].get<uint64_t>(), id) << "the dgram port was replaced: " << ports_text();
  EXPECT_EQ(after["state"], "up") << after;
  EXPECT_GT(after["counters"]["drop_unreachable"].get<uint64_t>(), 0u) << after;
  EXPECT_GE(after["counters"]["rx_frames"].get<uint64_t>(), 1u) << after;
}

TEST_F(DgramTest, AFloodFromOneDgramPeerDoesNotStopTheStreamPorts) {
  std::vector<FrameClient> streams;
  std::vector<Mac> macs;
  ASSERT_TRUE(start_with_clients(2, &streams, &macs, {"--dgram", "unix:" + dgram_path()}));
  DgramClient flood = unix_client("flood");
  // 20000 broadcasts as fast as the socket takes them (nobody reads them on the dgram side).
  std::vector<uint8_t> f = make_frame(kBroadcast, test_mac(50), 64, 0);
  size_t sent = 0;
  for (int i = 0; i < 20000; ++i) {
    if (flood.send_raw(f)) ++sent;
  }
  EXPECT_GT(sent, 0u);
  // The stream ports still forward to each other (after the flood's broadcasts drained).
  streams[0].drain(500ms);
  streams[1].drain(500ms);
  EXPECT_TRUE(send_and_expect(streams[0], streams[1], macs[1], macs[0], 128, 7, 5s));
}

TEST_F(DgramTest, UnboundSendersAreNotAnsweredNorMadePorts) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  std::vector<FrameClient> streams;
  ASSERT_TRUE(connect_clients(1, &streams));
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", dgram_path().c_str());
  std::vector<uint8_t> f = make_frame(kBroadcast, test_mac(1), 64, 1);
  ASSERT_EQ(::sendto(fd, f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&sun), sizeof sun),
            static_cast<ssize_t>(f.size()));
  ::close(fd);
  // Wait for the datagram to be counted (the event), then nothing may have been forwarded.
  int64_t unbound = 0;
  for (int i = 0; i < 200 && unbound < 1; ++i) {  // polling `stats`, bounded (2 s and more)
    unbound = socket_counter("drop_unbound");
    if (unbound < 1) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(unbound, 1);
  EXPECT_FALSE(streams[0].recv_frame(300ms).ok());
  EXPECT_EQ(socket_counter("drop_unbound"), 1);
  auto stats = sw_.stats(5s);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->ports.size(), 1u) << stats->text;
}

// Issue 9: a receiver that never reads holds nobody back, with a datagram port on either side.
// Before the fix, every frame queued to S pinned the receive chunk it arrived in: once S's queue
// held a broadcast from each of A's chunks, the switch stopped reading A for good.
TEST_F(DgramTest, UnixSenderKeepsGoingPastAStreamReceiverThatNeverReads) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  DgramClient a = unix_client("a");
  ASSERT_TRUE(connect_to_unix_switch(a));
  sender_past_stuck_stream_receiver(a, test_mac(1));
}

TEST_F(DgramTest, UdpSenderKeepsGoingPastAStreamReceiverThatNeverReads) {
  ASSERT_TRUE(start_switch({"--dgram", "udp:127.0.0.1:0"}));
  const std::string port = udp_port();
  ASSERT_FALSE(port.empty()) << sw_.stdout_text();
  std::string error;
  auto a = DgramClient::open("127.0.0.1:0", "udp:127.0.0.1:" + port, &error);
  ASSERT_TRUE(a.has_value()) << error;
  ASSERT_TRUE(connect_to_udp_switch(*a, port));
  sender_past_stuck_stream_receiver(*a, test_mac(1));
}

// S is a unix peer whose socket is bound and never read (a guest whose NIC is not up): its
// receive queue fills, and the switch's queue for it holds A's frames.
TEST_F(DgramTest, UnixReceiverThatNeverReadsHoldsNobodyBack) {
  ASSERT_TRUE(start_switch({"--dgram", "unix:" + dgram_path()}));
  DgramClient s = unix_client("s");
  stuck_dgram_receiver_holds_nobody_back(
      [&s](const std::vector<uint8_t>& f) { return s.send_frame(f); }, test_mac(3),
      stuck::Traffic{});
}

// A UDP peer that never reads pushes nothing back: the kernel drops at its socket and qswitch's
// sends all succeed, so nothing waits in qswitch for it and nothing is pinned. A UDP receiver is
// therefore covered by the sender direction (UdpSenderKeepsGoingPastAStreamReceiverThatNeverReads).
// A test that throttled a namespace's loopback with tc tbf to make qswitch's UDP socket fill was
// dropped: it queues megabytes of the kernel's own traffic on a shared kernel for minutes.

TEST_F(DgramTest, BadDgramValuesAreUsageErrors) {
  for (const std::string bad :
       {"unix:", "udp:localhost:5000", "udp:127.0.0.1", "udp:127.0.0.1:1-127.0.0.1:0",
        "mcast:10.0.0.1:5000", "mcast:230.0.0.1:0", "mcast:230.0.0.1:5000,ttl=3",
        "tcp:1.2.3.4:5"}) {
    QswitchProcess p;
    LaunchOptions o = launch_options({"--no-slirp", "--dgram", bad});
    ASSERT_FALSE(p.start(o, 5s)) << bad << " was accepted";
    auto status = p.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << bad;
    EXPECT_EQ(*status, 2) << bad;
    EXPECT_NE(p.stderr_text().find("--dgram '" + bad + "'"), std::string::npos)
        << bad << ": " << p.stderr_text();
  }
}

}  // namespace
}  // namespace qswitch::integration
