// tools/qswitch/client/exec.cc: see the header.
#include "tools/qswitch/client/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/runtime/io/fd.h"
#include "tools/qswitch/client/ctl.h"
#include "tools/qswitch/client/poll_wait.h"
#include "tools/qswitch/config/config_parse.h"
#include "tools/qswitch/config/json_line.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/config/security_keys.h"
#include "tools/qswitch/config/socket_trust.h"
#include "tools/qswitch/config/vlan_keys.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

constexpr int kTimeoutMs = 10'000;                   // the whole port.attach exchange
constexpr size_t kMaxReplySize = size_t{64} * 1024;  // a port.attach reply is short
constexpr int kWaitSliceMs = 200;                    // how often the wait loop looks at the child
constexpr size_t kMaxNameSize = 64;                  // port.attach's limit on "name"
constexpr int kVhostUserConnectMs = 60'000;          // QEMU connects its vhost-user NIC at start

volatile sig_atomic_t g_child = 0;  // the program's pid, for forward_signal

void forward_signal(int sig) {
  const pid_t child = g_child;
  if (child > 0) ::kill(child, sig);
}

// A unicast MAC (sw::MacAddress::parse), printed back in lower case with ':'.
bool parse_mac(const std::string& text, std::string& out) {
  const auto mac = sw::MacAddress::parse(text);
  if (!mac || mac->is_multicast()) return false;  // a multicast address cannot be a NIC's
  out = mac->to_string();
  return true;
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string out;
  for (const char ch : name) {
    if (out.size() >= kMaxNameSize) break;
    out += (ch >= 0x21 && ch <= 0x7e) ? ch : '_';
  }
  return out;
}

// Connects to the control socket; false with `error` saying which path was tried and how to
// start a switch there. The socket's directory (when it is the default one) and the server's
// uid are checked first (socket_trust.h): no request and no fd go to another user's server.
bool connect_control(const std::string& path, io::Fd& fd, std::string& error) {
  const std::string start_hint =
      " (start a switch first: `qswitch` serves the default one; `qswitch --listen "
      "unix:DIR/NAME.sock` serves its control socket at DIR/NAME.ctl, then use "
      "`qswitch exec --switch DIR/NAME.ctl`)";
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sun.sun_path) {
    error = "control socket path '" + path + "' is not 1..107 bytes long";
    return false;
  }
  std::memcpy(sun.sun_path, path.data(), path.size());
  if (!trust_socket_dir_for(path, DirUse::kLookUp, error)) {
    error += "; or use --switch PATH for a switch elsewhere";
    return false;
  }
  fd = io::Fd::adopt(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  for (int attempt = 0;; ++attempt) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), len) == 0) {
      if (trust_control_peer(fd.get(), path, error)) return true;
      fd.reset();
      return false;
    }
    if (errno == EINTR && attempt < 100) continue;
    if (errno == ENOENT || errno == ECONNREFUSED) {
      error = "no switch is running with control socket " + path + " (" + std::strerror(errno) +
              ")" + start_hint;
    } else {
      error = "cannot connect to control socket " + path + ": " + std::strerror(errno) + start_hint;
    }
    return false;
  }
}

// Sends `line` + '\n' with `pass` attached (SCM_RIGHTS), all in one sendmsg when it fits; the
// fd rides with the first bytes, which the server reads together with the line's end (the
// line is far shorter than a socket buffer).
bool send_with_fd(int sock, const std::string& line, int pass, int64_t deadline,
                  std::string& error) {
  const std::string out = line + "\n";
  size_t sent = 0;
  bool fd_sent = false;
  while (sent < out.size()) {
    iovec iov{const_cast<char*>(out.data() + sent), out.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (!fd_sent) {
      std::memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(cm), &pass, sizeof pass);
    }
    const ssize_t n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      fd_sent = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(sock, POLLOUT, deadline)) {
        error = "timed out sending the port.attach request";
        return false;
      }
      continue;
    }
    error = std::string("sending the port.attach request: ") + std::strerror(errno);
    return false;
  }
  return true;
}

