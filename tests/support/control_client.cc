// tests/support/control_client.cc: see control_client.h.
#include "tests/support/control_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <utility>

namespace qswitch::test_support {
namespace {

using Clock = std::chrono::steady_clock;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

const char* to_string(LineResult::Status status) {
  switch (status) {
    case LineResult::Status::kLine:
      return "line";
    case LineResult::Status::kTimeout:
      return "timeout";
    case LineResult::Status::kEof:
      return "eof";
    case LineResult::Status::kError:
      return "error";
    case LineResult::Status::kTooLong:
      return "too-long";
  }
  return "?";
}

std::optional<ControlClient> ControlClient::connect(const std::string& path_or_address,
                                                    std::string* error, Millis timeout) {
  std::string path = path_or_address;
  if (path.rfind("unix:", 0) == 0) path = path.substr(5);
  sockaddr_un sun{};
  if (path.empty() || path.size() >= sizeof sun.sun_path) {
    *error = "control socket path empty or too long: " + path;
    return std::nullopt;
  }
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = errno_text("socket");
      return std::nullopt;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sun), sizeof sun) == 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      return ControlClient(fd);
    }
    const int err = errno;
    ::close(fd);
    if ((err != ECONNREFUSED && err != ENOENT && err != EAGAIN) ||
        time_left(deadline).count() == 0) {
      *error = "connect " + path + ": " + std::strerror(err);
      return std::nullopt;
    }
    std::this_thread::sleep_for(Millis(20));
  }
}

ControlClient::~ControlClient() { close(); }

ControlClient::ControlClient(ControlClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      rx_(std::move(other.rx_)),
      last_error_(std::move(other.last_error_)) {}

ControlClient& ControlClient::operator=(ControlClient&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    rx_ = std::move(other.rx_);
    last_error_ = std::move(other.last_error_);
  }
  return *this;
}

void ControlClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  rx_.clear();
}

bool ControlClient::send_raw(std::string_view bytes, Millis timeout) {
  if (fd_ < 0) {
    last_error_ = "send: not connected";
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
    if (n < 0 && errno != EAGAIN) {
      last_error_ = errno_text("send");
      return false;
    }
    Millis left = time_left(deadline);
    if (left.count() == 0) {
      last_error_ = "send: timed out after " + std::to_string(done) + " of " +
                    std::to_string(bytes.size()) + " bytes";
      return false;
    }
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
  return true;
}

bool ControlClient::send_line(std::string_view line, Millis timeout) {
  std::string with_nl(line);
  with_nl += '\n';
  return send_raw(with_nl, timeout);
}

bool ControlClient::send_line_with_fd(std::string_view line, int pass, Millis timeout) {
  if (fd_ < 0) {
    last_error_ = "send: not connected";
    return false;
  }
  std::string with_nl(line);
  with_nl += '\n';
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    iovec iov{with_nl.data(), with_nl.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cm), &pass, sizeof pass);
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      // The fd went with the first byte; the rest of the line (if any) follows plainly.
      const auto sent = static_cast<size_t>(n);
      return sent == with_nl.size() ||
             send_raw(std::string_view(with_nl).substr(sent), time_left(deadline));
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) {
      last_error_ = errno_text("sendmsg");
      return false;
    }
    const Millis left = time_left(deadline);
    if (left.count() == 0) {
      last_error_ = "sendmsg: timed out";
      return false;
    }
    pollfd p{fd_, POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}

LineResult ControlClient::read_line(Millis timeout, size_t max_size) {
  LineResult r;
  if (fd_ < 0) {
    r.status = LineResult::Status::kError;
    r.error = "not connected";
    return r;
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const size_t nl = rx_.find('\n');
    if (nl != std::string::npos) {
      r.status = LineResult::Status::kLine;
      r.line = rx_.substr(0, nl);
      rx_.erase(0, nl + 1);
      return r;
    }
    if (rx_.size() > max_size) {
      r.status = LineResult::Status::kTooLong;
      r.error = "reply line longer than " + std::to_string(max_size) + " bytes";
      return r;
    }
    char buf[8192];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      rx_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      r.status = LineResult::Status::kEof;
      r.error = rx_.empty() ? "EOF" : "EOF after a partial line: " + rx_.substr(0, 200);
      return r;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      r.status = LineResult::Status::kError;
      r.error = errno_text("recv");
      return r;
    }
    Millis left = time_left(deadline);
    if (left.count() == 0) {
      r.status = LineResult::Status::kTimeout;
      r.error = "no reply line within " + std::to_string(timeout.count()) + " ms";
      return r;
    }
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
  }
}

LineResult ControlClient::request(std::string_view line, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!send_line(line, timeout)) {
    LineResult r;
    r.status = LineResult::Status::kError;
    r.error = last_error_;
    return r;
  }
  return read_line(time_left(deadline));
}

}  // namespace qswitch::test_support
