// tests/support/netns.h: network namespaces a test creates for itself, and frames for talking
// to the kernel inside them.
//
// Theory of operation
// - Netns runs `ip netns add qs-<pid>-<tag>-<n>` (unique per process and object) and `ip netns
//   del` in its destructor, so a failing test leaves nothing behind. Everything the test puts in
//   the namespace (taps, veths, bridges, vxlan devices) goes with it. Processes a test starts
//   inside must be ended by the test (by pid) before the Netns goes out of scope.
// - ok() is false, with error() saying what is missing, when the test is not root, iproute2 is
//   not installed, or the namespace could not be made: the caller FAILs with that message.
// - Commands run through run_command(): fork + execvp, output (stdout and stderr) captured, a
//   bounded timeout after which the child is SIGKILLed by its pid.
// - in_netns() forks a child that setns()es into the namespace and runs a function there (to
//   send crafted datagrams from inside), with a bounded wait.
// - ICMP echo frames (RFC 792) for pinging the kernel from a stream port, and the IPv6
//   counterpart: NDP (RFC 4861) neighbour solicitation/advertisement and ICMPv6 echo (RFC 4443),
//   checksummed over the IPv6 pseudo-header (the kernel drops a bad one without a word).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/qswitch_process.h"
#include "tests/support/test_frames.h"

namespace qswitch::test_support {

struct CommandOutcome {
  int status = -1;  // exit code; 128 + signal when killed; -1 when it could not run
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return status == 0 && !timed_out; }
};

CommandOutcome run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

class Netns {
 public:
  explicit Netns(const std::string& tag);
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& name() const { return name_; }

  // `sh -c script` inside the namespace.
  CommandOutcome sh(const std::string& script,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const;
  // Runs the script and returns true, or false with *error = the script and its output.
  bool sh_ok(const std::string& script, std::string* error) const;
  // {"ip", "netns", "exec", name}: prefix a command line with it to start a process inside.
  std::vector<std::string> exec_prefix() const;
  // Options that start `binary args...` inside the namespace (ip netns exec execs it, so the
  // QswitchProcess pid is the binary's own).
  LaunchOptions launch_in(const std::string& binary, const std::vector<std::string>& args,
                          const std::string& stderr_path) const;
  // The MAC address of `dev` inside the namespace.
  std::optional<Mac> mac_of(const std::string& dev) const;
  // Forks, enters the namespace, runs `fn` and exits with its result; returns that result or
  // -1 (could not enter, crashed, or still running after `timeout`: then killed).
  int in_netns(const std::function<int()>& fn,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

 private:
  std::string name_;
  bool ok_ = false;
  bool added_ = false;
  std::string error_;
};

// A veth pair: `dev_a` in `a`, `dev_b` in `b`.
bool add_veth(const Netns& a, const std::string& dev_a, const Netns& b, const std::string& dev_b,
              std::string* error);

// Ethernet + IPv4 + ICMP echo request (type 8) with `payload_size` bytes of pattern.
std::vector<uint8_t> make_icmp_echo_request(const Mac& eth_dst, const Mac& eth_src, uint32_t ip_src,
                                            uint32_t ip_dst, uint16_t id, uint16_t seq,
                                            size_t payload_size = 32);
struct IcmpEcho {
  Mac eth_src{};
  Mac eth_dst{};
  uint32_t ip_src = 0;
  uint32_t ip_dst = 0;
  uint8_t type = 0;  // 0 reply, 8 request
  uint16_t id = 0;
  uint16_t seq = 0;
};
// An ICMP echo request or reply with valid IPv4 and ICMP checksums, else nullopt.
std::optional<IcmpEcho> parse_icmp_echo(std::span<const uint8_t> frame);

class FrameClient;
// From a stream port: ARP for `target_ip` (a few requests, bounded by `timeout`), answering ARP
// requests for `my_ip` meanwhile. Empty on success, else what did not arrive. *target_mac gets
// the answering MAC when non-null.
std::string arp_resolve(FrameClient& client, const Mac& my_mac, uint32_t my_ip, uint32_t target_ip,
                        std::chrono::milliseconds timeout, Mac* target_mac = nullptr);
// From a stream port: ARP for `target_ip`, then one ICMP echo to the MAC that answered; answers
// ARP requests for `my_ip` meanwhile (the kernel may ask before it replies). Empty on success,
// else what did not arrive. *target_mac gets the answering MAC when non-null.
std::string arp_and_ping(FrameClient& client, const Mac& my_mac, uint32_t my_ip, uint32_t target_ip,
                         std::chrono::milliseconds timeout, Mac* target_mac = nullptr,
                         uint16_t seq = 1);

// IPv6 addresses are 16 bytes in wire order.
using Ipv6 = std::array<uint8_t, 16>;
// fd00::<last> (a unique-local address for the namespaces tests make).
constexpr Ipv6 ipv6_ula(uint16_t last) {
  return Ipv6{0xfd,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              0,
              static_cast<uint8_t>(last >> 8),
              static_cast<uint8_t>(last)};
}
std::string ipv6_to_string(const Ipv6& addr);

// Ethernet + IPv6 (hop limit 255) + ICMPv6 neighbour solicitation for `target`, to its
// solicited-node multicast group, with a source link-layer address option.
std::vector<uint8_t> make_neighbor_solicitation(const Mac& my_mac, const Ipv6& my_ip,
                                                const Ipv6& target);
// Ethernet + IPv6 + solicited neighbour advertisement for `my_ip` (flags S and O, target
// link-layer address option), unicast to `to_mac`/`to_ip`.
std::vector<uint8_t> make_neighbor_advertisement(const Mac& my_mac, const Ipv6& my_ip,
                                                 const Mac& to_mac, const Ipv6& to_ip);
// Ethernet + IPv6 + ICMPv6 echo request (type 128) with `payload_size` bytes of pattern.
std::vector<uint8_t> make_icmp6_echo_request(const Mac& eth_dst, const Mac& eth_src,
                                             const Ipv6& ip_src, const Ipv6& ip_dst, uint16_t id,
                                             uint16_t seq, size_t payload_size = 32);
struct Icmp6Message {
  Mac eth_src{};
  Mac eth_dst{};
  Ipv6 ip_src{};
  Ipv6 ip_dst{};
  uint8_t hop_limit = 0;
  uint8_t type = 0;  // 128/129 echo request/reply, 135/136 neighbour solicitation/advertisement
  uint16_t id = 0;   // echo
  uint16_t seq = 0;  // echo
  Ipv6 target{};     // NS/NA
  std::optional<Mac> link_layer;  // NS source / NA target link-layer address option
};
// An ICMPv6 message of the types above carried directly in IPv6 (no extension headers), with a
// valid ICMPv6 checksum and every field inside the frame; else nullopt.
std::optional<Icmp6Message> parse_icmp6(std::span<const uint8_t> frame);

// The IPv6 counterpart of arp_and_ping(): neighbour solicitation for `target_ip`, then one
// ICMPv6 echo to the MAC that advertised it; answers neighbour solicitations for `my_ip`
// meanwhile. Empty on success, else what did not arrive.
std::string ndp_and_ping6(FrameClient& client, const Mac& my_mac, const Ipv6& my_ip,
                          const Ipv6& target_ip, std::chrono::milliseconds timeout,
                          Mac* target_mac = nullptr, uint16_t seq = 1);

}  // namespace qswitch::test_support
