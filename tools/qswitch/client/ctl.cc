// tools/qswitch/client/ctl.cc: see the header.
#include "tools/qswitch/client/ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "backends/runtime/io/fd.h"
#include "tools/qswitch/client/capture_client.h"
#include "tools/qswitch/client/poll_wait.h"
#include "tools/qswitch/config/json_line.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/config/socket_trust.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

constexpr int kTimeoutMs = 10'000;
constexpr size_t kMaxReplySize = 64u << 20;

const char* ctl_usage() {
  return "usage: qswitch ctl [--sock PATH] [--json] COMMAND...\n"
         "commands:\n"
         "  hostfwd add [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT [vlan=N]\n"
         "                        forward a host port to a guest (no HOSTADDR: 127.0.0.1;\n"
         "                        no GUESTADDR: the first DHCP address; [MAC]: that guest's\n"
         "                        address, found now)\n"
         "  hostfwd remove [tcp|udp]:[HOSTADDR]:HOSTPORT [vlan=N]\n"
         "  hostfwd list [vlan=N]\n"
         "  usernet [vlan=N]      libslirp's connection table\n"
         "  dhcp leases [vlan=N]  every MAC's address, state, port, DHCP host name and the\n"
         "                        IPv6 addresses it was seen using\n"
         "  dns add NAME ADDR [vlan=N]   a static DNS record (NAME: short, NAME.<domain>,\n"
         "                        or full; ADDR: IPv4 or IPv6)\n"
         "  dns remove NAME [ADDR] [vlan=N]  one record, or every address of NAME\n"
         "  dns list [vlan=N]     every name the slirp port's DNS answers for, its addresses\n"
         "                        and source (host, static, lease, lab, exec, dhcp-hostname)\n"
         "  neighbours [vlan=N]   every MAC seen using IPv6, its addresses and its port\n"
         "  slirp sockets [vlan=N]  host sockets guests hold through NAT, and their caps\n"
         "                        (vlan=N: the slirp port of VLAN N; needed, and only then,\n"
         "                        on a switch with a slirp port on several VLANs)\n"
         "  ports                 every port: kind, peer, state, MACs, counters, uptime\n"
         "  macs                  the MAC address table (MAC, VLAN, port, age)\n"
         "  vlans                 every VLAN: its untagged and tagged ports, its MACs\n"
         "  stats                 switch-wide counters\n"
         "  port add listen|connect unix:PATH|tcp:HOST:PORT[,vlan=N|,trunk=LIST[,native=N]]\n"
         "                        (VLAN keys go on every kind: access VLAN N, or a trunk)\n"
         "  port add dgram unix:PATH|udp:...|mcast:...   a datagram socket (as --dgram)\n"
         "  port add vhost-user unix:PATH     a vhost-user socket (as --vhost-user)\n"
         "  port remove ID        a port id, or an endpoint id (listen-N, connect-N, dgram-N)\n"
         "  reload                read the lab file (--config) again and apply what changed\n"
         "  capture [--port ID] [--filter BPF] -w FILE|- [--duration S] [--count N]\n"
         "                        live pcap of the whole switch or one port (capture --help)\n"
         "  capture list          the capture sessions running, with their counters\n"
         "  capture stop id=N     end capture session N\n"
         "  help                  the commands this qswitch answers\n"
         "  version\n"
         "  raw JSON              send one request line as is and print the reply line\n"
         "  NAME... [KEY=VALUE]   any other command: words joined with '.', KEY=VALUE as\n"
         "                        string arguments\n"
         "options:\n"
         "  --sock PATH           the control socket (default: the default switch's,\n"
         "                        $XDG_RUNTIME_DIR/qswitch/default.ctl or\n"
         "                        /tmp/qswitch-$UID/default.ctl), or the switch's socket\n"
         "                        (DIR/NAME.sock: the control socket DIR/NAME.ctl beside it)\n"
         "  --json                print the reply JSON as is\n"
         "exit status: 0 ok, 1 error reply or no connection, 2 usage error\n";
}

