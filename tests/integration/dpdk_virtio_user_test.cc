// tests/integration/dpdk_virtio_user_test.cc: qswitch's vhost-user ports against an independent
// front-end: DPDK's testpmd (Debian 12's dpdk-dev, DPDK 22.11) with its virtio-user PMD
// (drivers/net/virtio/virtio_user/), which speaks vhost-user as a client over a unix socket and
// drives the split rings from its own process, as a guest's virtio-net driver would.
//
// Theory of operation
// - Each test starts qswitch with its stream listener (SwitchFixture) and `--vhost-user
//   unix:<tmp>/vu.sock`, connects one stream FrameClient, then runs testpmd as a child (Testpmd
//   below: fork/exec, stdout and stderr to a file in the test's temp dir, PR_SET_PDEATHSIG, and
//   SIGKILL by pid from the destructor, so an assertion that returns early still ends it).
// - EAL runs without hugepages, PCI or shared config (--no-huge --no-pci --no-shconf
//   --no-telemetry), its two lcores on the first two CPUs the test may use, under a file prefix
//   unique to the test process and run. Its runtime directory goes to $XDG_RUNTIME_DIR (the temp
//   dir) for a non-root user and to /var/run/dpdk/<prefix> for root, which the test removes once
//   testpmd has exited. --stats-period=1 keeps testpmd from reading stdin (it exits at once when
//   stdin is no terminal); SIGINT makes it print its "Forward statistics" and exit.
// - testpmd busy-polls one lcore: each run lasts a second or two, and CMake runs these tests one
//   at a time (dpdk_properties.cmake).
// - testpmd connects and starts forwarding a moment after it starts: the tests wait (bounded)
//   for its port in `ports`, and macswap probes every kProbeInterval until a frame comes back.
// - macswap: the client sends frames of 60..1514 bytes to testpmd's MAC, at most kWindow in
//   flight (so no ring can overflow and nothing is lost by design); each must come back with the
//   MACs swapped, byte-exact otherwise, in order. Then the port's `ports` row counts them with no
//   ring or protocol error, and once testpmd has exited its own counts equal qswitch's both ways.
// - txonly: testpmd sends 64-byte IPv4/UDP frames to the client's MAC (--eth-peer); the client
//   checks kFrames of them; the closed port's counters show them and no error.
// - When /usr/bin/dpdk-testpmd is missing the tests FAIL saying to run tools/install-deps; when
//   testpmd exits early (an EAL error) the failure carries its output.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/control_json.h"
#include "tests/integration/switch_fixture.h"

extern char** environ;

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::frame_dst;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;
using test_support::parse_mac;
using test_support::test_mac;

constexpr const char* kTestpmd = "/usr/bin/dpdk-testpmd";
constexpr const char* kTestpmdMacText = "02:00:00:00:00:01";
const Mac kTestpmdMac = *parse_mac(kTestpmdMacText);

// testpmd connecting and starting its lcore; generous for a loaded 2-core machine.
constexpr Millis kStartTimeout = 20s;
constexpr Millis kProbeInterval = 200ms;
// Sequence numbers of the probe frames, apart from the counted ones.
constexpr uint32_t kProbeSeqBase = 0x70000000;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A count from testpmd's "Forward statistics for port 0" block (`name` is "RX-packets" or
// "TX-packets"), or nullopt when the output has no such block.
std::optional<uint64_t> testpmd_port_count(const std::string& output, const std::string& name) {
  const size_t block = output.rfind("Forward statistics for port 0");
  if (block == std::string::npos) return std::nullopt;
  const size_t at = output.find(name + ":", block);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(output.c_str() + at + name.size() + 1, nullptr, 10);
}

// One child process (testpmd): stdout and stderr to `output_path`, stdin /dev/null. Acts only on
// its own pid; the destructor SIGKILLs and reaps it if it still runs.
class Testpmd {
 public:
  Testpmd() = default;
  ~Testpmd() { kill_now(); }
  Testpmd(const Testpmd&) = delete;
  Testpmd& operator=(const Testpmd&) = delete;

