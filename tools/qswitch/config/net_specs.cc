// tools/qswitch/config/net_specs.cc: see the header. Each item is checked on its own, then the
// whole: the first problem found is reported and nothing is returned.
#include "tools/qswitch/config/net_specs.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "backends/runtime/io/socket_address.h"
#include "backends/vxlan/vxlan_header.h"
#include "tools/qswitch/config/config_parse.h"

namespace qswitch::tools {

namespace {

// "A.B.C.D[:PORT]", "[V6][:PORT]" or a bare IPv6 address (no port).
bool parse_address(const std::string& text, uint16_t default_port, sockaddr_storage& out,
                   std::string& why) {
  std::string host = text;
  std::string port;
  bool v6 = false;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) {
      why = "missing ']' after the IPv6 address";
      return false;
    }
    host = text.substr(1, close - 1);
    const std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        why = "expected ':PORT' after ']'";
        return false;
      }
      port = rest.substr(1);
      if (port.empty()) {
        why = "empty port after ':'";
        return false;
      }
    }
    v6 = true;
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    v6 = true;  // a bare IPv6 address, no port
  } else if (const size_t colon = text.find(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty()) {
      why = "empty port after ':'";
      return false;
    }
  }
  uint16_t port_value = default_port;
  if (!port.empty()) {
    const auto p = parse_decimal(port, 0, 65535);
    if (!p) {
      why = "port '" + port + "' is not a number in 0..65535";
      return false;
    }
    port_value = static_cast<uint16_t>(*p);
  }
  out = sockaddr_storage{};
  if (v6) {
    auto& a = reinterpret_cast<sockaddr_in6&>(out);
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port_value);
    if (inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1) {
      why = "'" + host + "' is not a numeric IPv6 address";
      return false;
    }
    return true;
  }
  auto& a = reinterpret_cast<sockaddr_in&>(out);
  a.sin_family = AF_INET;
  a.sin_port = htons(port_value);
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    why = "'" + host + "' is not a numeric IPv4 address (a.b.c.d, or [v6] for IPv6)";
    return false;
  }
  return true;
}

bool is_any(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr == htonl(INADDR_ANY);
  }
  const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a).sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&v6);
}

bool same_address(const sockaddr_storage& a, const sockaddr_storage& b) {
  return io::sockaddr_text(a) == io::sockaddr_text(b);
}

constexpr const char* kVxlanForm =
    "expected vni=N,local=ADDR[:PORT],remote=ADDR[:PORT][,remote=...] (vni 0..16777215, port "
    "default 4789, IPv6 as [ADDR]:PORT)";

}  // namespace

std::optional<backends::TapSpec> parse_tap_spec(const std::string& text, std::string& error) {
  backends::TapSpec spec;
  if (text.rfind("fd=", 0) == 0) {
    const auto fd = parse_decimal(text.substr(3), 0, 0x7fffffff);
    if (!fd) {
      error = "--tap " + text + ": fd must be a number >= 0 (fd=N, an inherited tap fd)";
      return std::nullopt;
    }
    spec.fd = static_cast<int>(*fd);
    return spec;
  }
  // Linux's dev_valid_name(): 1..IFNAMSIZ-1 bytes, not "." or "..", no '/', ':' or whitespace.
  if (text.empty() || text.size() >= IFNAMSIZ || text == "." || text == "..") {
    error = "--tap '" + text + "': an interface name is 1.." + std::to_string(IFNAMSIZ - 1) +
            " bytes (e.g. --tap qs0), or fd=N for an inherited tap fd";
    return std::nullopt;
  }
  for (char c : text) {
    if (c == '/' || c == ':' || c == '=' || c == ',' ||
        std::isspace(static_cast<unsigned char>(c)) != 0 ||
        std::iscntrl(static_cast<unsigned char>(c)) != 0) {
      error = "--tap '" + text +
              "': an interface name has no '/', ':', '=', ',' or whitespace "
              "(e.g. --tap qs0), or use fd=N";
      return std::nullopt;
    }
  }
  spec.name = text;
  return spec;
}

