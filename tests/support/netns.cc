// tests/support/netns.cc: see the header.
#include "tests/support/netns.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "tests/support/frame_client.h"
#include "tests/support/ip_frames.h"

namespace qswitch::test_support {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for `pid` until `deadline`; SIGKILLs and reaps it after. Returns the wait status or -1.
int wait_child(pid_t pid, Clock::time_point deadline, bool* timed_out) {
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      if (timed_out != nullptr) *timed_out = true;
      return status;
    }
    ::usleep(2000);
  }
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::atomic<int> g_counter{0};

}  // namespace

CommandOutcome run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
  CommandOutcome out;
  if (argv.empty()) return out;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) < 0) {
    out.output = std::string("pipe: ") + std::strerror(errno);
    return out;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.output = std::string("fork: ") + std::strerror(errno);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return out;
  }
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvp(args[0], args.data());
    const char msg[] = "exec failed\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  const auto deadline = Clock::now() + timeout;
  // Read until EOF or the deadline (a child that backgrounds something keeping the pipe open
  // cannot hold us past it).
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd p{pipe_fds[0], POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[4096];
    const ssize_t n = ::read(pipe_fds[0], buf, sizeof(buf));
    if (n <= 0) break;
    if (out.output.size() < (1 << 20)) out.output.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  const int status = wait_child(pid, deadline, &out.timed_out);
  out.status = status < 0 ? -1 : exit_code(status);
  return out;
}

Netns::Netns(const std::string& tag) {
  name_ = "qs-" + std::to_string(::getpid()) + "-" + tag + "-" + std::to_string(g_counter++);
  if (::geteuid() != 0) {
    error_ =
        "this test needs root: it creates a network namespace (ip netns add) and the "
        "devices in it (taps, veths, bridges, vxlan devices), which takes CAP_SYS_ADMIN and "
        "CAP_NET_ADMIN; run it as root (ctest -L root)";
    return;
  }
  const CommandOutcome version = run_command({"ip", "-V"});
  if (!version.ok()) {
    error_ = "iproute2 ('ip') is not installed or does not run (apt-get install iproute2): " +
             version.output;
    return;
  }
  const CommandOutcome add = run_command({"ip", "netns", "add", name_});
  if (!add.ok()) {
    error_ = "ip netns add " + name_ + " failed: " + add.output;
    return;
  }
  added_ = true;
  ok_ = true;
  const CommandOutcome lo = sh("ip link set lo up");
  if (!lo.ok()) {
    error_ = "ip link set lo up in " + name_ + " failed: " + lo.output;
    ok_ = false;
  }
}

Netns::~Netns() {
  if (added_) run_command({"ip", "netns", "del", name_});
}

CommandOutcome Netns::sh(const std::string& script, std::chrono::milliseconds timeout) const {
  return run_command({"ip", "netns", "exec", name_, "sh", "-c", script}, timeout);
}

bool Netns::sh_ok(const std::string& script, std::string* error) const {
  const CommandOutcome r = sh(script);
  if (r.ok()) return true;
  if (error != nullptr) {
    *error = "in netns " + name_ + ": `" + script + "` failed (status " + std::to_string(r.status) +
             (r.timed_out ? ", timed out" : "") + "): " + r.output;
  }
  return false;
}

std::vector<std::string> Netns::exec_prefix() const { return {"ip", "netns", "exec", name_}; }

LaunchOptions Netns::launch_in(const std::string& binary, const std::vector<std::string>& args,
                               const std::string& stderr_path) const {
  LaunchOptions o;
  o.binary = "/usr/sbin/ip";
  if (::access(o.binary.c_str(), X_OK) != 0) o.binary = "/sbin/ip";
  o.args = {"netns", "exec", name_, binary};
  o.args.insert(o.args.end(), args.begin(), args.end());
  o.stderr_path = stderr_path;
  return o;
}

