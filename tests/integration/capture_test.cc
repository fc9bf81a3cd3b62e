// tests/integration/capture_test.cc: live capture of a running qswitch, as a user runs it:
// `qswitch ctl --sock CTL capture -w FILE ...` in a subprocess while two FrameClients exchange
// frames, then FILE read back with libpcap.
//
// Theory of operation
// - The switch runs with --no-slirp, so the only frames crossing it are the test's own. The
//   clients announce themselves before the capture starts (those broadcasts are not expected).
// - The test waits until `capture.list` (over its own control connection) shows the session,
//   then sends; what libpcap reads back must be exactly the frames sent, in order for each
//   sender (whole switch: each frame once, as it entered).
// - Every wait is bounded; the ctl subprocess must exit 0 by itself (--duration) or on SIGINT.
#include <pcap/pcap.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/switch_fixture.h"
#include "tests/support/control_client.h"

namespace qswitch::integration {
namespace {

using nlohmann::json;
using test_support::ControlClient;
using Bytes = std::vector<uint8_t>;

struct PcapRead {
  bool ok = false;
  std::string error;
  std::vector<Bytes> frames;
};

PcapRead read_pcap(const std::string& path) {
  PcapRead out;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline(path.c_str(), errbuf);
  if (p == nullptr) {
    out.error = errbuf;
    return out;
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    out.error = "link type " + std::to_string(pcap_datalink(p)) + ", expected Ethernet";
    pcap_close(p);
    return out;
  }
  for (;;) {
    pcap_pkthdr* h = nullptr;
    const u_char* data = nullptr;
    const int r = pcap_next_ex(p, &h, &data);
    if (r == 1) {
      if (h->caplen != h->len) {
        out.error = "a record of " + std::to_string(h->len) + " bytes was cut to " +
                    std::to_string(h->caplen);
        break;
      }
      out.frames.emplace_back(data, data + h->caplen);
      continue;
    }
    if (r == PCAP_ERROR_BREAK) {
      out.ok = true;
    } else {
      out.error = pcap_geterr(p);
    }
    break;
  }
  pcap_close(p);
  return out;
}

class CaptureTest : public SwitchFixture {
 protected:
  ::testing::AssertionResult start(std::vector<FrameClient>* clients, std::vector<Mac>* macs,
                                   std::vector<std::string> extra = {}) {
    extra.push_back("--no-slirp");
    if (auto r = start_with_clients(2, clients, macs, extra); !r) return r;
    if (sw_.control().rfind("unix:", 0) != 0) {
      return ::testing::AssertionFailure() << "qswitch printed no control line";
    }
    ctl_ = sw_.control().substr(5);
    return ::testing::AssertionSuccess();
  }

  // Launches `qswitch ctl --sock CTL capture ARGS...`.
  ::testing::AssertionResult launch_capture(QswitchProcess* p, std::vector<std::string> args) {
    std::vector<std::string> all = {"ctl", "--sock", ctl_, "capture"};
    all.insert(all.end(), args.begin(), args.end());
    LaunchOptions o = launch_options(all);
    o.stderr_path = tmp_.file("ctl-" + std::to_string(runs_++) + ".stderr");
    if (!p->launch(o)) return ::testing::AssertionFailure() << p->error();
    return ::testing::AssertionSuccess();
  }

  // Waits until the switch lists `count` capture sessions.
  ::testing::AssertionResult wait_sessions(size_t count) {
    std::string error;
    auto c = ControlClient::connect(ctl_, &error);
    if (!c) return ::testing::AssertionFailure() << "control: " << error;
    json last;
    for (int i = 0; i < 100; ++i) {
      auto line = c->request(R"({"cmd":"capture.list"})");
      if (!line.ok()) return ::testing::AssertionFailure() << "capture.list: " << line.error;
      last = json::parse(line.line, nullptr, false);
      if (last.is_object() && last.value("ok", false) && last["result"].is_array() &&
          last["result"].size() == count) {
        return ::testing::AssertionSuccess();
      }
      std::this_thread::sleep_for(50ms);
    }
    return ::testing::AssertionFailure()
           << "capture.list never showed " << count << " sessions; last reply: " << last.dump();
  }

