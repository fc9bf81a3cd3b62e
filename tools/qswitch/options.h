// tools/qswitch/options.h: the qswitch command line as typed values.
// Everything is parsed and checked here, up front; a bad value is an error that names it and
// says what would be accepted, and nothing starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/io/endpoint.h"

namespace qswitch::tools {

struct Options {
  std::vector<io::Endpoint> listen;
  std::vector<io::Endpoint> connect;
  uint32_t mac_age_s = 300;
  uint32_t mac_max = 4096;
  uint64_t queue_size = 1 << 20;
  uint32_t guests = 2;
  bool help = false;
  bool version = false;
};

struct ParseResult {
  std::optional<Options> options;
  std::string error;  // set when options is empty
};

ParseResult parse_options(int argc, const char* const* argv);
// "unix:PATH" or "tcp:HOST:PORT" ("tcp:[::1]:PORT" for IPv6). nullopt + error text otherwise.
std::optional<io::Endpoint> parse_endpoint(const std::string& text, std::string& error);
// $XDG_RUNTIME_DIR/qswitch/default.sock, or /tmp/qswitch-$UID/default.sock.
std::string default_socket_path();
const char* usage_text();

}  // namespace qswitch::tools
