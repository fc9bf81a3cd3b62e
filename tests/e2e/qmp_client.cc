// tests/e2e/qmp_client.cc: see qmp_client.h.
#include "tests/e2e/qmp_client.h"

namespace qswitch::e2e {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::optional<QmpClient> QmpClient::connect(const std::string& path, std::string* error,
                                            std::chrono::milliseconds timeout) {
  auto client = test_support::ControlClient::connect(path, error, timeout);
  if (!client) return std::nullopt;
  QmpClient qmp(std::move(*client));
  test_support::LineResult greeting = qmp.client_.read_line(timeout);
  if (!greeting.ok()) {
    *error = std::string("no QMP greeting on ") + path + ": " + to_string(greeting.status) + " " +
             greeting.error;
    return std::nullopt;
  }
  json g = json::parse(greeting.line, nullptr, false);
  if (g.is_discarded() || !g.is_object() || !g.contains("QMP")) {
    *error = "unexpected QMP greeting on " + path + ": " + greeting.line;
    return std::nullopt;
  }
  if (!qmp.execute("qmp_capabilities", error, timeout)) return std::nullopt;
  return qmp;
}

std::optional<json> QmpClient::read_reply(std::string* error, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (int lines = 0; lines < 1000; ++lines) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() < 0) left = std::chrono::milliseconds(0);
    test_support::LineResult r = client_.read_line(left);
    if (!r.ok()) {
      *error = std::string("reading a QMP reply: ") + to_string(r.status) + " " + r.error;
      return std::nullopt;
    }
    json j = json::parse(r.line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      *error = "not a QMP reply: " + r.line;
      return std::nullopt;
    }
    if (j.contains("event")) continue;
    return j;
  }
  *error = "more than 1000 QMP events and no reply";
  return std::nullopt;
}

std::optional<json> QmpClient::execute(const std::string& command, std::string* error,
                                       std::chrono::milliseconds timeout) {
  if (!client_.send_line(json{{"execute", command}}.dump(), timeout)) {
    *error = "sending QMP " + command + ": " + client_.last_error();
    return std::nullopt;
  }
  std::optional<json> reply = read_reply(error, timeout);
  if (!reply) return std::nullopt;
  if (reply->contains("return")) return (*reply)["return"];
  *error = "QMP " + command + " failed: " + reply->dump();
  return std::nullopt;
}

std::string QmpClient::status(std::string* error, std::chrono::milliseconds timeout) {
  std::optional<json> r = execute("query-status", error, timeout);
  if (!r) return "";
  if (!r->is_object() || !r->contains("status") || !(*r)["status"].is_string()) {
    *error = "query-status returned " + r->dump();
    return "";
  }
  return (*r)["status"].get<std::string>();
}

}  // namespace qswitch::e2e
