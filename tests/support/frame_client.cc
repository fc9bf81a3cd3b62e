// tests/support/frame_client.cc: see frame_client.h.
#include "tests/support/frame_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <utility>

#include "tests/support/test_frames.h"

namespace qswitch::test_support {
namespace {

using Clock = std::chrono::steady_clock;

// Largest length the client accepts from the switch: the contract's maximum frame.
constexpr uint32_t kMaxAcceptedLength = kMaxFrameSize;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A parsed address (unix:PATH, tcp:HOST:PORT), as sockaddr.
struct Address {
  sockaddr_storage storage{};
  socklen_t size = 0;
  int family = AF_UNSPEC;
  std::string unix_path;
};

bool parse_socket_address(const std::string& address, Address* out, std::string* error) {
  if (address.rfind("unix:", 0) == 0) {
    std::string path = address.substr(5);
    sockaddr_un sun{};
    if (path.empty() || path.size() >= sizeof sun.sun_path) {
      *error = "unix path empty or too long: " + address;
      return false;
    }
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    std::memcpy(&out->storage, &sun, sizeof sun);
    out->size = sizeof sun;
    out->family = AF_UNIX;
    out->unix_path = path;
    return true;
  }
  if (address.rfind("tcp:", 0) == 0) {
    std::string rest = address.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) {
      *error = "tcp address without port: " + address;
      return false;
    }
    std::string host = rest.substr(0, colon);
    std::string port = rest.substr(colon + 1);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p < 0 || p > 65535 ||
        inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
      *error = "bad tcp address (want tcp:IPV4:PORT): " + address;
      return false;
    }
    sin.sin_port = htons(static_cast<uint16_t>(p));
    std::memcpy(&out->storage, &sin, sizeof sin);
    out->size = sizeof sin;
    out->family = AF_INET;
    return true;
  }
  *error = "address must be unix:PATH or tcp:HOST:PORT: " + address;
  return false;
}

bool wait_fd(int fd, short events, Millis timeout) {
  pollfd p{fd, events, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  return n > 0;
}

}  // namespace

const char* to_string(RecvResult::Status status) {
  switch (status) {
    case RecvResult::Status::kFrame:
      return "frame";
    case RecvResult::Status::kTimeout:
      return "timeout";
    case RecvResult::Status::kEof:
      return "eof";
    case RecvResult::Status::kError:
      return "error";
    case RecvResult::Status::kBadLength:
      return "bad-length";
  }
  return "?";
}

std::optional<FrameClient> FrameClient::connect(const std::string& address, std::string* error,
                                                Millis timeout) {
  return connect(address, Options{}, error, timeout);
}

std::optional<FrameClient> FrameClient::connect(const std::string& address, const Options& options,
                                                std::string* error, Millis timeout) {
  Address addr;
  if (!parse_socket_address(address, &addr, error)) return std::nullopt;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int fd = ::socket(addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = errno_text("socket");
      return std::nullopt;
    }
    if (options.rcvbuf_size > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.rcvbuf_size, sizeof options.rcvbuf_size);
    }
    if (options.sndbuf_size > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &options.sndbuf_size, sizeof options.sndbuf_size);
    }
    if (addr.family == AF_INET) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.size);
    if (rc == 0) return FrameClient(fd);
    if (errno == EINPROGRESS) {
      if (wait_fd(fd, POLLOUT, time_left(deadline))) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) return FrameClient(fd);
        errno = err;
      } else {
        errno = ETIMEDOUT;
      }
    }
    *error = errno_text(("connect " + address).c_str());
    const bool retry = errno == EAGAIN || errno == ECONNREFUSED || errno == ENOENT;
    ::close(fd);
    if (!retry || time_left(deadline).count() == 0) return std::nullopt;
    std::this_thread::sleep_for(Millis(10));
  }
}

FrameClient::FrameClient(int fd) : fd_(fd) {
  int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  ::fcntl(fd_, F_SETFD, FD_CLOEXEC);
}

FrameClient::~FrameClient() { close(); }

FrameClient::FrameClient(FrameClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      rx_(std::move(other.rx_)),
      rx_begin_(other.rx_begin_),
      rx_end_(other.rx_end_),
      last_error_(std::move(other.last_error_)) {}

FrameClient& FrameClient::operator=(FrameClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    rx_ = std::move(other.rx_);
    rx_begin_ = other.rx_begin_;
    rx_end_ = other.rx_end_;
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

void FrameClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void FrameClient::append_wire(std::vector<uint8_t>* out, std::span<const uint8_t> frame) {
  const auto n = static_cast<uint32_t>(frame.size());
  out->push_back(static_cast<uint8_t>(n >> 24));
  out->push_back(static_cast<uint8_t>(n >> 16));
  out->push_back(static_cast<uint8_t>(n >> 8));
  out->push_back(static_cast<uint8_t>(n));
  out->insert(out->end(), frame.begin(), frame.end());
}

bool FrameClient::send_frame(std::span<const uint8_t> frame, Millis timeout) {
  std::vector<uint8_t> wire;
  wire.reserve(frame.size() + 4);
  append_wire(&wire, frame);
  return send_raw(wire, timeout);
}

bool FrameClient::send_raw(std::span<const uint8_t> bytes, Millis timeout) {
  if (fd_ < 0) {
    last_error_ = "send on closed client";
    return false;
  }
  const auto deadline = Clock::now() + timeout;
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Millis left = time_left(deadline);
      if (left.count() == 0 || !wait_fd(fd_, POLLOUT, left)) {
        last_error_ = "send timed out after " + std::to_string(done) + " of " +
                      std::to_string(bytes.size()) + " bytes";
        return false;
      }
      continue;
    }
    last_error_ = errno_text("send");
    return false;
  }
  return true;
}

