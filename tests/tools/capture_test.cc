// tests/tools/capture_test.cc: live capture (tools::CaptureHub) and its control commands.
//
// Theory of operation
// - A real L2Switch with FakePorts (they count what the switch queues to them) on a real libuv
//   loop; frames are built here in stream framing, each with a distinct source MAC or payload
//   tag, and handed to the switch with receive() as a port would. The hub writes to one end of a
//   socketpair (or a file); the test reads the other end and parses it with libpcap itself
//   (pcap_fopen_offline on an fmemopen'd buffer), so what is checked is what a pcap reader sees:
//   the frames' bytes and original lengths.
// - The control path is tested end to end on the loop: a ControlServer with the ControlApi and
//   the capture commands, a blocking unix-socket client that sends the capture request, reads
//   the reply line and then the pcap stream on the same connection.
// - Every wait is bounded (loop turns and socket timeouts).
#include "tools/qswitch/services/capture_hub.h"

#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"
#include "tools/qswitch/client/capture_client.h"
#include "tools/qswitch/client/pcap_stream.h"
#include "tools/qswitch/services/capture_commands.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"

namespace qswitch::tools {
namespace {

using Bytes = std::vector<uint8_t>;

class FakePort : public sw::Port {
 public:
  explicit FakePort(std::string name) : name_(std::move(name)) {}
  void enqueue(const sw::Frame&) override { ++enqueued; }
  void flush() override {}
  std::string describe() const override { return name_; }
  uint64_t enqueued = 0;

