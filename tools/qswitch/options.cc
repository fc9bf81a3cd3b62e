// tools/qswitch/options.cc: see the header. Accepts "--opt value" and "--opt=value".
#include "tools/qswitch/options.h"

#include "tools/qswitch/dgram_options.h"
#include "tools/qswitch/net_specs.h"
#include "tools/qswitch/slirp_options_parse.h"
#include "tools/qswitch/socket_trust.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <limits>

namespace qswitch::tools {

namespace {

bool parse_u64(const std::string& text, uint64_t min, uint64_t max, uint64_t& out) {
  if (text.empty() || text[0] == '-' || text[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || v < min || v > max) return false;
  out = v;
  return true;
}

}  // namespace

const char* usage_text() {
  return "usage: qswitch [options]\n"
         "A userspace Ethernet switch for QEMU guests.\n"
         "\n"
         "  --listen unix:PATH|tcp:HOST:PORT   accept guests here; each connection is a port\n"
         "                                     (QEMU -netdev stream,server=off / socket,connect=)\n"
         "  --connect unix:PATH|tcp:HOST:PORT  dial a QEMU started with -netdev stream,server=on\n"
         "                                     (or socket,listen=, or another qswitch); redials\n"
         "  --dgram unix:PATH                  QEMU -netdev dgram peers send here; each sender's\n"
         "                                     address becomes a port (unix:PATH or udp:HOST:PORT)\n"
         "  --dgram udp:LHOST:LPORT-RHOST:RPORT  one port to one UDP peer (QEMU -netdev dgram\n"
         "                                     with inet addresses, -netdev socket,udp=,localaddr=)\n"
         "  --dgram mcast:GROUP:PORT[,localaddr=ADDR]  one port on a multicast group (QEMU\n"
         "                                     -netdev socket,mcast=GROUP:PORT)\n"
         "  --tap NAME|fd=N                    a tap device (one that exists, e.g. made by root with\n"
         "                                     ip tuntap add NAME mode tap user USER, or created\n"
         "                                     where allowed), or an inherited tap fd\n"
         "  --vxlan vni=N,local=ADDR[:PORT],remote=ADDR[:PORT][,remote=...]\n"
         "                                     one VXLAN port (RFC 7348, default port 4789) to\n"
         "                                     every remote: Linux vxlan devices, OVS, qswitch\n"
         "  --mac-age SECONDS                  forget a MAC not seen for this long (default 300)\n"
         "  --mac-max N                        MAC table size (default 4096)\n"
         "  --queue-size BYTES                 output queue bound per port (default 1048576)\n"
         "  --guests N                         example QEMU argument lines to print (default 2)\n"
         "  --slirp [KEY=VALUE,...]            add a NAT/DHCP/DNS port for the whole segment, with\n"
         "                                     QEMU -netdev user's keys: net= host= dhcpstart= dns=\n"
         "                                     hostname= domainname= dnssearch= tftp= bootfile=\n"
         "                                     restrict=on|off ipv6=on|off ipv6-net= ipv6-host=\n"
         "                                     ipv6-dns= mtu=\n"
         "                                     hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT lease=MAC:IP\n"
         "                                     (hostfwd without HADDR binds 127.0.0.1)\n"
         "                                     max-leases-per-port=N (DHCP addresses a port may hold,\n"
         "                                     default 8, 0: no cap)\n"
         "                                     max-host-sockets=N, max-host-sockets-per-port=N\n"
         "                                     (host sockets guests may open through NAT, in all\n"
         "                                     and per port; default 4096 and 1024, 0: no cap)\n"
         "  --no-slirp                         no slirp port, even with no other arguments\n"
         "  --control unix:PATH|none           the control socket (default: beside the first unix\n"
         "                                     --listen socket, NAME.sock -> NAME.ctl)\n"
         "  --metrics [tcp:HOST:]PORT          Prometheus metrics on GET /metrics (a bare PORT\n"
         "                                     binds 127.0.0.1)\n"
         "  --pcap FILE                        capture every frame from start to FILE (pcap)\n"
         "  --help, --version\n"
         "\n"
         "With no port option (--listen, --connect, --dgram, --tap, --vxlan), listens on\n"
         "unix:$XDG_RUNTIME_DIR/qswitch/default.sock\n"
         "(/tmp/qswitch-$UID/default.sock when XDG_RUNTIME_DIR is unset) and adds a slirp port.\n"
         "\n"
         "  qswitch ctl [--sock PATH] [--json] COMMAND...   talk to a running switch (ctl --help)\n"
         "  qswitch exec [--switch NAME|PATH] [--type dgram|stream] [--mac MAC] --\n"
         "      qemu-system-x86_64 ...         run a guest on a running switch over a socketpair\n"
         "                                     (exec --help)\n"
         "SIGUSR1 prints per-port counters to stderr; SIGINT/SIGTERM exit cleanly.\n";
}

std::string default_socket_path() { return default_socket_dir() + "/default.sock"; }

std::string control_path_for(const std::string& socket_path) {
  const std::string suffix = ".sock";
  if (socket_path.size() > suffix.size() &&
      socket_path.compare(socket_path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return socket_path.substr(0, socket_path.size() - suffix.size()) + ".ctl";
  }
  return socket_path + ".ctl";
}

std::string default_control_path() { return control_path_for(default_socket_path()); }

std::string control_path_for_pid(int pid) {
  return default_socket_dir() + "/qswitch-" + std::to_string(pid) + ".ctl";
}

std::optional<io::Endpoint> parse_endpoint(const std::string& text, std::string& error) {
  const std::string accepted = "expected unix:PATH or tcp:HOST:PORT (HOST a numeric address)";
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    // Only a JSON string (port.add) can carry one; the socket calls would stop at it.
    error = "'" + text.substr(0, nul) + "' is followed by a NUL byte (byte " +
            std::to_string(nul) + "); " + accepted;
    return std::nullopt;
  }
  io::Endpoint ep;
  if (text.rfind("unix:", 0) == 0) {
    ep.kind = io::Endpoint::Kind::kUnix;
    ep.path = text.substr(5);
    if (ep.path.empty()) {
      error = "'" + text + "': empty path; " + accepted;
      return std::nullopt;
    }
    if (ep.path.size() > 107) {
      error = "'" + text + "': unix socket paths are limited to 107 bytes";
      return std::nullopt;
    }
    return ep;
  }
  if (text.rfind("tcp:", 0) == 0) {
    ep.kind = io::Endpoint::Kind::kTcp;
    std::string rest = text.substr(4);
    std::string port_text;
    if (!rest.empty() && rest[0] == '[') {
      const size_t close = rest.find(']');
      if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
        error = "'" + text + "': " + accepted;
        return std::nullopt;
      }
      ep.host = rest.substr(1, close - 1);
      port_text = rest.substr(close + 2);
    } else {
      const size_t colon = rest.rfind(':');
      if (colon == std::string::npos) {
        error = "'" + text + "': missing port; " + accepted;
        return std::nullopt;
      }
      ep.host = rest.substr(0, colon);
      port_text = rest.substr(colon + 1);
    }
    uint64_t port = 0;
    if (!parse_u64(port_text, 0, 65535, port)) {
      error = "'" + text + "': port '" + port_text + "' is not a number from 0 to 65535";
      return std::nullopt;
    }
    ep.port = static_cast<uint16_t>(port);
    // Numeric addresses only: qswitch never resolves names.
    in6_addr scratch;
    if (inet_pton(AF_INET, ep.host.c_str(), &scratch) != 1 &&
        inet_pton(AF_INET6, ep.host.c_str(), &scratch) != 1) {
      error = "'" + text + "': host '" + ep.host + "' is not a numeric IPv4 or IPv6 address; " +
              accepted;
      return std::nullopt;
    }
    return ep;
  }
  error = "'" + text + "': " + accepted;
  return std::nullopt;
}

ParseResult parse_options(int argc, const char* const* argv) {
  ParseResult result;
  Options o;
  bool no_slirp = false;
  auto fail = [&](std::string message) {
    result.error = std::move(message);
    return result;
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= argc) return false;
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--version") {
      o.version = true;
    } else if (arg == "--listen" || arg == "--connect") {
      if (!need_value()) return fail(arg + " needs a value: unix:PATH or tcp:HOST:PORT");
      std::string error;
      auto ep = parse_endpoint(value, error);
      if (!ep) return fail(arg + " " + error);
      (arg == "--listen" ? o.listen : o.connect).push_back(*ep);
    } else if (arg == "--dgram") {
      if (!need_value()) {
        return fail("--dgram needs a value: unix:PATH, udp:HOST:PORT, "
                    "udp:LHOST:LPORT-RHOST:RPORT or mcast:GROUP:PORT");
      }
      std::string error;
      auto spec = parse_dgram_spec(value, error);
      if (!spec) return fail("--dgram " + error);
      o.dgram.push_back(*spec);
    } else if (arg == "--tap") {
      if (!need_value()) return fail("--tap needs a value: an interface name or fd=N");
      std::string error;
      auto spec = parse_tap_spec(value, error);
      if (!spec) return fail("--tap " + error);
      o.taps.push_back(*spec);
    } else if (arg == "--vxlan") {
      if (!need_value()) {
        return fail("--vxlan needs a value: vni=N,local=ADDR[:PORT],remote=ADDR[:PORT]");
      }
      std::string error;
      auto spec = parse_vxlan_spec(value, error);
      if (!spec) return fail("--vxlan " + error);
      o.vxlans.push_back(*spec);
    } else if (arg == "--mac-age") {
      uint64_t v;
      if (!need_value()) return fail("--mac-age needs a value in seconds");
      if (!parse_u64(value, 1, 1'000'000, v)) {
        return fail("--mac-age '" + value + "': expected whole seconds from 1 to 1000000");
      }
      o.mac_age_s = static_cast<uint32_t>(v);
    } else if (arg == "--mac-max") {
      uint64_t v;
      if (!need_value()) return fail("--mac-max needs a value");
      if (!parse_u64(value, 16, 1'000'000, v)) {
        return fail("--mac-max '" + value + "': expected a number of entries from 16 to 1000000");
      }
      o.mac_max = static_cast<uint32_t>(v);
    } else if (arg == "--queue-size") {
      uint64_t v;
      if (!need_value()) return fail("--queue-size needs a value in bytes");
      if (!parse_u64(value, 65536 + 14, uint64_t{1} << 30, v)) {
        return fail("--queue-size '" + value + "': expected bytes from 65550 to 1073741824");
      }
      o.queue_size = v;
    } else if (arg == "--guests") {
      uint64_t v;
      if (!need_value()) return fail("--guests needs a value");
      if (!parse_u64(value, 0, 64, v)) {
        return fail("--guests '" + value + "': expected a number from 0 to 64");
      }
      o.guests = static_cast<uint32_t>(v);
    } else if (arg == "--slirp") {
      // The value is optional: "--slirp" alone, "--slirp=", or "--slirp KEY=VALUE,...".
      if (!has_value && i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) {
        value = argv[++i];
      }
      if (o.slirp) return fail("--slirp given twice: put every key in one --slirp");
      slirp::SlirpOptions so;
      std::string error;
      if (!parse_slirp_options(value, so, error)) return fail("--slirp " + error);
      o.slirp = std::move(so);
    } else if (arg == "--metrics") {
      if (!need_value()) return fail("--metrics needs a value: tcp:HOST:PORT (e.g. tcp:127.0.0.1:9100)");
      std::string error;
      // A bare port binds the loopback address: the endpoint has no authentication.
      const bool bare_port =
          !value.empty() && value.size() <= 5 &&
          value.find_first_not_of("0123456789") == std::string::npos;
      auto ep = parse_endpoint(bare_port ? "tcp:127.0.0.1:" + value : value, error);
      if (!ep || ep->kind != io::Endpoint::Kind::kTcp) {
        return fail("--metrics '" + value +
                    "': expected tcp:HOST:PORT or a port (e.g. tcp:127.0.0.1:9100, or 9100 for "
                    "127.0.0.1:9100)");
      }
      o.metrics = *ep;
    } else if (arg == "--pcap") {
      if (!need_value() || value.empty()) return fail("--pcap needs a file name");
      o.pcap = value;
    } else if (arg == "--no-slirp") {
      no_slirp = true;
    } else if (arg == "--control") {
      if (!need_value()) return fail("--control needs a value: unix:PATH or none");
      if (value == "none") {
        o.control_disabled = true;
      } else {
        std::string error;
        auto ep = parse_endpoint(value, error);
        if (!ep || ep->kind != io::Endpoint::Kind::kUnix) {
          return fail("--control '" + value + "': expected unix:PATH or none");
        }
        o.control = *ep;
      }
    } else {
      return fail("unknown option '" + std::string(argv[i]) + "' (see qswitch --help)");
    }
  }
  if (no_slirp && o.slirp) return fail("--slirp and --no-slirp contradict each other");
  // Zero configuration: no port of any kind asked for.
  const bool zero_config = o.listen.empty() && o.connect.empty() && o.dgram.empty() &&
                           o.taps.empty() && o.vxlans.empty();
  if (zero_config) {
    io::Endpoint ep;
    ep.kind = io::Endpoint::Kind::kUnix;
    ep.path = default_socket_path();
    o.listen.push_back(ep);
    if (!no_slirp && !o.slirp) o.slirp = slirp::default_slirp_options();
  }
  if (!o.control && !o.control_disabled) {
    // Beside the first unix listener. A switch with none gets a per-process path from main()
    // (control_path_for_pid), so two tcp-only switches never fight over one name.
    for (const io::Endpoint& l : o.listen) {
      if (l.kind == io::Endpoint::Kind::kUnix) {
        io::Endpoint ep;
        ep.kind = io::Endpoint::Kind::kUnix;
        ep.path = control_path_for(l.path);
        o.control = ep;
        break;
      }
    }
  }
  if (!o.control && !o.control_disabled) {
    for (const backends::DgramConfig& d : o.dgram) {
      const std::string path = dgram_unix_path(d);
      if (path.empty()) continue;
      io::Endpoint ep;
      ep.kind = io::Endpoint::Kind::kUnix;
      ep.path = control_path_for(path);
      o.control = ep;
      break;
    }
  }
  result.options = o;
  return result;
}

}  // namespace qswitch::tools
