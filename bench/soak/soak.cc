// bench/soak/soak.cc: qswitch-soak, the churn soak (issue 9): ports of every local kind join and
// leave thousands of times while survivors talk and one peer is stuck; qswitch's fds, memory,
// ports and MAC entries must come back to where they started.
//
// Theory of operation
// - Starts its own qswitch (--listen unix:, --dgram unix:, --no-slirp, its control socket beside
//   the listener) in a temp dir.
// - Survivors, for the whole run: two stream peers, one unix datagram peer and one exec-style
//   peer (a stream socketpair handed over with port.attach, as `qswitch exec --type stream`
//   does). A traffic thread makes each send a unicast frame to the next one every round and a
//   broadcast every tenth round, and reads everything that arrives. Sends never block: a stream
//   survivor keeps its unsent bytes and adds no frame until they are gone (so framing is never
//   broken), a datagram that does not fit is counted as not sent. For each survivor it records
//   the longest time without a frame from another survivor (a stall: reported, not asserted).
// - The stuck peer: a stream peer with a 4 KiB receive buffer that never reads and never sends
//   (a paused VM). Every broadcast reaches its queue.
// - A churn thread joins ports at --rate per second, round robin over four kinds: stream
//   (connect to the listener; one in four also leaves a partial frame behind), unix datagram
//   (a fresh bound path), exec-stream and exec-dgram (socketpair + port.attach over a control
//   connection kept open, as the launcher does). Each churner has a MAC of its own and sends a
//   broadcast and a unicast to a survivor; the oldest churner leaves once --concurrent are up
//   (stream: close; datagram: close and unlink, the switch closes the port on its next send;
//   exec: close the pair end and the control connection, in alternating order).
// - A sampler reads every 500 ms: /proc/PID/fd (count), /proc/PID/status VmRSS, the control
//   API's `stats` (ports, mac_entries) and `ports` (the stuck port's counters; bytes queued to
//   the ports, the stuck one's apart: its queue fills to its bound and stays). Start = after the
//   survivors and the stuck peer are up, before the churn; peak = maximum while churning; end =
//   after the churn stopped and fds, ports and MAC entries came back to the start values (polled
//   every 200 ms, bounded by --settle seconds) or the settle deadline passed.
// - Exit status 1 unless fds, ports and MAC entries are back at their start values, qswitch is
//   still running, and it then exits 0 on SIGTERM (the ctest soak_short runs 60 s). Counts only:
//   no rate or time is asserted. RSS, stalls and hellos the switch did not take are reported.
//
// usage: qswitch-soak [--qswitch PATH] [--duration SECONDS] [--rate JOINS_PER_S]
//                     [--concurrent N] [--settle SECONDS] [--no-stuck]
// (--no-stuck leaves the stuck peer out, to tell what it causes from what the churn causes.)
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/control_client.h"
#include "tests/support/dgram_client.h"
#include "tests/support/frame_client.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_frames.h"

#ifndef QSWITCH_BINARY
#error "QSWITCH_BINARY must name the qswitch binary (bench/soak/CMakeLists.txt)"
#endif

namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using qswitch::test_support::ControlClient;
using qswitch::test_support::DgramClient;
using qswitch::test_support::FrameClient;
using qswitch::test_support::kBroadcastMac;
using qswitch::test_support::LaunchOptions;
using qswitch::test_support::Mac;
using qswitch::test_support::make_frame;
using qswitch::test_support::QswitchProcess;
using qswitch::test_support::TempDir;
using qswitch::test_support::test_mac;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string qswitch = QSWITCH_BINARY;
  int duration_s = 600;
  int rate = 40;        // joins per second
  int concurrent = 32;  // churners up at once
  int settle_s = 30;
  bool stuck = true;  // --no-stuck: leave the stuck peer out (to tell its effects from churn's)
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- what the switch process shows ---------------------------------------------------------

