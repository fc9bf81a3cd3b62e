// tools/qswitch/config/dgram_options.cc: see the header.
#include "tools/qswitch/config/dgram_options.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>

#include "tools/qswitch/config/options.h"

namespace qswitch::tools {

namespace {

constexpr const char* kAccepted =
    "expected unix:PATH, udp:HOST:PORT, udp:LHOST:LPORT-RHOST:RPORT or "
    "mcast:GROUP:PORT[,localaddr=ADDR] (numeric addresses)";

// "HOST:PORT" / "[V6]:PORT" into a sockaddr, through the socket address parser.
bool inet_address(const std::string& text, sockaddr_storage& ss, socklen_t& len,
                  std::string& error) {
  std::string why;
  auto ep = parse_socket_address("tcp:" + text, why);
  if (!ep) {
    error = "'" + text + "' is not HOST:PORT with a numeric host";
    return false;
  }
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, ep->host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(ep->port);
    len = sizeof *v4;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  inet_pton(AF_INET6, ep->host.c_str(), &v6->sin6_addr);
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(ep->port);
  len = sizeof *v6;
  return true;
}

}  // namespace

std::optional<backends::DgramConfig> parse_dgram_spec(const std::string& text, std::string& error) {
  backends::DgramConfig c;
  auto bad = [&](const std::string& why) {
    error = "'" + text + "': " + why + "; " + kAccepted;
    return std::nullopt;
  };
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    // Only a JSON string (port.add) can carry one; the socket calls would stop at it.
    error = "'" + text.substr(0, nul) + "' is followed by a NUL byte (byte " + std::to_string(nul) +
            "); " + kAccepted;
    return std::nullopt;
  }
  if (text.rfind("unix:", 0) == 0) {
    const std::string path = text.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(&c.local);
    if (path.empty()) return bad("empty path");
    if (path.size() >= sizeof un->sun_path)
      return bad("unix socket paths are limited to 107 bytes");
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.data(), path.size());
    c.local_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    c.family = AF_UNIX;
    c.mode = backends::DgramConfig::Mode::kLearn;
    c.name = text;
    return c;
  }
  if (text.rfind("udp:", 0) == 0) {
    const std::string rest = text.substr(4);
    // The '-' between two addresses: IPv6 addresses hold no '-', so the first one splits.
    const size_t dash = rest.find('-');
    std::string why;
    if (!inet_address(rest.substr(0, dash), c.local, c.local_len, why)) return bad(why);
    c.family = c.local.ss_family;
    c.mode = backends::DgramConfig::Mode::kLearn;
    if (dash != std::string::npos) {
      if (!inet_address(rest.substr(dash + 1), c.remote, c.remote_len, why)) return bad(why);
      if (c.remote.ss_family != c.family) return bad("local and remote are of different families");
      if (io::port_of(c.remote) == 0) return bad("the remote port cannot be 0");
      c.mode = backends::DgramConfig::Mode::kConnected;
    }
    c.name = text;
    return c;
  }
  if (text.rfind("mcast:", 0) == 0) {
    std::string rest = text.substr(6);
    std::string ifaddr;
    const size_t comma = rest.find(',');
    if (comma != std::string::npos) {
      const std::string opt = rest.substr(comma + 1);
      rest = rest.substr(0, comma);
      if (opt.rfind("localaddr=", 0) != 0) return bad("unknown option '" + opt + "'");
      ifaddr = opt.substr(10);
    }
    std::string why;
    if (!inet_address(rest, c.local, c.local_len, why)) return bad(why);
    const auto& group = reinterpret_cast<const sockaddr_in&>(c.local);
    if (c.local.ss_family != AF_INET || !IN_MULTICAST(ntohl(group.sin_addr.s_addr))) {
      return bad("'" + rest + "' is not an IPv4 multicast group (224.0.0.0/4)");
    }
    if (io::port_of(c.local) == 0) return bad("the group port cannot be 0");
    auto& in = reinterpret_cast<sockaddr_in&>(c.mcast_if);
    in.sin_family = AF_INET;
    if (!ifaddr.empty() && inet_pton(AF_INET, ifaddr.c_str(), &in.sin_addr) != 1) {
      return bad("localaddr '" + ifaddr + "' is not a numeric IPv4 address");
    }
    c.family = AF_INET;
    c.mode = backends::DgramConfig::Mode::kMulticast;
    c.name = text;
    return c;
  }
  return bad("unknown kind");
}

std::string dgram_unix_path(const backends::DgramConfig& config) {
  if (config.family != AF_UNIX) return "";
  return reinterpret_cast<const sockaddr_un&>(config.local).sun_path;
}

}  // namespace qswitch::tools
