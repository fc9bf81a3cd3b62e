// backends/runtime/polled_port.cc: see the header.
#include "backends/runtime/polled_port.h"

#include <string>

namespace qswitch::backends {

PolledPort::PolledPort(SwitchLoop& loop, io::Fd fd, FdKind kind)
    : LoopPort(loop), fd_(std::move(fd)) {
  if (kind == FdKind::kSocket) {
    uv_poll_init_socket(loop.uv(), poll_.get(), fd_.get());
  } else {
    uv_poll_init(loop.uv(), poll_.get(), fd_.get());
  }
  poll_.get()->data = this;
  update_poll();
}

void PolledPort::update_poll() {
  if (closed()) return;
  const int events = (read_paused_ ? 0 : UV_READABLE) | (want_write_ ? UV_WRITABLE : 0);
  io::set_poll_events(poll_.get(), poll_events_, events, [](uv_poll_t* h, int status, int ev) {
    if (h->data != nullptr) static_cast<PolledPort*>(h->data)->on_poll(status, ev);
  });
}

void PolledPort::on_poll(int status, int events) {
  if (status < 0) {
    on_poll_error(status);
    return;
  }
  if ((events & UV_WRITABLE) != 0) {
    flush();
    if (closed()) return;
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) read_some();
}

void PolledPort::on_poll_error(int status) {
  close(std::string("poll error: ") + uv_strerror(status));
}

void PolledPort::repoll() {
  poll_events_ = 0;
  update_poll();
}

void PolledPort::set_want_write(bool want) {
  if (want == want_write_) return;
  want_write_ = want;
  update_poll();
}

void PolledPort::pause_reading() {
  read_paused_ = true;
  update_poll();
  loop_.pause_read(*this);
}

void PolledPort::out_of_chunks() {
  counters_.rx_paused += 1;
  pause_reading();
}

void PolledPort::throttle(sw::PortId by) {
  // Frames already read are forwarded (they fit: congestion starts at half the queue); reading
  // more waits until `by` drains or stops being congested.
  throttled_by_ = by;
  counters_.rx_throttled += 1;
  pause_reading();
}

bool PolledPort::retry_paused_read() {
  if (still_throttled(throttled_by_)) return true;
  if (!can_read()) return true;  // still nothing free: stay paused
  read_paused_ = false;
  update_poll();
  return false;
}

uint64_t PolledPort::shutdown_io() {
  poll_.get()->data = nullptr;
  uv_poll_stop(poll_.get());
  poll_.close();
  fd_.reset();
  return drop_output();
}

}  // namespace qswitch::backends