// Reads one reply line (without '\n') before `deadline`.
bool read_reply(int sock, int64_t deadline, std::string& reply, std::string& error) {
  reply.clear();
  char buf[4096];
  for (;;) {
    const size_t nl = reply.find('\n');
    if (nl != std::string::npos) {
      reply.resize(nl);
      return true;
    }
    if (reply.size() > kMaxReplySize) {
      error = "the port.attach reply is over " + std::to_string(kMaxReplySize) + " bytes";
      return false;
    }
    const ssize_t n = ::recv(sock, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      reply.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      error = "the switch closed the control connection without replying to port.attach";
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait_for(sock, POLLIN, deadline)) {
        error = "timed out after 10 s waiting for the port.attach reply";
        return false;
      }
      continue;
    }
    error = std::string("reading the port.attach reply: ") + std::strerror(errno);
    return false;
  }
}

// Sets the forwarding handler (no SA_RESTART: waitpid returns to the loop) or the default.
void set_signal_handlers(bool forward) {
  struct sigaction sa {};
  sa.sa_handler = forward ? forward_signal : SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

const char* exec_usage() {
  return "usage: qswitch exec [--switch NAME|PATH] [--type dgram|stream|vhost-user] [--mac MAC] "
         "[--vlan N | --trunk LIST [--native N]] [--port-security] [--ip ADDR]... -- PROGRAM "
         "[ARGS...]\n"
         "  runs PROGRAM (qemu-system-x86_64 ...) with one NIC on a running switch: a socketpair\n"
         "  whose one end goes to the switch over its control socket, the other to QEMU as\n"
         "    -netdev dgram,id=qs0,local.type=fd,local.str=N   (or stream,...,addr.type=fd)\n"
         "    -device virtio-net-pci,netdev=qs0,mac=MAC\n"
         "  appended to ARGS. The port goes away when PROGRAM exits; nothing is left on disk.\n"
         "  --switch NAME   the switch whose control socket is NAME.ctl beside the default\n"
         "                  socket ($XDG_RUNTIME_DIR/qswitch/ or /tmp/qswitch-$UID/)\n"
         "  --switch PATH   a control socket (PATH.ctl), or a switch socket (PATH.sock: the\n"
         "                  control socket beside it). Default: the default switch's\n"
         "  --type T        dgram (default), stream or vhost-user: the QEMU netdev and the port\n"
         "                  kind; vhost-user adds the guest's RAM as a shared memfd (its -m),\n"
         "                  a chardev to a private socket and vectors=0 unless under KVM\n"
         "  --mac MAC       the guest's MAC (default: a random 52:54:00:xx:xx:xx)\n"
         "  --vlan N        the port is an access port of VLAN N (1..4094; default 1)\n"
         "  --trunk LIST    the port is a trunk of the VLANs in LIST (10,20-29): the guest tags\n"
         "                  its frames itself (eth0.10); --native N: untagged frames are VLAN N\n"
         "  --port-security the guest may send only from its MAC (--mac, or the generated one)\n"
         "                  and, where the switch gives addresses, from those (its DHCP lease,\n"
         "                  its SLAAC address) and link-local ones\n"
         "  --ip ADDR       an IPv4 or IPv6 address it may send from besides (repeatable);\n"
         "                  implies --port-security\n"
         "  SIGINT/SIGTERM/SIGHUP are passed to PROGRAM; the exit status is PROGRAM's\n"
         "  (128+N if signal N ended it), 1 if the switch cannot be reached or refuses the\n"
         "  port, 2 on bad arguments, 127 if PROGRAM cannot be run\n";
}

std::string exec_control_path(const std::string& switch_arg) {
  if (switch_arg.empty()) return default_control_path();
  std::string arg = switch_arg;
  if (arg.rfind("unix:", 0) == 0) arg = arg.substr(5);
  if (arg.find('/') == std::string::npos) return default_socket_dir() + "/" + arg + ".ctl";
  // A PATH: the same resolution as `qswitch ctl --sock` (ctl.h). When a NAME.sock has no
  // control socket beside it, that missing NAME.ctl is the path tried (and named in the error).
  std::string path, error;
  if (resolve_control_socket(arg, path, error)) return path;
  return control_path_for(arg);
}

bool parse_exec_args(int argc, const char* const* argv, ExecOptions& o, std::string& error) {
  std::string switch_arg;
  std::string type = "dgram";
  std::string mac;
  VlanKeys vlan_keys;
  bool port_security = false;
  SecurityKeys ip_keys;  // --ip, checked here as the switch will
  std::vector<std::string> ips;
  int i = 1;
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      return true;
    }
    if (arg == "--port-security") {
      port_security = true;
      continue;
    }
    if (arg.empty() || arg[0] != '-') break;  // PROGRAM without "--"
    std::string value;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg == "--switch" || arg == "--type" || arg == "--mac" || arg == "--vlan" ||
               arg == "--trunk" || arg == "--native" || arg == "--ip") {
      if (i + 1 >= argc) {
        error = arg + " needs a value";
        return false;
      }
      value = argv[++i];
    }
    if (arg == "--switch") {
      if (value.empty()) {
        error = "--switch needs a NAME or a PATH";
        return false;
      }
      switch_arg = value;
    } else if (arg == "--type") {
      if (value != "dgram" && value != "stream" && value != "vhost-user") {
        error = "--type '" + value + "': expected dgram, stream or vhost-user";
        return false;
      }
      type = value;
    } else if (arg == "--mac") {
      if (!parse_mac(value, mac)) {
        error = "--mac '" + value + "': expected a unicast MAC like 52:54:00:12:34:56";
        return false;
      }
    } else if (arg == "--vlan" || arg == "--trunk" || arg == "--native") {
      if (!vlan_keys.set(arg.substr(2), value, error)) {
        error = arg + ": " + error;
        return false;
      }
      o.port_keys.emplace_back(arg.substr(2), value);
    } else if (arg == "--ip") {
      if (!ip_keys.set("ip", value, error)) {
        error = "--ip: " + error;
        return false;
      }
      ips.push_back(value);
    } else {
      error = "unknown option '" + std::string(argv[i]) + "'";
      return false;
    }
  }
  for (; i < argc; ++i) o.program.emplace_back(argv[i]);
  if (o.program.empty()) {
    error = "no program to run: put it after --, e.g. qswitch exec -- qemu-system-x86_64 ...";
    return false;
  }
  sw::VlanMembership vlans;
  if (!vlan_keys.resolve(vlans, error)) return false;
  o.control_path = exec_control_path(switch_arg);
  o.type = type == "stream"       ? ExecType::kStream
           : type == "vhost-user" ? ExecType::kVhostUser
                                  : ExecType::kDgram;
  o.mac = mac.empty() ? random_guest_mac().to_string() : mac;
  if (port_security || !ips.empty()) {  // the guest may send from its MAC only
    o.port_keys.emplace_back("port-security", "on");
    o.port_keys.emplace_back("mac", o.mac);
  }
  for (const std::string& ip : ips) o.port_keys.emplace_back("ip", ip);
  return true;
}