bool FrameClient::take_frame(RecvResult* out) {
  const size_t avail = rx_end_ - rx_begin_;
  if (avail < 4) return false;
  const uint8_t* p = rx_.data() + rx_begin_;
  const uint32_t len =
      (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
  if (len == 0 || len > kMaxAcceptedLength) {
    out->status = RecvResult::Status::kBadLength;
    out->error = "switch sent frame length " + std::to_string(len);
    out->frame.clear();
    return true;
  }
  if (avail < 4 + size_t{len}) return false;
  out->status = RecvResult::Status::kFrame;
  out->frame.assign(p + 4, p + 4 + len);
  rx_begin_ += 4 + len;
  if (rx_begin_ == rx_end_) rx_begin_ = rx_end_ = 0;
  return true;
}

int FrameClient::fill(Millis timeout) {
  if (fd_ < 0) {
    last_error_ = "recv on closed client";
    return -2;
  }
  // Keep room for one maximal wire frame plus a burst.
  constexpr size_t kRoom = 4 + kMaxFrameSize + 65536;
  if (rx_begin_ > 0 && rx_.size() - rx_end_ < kRoom) {
    std::memmove(rx_.data(), rx_.data() + rx_begin_, rx_end_ - rx_begin_);
    rx_end_ -= rx_begin_;
    rx_begin_ = 0;
  }
  if (rx_.size() - rx_end_ < kRoom) rx_.resize(rx_end_ + kRoom);
  for (;;) {
    ssize_t n = ::recv(fd_, rx_.data() + rx_end_, rx_.size() - rx_end_, 0);
    if (n > 0) {
      rx_end_ += static_cast<size_t>(n);
      return 1;
    }
    if (n == 0) return -1;
    if (errno == EINTR) continue;
    if (errno == ECONNRESET) return -1;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      last_error_ = errno_text("recv");
      return -2;
    }
    if (timeout.count() <= 0 || !wait_fd(fd_, POLLIN, timeout)) return 0;
    timeout = Millis(0);  // poll said readable: one more recv, then report
  }
}

RecvResult FrameClient::recv_frame(Millis timeout) {
  RecvResult r;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (take_frame(&r)) return r;
    int got = fill(time_left(deadline));
    if (got == 1) continue;
    if (got == 0) {
      if (time_left(deadline).count() > 0) continue;
      r.status = RecvResult::Status::kTimeout;
      return r;
    }
    r.status = got == -1 ? RecvResult::Status::kEof : RecvResult::Status::kError;
    r.error = got == -1 ? "eof" : last_error_;
    return r;
  }
}

bool FrameClient::wait_eof(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    rx_begin_ = rx_end_ = 0;  // discard
    int got = fill(time_left(deadline));
    if (got == -1) return true;
    if (got == -2) return false;
    if (got == 0 && time_left(deadline).count() == 0) return false;
  }
}

size_t FrameClient::drain(Millis window) {
  size_t count = 0;
  const auto deadline = Clock::now() + window;
  for (;;) {
    RecvResult r = recv_frame(time_left(deadline));
    if (!r.ok()) return count;
    ++count;
  }
}

std::optional<FrameListener> FrameListener::listen(const std::string& address, std::string* error) {
  Address addr;
  if (!parse_socket_address(address, &addr, error)) return std::nullopt;
  int fd = ::socket(addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno_text("socket");
    return std::nullopt;
  }
  if (addr.family == AF_UNIX) ::unlink(addr.unix_path.c_str());
  if (addr.family == AF_INET) {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr.storage), addr.size) != 0 ||
      ::listen(fd, 512) != 0) {
    *error = errno_text(("bind/listen " + address).c_str());
    ::close(fd);
    return std::nullopt;
  }
  FrameListener l;
  l.fd_ = fd;
  l.address_ = address;
  l.unix_path_ = addr.unix_path;
  if (addr.family == AF_INET) {
    sockaddr_in sin{};
    socklen_t len = sizeof sin;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    char host[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &sin.sin_addr, host, sizeof host);
    l.address_ = std::string("tcp:") + host + ":" + std::to_string(ntohs(sin.sin_port));
  }
  return l;
}

FrameListener::~FrameListener() { close(); }

FrameListener::FrameListener(FrameListener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      address_(std::move(other.address_)),
      unix_path_(std::exchange(other.unix_path_, std::string())) {}

FrameListener& FrameListener::operator=(FrameListener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    address_ = std::move(other.address_);
    unix_path_ = std::exchange(other.unix_path_, std::string());
  }
  return *this;
}

std::optional<FrameClient> FrameListener::accept(Millis timeout, std::string* error) {
  if (fd_ < 0) {
    *error = "accept on closed listener";
    return std::nullopt;
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return FrameClient(c);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = errno_text("accept");
      return std::nullopt;
    }
    Millis left = time_left(deadline);
    if (left.count() == 0 || !wait_fd(fd_, POLLIN, left)) {
      *error =
          "no connection on " + address_ + " within " + std::to_string(timeout.count()) + " ms";
      return std::nullopt;
    }
  }
}

void FrameListener::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  unix_path_.clear();
}

}  // namespace qswitch::test_support
