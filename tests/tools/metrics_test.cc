// tests/tools/metrics_test.cc: the Prometheus endpoint in two halves.
// - render_metrics over a real SwitchLoop with two StreamPorts on socketpairs: frames cross the
//   switch (the test pumps the loop in its own thread), the text is parsed back by a small parser
//   of the 0.0.4 format written here (HELP/TYPE before samples, families contiguous, label
//   escapes), and the counters must equal the frames and bytes that crossed.
// - MetricsServer on a real tcp socket on 127.0.0.1, its loop in a thread of the test; clients are
//   blocking sockets whose every read is bounded by a timeout.
#include "tools/qswitch/services/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/dgram/dgram_port.h"
#include "backends/runtime/switch_loop.h"
#include "backends/stream/stream_port.h"
#include "tests/support/frame_client.h"
#include "tests/support/test_frames.h"
#include "tools/qswitch/services/metrics_text.h"

namespace qswitch::tools {
namespace {

using namespace std::chrono_literals;
using test_support::FrameClient;
using test_support::make_frame;
using test_support::test_mac;

// ---- a parser of the text exposition format 0.0.4, strict about what render_metrics promises ----

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  uint64_t value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter/gauge
  std::map<std::string, std::string> helps;
  std::vector<Sample> samples;
  std::string error;  // empty when the text parsed

  std::optional<uint64_t> get(const std::string& name, const Labels& labels = {}) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
};

bool parse_labels(const std::string& text, size_t& i, Labels& out, std::string& error) {
  ++i;  // '{'
  while (i < text.size() && text[i] != '}') {
    const size_t eq = text.find('=', i);
    if (eq == std::string::npos) return (error = "label without '='"), false;
    const std::string key = text.substr(i, eq - i);
    i = eq + 1;
    if (i >= text.size() || text[i] != '"') return (error = "label value not quoted"), false;
    ++i;
    std::string value;
    for (;;) {
      if (i >= text.size()) return (error = "unterminated label value"), false;
      const char ch = text[i++];
      if (ch == '"') break;
      if (ch == '\n') return (error = "raw newline in a label value"), false;
      if (ch != '\\') {
        value += ch;
        continue;
      }
      if (i >= text.size()) return (error = "dangling backslash"), false;
      const char esc = text[i++];
      if (esc == '\\')
        value += '\\';
      else if (esc == '"')
        value += '"';
      else if (esc == 'n')
        value += '\n';
      else
        return (error = std::string("bad escape \\") + esc), false;
    }
    if (!out.emplace(key, value).second) return (error = "label repeated: " + key), false;
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return (error = "unterminated label set"), false;
  ++i;  // '}'
  return true;
}

Exposition parse_exposition(const std::string& text) {
  Exposition e;
  if (text.empty() || text.back() != '\n') {
    e.error = "text does not end in a newline";
    return e;
  }
  std::set<std::string> closed;  // families whose samples are over (must not come back)
  std::string current;           // family of the previous sample or TYPE line
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    auto fail = [&](const std::string& why) { e.error = why + " in line: " + line; };
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const bool is_type = line[2] == 'T';
      const size_t sp = line.find(' ', 7);
      if (sp == std::string::npos) return fail("no text after the name"), e;
      const std::string name = line.substr(7, sp - 7);
      const std::string rest = line.substr(sp + 1);
      if (closed.count(name) != 0 || e.get(name).has_value()) {
        return fail("HELP/TYPE after samples of " + name), e;
      }
      if (!current.empty() && current != name) closed.insert(current);
      current = name;
      auto& slot = is_type ? e.types : e.helps;
      if (slot.count(name) != 0) return fail("repeated"), e;
      if (is_type && rest != "counter" && rest != "gauge") return fail("unknown type"), e;
      slot[name] = rest;
      continue;
    }
    if (line.empty() || line[0] == '#') return fail("unexpected line"), e;
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      std::string why;
      if (!parse_labels(line, i, s.labels, why)) return fail(why), e;
    }
    if (i >= line.size() || line[i] != ' ') return fail("no space before the value"), e;
    const std::string value = line.substr(i + 1);
    if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
      return fail("value is not a whole number"), e;
    }
    s.value = std::stoull(value);
    if (e.types.count(s.name) == 0 || e.helps.count(s.name) == 0) {
      return fail("sample before its HELP and TYPE"), e;
    }
    if (s.name != current) return fail("samples of " + s.name + " are not together"), e;
    for (const Sample& other : e.samples) {
      if (other.name == s.name && other.labels == s.labels) return fail("duplicate series"), e;
    }
    e.samples.push_back(std::move(s));
  }
  return e;
}