namespace {

// The comma-separated items of a QEMU option value ("size=1G,slots=2" -> {"size=1G", ...}).
std::vector<std::string> option_items(const std::string& spec) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t end = spec.find(',', start);
    if (end == std::string::npos) end = spec.size();
    items.push_back(spec.substr(start, end - start));
    start = end + 1;
  }
  return items;
}

bool is_option(const std::string& arg, const char* name) {
  return arg == std::string("-") + name || arg == std::string("--") + name;
}

}  // namespace

std::string free_netdev_id(const std::vector<std::string>& program) {
  std::vector<std::string> used;
  for (size_t i = 0; i + 1 < program.size(); ++i) {
    if (!is_option(program[i], "netdev") && !is_option(program[i], "nic")) continue;
    for (const std::string& item : option_items(program[i + 1])) {
      if (item.rfind("id=", 0) == 0) used.push_back(item.substr(3));
    }
  }
  for (size_t n = 0; n <= used.size(); ++n) {  // at most used.size() of them can be taken
    std::string id = "qs" + std::to_string(n);
    bool taken = false;
    for (const std::string& u : used) taken = taken || u == id;
    if (!taken) return id;
  }
  return "qs" + std::to_string(used.size() + 1);  // not reached
}

const char* exec_type_name(ExecType type) {
  switch (type) {
    case ExecType::kStream:
      return "stream";
    case ExecType::kVhostUser:
      return "vhost-user";
    case ExecType::kDgram:
      break;
  }
  return "dgram";
}

std::vector<std::string> exec_netdev_args(ExecType type, const std::string& id, int fd,
                                          const std::string& mac) {
  const bool stream = type == ExecType::kStream;
  const std::string n = std::to_string(fd);
  // QEMU 7.2 qapi/net.json: NetdevDgramOptions local/remote, NetdevStreamOptions addr; an fd is
  // SocketAddress type "fd" with "str" the number or the name of a monitor fd.
  std::string netdev = stream ? "stream,id=" + id + ",addr.type=fd,addr.str=" + n
                              : "dgram,id=" + id + ",local.type=fd,local.str=" + n;
  return {"-netdev", netdev, "-device", "virtio-net-pci,netdev=" + id + ",mac=" + mac};
}

