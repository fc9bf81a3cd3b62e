// tests/integration/exec_peer.cc: a stand-in for QEMU under `qswitch exec`, for exec_test.cc.
//
// Theory of operation
// - Run as `qswitch exec ... -- exec_peer --peer-mac MAC [--expect-seq N] [--timeout-ms T]`,
//   it finds what the launcher appended, exactly as QEMU would read it:
//     -netdev dgram,id=ID,local.type=fd,local.str=N | stream,id=ID,addr.type=fd,addr.str=N
//     -device virtio-net-pci,netdev=ID,mac=MAC
//   and prints "netdev TYPE ID fd N mac MAC", "socket TYPE" (SO_TYPE of fd N) and
//   "extra_sockets K" (sockets open besides fd N: the launcher must pass on neither the control
//   connection nor the switch's end of the pair; other fds come from whoever ran the test).
// - It sends a broadcast test frame (seq 1, 60 bytes) and a unicast one to --peer-mac (seq 2,
//   300 bytes) on fd N (dgram: one frame per datagram; stream: QEMU's 4-byte big-endian length
//   prefix), prints "ready", then prints "got src=.. dst=.. seq=.. len=.. intact=0|1" for every
//   frame that arrives. It exits 0 ("done") once a frame with --expect-seq from --peer-mac
//   arrived, 3 ("timeout") after --timeout-ms (default 10000), 2 on bad arguments.
// - With a vhost-user NIC (`exec --type vhost-user`) it finds
//     -object memory-backend-memfd,...,size=S,share=on  -machine memory-backend=...
//     -chardev socket,id=C,path=P  -netdev vhost-user,id=ID,chardev=C
//     -device virtio-net-pci,netdev=ID,mac=MAC[,vectors=0]
//   prints "netdev vhost-user ID path P mac MAC vectors V memory S", connects to P as a
//   vhost-user front-end (tests/support/vhost_user_frontend.h: what QEMU and the guest's driver
//   would do), and exchanges the same frames through the rings.
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/test_frames.h"
#include "tests/support/vhost_user_frontend.h"

namespace {

using qswitch::test_support::Mac;

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// The value of `key=` in a comma-separated option string, or "".
std::string option_value(const std::string& spec, const std::string& key) {
  size_t start = 0;
  while (start < spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    const std::string item = spec.substr(start, end - start);
    if (item.rfind(key + "=", 0) == 0) return item.substr(key.size() + 1);
    start = end + 1;
  }
  return "";
}

bool write_all(int fd, const uint8_t* data, size_t size) {
  size_t done = 0;
  for (int tries = 0; done < size && tries < 1000; ++tries) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n > 0) done += static_cast<size_t>(n);
    if (n < 0 && errno != EINTR && errno != EAGAIN) return false;
  }
  return done == size;
}