  // Sends `n` frames each way between the two clients; every one must arrive. Returns them in
  // the order sent.
  ::testing::AssertionResult exchange(std::vector<FrameClient>& c, const std::vector<Mac>& macs,
                                      int n, std::vector<Bytes>* from0, std::vector<Bytes>* from1) {
    for (int i = 0; i < n; ++i) {
      const uint32_t seq = static_cast<uint32_t>(1000 + i);
      if (auto r = send_and_expect(c[0], c[1], macs[1], macs[0], 100 + 10 * i, seq); !r) return r;
      from0->push_back(test_support::make_frame(macs[1], macs[0], 100 + 10 * i, seq));
      if (auto r = send_and_expect(c[1], c[0], macs[0], macs[1], 200 + 10 * i, seq + 500); !r) {
        return r;
      }
      from1->push_back(test_support::make_frame(macs[0], macs[1], 200 + 10 * i, seq + 500));
    }
    return ::testing::AssertionSuccess();
  }

  std::string ctl_;
  int runs_ = 0;
};

TEST_F(CaptureTest, CtlCaptureRecordsExactlyTheFramesThatCrossed) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs));
  const std::string file = tmp_.file("all.pcap");
  QswitchProcess ctl;
  ASSERT_TRUE(launch_capture(&ctl, {"-w", file, "--duration", "3"}));
  ASSERT_TRUE(wait_sessions(1));
  std::vector<Bytes> from0, from1;
  ASSERT_TRUE(exchange(clients, macs, 5, &from0, &from1));
  const std::optional<int> status = ctl.wait_exit(10s);
  ASSERT_EQ(status, std::optional<int>(0)) << ctl.stderr_text();
  EXPECT_NE(ctl.stderr_text().find("10 packets written"), std::string::npos) << ctl.stderr_text();

  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const PcapRead got = read_pcap(file);
  ASSERT_TRUE(got.ok) << got.error;
  std::vector<Bytes> want;
  for (size_t i = 0; i < from0.size(); ++i) {
    want.push_back(from0[i]);
    want.push_back(from1[i]);
  }
  EXPECT_EQ(got.frames, want) << "got " << got.frames.size() << " frames, want " << want.size();
  // The session ended with the client: the switch lists none.
  ASSERT_TRUE(wait_sessions(0));
}

TEST_F(CaptureTest, FilteredCaptureKeepsOnlyWhatItNames) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs));
  const std::string file = tmp_.file("from0.pcap");
  QswitchProcess ctl;
  ASSERT_TRUE(launch_capture(&ctl, {"--filter", "ether src " + test_support::mac_to_string(macs[0]),
                                    "-w", file, "--duration", "3"}));
  ASSERT_TRUE(wait_sessions(1));
  std::vector<Bytes> from0, from1;
  ASSERT_TRUE(exchange(clients, macs, 4, &from0, &from1));
  ASSERT_EQ(ctl.wait_exit(10s), std::optional<int>(0)) << ctl.stderr_text();
  const PcapRead got = read_pcap(file);
  ASSERT_TRUE(got.ok) << got.error;
  EXPECT_EQ(got.frames, from0);
}