bool program_uses_kvm(const std::vector<std::string>& program) {
  bool kvm = false;
  for (size_t i = 0; i < program.size(); ++i) {
    const std::string& a = program[i];
    if (is_option(a, "enable-kvm")) kvm = true;
    if (i + 1 >= program.size()) continue;
    if (is_option(a, "accel")) {
      for (const std::string& item : option_items(program[i + 1])) {
        if (item == "kvm" || item == "accel=kvm") kvm = true;
        if (item == "tcg" || item == "accel=tcg") kvm = false;
      }
    }
    if (is_option(a, "machine") || is_option(a, "M")) {
      for (const std::string& item : option_items(program[i + 1])) {
        // accel=kvm:tcg tries KVM first.
        if (item.rfind("accel=", 0) == 0) kvm = item.rfind("accel=kvm", 0) == 0;
      }
    }
  }
  return kvm;
}

std::string program_memory_size(const std::vector<std::string>& program) {
  std::string size = "128M";  // QEMU's default for x86 machines
  for (size_t i = 0; i + 1 < program.size(); ++i) {
    if (!is_option(program[i], "m")) continue;
    for (std::string item : option_items(program[i + 1])) {
      if (item.rfind("size=", 0) == 0) item = item.substr(5);
      if (item.empty() || item.find('=') != std::string::npos) continue;
      // A bare number is MiB for -m, bytes for a memory backend's size=.
      const bool bare = item.find_first_not_of("0123456789") == std::string::npos;
      size = bare ? item + "M" : item;
      break;
    }
  }
  return size;
}

std::vector<std::string> exec_vhost_user_args(const std::vector<std::string>& program,
                                              const std::string& id, const std::string& socket_path,
                                              const std::string& mac) {
  std::vector<std::string> args;
  bool has_backend = false;
  for (size_t i = 0; i + 1 < program.size(); ++i) {
    if (!is_option(program[i], "machine") && !is_option(program[i], "M")) continue;
    for (const std::string& item : option_items(program[i + 1])) {
      has_backend = has_backend || item.rfind("memory-backend=", 0) == 0;
    }
  }
  const std::string mem = id + "mem";
  if (!has_backend) {
    args = {
        "-object",
        "memory-backend-memfd,id=" + mem + ",size=" + program_memory_size(program) + ",share=on",
        "-machine", "memory-backend=" + mem};
  }
  const std::string chardev = id + "chr";
  for (const std::string& a :
       {std::string("-chardev"), "socket,id=" + chardev + ",path=" + socket_path,
        std::string("-netdev"), "vhost-user,id=" + id + ",chardev=" + chardev,
        std::string("-device"),
        "virtio-net-pci,netdev=" + id + ",mac=" + mac +
            (program_uses_kvm(program) ? "" : ",vectors=0")}) {
    args.push_back(a);
  }
  return args;
}

std::string attach_request_line(ExecType type, const std::string& name,
                                const std::vector<std::pair<std::string, std::string>>& port_keys) {
  json args = {{"type", exec_type_name(type)}};
  if (!name.empty()) args["name"] = name;
  for (const auto& [key, value] : port_keys) {
    if (key == "ip") {
      args[key].push_back(value);  // repeatable: a list
    } else {
      args[key] = value;
    }
  }
  return dump_json(json{{"cmd", "port.attach"}, {"args", args}});
}

