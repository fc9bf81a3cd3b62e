// tests/integration/metrics_test.cc: `qswitch --metrics tcp:127.0.0.1:0` scraped over real HTTP.
//
// qswitch prints "metrics tcp:127.0.0.1:PORT" (the real port) on stdout before "ready". Two
// FrameClients exchange N frames each way through the switch; a GET /metrics on that port must
// then show exactly those frames and bytes on each client's port (found by its peer label and by
// the `macs` table of the control API), and the switch-wide counters that follow from them. The
// scrape is a plain blocking-with-timeouts HTTP/1.0 client written here.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "tests/integration/switch_fixture.h"

namespace qswitch::integration {
namespace {

using test_support::make_frame;
using test_support::test_mac;

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;
};

// GET `path` from 127.0.0.1:port, HTTP/1.0; reads to EOF. Every wait is bounded by `timeout`.
std::optional<HttpReply> http_get(uint16_t port, const std::string& path, std::string* error,
                                  Millis timeout = 3000ms, const std::string& method = "GET") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return (*error = std::strerror(errno)), std::nullopt;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string raw;
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
  if (!ok) *error = std::string("connect: ") + std::strerror(errno);
  const std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (ok && ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    *error = "send failed";
    ok = false;
  }
  while (ok) {
    char buf[65536];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      raw.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *error = std::string("recv: ") + std::strerror(errno);
      ok = false;
    }
    break;
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) {
    *error = "not an HTTP response: " + raw.substr(0, 200);
    return std::nullopt;
  }
  HttpReply r;
  r.status = std::atoi(raw.c_str() + 9);
  r.head = raw.substr(0, end);
  r.body = raw.substr(end + 4);
  return r;
}

// Samples of the exposition by "name{labels}" text as printed (labels in qswitch's order).
std::map<std::string, uint64_t> samples(const std::string& body) {
  std::map<std::string, uint64_t> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    if (nl == std::string::npos) nl = body.size();
    const std::string line = body.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    out[line.substr(0, sp)] = std::stoull(line.substr(sp + 1));
  }
  return out;
}

