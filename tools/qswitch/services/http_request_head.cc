// tools/qswitch/services/http_request_head.cc: see the header.
#include "tools/qswitch/services/http_request_head.h"

#include <algorithm>
#include <cstring>

namespace qswitch::tools {

namespace {

bool is_tchar(char ch) {  // RFC 9110 section 5.6.2 token characters
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr && ch != '\0';
}

// A byte that cannot appear in a request head (RFC 9110 section 5.5: no CTLs but HTAB; CR and
// LF only as line ends).
bool bad_head_byte(unsigned char ch) {
  return (ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f;
}

// The request line of `head` (up to its first '\n'), without a '\r' before that.
std::string_view request_line(std::string_view head, size_t eol) {
  std::string_view line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

bool parse_http_request_line(std::string_view line, std::string_view& method,
                             std::string_view& target) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return false;
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
  method = line.substr(0, sp1);
  target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!std::all_of(method.begin(), method.end(), is_tchar)) return false;
  if (target.empty() || target.front() != '/' ||
      target.find_first_of(" \t") != std::string_view::npos) {
    return false;
  }
  return version.size() == 8 && version.substr(0, 7) == "HTTP/1." && version[7] >= '0' &&
         version[7] <= '9';
}

size_t HttpRequestHead::room() const {
  return max_head_size_ + 1 - std::min(in_.size(), max_head_size_);
}

HttpRequestHead::Status HttpRequestHead::add(const char* data, size_t size) {
  in_.append(data, size);
  // Check the new bytes; find the end of the head (an empty line: "\n\r\n" or "\n\n").
  for (size_t i = scanned_; i < in_.size(); ++i) {
    const auto ch = static_cast<unsigned char>(in_[i]);
    if (bad_head_byte(ch)) return Status::kBadByte;
    if (ch != '\n') continue;
    if (!line_checked_) {
      std::string_view method, target;
      if (!parse_http_request_line(request_line(in_, i), method, target)) {
        return Status::kBadRequestLine;
      }
      line_checked_ = true;
      continue;
    }
    const bool blank =
        (i >= 1 && in_[i - 1] == '\n') || (i >= 2 && in_[i - 1] == '\r' && in_[i - 2] == '\n');
    if (blank && i + 1 <= max_head_size_) {
      in_.resize(i + 1);
      return Status::kComplete;
    }
  }
  scanned_ = in_.size();
  return in_.size() > max_head_size_ ? Status::kTooLarge : Status::kIncomplete;
}

HttpRoute route_http_request(std::string_view head) {
  std::string_view method, target;
  parse_http_request_line(request_line(head, head.find('\n')), method, target);  // checked
  HttpRoute r;
  r.head_only = method == "HEAD";
  if (method != "GET" && !r.head_only) {
    r.kind = HttpRoute::Kind::kMethodNotAllowed;
    return r;
  }
  const std::string_view path = target.substr(0, target.find('?'));
  r.kind = path == "/metrics" ? HttpRoute::Kind::kMetrics : HttpRoute::Kind::kNotFound;
  return r;
}

}  // namespace qswitch::tools
