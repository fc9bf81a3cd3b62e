// backends/runtime/io/fd.h: a move-only owner of a file descriptor (Seastar's file_desc).
#pragma once

#include <utility>

namespace qswitch::io {

class Fd {
 public:
  Fd() = default;
  static Fd adopt(int fd) { return Fd(fd); }
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset();

 private:
  explicit Fd(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace qswitch::io
