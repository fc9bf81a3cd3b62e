// backends/runtime/io/served_client.h: the accept/client skeleton the control and metrics servers
// share.
//
// Theory of operation
// - A ServedClient is one accepted connection of a small server on the loop: its fd, a poll
//   handle and a timer (declared after the fd, so they are closed, and the poll stopped, before
//   the fd closes), and the output not yet sent. Poll events go to on_event(), the timer to
//   on_timer(); a client that is gone gets neither (UvHandle clears the handles' data).
// - watch(events) watches exactly those events: one epoll_ctl per change, none when nothing
//   changes (set_poll_events).
// - send_out() sends the pending output without blocking until all of it went or the socket is
//   full. An emptied buffer is reset (and given back when it grew beyond kKeepCapacity); one more
//   than half sent, beyond kKeepCapacity, is compacted, so appends stay cheap for a slow reader.
// - A ClientList holds a server's clients, at most `max` of them: refuse() answers one more with
//   a single best-effort non-blocking send (the caller then closes it), remove() destroys a
//   client, release() takes one out for a new owner (a control connection taken over).
// - A ServedListener is the listening half: the socket (io::listen_on), its AcceptWatch (declared
//   after the fd, so polling stops before the fd closes) and the ClientList; destroying it closes
//   the clients first, then stops accepting, then closes the socket.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/runtime/io/accept_watch.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/io/uv_handle.h"

namespace qswitch::io {

class ServedClient {
 public:
  static constexpr size_t kKeepCapacity = size_t{64} * 1024;  // buffers above this are given back

  // Starts no watch and no timer yet.
  ServedClient(uv_loop_t* loop, Fd fd);
  virtual ~ServedClient() = default;
  ServedClient(const ServedClient&) = delete;
  ServedClient& operator=(const ServedClient&) = delete;

  size_t pending() const { return out.size() - out_offset; }
  void watch(int events);
  // (Re)starts the timer: on_timer() in `ms` unless started again first.
  void start_timer(uint64_t ms);
  // Sends pending output (see above); false, with `reason`, when the peer is gone. `progressed`
  // is set when the peer took any byte.
  bool send_out(std::string& reason, bool& progressed);

  Fd fd;
  UvHandle<uv_poll_t> poll;
  UvHandle<uv_timer_t> timer;
  std::string out;  // output not yet sent, from out_offset
  size_t out_offset = 0;

 protected:
  virtual void on_event(int status, int events) = 0;
  virtual void on_timer() = 0;

 private:
  int poll_events_ = 0;
};

class ClientList {
 public:
  explicit ClientList(size_t max) : max_(max) {}
  ~ClientList() { clear(); }
  ClientList(const ClientList&) = delete;
  ClientList& operator=(const ClientList&) = delete;

  bool full() const { return clients_.size() >= max_; }
  size_t size() const { return clients_.size(); }
  // The answer to a client refused because the list is full: one non-blocking send, no more.
  static void refuse(int fd, std::string_view reply);
  ServedClient& add(std::unique_ptr<ServedClient> client);
  // Destroys `client` (nothing when it is not in the list).
  void remove(ServedClient& client) { release(client); }
  // Takes `client` out of the list; nullptr when it is not in it.
  std::unique_ptr<ServedClient> release(ServedClient& client);
  void clear() { clients_.clear(); }

 private:
  size_t max_;
  std::vector<std::unique_ptr<ServedClient>> clients_;
};

class ServedListener {
 public:
  ServedListener(const ServedListener&) = delete;
  ServedListener& operator=(const ServedListener&) = delete;

  bool ok() const { return fd_.valid(); }
  const std::string& error() const { return error_; }
  size_t client_count() const { return clients_.size(); }
  // Accepts, back-offs for lack of fds, accepts into the headroom (stats shows them).
  const AcceptCounters& accept_counters() const { return watch_.counters(); }

 protected:
  ServedListener(uv_loop_t* loop, AcceptWatch::Options options, size_t max_clients)
      : loop_(loop), watch_(loop, options), clients_(max_clients) {}
  virtual ~ServedListener();
  // Binds and listens on `ep`; false, with error() set, when that failed.
  bool listen(const SocketAddress& ep);
  // Starts accepting into on_connection() (`name` starts the log lines).
  void start_accepting(std::string name);
  // A new client (over the limit too: clients_.full() says so).
  virtual void on_connection(Fd fd) = 0;
  uint64_t now() const { return uv_now(loop_); }

  uv_loop_t* loop_;
  Fd fd_;
  std::string error_;
  AcceptWatch watch_;  // after fd_: stops polling before the fd closes
  ClientList clients_;
  RateLimit log_limit_{5, 10'000};
};

}  // namespace qswitch::io