std::optional<Mac> Netns::mac_of(const std::string& dev) const {
  const CommandOutcome r = sh("cat /sys/class/net/" + dev + "/address");
  if (!r.ok()) return std::nullopt;
  std::string text = r.output;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return parse_mac(text);
}

int Netns::in_netns(const std::function<int()>& fn, std::chrono::milliseconds timeout) const {
  const std::string path = "/var/run/netns/" + name_;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || ::setns(fd, CLONE_NEWNET) < 0) ::_exit(255);
    ::_exit(fn() & 0xff);
  }
  bool timed_out = false;
  const int status = wait_child(pid, Clock::now() + timeout, &timed_out);
  if (timed_out || status < 0 || !WIFEXITED(status)) return -1;
  const int code = WEXITSTATUS(status);
  return code == 255 ? -1 : code;
}

bool add_veth(const Netns& a, const std::string& dev_a, const Netns& b, const std::string& dev_b,
              std::string* error) {
  return a.sh_ok("ip link add " + dev_a + " type veth peer name " + dev_b + " netns " + b.name(),
                 error);
}

std::vector<uint8_t> make_icmp_echo_request(const Mac& eth_dst, const Mac& eth_src, uint32_t ip_src,
                                            uint32_t ip_dst, uint16_t id, uint16_t seq,
                                            size_t payload_size) {
  const size_t icmp_size = 8 + payload_size;
  const size_t ip_size = 20 + icmp_size;
  std::vector<uint8_t> f(14 + ip_size, 0);
  std::memcpy(f.data(), eth_dst.data(), 6);
  std::memcpy(f.data() + 6, eth_src.data(), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_size >> 8);
  ip[3] = static_cast<uint8_t>(ip_size);
  ip[4] = static_cast<uint8_t>(seq >> 8);  // identification
  ip[5] = static_cast<uint8_t>(seq);
  ip[8] = 64;  // TTL
  ip[9] = 1;   // ICMP
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(ip_src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(ip_dst >> (24 - 8 * i));
  }
  const uint16_t ip_sum = internet_checksum(std::span<const uint8_t>(ip, 20));
  ip[10] = static_cast<uint8_t>(ip_sum >> 8);
  ip[11] = static_cast<uint8_t>(ip_sum);
  uint8_t* icmp = ip + 20;
  icmp[0] = 8;  // echo request (RFC 792)
  icmp[4] = static_cast<uint8_t>(id >> 8);
  icmp[5] = static_cast<uint8_t>(id);
  icmp[6] = static_cast<uint8_t>(seq >> 8);
  icmp[7] = static_cast<uint8_t>(seq);
  for (size_t i = 0; i < payload_size; ++i) icmp[8 + i] = static_cast<uint8_t>(i * 7 + seq);
  const uint16_t sum = internet_checksum(std::span<const uint8_t>(icmp, icmp_size));
  icmp[2] = static_cast<uint8_t>(sum >> 8);
  icmp[3] = static_cast<uint8_t>(sum);
  return f;
}

std::optional<IcmpEcho> parse_icmp_echo(std::span<const uint8_t> frame) {
  if (frame.size() < 14 + 20 + 8 || frame[12] != 0x08 || frame[13] != 0x00) return std::nullopt;
  const uint8_t* ip = frame.data() + 14;
  const size_t ihl = size_t{ip[0] & 0x0fu} * 4;
  const size_t total = (size_t{ip[2]} << 8) | ip[3];
  if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl + 8 || 14 + total > frame.size() || ip[9] != 1) {
    return std::nullopt;
  }
  if (internet_checksum(std::span<const uint8_t>(ip, ihl)) != 0) return std::nullopt;
  const uint8_t* icmp = ip + ihl;
  if (internet_checksum(std::span<const uint8_t>(icmp, total - ihl)) != 0) return std::nullopt;
  if (icmp[0] != 0 && icmp[0] != 8) return std::nullopt;
  IcmpEcho e;
  e.eth_dst = frame_dst(frame);
  e.eth_src = frame_src(frame);
  e.ip_src = (uint32_t{ip[12]} << 24) | (uint32_t{ip[13]} << 16) | (uint32_t{ip[14]} << 8) | ip[15];
  e.ip_dst = (uint32_t{ip[16]} << 24) | (uint32_t{ip[17]} << 16) | (uint32_t{ip[18]} << 8) | ip[19];
  e.type = icmp[0];
  e.id = static_cast<uint16_t>((icmp[4] << 8) | icmp[5]);
  e.seq = static_cast<uint16_t>((icmp[6] << 8) | icmp[7]);
  return e;
}

