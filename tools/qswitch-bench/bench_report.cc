// tools/qswitch-bench/bench_report.cc: formatting a BenchReport (formats in the header).
#include "tools/qswitch-bench/bench_report.h"

#include <cstdio>

namespace qswitch::tools {

namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string rate_text(double fps) {
  char buf[32];
  if (fps >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f Mfps", fps / 1e6);
  } else if (fps >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f kfps", fps / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f fps", fps);
  }
  return buf;
}

}  // namespace

std::string format_human(const BenchReport& r) {
  std::string line = r.target + " " + std::string(mode_name(r.mode)) +
                     " size=" + std::to_string(r.size) + " ports=" + std::to_string(r.ports);
  if (!r.vlan_text.empty()) line += " vlan=" + r.vlan_text;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      " time=%.2fs rx=%s %.2f Gbit/s loss=%.2f%% lost=%llu reorder=%llu corrupt=%llu "
      "foreign=%llu",
      r.seconds, rate_text(r.fps()).c_str(), r.gbps(), r.loss_pct(),
      static_cast<unsigned long long>(r.loss_frames), static_cast<unsigned long long>(r.reordered),
      static_cast<unsigned long long>(r.corrupt), static_cast<unsigned long long>(r.foreign));
  line += buf;
  if (r.cpu_measured) {
    std::snprintf(buf, sizeof buf, " switch_cpu=%.3fs", r.cpu_seconds);
    line += buf;
    if (r.cpu_ns_per_frame() >= 0) {
      std::snprintf(buf, sizeof buf, " (%.1f ns/frame)", r.cpu_ns_per_frame());
      line += buf;
    }
  }
  if (!r.completed) line += " FAILED: " + r.error;
  return line;
}

std::string format_json(const BenchReport& r) {
  std::string out =
      "{\"target\":" + json_string(r.target) + ",\"mode\":\"" + std::string(mode_name(r.mode)) +
      "\",\"size\":" + std::to_string(r.size) + ",\"ports\":" + std::to_string(r.ports) +
      ",\"vlan\":" + (r.vlan != 0 ? std::to_string(r.vlan) : "null") + ",\"tagged_ports\":[";
  bool first = true;
  for (uint32_t i = 0; i < r.ports && i < 64; ++i) {
    if (((r.vlan_ports >> i) & 1) == 0) continue;
    out += (first ? "" : ",") + std::to_string(i);
    first = false;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "],\"seconds\":%.6f,\"rx_frames\":%llu,\"tx_frames\":%llu,\"fps\":%.1f,"
                "\"gbps\":%.6f,\"loss_frames\":%llu,\"loss_pct\":%.6f,\"reordered\":%llu,"
                "\"corrupt\":%llu,\"foreign\":%llu",
                r.seconds, static_cast<unsigned long long>(r.rx_frames),
                static_cast<unsigned long long>(r.tx_frames), r.fps(), r.gbps(),
                static_cast<unsigned long long>(r.loss_frames), r.loss_pct(),
                static_cast<unsigned long long>(r.reordered),
                static_cast<unsigned long long>(r.corrupt),
                static_cast<unsigned long long>(r.foreign));
  out += buf;
  if (r.cpu_measured) {
    std::snprintf(buf, sizeof buf, ",\"switch_cpu_s\":%.6f", r.cpu_seconds);
    out += buf;
  } else {
    out += ",\"switch_cpu_s\":null";
  }
  if (r.cpu_ns_per_frame() >= 0) {
    std::snprintf(buf, sizeof buf, ",\"switch_cpu_ns_per_frame\":%.1f", r.cpu_ns_per_frame());
    out += buf;
  } else {
    out += ",\"switch_cpu_ns_per_frame\":null";
  }
  out += r.completed ? std::string(",\"completed\":true")
                     : ",\"completed\":false,\"error\":" + json_string(r.error);
  return out + "}";
}

}  // namespace qswitch::tools
