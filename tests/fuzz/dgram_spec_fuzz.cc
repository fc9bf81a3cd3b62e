// tests/fuzz/dgram_spec_fuzz.cc: the --dgram parser (tools/qswitch/config/dgram_options.h) and the
// socket address parser it builds on (parse_socket_address: --listen, --connect and the control
// command port.add), on arbitrary text.
//
// Checked: a failure says why; an accepted --dgram value is shown as written (name), its mode
// and family agree with its kind (unix: a learning AF_UNIX socket whose path is the text after
// "unix:", 1..107 bytes; udp: AF_INET or AF_INET6 with the address length of its family, a
// connected one with a remote of the same family and a non-zero port; mcast: an IPv4 group in
// 224.0.0.0/4 with a non-zero port); an accepted address prints (to_string) as text that parses
// back to the same address, a tcp host is a numeric address, a unix path 1..107 bytes; and no
// accepted text holds a NUL byte (it cannot come from a command line, only from a JSON string,
// and the socket calls would see only the part before it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/options.h"

namespace {

using qswitch::backends::DgramConfig;

uint16_t port_of(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                       : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

socklen_t len_of(int family) {
  return family == AF_INET ? sizeof(sockaddr_in) : family == AF_INET6 ? sizeof(sockaddr_in6) : 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::string error;
  const auto c = qswitch::tools::parse_dgram_spec(text, error);
  if (!c) {
    FUZZ_CHECK(!error.empty());
  } else {
    FUZZ_CHECK(text.find('\0') == std::string::npos);
    FUZZ_CHECK(c->name == text);
    if (text.rfind("unix:", 0) == 0) {
      FUZZ_CHECK(c->family == AF_UNIX && c->mode == DgramConfig::Mode::kLearn);
      const std::string path = text.substr(5);
      FUZZ_CHECK(!path.empty() && path.size() <= 107);
      FUZZ_CHECK(qswitch::tools::dgram_unix_path(*c) == path);
      FUZZ_CHECK(c->local_len == offsetof(sockaddr_un, sun_path) + path.size() + 1);
    } else if (text.rfind("udp:", 0) == 0) {
      FUZZ_CHECK(c->family == AF_INET || c->family == AF_INET6);
      FUZZ_CHECK(c->local.ss_family == c->family && c->local_len == len_of(c->family));
      if (c->mode == DgramConfig::Mode::kConnected) {
        FUZZ_CHECK(c->remote.ss_family == c->family && c->remote_len == len_of(c->family));
        FUZZ_CHECK(port_of(c->remote) != 0);
      } else {
        FUZZ_CHECK(c->mode == DgramConfig::Mode::kLearn && c->remote_len == 0);
      }
    } else {
      FUZZ_CHECK(text.rfind("mcast:", 0) == 0);
      FUZZ_CHECK(c->family == AF_INET && c->mode == DgramConfig::Mode::kMulticast);
      const auto& group = reinterpret_cast<const sockaddr_in&>(c->local);
      FUZZ_CHECK(IN_MULTICAST(ntohl(group.sin_addr.s_addr)) && port_of(c->local) != 0);
    }
  }

  error.clear();
  const auto ep = qswitch::tools::parse_socket_address(text, error);
  if (!ep) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(text.find('\0') == std::string::npos);
  if (ep->kind == qswitch::io::SocketAddress::Kind::kUnix) {
    FUZZ_CHECK(!ep->path.empty() && ep->path.size() <= 107);
  } else {
    in6_addr scratch;
    FUZZ_CHECK(inet_pton(AF_INET, ep->host.c_str(), &scratch) == 1 ||
               inet_pton(AF_INET6, ep->host.c_str(), &scratch) == 1);
  }
  std::string error2;
  const auto again = qswitch::tools::parse_socket_address(ep->to_string(), error2);
  FUZZ_CHECK(again && again->kind == ep->kind && again->path == ep->path &&
             again->host == ep->host && again->port == ep->port);
  return 0;
}