std::string arp_resolve(FrameClient& client, const Mac& my_mac, uint32_t my_ip, uint32_t target_ip,
                        std::chrono::milliseconds timeout, Mac* target_mac) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    const auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return l.count() < 0 ? std::chrono::milliseconds(0) : l;
  };
  std::string why;  // parse_arp() needs somewhere to put its reason
  // Answers an ARP request for my_ip; true when `frame` was one.
  auto answer_arp = [&](const std::vector<uint8_t>& frame) {
    const auto arp = parse_arp(frame, &why);
    if (!arp || arp->op != 1 || arp->target_ip != my_ip) return false;
    client.send_frame(make_arp_reply(my_mac, my_ip, arp->sender_mac, arp->sender_ip));
    return true;
  };
  std::optional<Mac> peer;
  // A few ARP requests (the first may go out before the far side is listening).
  for (int attempt = 0; attempt < 20 && !peer && left().count() > 0; ++attempt) {
    if (!client.send_frame(make_arp_request(my_mac, my_ip, target_ip))) {
      return "sending the ARP request failed: " + client.last_error();
    }
    const auto until = Clock::now() + std::chrono::milliseconds(500);
    for (int i = 0; i < 1000 && Clock::now() < until; ++i) {
      const RecvResult r = client.recv_frame(std::min(left(), std::chrono::milliseconds(100)));
      if (r.status != RecvResult::Status::kFrame) {
        if (r.status == RecvResult::Status::kTimeout) continue;
        return std::string("receiving: ") + to_string(r.status) + " " + r.error;
      }
      if (answer_arp(r.frame)) continue;
      const auto arp = parse_arp(r.frame, &why);
      if (arp && arp->op == 2 && arp->sender_ip == target_ip && arp->target_ip == my_ip) {
        peer = arp->sender_mac;
        break;
      }
    }
  }
  if (!peer) return "no ARP reply from " + ipv4_to_string(target_ip);
  if (target_mac != nullptr) *target_mac = *peer;
  return "";
}

std::string arp_and_ping(FrameClient& client, const Mac& my_mac, uint32_t my_ip, uint32_t target_ip,
                         std::chrono::milliseconds timeout, Mac* target_mac, uint16_t seq) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    const auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return l.count() < 0 ? std::chrono::milliseconds(0) : l;
  };
  std::string why;  // parse_arp() needs somewhere to put its reason
  // Answers an ARP request for my_ip; true when `frame` was one.
  auto answer_arp = [&](const std::vector<uint8_t>& frame) {
    const auto arp = parse_arp(frame, &why);
    if (!arp || arp->op != 1 || arp->target_ip != my_ip) return false;
    client.send_frame(make_arp_reply(my_mac, my_ip, arp->sender_mac, arp->sender_ip));
    return true;
  };
  std::optional<Mac> peer;
  {
    Mac answered{};
    const std::string failure = arp_resolve(client, my_mac, my_ip, target_ip, timeout, &answered);
    if (!failure.empty()) return failure;
    peer = answered;
  }
  if (target_mac != nullptr) *target_mac = *peer;
  constexpr uint16_t kId = 0x5153;
  for (int attempt = 0; attempt < 10 && left().count() > 0; ++attempt) {
    if (!client.send_frame(make_icmp_echo_request(*peer, my_mac, my_ip, target_ip, kId, seq))) {
      return "sending the ICMP echo failed: " + client.last_error();
    }
    const auto until = Clock::now() + std::chrono::milliseconds(1000);
    for (int i = 0; i < 1000 && Clock::now() < until; ++i) {
      const RecvResult r = client.recv_frame(std::min(left(), std::chrono::milliseconds(100)));
      if (r.status != RecvResult::Status::kFrame) {
        if (r.status == RecvResult::Status::kTimeout) continue;
        return std::string("receiving: ") + to_string(r.status) + " " + r.error;
      }
      if (answer_arp(r.frame)) continue;
      const auto echo = parse_icmp_echo(r.frame);
      if (echo && echo->type == 0 && echo->id == kId && echo->seq == seq &&
          echo->ip_src == target_ip && echo->ip_dst == my_ip && echo->eth_dst == my_mac) {
        return "";
      }
    }
  }
  return "no ICMP echo reply from " + ipv4_to_string(target_ip) + " (ARP answered from " +
         mac_to_string(*peer) + ")";
}