bool is_socket(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// "NAME.sock", "NAME.ctl" with a NAME: a path that is only the suffix is not one.
bool named_with_suffix(const std::string& s, std::string_view suffix) {
  return s.size() > suffix.size() && s.ends_with(suffix);
}

std::string cannot_reach(const std::string& path, const std::string& why) {
  return "cannot connect to control socket " + path + ": " + why +
         " (is qswitch running with this control socket? use --sock PATH to choose another)";
}

// Sends `line` + '\n' and reads one reply line; false with `error` set. The socket's directory
// (when it is the default one) and the server's uid are checked first (socket_trust.h):
// nothing is sent to a server that another user runs.
// With `keep_fd`, the connection is handed back open and *rest gets the bytes that followed
// the reply line (a streaming command's first bytes).
bool exchange(const std::string& given, const std::string& line, std::string& reply,
              std::string& error, io::Fd* keep_fd = nullptr, std::string* rest = nullptr) {
  const int64_t deadline = monotonic_ms() + kTimeoutMs;
  std::string path;
  if (!resolve_control_socket(given, path, error)) return false;
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path) {
    error = cannot_reach(path, "unix socket paths are 1..107 bytes");
    return false;
  }
  std::memcpy(sun.sun_path, path.data(), path.size());
  if (!trust_socket_dir_for(path, DirUse::kLookUp, error)) {
    error += "; or use --sock PATH for a switch elsewhere";
    return false;
  }
  io::Fd fd = io::Fd::adopt(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && monotonic_ms() < deadline) {  // backlog full: a busy server
      ::usleep(20'000);
      continue;
    }
    error = cannot_reach(path, std::strerror(errno));
    return false;
  }
  if (!trust_control_peer(fd.get(), path, error)) return false;
  const std::string out = line + "\n";
  size_t sent = 0;
  while (sent < out.size()) {
    const ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd.get(), POLLOUT, deadline)) {
        error = "timed out after 10 s sending the request to " + path;
        return false;
      }
      continue;
    }
    error = "sending the request to " + path + ": " + std::strerror(errno);
    return false;
  }
  reply.clear();
  char buf[64 * 1024];
  for (;;) {
    const size_t nl = reply.find('\n');
    if (nl != std::string::npos) {
      if (rest != nullptr) rest->assign(reply, nl + 1, std::string::npos);
      if (keep_fd != nullptr) *keep_fd = std::move(fd);
      reply.resize(nl);
      return true;
    }
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      reply.append(buf, static_cast<size_t>(n));
      if (reply.size() > kMaxReplySize) {
        error = "reply from " + path + " is over " + std::to_string(kMaxReplySize) + " bytes";
        return false;
      }
      continue;
    }
    if (n == 0) {
      error = "qswitch closed the control connection " + path + " without a complete reply";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(fd.get(), POLLIN, deadline)) {
        error = "timed out after 10 s waiting for a reply from " + path;
        return false;
      }
      continue;
    }
    error = "reading the reply from " + path + ": " + std::strerror(errno);
    return false;
  }
}

// A list of strings (a lease's IPv6 addresses) is comma-separated; anything else is JSON.
std::string cell(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>();
  if (v.is_array() && !v.empty() &&
      std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); })) {
    std::string s;
    for (const json& e : v) s += (s.empty() ? "" : ",") + e.get_ref<const std::string&>();
    return s;
  }
  return dump_json(v);
}

