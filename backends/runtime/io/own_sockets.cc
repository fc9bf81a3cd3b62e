// backends/runtime/io/own_sockets.cc: see the header.
#include "backends/runtime/io/own_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace qswitch::io {

void OwnSockets::Registration::reset() {
  if (owner_ != nullptr) owner_->remove(key_);
  owner_ = nullptr;
}

OwnSockets::Registration OwnSockets::add(Transport transport, const sockaddr_storage& bound) {
  Entry e{0, transport, 0, false, false};
  if (bound.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(bound);
    const uint32_t a = ntohl(in.sin_addr.s_addr);
    e.port = ntohs(in.sin_port);
    e.v4 = a == INADDR_ANY || (a >> 24) == 127;
  } else if (bound.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(bound);
    const in6_addr& a = in6.sin6_addr;
    e.port = ntohs(in6.sin6_port);
    if (IN6_IS_ADDR_UNSPECIFIED(&a)) {
      e.v4 = true;  // unless IPV6_V6ONLY: assume the wider reach
      e.v6 = true;
    } else if (IN6_IS_ADDR_LOOPBACK(&a)) {
      e.v6 = true;
    } else if (IN6_IS_ADDR_V4MAPPED(&a)) {
      const bool any =
          a.s6_addr[12] == 0 && a.s6_addr[13] == 0 && a.s6_addr[14] == 0 && a.s6_addr[15] == 0;
      e.v4 = any || a.s6_addr[12] == 127;
    }
  }
  if ((!e.v4 && !e.v6) || e.port == 0) return Registration();
  e.key = next_key_++;
  entries_.push_back(e);
  return Registration(this, e.key);
}

OwnSockets::Registration OwnSockets::add(Transport transport, const char* numeric_host,
                                         uint16_t port) {
  sockaddr_storage ss{};
  auto& in = reinterpret_cast<sockaddr_in&>(ss);
  auto& in6 = reinterpret_cast<sockaddr_in6&>(ss);
  if (inet_pton(AF_INET, numeric_host, &in.sin_addr) == 1) {
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
  } else if (inet_pton(AF_INET6, numeric_host, &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
  } else {
    return Registration();
  }
  return add(transport, ss);
}

bool OwnSockets::reaches_loopback(Transport transport, bool ipv6, uint16_t port) const {
  for (const Entry& e : entries_) {
    if (e.port == port && e.transport == transport && (ipv6 ? e.v6 : e.v4)) return true;
  }
  return false;
}

void OwnSockets::remove(uint64_t key) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [key](const Entry& e) { return e.key == key; }),
                 entries_.end());
}

}  // namespace qswitch::io
