// tools/qswitch/services/metrics_server.h: the Prometheus scrape endpoint: a tiny HTTP/1.0-style
// server on the switch's libuv loop that answers `GET /metrics` with a body rendered on demand. It
// knows nothing of counters: the owner passes a function that renders the exposition text.
//
// Theory of operation
// - One listening tcp socket (io::listen_on; port 0 picks one, bound() names it) and one uv_poll
//   per client (io::ServedClient, shared with the control server); plain non-blocking
//   accept/read/send, so the loop never blocks. Accepting goes through io::AcceptWatch: at most
//   kAcceptsPerWake accepts per wake-up, and out of fds the listener backs off while the scrape
//   waits in the backlog (counted in accept_counters()).
// - One request per connection (HTTP/1.0 style; every response says "Connection: close").
//   The request head is read until the blank line that ends it (CRLF CRLF, or bare LF LF as
//   lenient servers accept). "GET /metrics" (a query string is ignored) and "HEAD /metrics" get
//   200 with Content-Type text/plain; version=0.0.4 (the Prometheus text format) and the body
//   from render(); any other path 404; any other method 405 (RFC 9110 section 15.5.6, with
//   Allow); a request line that is not METHOD SP TARGET SP HTTP/x.y, or bytes that cannot be in
//   a head (NUL, other control characters), 400. A head over max_head_size bytes without its end
//   gets 431 (RFC 6585 section 5). Nothing after the head is looked at. The parsing is pure code
//   in http_request_head.h.
// - The response goes into a per-client buffer and is sent without blocking; what the socket
//   does not take waits for POLLOUT. After the last byte the sending side is shut down and the
//   client's input is read and discarded (bounded) until it closes, so unread request bytes
//   do not turn the close into a reset that could destroy the response in flight.
// - Deadlines: the whole request head must arrive within idle_ms of the accept (a client that
//   sends nothing, or dribbles bytes, gets 408 and is closed). Once a response is queued, the
//   timer restarts on every byte the client takes, so a client that stops reading is closed
//   idle_ms after its last progress.
// - At most max_clients at once: a further client gets 503 (best effort, one non-blocking send)
//   and is closed. Every rejection is logged at most a few times per 10 s.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/served_client.h"
#include "backends/runtime/io/socket_address.h"

namespace qswitch::tools {

struct MetricsLimits {
  size_t max_head_size = 8192;  // request line + headers, bytes, including the final blank line
  size_t max_clients = 64;
  uint64_t idle_ms = 10'000;
};

class MetricsServer final : public io::ServedListener {
 public:
  // Binds `address` (tcp) now; on failure error() says why.
  MetricsServer(uv_loop_t* loop, io::SocketAddress address, std::function<std::string()> render,
                MetricsLimits limits = {});

  // The address as bound: a port of 0 is replaced by the one the kernel picked.
  const io::SocketAddress& bound() const { return bound_; }

 private:
  struct Client;
  void on_connection(io::Fd fd) override;
  void on_client_event(Client& c, int status, int events);
  void on_timeout(Client& c);
  // Reads the head; queues a response when it is complete or bad. False: close the client.
  bool read_head(Client& c);
  // After the response: reads and drops input. False: close the client (EOF, error, too much).
  bool drain_input(Client& c);
  void respond(Client& c);
  void queue_response(Client& c, int status, const char* reason, const std::string& body,
                      bool send_body, const char* extra_headers = "");
  // Sends queued output; false when the peer is gone.
  bool flush_client(Client& c);
  void update_poll(Client& c);
  void start_timer(Client& c);
  void close_client(Client& c);
  void log_rejection(const char* what, int fd);

  io::SocketAddress bound_;
  std::function<std::string()> render_;
  MetricsLimits limits_;
};

}  // namespace qswitch::tools