// Known columns first, in a readable order, then any others alphabetically.
std::vector<std::string> column_order(const json& rows) {
  static const char* kPreferred[] = {
      "id",        "name",       "kind",       "endpoint", "proto",        "host_addr",
      "host_port", "guest_addr", "guest_port", "mac",      "port",         "address",
      "tentative", "age_s",      "ip",         "pinned",   "state",        "peer",
      "vlan",      "macs",       "addresses",  "source",   "hostname",     "conflict",
      "rx_frames", "tx_frames",  "drops",      "uptime_s", "expires_in_s", "summary"};
  std::vector<std::string> keys;
  for (const json& row : rows) {
    for (const auto& [k, v] : row.items()) {
      (void)v;
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  std::vector<std::string> ordered;
  for (const char* p : kPreferred) {
    if (std::find(keys.begin(), keys.end(), p) != keys.end()) ordered.emplace_back(p);
  }
  std::sort(keys.begin(), keys.end());
  for (const std::string& k : keys) {
    if (std::find(ordered.begin(), ordered.end(), k) == ordered.end()) ordered.push_back(k);
  }
  return ordered;
}

std::string table(const json& rows) {
  const std::vector<std::string> cols = column_order(rows);
  std::vector<std::vector<std::string>> cells;
  cells.push_back(cols);
  for (const json& row : rows) {
    std::vector<std::string> r;
    for (const std::string& c : cols) {
      auto at = row.find(c);
      r.push_back(at == row.end() ? "-" : cell(*at));
    }
    cells.push_back(std::move(r));
  }
  std::vector<size_t> width(cols.size(), 0);
  for (const auto& r : cells) {
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : cells) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

bool all_objects(const json& a) {
  return std::all_of(a.begin(), a.end(), [](const json& v) { return v.is_object(); });
}

}  // namespace

bool resolve_control_socket(const std::string& given, std::string& path, std::string& error) {
  std::string arg = given;
  if (arg.rfind("unix:", 0) == 0) arg = arg.substr(5);
  if (named_with_suffix(arg, ".sock")) {
    path = control_path_for(arg);
    if (is_socket(path)) return true;
    if (is_socket(arg)) {
      error = arg +
              " is a qswitch data socket (guests connect there), not its control socket; "
              "the control socket is expected beside it at " +
              path +
              ", which does not exist "
              "(a switch started with --control PATH or --control none has it elsewhere or not "
              "at all: use --sock CONTROL_PATH)";
    } else {
      error = "no switch is running at " + arg + ": neither it nor its control socket " + path +
              " exists (start one with `qswitch --listen unix:" + arg +
              "`, or use --sock PATH to choose another)";
    }
    return false;
  }
  if (!named_with_suffix(arg, ".ctl") && is_socket(control_path_for(arg))) {
    path = control_path_for(arg);  // a data socket not named NAME.sock, its control beside it
    return true;
  }
  path = arg;
  return true;
}

bool ctl_stream_request(const std::string& path, const std::string& line, io::Fd& fd,
                        std::string& reply, std::string& rest, std::string& error) {
  return exchange(path, line, reply, error, &fd, &rest);
}

bool build_ctl_request(const std::vector<std::string>& words, std::string& line,
                       std::string& error) {
  if (words.empty()) {
    error = "no command given";
    return false;
  }
  if (words[0] == "raw") {
    if (words.size() != 2) {
      error = "raw takes exactly one argument, the request line, e.g. raw '{\"cmd\":\"version\"}'";
      return false;
    }
    line = words[1];
    return true;
  }
  json request = json::object();
  if (words[0] == "hostfwd" && words.size() >= 2 && (words[1] == "add" || words[1] == "remove")) {
    // One spec, and vlan=N (before or after it) for a switch with several slirp ports. A spec
    // never holds '='.
    json args = json::object();
    std::vector<std::string> specs;
    for (size_t i = 2; i < words.size(); ++i) {
      if (words[i].rfind("vlan=", 0) == 0) {
        if (args.contains("vlan")) {
          error = "hostfwd " + words[1] + ": vlan= given twice";
          return false;
        }
        args["vlan"] = words[i].substr(5);
      } else {
        specs.push_back(words[i]);
      }
    }
    if (specs.size() != 1) {
      error = "hostfwd " + words[1] +
              " takes one spec and, on a switch with several slirp ports, " +
              "vlan=N, e.g. hostfwd " + words[1] +
              (words[1] == "add" ? " tcp::8080-:80" : " tcp::8080") + " vlan=10";
      return false;
    }
    args["spec"] = specs.front();
    request["cmd"] = "hostfwd." + words[1];
    request["args"] = std::move(args);
    line = dump_json(request);
    return true;
  }
  if (words[0] == "dns" && words.size() >= 2 && (words[1] == "add" || words[1] == "remove")) {
    // NAME ADDR (add), NAME [ADDR] (remove), and vlan=N anywhere after the verb.
    json args = json::object();
    std::vector<std::string> rest;
    for (size_t i = 2; i < words.size(); ++i) {
      if (words[i].rfind("vlan=", 0) == 0) {
        if (args.contains("vlan")) {
          error = "dns " + words[1] + ": vlan= given twice";
          return false;
        }
        args["vlan"] = words[i].substr(5);
      } else {
        rest.push_back(words[i]);
      }
    }
    const bool add = words[1] == "add";
    if (rest.empty() || rest.size() > 2 || (add && rest.size() != 2)) {
      error = add ? "dns add takes a name and an address (and vlan=N on a switch with several "
                    "slirp ports), e.g. dns add files 10.0.2.100"
                  : "dns remove takes a name and, optionally, one of its addresses, e.g. dns "
                    "remove files or dns remove files 10.0.2.100";
      return false;
    }
    args["name"] = rest[0];
    if (rest.size() == 2) args["addr"] = rest[1];
    request["cmd"] = "dns." + words[1];
    request["args"] = std::move(args);
    line = dump_json(request);
    return true;
  }
  if (words[0] == "port" && words.size() >= 2 && words[1] == "add") {
    if (words.size() != 4 || (words[2] != "listen" && words[2] != "connect" &&
                              words[2] != "dgram" && words[2] != "vhost-user")) {
      error =
          "port add takes listen|connect|dgram|vhost-user and an address, e.g. port add listen "
          "unix:/tmp/lab2.sock";
      return false;
    }
    request["cmd"] = "port.add";
    request["args"] = json{{"mode", words[2]}, {"address", words[3]}};
    line = dump_json(request);
    return true;
  }
  if (words[0] == "port" && words.size() >= 2 && words[1] == "remove") {
    if (words.size() != 3) {
      error =
          "port remove takes a port id (see ports) or an endpoint id (listen-N, connect-N, "
          "dgram-N, vhost-user-N)";
      return false;
    }
    request["cmd"] = "port.remove";
    request["args"] = json{{"id", words[2]}};
    line = dump_json(request);
    return true;
  }
  std::string name;
  json args = json::object();
  for (const std::string& w : words) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos) {
      if (!args.empty()) {
        error = "'" + w + "' after KEY=VALUE arguments; the command name comes first";
        return false;
      }
      if (w.empty()) {
        error = "empty command word";
        return false;
      }
      if (!name.empty()) name += '.';
      name += w;
    } else {
      if (eq == 0) {
        error = "'" + w + "': expected KEY=VALUE";
        return false;
      }
      args[w.substr(0, eq)] = w.substr(eq + 1);
    }
  }
  if (name.empty()) {
    error = "no command name before the KEY=VALUE arguments";
    return false;
  }
  request["cmd"] = name;
  if (!args.empty()) request["args"] = std::move(args);
  line = dump_json(request);
  return true;
}

