// tests/e2e/qmp_client.h: a QEMU Machine Protocol client, to pause and resume a guest.
//
// Theory of operation: QMP is JSON lines over the unix socket QEMU was started with (-qmp
// unix:PATH,server=on,wait=off, see GuestOptions::qmp_path). QEMU greets with {"QMP": ...}; the
// client must send {"execute": "qmp_capabilities"} before any command. Each command gets one
// {"return": ...} or {"error": ...} line; asynchronous {"event": ...} lines (STOP, RESUME, ...)
// may come in between and are skipped. The transport is test_support::ControlClient (the same
// line framing as qswitch's control socket; QEMU ends its lines with "\r\n", which JSON parsing
// ignores), so every read is bounded by a timeout.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/control_client.h"

namespace qswitch::e2e {

class QmpClient {
 public:
  // Connects (retrying until `timeout`: QEMU creates the socket early in its start-up), reads the
  // greeting and negotiates capabilities. nullopt with *error on failure.
  static std::optional<QmpClient> connect(const std::string& path, std::string* error,
                                          std::chrono::milliseconds timeout);

  // Runs one command; its "return" value, or nullopt with *error (the "error" reply, or what went
  // wrong on the socket).
  std::optional<nlohmann::json> execute(const std::string& command, std::string* error,
                                        std::chrono::milliseconds timeout);
  // query-status: "running", "paused", ...; empty with *error on failure.
  std::string status(std::string* error, std::chrono::milliseconds timeout);

 private:
  explicit QmpClient(test_support::ControlClient client) : client_(std::move(client)) {}
  // The next line that is not an event, parsed; nullopt with *error.
  std::optional<nlohmann::json> read_reply(std::string* error, std::chrono::milliseconds timeout);

  test_support::ControlClient client_;
};

}  // namespace qswitch::e2e
