// tools/qswitch/config/config_parse.cc: see the header.
#include "tools/qswitch/config/config_parse.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <charconv>

namespace qswitch::tools {

std::optional<uint64_t> parse_decimal(std::string_view text, uint64_t min, uint64_t max) {
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) {
    return std::nullopt;
  }
  return v;
}

std::optional<double> parse_decimal_seconds(std::string_view text, double max) {
  size_t digits = 0;
  size_t points = 0;
  for (char c : text) {
    if (c == '.') {
      points += 1;
    } else if (c >= '0' && c <= '9') {
      digits += 1;
    } else {
      return std::nullopt;
    }
  }
  if (digits == 0 || points > 1) return std::nullopt;
  double v = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end != text.data() + text.size() || !(v > 0) || v > max) {
    return std::nullopt;
  }
  return v;
}

sw::MacAddress random_guest_mac() {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    r = static_cast<uint32_t>(ts.tv_nsec) ^ (static_cast<uint32_t>(::getpid()) << 8);
  }
  return sw::MacAddress::qemu_guest(r);
}

bool parse_port_id(std::string_view text, uint32_t& out) {
  const std::optional<uint64_t> v = parse_decimal(text, 0, uint64_t{sw::kNoPort} - 1);
  if (!v) return false;
  out = static_cast<uint32_t>(*v);
  return true;
}

}  // namespace qswitch::tools
