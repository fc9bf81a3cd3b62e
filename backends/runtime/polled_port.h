// backends/runtime/polled_port.h: the skeleton every port on one pollable fd shares (stream, tap,
// VXLAN): the poll handle, paused reading and its retry, closing on a poll error, shutdown.
//
// Theory of operation
// - One fd, one uv_poll handle. The handle watches UV_READABLE unless reading is paused, and
//   UV_WRITABLE while output waits (flush() says so with set_want_write()). Every change is one
//   epoll_ctl, and none is made when nothing changes (io::set_poll_events); nothing is watched
//   once the port is closed.
// - A wake-up: a poll error goes to on_poll_error() (by default the port closes, "poll error:
//   ..."); otherwise writable runs flush() first (sending frees the chunks reads may need), then,
//   unless that closed the port, readable runs read_some().
// - Reading pauses when every receive chunk is held by output queues (out_of_chunks(): counts
//   rx_paused) or when a unicast destination is congested (throttle(): counts rx_throttled). Both
//   put the port on the loop's paused list (SwitchLoop::pause_read()); retry_paused_read(), from
//   the check phase, resumes reading once the destination is not congested any more and
//   can_read() says the receive side has room again.
// - Shutdown (LoopPort::close()): the poll handle is stopped and closed, so its callback never
//   reaches a port that is gone, the fd is closed, then drop_output() releases the queued output.
#pragma once

#include <uv.h>

#include <cstdint>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends {

class PolledPort : public LoopPort {
 public:
  bool retry_paused_read() final;

 protected:
  // How the fd is polled: uv_poll_init_socket for sockets, uv_poll_init for others (a tap).
  enum class FdKind { kSocket, kOther };
  // Starts watching `fd` (readable) at once.
  PolledPort(SwitchLoop& loop, io::Fd fd, FdKind kind);
  ~PolledPort() override = default;

  int fd() const { return fd_.get(); }
  // Reads a burst (called when the fd is readable).
  virtual void read_some() = 0;
  // The receive side has room for a read (retry_paused_read() resumes only then).
  virtual bool can_read() = 0;
  // libuv reported `status` < 0 for the fd; the default closes the port.
  virtual void on_poll_error(int status);
  // I/O has stopped for good: drop the queued output; returns how many frames were dropped.
  virtual uint64_t drop_output() = 0;

  // Output waits (watch UV_WRITABLE) or not.
  void set_want_write(bool want);
  // Every receive chunk is held by output queues: stop reading until they drain.
  void out_of_chunks();
  // Unicast destination `by` is congested: stop reading until it is not.
  void throttle(sw::PortId by);
  sw::PortId throttled_by() const { return throttled_by_; }
  bool read_paused() const { return read_paused_; }
  // libuv stopped the handle on an error (EPOLLERR): watch again what should be watched.
  void repoll();

 private:
  uint64_t shutdown_io() final;
  void pause_reading();
  void update_poll();
  void on_poll(int status, int events);

  io::Fd fd_;
  io::UvHandle<uv_poll_t> poll_;  // after fd_: closed (and stopped) before the fd
  int poll_events_ = 0;
  bool read_paused_ = false;
  bool want_write_ = false;
  sw::PortId throttled_by_ = sw::kNoPort;
};

}  // namespace qswitch::backends