  ::testing::AssertionResult launch(const std::vector<std::string>& args,
                                    const std::vector<std::pair<std::string, std::string>>& env,
                                    const std::string& output_path) {
    output_path_ = output_path;
    std::vector<std::string> arg_store{kTestpmd};
    arg_store.insert(arg_store.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : arg_store) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      bool replaced = false;
      for (const auto& [k, v] : env) replaced = replaced || kv.rfind(k + "=", 0) == 0;
      if (!replaced) env_store.push_back(kv);
    }
    for (const auto& [k, v] : env) env_store.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);

    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (out < 0 || null_fd < 0) {
      if (out >= 0) ::close(out);
      if (null_fd >= 0) ::close(null_fd);
      return ::testing::AssertionFailure()
             << "open " << output_path << ": " << std::strerror(errno);
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(out);
      ::close(null_fd);
      return ::testing::AssertionFailure() << "fork: " << std::strerror(errno);
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(null_fd, 0);
      ::dup2(out, 1);
      ::dup2(out, 2);
      ::execve(argv[0], argv.data(), envp.data());
      const char msg[] = "test: execve dpdk-testpmd failed\n";
      ssize_t ignored = ::write(2, msg, sizeof msg - 1);
      (void)ignored;
      ::_exit(127);
    }
    ::close(out);
    ::close(null_fd);
    pid_ = pid;
    return ::testing::AssertionSuccess();
  }

  bool running() {
    if (pid_ <= 0 || exit_status_) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  // SIGINT (testpmd prints its statistics and exits), then waits up to `timeout` for the exit;
  // its status, or nullopt (it is then killed).
  std::optional<int> interrupt(Millis timeout) {
    if (!running()) return exit_status_;
    ::kill(pid_, SIGINT);
    const auto deadline = Clock::now() + timeout;
    while (running() && Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);  // polling waitpid, bounded by the deadline
    }
    if (running()) {
      kill_now();
      return std::nullopt;
    }
    return exit_status_;
  }

  void kill_now() {
    if (!running()) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_) exit_status_ = 128 + SIGKILL;
  }

  bool started() const { return pid_ > 0; }
  std::optional<int> exit_status() const { return exit_status_; }
  std::string output() const { return read_whole_file(output_path_); }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string output_path_;
};