// A `ports` row carries a counters object and a MAC list: too wide for a table cell. Show the
// counters people look at first (--json has them all), drops summed, MACs comma-separated.
json compact_port_rows(const json& rows) {
  json out = json::array();
  for (const json& r : rows) {
    json row = json::object();
    uint64_t drops = 0;
    for (const char* k : {"id", "name", "kind", "endpoint", "state", "peer", "uptime_s"}) {
      if (r.contains(k)) row[k] = r[k];
    }
    std::string macs;
    if (r.contains("macs") && r["macs"].is_array()) {
      for (const json& m : r["macs"]) macs += (macs.empty() ? "" : ",") + cell(m);
    }
    row["macs"] = macs;
    if (r.contains("vlan") && r["vlan"].is_object()) {
      const json& v = r["vlan"];
      if (v.value("mode", "") == "trunk") {
        std::string text = "trunk " + cell(v.value("tagged", json("")));
        if (v.contains("native") && !v["native"].is_null()) text += " native " + cell(v["native"]);
        row["vlan"] = text;
      } else {
        row["vlan"] = "access " + cell(v.value("vlan", json(1)));
      }
    }
    const json& c = r["counters"];
    for (const char* k : {"rx_frames", "tx_frames"}) row[k] = c.contains(k) ? c[k] : json(0);
    for (auto it = c.begin(); it != c.end(); ++it) {
      if (it.key().rfind("drop_", 0) == 0 && it->is_number_unsigned()) drops += it->get<uint64_t>();
    }
    row["drops"] = drops;
    out.push_back(std::move(row));
  }
  return out;
}

// A column that is null in every row (a lab file's names on a switch without one) is left out.
json without_null_columns(const json& rows) {
  std::vector<std::string> keys;
  for (const json& r : rows) {
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (!it->is_null() && std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
        keys.push_back(it.key());
      }
    }
  }
  json out = json::array();
  for (const json& r : rows) {
    json row = json::object();
    for (auto it = r.begin(); it != r.end(); ++it) {
      if (std::find(keys.begin(), keys.end(), it.key()) != keys.end()) row[it.key()] = *it;
    }
    out.push_back(std::move(row));
  }
  return out;
}

// `neighbours` rows: one line per address (MAC and port repeated), from the "seen" details.
bool looks_like_neighbour_rows(const json& rows) {
  for (const json& r : rows) {
    if (!r.is_object() || !r.contains("seen") || !r["seen"].is_array()) return false;
  }
  return true;
}

json neighbour_lines(const json& rows) {
  json out = json::array();
  for (const json& r : rows) {
    for (const json& s : r["seen"]) {
      if (!s.is_object()) continue;
      json line{{"mac", r.value("mac", json(""))}, {"port", r.value("port", json(nullptr))}};
      for (const char* k : {"address", "tentative", "age_s", "first_seen_s"}) {
        if (s.contains(k)) line[k] = s[k];
      }
      out.push_back(std::move(line));
    }
  }
  return out;
}

