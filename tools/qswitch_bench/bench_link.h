// tools/qswitch_bench/bench_link.h: one bench port's connection to the switch.
//
// Theory of operation
// - A BenchLink is either a stream socket (unix or tcp, QEMU stream framing, one end of the
//   --direct socketpair) or a VDE connection (libvdeplug, one datagram per frame). It is
//   move-only and closes what it owns exactly once.
// - Every socket is nonblocking; the port loop waits in poll(). open_link() does its blocking
//   part (connect, bounded by a timeout) before any traffic starts.
// - Built without libvdeplug, vde: addresses fail at open with a message saying so.
#pragma once

#include <string>
#include <utility>

#include "tools/qswitch_bench/bench_options.h"

struct vdeconn;

namespace qswitch::tools {

class BenchLink {
 public:
  enum class Kind { kNone, kStream, kVde };

  BenchLink() = default;
  ~BenchLink() { reset(); }
  BenchLink(BenchLink&& other) noexcept { *this = std::move(other); }
  BenchLink& operator=(BenchLink&& other) noexcept;
  BenchLink(const BenchLink&) = delete;
  BenchLink& operator=(const BenchLink&) = delete;

  static BenchLink from_stream_fd(int fd) {
    BenchLink l;
    l.kind_ = Kind::kStream;
    l.fd_ = fd;
    return l;
  }

  Kind kind() const { return kind_; }
  // Stream: the socket. VDE: the data socket (datagrams).
  int fd() const { return fd_; }
  // VDE only: the control socket, which reads EOF when the switch goes away; -1 otherwise.
  int ctl_fd() const { return ctl_fd_; }
  vdeconn* vde() const { return vde_; }

  void reset();

 private:
  friend BenchLink open_link(const PortAddr& addr, std::string& error);
  Kind kind_ = Kind::kNone;
  int fd_ = -1;
  int ctl_fd_ = -1;
  vdeconn* vde_ = nullptr;
};

// Connects to `addr` (connect timeout 5 s). On failure returns a kNone link and sets `error`.
BenchLink open_link(const PortAddr& addr, std::string& error);
// The two ends of a socketpair(AF_UNIX, SOCK_STREAM) for --direct.
bool open_direct_pair(BenchLink& a, BenchLink& b, std::string& error);

}  // namespace qswitch::tools