std::string ipv6_to_string(const Ipv6& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (::inet_ntop(AF_INET6, addr.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

namespace {

constexpr uint8_t kIcmp6EchoRequest = 128;
constexpr uint8_t kIcmp6EchoReply = 129;
constexpr uint8_t kIcmp6NeighborSolicitation = 135;
constexpr uint8_t kIcmp6NeighborAdvertisement = 136;

// The ICMPv6 checksum (RFC 4443 2.3): over the pseudo-header (source, destination, upper-layer
// length, next header 58) and the message.
uint16_t icmp6_checksum(const uint8_t* src, const uint8_t* dst, const uint8_t* msg, size_t len) {
  std::vector<uint8_t> buf(40 + len, 0);
  std::memcpy(buf.data(), src, 16);
  std::memcpy(buf.data() + 16, dst, 16);
  buf[32] = static_cast<uint8_t>(len >> 24);
  buf[33] = static_cast<uint8_t>(len >> 16);
  buf[34] = static_cast<uint8_t>(len >> 8);
  buf[35] = static_cast<uint8_t>(len);
  buf[39] = 58;
  std::memcpy(buf.data() + 40, msg, len);
  return internet_checksum(buf);
}

// Ethernet + IPv6 header + `icmp` (its checksum field filled in here).
std::vector<uint8_t> icmp6_frame(const Mac& eth_dst, const Mac& eth_src, const Ipv6& src,
                                 const Ipv6& dst, uint8_t hop_limit, std::vector<uint8_t> icmp) {
  std::vector<uint8_t> f(14 + 40 + icmp.size(), 0);
  std::memcpy(f.data(), eth_dst.data(), 6);
  std::memcpy(f.data() + 6, eth_src.data(), 6);
  f[12] = 0x86;
  f[13] = 0xdd;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x60;
  ip[4] = static_cast<uint8_t>(icmp.size() >> 8);
  ip[5] = static_cast<uint8_t>(icmp.size());
  ip[6] = 58;  // ICMPv6
  ip[7] = hop_limit;
  std::memcpy(ip + 8, src.data(), 16);
  std::memcpy(ip + 24, dst.data(), 16);
  icmp[2] = 0;
  icmp[3] = 0;
  const uint16_t sum = icmp6_checksum(src.data(), dst.data(), icmp.data(), icmp.size());
  icmp[2] = static_cast<uint8_t>(sum >> 8);
  icmp[3] = static_cast<uint8_t>(sum);
  std::memcpy(ip + 40, icmp.data(), icmp.size());
  return f;
}

}  // namespace

std::vector<uint8_t> make_neighbor_solicitation(const Mac& my_mac, const Ipv6& my_ip,
                                                const Ipv6& target) {
  // Solicited-node multicast ff02::1:ffXX:XXXX and its MAC 33:33:ff:XX:XX:XX (RFC 4291, 2464).
  Ipv6 group{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, target[13], target[14], target[15]};
  const Mac group_mac{0x33, 0x33, 0xff, target[13], target[14], target[15]};
  std::vector<uint8_t> icmp(24 + 8, 0);
  icmp[0] = kIcmp6NeighborSolicitation;
  std::memcpy(icmp.data() + 8, target.data(), 16);
  icmp[24] = 1;  // source link-layer address option, 8 bytes
  icmp[25] = 1;
  std::memcpy(icmp.data() + 26, my_mac.data(), 6);
  return icmp6_frame(group_mac, my_mac, my_ip, group, 255, std::move(icmp));
}

std::vector<uint8_t> make_neighbor_advertisement(const Mac& my_mac, const Ipv6& my_ip,
                                                 const Mac& to_mac, const Ipv6& to_ip) {
  std::vector<uint8_t> icmp(24 + 8, 0);
  icmp[0] = kIcmp6NeighborAdvertisement;
  icmp[4] = 0x60;  // solicited, override
  std::memcpy(icmp.data() + 8, my_ip.data(), 16);
  icmp[24] = 2;  // target link-layer address option, 8 bytes
  icmp[25] = 1;
  std::memcpy(icmp.data() + 26, my_mac.data(), 6);
  return icmp6_frame(to_mac, my_mac, my_ip, to_ip, 255, std::move(icmp));
}

std::vector<uint8_t> make_icmp6_echo_request(const Mac& eth_dst, const Mac& eth_src,
                                             const Ipv6& ip_src, const Ipv6& ip_dst, uint16_t id,
                                             uint16_t seq, size_t payload_size) {
  std::vector<uint8_t> icmp(8 + payload_size, 0);
  icmp[0] = kIcmp6EchoRequest;
  icmp[4] = static_cast<uint8_t>(id >> 8);
  icmp[5] = static_cast<uint8_t>(id);
  icmp[6] = static_cast<uint8_t>(seq >> 8);
  icmp[7] = static_cast<uint8_t>(seq);
  for (size_t i = 0; i < payload_size; ++i) icmp[8 + i] = static_cast<uint8_t>(i * 7 + seq);
  return icmp6_frame(eth_dst, eth_src, ip_src, ip_dst, 64, std::move(icmp));
}

std::optional<Icmp6Message> parse_icmp6(std::span<const uint8_t> frame) {
  if (frame.size() < 14 + 40 + 8 || frame[12] != 0x86 || frame[13] != 0xdd) return std::nullopt;
  const uint8_t* ip = frame.data() + 14;
  const size_t payload = (size_t{ip[4]} << 8) | ip[5];
  if ((ip[0] >> 4) != 6 || ip[6] != 58 || payload < 8 || 14 + 40 + payload > frame.size()) {
    return std::nullopt;
  }
  const uint8_t* icmp = ip + 40;
  if (icmp6_checksum(ip + 8, ip + 24, icmp, payload) != 0) return std::nullopt;
  Icmp6Message m;
  m.eth_dst = frame_dst(frame);
  m.eth_src = frame_src(frame);
  std::memcpy(m.ip_src.data(), ip + 8, 16);
  std::memcpy(m.ip_dst.data(), ip + 24, 16);
  m.hop_limit = ip[7];
  m.type = icmp[0];
  if (m.type == kIcmp6EchoRequest || m.type == kIcmp6EchoReply) {
    m.id = static_cast<uint16_t>((icmp[4] << 8) | icmp[5]);
    m.seq = static_cast<uint16_t>((icmp[6] << 8) | icmp[7]);
    return m;
  }
  if (m.type != kIcmp6NeighborSolicitation && m.type != kIcmp6NeighborAdvertisement) {
    return std::nullopt;
  }
  if (payload < 24) return std::nullopt;
  std::memcpy(m.target.data(), icmp + 8, 16);
  // Options: type, length in units of 8 bytes (never 0), value.
  for (size_t off = 24; off + 2 <= payload;) {
    const size_t len = size_t{icmp[off + 1]} * 8;
    if (len == 0 || off + len > payload) return std::nullopt;
    const uint8_t want = m.type == kIcmp6NeighborSolicitation ? 1 : 2;
    if (icmp[off] == want && len >= 8) {
      Mac mac{};
      std::memcpy(mac.data(), icmp + off + 2, 6);
      m.link_layer = mac;
    }
    off += len;
  }
  return m;
}

std::string ndp_and_ping6(FrameClient& client, const Mac& my_mac, const Ipv6& my_ip,
                          const Ipv6& target_ip, std::chrono::milliseconds timeout, Mac* target_mac,
                          uint16_t seq) {
  const auto deadline = Clock::now() + timeout;
  auto left = [&] {
    const auto l = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return l.count() < 0 ? std::chrono::milliseconds(0) : l;
  };
  // Answers a neighbour solicitation for my_ip; true when `m` was one.
  auto answer_ns = [&](const std::optional<Icmp6Message>& m) {
    if (!m || m->type != kIcmp6NeighborSolicitation || m->target != my_ip) return false;
    // From the unspecified address (DAD) there is nobody to answer unicast.
    if (m->ip_src == Ipv6{}) return true;
    const Mac to = m->link_layer.value_or(m->eth_src);
    client.send_frame(make_neighbor_advertisement(my_mac, my_ip, to, m->ip_src));
    return true;
  };
  std::optional<Mac> peer;
  for (int attempt = 0; attempt < 20 && !peer && left().count() > 0; ++attempt) {
    if (!client.send_frame(make_neighbor_solicitation(my_mac, my_ip, target_ip))) {
      return "sending the neighbour solicitation failed: " + client.last_error();
    }
    const auto until = Clock::now() + std::chrono::milliseconds(500);
    for (int i = 0; i < 1000 && Clock::now() < until; ++i) {
      const RecvResult r = client.recv_frame(std::min(left(), std::chrono::milliseconds(100)));
      if (r.status != RecvResult::Status::kFrame) {
        if (r.status == RecvResult::Status::kTimeout) continue;
        return std::string("receiving: ") + to_string(r.status) + " " + r.error;
      }
      const auto m = parse_icmp6(r.frame);
      if (answer_ns(m)) continue;
      if (m && m->type == kIcmp6NeighborAdvertisement && m->hop_limit == 255 &&
          m->target == target_ip && m->ip_dst == my_ip && m->eth_dst == my_mac &&
          m->link_layer.has_value()) {
        peer = *m->link_layer;
        break;
      }
    }
  }
  if (!peer) return "no neighbour advertisement from " + ipv6_to_string(target_ip);
  if (target_mac != nullptr) *target_mac = *peer;
  constexpr uint16_t kId = 0x5153;
  for (int attempt = 0; attempt < 10 && left().count() > 0; ++attempt) {
    if (!client.send_frame(make_icmp6_echo_request(*peer, my_mac, my_ip, target_ip, kId, seq))) {
      return "sending the ICMPv6 echo failed: " + client.last_error();
    }
    const auto until = Clock::now() + std::chrono::milliseconds(1000);
    for (int i = 0; i < 1000 && Clock::now() < until; ++i) {
      const RecvResult r = client.recv_frame(std::min(left(), std::chrono::milliseconds(100)));
      if (r.status != RecvResult::Status::kFrame) {
        if (r.status == RecvResult::Status::kTimeout) continue;
        return std::string("receiving: ") + to_string(r.status) + " " + r.error;
      }
      const auto m = parse_icmp6(r.frame);
      if (answer_ns(m)) continue;
      if (m && m->type == kIcmp6EchoReply && m->id == kId && m->seq == seq &&
          m->ip_src == target_ip && m->ip_dst == my_ip && m->eth_dst == my_mac) {
        return "";
      }
    }
  }
  return "no ICMPv6 echo reply from " + ipv6_to_string(target_ip) + " (advertised by " +
         mac_to_string(*peer) + ")";
}

}  // namespace qswitch::test_support