bool looks_like_port_rows(const json& rows) {
  for (const json& r : rows) {
    if (!r.is_object() || !r.contains("counters") || !r["counters"].is_object()) return false;
  }
  return true;
}

std::string format_ctl_result(const json& result) {
  if (result.is_null()) return "";
  if (result.is_string()) {
    std::string s = result.get_ref<const std::string&>();
    if (!s.empty() && s.back() != '\n') s += '\n';
    return s;
  }
  if (result.is_array()) {
    if (result.empty()) return "(none)\n";
    if (all_objects(result)) {
      if (looks_like_neighbour_rows(result)) return table(neighbour_lines(result));
      return table(
          without_null_columns(looks_like_port_rows(result) ? compact_port_rows(result) : result));
    }
    std::string out;
    for (const json& v : result) out += cell(v) + "\n";
    return out;
  }
  if (result.is_object()) {
    if (result.size() == 1 && result.contains("text") && result["text"].is_string()) {
      return format_ctl_result(result["text"]);
    }
    std::string out;
    for (const std::string& k : column_order(json::array({result}))) {
      out += k + ": " + cell(result[k]) + "\n";
    }
    return out;
  }
  return cell(result) + "\n";
}

int run_ctl(int argc, const char* const* argv) {
  std::string sock = default_control_path();
  bool as_json = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(ctl_usage(), stdout);
      return 0;
    } else if (arg == "--json") {
      as_json = true;
    } else if (arg == "--sock" || arg.rfind("--sock=", 0) == 0) {
      std::string value;
      if (arg == "--sock") {
        if (i + 1 >= argc) {
          std::fprintf(stderr, "qswitch ctl: --sock needs a PATH\n%s", ctl_usage());
          return 2;
        }
        value = argv[++i];
      } else {
        value = arg.substr(7);
      }
      if (value.rfind("unix:", 0) == 0) value = value.substr(5);
      if (value.empty()) {
        std::fprintf(stderr, "qswitch ctl: --sock needs a PATH\n");
        return 2;
      }
      sock = value;
    } else if (words.empty() && arg == "capture" &&
               !(i + 1 < argc &&
                 (std::string(argv[i + 1]) == "list" || std::string(argv[i + 1]) == "stop"))) {
      // capture has its own options (--port, --filter, -w ...): capture_client.h.
      return run_ctl_capture(sock, argc - i - 1, argv + i + 1);
    } else if (arg.rfind("--", 0) == 0) {
      std::fprintf(stderr, "qswitch ctl: unknown option '%s'\n%s", arg.c_str(), ctl_usage());
      return 2;
    } else {
      words.push_back(arg);
    }
  }
  std::string line, error;
  if (!build_ctl_request(words, line, error)) {
    std::fprintf(stderr, "qswitch ctl: %s\n%s", error.c_str(), ctl_usage());
    return 2;
  }
  const bool raw = words[0] == "raw";
  std::string reply_text;
  if (!exchange(sock, line, reply_text, error)) {
    std::fprintf(stderr, "qswitch ctl: %s\n", error.c_str());
    return 1;
  }
  const json reply = parse_json_line(reply_text);
  const bool ok = reply.is_object() && reply.contains("ok") && reply["ok"].is_boolean() &&
                  reply["ok"].get<bool>();
  if (raw || as_json) {
    std::printf("%s\n", reply_text.c_str());
    if (!ok && !raw && reply.is_object() && reply.contains("error") && reply["error"].is_string()) {
      std::fprintf(stderr, "qswitch ctl: %s\n",
                   reply["error"].get_ref<const std::string&>().c_str());
    }
    return ok ? 0 : 1;
  }
  if (!reply.is_object() || !reply.contains("ok")) {
    std::fprintf(stderr, "qswitch ctl: not a control reply from %s: %s\n", sock.c_str(),
                 reply_text.substr(0, 200).c_str());
    return 1;
  }
  if (!ok) {
    const std::string message = reply.contains("error") && reply["error"].is_string()
                                    ? reply["error"].get_ref<const std::string&>()
                                    : dump_json(reply);
    std::fprintf(stderr, "qswitch ctl: %s\n", message.c_str());
    return 1;
  }
  const std::string text = format_ctl_result(reply.contains("result") ? reply["result"] : json());
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace qswitch::tools
