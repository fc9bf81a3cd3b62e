// tests/backends/http_request_head_test.cc: the metrics server's request parsing on its own
// (the server over real sockets is tests/tools/metrics_test.cc).
#include "tools/qswitch/services/http_request_head.h"

#include <gtest/gtest.h>

#include <string>

namespace qswitch::tools {
namespace {

using Status = HttpRequestHead::Status;

Status feed(HttpRequestHead& h, const std::string& bytes, size_t cut) {
  Status st = Status::kIncomplete;
  for (size_t at = 0; at < bytes.size() && st == Status::kIncomplete;) {
    const size_t n = std::min({cut, h.room(), bytes.size() - at});
    st = h.add(bytes.data() + at, n);
    at += n;
  }
  return st;
}

TEST(HttpRequestHeadTest, CompletesAtTheBlankLineWhateverTheReadSizes) {
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nignored body";
  for (size_t cut : {1u, 2u, 7u, 4096u}) {
    HttpRequestHead h(8192);
    ASSERT_EQ(feed(h, req, cut), Status::kComplete) << cut;
    EXPECT_EQ(h.head(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  HttpRequestHead lf(8192);
  EXPECT_EQ(feed(lf, "HEAD /metrics?x HTTP/1.0\n\n", 3), Status::kComplete);
}

TEST(HttpRequestHeadTest, RejectsBadBytesBadLinesAndOversizedHeads) {
  HttpRequestHead nul(8192);
  EXPECT_EQ(feed(nul, std::string("GET /a\0 HTTP/1.1\r\n", 19), 5), Status::kBadByte);
  HttpRequestHead line(8192);
  EXPECT_EQ(feed(line, "GET /metrics HTTP/2.0\r\n\r\n", 100), Status::kBadRequestLine);
  HttpRequestHead big(32);
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(40, 'a') + "\r\n\r\n";
  EXPECT_EQ(feed(big, head, 1000), Status::kTooLarge);
  // Exactly at the limit still fits.
  const std::string fits = "GET / HTTP/1.1\r\n\r\n";
  HttpRequestHead exact(fits.size());
  EXPECT_EQ(feed(exact, fits, 1), Status::kComplete);
  HttpRequestHead under(fits.size() - 1);
  EXPECT_EQ(feed(under, fits, 1), Status::kTooLarge);
}

TEST(HttpRequestHeadTest, RoutesByMethodAndPath) {
  EXPECT_EQ(route_http_request("GET /metrics HTTP/1.1\r\n\r\n").kind, HttpRoute::Kind::kMetrics);
  EXPECT_EQ(route_http_request("GET /metrics?a=b HTTP/1.1\n\n").kind, HttpRoute::Kind::kMetrics);
  const HttpRoute head = route_http_request("HEAD /metrics HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.kind, HttpRoute::Kind::kMetrics);
  EXPECT_TRUE(head.head_only);
  EXPECT_EQ(route_http_request("GET /other HTTP/1.1\r\n\r\n").kind, HttpRoute::Kind::kNotFound);
  EXPECT_EQ(route_http_request("POST /metrics HTTP/1.1\r\n\r\n").kind,
            HttpRoute::Kind::kMethodNotAllowed);
}

}  // namespace
}  // namespace qswitch::tools