namespace {

// Asks the switch at o.control_path to attach `switch_end` as a port (port.attach). On success
// `control` is the connection the port lives by and `port_id` the switch's id for it;
// otherwise prints why.
bool attach_port(const ExecOptions& o, const std::string& name, io::Fd switch_end, io::Fd& control,
                 std::string& port_id) {
  std::string error;
  if (!connect_control(o.control_path, control, error)) {
    std::fprintf(stderr, "qswitch exec: %s\n", error.c_str());
    return false;
  }
  const int64_t deadline = monotonic_ms() + kTimeoutMs;
  std::string reply_text;
  if (!send_with_fd(control.get(), attach_request_line(o.type, name, o.port_keys), switch_end.get(),
                    deadline, error) ||
      !read_reply(control.get(), deadline, reply_text, error)) {
    std::fprintf(stderr, "qswitch exec: %s: %s\n", o.control_path.c_str(), error.c_str());
    return false;
  }
  switch_end.reset();  // the switch holds its own copy now
  const json reply = parse_json_line(reply_text);
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) {
    std::fprintf(stderr, "qswitch exec: not a control reply from %s: %s\n", o.control_path.c_str(),
                 reply_text.c_str());
    return false;
  }
  if (!reply["ok"].get<bool>()) {
    const json& e = reply.contains("error") ? reply["error"] : json("(no error text)");
    std::fprintf(stderr, "qswitch exec: the switch at %s refused the port: %s\n",
                 o.control_path.c_str(),
                 e.is_string() ? e.get_ref<const std::string&>().c_str() : dump_json(e).c_str());
    return false;
  }
  const json& result = reply["result"];
  port_id = result.is_object() && result.contains("port") ? dump_json(result["port"]) : "?";
  return true;
}

// Forks and executes `args` with `guest_fd` as its one inherited fd; forwards SIGINT, SIGTERM
// and SIGHUP to it from then on. The child's pid, or -1 (printed) when fork failed.
pid_t start_program(std::vector<std::string>& args, int guest_fd) {
  std::vector<char*> cargv;
  cargv.reserve(args.size() + 1);
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  // Signals wait until the pid is known: none is lost between fork and g_child.
  sigset_t block;
  sigset_t old;
  sigemptyset(&block);
  for (const int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&block, sig);
  ::sigprocmask(SIG_BLOCK, &block, &old);
  set_signal_handlers(true);
  const pid_t launcher = ::getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    set_signal_handlers(false);
    // The program lives no longer than its launcher: without it the port is gone anyway.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != launcher) _exit(128 + SIGTERM);  // the launcher died before prctl
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    // The one fd the program inherits (none for vhost-user); everything else of ours is
    // close-on-exec.
    if (guest_fd >= 0 && ::fcntl(guest_fd, F_SETFD, 0) != 0) _exit(127);
    ::execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "qswitch exec: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  if (child < 0) {
    std::fprintf(stderr, "qswitch exec: fork: %s\n", std::strerror(errno));
    set_signal_handlers(false);
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
    return -1;
  }
  g_child = child;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return child;
}

// Waits for the program, watching the control connection: it stays open (the port lives by
// it), and EOF on it means the switch closed the port (said once; the program keeps running).
// The program's wait status, or -1 when waitpid failed (printed).
int wait_program(pid_t child, io::Fd& control, const std::string& port_id,
                 const std::string& name) {
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(child, &status, control.valid() ? WNOHANG : 0);
    if (r == child) return status;
    if (r < 0 && errno != EINTR) {
      std::fprintf(stderr, "qswitch exec: waitpid: %s\n", std::strerror(errno));
      return -1;
    }
    if (r != 0 || !control.valid()) continue;  // EINTR
    pollfd p{control.get(), POLLIN, 0};
    if (::poll(&p, 1, kWaitSliceMs) <= 0) continue;
    char buf[512];
    const ssize_t n = ::recv(control.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN))) continue;
    control.reset();
    // The program's end of the pair closes as it exits, before it can be reaped, and a stream
    // port closes on that: give an exiting program a moment before saying the switch did it.
    for (int i = 0; i < 20; ++i) {
      if (::waitpid(child, &status, WNOHANG) == child) return status;
      ::usleep(10'000);
    }
    std::fprintf(stderr,
                 "qswitch exec: the switch closed port %s (port removed or switch stopped); "
                 "%s keeps running without its network\n",
                 port_id.c_str(), name.c_str());
  }
}

// Waits for the program (wait_program), then restores the signals: the launcher's exit status.
int finish_program(pid_t child, io::Fd& control, const std::string& port_id,
                   const std::string& name) {
  const int status = wait_program(child, control, port_id, name);
  g_child = 0;
  set_signal_handlers(false);
  return status < 0 ? 1 : exit_code(status);
}