 private:
  std::string name_;
};

// An Ethernet frame: dst, src, ethertype, then `payload_size` bytes starting with `tag`.
Bytes eth(uint8_t dst_last, uint8_t src_last, uint16_t ethertype, uint32_t tag,
          size_t payload_size = 46) {
  Bytes f;
  const uint8_t dst[6] = {0x52, 0x54, 0, 0, 0, dst_last};
  const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  f.insert(f.end(), dst_last == 0xff ? bcast : dst, (dst_last == 0xff ? bcast : dst) + 6);
  const uint8_t src[6] = {0x52, 0x54, 0, 0, 0, src_last};
  f.insert(f.end(), src, src + 6);
  f.push_back(static_cast<uint8_t>(ethertype >> 8));
  f.push_back(static_cast<uint8_t>(ethertype));
  for (size_t i = 0; i < payload_size; ++i) {
    f.push_back(i < 4 ? static_cast<uint8_t>(tag >> (8 * (3 - i))) : static_cast<uint8_t>(i));
  }
  return f;
}

constexpr uint16_t kIpv4 = 0x0800;
constexpr uint16_t kArp = 0x0806;

// A frame in stream framing with static storage, as a receiving port would hand it over.
struct WireFrame {
  explicit WireFrame(const Bytes& eth_frame) : wire(eth_frame.size() + 4) {
    sw::store_be32(wire.data(), static_cast<uint32_t>(eth_frame.size()));
    std::memcpy(wire.data() + 4, eth_frame.data(), eth_frame.size());
    frame.wire = wire.data();
    frame.size = static_cast<uint32_t>(eth_frame.size());
  }
  Bytes wire;
  sw::Frame frame;
};

struct Record {
  Bytes data;
  uint32_t len = 0;
};

// Parses a pcap byte stream with libpcap. ok=false when libpcap rejects it (a torn record
// shows as an error from pcap_next_ex).
struct Parsed {
  bool ok = false;
  std::string error;
  std::vector<Record> records;
};

Parsed parse_pcap(const std::string& bytes) {
  Parsed out;
  if (bytes.empty()) {
    out.error = "no bytes";
    return out;
  }
  FILE* f = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
  if (f == nullptr) {
    out.error = "fmemopen failed";
    return out;
  }
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline(f, errbuf);
  if (p == nullptr) {
    fclose(f);
    out.error = errbuf;
    return out;
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    out.error = "link type " + std::to_string(pcap_datalink(p));
    pcap_close(p);
    return out;
  }
  for (;;) {
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    const int r = pcap_next_ex(p, &h, &data);
    if (r == 1) {
      out.records.push_back(Record{Bytes(data, data + h->caplen), h->len});
      continue;
    }
    if (r == PCAP_ERROR_BREAK) {
      out.ok = true;
    } else {
      out.error = pcap_geterr(p);
    }
    break;
  }
  pcap_close(p);  // closes f
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class CaptureHubTest : public ::testing::Test {
 protected:
  CaptureHubTest() : fabric_(sw::SwitchConfig{}), a_("a"), b_("b"), c_("c") {
    uv_loop_init(&loop_);
    fabric_.attach(a_);
    fabric_.attach(b_);
    fabric_.attach(c_);
    hub_ = std::make_unique<CaptureHub>(&loop_, fabric_);
  }
  ~CaptureHubTest() override {
    hub_.reset();
    if (reader_ >= 0) ::close(reader_);
    fabric_.detach(a_);
    fabric_.detach(b_);
    fabric_.detach(c_);
    for (int i = 0; i < 10 && uv_loop_close(&loop_) == UV_EBUSY; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Starts a session on a socketpair; the test keeps the reading end.
  uint64_t start(const CaptureSpec& spec, int sndbuf = 0) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    if (sndbuf > 0) ::setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    reader_ = sv[1];
    std::string error;
    const uint64_t id = hub_->attach(spec, io::Fd::adopt(sv[0]), "test", error);
    EXPECT_NE(id, 0u) << error;
    return id;
  }

  void send(sw::Port& in, const Bytes& eth_frame) {
    WireFrame w(eth_frame);
    fabric_.receive(in, w.frame, now_++);
    fabric_.flush();
  }

  void turns(int n) {
    for (int i = 0; i < n; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  }

  // Runs the loop and reads what the hub wrote until `quiet_turns` pass with nothing new.
  std::string collect(int quiet_turns = 5) {
    std::string got;
    int quiet = 0;
    for (int i = 0; i < 2000 && quiet < quiet_turns; ++i) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      char buf[65536];
      const ssize_t n = ::recv(reader_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        got.append(buf, static_cast<size_t>(n));
        quiet = 0;
      } else {
        ++quiet;
        pollfd p{reader_, POLLIN, 0};
        ::poll(&p, 1, 2);
      }
    }
    return got;
  }

  CaptureInfo info(uint64_t id) const {
    for (const CaptureInfo& i : hub_->list()) {
      if (i.id == id) return i;
    }
    return CaptureInfo{};
  }

  uv_loop_t loop_{};
  sw::L2Switch fabric_;
  FakePort a_, b_, c_;
  std::unique_ptr<CaptureHub> hub_;
  int reader_ = -1;
  sw::Millis now_ = 1;
};

TEST_F(CaptureHubTest, WholeSwitchCaptureRecordsEachFrameOnceAsItEntered) {
  const uint64_t id = start(CaptureSpec{});
  const Bytes f1 = eth(0xff, 0x0a, kArp, 1);         // floods to b and c
  const Bytes f2 = eth(0x0a, 0x0b, kIpv4, 2, 1400);  // unicast to a (learned)
  const Bytes f3 = eth(0x0b, 0x0c, kIpv4, 3, 20);    // short: 34 bytes, as received
  send(a_, f1);
  send(b_, f2);
  send(c_, f3);
  const Parsed p = parse_pcap(collect());
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 3u);
  EXPECT_EQ(p.records[0].data, f1);
  EXPECT_EQ(p.records[1].data, f2);
  EXPECT_EQ(p.records[2].data, f3);
  EXPECT_EQ(p.records[2].len, f3.size());
  EXPECT_EQ(b_.enqueued + c_.enqueued + a_.enqueued, 4u);  // the switch forwarded as usual
  const CaptureInfo i = info(id);
  EXPECT_EQ(i.captured, 3u);
  EXPECT_EQ(i.dropped_slow, 0u);
  EXPECT_EQ(i.filtered_out, 0u);
}

TEST_F(CaptureHubTest, ArpFilterKeepsOnlyArp) {
  CaptureSpec spec;
  spec.filter = "arp";
  const uint64_t id = start(spec);
  const Bytes arp = eth(0xff, 0x0a, kArp, 1);
  send(a_, eth(0xff, 0x0a, kIpv4, 2));
  send(a_, arp);
  send(b_, eth(0x0a, 0x0b, kIpv4, 3));
  const Parsed p = parse_pcap(collect());
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].data, arp);
  EXPECT_EQ(info(id).filtered_out, 2u);
  EXPECT_EQ(info(id).captured, 1u);
}

TEST_F(CaptureHubTest, EtherSrcFilterKeepsOnlyThatSource) {
  CaptureSpec spec;
  spec.filter = "ether src 52:54:00:00:00:0b";
  start(spec);
  const Bytes from_b = eth(0x0a, 0x0b, kIpv4, 7);
  send(a_, eth(0xff, 0x0a, kIpv4, 1));
  send(b_, from_b);
  send(c_, eth(0x0a, 0x0c, kIpv4, 8));
  const Parsed p = parse_pcap(collect());
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].data, from_b);
}