TEST_F(CaptureTest, PortCaptureSeesWhatThatPortSendsAndReceives) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs));
  uint32_t id0 = 0;
  ASSERT_TRUE(port_id(macs[0], &id0));
  const std::string file = tmp_.file("port.pcap");
  QswitchProcess ctl;
  ASSERT_TRUE(launch_capture(&ctl, {"--port", std::to_string(id0), "-w", file, "--count", "4"}));
  ASSERT_TRUE(wait_sessions(1));
  std::vector<Bytes> from0, from1;
  ASSERT_TRUE(exchange(clients, macs, 2, &from0, &from1));
  ASSERT_EQ(ctl.wait_exit(10s), std::optional<int>(0)) << ctl.stderr_text();
  const PcapRead got = read_pcap(file);
  ASSERT_TRUE(got.ok) << got.error;
  // Port 0's ingress (from0) and egress (from1), in the order they crossed.
  EXPECT_EQ(got.frames, (std::vector<Bytes>{from0[0], from1[0], from0[1], from1[1]}));
}

TEST_F(CaptureTest, SigintStopsCleanlyLeavingAValidPcap) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs));
  const std::string file = tmp_.file("int.pcap");
  QswitchProcess ctl;
  ASSERT_TRUE(launch_capture(&ctl, {"-w", file}));
  ASSERT_TRUE(wait_sessions(1));
  std::vector<Bytes> from0, from1;
  ASSERT_TRUE(exchange(clients, macs, 3, &from0, &from1));
  // Wait until the client has written all 6 frames to the file, then interrupt it.
  size_t written = 0;
  for (int i = 0; i < 1000 && written < 6; ++i) {  // polling the file, bounded (10 s and more)
    const PcapRead now = read_pcap(file);
    written = now.ok ? now.frames.size() : 0;
    if (written < 6) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(written, 6u) << "the capture client did not write the 6 frames";
  ASSERT_TRUE(ctl.signal(SIGINT));
  ASSERT_EQ(ctl.wait_exit(10s), std::optional<int>(0)) << ctl.stderr_text();
  const PcapRead got = read_pcap(file);
  ASSERT_TRUE(got.ok) << got.error;
  EXPECT_EQ(got.frames.size(), 6u);
  ASSERT_TRUE(wait_sessions(0));
}

TEST_F(CaptureTest, UsageAndFilterErrorsExitWithMessages) {
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs));
  QswitchProcess no_w;
  ASSERT_TRUE(launch_capture(&no_w, {"--duration", "1"}));
  ASSERT_EQ(no_w.wait_exit(5s), std::optional<int>(2));
  EXPECT_NE(no_w.stderr_text().find("-w FILE"), std::string::npos) << no_w.stderr_text();

  const std::string file = tmp_.file("bad.pcap");
  QswitchProcess bad;
  ASSERT_TRUE(launch_capture(&bad, {"--filter", "arp and (", "-w", file}));
  ASSERT_EQ(bad.wait_exit(5s), std::optional<int>(1));
  EXPECT_NE(bad.stderr_text().find("bad capture filter"), std::string::npos) << bad.stderr_text();
  ASSERT_TRUE(wait_sessions(0));
}

// --pcap FILE on qswitch's command line records the whole switch from the start.
TEST_F(CaptureTest, PcapOptionRecordsFromStart) {
  const std::string file = tmp_.file("start.pcap");
  std::vector<FrameClient> clients;
  std::vector<Mac> macs;
  ASSERT_TRUE(start(&clients, &macs, {"--pcap", file}));
  std::vector<Bytes> from0, from1;
  ASSERT_TRUE(exchange(clients, macs, 2, &from0, &from1));
  ASSERT_TRUE(sw_.signal(SIGTERM));
  ASSERT_EQ(sw_.wait_exit(10s), std::optional<int>(0));
  const PcapRead got = read_pcap(file);
  ASSERT_TRUE(got.ok) << got.error;
  // The announce broadcasts first (one per client), then the exchange, at the end.
  ASSERT_GE(got.frames.size(), 6u);
  const std::vector<Bytes> tail(got.frames.end() - 4, got.frames.end());
  EXPECT_EQ(tail, (std::vector<Bytes>{from0[0], from1[0], from0[1], from1[1]}));
}

}  // namespace
}  // namespace qswitch::integration
