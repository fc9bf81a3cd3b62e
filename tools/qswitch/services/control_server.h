// tools/qswitch/services/control_server.h: the control channel's transport: a unix-socket line
// server on the switch's libuv loop. It knows nothing of JSON: it cuts each client's input into
// lines, hands every line to a handler and writes the handler's reply line back, in order.
//
// Theory of operation
// - One listening socket (io::listen_on: parent directories 0700, socket 0600, a stale socket
//   file replaced, a live one refused) and one uv_poll per client (io::ServedClient, shared
//   with the metrics server); plain non-blocking read/send,
//   so the loop never blocks. At most kAcceptsPerWake accepts and kReadPerWake bytes per client
//   per wake-up: a chatty client cannot starve the switch.
// - Accepting goes through io::AcceptWatch, allowed into its headroom: when guests hold every
//   other fd, control clients still get in on the few fds the other listeners leave free, so
//   the operator can see what is going on; past those, clients wait in the backlog while the
//   listener backs off (counted in accept_counters()).
// - Lines end with '\n' (a '\r' before it is dropped). The handler runs synchronously on the
//   loop, so replies come out in request order. A line longer than max_line_size bytes gets the
//   too_long reply as soon as it crosses the limit, and the rest of it, up to the next '\n', is
//   discarded without being stored: the connection stays usable. When a client closes its
//   sending side, a last unterminated line is still a request (printf '...' | socat works), and
//   the replies are flushed before the connection is closed.
// - Replies that the client does not read queue in a per-client buffer; past max_unread_size
//   bytes the client is closed (logged, rate-limited). A client that disconnects mid-request is
//   cleaned up; its unterminated last line reaches the handler like any other (a truncated JSON
//   request never parses, so it changes nothing) and the reply is dropped.
// - At most max_clients at once: a further client gets the busy reply (best effort, one
//   non-blocking send) and is closed. An idle client costs a poll handle and a timer, no CPU, and
//   is closed after idle_ms without traffic in either direction.
// - Takeover (for `capture`): a line handler may also hand back a Takeover. The server then reads
//   no further requests from that client (bytes after the line are discarded), writes the reply,
//   and once the reply is fully sent stops watching the connection and calls the Takeover with
//   its fd: from then on the connection belongs to the callee (a byte stream, no more lines).
//   A client that goes away before its reply is sent is closed and the Takeover is never run.
// - File descriptors (for `port.attach`): bytes are read with recvmsg, and SCM_RIGHTS fds are
//   accepted (MSG_CMSG_CLOEXEC, so none leaks into a child). fds arrive with the recvmsg that
//   reads the first bytes of the sendmsg that carried them (unix(7)), and the kernel ends that
//   read at the end of that sendmsg's bytes, or at the end of our buffer if it came first. So the
//   fds belong to the line holding the LAST byte of that read: a client sends the fds with the
//   request line (the whole line, or at least its end, in the sendmsg carrying them). Up to
//   max_fds_per_line fds reach the handler with their line; the handler takes the ones it uses
//   and the server closes the rest when it returns. A line with more fds (or a read whose control
//   data was truncated, MSG_CTRUNC: the kernel already dropped some) is not run: its fds are
//   closed and it gets the too_many_fds reply. fds of a line that is too long or discarded, or of
//   a client that goes away, are closed.
// - The socket file is removed when the server is destroyed.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/served_client.h"
#include "backends/runtime/io/socket_address.h"

namespace qswitch::tools {

struct ControlLimits {
  size_t max_line_size = 65536;      // bytes in one request line, without its '\n'
  size_t max_unread_size = 1 << 20;  // queued reply bytes before a client is closed
  size_t max_clients = 128;
  uint64_t idle_ms = uint64_t{5} * 60 * 1000;
  size_t max_fds_per_line = 4;  // SCM_RIGHTS fds passed with one request line
};

// Takes over a client connection after its reply was sent (see "Takeover" above). The control
// API's handlers return it (tools::Reply::takeover).
using Takeover = std::function<void(io::Fd fd)>;

struct ControlHandlers {
  // One request line (no '\n') -> one reply line (the server appends '\n').
  std::function<std::string(std::string_view line)> line;
  // Used instead of `line` when set: as `line`, and the handler may set `takeover`.
  std::function<std::string(std::string_view line, Takeover& takeover)> line_takeover;
  // Used instead of both when set: as `line_takeover`, and `fds` holds the fds that arrived with
  // the line (usually none). The handler moves out the ones it keeps; the rest are closed.
  std::function<std::string(std::string_view line, std::vector<io::Fd>& fds, Takeover& takeover)>
      line_fds;
  // The reply to a line over the limit.
  std::function<std::string(size_t limit)> too_long;
  // The reply sent to a client refused because max_clients are connected.
  std::function<std::string(size_t max_clients)> busy;
  // The reply to a line that came with more than max_fds_per_line fds (or truncated ones).
  std::function<std::string(size_t limit)> too_many_fds;
};

class ControlServer final : public io::ServedListener {
 public:
  // Binds `path` now; on failure error() says why and nothing is left behind.
  ControlServer(uv_loop_t* loop, std::string path, ControlHandlers handlers,
                ControlLimits limits = {});
  ~ControlServer() override;

  const std::string& path() const { return path_; }

 private:
  struct Client;
  void on_connection(io::Fd fd) override;
  void on_client_event(Client& c, int status, int events);
  void on_idle(Client& c);
  // Reads what is there; false when the client must be closed (reason set).
  bool read_client(Client& c, std::string& reason);
  // `fds` came with this read: they belong to the line holding its last byte.
  void take_bytes(Client& c, const char* data, size_t size, std::vector<io::Fd>& fds,
                  bool fds_truncated);
  void run_line(Client& c, std::string_view line);
  std::string too_long_reply() const;
  // Sends queued output; false when the peer is gone.
  bool flush_client(Client& c, std::string& reason);
  void update_poll(Client& c);
  void touch(Client& c);
  void close_client(Client& c);
  // The reply before a Takeover was sent: give the connection away.
  void give_away(Client& c);

  std::string path_;
  ControlHandlers handlers_;
  ControlLimits limits_;
};

}  // namespace qswitch::tools
