// tools/qswitch/config/security_keys.cc: see the header.
#include "tools/qswitch/config/security_keys.h"

#include <algorithm>

namespace qswitch::tools {

bool SecurityKeys::is_security_key(std::string_view key) {
  return key == "port-security" || key == "mac" || key == "max-macs" || key == "ip";
}

bool SecurityKeys::set(std::string_view key, std::string_view value, std::string& error) {
  const std::string item = std::string(key) + "=" + std::string(value);
  if (key == "port-security") {
    if (on_) {
      error = item + ": port-security= is given twice";
      return false;
    }
    if (value != "on" && value != "off") {
      error = item + ": expected on or off";
      return false;
    }
    on_ = value == "on";
    return true;
  }
  if (key == "mac") {
    const std::optional<sw::MacAddress> mac = sw::MacAddress::parse(value);
    if (!mac || mac->is_multicast()) {
      error = item + ": expected a unicast MAC like 52:54:00:12:34:56";
      return false;
    }
    if (std::find(macs_.begin(), macs_.end(), *mac) != macs_.end()) {
      error = item + ": this MAC is given twice";
      return false;
    }
    macs_.push_back(*mac);
    return true;
  }
  if (key == "max-macs") {
    uint32_t n = 0;
    bool ok = !value.empty() && value.size() <= 3;
    for (char c : value) {
      if (c < '0' || c > '9') ok = false;
      n = n * 10 + static_cast<uint32_t>(c - '0');
    }
    if (!ok || n < 1 || n > sw::kMaxSecuredMacs) {
      error = item + ": expected a number of MACs from 1 to " + std::to_string(sw::kMaxSecuredMacs);
      return false;
    }
    if (max_macs_) {
      error = item + ": max-macs= is given twice";
      return false;
    }
    max_macs_ = n;
    return true;
  }
  if (key == "ip") {
    const std::optional<sw::IpAddress> ip = sw::IpAddress::parse(value);
    if (!ip || ip->is_unspecified() || ip->is_multicast() ||
        (ip->is_v4() && ip->bytes[0] == 255 && ip->bytes[1] == 255 && ip->bytes[2] == 255 &&
         ip->bytes[3] == 255)) {
      error = item + ": expected a unicast IPv4 or IPv6 address like 10.0.2.15 or fec0::15";
      return false;
    }
    if (ip->is_v6_link_local()) {
      error = item + ": link-local IPv6 addresses (fe80::/10) are always allowed; give another";
      return false;
    }
    if (std::find(ips_.begin(), ips_.end(), *ip) != ips_.end()) {
      error = item + ": this address is given twice";
      return false;
    }
    if (ips_.size() >= sw::kMaxSecuredIps) {
      error = item + ": at most " + std::to_string(sw::kMaxSecuredIps) + " ip= addresses per port";
      return false;
    }
    ips_.push_back(*ip);
    return true;
  }
  error = item + ": unknown key (expected port-security=, mac=, max-macs= or ip=)";
  return false;
}

bool SecurityKeys::resolve(sw::PortSecurity& out, std::string& error) const {
  const bool finer = !macs_.empty() || max_macs_.has_value() || !ips_.empty();
  if (on_ == false && finer) {
    const char* which = !macs_.empty() ? "mac=" : max_macs_ ? "max-macs=" : "ip=";
    error = "port-security=off contradicts " + std::string(which) + " (which turns it on)";
    return false;
  }
  if (max_macs_ && *max_macs_ < macs_.size()) {
    error = "max-macs=" + std::to_string(*max_macs_) + " is fewer than the " +
            std::to_string(macs_.size()) + " MACs given with mac=";
    return false;
  }
  sw::PortSecurity s;
  s.enabled = on_.value_or(false) || finer;
  if (s.enabled) {
    s.macs = macs_;
    s.ips = ips_;
    s.max_macs = max_macs_.value_or(std::max<uint32_t>(1, static_cast<uint32_t>(macs_.size())));
  }
  out = s;
  return true;
}

bool take_security_keys(std::string_view text, std::string& rest, SecurityKeys& keys,
                        std::string& error) {
  std::string kept;
  bool kept_any = false;
  size_t pos = 0;
  while (true) {
    const size_t comma = text.find(',', pos);
    const std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && SecurityKeys::is_security_key(item.substr(0, eq))) {
      if (!keys.set(item.substr(0, eq), item.substr(eq + 1), error)) return false;
    } else {
      if (kept_any) kept += ',';
      kept += item;
      kept_any = true;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  rest = std::move(kept);
  return true;
}

}  // namespace qswitch::tools