bool send_frame(int fd, bool stream, const std::vector<uint8_t>& frame) {
  if (!stream)
    return ::send(fd, frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
  const uint32_t n = static_cast<uint32_t>(frame.size());
  const uint8_t len[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                          static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return write_all(fd, len, 4) && write_all(fd, frame.data(), frame.size());
}

size_t extra_sockets(int keep) {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 999;
  const int own = ::dirfd(d);
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const int fd = std::atoi(e->d_name);
    if (fd == keep || fd == own) continue;
    char target[256];
    const std::string link = std::string("/proc/self/fd/") + e->d_name;
    const ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
    if (len > 0 && std::string(target, static_cast<size_t>(len)).rfind("socket:", 0) == 0) ++n;
  }
  ::closedir(d);
  return n;
}

// The vhost-user side of main(): connect to `path`, send the two frames, receive until
// `expect_seq` from `peer` arrives.
int run_vhost_user(const std::string& path, const Mac& own, const Mac& peer, uint32_t expect_seq,
                   int64_t timeout_ms) {
  using namespace qswitch::test_support;
  std::string error;
  auto g = VhostUserFrontend::create({}, &error);
  if (g) error = g->connect(path, vu::Millis(5000));
  if (error.empty()) error = g->handshake();
  if (error.empty()) error = g->start();
  if (!error.empty()) {
    std::printf("vhost-user: %s\n", error.c_str());
    return 6;
  }
  std::printf("extra_sockets %zu\n", extra_sockets(g->socket_fd()));
  const bool ok = g->send(make_frame(kBroadcastMac, own, 60, 1)).empty() &&
                  g->send(make_frame(peer, own, 300, 2)).empty();
  std::printf("%s\nready\n", ok ? "sent" : "send failed");
  std::fflush(stdout);
  const int64_t deadline = now_ms() + timeout_ms;
  while (now_ms() < deadline) {
    const VhostUserFrontend::Received r = g->receive(vu::Millis(deadline - now_ms()));
    if (r.status == VhostUserFrontend::Received::Status::kError) {
      std::printf("vhost-user: %s\n", r.error.c_str());
      return 4;
    }
    if (!r.ok()) continue;
    const std::vector<uint8_t>& f = r.frame;
    const std::optional<uint32_t> seq = frame_seq(f);
    std::printf("got src=%s dst=%s seq=%d len=%zu intact=%d\n", mac_to_string(frame_src(f)).c_str(),
                mac_to_string(frame_dst(f)).c_str(), seq ? static_cast<int>(*seq) : -1, f.size(),
                frame_is_intact(f, f.size()) ? 1 : 0);
    std::fflush(stdout);
    if (seq && *seq == expect_seq && frame_src(f) == peer) {
      std::printf("done\n");
      return 0;
    }
  }
  std::printf("timeout\n");
  return 3;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qswitch::test_support;
  std::string peer_mac_text;
  uint32_t expect_seq = 3;
  int64_t timeout_ms = 10'000;
  std::string netdev;
  std::string device;
  std::string chardev;
  std::string memory;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--peer-mac")
      peer_mac_text = argv[++i];
    else if (a == "--expect-seq")
      expect_seq = static_cast<uint32_t>(std::atoi(argv[++i]));
    else if (a == "--timeout-ms")
      timeout_ms = std::atoi(argv[++i]);
    else if (a == "-netdev")
      netdev = argv[++i];
    else if (a == "-device")
      device = argv[++i];
    else if (a == "-chardev")
      chardev = argv[++i];
    else if (a == "-object")
      memory = argv[++i];
  }
  const std::optional<Mac> peer = parse_mac(peer_mac_text);
  const std::string type = netdev.substr(0, netdev.find(','));
  if (type == "vhost-user") {
    const std::optional<Mac> peer = parse_mac(peer_mac_text);
    const std::string mac_text = option_value(device, "mac");
    const std::optional<Mac> own = parse_mac(mac_text);
    const std::string path = option_value(chardev, "path");
    if (!peer || !own || path.empty() ||
        option_value(netdev, "chardev") != option_value(chardev, "id")) {
      std::printf("bad arguments: peer-mac '%s' netdev '%s' chardev '%s' device '%s'\n",
                  peer_mac_text.c_str(), netdev.c_str(), chardev.c_str(), device.c_str());
      return 2;
    }
    std::printf(
        "netdev vhost-user %s path %s mac %s vectors %s memory %s share %s\n",
        option_value(netdev, "id").c_str(), path.c_str(), mac_text.c_str(),
        option_value(device, "vectors").empty() ? "msix" : option_value(device, "vectors").c_str(),
        option_value(memory, "size").c_str(), option_value(memory, "share").c_str());
    std::fflush(stdout);
    return run_vhost_user(path, *own, *peer, expect_seq, timeout_ms);
  }
  const bool stream = type == "stream";
  const std::string fd_text = option_value(netdev, stream ? "addr.str" : "local.str");
  const std::string mac_text = option_value(device, "mac");
  const std::optional<Mac> own = parse_mac(mac_text);
  if (!peer || fd_text.empty() || !own || (type != "dgram" && type != "stream")) {
    std::printf("bad arguments: peer-mac '%s' netdev '%s' device '%s'\n", peer_mac_text.c_str(),
                netdev.c_str(), device.c_str());
    return 2;
  }
  const int fd = std::atoi(fd_text.c_str());
  std::printf("netdev %s %s fd %d mac %s\n", type.c_str(), option_value(netdev, "id").c_str(), fd,
              mac_text.c_str());
  int so_type = 0;
  socklen_t len = sizeof so_type;
  const bool is_socket = ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &so_type, &len) == 0;
  std::printf("socket %s\n", !is_socket               ? "none"
                             : so_type == SOCK_DGRAM  ? "dgram"
                             : so_type == SOCK_STREAM ? "stream"
                                                      : "other");
  std::printf("extra_sockets %zu\n", extra_sockets(fd));
  bool ok = send_frame(fd, stream, make_frame(kBroadcastMac, *own, 60, 1)) &&
            send_frame(fd, stream, make_frame(*peer, *own, 300, 2));
  std::printf("%s\nready\n", ok ? "sent" : "send failed");
  std::fflush(stdout);

  std::vector<uint8_t> buf(70'000);
  size_t have = 0;  // stream: bytes buffered
  const int64_t deadline = now_ms() + timeout_ms;
  while (now_ms() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(deadline - now_ms())) <= 0) continue;
    const ssize_t n = ::recv(fd, buf.data() + have, buf.size() - have, MSG_DONTWAIT);
    if (n == 0) {
      std::printf("eof\n");
      return 4;
    }
    if (n < 0) continue;
    std::vector<std::vector<uint8_t>> frames;
    if (!stream) {
      frames.emplace_back(buf.begin(), buf.begin() + n);
    } else {
      have += static_cast<size_t>(n);
      size_t at = 0;
      while (have - at >= 4) {
        const uint32_t flen = (uint32_t{buf[at]} << 24) | (uint32_t{buf[at + 1]} << 16) |
                              (uint32_t{buf[at + 2]} << 8) | buf[at + 3];
        if (flen > buf.size() - 4) {
          std::printf("bad length %u\n", flen);
          return 5;
        }
        if (have - at - 4 < flen) break;
        frames.emplace_back(buf.begin() + at + 4, buf.begin() + at + 4 + flen);
        at += 4 + flen;
      }
      std::memmove(buf.data(), buf.data() + at, have - at);
      have -= at;
    }
    for (const std::vector<uint8_t>& f : frames) {
      const std::optional<uint32_t> seq = frame_seq(f);
      std::printf("got src=%s dst=%s seq=%d len=%zu intact=%d\n",
                  mac_to_string(frame_src(f)).c_str(), mac_to_string(frame_dst(f)).c_str(),
                  seq ? static_cast<int>(*seq) : -1, f.size(),
                  frame_is_intact(f, f.size()) ? 1 : 0);
      std::fflush(stdout);
      if (seq && *seq == expect_seq && frame_src(f) == *peer) {
        std::printf("done\n");
        return 0;
      }
    }
  }
  std::printf("timeout\n");
  return 3;
}