TEST_F(CaptureHubTest, BadFilterIsAnErrorNamingLibpcapsMessage) {
  CaptureSpec spec;
  spec.filter = "arp and (";
  std::string error;
  EXPECT_FALSE(hub_->validate(spec, error));
  EXPECT_NE(error.find("bad capture filter 'arp and ('"), std::string::npos) << error;
  EXPECT_NE(error.find("syntax error"), std::string::npos) << error;  // libpcap's words
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ::close(sv[1]);
  error.clear();
  EXPECT_EQ(hub_->attach(spec, io::Fd::adopt(sv[0]), "test", error), 0u);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(hub_->session_count(), 0u);
}

TEST_F(CaptureHubTest, CaptureOfAnUnknownPortIsAnError) {
  CaptureSpec spec;
  spec.port = 77;
  std::string error;
  EXPECT_FALSE(hub_->validate(spec, error));
  EXPECT_NE(error.find("no port 77"), std::string::npos) << error;
}

TEST_F(CaptureHubTest, PortCaptureSeesIngressAndEgressOfThatPortOnly) {
  // Teach the switch every MAC first, so the frames below are unicast.
  send(a_, eth(0xff, 0x0a, kIpv4, 100));
  send(b_, eth(0xff, 0x0b, kIpv4, 101));
  send(c_, eth(0xff, 0x0c, kIpv4, 102));
  CaptureSpec spec;
  spec.port = b_.id();
  start(spec);
  const Bytes a_to_b = eth(0x0b, 0x0a, kIpv4, 1);  // egress at b
  const Bytes b_to_c = eth(0x0c, 0x0b, kIpv4, 2);  // ingress at b
  const Bytes a_to_c = eth(0x0c, 0x0a, kIpv4, 3);  // not b's
  const Bytes c_to_a = eth(0x0a, 0x0c, kIpv4, 4);  // not b's
  send(a_, a_to_b);
  send(a_, a_to_c);
  send(b_, b_to_c);
  send(c_, c_to_a);
  const Parsed p = parse_pcap(collect());
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].data, a_to_b);
  EXPECT_EQ(p.records[1].data, b_to_c);
}

TEST_F(CaptureHubTest, SlowConsumerLosesFramesCountedNeverTheSwitchNorWholeRecords) {
  CaptureSpec spec;
  spec.buffer_size = 64 * 1024;
  const uint64_t id = start(spec, /*sndbuf=*/4096);
  constexpr int kFrames = 2000;
  for (int i = 0; i < kFrames; ++i) {
    send(a_, eth(0x0b, 0x0a, kIpv4, static_cast<uint32_t>(i), 1000));
    uv_run(&loop_, UV_RUN_NOWAIT);  // the hub gets its turns; the reader never reads
  }
  // The switch was not held up: every frame reached b (flooded at first, then unicast).
  EXPECT_EQ(b_.enqueued, static_cast<uint64_t>(kFrames));
  const CaptureInfo i = info(id);
  EXPECT_GT(i.dropped_slow, 0u);
  EXPECT_GT(i.captured, 0u);
  EXPECT_EQ(i.captured + i.dropped_slow, static_cast<uint64_t>(kFrames));
  // Now read everything: only whole records, exactly the captured ones, in order.
  const Parsed p = parse_pcap(collect(20));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), i.captured);
  uint32_t last_tag = 0;
  for (size_t r = 0; r < p.records.size(); ++r) {
    ASSERT_EQ(p.records[r].data.size(), 1014u);
    const uint32_t tag = sw::load_be32(p.records[r].data.data() + 14);
    if (r > 0) {
      EXPECT_GT(tag, last_tag);
    }
    last_tag = tag;
  }
}

