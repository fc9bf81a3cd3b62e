// tools/qswitch/services/control_server.cc: see the header.
#include "tools/qswitch/services/control_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qswitch::tools {

namespace {
constexpr size_t kReadChunk = size_t{64} * 1024;
constexpr size_t kReadPerWake = size_t{256} * 1024;                // per client per wake-up
constexpr size_t kKeepCapacity = io::ServedClient::kKeepCapacity;  // the line buffer's too
// Room for this many fds in one recvmsg's control data; more (or a limit set higher) shows as
// MSG_CTRUNC, and the kernel closes what did not fit.
constexpr size_t kMaxFdsPerRead = 16;

// Adopts every SCM_RIGHTS fd in `msg` into `out` (so each one is owned, and closed, at once).
void take_rights(msghdr& msg, std::vector<io::Fd>& out) {
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const auto* data = CMSG_DATA(cm);
    for (size_t i = 0; i < count; ++i) {
      int raw = -1;
      std::memcpy(&raw, data + i * sizeof(int), sizeof raw);  // CMSG_DATA may be unaligned
      if (raw >= 0) out.push_back(io::Fd::adopt(raw));
    }
  }
}
}  // namespace

struct ControlServer::Client : io::ServedClient {
  Client(ControlServer* s, io::Fd fd) : ServedClient(s->loop_, std::move(fd)), server(s) {}
  void on_event(int status, int events) override { server->on_client_event(*this, status, events); }
  void on_timer() override { server->on_idle(*this); }

  ControlServer* server;
  std::string in;              // the current line so far
  bool discarding = false;     // inside a line that was too long: drop up to the next '\n'
  bool read_closed = false;    // the client shut its sending side
  bool overflow = false;       // more than max_unread_size bytes of replies unread
  Takeover takeover;           // set: no more requests; hand the fd over once `out` is sent
  std::vector<io::Fd> in_fds;  // fds for the line in `in` (they came with its bytes so far)
  bool in_fds_over = false;    // that line came with too many fds (or truncated control data)
};

ControlServer::ControlServer(uv_loop_t* loop, std::string path, ControlHandlers handlers,
                             ControlLimits limits)
    : ServedListener(loop, io::AcceptWatch::Options{.may_use_headroom = true}, limits.max_clients),
      path_(std::move(path)),
      handlers_(std::move(handlers)),
      limits_(limits) {
  io::SocketAddress ep;
  ep.kind = io::SocketAddress::Kind::kUnix;
  ep.path = path_;
  if (listen(ep)) start_accepting("control " + path_);
}

ControlServer::~ControlServer() {
  clients_.clear();
  watch_.stop();
  if (fd_.valid()) ::unlink(path_.c_str());
}

void ControlServer::on_connection(io::Fd fd) {
  if (clients_.full()) {
    std::string reply = handlers_.busy ? handlers_.busy(limits_.max_clients) : "busy";
    reply += '\n';
    io::ClientList::refuse(fd.get(), reply);
    if (log_limit_.allow(static_cast<sw::Millis>(now()))) {
      io::log_line("control %s: refused a client (%s): %zu clients already connected",
                   path_.c_str(), io::peer_name(fd.get(), io::SocketAddress::Kind::kUnix).c_str(),
                   clients_.size());
    }
    return;  // fd closes here
  }
  auto c = std::make_unique<Client>(this, std::move(fd));
  Client& ref = *c;
  clients_.add(std::move(c));
  update_poll(ref);
  touch(ref);
}

void ControlServer::touch(Client& c) { c.start_timer(limits_.idle_ms); }

void ControlServer::on_idle(Client& c) { close_client(c); }

void ControlServer::update_poll(Client& c) {
  int events = 0;
  // After a takeover request nothing more is read (it would be discarded, and a level-triggered
  // readable fd would spin): a gone peer shows as a send error.
  if (!c.read_closed && !c.takeover) events |= UV_READABLE | UV_DISCONNECT;
  if (c.pending() > 0) events |= UV_WRITABLE;
  c.watch(events);
}

void ControlServer::on_client_event(Client& c, int status, int events) {
  if (status < 0) {
    close_client(c);
    return;
  }
  std::string reason;
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0 && !c.read_closed) {
    if (!read_client(c, reason)) {
      close_client(c);
      return;
    }
  }
  if (c.overflow || c.pending() > limits_.max_unread_size) {
    if (log_limit_.allow(static_cast<sw::Millis>(now()))) {
      io::log_line(
          "control %s: closed a client (%s) that left more than %zu bytes of replies "
          "unread",
          path_.c_str(), io::peer_name(c.fd.get(), io::SocketAddress::Kind::kUnix).c_str(),
          limits_.max_unread_size);
    }
    close_client(c);
    return;
  }
  if (!flush_client(c, reason)) {
    close_client(c);
    return;
  }
  if (c.takeover && c.pending() == 0 && !c.read_closed) {
    give_away(c);
    return;
  }
  if (c.read_closed && c.pending() == 0) {
    close_client(c);
    return;
  }
  update_poll(c);
}