class MetricsTest : public SwitchFixture {
 protected:
  // The port from the "metrics tcp:127.0.0.1:PORT" stdout line.
  ::testing::AssertionResult metrics_port(uint16_t* port) {
    for (const std::string& line : sw_.stdout_lines()) {
      if (line.rfind("metrics ", 0) != 0) continue;
      static const std::regex re(R"(metrics tcp:127\.0\.0\.1:([0-9]+))");
      std::smatch m;
      if (!std::regex_match(line, m, re)) {
        return ::testing::AssertionFailure() << "unexpected metrics line: " << line;
      }
      const int p = std::stoi(m[1]);
      if (p <= 0 || p > 65535) return ::testing::AssertionFailure() << "bad port in: " << line;
      *port = static_cast<uint16_t>(p);
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no \"metrics tcp:127.0.0.1:PORT\" line before ready:\n"
                                         << sw_.stdout_text();
  }
};

TEST_F(MetricsTest, ScrapeShowsTheFramesTwoClientsExchanged) {
  ASSERT_TRUE(start_switch({"--metrics", "tcp:127.0.0.1:0"}));
  uint16_t port = 0;
  ASSERT_TRUE(metrics_port(&port));

  std::vector<FrameClient> clients;
  ASSERT_TRUE(connect_clients(2, &clients));
  FrameClient& a = clients[0];
  FrameClient& b = clients[1];
  const Mac mac_a = test_mac(1), mac_b = test_mac(2);
  constexpr uint32_t kFrames = 50;
  constexpr size_t kSizeAB = 200, kSizeBA = 120;

  // a -> b: b's MAC is unknown, so these are flooded, and b (the only other port) gets them all.
  for (uint32_t i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(a.send_frame(make_frame(mac_b, mac_a, kSizeAB, i)));
    RecvResult r = b.recv_frame(3000ms);
    ASSERT_TRUE(r.ok()) << "frame " << i << " a->b: " << test_support::to_string(r.status);
    ASSERT_EQ(r.frame.size(), kSizeAB);
  }
  // b -> a: a's MAC is learned, so these are unicast.
  for (uint32_t i = 0; i < kFrames; ++i) {
    ASSERT_TRUE(b.send_frame(make_frame(mac_a, mac_b, kSizeBA, i)));
    RecvResult r = a.recv_frame(3000ms);
    ASSERT_TRUE(r.ok()) << "frame " << i << " b->a: " << test_support::to_string(r.status);
    ASSERT_EQ(r.frame.size(), kSizeBA);
  }
  uint32_t id_a = 0, id_b = 0;
  ASSERT_TRUE(port_id(mac_a, &id_a));
  ASSERT_TRUE(port_id(mac_b, &id_b));

  std::string error;
  auto reply = http_get(port, "/metrics", &error);
  ASSERT_TRUE(reply.has_value()) << error;
  ASSERT_EQ(reply->status, 200) << reply->head;
  EXPECT_NE(reply->head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << reply->head;
  const auto s = samples(reply->body);

  // The peer label of a unix client is "unix:PATH (pid N)": our own pid.
  auto labels = [&](uint32_t id) {
    return "{port=\"" + std::to_string(id) + "\",peer=\"" + address_ + " (pid " +
           std::to_string(::getpid()) + ")\"}";
  };
  auto get = [&](const std::string& key) -> uint64_t {
    auto it = s.find(key);
    EXPECT_NE(it, s.end()) << "no sample " << key << " in:\n" << reply->body;
    return it == s.end() ? ~uint64_t{0} : it->second;
  };
  EXPECT_EQ(get("qswitch_port_up" + labels(id_a)), 1u);
  EXPECT_EQ(get("qswitch_port_up" + labels(id_b)), 1u);
  // Both clients read everything: nothing waits in their queues.
  EXPECT_EQ(get("qswitch_port_queued_bytes" + labels(id_a)), 0u);
  EXPECT_EQ(get("qswitch_port_queued_bytes" + labels(id_b)), 0u);
  EXPECT_EQ(get("qswitch_port_rx_frames_total" + labels(id_a)), kFrames);
  EXPECT_EQ(get("qswitch_port_rx_bytes_total" + labels(id_a)), kFrames * kSizeAB);
  EXPECT_EQ(get("qswitch_port_tx_frames_total" + labels(id_a)), kFrames);
  EXPECT_EQ(get("qswitch_port_tx_bytes_total" + labels(id_a)), kFrames * kSizeBA);
  EXPECT_EQ(get("qswitch_port_rx_frames_total" + labels(id_b)), kFrames);
  EXPECT_EQ(get("qswitch_port_rx_bytes_total" + labels(id_b)), kFrames * kSizeBA);
  EXPECT_EQ(get("qswitch_port_tx_frames_total" + labels(id_b)), kFrames);
  EXPECT_EQ(get("qswitch_port_tx_bytes_total" + labels(id_b)), kFrames * kSizeAB);
  EXPECT_EQ(get("qswitch_port_drop_queue_full_total" + labels(id_a)), 0u);
  EXPECT_EQ(get("qswitch_frames_in_total"), 2 * kFrames);
  EXPECT_EQ(get("qswitch_flooded_total"), kFrames);
  EXPECT_EQ(get("qswitch_unicast_total"), kFrames);
  EXPECT_EQ(get("qswitch_ports"), 2u);
  EXPECT_EQ(get("qswitch_mac_entries"), 2u);
  EXPECT_EQ(get("qswitch_mac_capacity"), 4096u);

  // The same numbers as the `ports` rows of the control API.
  auto stats = sw_.stats();
  ASSERT_TRUE(stats.has_value()) << sw_.error();
  ASSERT_NE(stats->port(id_a), nullptr);
  EXPECT_EQ(stats->port(id_a)->get("rx_frames"), kFrames);
  EXPECT_EQ(stats->port(id_a)->get("tx_bytes"), kFrames * kSizeBA);

  // A client that leaves is gone from the next scrape.
  b.close();
  ASSERT_TRUE(wait_port_closed(id_b, 3000ms));
  reply = http_get(port, "/metrics", &error);
  ASSERT_TRUE(reply.has_value()) << error;
  const auto after = samples(reply->body);
  EXPECT_EQ(after.count("qswitch_port_up" + labels(id_b)), 0u) << reply->body;
  EXPECT_EQ(after.at("qswitch_ports"), 1u);
}

TEST_F(MetricsTest, OtherPathsAndMethodsAreRefusedAndTheSwitchKeepsWorking) {
  ASSERT_TRUE(start_switch({"--metrics", "tcp:127.0.0.1:0"}));
  uint16_t port = 0;
  ASSERT_TRUE(metrics_port(&port));
  std::string error;
  auto r = http_get(port, "/", &error);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ(r->status, 404);
  r = http_get(port, "/metrics", &error, 3000ms, "DELETE");
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ(r->status, 405);
  // A client that never sends a request does not hold up scrapes.
  const int idle = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(idle, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
  r = http_get(port, "/metrics", &error);
  ::close(idle);
  ASSERT_TRUE(r.has_value()) << error;
  EXPECT_EQ(r->status, 200);
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(connect_clients(2, &clients));
  ASSERT_TRUE(announce(clients, {test_mac(1), test_mac(2)}));
}

TEST_F(MetricsTest, BarePortBindsTheLoopbackAddress) {
  // "--metrics 0": a port alone means 127.0.0.1 (0: any free port, printed on stdout).
  ASSERT_TRUE(start_switch({"--metrics", "0"}));
  uint16_t port = 0;
  ASSERT_TRUE(metrics_port(&port));  // insists on "metrics tcp:127.0.0.1:PORT"
  EXPECT_NE(port, 0);
}

TEST_F(MetricsTest, MetricsAddressThatIsNotTcpIsAUsageError) {
  LaunchOptions o = launch_options(
      {"--listen", "unix:" + tmp_.file("sw.sock"), "--metrics", "unix:" + tmp_.file("m.sock")});
  ASSERT_TRUE(sw_.launch(o)) << sw_.error();
  auto code = sw_.wait_exit(5000ms);
  ASSERT_TRUE(code.has_value()) << "qswitch did not exit";
  EXPECT_EQ(*code, 2);
  // The message names the option and what it accepts (not just "unknown option").
  const std::string err = sw_.stderr_text();
  EXPECT_NE(err.find("--metrics"), std::string::npos) << err;
  EXPECT_NE(err.find("tcp:HOST:PORT"), std::string::npos) << err;
}

}  // namespace
}  // namespace qswitch::integration