TEST_F(CaptureHubTest, ConsumerClosingEndsTheSession) {
  start(CaptureSpec{});
  send(a_, eth(0xff, 0x0a, kArp, 1));
  turns(3);
  ASSERT_EQ(hub_->session_count(), 1u);
  ::close(reader_);
  reader_ = -1;
  for (int i = 0; i < 50 && hub_->session_count() > 0; ++i) {
    send(a_, eth(0xff, 0x0a, kArp, 2));
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  EXPECT_EQ(hub_->session_count(), 0u);
  EXPECT_TRUE(hub_->list().empty());
}

TEST_F(CaptureHubTest, StartFileRecordsTheWholeSwitchToAValidPcap) {
  test_support::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.file("switch.pcap");
  std::string error;
  ASSERT_TRUE(hub_->start_file(path, error)) << error;
  const Bytes f1 = eth(0xff, 0x0a, kArp, 1);
  const Bytes f2 = eth(0x0a, 0x0b, kIpv4, 2, 3000);
  send(a_, f1);
  turns(2);
  send(b_, f2);
  turns(2);
  hub_.reset();  // the switch stops: everything buffered reaches the file
  const Parsed p = parse_pcap(read_file(path));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].data, f1);
  EXPECT_EQ(p.records[1].data, f2);
}

TEST_F(CaptureHubTest, StartFileNamesAPathItCannotOpen) {
  std::string error;
  EXPECT_FALSE(hub_->start_file("/nonexistent-dir/x.pcap", error));
  EXPECT_NE(error.find("/nonexistent-dir/x.pcap"), std::string::npos) << error;
  EXPECT_EQ(hub_->session_count(), 0u);
}

// The capture command through the real control server: reply line, then pcap on the same
// connection; capture.list shows the session; closing the connection ends it.
TEST_F(CaptureHubTest, CaptureCommandStreamsPcapOnTheControlConnection) {
  test_support::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  tools::ControlApi api;
  tools::register_capture_commands(api, *hub_);
  ControlHandlers handlers;
  handlers.line_takeover = [&api](std::string_view line, Takeover& h) {
    return api.handle_line(line, &h);
  };
  ControlServer server(&loop_, dir.file("c.ctl"), std::move(handlers));
  ASSERT_TRUE(server.ok()) << server.error();

  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  std::strncpy(sun.sun_path, server.path().c_str(), sizeof sun.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
  reader_ = fd;
  const std::string request =
      "{\"cmd\":\"capture\",\"args\":{\"filter\":\"arp\"},\"id\":5}\n{\"cmd\":\"version\"}\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  for (int i = 0; i < 200 && hub_->session_count() == 0; ++i) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
  ASSERT_EQ(hub_->session_count(), 1u);
  EXPECT_EQ(server.client_count(), 0u);  // the connection now belongs to the capture

  // capture.list through the API.
  const nlohmann::json list = nlohmann::json::parse(api.handle_line("{\"cmd\":\"capture.list\"}"));
  ASSERT_TRUE(list["ok"].get<bool>()) << list.dump();
  ASSERT_EQ(list["result"].size(), 1u);
  EXPECT_EQ(list["result"][0]["filter"], "arp");
  EXPECT_EQ(list["result"][0]["port"], "all");

  const Bytes arp = eth(0xff, 0x0a, kArp, 9);
  send(a_, eth(0xff, 0x0a, kIpv4, 8));
  send(a_, arp);
  const std::string got = collect();
  const size_t nl = got.find('\n');
  ASSERT_NE(nl, std::string::npos) << got;
  const nlohmann::json reply = nlohmann::json::parse(got.substr(0, nl), nullptr, false);
  ASSERT_TRUE(reply.is_object()) << got.substr(0, nl);
  EXPECT_EQ(reply["ok"], true);
  EXPECT_EQ(reply["id"], 5);
  EXPECT_EQ(reply["result"]["capturing"], true);
  EXPECT_TRUE(reply["result"]["port"].is_null());
  EXPECT_EQ(reply["result"]["filter"], "arp");
  // The "version" request after it was not answered: the rest is pcap.
  const Parsed p = parse_pcap(got.substr(nl + 1));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].data, arp);

  ::close(reader_);
  reader_ = -1;
  for (int i = 0; i < 100 && hub_->session_count() > 0; ++i) {
    uv_run(&loop_, UV_RUN_NOWAIT);
    ::usleep(1000);
  }
  EXPECT_EQ(hub_->session_count(), 0u);
}