class DpdkVirtioUserTest : public SwitchFixture {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kTestpmd, X_OK), 0)
        << kTestpmd << " is missing (" << std::strerror(errno)
        << "): run tools/install-deps, which installs Debian's dpdk-dev (DPDK's testpmd)";
    static std::atomic<unsigned> runs{0};
    file_prefix_ = "qswitch-test-" + std::to_string(::getpid()) + "-" + std::to_string(++runs);
  }

  void TearDown() override {
    if (testpmd_.started()) {
      testpmd_.kill_now();
      if (HasFailure()) std::cerr << "--- dpdk-testpmd output ---\n" << tail(testpmd_.output());
      // Root's EAL runtime directory (empty with --no-shconf --no-telemetry); a non-root
      // user's is in the temp dir.
      if (::getuid() == 0) ::rmdir(("/var/run/dpdk/" + file_prefix_).c_str());
    }
    SwitchFixture::TearDown();
  }

  static std::string tail(const std::string& text) {
    constexpr size_t kTail = 6000;
    return text.size() > kTail ? "...\n" + text.substr(text.size() - kTail) : text;
  }

  std::string vu_path() const { return tmp_.file("vu.sock"); }

  // testpmd's main lcore 0 and forwarding lcore 1 on the first two CPUs this process may use
  // (both on one when it may use only one): "0@2,1@3".
  static std::string lcores() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
      for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
      }
    }
    if (cpus.empty()) cpus.push_back(0);
    return "0@" + std::to_string(cpus.front()) + ",1@" + std::to_string(cpus.back());
  }

  ::testing::AssertionResult start() {
    if (auto r = start_switch({"--vhost-user", "unix:" + vu_path()}); !r) return r;
    if (auto r = connect_clients(1, &clients_); !r) return r;
    return wait_port_count(1);
  }

  // Runs testpmd with `forward_args` after the EAL and virtio-user arguments, and waits until
  // `ports` lists its vhost-user port.
  ::testing::AssertionResult start_testpmd(const std::vector<std::string>& forward_args) {
    std::vector<std::string> args = {
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "-m",
        "256",
        "--lcores=" + lcores(),
        "--file-prefix=" + file_prefix_,
        "--vdev=net_virtio_user0,path=" + vu_path() + ",queues=1,mac=" + kTestpmdMacText,
        "--",
        "--nb-cores=1",
        "--total-num-mbufs=4096",
        "--stats-period=1",
    };
    args.insert(args.end(), forward_args.begin(), forward_args.end());
    args.push_back("-a");  // start forwarding at once
    if (auto r =
            testpmd_.launch(args, {{"XDG_RUNTIME_DIR", tmp_.path()}}, tmp_.file("testpmd.out"));
        !r) {
      return r;
    }
    const auto deadline = Clock::now() + kStartTimeout;
    for (;;) {
      if (!testpmd_.running()) {
        return ::testing::AssertionFailure()
               << "dpdk-testpmd exited with status " << testpmd_.exit_status().value_or(-1)
               << " before its vhost-user port appeared; its output:\n"
               << tail(testpmd_.output());
      }
      const nlohmann::json ports = control_result(sw_, {{"cmd", "ports"}});
      for (const nlohmann::json& row : ports) {
        if (row.value("kind", "") == "vhost-user") return ::testing::AssertionSuccess();
      }
      if (time_left(deadline).count() == 0) {
        return ::testing::AssertionFailure()
               << "no vhost-user port within " << kStartTimeout.count()
               << " ms of starting dpdk-testpmd; ports: " << ports.dump() << "\ntestpmd output:\n"
               << tail(testpmd_.output());
      }
      std::this_thread::sleep_for(50ms);  // polling `ports`, bounded by the deadline
    }
  }

  // SIGINT; testpmd must exit 0 within 10 s. Its output.
  ::testing::AssertionResult stop_testpmd(std::string* output) {
    const std::optional<int> status = testpmd_.interrupt(10s);
    *output = testpmd_.output();
    if (status != 0) {
      return ::testing::AssertionFailure()
             << "dpdk-testpmd did not exit 0 on SIGINT within 10 s (status "
             << (status ? std::to_string(*status) : "none: killed") << "); its output:\n"
             << tail(*output);
    }
    return ::testing::AssertionSuccess();
  }

  // The `ports` row of the vhost-user port.
  nlohmann::json vhost_row() { return port_of_kind(sw_, "vhost-user"); }

  std::vector<FrameClient> clients_;
  Testpmd testpmd_;
  std::string file_prefix_;
};

// The size of counted frame `i`: 60..1514, with both ends and odd sizes between.
size_t frame_size(uint32_t i) {
  switch (i % 5) {
    case 0:
      return 60;
    case 1:
      return 1514;
    default:
      return 61 + (i * 131u) % 1453;
  }
}

