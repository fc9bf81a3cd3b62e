// tools/qswitch-bench/bench_options.cc: argv -> BenchOptions.
// Accepts "--name value" and "--name=value". Numbers are parsed whole with std::from_chars, so
// "3s" or "64k" are rejected with a message rather than read as 3 or 64.
#include "tools/qswitch-bench/bench_options.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace qswitch::tools {

namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// --vlan without PORTS until the port count is known: every port.
constexpr uint64_t kAllPorts = ~uint64_t{0};
constexpr uint32_t kVlanGrowth = 4;  // an 802.1Q tag

// VID[:PORTS], PORTS a comma list of port indexes, each once.
bool parse_vlan(std::string_view text, BenchOptions& opt, std::string& error) {
  auto bad = [&](const std::string& why) {
    error = "bad --vlan " + quote(text) + ": " + why;
    return false;
  };
  size_t colon = text.find(':');
  uint32_t vid = 0;
  if (!parse_number(text.substr(0, colon), vid) || vid < 1 || vid > kBenchMaxVlan) {
    return bad("expected VID[:PORTS] with VID 1..4094 (e.g. 10, or 10:0 to tag port 0 only)");
  }
  uint64_t ports = kAllPorts;
  if (colon != std::string_view::npos) {
    ports = 0;
    std::string_view rest = text.substr(colon + 1);
    while (true) {
      size_t comma = rest.find(',');
      uint32_t index = 0;
      if (!parse_number(rest.substr(0, comma), index) || index >= kBenchMaxPorts) {
        return bad("expected PORTS as port indexes 0..63 separated by commas (e.g. 10:0,2)");
      }
      if (((ports >> index) & 1) != 0) return bad("port " + std::to_string(index) + " twice");
      ports |= uint64_t{1} << index;
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  opt.vlan = static_cast<uint16_t>(vid);
  opt.vlan_ports = ports;
  return true;
}

bool parse_mode(std::string_view text, BenchMode& mode) {
  if (text == "pair") {
    mode = BenchMode::kPair;
  } else if (text == "bidir") {
    mode = BenchMode::kBidir;
  } else if (text == "mesh") {
    mode = BenchMode::kMesh;
  } else if (text == "spread") {
    mode = BenchMode::kSpread;
  } else {
    return false;
  }
  return true;
}

// HOST:PORT, HOST numeric or localhost, IPv6 in brackets ([::1]:5000). The host is checked
// when the socket is opened (inet_pton), the port here.
bool parse_host_port(std::string_view text, bool allow_port_zero, std::string& host,
                     uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  uint32_t p = 0;
  if (h.empty() || !parse_number(text.substr(colon + 1), p) || p > 65535 ||
      (p == 0 && !allow_port_zero)) {
    return false;
  }
  host = std::string(h);
  port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

std::string_view mode_name(BenchMode mode) {
  switch (mode) {
    case BenchMode::kPair:
      return "pair";
    case BenchMode::kBidir:
      return "bidir";
    case BenchMode::kMesh:
      return "mesh";
    case BenchMode::kSpread:
      return "spread";
  }
  return "?";
}

std::string vlan_text(const BenchOptions& options) {
  if (options.vlan == 0) return "";
  std::string text = std::to_string(options.vlan);
  std::string list;
  bool all = true;
  for (uint32_t i = 0; i < options.ports; ++i) {
    if (options.vlan_of(i) == 0) {
      all = false;
      continue;
    }
    list += (list.empty() ? ":" : ",") + std::to_string(i);
  }
  return all ? text : text + list;
}

std::optional<PortAddr> parse_port_addr(std::string_view text, std::string& error) {
  PortAddr addr;
  addr.text = std::string(text);
  if (text.starts_with("unix:")) {
    addr.kind = AddrKind::kUnix;
    addr.path = std::string(text.substr(5));
    // sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
    if (addr.path.empty() || addr.path.size() > 107) {
      error = "bad address " + quote(text) + ": unix:PATH needs a path of 1..107 bytes";
      return std::nullopt;
    }
    return addr;
  }
  if (text.starts_with("vde:")) {
    addr.kind = AddrKind::kVde;
    addr.path = std::string(text.substr(4));
    if (addr.path.empty()) {
      error = "bad address " + quote(text) + ": vde:DIR needs the vde_switch socket directory";
      return std::nullopt;
    }
    return addr;
  }
  if (text.starts_with("unixgram:")) {
    std::string_view rest = text.substr(9);
    size_t eq = rest.find('=');
    std::string_view remote = eq == std::string_view::npos ? rest : rest.substr(eq + 1);
    std::string_view local = eq == std::string_view::npos ? std::string_view() : rest.substr(0, eq);
    if (remote.empty() || remote.size() > 107 ||
        (eq != std::string_view::npos && (local.empty() || local.size() > 107))) {
      error = "bad address " + quote(text) +
              ": expected unixgram:PATH or unixgram:LOCAL=REMOTE, paths of 1..107 bytes";
      return std::nullopt;
    }
    addr.kind = AddrKind::kUnixgram;
    addr.path = std::string(remote);
    addr.bind_path = std::string(local);
    return addr;
  }
  if (text.starts_with("tcp:")) {
    if (!parse_host_port(text.substr(4), false, addr.host, addr.port)) {
      error = "bad address " + quote(text) + ": expected tcp:HOST:PORT with PORT 1..65535";
      return std::nullopt;
    }
    addr.kind = AddrKind::kTcp;
    return addr;
  }
  if (text.starts_with("udp:")) {
    // IPv6 addresses hold no '-', so the first '-' separates LOCAL from REMOTE.
    std::string_view rest = text.substr(4);
    size_t dash = rest.find('-');
    bool ok = true;
    if (dash != std::string_view::npos) {
      ok = parse_host_port(rest.substr(0, dash), true, addr.bind_host, addr.bind_port);
      rest = rest.substr(dash + 1);
    }
    if (!ok || !parse_host_port(rest, false, addr.host, addr.port)) {
      error = "bad address " + quote(text) +
              ": expected udp:HOST:PORT or udp:LHOST:LPORT-RHOST:RPORT (PORT 1..65535, "
              "LPORT 0..65535)";
      return std::nullopt;
    }
    addr.kind = AddrKind::kUdp;
    return addr;
  }
  error = "bad target " + quote(text) +
          ": expected unix:PATH, tcp:HOST:PORT, vde:DIR, unixgram:PATH, udp:HOST:PORT, a comma "
          "list of those, or --direct";
  return std::nullopt;
}

std::string bench_usage() {
  return "usage: qswitch-bench [options] TARGET\n"
         "       qswitch-bench [options] --direct\n"
         "Measures how many Ethernet frames per second a switch forwards between its own ports.\n"
         "\n"
         "TARGET, one address shared by every port, or a comma list with one address per port:\n"
         "  unix:PATH        QEMU stream framing (4-byte big-endian length + frame) on a unix "
         "socket\n"
         "  tcp:HOST:PORT    the same over TCP; HOST is numeric (127.0.0.1, [::1]) or localhost\n"
         "  vde:DIR          a vde_switch through libvdeplug, one datagram per frame\n"
         "  unixgram:PATH    one frame per unix datagram, no length prefix, sent to PATH; each "
         "port\n"
         "                   binds its own socket in a private temp dir and the switch replies to\n"
         "                   it (qswitch --dgram unix:PATH)\n"
         "  udp:HOST:PORT    one frame per UDP datagram, sent to HOST:PORT; each port binds\n"
         "                   127.0.0.1:0 ([::1]:0 for an IPv6 HOST) (qswitch --dgram "
         "udp:HOST:PORT)\n"
         "  unixgram:LOCAL=REMOTE          the port binds LOCAL and sends to REMOTE\n"
         "  udp:LHOST:LPORT-RHOST:RPORT    the port binds LHOST:LPORT and sends to RHOST:RPORT\n"
         "                   for a switch that sends each port's frames to a fixed address, e.g.\n"
         "                   QEMU -netdev dgram,local.path=Q,remote.path=B: unixgram:B=Q\n"
         "  unix:A,unix:B    port 0 connects to A, port 1 to B (e.g. QEMU's hub: one\n"
         "                   -netdev stream,server=on per hub port); the list length sets --ports\n"
         "                   (any kinds above; paths in a list cannot hold ',' and unixgram paths\n"
         "                   cannot hold '=')\n"
         "  --direct         no switch: ports 0 and 1 joined by a stream socketpair, QEMU framing\n"
         "                   (this machine's limit); --direct=stream is the same\n"
         "  --direct=dgram   the same with a SOCK_DGRAM socketpair, one frame per datagram\n"
         "\n"
         "Options:\n"
         "  --ports P        number of ports, 2..64 (default 2; --direct: exactly 2)\n"
         "  --mode M         pair:  port 0 sends to port 1 (default)\n"
         "                   bidir: ports 0 and 1 send to each other\n"
         "                   mesh:  every port i sends to port (i+1)%P\n"
         "                   spread: every port sends to each of the others in turn (frame k\n"
         "                          of port i to the k-th of the other P-1 ports, round robin)\n"
         "                          and receives from all of them; sequences are per sender\n"
         "  --size S         Ethernet frame bytes without FCS, 60..65549 (vde: ..9234,\n"
         "                   udp: ..65507; default 64)\n"
         "  --time T         measured seconds, fractions allowed, 0.01..3600 (default 3)\n"
         "  --warmup T       seconds of traffic before measuring, 0..600 (default 0.5)\n"
         "  --vlan VID[:PORTS]  ports send and expect IEEE 802.1Q-tagged frames (TPID 0x8100,\n"
         "                   TCI = VID 1..4094, priority 0): every port, or only the port indexes\n"
         "                   in PORTS (10:0 tags port 0 only; a switch with port 0 on a trunk and\n"
         "                   port 1 on an access port of VLAN 10 pops the tag of 0 -> 1 and "
         "pushes\n"
         "                   it on 1 -> 0). --size is the size on the sending wire: a frame "
         "arrives\n"
         "                   4 bytes shorter on an untagged port (padded with zeros to 60) and 4\n"
         "                   bytes longer on a tagged one. --direct: every port or none\n"
         "  --cpu-pid PID    the switch's process: report its CPU time (user + system, from\n"
         "                   /proc/PID/stat) over the measured window, in seconds and in ns per\n"
         "                   frame received (exit 2 when /proc/PID/stat cannot be read)\n"
         "  --json           print one JSON object instead of the human line\n"
         "  --help           this text\n"
         "\n"
         "Each port has the MAC 02:51:42:00:00:<index> and first sends one broadcast so a "
         "learning\n"
         "switch learns it; 200 ms later the senders stream unicast frames to their receivers.\n"
         "Receivers check every frame (destination, sender, sequence, checksum, payload pattern).\n"
         "Report: rx frames/s and Gbit/s of Ethernet bytes received while measuring; loss =\n"
         "frames sent minus frames received over the whole run (after a drain of up to 2 s);\n"
         "reorder = frames that arrived after a later one from the same sender; corrupt = frames\n"
         "addressed to a port whose bytes are not what was sent; foreign = frames a port did not\n"
         "expect (flooded unicast, other traffic) while measuring; switch_cpu (--cpu-pid) = the\n"
         "switch's CPU seconds in the window and per frame received in it.\n"
         "Datagram ports send and receive up to 64 frames per sendmmsg()/recvmmsg() call. Over "
         "UDP\n"
         "a sender is not held back by a slow receiver, so a switch that cannot keep up shows\n"
         "loss; over unix datagrams the sender waits instead.\n"
         "JSON fields: target mode size ports vlan tagged_ports seconds rx_frames tx_frames fps\n"
         "gbps loss_frames loss_pct reordered corrupt foreign switch_cpu_s "
         "switch_cpu_ns_per_frame\n"
         "completed (and error when it did not complete); vlan is null without --vlan,\n"
         "tagged_ports the indexes of tagged ports; the switch_cpu fields are null without\n"
         "--cpu-pid (ns_per_frame also when no frame arrived).\n"
         "Exit: 0 when the run completed, 1 when a connection failed or corrupt > 0,\n"
         "2 on bad usage.\n";
}

namespace {

bool takes_value(std::string_view name) {
  return name == "--ports" || name == "--mode" || name == "--size" || name == "--time" ||
         name == "--warmup" || name == "--vlan" || name == "--cpu-pid";
}

// One option that takes a value (takes_value()); false with `error` when the value is bad.
bool apply_value_option(std::string_view name, std::string_view v, BenchOptions& opt,
                        std::string& error) {
  if (name == "--ports") {
    if (!parse_number(v, opt.ports) || opt.ports < 2 || opt.ports > kBenchMaxPorts) {
      error = "bad --ports " + quote(v) + ": expected an integer 2..64";
      return false;
    }
  } else if (name == "--mode") {
    if (!parse_mode(v, opt.mode)) {
      error = "bad --mode " + quote(v) + ": expected pair, bidir, mesh or spread";
      return false;
    }
  } else if (name == "--size") {
    if (!parse_number(v, opt.size) || opt.size < kBenchMinFrameSize ||
        opt.size > kBenchMaxFrameSize) {
      error = "bad --size " + quote(v) + ": expected Ethernet frame bytes 60..65549";
      return false;
    }
  } else if (name == "--time") {
    if (!parse_number(v, opt.seconds) || !std::isfinite(opt.seconds) || opt.seconds < 0.01 ||
        opt.seconds > 3600) {
      error = "bad --time " + quote(v) + ": expected seconds 0.01..3600 (e.g. 3 or 0.5)";
      return false;
    }
  } else if (name == "--warmup") {
    if (!parse_number(v, opt.warmup) || !std::isfinite(opt.warmup) || opt.warmup < 0 ||
        opt.warmup > 600) {
      error = "bad --warmup " + quote(v) + ": expected seconds 0..600 (e.g. 0.5)";
      return false;
    }
  } else if (name == "--vlan") {
    return parse_vlan(v, opt, error);
  } else if (name == "--cpu-pid") {
    if (!parse_number(v, opt.cpu_pid) || opt.cpu_pid < 1 || opt.cpu_pid > kBenchMaxPid) {
      error = "bad --cpu-pid " + quote(v) + ": expected a process id, an integer 1..4194304";
      return false;
    }
  }
  return true;
}

// --direct[=stream|=dgram] and its constraints: no TARGET, two ports.
bool check_direct(BenchOptions& opt, bool have_target, const std::string& target,
                  std::string& error) {
  if (have_target) {
    error = "--direct takes no TARGET (got " + quote(target) + ")";
    return false;
  }
  if (opt.ports != 2) {
    error = "bad --ports " + std::to_string(opt.ports) + " with --direct: exactly 2";
    return false;
  }
  if (opt.direct_dgram) opt.target_text = "direct-dgram";
  return true;
}

// TARGET: one address, or a comma list of one per port; the frame size each kind carries.
bool parse_target(BenchOptions& opt, const std::string& target, bool ports_given,
                  std::string& error) {
  opt.target_text = target;
  std::string_view rest = target;
  while (true) {
    size_t comma = rest.find(',');
    auto addr = parse_port_addr(rest.substr(0, comma), error);
    if (!addr) return false;
    opt.addrs.push_back(*addr);
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (opt.addrs.size() > 1) {
    if (opt.addrs.size() > kBenchMaxPorts) {
      error = "bad TARGET: " + std::to_string(opt.addrs.size()) + " addresses, at most 64";
      return false;
    }
    if (ports_given && opt.ports != opt.addrs.size()) {
      error = "bad --ports " + std::to_string(opt.ports) + ": TARGET lists " +
              std::to_string(opt.addrs.size()) + " addresses, one per port";
      return false;
    }
    opt.ports = static_cast<uint32_t>(opt.addrs.size());
  }
  for (const PortAddr& a : opt.addrs) {
    if (a.kind == AddrKind::kVde && opt.size > kVdeMaxFrameSize) {
      error = "bad --size " + std::to_string(opt.size) + " for " + quote(a.text) +
              ": VDE carries frames of 60..9234 bytes";
      return false;
    }
    if (a.kind == AddrKind::kUdp && opt.size > kUdpMaxFrameSize) {
      error = "bad --size " + std::to_string(opt.size) + " for " + quote(a.text) +
              ": a UDP datagram carries frames of 60..65507 bytes";
      return false;
    }
  }
  return true;
}

// --vlan against the final port count and target: listed ports exist; --direct tags both ports
// or none; with some ports tagged and some not, a frame pushed on the way still fits.
bool check_vlan(BenchOptions& opt, std::string_view arg, std::string& error) {
  if (opt.vlan == 0) return true;
  const uint64_t all =
      opt.ports >= 64 ? ~uint64_t{0} : (uint64_t{1} << opt.ports) - 1;  // ports 0..P-1
  if (opt.vlan_ports == kAllPorts) opt.vlan_ports = all;
  if ((opt.vlan_ports & ~all) != 0) {
    error = "bad --vlan " + quote(arg) + ": no port " +
            std::to_string(std::countr_zero(opt.vlan_ports & ~all)) + " (ports are 0.." +
            std::to_string(opt.ports - 1) + ")";
    return false;
  }
  if (opt.vlan_ports == all) return true;
  if (opt.direct) {
    error = "bad --vlan " + quote(arg) +
            " with --direct: no switch pushes or pops the tag between the two ports; give "
            "--vlan VID to tag both";
    return false;
  }
  uint32_t max = kBenchMaxFrameSize;
  for (const PortAddr& a : opt.addrs) {
    if (a.kind == AddrKind::kVde) max = std::min(max, kVdeMaxFrameSize);
    if (a.kind == AddrKind::kUdp) max = std::min(max, kUdpMaxFrameSize);
  }
  if (opt.size + kVlanGrowth > max) {
    error = "bad --size " + std::to_string(opt.size) + " with --vlan " + quote(arg) +
            ": a frame from an untagged port arrives 4 bytes longer on a tagged one, and this "
            "transport carries at most " +
            std::to_string(max) + ": expected 60.." + std::to_string(max - kVlanGrowth);
    return false;
  }
  return true;
}

}  // namespace

ParseOutcome parse_bench_options(int argc, char** argv) {
  ParseOutcome out;
  BenchOptions opt;
  bool ports_given = false;
  std::string target;
  bool have_target = false;
  std::string vlan_arg;  // the last --vlan, for messages

  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--")) {
      size_t eq = arg.find('=');
      if (eq != std::string_view::npos) {
        name = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
    }
    auto flag = [&](std::string_view n) {
      if (name != n) return false;
      if (inline_value) out.error = std::string(n) + " takes no value (got " + quote(arg) + ")";
      return true;
    };

    if (flag("--help") || flag("-h")) {
      out.help = out.error.empty();
      return out;
    }
    if (flag("--json")) {
      if (!out.error.empty()) return out;
      opt.json = true;
    } else if (name == "--direct") {
      std::string_view kind = inline_value.value_or("stream");
      if (kind != "stream" && kind != "dgram") {
        out.error = "bad --direct=" + std::string(kind) + ": expected --direct, " +
                    "--direct=stream or --direct=dgram";
        return out;
      }
      opt.direct = true;
      opt.direct_dgram = kind == "dgram";
    } else if (takes_value(name)) {
      if (!inline_value && i + 1 >= argc) {
        out.error = std::string(name) + " needs a value";
        return out;
      }
      const std::string_view v = inline_value ? *inline_value : std::string_view(argv[++i]);
      if (!apply_value_option(name, v, opt, out.error)) return out;
      ports_given |= name == "--ports";
      if (name == "--vlan") vlan_arg = std::string(v);
    } else if (arg.starts_with("-") && arg.size() > 1) {
      out.error = "unknown option " + quote(arg) + " (see --help)";
      return out;
    } else if (have_target) {
      out.error = "unexpected argument " + quote(arg) + ": only one TARGET (use a comma list " +
                  "for one address per port)";
      return out;
    } else {
      target = std::string(arg);
      have_target = true;
    }
  }

  if (opt.direct) {
    if (!check_direct(opt, have_target, target, out.error)) return out;
  } else if (!have_target) {
    out.error =
        "missing TARGET: give unix:PATH, tcp:HOST:PORT, vde:DIR, unixgram:PATH, "
        "udp:HOST:PORT or --direct";
    return out;
  } else if (!parse_target(opt, target, ports_given, out.error)) {
    return out;
  }
  if (!check_vlan(opt, vlan_arg, out.error)) return out;
  out.options = opt;
  return out;
}

}  // namespace qswitch::tools
