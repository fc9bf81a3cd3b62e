// tests/support/dgram_client.h: one peer of qswitch over a datagram socket, as QEMU's
// -netdev dgram is: one Ethernet frame per datagram, no length prefix.
//
// Theory of operation: the client binds its own address (a unix path, or a UDP address on
// 127.0.0.1) so the switch can answer it, and sends to the switch's address. The socket is
// non-blocking and every receive takes a timeout, so a test never hangs. send_raw() sends any
// bytes (empty, runt, oversize datagrams) for the bad-input tests.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/frame_client.h"

namespace qswitch::test_support {

class DgramClient {
 public:
  // "unix:PATH" (bound to `local`, a path) or "udp:HOST:PORT" / "udp:[V6]:PORT" (bound to
  // `local`, "HOST:PORT" / "[V6]:PORT" of the same family, port 0 for any). nullopt with *error
  // on failure.
  static std::optional<DgramClient> open(const std::string& local, const std::string& remote,
                                         std::string* error);
  DgramClient() = default;
  ~DgramClient();
  DgramClient(const DgramClient&) = delete;
  DgramClient& operator=(const DgramClient&) = delete;
  DgramClient(DgramClient&& other) noexcept;
  DgramClient& operator=(DgramClient&& other) noexcept;

  // Sends one datagram to the remote; false with last_error() on failure.
  bool send_raw(std::span<const uint8_t> bytes);
  bool send_frame(std::span<const uint8_t> frame) { return send_raw(frame); }
  // The next datagram, or kTimeout/kError.
  RecvResult recv_frame(Millis timeout = Millis(3000));
  // Discards whatever arrives within `window`; returns how many datagrams.
  size_t drain(Millis window);
  int fd() const { return fd_; }
  // The bound address as the switch names this peer ("unixgram:PATH", "udp:127.0.0.1:PORT").
  const std::string& name() const { return name_; }
  const std::string& last_error() const { return last_error_; }
  void close();

 private:
  int fd_ = -1;
  sockaddr_storage remote_{};
  socklen_t remote_len_ = 0;
  std::string unlink_path_;
  std::string name_;
  std::string last_error_;
};

}  // namespace qswitch::test_support