TEST(MetricsParserTest, RejectsWhatTheFormatForbids) {
  EXPECT_EQ(parse_exposition("# HELP a x\n# TYPE a gauge\na 1\n").error, "");
  EXPECT_NE(parse_exposition("a 1\n").error, "");  // no HELP/TYPE
  EXPECT_NE(parse_exposition("# HELP a x\n# TYPE a gauge\na{p=\"\\q\"} 1\n").error, "");
  EXPECT_NE(parse_exposition("# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n"
                             "a{x=\"1\"} 2\n")
                .error,
            "");  // family split
}

// ---- render_metrics over a real switch ----

// The switch's side of a socketpair as a StreamPort; the test's side as a FrameClient.
struct Peer {
  FrameClient client;
  backends::LoopPort* port = nullptr;
};

Peer attach_peer(backends::SwitchLoop& loop, const std::string& describe) {
  int sv[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  Peer p;
  p.port =
      &loop.adopt(std::make_unique<backends::StreamPort>(loop, io::Fd::adopt(sv[0]), describe));
  p.client = FrameClient(sv[1]);
  return p;
}

// Runs the loop (without blocking) until `count` frames arrived at `to`; returns how many did.
size_t pump_until_received(backends::SwitchLoop& loop, FrameClient& to, size_t count) {
  size_t got = 0;
  for (int i = 0; i < 3000 && got < count; ++i) {
    uv_run(loop.uv(), UV_RUN_NOWAIT);
    for (;;) {
      test_support::RecvResult r = to.recv_frame(std::chrono::milliseconds(0));
      if (!r.ok()) break;
      ++got;
    }
    if (got < count) std::this_thread::sleep_for(1ms);
  }
  return got;
}

TEST(MetricsTextTest, KindSpecificCountersAreFamiliesOfTheirPortsOnly) {
  backends::SwitchLoop loop(backends::LoopConfig{});
  Peer a = attach_peer(loop, "unix:/tmp/stream");
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  io::Fd ours = io::Fd::adopt(sv[0]);
  io::Fd theirs = io::Fd::adopt(sv[1]);
  std::string error;
  backends::LoopPort* d =
      backends::adopt_connected_dgram(loop, std::move(ours), "exec:test", error);
  ASSERT_NE(d, nullptr) << error;
  // A frame through the dgram port, so it is a live port with traffic.
  const std::vector<uint8_t> f = make_frame(test_support::kBroadcastMac, test_mac(3), 64, 1);
  ASSERT_EQ(::send(theirs.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
  ASSERT_EQ(pump_until_received(loop, a.client, 1), 1u);

  const std::string text = render_metrics(loop.snapshot());
  const Exposition e = parse_exposition(text);
  ASSERT_EQ(e.error, "") << text;
  const Labels ld = {{"port", std::to_string(d->id())}, {"peer", "exec:test"}};
  const Labels la = {{"port", std::to_string(a.port->id())}, {"peer", "unix:/tmp/stream"}};
  EXPECT_EQ(e.get("qswitch_port_rx_frames_total", ld), 1u) << text;
  EXPECT_EQ(e.get("qswitch_port_drop_too_big_total", ld), 0u) << text;
  EXPECT_EQ(e.types.count("qswitch_port_drop_too_big_total"), 1u) << text;
  EXPECT_EQ(e.get("qswitch_port_drop_too_big_total", la), std::nullopt)
      << "a stream port has no such counter";
  // Its help is the one the dgram kind gives it, not a generic text.
  EXPECT_EQ(e.helps.count("qswitch_port_drop_too_big_total") == 1
                ? e.helps.at("qswitch_port_drop_too_big_total")
                : "",
            "Frames for the port too big for one datagram of its socket.");
}

TEST(MetricsTextTest, CountersEqualTheFramesThatCrossedAndLabelsRoundTrip) {
  backends::SwitchLoop loop(backends::LoopConfig{});
  const std::string tricky = "unix:/tmp/a \"quoted\" back\\slash\nline (pid 12)";
  const std::string plain = "tcp:127.0.0.1:40312";
  Peer a = attach_peer(loop, tricky);
  Peer b = attach_peer(loop, plain);
  const sw::PortId ida = a.port->id();
  const sw::PortId idb = b.port->id();

  constexpr size_t kBroadcasts = 5, kBroadcastSize = 100;
  constexpr size_t kUnicasts = 3, kUnicastSize = 80;
  for (uint32_t i = 0; i < kBroadcasts; ++i) {
    ASSERT_TRUE(a.client.send_frame(
        make_frame(test_support::kBroadcastMac, test_mac(1), kBroadcastSize, i)));
  }
  ASSERT_EQ(pump_until_received(loop, b.client, kBroadcasts), kBroadcasts);
  for (uint32_t i = 0; i < kUnicasts; ++i) {
    ASSERT_TRUE(b.client.send_frame(make_frame(test_mac(1), test_mac(2), kUnicastSize, i)));
  }
  ASSERT_EQ(pump_until_received(loop, a.client, kUnicasts), kUnicasts);

  const std::string text = render_metrics(loop.snapshot());
  const Exposition e = parse_exposition(text);
  ASSERT_EQ(e.error, "") << text;

  const Labels la = {{"port", std::to_string(ida)}, {"peer", tricky}};
  const Labels lb = {{"port", std::to_string(idb)}, {"peer", plain}};
  EXPECT_EQ(e.get("qswitch_port_up", la), 1u) << text;
  EXPECT_EQ(e.get("qswitch_port_up", lb), 1u);
  EXPECT_EQ(e.get("qswitch_port_rx_frames_total", la), kBroadcasts);
  EXPECT_EQ(e.get("qswitch_port_rx_bytes_total", la), kBroadcasts * kBroadcastSize);
  EXPECT_EQ(e.get("qswitch_port_tx_frames_total", lb), kBroadcasts);
  EXPECT_EQ(e.get("qswitch_port_tx_bytes_total", lb), kBroadcasts * kBroadcastSize);
  EXPECT_EQ(e.get("qswitch_port_rx_frames_total", lb), kUnicasts);
  EXPECT_EQ(e.get("qswitch_port_rx_bytes_total", lb), kUnicasts * kUnicastSize);
  EXPECT_EQ(e.get("qswitch_port_tx_frames_total", la), kUnicasts);
  EXPECT_EQ(e.get("qswitch_port_tx_bytes_total", la), kUnicasts * kUnicastSize);
  EXPECT_EQ(e.get("qswitch_port_drop_queue_full_total", la), 0u);
  EXPECT_EQ(e.get("qswitch_frames_in_total"), kBroadcasts + kUnicasts);
  EXPECT_EQ(e.get("qswitch_flooded_total"), kBroadcasts);
  EXPECT_EQ(e.get("qswitch_unicast_total"), kUnicasts);
  EXPECT_EQ(e.get("qswitch_mac_moves_total"), 0u);
  EXPECT_EQ(e.get("qswitch_dup_mac_events_total"), 0u);
  EXPECT_EQ(e.get("qswitch_mac_evictions_total"), 0u);
  EXPECT_EQ(e.get("qswitch_ports"), 2u);
  EXPECT_EQ(e.get("qswitch_mac_entries"), 2u);
  EXPECT_EQ(e.get("qswitch_mac_capacity"), backends::LoopConfig{}.fabric.mac.max_entries);

  // Every per-port counter is there for both ports, as a counter family named *_total.
  size_t fields = 0;
  sw::PortCounters{}.for_each([&](const char* name, uint64_t) {
    ++fields;
    const std::string metric = std::string("qswitch_port_") + name + "_total";
    EXPECT_EQ(e.types.count(metric) == 1 ? e.types.at(metric) : "", "counter") << metric;
    EXPECT_TRUE(e.get(metric, la).has_value()) << metric;
    EXPECT_TRUE(e.get(metric, lb).has_value()) << metric;
  });
  // Per port: the counters (and the stream kind's own), qswitch_port_up and the
  // qswitch_port_queued_bytes gauge (both peers read everything: 0); then the switch-wide
  // counters (kSwitchCounters: 9) and 3 gauges.
  EXPECT_EQ(e.types.count("qswitch_port_queued_bytes") == 1
                ? e.types.at("qswitch_port_queued_bytes")
                : "",
            "gauge");
  EXPECT_EQ(e.get("qswitch_port_queued_bytes", la), 0u);
  EXPECT_EQ(e.get("qswitch_port_queued_bytes", lb), 0u);
  // A stream port's own counter (StreamPort::for_each_extra_counter), for both ports.
  const std::string refused = "qswitch_port_drop_control_request_total";
  EXPECT_EQ(e.types.count(refused) == 1 ? e.types.at(refused) : "", "counter");
  EXPECT_EQ(e.get(refused, la), 0u);
  EXPECT_EQ(e.get(refused, lb), 0u);
  const size_t stream_extras = 1;
  EXPECT_EQ(std::size(sw::kSwitchCounters), 18u);
  // Per VLAN (both ports on VLAN 1): its ports and its MAC entries, the two peers' MACs.
  EXPECT_EQ(e.types.count("qswitch_vlan_ports") == 1 ? e.types.at("qswitch_vlan_ports") : "",
            "gauge");
  EXPECT_EQ(e.get("qswitch_vlan_ports", Labels{{"vlan", "1"}}), 2u);
  EXPECT_EQ(e.get("qswitch_vlan_macs", Labels{{"vlan", "1"}}), 2u);
  EXPECT_EQ(e.samples.size(),
            (fields + stream_extras + 2) * 2 + std::size(sw::kSwitchCounters) + 3 + 2)
      << text;
  for (const auto& [name, type] : e.types) {
    EXPECT_EQ(type == "counter", name.size() > 6 && name.substr(name.size() - 6) == "_total")
        << name << " is a " << type;
  }
}

TEST(MetricsTextTest, ClosedPortLeavesTheExposition) {
  backends::SwitchLoop loop(backends::LoopConfig{});
  Peer a = attach_peer(loop, "unix:/a (pid 1)");
  Peer b = attach_peer(loop, "unix:/b (pid 2)");
  b.client.close();
  for (int i = 0; i < 1000 && loop.fabric().port_count() != 1; ++i) {
    uv_run(loop.uv(), UV_RUN_NOWAIT);
    std::this_thread::sleep_for(1ms);
  }
  const Exposition e = parse_exposition(render_metrics(loop.snapshot()));
  ASSERT_EQ(e.error, "");
  EXPECT_EQ(e.get("qswitch_ports"), 1u);
  EXPECT_TRUE(e.get("qswitch_port_up",
                    {{"port", std::to_string(a.port->id())}, {"peer", "unix:/a (pid 1)"}}));
  size_t up = 0;
  for (const Sample& s : e.samples) up += s.name == "qswitch_port_up" ? 1 : 0;
  EXPECT_EQ(up, 1u);
}

TEST(MetricsTextTest, EscapesBackslashQuoteAndNewline) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain"), "plain");
}

// ---- MetricsServer over real tcp sockets ----

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string raw;
};

// A blocking tcp client to 127.0.0.1:port; every read gives up after `timeout_s`.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port, int timeout_s = 10) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{timeout_s, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0;
  }
  ~HttpClient() { close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  bool connected() const { return connected_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send_all(std::string_view data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until the server closes; nullopt on timeout or error before that.
  std::optional<std::string> read_to_eof(size_t max = 64 << 20) {
    std::string all;
    char buf[65536];
    while (all.size() < max) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) return all;
      if (n < 0) return errno == ECONNRESET && !all.empty() ? std::optional(all) : std::nullopt;
      all.append(buf, static_cast<size_t>(n));
    }
    return std::nullopt;
  }
  // Reads up to `size` bytes (one recv).
  std::string read_some(size_t size) {
    std::string buf(size, '\0');
    const ssize_t n = ::recv(fd_, buf.data(), size, 0);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::optional<HttpResponse> parse_response(const std::string& raw) {
  HttpResponse r;
  r.raw = raw;
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos || raw.size() < 12) {
    return std::nullopt;
  }
  r.status = std::stoi(raw.substr(9, 3));
  size_t pos = raw.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return std::nullopt;
    std::string name = line.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    pos = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

class MetricsServerTest : public ::testing::Test {
 protected:
  void start(tools::MetricsLimits limits = {}) {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) { uv_stop(a->loop); });
    io::SocketAddress ep;
    ep.kind = io::SocketAddress::Kind::kTcp;
    ep.host = "127.0.0.1";
    ep.port = 0;
    server_ = std::make_unique<tools::MetricsServer>(
        &loop_, ep,
        [this] {
          ++renders_;
          return body_;
        },
        limits);
    ASSERT_TRUE(server_->ok()) << server_->error();
    port_ = server_->bound().port;
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      uv_async_send(&stop_);
      thread_.join();
    }
    server_.reset();
    if (loop_ready_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      EXPECT_EQ(uv_loop_close(&loop_), 0) << "a handle outlived the server";
    }
  }

  std::optional<HttpResponse> request(const std::string& text) {
    HttpClient c(port_);
    if (!c.connected() || !c.send_all(text)) return std::nullopt;
    auto raw = c.read_to_eof();
    if (!raw) return std::nullopt;
    return parse_response(*raw);
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
  uv_async_t stop_{};
  std::unique_ptr<tools::MetricsServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::string body_ = "# HELP x y\n# TYPE x gauge\nx 1\n";
  std::atomic<int> renders_{0};
};