long count_fds(pid_t pid) {
  DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (d == nullptr) return -1;
  long n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

struct Sample {
  long fds = -1;
  long rss_kib = -1;
  long ports = -1;
  long mac_entries = -1;
  long queued_bytes = -1;        // queued to every port but the stuck one; -1: not reported
  long stuck_queued_bytes = -1;  // queued to the stuck port (bounded by its queue size)
  uint64_t stuck_tx_frames = 0;
  uint64_t stuck_drops = 0;   // every drop_* counter of the stuck port
  uint64_t rx_paused = 0;     // summed over all ports
  uint64_t rx_throttled = 0;  // summed over all ports
  bool ok = false;
};

// One control request; the "result" or nullopt.
std::optional<json> control(ControlClient& ctl, const std::string& cmd) {
  qswitch::test_support::LineResult r = ctl.request(json{{"cmd", cmd}}.dump(), 5000ms);
  if (!r.ok()) return std::nullopt;
  json j = json::parse(r.line, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false) || !j.contains("result")) return std::nullopt;
  return j["result"];
}

Sample sample(QswitchProcess& sw, ControlClient& ctl, long stuck_port) {
  Sample s;
  s.fds = count_fds(sw.pid());
  s.rss_kib = sw.rss_kib().value_or(-1);
  std::optional<json> stats = control(ctl, "stats");
  std::optional<json> ports = control(ctl, "ports");
  if (!stats || !ports || !ports->is_array()) return s;
  s.ports = stats->value("ports", -1L);
  s.mac_entries = stats->value("mac_entries", -1L);
  for (const json& row : *ports) {
    const json counters = row.value("counters", json::object());
    if (row.contains("queued_bytes") && row["queued_bytes"].is_number_unsigned()) {
      const long q = row["queued_bytes"].get<long>();
      const bool stuck = row.value("id", json()).is_number() && row["id"].get<long>() == stuck_port;
      long& into = stuck ? s.stuck_queued_bytes : s.queued_bytes;
      into = std::max(into, 0L) + q;
    }
    s.rx_paused += counters.value("rx_paused", uint64_t{0});
    s.rx_throttled += counters.value("rx_throttled", uint64_t{0});
    if (row.value("id", json()).is_number() && row["id"].get<long>() == stuck_port) {
      s.stuck_tx_frames = counters.value("tx_frames", uint64_t{0});
      for (const auto& [name, value] : counters.items()) {
        if (name.rfind("drop_", 0) == 0 && value.is_number_unsigned()) {
          s.stuck_drops += value.get<uint64_t>();
        }
      }
    }
  }
  s.ok = s.ports >= 0 && s.mac_entries >= 0 && s.fds >= 0;
  return s;
}

// ---- peers ----------------------------------------------------------------------------------

// port.attach over a fresh control connection, with `fd` passed; the connection (which must stay
// open for as long as the port) and the port id, or nullopt with *error.
std::optional<ControlClient> attach(const std::string& control_path, bool stream, int fd,
                                    long* port, std::string* error) {
  auto ctl = ControlClient::connect(control_path, error, 5000ms);
  if (!ctl) return std::nullopt;
  const json request = {{"cmd", "port.attach"},
                        {"args", {{"type", stream ? "stream" : "dgram"}, {"name", "soak"}}}};
  if (!ctl->send_line_with_fd(request.dump(), fd, 5000ms)) {
    *error = "port.attach: " + ctl->last_error();
    return std::nullopt;
  }
  qswitch::test_support::LineResult r = ctl->read_line(5000ms);
  json j = r.ok() ? json::parse(r.line, nullptr, false) : json();
  if (!r.ok() || j.is_discarded() || !j.value("ok", false)) {
    *error = "port.attach: " + (r.ok() ? r.line : r.error);
    return std::nullopt;
  }
  *port = j["result"].value("port", -1L);
  return ctl;
}

// A survivor: one of the peers that stay for the whole run.
struct Survivor {
  std::string name;
  Mac mac{};
  std::optional<FrameClient> stream;  // stream or exec-stream
  std::optional<DgramClient> dgram;
  std::optional<ControlClient> exec_control;  // exec-stream: the attach connection
  std::vector<uint8_t> pending;               // stream: unsent wire bytes
  size_t pending_at = 0;
  uint64_t sent = 0, not_sent = 0, received = 0, from_survivors = 0;
  Clock::time_point last_rx = Clock::now();  // last frame from another survivor
  bool measuring = false;                    // set once the run starts
  double longest_gap_s = 0;

