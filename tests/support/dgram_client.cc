// tests/support/dgram_client.cc: see the header.
#include "tests/support/dgram_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace qswitch::test_support {

namespace {

bool make_addr(const std::string& text, int family_hint, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  if (family_hint == AF_UNIX) {
    auto& un = reinterpret_cast<sockaddr_un&>(ss);
    if (text.size() >= sizeof un.sun_path) return false;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, text.data(), text.size());
    len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + text.size() + 1);
    return true;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  if (family_hint == AF_INET6) {  // "[V6]:PORT"
    if (text.size() < 2 || text[0] != '[' || colon < 2 || text[colon - 1] != ']') return false;
    auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(static_cast<uint16_t>(std::stoi(text.substr(colon + 1))));
    if (inet_pton(AF_INET6, text.substr(1, colon - 2).c_str(), &in6.sin6_addr) != 1) return false;
    len = sizeof in6;
    return true;
  }
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  in.sin_family = AF_INET;
  in.sin_port = htons(static_cast<uint16_t>(std::stoi(text.substr(colon + 1))));
  if (inet_pton(AF_INET, text.substr(0, colon).c_str(), &in.sin_addr) != 1) return false;
  len = sizeof in;
  return true;
}

}  // namespace

std::optional<DgramClient> DgramClient::open(const std::string& local, const std::string& remote,
                                             std::string* error) {
  DgramClient c;
  int family;
  std::string target;
  if (remote.rfind("unix:", 0) == 0) {
    family = AF_UNIX;
    target = remote.substr(5);
  } else if (remote.rfind("udp:", 0) == 0) {
    target = remote.substr(4);
    family = target.rfind("[", 0) == 0 ? AF_INET6 : AF_INET;
  } else {
    *error = "remote must be unix:PATH or udp:HOST:PORT, not " + remote;
    return std::nullopt;
  }
  sockaddr_storage ss;
  socklen_t len;
  if (!make_addr(target, family, c.remote_, c.remote_len_) || !make_addr(local, family, ss, len)) {
    *error = "bad address " + local + " / " + remote;
    return std::nullopt;
  }
  c.fd_ = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd_ < 0 || ::bind(c.fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    *error = "bind " + local + ": " + std::strerror(errno);
    return std::nullopt;
  }
  const int size = 4 << 20;
  ::setsockopt(c.fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (family == AF_UNIX) {
    c.unlink_path_ = local;
    c.name_ = "unixgram:" + local;
  } else if (family == AF_INET6) {
    sockaddr_in6 in6{};
    socklen_t in6_len = sizeof in6;
    ::getsockname(c.fd_, reinterpret_cast<sockaddr*>(&in6), &in6_len);
    char host[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    c.name_ = "udp:[" + std::string(host) + "]:" + std::to_string(ntohs(in6.sin6_port));
  } else {
    sockaddr_in in{};
    socklen_t in_len = sizeof in;
    ::getsockname(c.fd_, reinterpret_cast<sockaddr*>(&in), &in_len);
    char host[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &in.sin_addr, host, sizeof host);
    c.name_ = "udp:" + std::string(host) + ":" + std::to_string(ntohs(in.sin_port));
  }
  return c;
}

DgramClient::~DgramClient() { close(); }

DgramClient::DgramClient(DgramClient&& o) noexcept { *this = std::move(o); }

DgramClient& DgramClient::operator=(DgramClient&& o) noexcept {
  if (this != &o) {
    close();
    fd_ = std::exchange(o.fd_, -1);
    remote_ = o.remote_;
    remote_len_ = o.remote_len_;
    unlink_path_ = std::exchange(o.unlink_path_, "");
    name_ = o.name_;
  }
  return *this;
}

void DgramClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!unlink_path_.empty()) ::unlink(unlink_path_.c_str());
  unlink_path_.clear();
}

bool DgramClient::send_raw(std::span<const uint8_t> bytes) {
  const ssize_t n = ::sendto(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL,
                             reinterpret_cast<sockaddr*>(&remote_), remote_len_);
  if (n < 0) {
    last_error_ = std::strerror(errno);
    return false;
  }
  return true;
}

RecvResult DgramClient::recv_frame(Millis timeout) {
  RecvResult r;
  static thread_local std::vector<uint8_t> buf(1 << 17);
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready == 0) return r;
  const ssize_t n = ready > 0 ? ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT) : -1;
  if (n < 0) {
    r.status = RecvResult::Status::kError;
    r.error = std::strerror(errno);
    return r;
  }
  r.status = RecvResult::Status::kFrame;
  r.frame.assign(buf.begin(), buf.begin() + n);
  return r;
}

size_t DgramClient::drain(Millis window) {
  size_t count = 0;
  const auto deadline = std::chrono::steady_clock::now() + window;
  for (int i = 0; i < 1'000'000; ++i) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (!recv_frame(left).ok()) break;
    ++count;
  }
  return count;
}

}  // namespace qswitch::test_support
