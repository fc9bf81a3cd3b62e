// bench/control_load/control_load.cc: qswitch-control-load, a paced control-plane load.
//
// Usage: qswitch-control-load SOCKET RATE SECONDS [CMD...]
// Keeps one connection to a qswitch control socket and sends RATE requests per second for
// SECONDS, cycling through the commands given (default: ports, macs, stats), each waiting for
// its reply line. Prints one line: requests sent, replies, error replies, and reply latency
// (median and max, ms). Used by bench/control-load to measure what a control load costs the
// data path; it asserts nothing.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int connect_unix(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof sun.sun_path) return -1;
  std::memcpy(sun.sun_path, path.c_str(), path.size());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads one line (up to 16 MiB) with a deadline; false on EOF, error or timeout.
bool read_line(int fd, std::string& buffer, std::string& line, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const size_t nl = buffer.find('\n');
    if (nl != std::string::npos) {
      line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      return true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || buffer.size() > (16u << 20)) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[65536];
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: qswitch-control-load SOCKET RATE SECONDS [CMD...]\n");
    return 2;
  }
  const std::string path = argv[1];
  const double rate = std::atof(argv[2]);
  const double seconds = std::atof(argv[3]);
  if (rate <= 0 || rate > 100000 || seconds <= 0 || seconds > 3600) {
    std::fprintf(stderr,
                 "qswitch-control-load: RATE must be in (0, 100000], SECONDS in (0, 3600]\n");
    return 2;
  }
  std::vector<std::string> cmds;
  for (int i = 4; i < argc; ++i) cmds.emplace_back(argv[i]);
  if (cmds.empty()) cmds = {"ports", "macs", "stats"};

  const int fd = connect_unix(path);
  if (fd < 0) {
    std::fprintf(stderr, "qswitch-control-load: cannot connect to %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  const auto period = std::chrono::duration<double>(1.0 / rate);
  uint64_t sent = 0, replies = 0, errors = 0;
  std::vector<double> latencies_ms;
  std::string buffer, line;
  for (uint64_t i = 0; i < 10'000'000; ++i) {
    const auto due =
        start + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    if (due >= end) break;
    std::this_thread::sleep_until(due);
    const std::string req = "{\"cmd\":\"" + cmds[i % cmds.size()] + "\"}\n";
    const auto t0 = Clock::now();
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) break;
    ++sent;
    if (!read_line(fd, buffer, line, 5000)) break;
    ++replies;
    if (line.find("\"ok\":true") == std::string::npos) ++errors;
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  ::close(fd);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double median = latencies_ms.empty() ? 0 : latencies_ms[latencies_ms.size() / 2];
  const double worst = latencies_ms.empty() ? 0 : latencies_ms.back();
  std::printf(
      "control load: %llu requests in %.1f s, %llu replies, %llu errors, latency median "
      "%.2f ms max %.2f ms\n",
      static_cast<unsigned long long>(sent),
      std::chrono::duration<double>(Clock::now() - start).count(),
      static_cast<unsigned long long>(replies), static_cast<unsigned long long>(errors), median,
      worst);
  return replies == sent && errors == 0 ? 0 : 1;
}
