// tools/qswitch-bench/bench_options.h: the qswitch-bench command line as typed values.
//
// Theory of operation
// - parse_bench_options() is the only place that reads argv. It either returns a complete
//   BenchOptions or an error naming the bad value and what would be accepted (exit 2), or asks
//   for --help. Every range check happens here so the run never sees an impossible value.
// - A TARGET is one address shared by every port (a switch that accepts many connections on one
//   socket: qswitch, vde_switch) or a comma list with one address per port (a switch that listens
//   once per port: QEMU's hub behind several "-netdev stream,server=on"). --direct needs none.
// - Datagram addresses (unixgram:, udp:) name where a port sends; a port binds an address of its
//   own that the switch replies to: a fresh path in a private temp dir (unixgram:PATH), or
//   127.0.0.1:0 / [::1]:0 (udp:HOST:PORT). The two-sided forms name the bound address too
//   (unixgram:LOCAL=REMOTE, udp:LHOST:LPORT-RHOST:RPORT), for a switch that sends to a fixed
//   address per port, as QEMU's "-netdev dgram" does.
// - --vlan VID[:PORTS] makes every port (or the listed port indexes) send and expect 802.1Q-tagged
//   frames of VLAN VID (bench_frame.h). --size stays the size on the sending wire, so a frame
//   from an untagged port arrives 4 bytes longer on a tagged one: with some ports tagged and
//   others not, --size leaves room for that under the transport's limit. --direct has no switch
//   to push or pop a tag, so there --vlan tags both ports or none.
// - --mode spread: every port sends to each of the others in turn (frame k of port i to the k-th
//   of the other P-1 ports, round robin), so every port receives from all the others and every
//   port pair carries traffic both ways (bench_run.h).
// - --cpu-pid PID names the switch's process: its CPU time over the measured window is reported
//   per frame received (bench_cpu.h). Only the value's form is checked here; main() checks that
//   /proc/PID/stat can be read before the run (exit 2 when it cannot).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qswitch::tools {

enum class BenchMode { kPair, kBidir, kMesh, kSpread };
enum class AddrKind { kUnix, kTcp, kVde, kUnixgram, kUdp };

struct PortAddr {
  AddrKind kind = AddrKind::kUnix;
  std::string path;  // unix/unixgram: the socket path (unixgram: where to send); vde: directory
  std::string host;  // tcp/udp: numeric IPv4/IPv6 or "localhost" (udp: where to send)
  uint16_t port = 0;
  // Datagram kinds: the address this port binds. Empty bind_path (unixgram) means a fresh path
  // in a private temp dir; empty bind_host (udp) means the loopback address of host's family,
  // port bind_port (0: any).
  std::string bind_path;
  std::string bind_host;
  uint16_t bind_port = 0;
  std::string text;  // as written on the command line

  bool datagram() const { return kind == AddrKind::kUnixgram || kind == AddrKind::kUdp; }
};

// Frame sizes are Ethernet frames without FCS, as on the QEMU stream wire.
inline constexpr uint32_t kBenchMinFrameSize = 60;     // IEEE 802.3 minimum without FCS
inline constexpr uint32_t kBenchMaxFrameSize = 65549;  // 65535 + 14, as virtio-net / qswitch
// libvdeplug.h: VDE_ETHBUFSIZE = VDE_MAXMTU (9216) + 14 + 4.
inline constexpr uint32_t kVdeMaxFrameSize = 9216 + 14 + 4;
// The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header).
inline constexpr uint32_t kUdpMaxFrameSize = 65507;
inline constexpr uint32_t kBenchMaxPorts = 64;
inline constexpr uint16_t kBenchMaxVlan = 4094;  // IEEE 802.1Q: 0 and 4095 are reserved
inline constexpr int kBenchMaxPid = 4194304;     // Linux PID_MAX_LIMIT on 64-bit

struct BenchOptions {
  bool direct = false;
  bool direct_dgram = false;           // --direct=dgram: SOCK_DGRAM socketpair, not SOCK_STREAM
  std::string target_text = "direct";  // for reports
  std::vector<PortAddr> addrs;         // empty (direct), one shared, or one per port
  uint32_t ports = 2;
  BenchMode mode = BenchMode::kPair;
  uint32_t size = 64;
  double seconds = 3.0;
  double warmup = 0.5;
  bool json = false;
  uint16_t vlan = 0;        // --vlan VID: 1..4094; 0: every port untagged
  uint64_t vlan_ports = 0;  // bit i set: port i tags (every port when --vlan names none)
  int cpu_pid = 0;          // --cpu-pid: the switch's process, 0: none

  // The VID port `index` tags its frames with, 0 when it sends and expects them untagged.
  uint16_t vlan_of(uint32_t index) const {
    return index < 64 && ((vlan_ports >> index) & 1) != 0 ? vlan : 0;
  }

  // The address port `index` connects to.
  const PortAddr& addr_for(uint32_t index) const {
    return addrs.size() == 1 ? addrs[0] : addrs[index];
  }
};

struct ParseOutcome {
  std::optional<BenchOptions> options;  // set when the run should go ahead
  bool help = false;                    // --help: print usage, exit 0
  std::string error;                    // otherwise: the message, exit 2
};

ParseOutcome parse_bench_options(int argc, char** argv);
std::optional<PortAddr> parse_port_addr(std::string_view text, std::string& error);
std::string_view mode_name(BenchMode mode);
// "10" when every port tags, "10:0,2" when some do, "" without --vlan.
std::string vlan_text(const BenchOptions& options);
std::string bench_usage();

}  // namespace qswitch::tools
