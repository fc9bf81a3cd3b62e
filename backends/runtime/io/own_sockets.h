// backends/runtime/io/own_sockets.h: the TCP and UDP ports the daemon itself has bound on a
// loopback or wildcard address (stream listeners, --dgram and --vxlan sockets, the metrics server).
//
// Theory of operation
// - Why: a guest behind the slirp port reaches the host's loopback through NAT (libslirp maps
//   its host address, 10.0.2.2, to 127.0.0.1, and fec0::2 to ::1), so without a check it reaches
//   qswitch's own sockets there and can become extra ports, fill a dgram socket's peer table or
//   read the metrics. The slirp port asks reaches_loopback() for the guest's destination port
//   and drops what would land on one of ours.
// - Who registers: whoever owns the socket, right after binding it, keeps the Registration
//   that add() returns; destroying it (the socket closed, the endpoint removed at run time)
//   takes the address out. So the set follows `port.add` / `port.remove` by construction.
// - Only what a loopback connection can reach is kept: a socket bound to 127.0.0.0/8, ::1, a
//   v4-mapped loopback, or a wildcard (0.0.0.0, ::, which also takes IPv4 unless IPV6_V6ONLY;
//   counted as both). Other addresses are not on the loopback and are ignored.
// - The owner of the registry outlives every Registration (the daemon declares it first). One
//   thread (the loop's); no allocation in reaches_loopback(), which runs per guest frame.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <vector>

namespace qswitch::io {

enum class Transport : uint8_t { kTcp, kUdp };

class OwnSockets {
 public:
  // Removes its address from the registry when destroyed. Move-only; empty when default-made.
  class Registration {
   public:
    Registration() = default;
    ~Registration() { reset(); }
    Registration(Registration&& other) noexcept : owner_(other.owner_), key_(other.key_) {
      other.owner_ = nullptr;
    }
    Registration& operator=(Registration&& other) noexcept {
      if (this != &other) {
        reset();
        owner_ = other.owner_;
        key_ = other.key_;
        other.owner_ = nullptr;
      }
      return *this;
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    void reset();

   private:
    friend class OwnSockets;
    Registration(OwnSockets* owner, uint64_t key) : owner_(owner), key_(key) {}
    OwnSockets* owner_ = nullptr;
    uint64_t key_ = 0;
  };

  OwnSockets() = default;
  OwnSockets(const OwnSockets&) = delete;
  OwnSockets& operator=(const OwnSockets&) = delete;

  // Records a bound socket's address (from getsockname). An address no loopback connection can
  // reach (or not IPv4/IPv6) gives an empty Registration.
  [[nodiscard]] Registration add(Transport transport, const sockaddr_storage& bound);
  // The same for a numeric host ("127.0.0.1", "::", "::1") and port, as io::SocketAddress holds
  // them.
  [[nodiscard]] Registration add(Transport transport, const char* numeric_host, uint16_t port);

  // True when a connection from the host's IPv4 (ipv6: IPv6) loopback to `port` would reach a
  // socket of ours.
  bool reaches_loopback(Transport transport, bool ipv6, uint16_t port) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t key;
    Transport transport;
    uint16_t port;
    bool v4;  // reachable from 127.0.0.1
    bool v6;  // reachable from ::1
  };
  void remove(uint64_t key);

  std::vector<Entry> entries_;
  uint64_t next_key_ = 1;
};

}  // namespace qswitch::io