std::optional<backends::VxlanConfig> parse_vxlan_spec(const std::string& text, std::string& error) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    // Only a JSON string can carry one; inet_pton would ignore what follows it.
    error = "--vxlan '" + text.substr(0, nul) + "' is followed by a NUL byte (byte " +
            std::to_string(nul) + "); " + kVxlanForm;
    return std::nullopt;
  }
  backends::VxlanConfig config;
  bool have_vni = false;
  bool have_local = false;
  size_t pos = 0;
  for (int items = 0; pos <= text.size() && items < 1024; ++items) {
    const size_t comma = text.find(',', pos);
    const std::string item =
        text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    const size_t eq = item.find('=');
    if (item.empty() || eq == std::string::npos) {
      error = "--vxlan '" + text + "': item '" + item + "' is not key=value; " + kVxlanForm;
      return std::nullopt;
    }
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    std::string why;
    if (key == "vni") {
      const auto vni = parse_decimal(value, 0, backends::kVxlanMaxVni);
      if (!vni) {
        error = "--vxlan vni=" + value + ": the VNI is a number in 0..16777215 (24 bits)";
        return std::nullopt;
      }
      if (have_vni) {
        error = "--vxlan: vni given twice; " + std::string(kVxlanForm);
        return std::nullopt;
      }
      config.vni = static_cast<uint32_t>(*vni);
      have_vni = true;
    } else if (key == "local") {
      if (have_local) {
        error = "--vxlan: local given twice (one local address per --vxlan)";
        return std::nullopt;
      }
      if (!parse_address(value, backends::kVxlanDefaultPort, config.local, why)) {
        error = "--vxlan local=" + value + ": " + why;
        return std::nullopt;
      }
      config.local_len =
          config.local.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      have_local = true;
    } else if (key == "remote") {
      backends::VxlanRemote r;
      if (!parse_address(value, backends::kVxlanDefaultPort, r.addr, why)) {
        error = "--vxlan remote=" + value + ": " + why;
        return std::nullopt;
      }
      const uint16_t port = r.addr.ss_family == AF_INET
                                ? ntohs(reinterpret_cast<sockaddr_in&>(r.addr).sin_port)
                                : ntohs(reinterpret_cast<sockaddr_in6&>(r.addr).sin6_port);
      if (port == 0) {
        error = "--vxlan remote=" + value + ": a remote's port is 1..65535 (default 4789)";
        return std::nullopt;
      }
      if (is_any(r.addr)) {
        error = "--vxlan remote=" + value +
                ": a remote must be a real address, not the "
                "unspecified one";
        return std::nullopt;
      }
      r.len = r.addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      for (const backends::VxlanRemote& other : config.remotes) {
        if (same_address(other.addr, r.addr)) {
          error = "--vxlan remote=" + value + ": given twice";
          return std::nullopt;
        }
      }
      if (config.remotes.size() >= backends::kVxlanMaxRemotes) {
        error = "--vxlan: at most " + std::to_string(backends::kVxlanMaxRemotes) + " remotes";
        return std::nullopt;
      }
      config.remotes.push_back(r);
    } else {
      error = "--vxlan: unknown key '" + key + "'; " + kVxlanForm;
      return std::nullopt;
    }
  }
  if (!have_vni || !have_local || config.remotes.empty()) {
    error = std::string("--vxlan '") + text + "': missing " +
            (!have_vni     ? "vni=N"
             : !have_local ? "local=ADDR[:PORT]"
                           : "remote=ADDR[:PORT]") +
            "; " + kVxlanForm;
    return std::nullopt;
  }
  for (const backends::VxlanRemote& r : config.remotes) {
    if (r.addr.ss_family != config.local.ss_family) {
      error = "--vxlan remote=" + io::sockaddr_text(r.addr) +
              ": not the same address family as local=" + io::sockaddr_text(config.local) +
              " (use all IPv4 or all IPv6)";
      return std::nullopt;
    }
  }
  return config;
}

}  // namespace qswitch::tools
