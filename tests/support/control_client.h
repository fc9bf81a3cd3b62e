// tests/support/control_client.h: one client of qswitch's control socket: JSON lines over a unix
// stream socket, one reply line per request.
//
// Theory of operation
// - The socket is non-blocking and every call takes a timeout, so a test never hangs on a server
//   that does not answer. Writes use MSG_NOSIGNAL: a server that closed the connection gives an
//   error, not SIGPIPE.
// - Replies are cut at '\n' from a receive buffer; bytes after a line stay for the next
//   read_line(). A line longer than `max_size` is reported as kTooLong (a server bug: replies are
//   short), never buffered without bound.
// - It knows nothing about JSON: tests parse and build the text themselves (nlohmann::json), so a
//   malformed request can be sent byte for byte.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace qswitch::test_support {

using Millis = std::chrono::milliseconds;

struct LineResult {
  enum class Status { kLine, kTimeout, kEof, kError, kTooLong };
  Status status = Status::kTimeout;
  std::string line;   // without the '\n', when status == kLine
  std::string error;  // errno text, for messages

  bool ok() const { return status == Status::kLine; }
};
const char* to_string(LineResult::Status status);

class ControlClient {
 public:
  // Connects to "unix:PATH" or a plain PATH, retrying refused/missing until `timeout`.
  static std::optional<ControlClient> connect(const std::string& path, std::string* error,
                                              Millis timeout = Millis(3000));
  ControlClient() = default;
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ControlClient(ControlClient&& other) noexcept;
  ControlClient& operator=(ControlClient&& other) noexcept;

  bool is_open() const { return fd_ >= 0; }
  void close();

  // Writes the bytes as they are. False (with last_error()) on error or timeout.
  bool send_raw(std::string_view bytes, Millis timeout = Millis(5000));
  // Writes `line` and '\n'.
  bool send_line(std::string_view line, Millis timeout = Millis(5000));
  // Writes `line` and '\n' with `fd` attached (SCM_RIGHTS) to the first bytes, as `qswitch exec`
  // sends port.attach. The caller keeps (and closes) its own copy of `fd`.
  bool send_line_with_fd(std::string_view line, int fd, Millis timeout = Millis(5000));
  // The next reply line.
  LineResult read_line(Millis timeout = Millis(5000), size_t max_size = 1 << 20);
  // send_line + read_line.
  LineResult request(std::string_view line, Millis timeout = Millis(5000));

  const std::string& last_error() const { return last_error_; }

 private:
  explicit ControlClient(int fd) : fd_(fd) {}

  int fd_ = -1;
  std::string rx_;
  std::string last_error_;
};

}  // namespace qswitch::test_support
