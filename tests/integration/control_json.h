// tests/integration/control_json.h: reading a running qswitch's state through its JSON control
// API (the `ports`, `macs`, `stats` commands), as tests must: never from its log text.
//
// Each call opens a control connection to the switch's printed "control unix:PATH", sends one
// request and parses the reply; failures are reported as gtest failures and give a null json.
// ControlSession does the same over one connection that it keeps, for tests that send many
// requests (and look at the refusals too).
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "tests/support/control_client.h"
#include "tests/support/qswitch_process.h"
#include "tests/support/test_frames.h"

namespace qswitch::integration {

// The "result" of a successful reply to `request` (e.g. {"cmd":"ports"}), or a null json.
inline nlohmann::json control_result(const test_support::QswitchProcess& sw,
                                     const nlohmann::json& request) {
  std::string error;
  auto ctl = test_support::ControlClient::connect(sw.control(), &error);
  if (!ctl) {
    ADD_FAILURE() << "control connect to \"" << sw.control() << "\": " << error;
    return nlohmann::json();
  }
  const test_support::LineResult r = ctl->request(request.dump());
  if (!r.ok()) {
    ADD_FAILURE() << "no reply to " << request.dump() << ": " << to_string(r.status) << " "
                  << r.error;
    return nlohmann::json();
  }
  const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
  if (!reply.is_object() || !reply.value("ok", false) || !reply.contains("result")) {
    ADD_FAILURE() << request.dump() << " failed: " << r.line;
    return nlohmann::json();
  }
  return reply["result"];
}

// The `ports` row of the port that has learned `mac`, or a null json (with a failure).
inline nlohmann::json port_with_mac(const test_support::QswitchProcess& sw,
                                    const test_support::Mac& mac) {
  const nlohmann::json ports = control_result(sw, {{"cmd", "ports"}});
  for (const nlohmann::json& row : ports) {
    for (const nlohmann::json& m : row["macs"]) {
      if (m == test_support::mac_to_string(mac)) return row;
    }
  }
  ADD_FAILURE() << "no port has learned " << test_support::mac_to_string(mac) << ": "
                << ports.dump();
  return nlohmann::json();
}

// The `ports` row of the first port of `kind` ("slirp", "dgram", ...), or a null json.
inline nlohmann::json port_of_kind(const test_support::QswitchProcess& sw,
                                   const std::string& kind) {
  const nlohmann::json ports = control_result(sw, {{"cmd", "ports"}});
  for (const nlohmann::json& row : ports) {
    if (row.value("kind", "") == kind) return row;
  }
  ADD_FAILURE() << "no port of kind " << kind << ": " << ports.dump();
  return nlohmann::json();
}

// One counter of a `ports` row (a failure and 0 when the row has none of that name).
inline uint64_t port_counter(const nlohmann::json& row, const std::string& name) {
  if (!row.is_object() || !row.contains("counters") || !row["counters"].contains(name)) {
    ADD_FAILURE() << "no counter " << name << " in " << row.dump();
    return 0;
  }
  return row["counters"][name].get<uint64_t>();
}

// One control connection to `sw`, opened at the first request and kept for the next ones.
class ControlSession {
 public:
  explicit ControlSession(const test_support::QswitchProcess& sw) : sw_(sw) {}

  // The reply to `request` (an object with "ok", true or false), or a null json and a failure.
  nlohmann::json reply_to(const nlohmann::json& request) {
    if (!ctl_) {
      std::string why;
      ctl_ = test_support::ControlClient::connect(sw_.control(), &why);
      if (!ctl_) {
        ADD_FAILURE() << "control connect to '" << sw_.control() << "': " << why;
        return nlohmann::json();
      }
    }
    const test_support::LineResult r = ctl_->request(request.dump());
    const nlohmann::json reply = nlohmann::json::parse(r.line, nullptr, false);
    if (!r.ok() || !reply.is_object() || !reply.contains("ok")) {
      ADD_FAILURE() << request.dump() << ": " << to_string(r.status) << " " << r.error << " "
                    << r.line;
      return nlohmann::json();
    }
    return reply;
  }

  // The result of a request that must succeed; a null json (and a failure) otherwise.
  nlohmann::json result_of(const nlohmann::json& request) {
    const nlohmann::json reply = reply_to(request);
    if (!reply.is_object() || !reply.value("ok", false)) {
      ADD_FAILURE() << request.dump() << " -> " << reply.dump();
      return nlohmann::json();
    }
    return reply.value("result", nlohmann::json());
  }

 private:
  const test_support::QswitchProcess& sw_;
  std::optional<test_support::ControlClient> ctl_;
};

}  // namespace qswitch::integration