  // Writes what is pending without blocking; true when nothing is left.
  bool flush() {
    while (pending_at < pending.size()) {
      const ssize_t n = ::send(stream->fd(), pending.data() + pending_at,
                               pending.size() - pending_at, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        pending_at += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    pending.clear();
    pending_at = 0;
    return true;
  }

  void send(const std::vector<uint8_t>& frame) {
    if (dgram) {
      if (dgram->send_frame(frame))
        ++sent;
      else
        ++not_sent;
      return;
    }
    if (!flush()) {
      ++not_sent;
      return;
    }
    FrameClient::append_wire(&pending, frame);
    ++sent;
    flush();
  }

  // Reads what arrived (bounded per call). Frames from other survivors are what tells whether
  // the survivors still reach each other: churners' frames arrive whatever happens to them.
  void receive(const std::vector<Mac>& survivor_macs) {
    const auto now = Clock::now();
    for (int i = 0; i < 256; ++i) {
      qswitch::test_support::RecvResult r =
          dgram ? dgram->recv_frame(0ms) : stream->recv_frame(0ms);
      if (!r.ok()) break;
      ++received;
      const Mac src = qswitch::test_support::frame_src(r.frame);
      if (std::find(survivor_macs.begin(), survivor_macs.end(), src) != survivor_macs.end()) {
        ++from_survivors;
        last_rx = now;
      }
    }
    if (measuring) {
      longest_gap_s = std::max(longest_gap_s, std::chrono::duration<double>(now - last_rx).count());
    }
  }
};

// A churner: joins, says hello, leaves.
struct Churner {
  enum Kind { kStream, kDgram, kExecStream, kExecDgram };
  Kind kind = kStream;
  std::optional<FrameClient> stream;
  std::optional<DgramClient> dgram;
  int exec_fd = -1;  // exec-dgram: our end of the pair
  std::optional<ControlClient> exec_control;
  bool partial_frame = false;
  bool close_control_first = false;

  void leave() {
    if (partial_frame && stream) {
      // A length prefix and half a frame, then the connection goes.
      const uint8_t half[] = {0, 0, 0, 100, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0x71};
      stream->send_raw(half, 100ms);
    }
    if (close_control_first && exec_control) exec_control->close();
    if (stream) stream->close();
    if (dgram) dgram->close();
    if (exec_fd >= 0) ::close(exec_fd);
    exec_fd = -1;
    if (exec_control) exec_control->close();
  }
};

// A datagram that would block (the switch's receive queue holds max_dgram_qlen datagrams: it
// is not reading that socket right now) is tried again, 2 ms apart, for up to 50 ms; then the
// hello counts as not taken (the churn goes on at its pace; the port may never come up).
template <typename Send>
bool send_datagram(Send send) {
  for (int attempt = 0; attempt < 25; ++attempt) {
    if (send()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

const char* kind_name(Churner::Kind k) {
  switch (k) {
    case Churner::kStream:
      return "stream";
    case Churner::kDgram:
      return "dgram";
    case Churner::kExecStream:
      return "exec-stream";
    case Churner::kExecDgram:
      return "exec-dgram";
  }
  return "?";
}

struct ChurnStats {
  uint64_t joins[4] = {};
  uint64_t errors[4] = {};     // joins that failed: connect, bind, socketpair, port.attach
  uint64_t not_taken[4] = {};  // joins whose hello or unicast the switch did not take in time
  uint64_t error_count() const { return errors[0] + errors[1] + errors[2] + errors[3]; }
  std::string first_error;
};

bool raise_nofile(rlim_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= want) return true;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

int usage(const char* msg) {
  if (msg != nullptr) std::fprintf(stderr, "qswitch-soak: %s\n", msg);
  std::fprintf(stderr,
               "usage: qswitch-soak [--qswitch PATH] [--duration SECONDS (600)] [--rate "
               "JOINS_PER_S (40)]\n"
               "                    [--concurrent N (32)] [--settle SECONDS (30)] "
               "[--no-stuck]\n");
  return 2;
}

bool parse_int(const char* text, int lo, int hi, int* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

std::string figure(long v) { return v < 0 ? "n/a" : std::to_string(v); }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--qswitch" && has_value) {
      o.qswitch = argv[++i];
    } else if (a == "--duration" && has_value) {
      if (!parse_int(argv[++i], 1, 86400, &o.duration_s)) return usage("--duration: 1..86400");
    } else if (a == "--rate" && has_value) {
      if (!parse_int(argv[++i], 1, 10000, &o.rate)) return usage("--rate: 1..10000");
    } else if (a == "--concurrent" && has_value) {
      if (!parse_int(argv[++i], 1, 200, &o.concurrent)) return usage("--concurrent: 1..200");
    } else if (a == "--settle" && has_value) {
      if (!parse_int(argv[++i], 1, 3600, &o.settle_s)) return usage("--settle: 1..3600");
    } else if (a == "--no-stuck") {
      o.stuck = false;
    } else if (a == "--help" || a == "-h") {
      usage(nullptr);
      return 0;
    } else {
      return usage(("unknown argument '" + a + "'").c_str());
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  raise_nofile(4096);

  TempDir dir("qswitch-soak-");
  if (dir.path().empty()) {
    std::fprintf(stderr, "qswitch-soak: cannot create a temp dir\n");
    return 1;
  }
  const std::string listen = "unix:" + dir.file("sw.sock");
  const std::string dgram = dir.file("dg.sock");
  QswitchProcess sw;
  LaunchOptions launch;
  launch.binary = o.qswitch;
  launch.args = {"--listen", listen, "--dgram", "unix:" + dgram, "--no-slirp"};
  launch.stderr_path = dir.file("qswitch.stderr");
  if (!sw.start(launch, 10'000ms)) {
    std::fprintf(stderr, "qswitch-soak: qswitch did not start: %s\n", sw.error().c_str());
    return 1;
  }
  const std::string control_path = sw.control();
  std::string error;
  auto sampler_ctl = ControlClient::connect(control_path, &error);
  if (!sampler_ctl) {
    std::fprintf(stderr, "qswitch-soak: control socket: %s\n", error.c_str());
    return 1;
  }

  // ---- survivors and the stuck peer ----
  std::vector<Survivor> survivors(4);
  for (size_t i = 0; i < survivors.size(); ++i) {
    survivors[i].mac = test_mac(static_cast<uint32_t>(i + 1));
  }
  for (int i = 0; i < 2; ++i) {
    survivors[i].name = "stream-" + std::to_string(i + 1);
    survivors[i].stream = FrameClient::connect(listen, &error);
    if (!survivors[i].stream) {
      std::fprintf(stderr, "qswitch-soak: survivor: %s\n", error.c_str());
      return 1;
    }
  }
  survivors[2].name = "dgram";
  survivors[2].dgram = DgramClient::open(dir.file("survivor.sock"), "unix:" + dgram, &error);
  if (!survivors[2].dgram) {
    std::fprintf(stderr, "qswitch-soak: survivor: %s\n", error.c_str());
    return 1;
  }
  {
    survivors[3].name = "exec-stream";
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
    long port = -1;
    survivors[3].exec_control = attach(control_path, true, pair[1], &port, &error);
    ::close(pair[1]);
    if (!survivors[3].exec_control) {
      ::close(pair[0]);
      std::fprintf(stderr, "qswitch-soak: survivor: %s\n", error.c_str());
      return 1;
    }
    survivors[3].stream.emplace(pair[0]);
  }
  FrameClient::Options stuck_options;
  stuck_options.rcvbuf_size = 4096;
  std::optional<FrameClient> stuck;
  if (o.stuck) stuck = FrameClient::connect(listen, stuck_options, &error);
  if (o.stuck && !stuck) {
    std::fprintf(stderr, "qswitch-soak: stuck peer: %s\n", error.c_str());
    return 1;
  }
  std::vector<Mac> survivor_macs;
  for (const Survivor& s : survivors) survivor_macs.push_back(s.mac);
  // Every survivor announces itself; wait until the switch has 5 ports and 4 MACs.
  const long expected_ports = o.stuck ? 5 : 4;
  long stuck_port = -1;
  const auto announce_deadline = Clock::now() + 10s;
  for (int round = 0;; ++round) {
    for (Survivor& s : survivors) s.send(make_frame(kBroadcastMac, s.mac, 60, 0));
    for (Survivor& s : survivors) s.receive(survivor_macs);
    std::optional<json> ports = control(*sampler_ctl, "ports");
    long up = 0, macs = 0;
    stuck_port = -1;
    if (ports) {
      for (const json& row : *ports) {
        ++up;
        const size_t n = row.value("macs", json::array()).size();
        macs += static_cast<long>(n);
        if (o.stuck && n == 0 && row.value("id", json()).is_number()) {
          stuck_port = row["id"].get<long>();
        }
      }
    }
    if (up == expected_ports && macs == 4) break;
    if (Clock::now() > announce_deadline || round > 200) {
      std::fprintf(stderr, "qswitch-soak: survivors not all up after 10 s (%ld ports, %ld macs)\n",
                   up, macs);
      return 1;
    }
    std::this_thread::sleep_for(50ms);
  }

  const Sample start = sample(sw, *sampler_ctl, stuck_port);
  if (!start.ok) {
    std::fprintf(stderr, "qswitch-soak: cannot read the start figures\n");
    return 1;
  }
  std::printf("qswitch-soak: qswitch pid %d, %d s of churn at %d joins/s, %d churners up at once\n",
              static_cast<int>(sw.pid()), o.duration_s, o.rate, o.concurrent);
  std::printf("start: fds %ld rss_kib %ld ports %ld mac_entries %ld (stuck peer: %s)\n", start.fds,
              start.rss_kib, start.ports, start.mac_entries,
              o.stuck ? ("port " + std::to_string(stuck_port)).c_str() : "none");
  std::fflush(stdout);

  // ---- traffic ----
  std::atomic<bool> stop_traffic{false};
  std::thread traffic([&] {
    for (Survivor& s : survivors) {
      s.measuring = true;
      s.last_rx = Clock::now();
    }
    uint32_t seq = 1;
    for (uint64_t round = 0; !stop_traffic.load(); ++round) {
      for (size_t i = 0; i < survivors.size(); ++i) {
        Survivor& s = survivors[i];
        const Mac& next = survivors[(i + 1) % survivors.size()].mac;
        const Mac& dst = round % 10 == 0 ? kBroadcastMac : next;
        s.send(make_frame(dst, s.mac, 60 + (round % 8) * 180, seq++));
      }
      for (Survivor& s : survivors) s.receive(survivor_macs);
      std::this_thread::sleep_for(1ms);  // pacing, about 4000 frames/s in all
    }
  });

  // ---- churn ----
  std::atomic<bool> stop_churn{false};
  ChurnStats churn;
  std::thread churner([&] {
    std::deque<Churner> up;
    uint32_t next_mac = 1000;
    uint64_t n = 0;
    const auto t0 = Clock::now();
    auto note_error = [&](Churner::Kind kind, const std::string& what) {
      if (churn.error_count() == 0) churn.first_error = what;
      ++churn.errors[kind];
    };
    while (!stop_churn.load()) {
      // Pacing: join number n is due at t0 + n / rate.
      const auto due = t0 + std::chrono::microseconds(n * 1'000'000 / o.rate);
      if (Clock::now() < due) {
        std::this_thread::sleep_until(due);
        continue;
      }
      Churner c;
      c.kind = static_cast<Churner::Kind>(n % 4);
      const Mac mac = test_mac(next_mac++);
      if (next_mac > 1000 + 1'000'000) next_mac = 1000;
      const Mac& to = survivors[n % survivors.size()].mac;
      const auto hello = make_frame(kBroadcastMac, mac, 60, 1);
      const auto unicast = make_frame(to, mac, 200, 2);
      std::string err;
      bool hard = false;  // the churner could not even be set up
      bool ok = false;    // it was, and the switch took its two frames
      switch (c.kind) {
        case Churner::kStream:
          c.stream = FrameClient::connect(listen, &err, 2000ms);
          hard = !c.stream;
          ok =
              !hard && c.stream->send_frame(hello, 1000ms) && c.stream->send_frame(unicast, 1000ms);
          c.partial_frame = (n / 4) % 4 == 0;
          break;
        case Churner::kDgram:
          c.dgram = DgramClient::open(dir.file("c" + std::to_string(n % 1024) + ".sock"),
                                      "unix:" + dgram, &err);
          hard = !c.dgram;
          ok = !hard && send_datagram([&] { return c.dgram->send_frame(hello); }) &&
               send_datagram([&] { return c.dgram->send_frame(unicast); });
          break;
        case Churner::kExecStream:
        case Churner::kExecDgram: {
          const bool stream = c.kind == Churner::kExecStream;
          int pair[2];
          const int type = (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC;
          if (::socketpair(AF_UNIX, type, 0, pair) != 0) {
            err = std::string("socketpair: ") + std::strerror(errno);
            hard = true;
            break;
          }
          long port = -1;
          c.exec_control = attach(control_path, stream, pair[1], &port, &err);
          ::close(pair[1]);
          c.close_control_first = (n / 4) % 2 == 0;
          if (!c.exec_control) {
            ::close(pair[0]);
            hard = true;
            break;
          }
          if (stream) {
            c.stream.emplace(pair[0]);
            ok = c.stream->send_frame(hello, 1000ms) && c.stream->send_frame(unicast, 1000ms);
          } else {
            c.exec_fd = pair[0];
            const int fd = pair[0];
            ok = send_datagram(
                     [&] { return ::send(fd, hello.data(), hello.size(), MSG_DONTWAIT) > 0; }) &&
                 send_datagram(
                     [&] { return ::send(fd, unicast.data(), unicast.size(), MSG_DONTWAIT) > 0; });
          }
          break;
        }
      }
      if (hard) {
        note_error(c.kind,
                   std::string(kind_name(c.kind)) + " join " + std::to_string(n) + ": " + err);
      } else if (!ok) {
        ++churn.not_taken[c.kind];
      }
      ++churn.joins[c.kind];
      ++n;
      up.push_back(std::move(c));
      while (up.size() > static_cast<size_t>(o.concurrent)) {
        up.front().leave();
        up.pop_front();
      }
    }
    for (Churner& c : up) c.leave();
  });

  // ---- sampling while churning ----
  Sample peak = start;
  const auto run_start = Clock::now();
  auto last_print = run_start;
  bool switch_died = false;
  while (seconds_since(run_start) < o.duration_s) {
    std::this_thread::sleep_for(500ms);
    if (!sw.running()) {
      switch_died = true;
      break;
    }
    const Sample s = sample(sw, *sampler_ctl, stuck_port);
    if (!s.ok) continue;
    peak.fds = std::max(peak.fds, s.fds);
    peak.rss_kib = std::max(peak.rss_kib, s.rss_kib);
    peak.ports = std::max(peak.ports, s.ports);
    peak.mac_entries = std::max(peak.mac_entries, s.mac_entries);
    peak.queued_bytes = std::max(peak.queued_bytes, s.queued_bytes);
    peak.stuck_queued_bytes = std::max(peak.stuck_queued_bytes, s.stuck_queued_bytes);
    if (seconds_since(last_print) >= 30) {
      last_print = Clock::now();
      std::printf(
          "  t=%4.0f s: fds %ld rss_kib %ld ports %ld mac_entries %ld queued_bytes %s "
          "stuck port tx_frames %llu drops %llu; live ports' rx_paused %llu "
          "rx_throttled %llu\n",
          seconds_since(run_start), s.fds, s.rss_kib, s.ports, s.mac_entries,
          figure(s.queued_bytes).c_str(), static_cast<unsigned long long>(s.stuck_tx_frames),
          static_cast<unsigned long long>(s.stuck_drops),
          static_cast<unsigned long long>(s.rx_paused),
          static_cast<unsigned long long>(s.rx_throttled));
      std::fflush(stdout);
    }
  }
  stop_churn = true;
  churner.join();

  // ---- settle: the churners are gone; survivors still talk ----
  Sample end;
  double settled_after = -1;
  const auto settle_start = Clock::now();
  while (!switch_died) {
    if (!sw.running()) {
      switch_died = true;
      break;
    }
    end = sample(sw, *sampler_ctl, stuck_port);
    if (end.ok && end.fds == start.fds && end.ports == start.ports &&
        end.mac_entries == start.mac_entries) {
      settled_after = seconds_since(settle_start);
      break;
    }
    if (seconds_since(settle_start) > o.settle_s) break;
    std::this_thread::sleep_for(200ms);
  }
  stop_traffic = true;
  traffic.join();

  uint64_t joins = 0;
  for (uint64_t j : churn.joins) joins += j;
  std::printf("churn: %llu joins and leaves:", static_cast<unsigned long long>(joins));
  for (int k = 0; k < 4; ++k) {
    std::printf(" %s %llu (%llu errors, %llu hellos not taken);",
                kind_name(static_cast<Churner::Kind>(k)),
                static_cast<unsigned long long>(churn.joins[k]),
                static_cast<unsigned long long>(churn.errors[k]),
                static_cast<unsigned long long>(churn.not_taken[k]));
  }
  std::printf("\n");
  if (churn.error_count() > 0) std::printf("  first join error: %s\n", churn.first_error.c_str());
  std::printf("%-14s %10s %10s %10s\n", "", "start", "peak", "end");
  auto row = [](const char* name, long a, long b, long c) {
    std::printf("%-14s %10s %10s %10s\n", name, figure(a).c_str(), figure(b).c_str(),
                figure(c).c_str());
  };
  row("fds", start.fds, peak.fds, end.fds);
  row("rss_kib", start.rss_kib, peak.rss_kib, end.rss_kib);
  row("ports", start.ports, peak.ports, end.ports);
  row("mac_entries", start.mac_entries, peak.mac_entries, end.mac_entries);
  row("queued_bytes", start.queued_bytes, peak.queued_bytes, end.queued_bytes);
  row("stuck_queued", start.stuck_queued_bytes, peak.stuck_queued_bytes, end.stuck_queued_bytes);
  if (start.queued_bytes < 0) {
    std::printf("  (queued_bytes: the control API reports no queued-bytes counter)\n");
  }
  if (o.stuck) {
    std::printf("stuck peer (port %ld): tx_frames %llu, drops %llu\n", stuck_port,
                static_cast<unsigned long long>(end.stuck_tx_frames),
                static_cast<unsigned long long>(end.stuck_drops));
  }
  if (std::optional<json> stats = control(*sampler_ctl, "stats")) {
    std::printf("stats: mac_evictions %s, dgram_sockets %s\n",
                stats->value("mac_evictions", json()).dump().c_str(),
                stats->value("dgram_sockets", json()).dump().c_str());
  }
  std::printf("survivors' ports (live at the end): rx_paused %llu, rx_throttled %llu\n",
              static_cast<unsigned long long>(end.rx_paused),
              static_cast<unsigned long long>(end.rx_throttled));
  for (const Survivor& s : survivors) {
    std::printf(
        "survivor %-12s sent %llu, not sent (socket full) %llu, received %llu (%llu "
        "from survivors), longest time without a frame from a survivor %.1f s\n",
        s.name.c_str(), static_cast<unsigned long long>(s.sent),
        static_cast<unsigned long long>(s.not_sent), static_cast<unsigned long long>(s.received),
        static_cast<unsigned long long>(s.from_survivors), s.longest_gap_s);
  }
  if (settled_after >= 0) {
    std::printf(
        "settled: fds, ports and mac_entries back at their start values %.1f s after "
        "the churn stopped\n",
        settled_after);
  } else if (!switch_died) {
    std::printf(
        "NOT settled within %d s: fds %ld (start %ld), ports %ld (start %ld), "
        "mac_entries %ld (start %ld)\n",
        o.settle_s, end.fds, start.fds, end.ports, start.ports, end.mac_entries, start.mac_entries);
  }

  int status = 0;
  if (switch_died || !sw.running()) {
    std::optional<int> code = sw.wait_exit(1000ms);
    std::string tail = sw.stderr_text();
    if (tail.size() > 4000) tail = tail.substr(tail.size() - 4000);
    std::printf("FAIL: qswitch is gone (exit %d); its stderr tail:\n%s\n", code.value_or(-1),
                tail.c_str());
    return 1;
  }
  if (settled_after < 0) status = 1;
  sw.signal(SIGTERM);
  std::optional<int> code = sw.wait_exit(20'000ms);
  if (!code || *code != 0) {
    std::printf("FAIL: qswitch %s on SIGTERM\n",
                code ? ("exited " + std::to_string(*code)).c_str() : "did not exit within 20 s");
    std::string tail = sw.stderr_text();
    if (tail.size() > 4000) tail = tail.substr(tail.size() - 4000);
    std::printf("%s\n", tail.c_str());
    status = 1;
  }
  std::printf("%s\n", status == 0 ? "qswitch-soak: OK" : "qswitch-soak: FAILED");
  return status;
}
