// tests/integration/control_json.h: reading a running qswitch's state through its JSON control
// API (the `ports`, `macs`, `stats` commands), as tests must: never from its log text.
//
// Each call opens a control connection to the switch's printed "control unix:PATH", sends one
// request and parses the reply; failures are reported as gtest failures and give a null json.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

}  // namespace qswitch::integration
