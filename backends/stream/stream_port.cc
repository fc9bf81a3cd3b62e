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
      tx_(loop.config().queue_size) {
  rx_.set_pressure(&loop.fabric());
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
    size_t count = 0;
    const auto status = rx_.commit(static_cast<size_t>(n), loop_.burst(), count);
    if (!forward_buffered(status, count)) return;
    if (throttled_by() != sw::kNoPort) return;
    if (static_cast<size_t>(n) < space.size()) return;  // drained the socket
  }
}

bool StreamPort::forward_buffered(sw::StreamRxBuffer::Status status, size_t count) {
  for (;;) {
    if (count > 0) {
      const sw::PortId congested = loop_.fabric().receive(*this, loop_.burst().first(count), loop_.now());
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

bool StreamPort::congested(sw::Millis now) {
  return output_congested(tx_, now);
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
  }
  set_want_write(!tx_.empty());
}

}  // namespace qswitch::backends
