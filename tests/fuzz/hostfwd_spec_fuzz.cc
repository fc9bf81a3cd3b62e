// tests/fuzz/hostfwd_spec_fuzz.cc: the hostfwd spec parsers
// (tools/qswitch/config/slirp_options_parse.h): parse_hostfwd
// ("[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT", from --slirp hostfwd= and the control
// command hostfwd.add), parse_hostfwd_key (hostfwd.remove) and check_hostfwd_guest, on arbitrary
// text.
//
// Checked: a failure leaves `out` untouched and says why; an accepted spec has a guest port
// 1..65535, prints (HostForward::to_string) as a spec that parses back to the same forward, and
// holds no NUL byte (such text cannot come from a command line, only from a JSON string, and
// inet_pton would read only up to the NUL: the rest must not be silently ignored); the key parser
// accepts every accepted spec, with the same key and zero guest fields.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "slirp/slirp_options.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/slirp_options_parse.h"

namespace {

using qswitch::slirp::HostForward;

bool same(const HostForward& a, const HostForward& b) {
  return a.same_host_socket(b) && a.host_addr.s_addr == b.host_addr.s_addr &&
         a.guest_addr.s_addr == b.guest_addr.s_addr &&
         IN6_ARE_ADDR_EQUAL(&a.guest_addr6, &b.guest_addr6) && a.guest_port == b.guest_port &&
         a.by_mac == b.by_mac && a.guest_mac == b.guest_mac && a.guest_name == b.guest_name;
}

HostForward sentinel() {
  HostForward f;
  f.udp = true;
  f.host_addr.s_addr = 0x01020304;
  f.host_port = 4242;
  f.guest_addr.s_addr = 0x05060708;
  f.guest_port = 2424;
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto options = qswitch::slirp::default_slirp_options();

  HostForward f = sentinel();
  std::string error;
  if (qswitch::tools::parse_hostfwd(text, f, error)) {
    FUZZ_CHECK(text.find('\0') == std::string_view::npos);
    FUZZ_CHECK(f.guest_port >= 1);
    const std::string printed = f.to_string();
    HostForward again;
    std::string error2;
    FUZZ_CHECK(qswitch::tools::parse_hostfwd(printed, again, error2));
    FUZZ_CHECK(same(f, again));
    HostForward key = sentinel();
    FUZZ_CHECK(qswitch::tools::parse_hostfwd_key(text, key, error2));
    FUZZ_CHECK(key.same_host_socket(f) && key.guest_addr.s_addr == 0 && key.guest_port == 0 &&
               !key.by_mac && key.guest_name.empty());
    std::string why;
    if (!qswitch::tools::check_hostfwd_guest(f, options, why)) FUZZ_CHECK(!why.empty());
  } else {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(same(f, sentinel()));
  }

  HostForward k = sentinel();
  error.clear();
  if (qswitch::tools::parse_hostfwd_key(text, k, error)) {
    FUZZ_CHECK(text.find('\0') == std::string_view::npos);
    FUZZ_CHECK(k.guest_addr.s_addr == 0 && k.guest_port == 0);
  } else {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(same(k, sentinel()));
  }
  return 0;
}
