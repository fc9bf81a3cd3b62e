// bench/idle_rss/idle_rss.cc: how much resident memory an idle port costs qswitch.
//
// For each N (default 1, 100, 500), starts a fresh qswitch on a unix socket in a temp dir, reads
// its VmRSS with no ports (R0), connects N clients that each send ONE broadcast and then stay
// idle (the clients read and discard what the switch sends them, so nothing stays queued), waits
// for things to settle and reads VmRSS again (R). Prints one line per N:
//   idle_ports=N rss_kib=R per_port_kib=(R-R0)/N r0_kib=R0
// RLIMIT_NOFILE is raised (for this process and so for the qswitch it starts) to fit N.
//
// usage: qswitch-idle-rss [--qswitch PATH] [N ...]
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/frame_client.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_frames.h"

namespace {

using namespace std::chrono_literals;
using qswitch::test_support::FrameClient;
using qswitch::test_support::LaunchOptions;
using qswitch::test_support::QswitchProcess;
using qswitch::test_support::TempDir;

bool raise_nofile(rlim_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= want) return true;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  return ::setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want;
}

// Reads what is waiting on every client, until a pass finds nothing.
void drain_all(std::vector<FrameClient>& clients) {
  for (int pass = 0; pass < 20; ++pass) {
    size_t got = 0;
    for (auto& c : clients) got += c.drain(0ms);
    if (got == 0) return;
    std::this_thread::sleep_for(20ms);
  }
}

int measure(const std::string& binary, size_t ports) {
  TempDir tmp("qswitch-idle-rss-");
  if (tmp.path().empty()) {
    std::fprintf(stderr, "qswitch-idle-rss: cannot create a temp dir\n");
    return 1;
  }
  const std::string address = "unix:" + tmp.file("sw.sock");
  QswitchProcess sw;
  LaunchOptions o;
  o.binary = binary;
  o.args = {"--listen", address};
  o.stderr_path = tmp.file("qswitch.stderr");
  if (!sw.start(o)) {
    std::fprintf(stderr, "qswitch-idle-rss: %s\n", sw.error().c_str());
    return 1;
  }
  std::this_thread::sleep_for(300ms);
  const long r0 = sw.rss_kib().value_or(-1);

  std::vector<FrameClient> clients;
  clients.reserve(ports);
  for (size_t i = 0; i < ports; ++i) {
    std::string error;
    auto c = FrameClient::connect(address, &error);
    if (!c) {
      std::fprintf(stderr, "qswitch-idle-rss: client %zu: %s\n", i, error.c_str());
      return 1;
    }
    const auto mac = qswitch::test_support::test_mac(static_cast<uint32_t>(i + 1));
    if (!c->send_frame(qswitch::test_support::make_frame(qswitch::test_support::kBroadcastMac, mac,
                                                         64, static_cast<uint32_t>(i)))) {
      std::fprintf(stderr, "qswitch-idle-rss: client %zu send: %s\n", i, c->last_error().c_str());
      return 1;
    }
    clients.push_back(std::move(*c));
    if (i % 32 == 31) drain_all(clients);
  }
  // Every port's broadcast reached the others, and then they all went quiet.
  std::this_thread::sleep_for(300ms);
  drain_all(clients);
  std::this_thread::sleep_for(700ms);
  drain_all(clients);
  const long r = sw.rss_kib().value_or(-1);
  if (!sw.running() || r0 < 0 || r < 0) {
    std::fprintf(stderr, "qswitch-idle-rss: qswitch is gone or VmRSS unreadable\n%s",
                 sw.stderr_text().c_str());
    return 1;
  }
  const double per_port =
      ports == 0 ? 0.0 : static_cast<double>(r - r0) / static_cast<double>(ports);
  std::printf("idle_ports=%zu rss_kib=%ld per_port_kib=%.1f r0_kib=%ld\n", ports, r, per_port, r0);
  std::fflush(stdout);
  clients.clear();
  sw.signal(SIGTERM);
  sw.wait_exit(5s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string binary = QSWITCH_BINARY;
  std::vector<size_t> counts;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--qswitch" && i + 1 < argc) {
      binary = argv[++i];
    } else if (!a.empty() && a.find_first_not_of("0123456789") == std::string::npos) {
      counts.push_back(std::strtoul(a.c_str(), nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: qswitch-idle-rss [--qswitch PATH] [N ...]\n");
      return 2;
    }
  }
  if (counts.empty()) counts = {1, 100, 500};
  size_t most = 0;
  for (size_t n : counts) most = std::max(most, n);
  if (!raise_nofile(static_cast<rlim_t>(most) * 2 + 64)) {
    std::fprintf(stderr, "qswitch-idle-rss: cannot raise RLIMIT_NOFILE to %zu\n", most * 2 + 64);
    return 1;
  }
  for (size_t n : counts) {
    if (int rc = measure(binary, n); rc != 0) return rc;
  }
  return 0;
}