TEST_F(MetricsServerTest, GetMetricsReturnsTheRenderedBody) {
  start();
  auto r = request("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->raw;
  EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->headers["content-length"], std::to_string(body_.size()));
  EXPECT_EQ(r->headers["connection"], "close");
  EXPECT_EQ(r->body, body_);
  EXPECT_EQ(renders_.load(), 1);
}

TEST_F(MetricsServerTest, BareLineFeedsAndQueryStringAreAccepted) {
  start();
  auto r = request("GET /metrics?name[]=x HTTP/1.0\n\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->raw;
  EXPECT_EQ(r->body, body_);
}

TEST_F(MetricsServerTest, HeadGetsHeadersWithoutBody) {
  start();
  auto r = request("HEAD /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-length"], std::to_string(body_.size()));
  EXPECT_EQ(r->body, "");
}

TEST_F(MetricsServerTest, OtherPathIs404AndOtherMethodIs405) {
  start();
  auto r = request("GET / HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404) << r->raw;
  r = request("GET /metricsx HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 404) << r->raw;
  r = request("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 405) << r->raw;
  EXPECT_EQ(r->headers["allow"], "GET, HEAD");
  EXPECT_EQ(renders_.load(), 0);
}

TEST_F(MetricsServerTest, GarbageIs400WithoutWaitingForMore) {
  start();
  for (const std::string& garbage :
       {std::string("hello\r\n"), std::string("GET /metrics\r\n\r\n"),
        std::string("GET /metrics HTTP/2.0\r\n\r\n"), std::string("GET  /metrics HTTP/1.1\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01", 6), std::string("GET metrics HTTP/1.1\r\n\r\n")}) {
    // No blank line follows most of these: the answer must come without it.
    HttpClient c(port_, 3);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send_all(garbage));
    auto raw = c.read_to_eof();
    ASSERT_TRUE(raw.has_value()) << "no answer to garbage: " << garbage;
    auto r = parse_response(*raw);
    ASSERT_TRUE(r.has_value()) << *raw;
    EXPECT_EQ(r->status, 400) << garbage;
  }
  EXPECT_EQ(renders_.load(), 0);
}

TEST_F(MetricsServerTest, OversizedHeadIsRejected) {
  start();
  std::string head = "GET /metrics HTTP/1.1\r\n";
  while (head.size() < 9000) head += "X-Filler: " + std::string(100, 'f') + "\r\n";
  auto r = request(head + "\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 431) << r->raw.substr(0, 200);
  EXPECT_EQ(renders_.load(), 0);
  // Just under the limit still works.
  head = "GET /metrics HTTP/1.1\r\n";
  while (head.size() < 8000) head += "X-Filler: " + std::string(100, 'f') + "\r\n";
  r = request(head + "\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200);
}

TEST_F(MetricsServerTest, SilentClientIsClosedAfterTheTimeout) {
  tools::MetricsLimits limits;
  limits.idle_ms = 300;
  start(limits);
  HttpClient c(port_, 5);
  ASSERT_TRUE(c.connected());
  const auto t0 = std::chrono::steady_clock::now();
  auto raw = c.read_to_eof();
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(raw.has_value()) << "silent client was not closed within 5 s";
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 3s);
  auto r = parse_response(*raw);
  ASSERT_TRUE(r.has_value()) << *raw;
  EXPECT_EQ(r->status, 408);
  // A client dribbling a head byte by byte is held to the same deadline.
  HttpClient d(port_, 5);
  ASSERT_TRUE(d.connected());
  const auto t1 = std::chrono::steady_clock::now();
  bool closed = false;
  const std::string partial = "GET /metrics HTTP/1.1\r\nX: ";
  for (size_t i = 0; i < 40 && !closed; ++i) {
    closed = !d.send_all(std::string(1, partial[i % partial.size()]));
    std::this_thread::sleep_for(50ms);
  }
  raw = d.read_to_eof();
  ASSERT_TRUE(raw.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 3s);
  EXPECT_EQ(renders_.load(), 0);
}

TEST_F(MetricsServerTest, AtMost64ClientsAtOnceAndTheRestRefused) {
  start();
  std::vector<std::unique_ptr<HttpClient>> idle;
  for (int i = 0; i < 64; ++i) {
    idle.push_back(std::make_unique<HttpClient>(port_, 5));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  // The 65th and 66th (accepted after the 64, in order) are refused with 503.
  for (int i = 0; i < 2; ++i) {
    HttpClient extra(port_, 5);
    ASSERT_TRUE(extra.connected());
    auto raw = extra.read_to_eof();
    ASSERT_TRUE(raw.has_value()) << "client over the limit was not closed";
    auto r = parse_response(*raw);
    ASSERT_TRUE(r.has_value()) << *raw;
    EXPECT_EQ(r->status, 503);
  }
  // Once one of the 64 goes, a scrape works again (retry: the close is seen asynchronously).
  idle.front()->close();
  int status = 0;
  for (int attempt = 0; attempt < 100 && status != 200; ++attempt) {
    auto r = request("GET /metrics HTTP/1.0\r\n\r\n");
    status = r ? r->status : 0;
    if (status != 200) std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status, 200);
  // The held clients still get answers.
  ASSERT_TRUE(idle[1]->send_all("GET /metrics HTTP/1.0\r\n\r\n"));
  auto raw = idle[1]->read_to_eof();
  ASSERT_TRUE(raw.has_value());
  EXPECT_EQ(parse_response(*raw)->status, 200);
}

TEST_F(MetricsServerTest, LargeBodyToASlowReaderDoesNotBlockOthers) {
  body_.clear();
  // Far more than the loopback socket buffers hold while `slow` reads nothing.
  for (int i = 0; body_.size() < (24 << 20); ++i) {
    body_ += "qswitch_filler{i=\"" + std::to_string(i) + "\"} 12345678901234567890\n";
  }
  start();
  HttpClient slow(port_, 10);
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.send_all("GET /metrics HTTP/1.0\r\n\r\n"));
  std::string got = slow.read_some(1000);  // the response has started...
  ASSERT_FALSE(got.empty());
  // ...and, with most of it still queued for `slow`, another scrape is served in full.
  const size_t renders_before = static_cast<size_t>(renders_.load());
  auto other = request("GET /metrics HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->status, 200);
  EXPECT_EQ(other->body.size(), body_.size());
  EXPECT_EQ(static_cast<size_t>(renders_.load()), renders_before + 1);
  // The slow reader then gets every byte of its own response.
  auto rest = slow.read_to_eof();
  ASSERT_TRUE(rest.has_value());
  auto r = parse_response(got + *rest);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->body.size(), body_.size());
  EXPECT_TRUE(r->body == body_);
}

TEST(MetricsServerBindTest, UnixAddressAndBusyPortAreErrors) {
  uv_loop_t loop;
  ASSERT_EQ(uv_loop_init(&loop), 0);
  {
    io::SocketAddress unix_ep;
    unix_ep.kind = io::SocketAddress::Kind::kUnix;
    unix_ep.path = "/tmp/never-bound.sock";
    tools::MetricsServer bad(&loop, unix_ep, [] { return std::string(); });
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.error().find("tcp:"), std::string::npos) << bad.error();

    io::SocketAddress ep;
    ep.kind = io::SocketAddress::Kind::kTcp;
    ep.host = "127.0.0.1";
    tools::MetricsServer first(&loop, ep, [] { return std::string(); });
    ASSERT_TRUE(first.ok()) << first.error();
    tools::MetricsServer second(&loop, first.bound(), [] { return std::string(); });
    EXPECT_FALSE(second.ok());
    EXPECT_FALSE(second.error().empty());
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace qswitch::tools
