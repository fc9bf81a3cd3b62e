// backends/stream/stream_port.cc: see the header.
#include "backends/stream/stream_port.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qswitch::backends {

namespace {
constexpr int kReadsPerWake = 8;
constexpr int kMaxIov = IOV_MAX;
}  // namespace

StreamPort::StreamPort(SwitchLoop& loop, io::Fd fd, std::string peer)
    : LoopPort(loop), fd_(std::move(fd)), peer_(std::move(peer)), tx_(loop.config().queue_size) {
  rx_.set_pressure(&loop.fabric());
  uv_poll_init_socket(loop.uv(), poll_.get(), fd_.get());
  poll_.get()->data = this;
  update_poll();
}

StreamPort::~StreamPort() = default;

void StreamPort::update_poll() {
  if (closed()) return;
  const int events = (read_paused_ ? 0 : UV_READABLE) | (want_write_ ? UV_WRITABLE : 0);
  io::set_poll_events(poll_.get(), poll_events_, events, [](uv_poll_t* h, int status, int ev) {
    if (h->data != nullptr) static_cast<StreamPort*>(h->data)->on_poll(status, ev);
  });
}

void StreamPort::on_poll(int status, int events) {
  if (status < 0) {
    close(std::string("poll error: ") + uv_strerror(status));
    return;
  }
  if ((events & UV_WRITABLE) != 0) {
    flush();
    if (closed()) return;
  }
  if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) read_some();
}

bool StreamPort::read_some() {
  for (int i = 0; i < kReadsPerWake; ++i) {
    std::span<uint8_t> space = rx_.write_space();
    if (space.empty()) {
      // Every receive chunk is still queued on some output: stop reading this peer (TCP/unix
      // flow control pushes back on it) until the outputs drain.
      counters_.rx_paused += 1;
      read_paused_ = true;
      update_poll();
      loop_.pause_read(*this);
      return true;
    }
    const ssize_t n = ::read(fd_.get(), space.data(), space.size());
    if (n == 0) {
      close("peer closed");
      return false;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return true;
      close(std::string("read error: ") + std::strerror(errno));
      return false;
    }
    size_t count = 0;
    const auto status = rx_.commit(static_cast<size_t>(n), loop_.burst(), count);
    if (!forward_buffered(status, count)) return false;
    if (throttled_by_ != sw::kNoPort) return true;
    if (static_cast<size_t>(n) < space.size()) return true;  // drained the socket
  }
  return true;
}

bool StreamPort::forward_buffered(sw::StreamRxBuffer::Status status, size_t count) {
  for (;;) {
    if (count > 0) {
      const sw::PortId congested = loop_.fabric().receive(*this, loop_.burst().first(count), loop_.now());
      if (congested != sw::kNoPort && throttled_by_ == sw::kNoPort) throttle(congested);
    }
    if (status == sw::StreamRxBuffer::Status::kBadLength) {
      counters_.drop_bad_length += 1;
      close("protocol error: frame length " + std::to_string(rx_.bad_length()) + " outside " +
            std::to_string(sw::kMinFrameSize) + ".." + std::to_string(sw::kMaxFrameSize));
      return false;
    }
    if (count < loop_.burst().size()) return true;
    count = 0;
    status = rx_.drain(loop_.burst(), count);
  }
}

void StreamPort::throttle(sw::PortId by) {
  // Frames already read are forwarded (they fit: congestion starts at half the queue); reading
  // more waits until `by` drains or stops being congested.
  throttled_by_ = by;
  counters_.rx_throttled += 1;
  read_paused_ = true;
  update_poll();
  loop_.pause_read(*this);
}

bool StreamPort::congested(sw::Millis now) {
  return output_congested(tx_, now);
}

bool StreamPort::retry_paused_read() {
  if (still_throttled(throttled_by_)) return true;
  if (rx_.write_space().empty()) return true;  // still nothing free: stay paused
  read_paused_ = false;
  update_poll();
  return false;
}

void StreamPort::enqueue(const sw::Frame& frame) {
  if (closed()) return;
  queue_output(tx_, frame);
}

void StreamPort::flush() {
  if (closed()) return;
  iovec iov[kMaxIov];
  while (!tx_.empty()) {
    const int n = tx_.fill_iov(iov, kMaxIov);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t written = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      close(std::string("write error: ") + std::strerror(errno));
      return;
    }
    if (written > 0) output_progressed();
    const sw::StreamTxQueue::Written w = tx_.consume(static_cast<size_t>(written));
    counters_.tx_frames += w.frames;
    counters_.tx_bytes += w.bytes;
  }
  const bool want = !tx_.empty();
  if (want != want_write_) {
    want_write_ = want;
    update_poll();
  }
}

uint64_t StreamPort::shutdown_io() {
  poll_.get()->data = nullptr;
  uv_poll_stop(poll_.get());
  poll_.close();
  fd_.reset();
  return tx_.clear();
}

}  // namespace qswitch::backends
