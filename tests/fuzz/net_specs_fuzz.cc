// tests/fuzz/net_specs_fuzz.cc: the --vxlan and --tap parsers (tools/qswitch/config/net_specs.h) on
// arbitrary text.
//
// Checked: a failure says why; an accepted --vxlan has a 24-bit VNI, a local address of IPv4 or
// IPv6 with its family's length, 1..64 remotes of the local's family, each with a non-zero port,
// a real (not unspecified) address and no two alike, and its printed form (to_string, items
// separated by spaces) parses back, commas for spaces, to the same configuration; an accepted
// --tap is fd=N (N >= 0) or a name of 1..15 bytes with no '/', ':', '=', ',', whitespace or
// control character, not "." or ".."; no accepted text holds a NUL byte.
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <string>

#include "backends/runtime/io/socket_address.h"
#include "backends/vxlan/vxlan_header.h"
#include "backends/vxlan/vxlan_port.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/net_specs.h"

namespace {

using qswitch::backends::VxlanConfig;

socklen_t len_of(int family) {
  return family == AF_INET ? sizeof(sockaddr_in) : family == AF_INET6 ? sizeof(sockaddr_in6) : 0;
}

uint16_t port_of(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                       : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

std::string text_of(const sockaddr_storage& a) { return qswitch::io::sockaddr_text(a); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::string error;
  const auto v = qswitch::tools::parse_vxlan_spec(text, error);
  if (!v) {
    FUZZ_CHECK(!error.empty());
  } else {
    FUZZ_CHECK(text.find('\0') == std::string::npos);
    FUZZ_CHECK(v->vni <= qswitch::backends::kVxlanMaxVni);
    const int family = v->local.ss_family;
    FUZZ_CHECK((family == AF_INET || family == AF_INET6) && v->local_len == len_of(family));
    FUZZ_CHECK(!v->remotes.empty() && v->remotes.size() <= qswitch::backends::kVxlanMaxRemotes);
    for (size_t i = 0; i < v->remotes.size(); ++i) {
      const auto& r = v->remotes[i];
      FUZZ_CHECK(r.addr.ss_family == family && r.len == len_of(family));
      FUZZ_CHECK(port_of(r.addr) != 0);
      for (size_t j = 0; j < i; ++j) FUZZ_CHECK(text_of(v->remotes[j].addr) != text_of(r.addr));
    }
    std::string printed = qswitch::backends::to_string(*v);
    std::replace(printed.begin(), printed.end(), ' ', ',');
    std::string error2;
    const auto again = qswitch::tools::parse_vxlan_spec(printed, error2);
    FUZZ_CHECK(again && again->vni == v->vni && text_of(again->local) == text_of(v->local) &&
               again->remotes.size() == v->remotes.size());
    for (size_t i = 0; i < v->remotes.size(); ++i) {
      FUZZ_CHECK(text_of(again->remotes[i].addr) == text_of(v->remotes[i].addr));
    }
  }

  error.clear();
  const auto t = qswitch::tools::parse_tap_spec(text, error);
  if (!t) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(text.find('\0') == std::string::npos);
  if (t->fd >= 0) {
    FUZZ_CHECK(text.rfind("fd=", 0) == 0);
  } else {
    FUZZ_CHECK(t->name == text && !text.empty() && text.size() < IFNAMSIZ);
    FUZZ_CHECK(text != "." && text != "..");
    for (char ch : text) {
      const auto u = static_cast<unsigned char>(ch);
      FUZZ_CHECK(ch != '/' && ch != ':' && ch != '=' && ch != ',' && !std::isspace(u) &&
                 !std::iscntrl(u));
    }
  }
  return 0;
}
