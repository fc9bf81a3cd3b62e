// backends/io/served_client.h: the accept/client skeleton the control and metrics servers share.
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
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/io/fd.h"
#include "backends/io/uv_handle.h"

namespace qswitch::io {

class ServedClient {
 public:
  static constexpr size_t kKeepCapacity = 64 * 1024;  // buffers above this are given back

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

}  // namespace qswitch::io
