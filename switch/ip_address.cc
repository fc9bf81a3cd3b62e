// switch/ip_address.cc: parsing and printing of IP addresses (libc's inet_pton/inet_ntop: no
// system call).
#include "switch/ip_address.h"

#include <arpa/inet.h>

namespace qswitch::sw {

IpAddress IpAddress::eui64(const std::array<uint8_t, 16>& prefix, const MacAddress& mac) {
  IpAddress a;
  a.family = Family::kV6;
  std::memcpy(a.bytes.data(), prefix.data(), 8);
  a.bytes[8] = mac.bytes[0] ^ 0x02;  // the universal/local bit, inverted
  a.bytes[9] = mac.bytes[1];
  a.bytes[10] = mac.bytes[2];
  a.bytes[11] = 0xff;
  a.bytes[12] = 0xfe;
  a.bytes[13] = mac.bytes[3];
  a.bytes[14] = mac.bytes[4];
  a.bytes[15] = mac.bytes[5];
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::kV4;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = Family::kV6;
    return a;
  }
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == Family::kNone ||
      inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes.data(), buf, sizeof buf) == nullptr) {
    return "";
  }
  return buf;
}

bool IpAddress::is_unspecified() const {
  if (family == Family::kNone) return false;
  const size_t n = is_v4() ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) return false;
  }
  return true;
}

}  // namespace qswitch::sw
