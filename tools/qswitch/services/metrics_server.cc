// tools/qswitch/services/metrics_server.cc: see the header.
#include "tools/qswitch/services/metrics_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tools/qswitch/services/http_request_head.h"

namespace qswitch::tools {

namespace {
constexpr size_t kDrainLimit = size_t{64} * 1024;  // input discarded after the response, per client
constexpr uint64_t kLingerMs = 2000;               // wait for the client's close after the response
}  // namespace

struct MetricsServer::Client : io::ServedClient {
  enum class State { kHead, kResponding, kDraining };
  Client(MetricsServer* s, io::Fd fd)
      : ServedClient(s->loop_, std::move(fd)), server(s), head(s->limits_.max_head_size) {}
  void on_event(int status, int events) override { server->on_client_event(*this, status, events); }
  void on_timer() override { server->on_timeout(*this); }

  MetricsServer* server;
  State state = State::kHead;
  HttpRequestHead head;  // the request head so far (parsed as it arrives)
  size_t drained = 0;    // (`out` holds the response)
};

MetricsServer::MetricsServer(uv_loop_t* loop, io::SocketAddress address,
                             std::function<std::string()> render, MetricsLimits limits)
    : ServedListener(loop, io::AcceptWatch::Options{}, limits.max_clients),
      bound_(std::move(address)),
      render_(std::move(render)),
      limits_(limits) {
  if (bound_.kind != io::SocketAddress::Kind::kTcp) {
    error_ = "the metrics endpoint must be tcp:HOST:PORT, not " + bound_.to_string();
    return;
  }
  if (!listen(bound_)) return;
  if (bound_.port == 0) bound_.port = io::bound_port(fd_.get());
  start_accepting("metrics " + bound_.to_string());
}

void MetricsServer::log_rejection(const char* what, int fd) {
  if (!log_limit_.allow(static_cast<sw::Millis>(now()))) return;
  io::log_line("metrics %s: %s (%s)", bound_.to_string().c_str(), what,
               io::peer_name(fd, io::SocketAddress::Kind::kTcp).c_str());
}

void MetricsServer::on_connection(io::Fd fd) {
  if (clients_.full()) {
    static constexpr char kBusy[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Length: 25\r\nConnection: close\r\n\r\ntoo many metrics clients\n";
    io::ClientList::refuse(fd.get(), std::string_view(kBusy, sizeof kBusy - 1));
    log_rejection("refused a client: too many clients connected", fd.get());
    return;  // fd closes here
  }
  auto c = std::make_unique<Client>(this, std::move(fd));
  Client& ref = *c;
  clients_.add(std::move(c));
  update_poll(ref);
  start_timer(ref);
}

void MetricsServer::start_timer(Client& c) {
  const uint64_t ms =
      c.state == Client::State::kDraining ? std::min(limits_.idle_ms, kLingerMs) : limits_.idle_ms;
  c.start_timer(ms);
}

void MetricsServer::on_timeout(Client& c) {
  if (c.state == Client::State::kHead) {
    static constexpr char kTimeout[] =
        "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ssize_t ignored =
        ::send(c.fd.get(), kTimeout, sizeof kTimeout - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)ignored;
    log_rejection("closed a client that sent no complete request in time", c.fd.get());
  }
  close_client(c);
}

void MetricsServer::update_poll(Client& c) {
  int events = 0;
  if (c.state != Client::State::kResponding) events |= UV_READABLE | UV_DISCONNECT;
  if (c.pending() > 0) events |= UV_WRITABLE;
  c.watch(events);
}

void MetricsServer::on_client_event(Client& c, int status, int events) {
  if (status < 0) {
    close_client(c);
    return;
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) {
    const bool keep = c.state == Client::State::kHead       ? read_head(c)
                      : c.state == Client::State::kDraining ? drain_input(c)
                                                            : true;
    if (!keep) {
      close_client(c);
      return;
    }
  }
  if (c.state == Client::State::kResponding) {
    if (!flush_client(c)) {
      close_client(c);
      return;
    }
    if (c.pending() == 0) {
      // All sent: half-close, then wait (briefly) for the client to close its side.
      ::shutdown(c.fd.get(), SHUT_WR);
      c.state = Client::State::kDraining;
      std::string().swap(c.out);
      c.out_offset = 0;
      start_timer(c);
    }
  }
  update_poll(c);
}

bool MetricsServer::read_head(Client& c) {
  char buf[4096];
  while (c.state == Client::State::kHead) {
    const ssize_t n = ::read(c.fd.get(), buf, std::min(sizeof buf, c.head.room()));
    if (n == 0) return false;  // gave up before finishing a request: nobody to answer
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    switch (c.head.add(buf, static_cast<size_t>(n))) {
      case HttpRequestHead::Status::kIncomplete:
        break;
      case HttpRequestHead::Status::kBadByte:
        queue_response(c, 400, "Bad Request", "malformed request\n", true);
        return true;
      case HttpRequestHead::Status::kBadRequestLine:
        queue_response(c, 400, "Bad Request", "malformed request line\n", true);
        return true;
      case HttpRequestHead::Status::kComplete:
        respond(c);
        return true;
      case HttpRequestHead::Status::kTooLarge:
        queue_response(c, 431, "Request Header Fields Too Large",
                       "request head over " + std::to_string(limits_.max_head_size) + " bytes\n",
                       true);
        return true;
    }
  }
  return true;
}

void MetricsServer::respond(Client& c) {
  const HttpRoute route = route_http_request(c.head.head());
  switch (route.kind) {
    case HttpRoute::Kind::kMethodNotAllowed:
      queue_response(c, 405, "Method Not Allowed", "only GET and HEAD are served\n", true,
                     "Allow: GET, HEAD\r\n");
      return;
    case HttpRoute::Kind::kNotFound:
      queue_response(c, 404, "Not Found", "not found: the metrics are at /metrics\n",
                     !route.head_only);
      return;
    case HttpRoute::Kind::kMetrics:
      queue_response(c, 200, "OK", render_ ? render_() : std::string(), !route.head_only);
      return;
  }
}

void MetricsServer::queue_response(Client& c, int status, const char* reason,
                                   const std::string& body, bool send_body,
                                   const char* extra_headers) {
  const char* type =
      status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8";
  c.out = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
          "Connection: close\r\n\r\n";
  if (send_body) c.out += body;
  c.out_offset = 0;
  c.state = Client::State::kResponding;
  c.head.clear();
  start_timer(c);  // from now on the deadline runs from the client's last read progress
}

bool MetricsServer::flush_client(Client& c) {
  std::string reason;
  bool progressed = false;
  const bool ok = c.send_out(reason, progressed);
  if (progressed) start_timer(c);
  return ok;
}

bool MetricsServer::drain_input(Client& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.drained += static_cast<size_t>(n);
    if (c.drained > kDrainLimit) return false;
  }
}

void MetricsServer::close_client(Client& c) {
  // Handles close (and stop polling) before the fd: ServedClient's member order.
  clients_.remove(c);
}

}  // namespace qswitch::tools
