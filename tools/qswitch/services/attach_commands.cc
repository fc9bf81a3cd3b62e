// tools/qswitch/services/attach_commands.cc: see the header.
#include "tools/qswitch/services/attach_commands.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backends/dgram/dgram_port.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/stream/stream_port.h"
#include "backends/vhost_user/vhost_user_port.h"
#include "tools/qswitch/config/json_line.h"
#include "tools/qswitch/services/switch_commands.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxNameSize = 64;
constexpr int kReadsPerWake = 16;  // bytes a launcher sends after the request are discarded

// One attached port and the control connection it lives by. Shared by the port's close hook and
// the takeover (see the header); whichever side ends first ends the other.
class Attachment : public std::enable_shared_from_this<Attachment> {
 public:
  Attachment(uv_loop_t* uv, backends::LoopPort& port) : uv_(uv), port_(&port) {}
  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

  // The takeover: the reply was sent; the port now lives as long as `conn`.
  void watch(io::Fd conn) {
    watching_ = true;
    if (port_ == nullptr) return;  // the port went first: `conn` closes here, the launcher sees EOF
    conn_ = std::move(conn);
    uv_poll_init_socket(uv_, poll_.get(), conn_.get());
    poll_.get()->data = this;
    uv_poll_start(poll_.get(), UV_READABLE | UV_DISCONNECT, [](uv_poll_t* h, int status, int) {
      if (h->data != nullptr) static_cast<Attachment*>(h->data)->on_poll(status);
    });
  }

  // The takeover was dropped without running (the client went away before its reply).
  void abandon() {
    if (watching_ || port_ == nullptr) return;
    backends::LoopPort* port = std::exchange(port_, nullptr);
    port->close("launcher went away before the port.attach reply");
  }

  // The port's close hook.
  void on_port_closed() {
    port_ = nullptr;
    stop_watching();
  }

 private:
  void stop_watching() {
    poll_.close();  // before the fd: one poll per fd
    conn_.reset();
  }

  void on_poll(int status) {
    std::shared_ptr<Attachment> keep =
        shared_from_this();  // closing the port may drop the last ref
    bool gone = status < 0;
    char buf[512];
    for (int i = 0; i < kReadsPerWake && !gone; ++i) {
      const ssize_t n = ::recv(conn_.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      gone = true;  // EOF, or the connection was reset
    }
    if (!gone) return;
    stop_watching();
    if (port_ != nullptr) std::exchange(port_, nullptr)->close("launcher exited");
  }

  uv_loop_t* uv_;
  backends::LoopPort* port_;  // null once the port has closed
  bool watching_ = false;
  io::Fd conn_;  // declared before poll_: the poll handle closes first
  io::UvHandle<uv_poll_t> poll_;
};

// Closes the port if the takeover holding it is destroyed without having run.
struct AbandonGuard {
  std::shared_ptr<Attachment> attachment;
  ~AbandonGuard() {
    if (attachment) attachment->abandon();
  }
};

const char* socket_type_name(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "stream";
    case SOCK_DGRAM:
      return "dgram";
    case SOCK_SEQPACKET:
      return "seqpacket";
    case SOCK_RAW:
      return "raw";
    default:
      return "unknown";
  }
}

const char* file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a pipe";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a socket";
}

// Checks that `fd` is a connected socket of `want_type`; false with `error` naming the problem.
bool check_socket(int fd, int want_type, std::string& error) {
  const std::string want = socket_type_name(want_type);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    error = std::string("port.attach: cannot inspect the passed fd: ") + std::strerror(errno);
    return false;
  }
  if (!S_ISSOCK(st.st_mode)) {
    error = std::string("port.attach: the passed fd is ") + file_kind(st.st_mode) +
            ", not a socket; pass a connected " + want + " socket (a socketpair end)";
    return false;
  }
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    error = std::string("port.attach: SO_TYPE of the passed socket: ") + std::strerror(errno);
    return false;
  }
  if (type != want_type) {
    error = std::string("port.attach: the passed socket is a ") + socket_type_name(type) +
            " socket but \"type\" is \"" + want + "\"; pass a " + want +
            " socket or set \"type\" to match";
    return false;
  }
  int domain = 0;
  len = sizeof domain;
  if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
      (domain != AF_UNIX && domain != AF_INET && domain != AF_INET6)) {
    error = "port.attach: the passed socket is not a unix, IPv4 or IPv6 socket";
    return false;
  }
  int listening = 0;
  len = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening != 0) {
    error = "port.attach: the passed socket is a listening socket; pass a connected one";
    return false;
  }
  sockaddr_storage peer{};
  len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) {
    error = std::string("port.attach: the passed socket is not connected (") +
            std::strerror(errno) + "); pass a connected one, e.g. a socketpair end";
    return false;
  }
  return true;
}