TEST_F(DpdkVirtioUserTest, MacswapReturnsEveryFrameSwappedIntactAndInOrder) {
  ASSERT_TRUE(start());
  FrameClient& client = clients_[0];
  const Mac me = test_mac(1);
  // --no-flush-rx: testpmd would otherwise discard, uncounted, the probes that reach its ring
  // before its forwarding starts, and its counts would no longer match qswitch's.
  ASSERT_TRUE(start_testpmd({"--forward-mode=macswap", "--no-flush-rx"}));

  // testpmd starts forwarding a moment after it connects: probe until one frame comes back.
  const auto deadline = Clock::now() + kStartTimeout;
  uint32_t probes = 0;
  std::optional<std::vector<uint8_t>> first;
  while (!first && time_left(deadline).count() > 0 && testpmd_.running()) {
    ASSERT_TRUE(client.send_frame(make_frame(kTestpmdMac, me, 60, kProbeSeqBase + probes)))
        << client.last_error();
    ++probes;
    RecvResult r = client.recv_frame(kProbeInterval);
    if (r.ok()) {
      first = std::move(r.frame);
    } else {
      ASSERT_EQ(r.status, RecvResult::Status::kTimeout) << r.error;
    }
  }
  ASSERT_TRUE(first) << "none of " << probes << " probe frames came back within "
                     << kStartTimeout.count() << " ms; testpmd output:\n"
                     << tail(testpmd_.output());
  EXPECT_EQ(frame_src(*first), kTestpmdMac);
  EXPECT_EQ(frame_dst(*first), me);
  EXPECT_GE(frame_seq(*first).value_or(0), kProbeSeqBase);

  // The counted run: kFrames frames, at most kWindow in flight.
  constexpr uint32_t kFrames = 1000;
  constexpr uint32_t kWindow = 32;
  uint32_t sent = 0, received = 0;
  size_t late_probes = 0;
  const auto started = Clock::now();
  while (received < kFrames) {
    while (sent < kFrames && sent - received < kWindow) {
      ASSERT_TRUE(client.send_frame(make_frame(kTestpmdMac, me, frame_size(sent), sent)))
          << "frame " << sent << ": " << client.last_error();
      ++sent;
    }
    size_t skipped = 0;
    RecvResult r = client.recv_frame_matching(
        [](const std::vector<uint8_t>& f) { return frame_seq(f).value_or(0) < kProbeSeqBase; }, 5s,
        &skipped);
    late_probes += skipped;
    ASSERT_TRUE(r.ok()) << "frame " << received << " (of " << sent
                        << " sent) did not come back: " << to_string(r.status) << " " << r.error;
    const std::vector<uint8_t>& f = r.frame;
    ASSERT_EQ(frame_seq(f), received) << "out of order or lost";
    ASSERT_EQ(frame_src(f), kTestpmdMac) << "frame " << received;
    ASSERT_EQ(frame_dst(f), me) << "frame " << received;
    ASSERT_EQ(f.size(), frame_size(received)) << "frame " << received;
    ASSERT_TRUE(frame_is_intact(f, f.size())) << "frame " << received << " payload changed";
    ++received;
  }
  const auto elapsed = std::chrono::duration_cast<Millis>(Clock::now() - started);
  EXPECT_LT(late_probes, probes) << "more probes came back than were sent";
  RecordProperty("probes", static_cast<int>(probes));
  RecordProperty("frames", static_cast<int>(kFrames));
  RecordProperty("elapsed_ms", static_cast<int>(elapsed.count()));

  const nlohmann::json row = vhost_row();
  EXPECT_GE(port_counter(row, "rx_frames"), kFrames) << row;
  EXPECT_GE(port_counter(row, "tx_frames"), kFrames) << row;
  EXPECT_GT(port_counter(row, "vhost_descriptors"), 0u) << row;
  EXPECT_EQ(port_counter(row, "vhost_ring_errors"), 0u) << row;
  EXPECT_EQ(port_counter(row, "vhost_protocol_errors"), 0u) << row;

  // testpmd stops cleanly; its port goes, the client's stays. Nothing is in flight any more (the
  // last frame came back), so both sides counted the same frames each way.
  std::string out;
  ASSERT_TRUE(stop_testpmd(&out));
  ASSERT_TRUE(wait_port_count(1));
  const std::optional<uint64_t> pmd_rx = testpmd_port_count(out, "RX-packets");
  const std::optional<uint64_t> pmd_tx = testpmd_port_count(out, "TX-packets");
  ASSERT_TRUE(pmd_rx && pmd_tx) << "no forward statistics in testpmd's output:\n" << tail(out);
  EXPECT_GE(*pmd_rx, kFrames);
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  ASSERT_TRUE(stats.is_object() && !stats["closed_ports"].empty()) << stats;
  const nlohmann::json closed = stats["closed_ports"].back();
  EXPECT_EQ(closed.value("kind", ""), "vhost-user") << closed;
  EXPECT_EQ(port_counter(closed, "tx_frames"), *pmd_rx)
      << probes << " probes, " << late_probes << " came back late; " << closed << "\n"
      << tail(out);
  EXPECT_EQ(port_counter(closed, "rx_frames"), *pmd_tx)
      << probes << " probes, " << late_probes << " came back late; " << closed << "\n"
      << tail(out);
  EXPECT_EQ(port_counter(closed, "vhost_ring_errors"), 0u) << closed;
  EXPECT_EQ(port_counter(closed, "vhost_protocol_errors"), 0u) << closed;
}