TEST_F(CaptureHubTest, CaptureStopEndsASessionAndItsFileStaysValid) {
  test_support::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.file("stop.pcap");
  std::string error;
  ASSERT_TRUE(hub_->start_file(path, error)) << error;
  tools::ControlApi api;
  tools::register_capture_commands(api, *hub_);
  const Bytes f1 = eth(0xff, 0x0a, kArp, 1);
  send(a_, f1);
  turns(2);
  nlohmann::json r =
      nlohmann::json::parse(api.handle_line(R"({"cmd":"capture.stop","args":{"id":99}})"));
  EXPECT_EQ(r["ok"], false) << r.dump();
  EXPECT_EQ(hub_->session_count(), 1u);
  const uint64_t id = hub_->list().at(0).id;
  r = nlohmann::json::parse(
      api.handle_line(R"({"cmd":"capture.stop","args":{"id":")" + std::to_string(id) + R"("}})"));
  EXPECT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(hub_->session_count(), 0u);
  send(a_, eth(0xff, 0x0a, kArp, 2));  // after the stop: not recorded
  turns(2);
  const Parsed p = parse_pcap(read_file(path));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.records.size(), 1u);
  EXPECT_EQ(p.records[0].data, f1);
}

TEST(CaptureCommandTest, BadArgumentsAreErrorRepliesThatChangeNothing) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    sw::L2Switch fabric(sw::SwitchConfig{});
    CaptureHub hub(&loop, fabric);
    tools::ControlApi api;
    tools::register_capture_commands(api, hub);
    for (const char* line : {"{\"cmd\":\"capture\",\"args\":{\"filter\":\"bogus((\"}}",
                             "{\"cmd\":\"capture\",\"args\":{\"port\":3}}",
                             "{\"cmd\":\"capture\",\"args\":{\"port\":\"x\"}}",
                             "{\"cmd\":\"capture\",\"args\":{\"filter\":7}}",
                             "{\"cmd\":\"capture\",\"args\":{\"bogus\":1}}"}) {
      tools::Takeover takeover;
      const nlohmann::json r = nlohmann::json::parse(api.handle_line(line, &takeover));
      EXPECT_EQ(r["ok"], false) << line;
      EXPECT_FALSE(r["error"].get<std::string>().empty()) << line;
      EXPECT_FALSE(takeover) << line;
    }
    // A transport that cannot hand the connection over gets an error, not a dead stream.
    const nlohmann::json r = nlohmann::json::parse(api.handle_line("{\"cmd\":\"capture\"}"));
    EXPECT_EQ(r["ok"], false);
    EXPECT_NE(r["error"].get<std::string>().find("cannot hand over"), std::string::npos);
    EXPECT_EQ(hub.session_count(), 0u);
  }
  for (int i = 0; i < 10 && uv_loop_close(&loop) == UV_EBUSY; ++i) uv_run(&loop, UV_RUN_NOWAIT);
}

}  // namespace
}  // namespace qswitch::tools