bool ControlServer::read_client(Client& c, std::string& reason) {
  char buf[kReadChunk];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerRead)];
  std::vector<io::Fd> fds;
  size_t total = 0;
  while (total < kReadPerWake && !c.overflow && !c.takeover) {
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(c.fd.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    fds.clear();
    if (n >= 0 && msg.msg_controllen > 0) take_rights(msg, fds);
    const bool truncated = n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0;
    if (n > 0) {
      total += static_cast<size_t>(n);
      touch(c);
      take_bytes(c, buf, static_cast<size_t>(n), fds, truncated);
      continue;
    }
    if (n == 0) {
      fds.clear();  // fds with no bytes: no line to give them to
      c.read_closed = true;
      // A last line without '\n' is still a request (printf '...' | socat - UNIX:...).
      if (!c.in.empty() && !c.discarding && !c.takeover) {
        std::string last = std::move(c.in);
        c.in.clear();
        if (!last.empty() && last.back() == '\r') last.pop_back();
        run_line(c, last);
      }
      c.in_fds.clear();
      c.in_fds_over = false;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
    reason = std::strerror(errno);
    return false;
  }
  return true;
}

std::string ControlServer::too_long_reply() const {
  return handlers_.too_long ? handlers_.too_long(limits_.max_line_size) : "request too long";
}

void ControlServer::take_bytes(Client& c, const char* data, size_t size, std::vector<io::Fd>& fds,
                               bool fds_truncated) {
  while (size > 0 && !c.overflow && !c.takeover) {  // after a takeover: discarded
    const auto* nl = static_cast<const char*>(std::memchr(data, '\n', size));
    const size_t seg = nl != nullptr ? static_cast<size_t>(nl - data) : size;
    const size_t consumed = nl != nullptr ? seg + 1 : size;
    if (consumed == size && (!fds.empty() || fds_truncated)) {
      // This segment holds the read's last byte: the fds are this line's (see the header).
      for (io::Fd& fd : fds) c.in_fds.push_back(std::move(fd));
      fds.clear();
      if (fds_truncated || c.in_fds.size() > limits_.max_fds_per_line) c.in_fds_over = true;
    }
    if (c.discarding) {
      if (nl != nullptr) c.discarding = false;
      c.in_fds.clear();  // a discarded line's fds close here
      c.in_fds_over = false;
    } else if (c.in.size() + seg > limits_.max_line_size + 1) {
      // +1: room for a '\r' before the '\n'. Reply now; drop the rest of the line unseen.
      c.in.clear();
      if (c.in.capacity() > kKeepCapacity) std::string().swap(c.in);
      c.in_fds.clear();
      c.in_fds_over = false;
      if (nl == nullptr) c.discarding = true;
      c.out += too_long_reply();
      c.out += '\n';
    } else {
      c.in.append(data, seg);
      if (nl != nullptr) {
        std::string_view line = c.in;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > limits_.max_line_size) {
          c.in_fds.clear();
          c.in_fds_over = false;
          c.out += too_long_reply();
          c.out += '\n';
        } else {
          run_line(c, line);
        }
        c.in.clear();
        if (c.in.capacity() > kKeepCapacity) std::string().swap(c.in);
      }
    }
    data += consumed;
    size -= consumed;
  }
  fds.clear();  // bytes left unread after an overflow or a takeover: their fds close
  if (c.takeover || c.overflow) {
    c.in_fds.clear();
    c.in_fds_over = false;
  }
}

void ControlServer::run_line(Client& c, std::string_view line) {
  // The line's fds leave the client now; whatever the handler does not take closes below.
  std::vector<io::Fd> fds = std::move(c.in_fds);
  c.in_fds.clear();
  const bool fds_over = c.in_fds_over;
  c.in_fds_over = false;
  std::string reply;
  if (fds_over) {
    fds.clear();
    reply = handlers_.too_many_fds ? handlers_.too_many_fds(limits_.max_fds_per_line)
                                   : "too many file descriptors";
  } else if (handlers_.line_fds) {
    reply = handlers_.line_fds(line, fds, c.takeover);
  } else if (handlers_.line_takeover) {
    reply = handlers_.line_takeover(line, c.takeover);  // takes no fds: they are closed below
  } else if (handlers_.line) {
    reply = handlers_.line(line);
  }
  fds.clear();
  c.out += reply;
  c.out += '\n';
  if (c.pending() > limits_.max_unread_size) c.overflow = true;
}

bool ControlServer::flush_client(Client& c, std::string& reason) {
  bool progressed = false;
  const bool ok = c.send_out(reason, progressed);
  if (progressed) touch(c);
  return ok;
}

void ControlServer::give_away(Client& c) {
  std::unique_ptr<io::ServedClient> gone = clients_.release(c);
  if (gone == nullptr) return;
  // Stop watching the fd before anyone else polls it: libuv allows one poll handle per fd.
  uv_poll_stop(c.poll.get());
  c.poll.close();
  c.timer.close();
  Takeover takeover = std::move(c.takeover);
  io::Fd fd = std::move(c.fd);
  gone.reset();
  takeover(std::move(fd));
}

void ControlServer::close_client(Client& c) {
  // Handles close (and stop polling) before the fd: ServedClient's member order.
  clients_.remove(c);
}

}  // namespace qswitch::tools