TEST_F(DpdkVirtioUserTest, TxonlyFramesReachTheStreamClientWellFormed) {
  ASSERT_TRUE(start());
  FrameClient& client = clients_[0];
  const Mac me = test_mac(1);
  // The switch learns the client's MAC (testpmd's frames would be flooded to it anyway).
  ASSERT_TRUE(client.send_frame(make_frame(kBroadcastMac, me, 60, 1)));
  ASSERT_TRUE(start_testpmd({"--forward-mode=txonly", "--eth-peer=0," + mac_to_string(me)}));

  constexpr size_t kFrames = 1000;
  const auto deadline = Clock::now() + kStartTimeout;
  for (size_t i = 0; i < kFrames; ++i) {
    RecvResult r = client.recv_frame(time_left(deadline));
    ASSERT_TRUE(r.ok()) << "received " << i << " of " << kFrames
                        << " frames: " << to_string(r.status) << " " << r.error
                        << "\ntestpmd output:\n"
                        << tail(testpmd_.output());
    const std::vector<uint8_t>& f = r.frame;
    // testpmd's txonly default: 64 bytes of Ethernet, IPv4 (no options) and UDP.
    ASSERT_EQ(f.size(), 64u) << "frame " << i;
    ASSERT_EQ(frame_src(f), kTestpmdMac) << "frame " << i;
    ASSERT_EQ(frame_dst(f), me) << "frame " << i;
    ASSERT_EQ(f[12], 0x08) << "frame " << i << ": not IPv4";
    ASSERT_EQ(f[13], 0x00) << "frame " << i << ": not IPv4";
    ASSERT_EQ(f[14], 0x45) << "frame " << i << ": IPv4 version/IHL";
    ASSERT_EQ(f[23], 17) << "frame " << i << ": not UDP";
  }

  // Stop testpmd before reading the counters: it sends as fast as it can, and the client stopped
  // reading (the switch drops what the client's queue cannot take; that is not asserted).
  std::string out;
  ASSERT_TRUE(stop_testpmd(&out));
  ASSERT_TRUE(wait_port_count(1));
  const std::optional<uint64_t> pmd_tx = testpmd_port_count(out, "TX-packets");
  ASSERT_TRUE(pmd_tx) << "no forward statistics in testpmd's output:\n" << tail(out);
  const nlohmann::json stats = control_result(sw_, {{"cmd", "stats"}});
  ASSERT_TRUE(stats.is_object() && !stats["closed_ports"].empty()) << stats;
  const nlohmann::json row = stats["closed_ports"].back();
  EXPECT_EQ(row.value("kind", ""), "vhost-user") << row;
  EXPECT_GE(port_counter(row, "rx_frames"), kFrames) << row;
  // testpmd counts a frame sent once it is on the ring; qswitch may not have taken the last few
  // when testpmd closed the connection, never more than were sent.
  EXPECT_LE(port_counter(row, "rx_frames"), *pmd_tx) << row << "\n" << tail(out);
  EXPECT_EQ(port_counter(row, "vhost_ring_errors"), 0u) << row;
  EXPECT_EQ(port_counter(row, "vhost_protocol_errors"), 0u) << row;
}

}  // namespace
}  // namespace qswitch::integration
