// tests/support/frame_client.h: one peer of qswitch over a stream socket, in QEMU's framing.
//
// Theory of operation
// - The wire format is QEMU net/stream.c's: a 4-byte big-endian length, then the Ethernet frame
//   without FCS. FrameClient speaks it over a unix: or tcp: stream socket, as a QEMU guest would.
// - The socket is non-blocking; every call takes a timeout and polls, so a test can never hang
//   on a misbehaving switch. Received bytes accumulate in a buffer and are cut into frames there;
//   a length outside 1..65549+ slack from the switch is reported as kBadLength (a switch bug).
// - send_raw() writes arbitrary bytes (garbage, bad lengths, a frame one byte at a time), using
//   MSG_NOSIGNAL so a port the switch closed gives an error instead of SIGPIPE.
// - FrameListener is the other direction: a unix: or tcp: listener the test owns, for
//   qswitch --connect to dial; accept() hands back a FrameClient.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qswitch::test_support {

using Millis = std::chrono::milliseconds;

struct RecvResult {
  enum class Status { kFrame, kTimeout, kEof, kError, kBadLength };
  Status status = Status::kTimeout;
  std::vector<uint8_t> frame;  // the Ethernet frame when status == kFrame
  std::string error;           // errno text or the bad length, for messages

  bool ok() const { return status == Status::kFrame; }
};
const char* to_string(RecvResult::Status status);

class FrameClient {
 public:
  struct Options {
    int rcvbuf_size = 0;  // SO_RCVBUF set before connect when > 0
    int sndbuf_size = 0;  // SO_SNDBUF set before connect when > 0
  };

  // Connects to "unix:PATH" or "tcp:HOST:PORT" (numeric IPv4 HOST), retrying refused/again
  // until `timeout`. nullopt with *error set on failure.
  static std::optional<FrameClient> connect(const std::string& address, std::string* error,
                                            Millis timeout = Millis(3000));
  static std::optional<FrameClient> connect(const std::string& address, const Options& options,
                                            std::string* error, Millis timeout = Millis(3000));
  // Adopts a connected stream socket (made non-blocking here).
  explicit FrameClient(int fd);
  FrameClient() = default;
  ~FrameClient();
  FrameClient(const FrameClient&) = delete;
  FrameClient& operator=(const FrameClient&) = delete;
  FrameClient(FrameClient&& other) noexcept;
  FrameClient& operator=(FrameClient&& other) noexcept;

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close();

  // Writes the 4-byte length and the frame. False (with last_error()) on error or timeout.
  bool send_frame(std::span<const uint8_t> frame, Millis timeout = Millis(3000));
  // Writes bytes as they are.
  bool send_raw(std::span<const uint8_t> bytes, Millis timeout = Millis(3000));
  // Wire encoding of frames, for writing many frames with one send_raw.
  static void append_wire(std::vector<uint8_t>* out, std::span<const uint8_t> frame);

  // The next frame, or kTimeout/kEof/kError/kBadLength.
  RecvResult recv_frame(Millis timeout = Millis(3000));
  // Receives until a frame matching `pred` arrives (others are discarded and counted in
  // *skipped when non-null) or the timeout ends.
  template <typename Pred>
  RecvResult recv_frame_matching(Pred pred, Millis timeout, size_t* skipped = nullptr);
  // Reads and discards until EOF (true) or timeout/error (false).
  bool wait_eof(Millis timeout);
  // Discards whatever arrives within `window`; returns how many frames were discarded.
  size_t drain(Millis window);

  const std::string& last_error() const { return last_error_; }

 private:
  // Cuts one frame out of rx_ if complete.
  bool take_frame(RecvResult* out);
  // One poll+recv round: 1 = got bytes, 0 = timeout, -1 = EOF, -2 = error.
  int fill(Millis timeout);

  int fd_ = -1;
  std::vector<uint8_t> rx_;
  size_t rx_begin_ = 0;
  size_t rx_end_ = 0;
  std::string last_error_;
};

template <typename Pred>
RecvResult FrameClient::recv_frame_matching(Pred pred, Millis timeout, size_t* skipped) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0) left = Millis(0);
    RecvResult r = recv_frame(left);
    if (!r.ok() || pred(r.frame)) return r;
    if (skipped != nullptr) ++*skipped;
  }
}

class FrameListener {
 public:
  // Listens on "unix:PATH" (unlinking a stale file first) or "tcp:HOST:PORT" (port 0 allowed;
  // address() then names the real port).
  static std::optional<FrameListener> listen(const std::string& address, std::string* error);
  FrameListener() = default;
  ~FrameListener();
  FrameListener(const FrameListener&) = delete;
  FrameListener& operator=(const FrameListener&) = delete;
  FrameListener(FrameListener&& other) noexcept;
  FrameListener& operator=(FrameListener&& other) noexcept;

  std::optional<FrameClient> accept(Millis timeout, std::string* error);
  // Closes the socket and, for unix:, removes the file.
  void close();
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
  std::string unix_path_;
};

}  // namespace qswitch::test_support
