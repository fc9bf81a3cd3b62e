// tools/qswitch/services/http_request_head.h: the metrics server's HTTP request parsing, as pure
// code (no sockets, no loop): the request head read in pieces as reads deliver it, and where a
// complete head is routed. metrics_server.cc does the I/O around it; the fuzz target
// tests/fuzz/metrics_http_fuzz.cc drives it with arbitrary bytes and arbitrary read sizes.
//
// Theory of operation
// - The head is read until the blank line that ends it (CRLF CRLF, or bare LF LF as lenient
//   servers accept). Each new byte is checked once: a byte that cannot be in a head (NUL, other
//   control characters but HTAB, CR and LF; RFC 9110 section 5.5) is kBadByte. The request line
//   is checked as soon as its '\n' arrives: METHOD SP TARGET SP HTTP/1.x, the method a token
//   (RFC 9110 section 5.6.2), the target starting with '/' (RFC 9112 section 3); else
//   kBadRequestLine. A blank line within max_head_size bytes completes the head (kComplete); past
//   max_head_size bytes without one it is kTooLarge (431, RFC 6585 section 5). Nothing after the
//   head is looked at.
// - room() bounds the next read so the buffer never holds more than max_head_size + 1 bytes: the
//   one byte over the limit is what tells kTooLarge.
// - The outcome does not depend on how the bytes were cut into reads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qswitch::tools {

class HttpRequestHead {
 public:
  enum class Status { kIncomplete, kBadByte, kBadRequestLine, kTooLarge, kComplete };

  explicit HttpRequestHead(size_t max_head_size) : max_head_size_(max_head_size) {}

  // The most bytes the next read may add (at least 1 while kIncomplete).
  size_t room() const;
  // Appends `size` bytes just read and checks them. Call only while kIncomplete; once it returns
  // anything else the head is done with (the caller answers and calls clear()).
  Status add(const char* data, size_t size);
  // After kComplete: the head, request line to blank line included.
  std::string_view head() const { return in_; }
  // Frees the buffer.
  void clear() { std::string().swap(in_); }

 private:
  size_t max_head_size_;
  std::string in_;             // the request head so far
  size_t scanned_ = 0;         // bytes of in_ already checked
  bool line_checked_ = false;  // the request line was complete and valid
};

// Where a complete head goes: GET or HEAD of /metrics (a query string is ignored), another path
// (404), or another method (405).
struct HttpRoute {
  enum class Kind { kMetrics, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  bool head_only = false;  // HEAD: no body
};
// `head`: a head that HttpRequestHead completed (its request line is valid).
HttpRoute route_http_request(std::string_view head);

// "METHOD SP TARGET SP HTTP/1.x" (RFC 9112 section 3), without its line end. False if malformed.
bool parse_http_request_line(std::string_view line, std::string_view& method,
                             std::string_view& target);

}  // namespace qswitch::tools
