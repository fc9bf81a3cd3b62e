// tests/fuzz/metrics_http_fuzz.cc: the metrics server's HTTP request parsing
// (tools/qswitch/services/http_request_head.h): arbitrary bytes, cut into arbitrary reads no larger
// than room() as the server's reads are, then the routing of a complete head.
//
// Input: the first byte picks the head size limit (small limits reach 431 quickly), the next
// few the read sizes; the rest is the request.
//
// Checked: the outcome and the completed head do not depend on how the bytes were cut (the same
// bytes read whole give the same result); the buffer never grows past max_head_size + 1 bytes; a
// complete head is at most max_head_size bytes, a prefix of the input, ends with a blank line,
// contains no bad byte and has a request line parse_http_request_line() accepts; kBadByte
// happens only with a bad byte in what was read, kTooLarge only past the limit; the route is
// kMetrics only for GET or HEAD of /metrics (with or without a query).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/services/http_request_head.h"

namespace {

using qswitch::tools::HttpRequestHead;
using qswitch::tools::HttpRoute;
using Status = HttpRequestHead::Status;

struct Outcome {
  Status status = Status::kIncomplete;
  std::string head;  // kComplete
  size_t consumed = 0;
};

// Feeds `bytes` in reads of the sizes `cuts` gives (cycled), each capped by room() as the
// server caps its reads.
Outcome run(std::string_view bytes, size_t limit, const std::vector<size_t>& cuts) {
  HttpRequestHead h(limit);
  Outcome o;
  size_t at = 0;
  for (size_t k = 0; at < bytes.size(); ++k) {
    const size_t room = h.room();
    FUZZ_CHECK(room >= 1 && room <= limit + 1);
    const size_t cut = cuts.empty() ? bytes.size() : std::max<size_t>(1, cuts[k % cuts.size()]);
    const size_t n = std::min({cut, room, bytes.size() - at});
    o.status = h.add(bytes.data() + at, n);
    at += n;
    if (o.status != Status::kIncomplete) break;
  }
  o.consumed = at;
  if (o.status == Status::kComplete) o.head = std::string(h.head());
  return o;
}

bool bad_byte(unsigned char ch) {
  return (ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static constexpr size_t kLimits[] = {8192, 64, 16, 1};
  const size_t limit = in.PickValueInArray(kLimits);
  std::vector<size_t> cuts;
  const size_t ncuts = in.ConsumeIntegralInRange<size_t>(0, 8);
  for (size_t i = 0; i < ncuts; ++i) cuts.push_back(in.ConsumeIntegralInRange<size_t>(1, 300));
  const std::string bytes = in.ConsumeRemainingBytesAsString();

  const Outcome whole = run(bytes, limit, {});
  const Outcome cut = run(bytes, limit, cuts);
  FUZZ_CHECK(whole.status == cut.status);
  FUZZ_CHECK(whole.head == cut.head);

  const std::string_view read(bytes.data(), cut.consumed);
  switch (cut.status) {
    case Status::kIncomplete:
      FUZZ_CHECK(cut.consumed == bytes.size() && bytes.size() <= limit);
      break;
    case Status::kBadByte:
      FUZZ_CHECK(std::any_of(read.begin(), read.end(),
                             [](char c) { return bad_byte(static_cast<unsigned char>(c)); }));
      break;
    case Status::kBadRequestLine:
      FUZZ_CHECK(read.find('\n') != std::string_view::npos);
      break;
    case Status::kTooLarge:
      FUZZ_CHECK(cut.consumed == limit + 1);
      break;
    case Status::kComplete: {
      const std::string& h = cut.head;
      FUZZ_CHECK(h.size() <= limit);
      FUZZ_CHECK(std::string_view(bytes).substr(0, h.size()) == h);
      FUZZ_CHECK(h.size() >= 2 && h.back() == '\n');
      FUZZ_CHECK(h[h.size() - 2] == '\n' ||
                 (h.size() >= 3 && h[h.size() - 2] == '\r' && h[h.size() - 3] == '\n'));
      FUZZ_CHECK(std::none_of(h.begin(), h.end(),
                              [](char c) { return bad_byte(static_cast<unsigned char>(c)); }));
      std::string_view line(h.data(), h.find('\n'));
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      std::string_view method, target;
      FUZZ_CHECK(qswitch::tools::parse_http_request_line(line, method, target));
      FUZZ_CHECK(!method.empty() && !target.empty() && target.front() == '/');
      const HttpRoute route = qswitch::tools::route_http_request(h);
      const bool get_or_head = method == "GET" || method == "HEAD";
      const std::string_view path = target.substr(0, target.find('?'));
      FUZZ_CHECK((route.kind == HttpRoute::Kind::kMetrics) == (get_or_head && path == "/metrics"));
      FUZZ_CHECK((route.kind == HttpRoute::Kind::kMethodNotAllowed) == !get_or_head);
      FUZZ_CHECK(route.head_only == (method == "HEAD"));
      break;
    }
  }
  return 0;
}