// "exec:NAME (pid P)": P created the passed socket (SO_PEERCRED of a socketpair end).
std::string peer_name(int fd, const std::string& name) {
  std::string out = name.empty() ? "exec" : "exec:" + name;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
    out += " (pid " + std::to_string(cred.pid) + ")";
  }
  return out;
}

bool name_ok(const std::string& name) {
  if (name.size() > kMaxNameSize) return false;
  for (const char ch : name) {
    if (ch < 0x21 || ch > 0x7e) return false;  // printable, no spaces: it goes into log lines
  }
  return true;
}

Reply attach(backends::SwitchLoop& loop, ExecNames* names, const json& args,
             std::vector<io::Fd>& fds) {
  std::string error;
  if (!check_arg_names(
          args,
          {"type", "name", "vlan", "trunk", "native", "port-security", "mac", "max-macs", "ip"},
          "port.attach", error)) {
    return Reply::failure(error);
  }
  sw::VlanMembership vlans;
  sw::PortSecurity security;
  if (!port_args(args, nullptr, vlans, security, error)) {
    return Reply::failure("port.attach: " + error);
  }
  std::string type;
  if (!string_arg(args, "type", "port.attach", type, error)) {
    return Reply::failure(error + ": \"dgram\", \"stream\" or \"vhost-user\"");
  }
  if (type != "dgram" && type != "stream" && type != "vhost-user") {
    return Reply::failure("port.attach: \"type\" is \"" + type +
                          "\"; expected \"dgram\", \"stream\" or \"vhost-user\"");
  }
  std::string name;
  if (auto at = args.find("name"); at != args.end()) {
    if (!at->is_string() || !name_ok(at->get_ref<const std::string&>())) {
      return Reply::failure("port.attach: \"name\" is " + dump_json(*at) +
                            "; expected a string of 0.." + std::to_string(kMaxNameSize) +
                            " printable characters without spaces");
    }
    name = at->get_ref<const std::string&>();
  }
  if (fds.size() != 1) {
    return Reply::failure(
        "port.attach: the request came with " + std::to_string(fds.size()) +
        " file descriptors; it takes exactly one, a connected " + type +
        " socket passed with the request line (SCM_RIGHTS); `qswitch exec` does this");
  }
  const int want_type = type == "dgram" ? SOCK_DGRAM : SOCK_STREAM;
  if (!check_socket(fds[0].get(), want_type, error)) return Reply::failure(error);

  io::Fd fd = std::move(fds[0]);
  const std::string peer = peer_name(fd.get(), name);
  backends::LoopPort* port = nullptr;
  if (want_type == SOCK_DGRAM) {
    port = backends::adopt_connected_dgram(loop, std::move(fd), peer, error, vlans, security);
    if (port == nullptr) return Reply::failure("port.attach: " + error);
  } else {
    const int flags = ::fcntl(fd.get(), F_GETFL);
    if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
      return Reply::failure(std::string("port.attach: cannot make the socket non-blocking: ") +
                            std::strerror(errno));
    }
    if (type == "vhost-user") {
      // The front-end's connection (QEMU's vhost-user chardev, accepted by the launcher).
      port = &loop.adopt(backends::vhost_user::make_vhost_user_port(loop, std::move(fd), peer),
                         vlans, security);
    } else {
      port = &loop.adopt(std::make_unique<backends::StreamPort>(loop, std::move(fd), peer), vlans,
                         security);
    }
  }
  auto attachment = std::make_shared<Attachment>(loop.uv(), *port);
  const uint64_t serial = port->serial();
  if (names != nullptr && !name.empty()) names->set(serial, name);
  port->set_close_hook([attachment, names, serial](backends::LoopPort&) {
    if (names != nullptr) names->erase(serial);
    attachment->on_port_closed();
  });
  Reply reply = Reply::success(json{{"port", port->id()}, {"type", type}, {"peer", peer}});
  auto guard = std::make_shared<AbandonGuard>();
  guard->attachment = std::move(attachment);
  reply.takeover = [guard](io::Fd conn) { guard->attachment->watch(std::move(conn)); };
  return reply;
}

}  // namespace

void register_attach_commands(ControlApi& api, backends::SwitchLoop& loop, ExecNames* names) {
  api.add_with_fds(
      "port.attach",
      "a port on a socket passed with the request (SCM_RIGHTS), up while this "
      "connection is open; args: \"type\": dgram|stream|vhost-user, \"name\" (for logs), its "
      "VLANs (\"vlan\": N, or \"trunk\": \"10,20\" and \"native\": N), its port security "
      "(\"port-security\": true, \"mac\": MAC, \"max-macs\": N, \"ip\": ADDR or a list); "
      "`qswitch exec` uses it",
      [&loop, names](const json& args, std::vector<io::Fd>& fds) {
        return attach(loop, names, args, fds);
      });
}

}  // namespace qswitch::tools
