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
    : PolledPort(loop, std::move(fd), FdKind::kSocket),
      peer_(std::move(peer)),
      tx_(loop.config().queue_size, &loop.staging()) {
  rx_.set_pressure(&loop.fabric());
  set_takes_split(true);  // written with writev (StreamTxQueue)
}

StreamPort::~StreamPort() = default;

void StreamPort::read_some() {
  for (int i = 0; i < kReadsPerWake; ++i) {
    std::span<uint8_t> space = rx_.write_space();
    if (space.empty()) {
      // Every receive chunk is still queued on some output: stop reading this peer (TCP/unix
      // flow control pushes back on it) until the outputs drain.
      out_of_chunks();
      return;
    }
    const ssize_t n = ::read(fd(), space.data(), space.size());
    if (n == 0) {
      close("peer closed");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      close(std::string("read error: ") + std::strerror(errno));
      return;
    }
    if (first_bytes_seen_ < sizeof first_bytes_ &&
        refused_control_request({space.data(), static_cast<size_t>(n)})) {
      return;
    }
    size_t count = 0;
    const auto status = rx_.commit(static_cast<size_t>(n), loop_.burst(), count);
    if (!forward_buffered(status, count)) return;
    if (throttled_by() != sw::kNoPort) return;
    if (static_cast<size_t>(n) < space.size()) return;  // drained the socket
  }
}

bool StreamPort::refused_control_request(std::span<const uint8_t> bytes) {
  for (size_t i = 0; i < bytes.size() && first_bytes_seen_ < sizeof first_bytes_; ++i) {
    first_bytes_[first_bytes_seen_++] = bytes[i];
  }
  if (first_bytes_[0] != '{' || (first_bytes_seen_ == 2 && first_bytes_[1] != '"')) {
    first_bytes_seen_ = sizeof first_bytes_;  // a frame's length prefix: never look again
    return false;
  }
  if (first_bytes_seen_ < sizeof first_bytes_) return false;  // '{' alone: wait for the next byte
  control_requests_ += 1;
  // Best effort, one short write: the send buffer holds at most flooded frames queued for the
  // peer before it wrote anything (a control client reads those as garbage before the reply).
  const size_t reply_size = std::strlen(kControlRequestReply);
  [[maybe_unused]] const ssize_t sent =
      ::send(fd(), kControlRequestReply, reply_size, MSG_NOSIGNAL | MSG_DONTWAIT);
  // Read what is left of the request (bounded), so that closing does not reset a TCP connection
  // before the peer has read the reply.
  uint8_t discard[512];
  for (int i = 0; i < kReadsPerWake; ++i) {
    if (::read(fd(), discard, sizeof discard) <= 0) break;
  }
  ::shutdown(fd(), SHUT_WR);
  close(
      "a control request (JSON) was written to this data socket (QEMU -netdev stream); told the "
      "client to use the control socket (printed at start as \"control unix:PATH\")");
  return true;
}

void StreamPort::for_each_extra_counter(const ExtraCounterFn& f) const {
  f({"drop_control_request",
     "Control requests (JSON) written to this data socket by mistake: answered with an error "
     "pointing at the control socket, and the port closed."},
    control_requests_);
}

bool StreamPort::forward_buffered(sw::StreamRxBuffer::Status status, size_t count) {
  for (;;) {
    if (count > 0) {
      const sw::PortId congested =
          loop_.fabric().receive(*this, loop_.burst().first(count), loop_.now());
      if (congested != sw::kNoPort && throttled_by() == sw::kNoPort) throttle(congested);
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

bool StreamPort::congested(sw::Millis now) { return output_congested(tx_, now); }

void StreamPort::enqueue(const sw::Frame& frame) {
  if (closed()) return;
  queue_output(tx_, frame);
}

void StreamPort::enqueue_burst(std::span<const sw::Frame> frames) {
  if (closed()) return;
  queue_output_burst(tx_, frames);
}

void StreamPort::flush() {
  if (closed()) return;
  iovec iov[kMaxIov];
  while (!tx_.empty()) {
    size_t described = 0;
    const int n = tx_.fill_iov(iov, kMaxIov, described);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t written = ::sendmsg(fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (written < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      close(std::string("write error: ") + std::strerror(errno));
      return;
    }
    if (written > 0) output_progressed();
    const sw::StreamTxQueue::Written w = tx_.consume(static_cast<size_t>(written));
    counters_.tx_frames += w.frames;
    counters_.tx_bytes += w.bytes;
    // A short write: the socket's buffer is full, so another sendmsg now would only meet EAGAIN.
    if (static_cast<size_t>(written) < described) break;
  }
  set_want_write(!tx_.empty());
}

}  // namespace qswitch::backends
