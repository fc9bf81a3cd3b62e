// backends/runtime/io/socket_address.h: where a stream port listens or dials, as a typed value, and
// the socket calls that turn one into a non-blocking fd. Parsing text into an SocketAddress is
// tools/' job.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>

#include "backends/runtime/io/fd.h"

namespace qswitch::io {

struct SocketAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kUnix;
  std::string path;   // kUnix
  std::string host;   // kTcp: a numeric IPv4 or IPv6 address
  uint16_t port = 0;  // kTcp; 0 when listening means "pick one"

  std::string to_string() const;  // "unix:/p" or "tcp:127.0.0.1:5000" / "tcp:[::1]:5000"
};

// Result of a socket call: a valid fd, or an errno and a message naming what failed.
struct SocketResult {
  Fd fd;
  int error = 0;
  std::string message;
  bool ok() const { return fd.valid(); }
};

// Binds and listens. A unix socket file left by a dead process is replaced; one that still
// accepts connections is an error ("... is in use by another process"). Missing parent
// directories are created with mode 0700.
SocketResult listen_on(const SocketAddress& ep);
// Binds `fd`, a unix socket of `type` (SOCK_STREAM, SOCK_DGRAM), to the path in `sun` (`len`
// its length). Missing parent directories are created with mode 0700. A socket file that
// nobody answers on (left by a process that died) is replaced; one that answers is refused
// ("... is in use by another process"), rather than stealing another switch's guests. The
// socket file gets mode 0600. Returns 0, or an errno with `error` saying what failed.
int bind_unix(int fd, int type, const sockaddr_un& sun, socklen_t len, std::string& error);
// For a tcp listener bound to port 0: the port the kernel picked.
uint16_t bound_port(int fd);
// The port (host order) of an inet or inet6 address; 0 for any other family.
uint16_t port_of(const sockaddr_storage& ss);
// Starts a non-blocking connect. error == EINPROGRESS means: wait for writability, then
// check connect_result().
SocketResult start_connect(const SocketAddress& ep);
int connect_result(int fd);  // 0 or the errno of a finished non-blocking connect
// "127.0.0.1:5000", "[::1]:5000", a unix path ("@name" for the abstract namespace).
std::string sockaddr_text(const sockaddr_storage& ss, socklen_t len = sizeof(sockaddr_storage));
// "pid 1234" for a unix peer, "127.0.0.1:40312" for a tcp peer.
std::string peer_name(int fd, SocketAddress::Kind kind);

}  // namespace qswitch::io
