// tests/fuzz/lab_file_fuzz.cc: parse_lab_file (the lab file, `qswitch --config`: toml++ then the
// schema walk and the command line's value parsers) on arbitrary text, from a string, not a file.
//
// Checked: a refused text gives one line "fuzz.toml:LINE:COLUMN: ..." (LINE and COLUMN from 1);
// an accepted one holds no NUL byte in any string qswitch would hand to the C library (pcap,
// names), has unique guest names and MACs (unicast) and unique port names, one name per port, each
// guest's port one it can join (guest_port) and its ip dhcp or a CIDR; and
// format_lab_file's text of it (--check) is accepted again and formats to the same text.
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/lab_file.h"

namespace {

using qswitch::tools::LabFile;
using qswitch::tools::LabFileResult;

bool is_position_prefix(const std::string& error) {
  const std::string source = "fuzz.toml:";
  if (error.rfind(source, 0) != 0) return false;
  size_t at = source.size();
  for (int field = 0; field < 2; ++field) {
    const size_t digits = error.find_first_not_of("0123456789", at);
    if (digits == std::string::npos || digits == at || error[at] == '0' || error[digits] != ':') {
      return false;
    }
    at = digits + 1;
  }
  return error.compare(at, 1, " ") == 0;
}

void check_names(const LabFile& lab) {
  const auto& o = lab.options;
  const auto& n = lab.names;
  FUZZ_CHECK(n.listen.size() == o.listen.size() && n.connect.size() == o.connect.size() &&
             n.dgram.size() == o.dgram.size() && n.vhost_user.size() == o.vhost_user.size() &&
             n.taps.size() == o.taps.size() && n.vxlans.size() == o.vxlans.size());
  std::set<std::string> ports;
  for (const auto* list : {&n.listen, &n.connect, &n.dgram, &n.vhost_user, &n.taps, &n.vxlans}) {
    for (const std::string& name : *list) FUZZ_CHECK(name.empty() || ports.insert(name).second);
  }
  FUZZ_CHECK(n.slirp.size() == o.slirp.size());
  for (const std::string& name : n.slirp) FUZZ_CHECK(name.empty() || ports.insert(name).second);
  // One slirp port per VLAN, and no two forwards of different ports on one host socket.
  FUZZ_CHECK(qswitch::tools::check_slirp_ports(o.slirp).empty());
  std::set<std::string> guests;
  std::set<uint64_t> macs;
  for (const auto& g : lab.guests) {
    FUZZ_CHECK(!g.name.empty() && g.name.size() <= 32 && guests.insert(g.name).second);
    FUZZ_CHECK(!g.mac.is_multicast() && !g.mac.is_zero() && macs.insert(g.mac.key()).second);
    // A guest's port is a named [[listen]], [[dgram]] or [[vhost-user]]; its ip is dhcp or a
    // CIDR, and there only with a port.
    if (g.port.empty()) {
      FUZZ_CHECK(g.ip.empty() && !qswitch::tools::guest_port(lab, g));
    } else {
      FUZZ_CHECK(qswitch::tools::guest_port(lab, g).has_value());
      FUZZ_CHECK(g.ip == "dhcp" || g.ip.find('/') != std::string::npos);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const LabFileResult r = qswitch::tools::parse_lab_file(text, "fuzz.toml");
  if (!r.lab) {
    FUZZ_CHECK(is_position_prefix(r.error));
    return 0;
  }
  FUZZ_CHECK(r.error.empty());
  const LabFile& lab = *r.lab;
  if (lab.options.pcap) FUZZ_CHECK(lab.options.pcap->find('\0') == std::string::npos);
  for (const auto& tap : lab.options.taps) FUZZ_CHECK(tap.name.find('\0') == std::string::npos);
  check_names(lab);
  // --check's text reads back to a configuration that prints the same.
  const std::string printed = qswitch::tools::format_lab_file(lab);
  const LabFileResult again = qswitch::tools::parse_lab_file(printed, "fuzz.toml");
  if (!again.lab) std::fprintf(stderr, "%s\n---\n%s", again.error.c_str(), printed.c_str());
  FUZZ_CHECK(again.lab.has_value());
  FUZZ_CHECK(qswitch::tools::format_lab_file(*again.lab) == printed);
  return 0;
}
