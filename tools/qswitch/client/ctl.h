// tools/qswitch/client/ctl.h: `qswitch ctl`, the control channel's command-line client.
//
// Theory of operation
// - A separate short-lived process, so it blocks: connect to the control socket, send one
//   request line, read one reply line; the whole exchange is bounded by a 10 s deadline.
//   Before the request: the default directory is checked and, right after connect, the server's
//   uid (socket_trust.h); another user's server is sent nothing.
// - COMMAND words become a request (control_api.h): "hostfwd add SPEC" and "hostfwd remove SPEC"
//   take the spec as {"spec": SPEC}; "raw LINE" sends LINE as is; any other words are a command
//   name joined with '.' ("dhcp leases" -> "dhcp.leases"), and KEY=VALUE words become string
//   arguments, so commands added to the server later work without a new client.
// - --sock PATH may name the switch's data socket too (resolve_control_socket): DIR/NAME.sock
//   means the control socket DIR/NAME.ctl beside it, as for `qswitch exec --switch`, and so does
//   any PATH with PATH.ctl beside it. Nothing is ever sent into a data socket: when the control
//   socket beside a NAME.sock is missing, ctl says so and connects to nothing.
// - Output: a result list of objects prints as a table, {"text": ...} as the text, an object as
//   "key: value" lines; --json prints the reply line itself. Exit 0 on ok, 1 on an error reply
//   (message on stderr) or when the socket cannot be reached, 2 on usage errors.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "backends/runtime/io/fd.h"

namespace qswitch::tools {

// argv[0] is "ctl".
int run_ctl(int argc, const char* const* argv);

// The control socket for a --sock (or exec --switch) PATH, "unix:" prefix allowed: for
// DIR/NAME.sock (a switch's data socket, by the naming convention) the control socket beside
// it, DIR/NAME.ctl (control_path_for); for a PATH with a socket PATH.ctl beside it, that one (a
// data socket named otherwise); any other PATH is taken as the control socket itself. False with
// `error` (naming PATH as a data socket and where its control socket is expected) when PATH ends
// in .sock and there is no socket at DIR/NAME.ctl.
bool resolve_control_socket(const std::string& given, std::string& path, std::string& error);

// The default socket is default_control_path() (options.h).
// The request line for COMMAND words; false with `error` on a usage error.
bool build_ctl_request(const std::vector<std::string>& words, std::string& line,
                       std::string& error);
// For streaming commands (capture): connects, sends `line`, reads the reply line, and hands back
// the open connection and the bytes that followed the reply. False with `error` (which names the
// socket and suggests --sock when it cannot connect).
bool ctl_stream_request(const std::string& path, const std::string& line, io::Fd& fd,
                        std::string& reply, std::string& rest, std::string& error);
// A successful reply's result, as printed without --json (ends with '\n' unless empty).
std::string format_ctl_result(const nlohmann::json& result);

}  // namespace qswitch::tools