namespace qswitch::tools {
namespace {

TEST(CaptureCliTest, WriteTargetIsRequired) {
  CaptureCliOptions o;
  std::string error;
  EXPECT_FALSE(parse_capture_args({"--port", "3"}, o, error));
  EXPECT_NE(error.find("-w FILE"), std::string::npos) << error;
  EXPECT_NE(error.find("-w -"), std::string::npos) << error;
}

TEST(CaptureCliTest, ParsesEveryOptionIntoTheRequest) {
  CaptureCliOptions o;
  std::string error;
  ASSERT_TRUE(parse_capture_args(
      {"--port", "3", "--filter", "arp or icmp", "-w", "-", "--duration=1.5", "--count", "10"}, o,
      error))
      << error;
  EXPECT_EQ(o.port, 3u);
  EXPECT_EQ(o.write_path, "-");
  EXPECT_DOUBLE_EQ(*o.duration_s, 1.5);
  EXPECT_EQ(*o.count, 10u);
  const nlohmann::json req = nlohmann::json::parse(capture_request_line(o));
  EXPECT_EQ(req["cmd"], "capture");
  EXPECT_EQ(req["args"]["port"], 3);
  EXPECT_EQ(req["args"]["filter"], "arp or icmp");
}

TEST(CaptureCliTest, BadValuesNameThemselves) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-w", "f", "--port", "x"},
        std::vector<std::string>{"-w", "f", "--duration", "0"},
        std::vector<std::string>{"-w", "f", "--duration", "abc"},
        std::vector<std::string>{"-w", "f", "--count", "-1"}, std::vector<std::string>{"-w"},
        std::vector<std::string>{"-w", "f", "--frobnicate"}}) {
    CaptureCliOptions o;
    std::string error;
    EXPECT_FALSE(parse_capture_args(args, o, error)) << args.back();
    EXPECT_FALSE(error.empty());
  }
}

std::string pcap_header() {
  const uint32_t h[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  return std::string(reinterpret_cast<const char*>(h), sizeof h);
}

std::string pcap_record(uint32_t caplen, char fill) {
  const uint32_t h[4] = {1, 2, caplen, caplen};
  return std::string(reinterpret_cast<const char*>(h), sizeof h) + std::string(caplen, fill);
}

TEST(PcapStreamCutterTest, ReleasesOnlyWholeRecords) {
  PcapStreamCutter cut;
  const std::string stream = pcap_header() + pcap_record(60, 'a') + pcap_record(100, 'b');
  ASSERT_TRUE(cut.feed(stream.data(), 20));
  EXPECT_EQ(cut.ready_size(), 0u);  // not even the header yet
  ASSERT_TRUE(cut.feed(stream.data() + 20, 24 + 16 + 60 + 10));
  EXPECT_EQ(cut.ready_size(), 24u + 16 + 60);
  EXPECT_EQ(cut.record_count(), 1u);
  cut.consume(cut.ready_size());
  ASSERT_TRUE(cut.feed(stream.data() + 130, stream.size() - 130));
  EXPECT_EQ(cut.ready_size(), 16u + 100);
  EXPECT_EQ(cut.record_count(), 2u);
}

TEST(PcapStreamCutterTest, CountLimitStopsAtThatRecord) {
  PcapStreamCutter cut;
  cut.set_record_limit(1);
  const std::string stream = pcap_header() + pcap_record(60, 'a') + pcap_record(60, 'b');
  ASSERT_TRUE(cut.feed(stream.data(), stream.size()));
  EXPECT_TRUE(cut.limit_reached());
  EXPECT_EQ(cut.ready_size(), 24u + 16 + 60);
}

TEST(PcapStreamCutterTest, RejectsAStreamThatIsNotPcap) {
  PcapStreamCutter cut;
  const std::string junk(64, 'x');
  EXPECT_FALSE(cut.feed(junk.data(), junk.size()));
  EXPECT_NE(cut.error().find("pcap"), std::string::npos);
}

}  // namespace
}  // namespace qswitch::tools
