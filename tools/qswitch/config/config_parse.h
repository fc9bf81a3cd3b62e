// tools/qswitch/config/config_parse.h: the text-to-value pieces every qswitch parser shares.
// Each parser (options.cc, net_specs.cc, dgram_options.cc, slirp_options_parse.cc, exec.cc)
// builds its own error message around these, naming the bad value and what is accepted; the
// pieces themselves only say yes or no.
// - Numbers are decimal digits only: no sign, no space, no "0x", the whole text, within
//   [min, max]. A value too large for 64 bits is simply out of range.
// - Durations in seconds are decimal digits with at most one '.' ("2", "0.5", ".5", "2."):
//   no sign, no exponent, no "inf"/"nan", within (0, max] -- a duration of zero is never useful.
// - MAC addresses are parsed by sw::MacAddress::parse (switch/mac_address.h); a guest's random
//   MAC comes from random_guest_mac() here (QEMU's 52:54:00 prefix, sw::MacAddress::qemu_guest).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "switch/mac_address.h"
#include "switch/types.h"

namespace qswitch::tools {

std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t min = 0,
                                      uint64_t max = UINT64_MAX);

std::optional<double> parse_decimal_seconds(std::string_view text, double max);

// 52:54:00:xx:xx:xx with three bytes from getrandom() (or, with no entropy source, from the
// clock and the pid, so two processes still differ).
sw::MacAddress random_guest_mac();

// A port or capture session id given as text: decimal digits, below sw::kNoPort. Used for
// `ctl capture --port` and for string ids in the server's "capture" and "capture.stop" arguments.
bool parse_port_id(std::string_view text, uint32_t& out);

}  // namespace qswitch::tools
