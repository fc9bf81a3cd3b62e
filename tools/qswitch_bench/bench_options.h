// tools/qswitch_bench/bench_options.h: the qswitch-bench command line as typed values.
//
// Theory of operation
// - parse_bench_options() is the only place that reads argv. It either returns a complete
//   BenchOptions or an error naming the bad value and what would be accepted (exit 2), or asks
//   for --help. Every range check happens here so the run never sees an impossible value.
// - A TARGET is one address shared by every port (a switch that accepts many connections on one
//   socket: qswitch, vde_switch) or a comma list with one address per port (a switch that listens
//   once per port: QEMU's hub behind several "-netdev stream,server=on"). --direct needs none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qswitch::tools {

enum class BenchMode { kPair, kBidir, kMesh };
enum class AddrKind { kUnix, kTcp, kVde };

struct PortAddr {
  AddrKind kind = AddrKind::kUnix;
  std::string path;  // unix socket path or vde switch directory
  std::string host;  // tcp: numeric IPv4/IPv6 or "localhost"
  uint16_t port = 0;
  std::string text;  // as written on the command line
};

// Frame sizes are Ethernet frames without FCS, as on the QEMU stream wire.
inline constexpr uint32_t kBenchMinFrameSize = 60;     // IEEE 802.3 minimum without FCS
inline constexpr uint32_t kBenchMaxFrameSize = 65549;  // 65535 + 14, as virtio-net / qswitch
// libvdeplug.h: VDE_ETHBUFSIZE = VDE_MAXMTU (9216) + 14 + 4.
inline constexpr uint32_t kVdeMaxFrameSize = 9216 + 14 + 4;
inline constexpr uint32_t kBenchMaxPorts = 64;

struct BenchOptions {
  bool direct = false;
  std::string target_text = "direct";  // for reports
  std::vector<PortAddr> addrs;         // empty (direct), one shared, or one per port
  uint32_t ports = 2;
  BenchMode mode = BenchMode::kPair;
  uint32_t size = 64;
  double seconds = 3.0;
  double warmup = 0.5;
  bool json = false;

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
std::string bench_usage();

}  // namespace qswitch::tools
