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
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "%s %s size=%u ports=%u time=%.2fs rx=%s %.2f Gbit/s loss=%.2f%% lost=%llu "
      "reorder=%llu corrupt=%llu foreign=%llu",
      r.target.c_str(), std::string(mode_name(r.mode)).c_str(), r.size, r.ports, r.seconds,
      rate_text(r.fps()).c_str(), r.gbps(), r.loss_pct(),
      static_cast<unsigned long long>(r.loss_frames), static_cast<unsigned long long>(r.reordered),
      static_cast<unsigned long long>(r.corrupt), static_cast<unsigned long long>(r.foreign));
  std::string line = buf;
  if (!r.completed) line += " FAILED: " + r.error;
  return line;
}

std::string format_json(const BenchReport& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "\"size\":%u,\"ports\":%u,\"seconds\":%.6f,\"rx_frames\":%llu,\"tx_frames\":%llu,"
                "\"fps\":%.1f,\"gbps\":%.6f,\"loss_frames\":%llu,\"loss_pct\":%.6f,"
                "\"reordered\":%llu,\"corrupt\":%llu,\"foreign\":%llu",
                r.size, r.ports, r.seconds, static_cast<unsigned long long>(r.rx_frames),
                static_cast<unsigned long long>(r.tx_frames), r.fps(), r.gbps(),
                static_cast<unsigned long long>(r.loss_frames), r.loss_pct(),
                static_cast<unsigned long long>(r.reordered),
                static_cast<unsigned long long>(r.corrupt),
                static_cast<unsigned long long>(r.foreign));
  std::string out = "{\"target\":" + json_string(r.target) + ",\"mode\":\"" +
                    std::string(mode_name(r.mode)) + "\"," + buf;
  out += r.completed ? std::string(",\"completed\":true")
                     : ",\"completed\":false,\"error\":" + json_string(r.error);
  return out + "}";
}

}  // namespace qswitch::tools