// --type vhost-user (see the header): listen in a private directory, start PROGRAM pointed
// there, accept its connection, then attach that socket.
int run_exec_vhost_user(const ExecOptions& o, const std::string& name) {
  std::string error;
  {
    io::Fd probe;  // the switch answers before anything starts
    if (!connect_control(o.control_path, probe, error)) {
      std::fprintf(stderr, "qswitch exec: %s\n", error.c_str());
      return 1;
    }
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string dir =
      std::string(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp") + "/qswitch-exec-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "qswitch exec: mkdtemp %s: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  const std::string path = dir + "/vhost-user.sock";
  auto cleanup = [&] {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  };
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  io::Fd listener = io::Fd::adopt(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (path.size() >= sizeof sun.sun_path || !listener.valid()) {
    std::fprintf(stderr, "qswitch exec: cannot make a socket at %s\n", path.c_str());
    cleanup();
    return 1;
  }
  std::memcpy(sun.sun_path, path.data(), path.size());
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 ||
      ::listen(listener.get(), 1) != 0) {
    std::fprintf(stderr, "qswitch exec: listen on %s: %s\n", path.c_str(), std::strerror(errno));
    cleanup();
    return 1;
  }
  std::vector<std::string> args = o.program;
  for (std::string& a : exec_vhost_user_args(o.program, free_netdev_id(o.program), path, o.mac)) {
    args.push_back(std::move(a));
  }
  const pid_t child = start_program(args, -1);
  if (child < 0) {
    cleanup();
    return 1;
  }
  auto stop_child = [&](int code) {
    ::kill(child, SIGTERM);
    int ignored = 0;
    while (::waitpid(child, &ignored, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    set_signal_handlers(false);
    return code;
  };
  // QEMU connects as it starts (its vhost-user netdev waits for the connection).
  io::Fd conn;
  const int64_t deadline = monotonic_ms() + kVhostUserConnectMs;
  while (!conn.valid()) {
    int status = 0;
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) {
      cleanup();
      g_child = 0;
      set_signal_handlers(false);
      std::fprintf(stderr, "qswitch exec: %s exited before it connected its vhost-user NIC\n",
                   name.c_str());
      return exit_code(status);
    }
    if (monotonic_ms() > deadline) {
      cleanup();
      std::fprintf(stderr,
                   "qswitch exec: %s did not connect to %s within %d s (is it a QEMU with a "
                   "vhost-user netdev?); stopping it\n",
                   name.c_str(), path.c_str(), kVhostUserConnectMs / 1000);
      return stop_child(1);
    }
    pollfd p{listener.get(), POLLIN, 0};
    if (::poll(&p, 1, kWaitSliceMs) > 0) {
      conn = io::Fd::adopt(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    }
  }
  cleanup();
  listener.reset();
  io::Fd control;
  std::string port_id;
  if (!attach_port(o, name, std::move(conn), control, port_id)) return stop_child(1);
  std::fprintf(stderr, "qswitch exec: port %s on %s, vhost-user, mac %s\n", port_id.c_str(),
               o.control_path.c_str(), o.mac.c_str());
  return finish_program(child, control, port_id, name);
}

}  // namespace

int run_exec(int argc, char** argv) {
  ExecOptions o;
  std::string error;
  if (!parse_exec_args(argc, argv, o, error)) {
    std::fprintf(stderr, "qswitch exec: %s\n%s", error.c_str(), exec_usage());
    return 2;
  }
  if (o.help) {
    std::fputs(exec_usage(), stdout);
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const std::string name = base_name(o.program[0]);
  if (o.type == ExecType::kVhostUser) return run_exec_vhost_user(o, name);

  const bool stream = o.type == ExecType::kStream;
  int pair[2] = {-1, -1};
  if (::socketpair(AF_UNIX, (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0, pair) != 0) {
    std::fprintf(stderr, "qswitch exec: socketpair: %s\n", std::strerror(errno));
    return 1;
  }
  io::Fd switch_end = io::Fd::adopt(pair[0]);
  io::Fd guest_end = io::Fd::adopt(pair[1]);
  io::Fd control;
  std::string port_id;
  if (!attach_port(o, name, std::move(switch_end), control, port_id)) return 1;

  std::vector<std::string> args = o.program;
  for (std::string& a :
       exec_netdev_args(o.type, free_netdev_id(o.program), guest_end.get(), o.mac)) {
    args.push_back(std::move(a));
  }
  std::fprintf(stderr, "qswitch exec: port %s on %s, %s, mac %s\n", port_id.c_str(),
               o.control_path.c_str(), exec_type_name(o.type), o.mac.c_str());
  const pid_t child = start_program(args, guest_end.get());
  if (child < 0) return 1;
  guest_end.reset();
  return finish_program(child, control, port_id, name);
}

}  // namespace qswitch::tools
