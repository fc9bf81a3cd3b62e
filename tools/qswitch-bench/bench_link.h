// tools/qswitch-bench/bench_link.h: one bench port's connection to the switch.
//
// Theory of operation
// - A BenchLink is a stream socket (unix or tcp, QEMU stream framing, one end of the --direct
//   socketpair), a datagram socket (unixgram or udp, one frame per datagram, one end of the
//   --direct=dgram socketpair) or a VDE connection (libvdeplug, one datagram per frame). It is
//   move-only and closes what it owns exactly once.
// - A datagram socket is bound (its own address, which the switch replies to) and then
//   connect()ed to the switch's address: send() needs no address, only the switch's datagrams
//   are received, and for unix datagrams poll() reports POLLOUT only when the switch's queue has
//   room. A path the link bound itself (in its own mkdtemp dir) is unlinked with the dir when
//   the link closes; a LOCAL path given on the command line is unlinked too (it was free when
//   bound: an existing file there is an error, never replaced).
// - Every socket is nonblocking; the port loop waits in poll(). open_link() does its blocking
//   part (connect, bounded by a timeout) before any traffic starts.
// - Built without libvdeplug, vde: addresses fail at open with a message saying so.
#pragma once

#include <string>
#include <utility>

#include "tools/qswitch-bench/bench_options.h"

struct vdeconn;

namespace qswitch::tools {

class BenchLink {
 public:
  enum class Kind { kNone, kStream, kDgram, kVde };

  BenchLink() = default;
  ~BenchLink() { reset(); }
  BenchLink(BenchLink&& other) noexcept { *this = std::move(other); }
  BenchLink& operator=(BenchLink&& other) noexcept;
  BenchLink(const BenchLink&) = delete;
  BenchLink& operator=(const BenchLink&) = delete;

  static BenchLink from_fd(Kind kind, int fd) {
    BenchLink l;
    l.kind_ = kind;
    l.fd_ = fd;
    return l;
  }

  Kind kind() const { return kind_; }
  // Stream, datagram: the socket. VDE: the data socket (datagrams).
  int fd() const { return fd_; }
  // VDE only: the control socket, which reads EOF when the switch goes away; -1 otherwise.
  int ctl_fd() const { return ctl_fd_; }
  vdeconn* vde() const { return vde_; }

  void reset();

 private:
  friend BenchLink open_link(const PortAddr& addr, std::string& error);
  // The kinds that own more than a socket (open_link's parts for them).
  static BenchLink open_unixgram(const PortAddr& addr, std::string& error);
  static BenchLink open_vde(const PortAddr& addr, std::string& error);
  Kind kind_ = Kind::kNone;
  int fd_ = -1;
  int ctl_fd_ = -1;
  vdeconn* vde_ = nullptr;
  std::string bound_path_;  // unixgram: the path bound, unlinked at reset
  std::string temp_dir_;    // unixgram: the mkdtemp dir holding it, removed at reset
};

// Connects to `addr` (connect timeout 5 s). On failure returns a kNone link and sets `error`.
BenchLink open_link(const PortAddr& addr, std::string& error);
// The two ends of a socketpair(AF_UNIX, SOCK_STREAM, or SOCK_DGRAM when `dgram`) for --direct.
bool open_direct_pair(bool dgram, BenchLink& a, BenchLink& b, std::string& error);

}  // namespace qswitch::tools
