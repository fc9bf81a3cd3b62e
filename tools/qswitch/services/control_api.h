// tools/qswitch/services/control_api.h: the control protocol: JSON requests, one per line,
// dispatched to a registry of named commands; one JSON reply line per request.
//
// Theory of operation
// - request: {"cmd": "hostfwd.add", "args": {...}, "id": <any, optional>}
//   reply:   {"ok": true, "result": <value>, "id": <echoed>} or
//            {"ok": false, "error": "<what was wrong and what is accepted>", "id": <echoed>}
// - Commands are registered by name with a one-line summary; "help" lists them and "version"
//   says which qswitch answers. Later commands ("ports", "stats", ...) are added the same way
//   without touching what exists.
// - Every problem is an error reply: malformed JSON, a request that is not an object, a missing
//   or unknown "cmd", "args" that is not an object, bad arguments. Handlers validate everything
//   before they change anything, so a bad request never changes anything.
// - JSON is parsed with nlohmann's non-throwing API (parse_json_line); replies are dumped with
//   invalid UTF-8 replaced, never thrown. A request nested deeper than kMaxJsonDepth levels is
//   an error reply: nothing recurses on it (copying or dumping a json value recurses per level).
//   The transport (line splitting, limits) is tools/qswitch/services/control_server.h.
// - A handler may return a Reply with a `takeover`: after the reply line is sent, the transport
//   hands the connection's fd to it (the "capture" command streams pcap on it). A transport that
//   cannot hand connections over uses handle_line(line), which turns such a reply into an error.
// - File descriptors passed with a request (SCM_RIGHTS, see control_server.h) reach only commands
//   added with add_with_fds(); the handler moves out the ones it keeps, and the transport closes
//   the rest (so a command that takes none simply ignores them): the transport passes them to
//   handle_line(line, takeover, fds).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backends/runtime/io/fd.h"
#include "qswitch/version.h"
#include "tools/qswitch/config/json_line.h"
#include "tools/qswitch/services/control_server.h"

namespace qswitch::tools {

// Takeover (control_server.h) receives the client connection after the reply was sent.

// bugprone-exception-escape is a false positive of clang-tidy 14 on the implicit constructors
// (llvm-project#54668): every member's are noexcept (asserted below).
struct Reply {  // NOLINT(bugprone-exception-escape)
  bool ok = true;
  nlohmann::json result;  // when ok
  std::string error;      // when !ok
  Takeover takeover;      // when ok: run by the transport once the reply is sent

  static Reply success(nlohmann::json result = nullptr) {
    Reply r;
    r.result = std::move(result);
    return r;
  }
  static Reply failure(std::string error) {
    Reply r;
    r.ok = false;
    r.error = std::move(error);
    return r;
  }
};
static_assert(std::is_nothrow_default_constructible_v<Reply> &&
              std::is_nothrow_move_constructible_v<Reply>);

class ControlApi {
 public:
  // `args` is always an object (an empty one when the request has none).
  using Handler = std::function<Reply(const nlohmann::json& args)>;
  // As Handler, plus the fds that came with the request (often none): moves out what it keeps.
  using FdHandler = std::function<Reply(const nlohmann::json& args, std::vector<io::Fd>& fds)>;

  explicit ControlApi(std::string version = kVersion);

  // A second add with the same name replaces the first.
  void add(std::string name, std::string summary, Handler handler);
  void add_with_fds(std::string name, std::string summary, FdHandler handler);
  bool has(const std::string& name) const { return commands_.count(name) != 0; }

  // One request line (without '\n') -> one reply line (without '\n').
  std::string handle_line(std::string_view line);
  // As above; a successful reply's takeover, if any, is moved to *takeover (which the caller
  // runs with the connection's fd once the reply is sent). nullptr: such replies are errors.
  std::string handle_line(std::string_view line, Takeover* takeover);
  // As above, with the fds that came with the line (nullptr: none).
  std::string handle_line(std::string_view line, Takeover* takeover, std::vector<io::Fd>* fds);
  // Replies for the transport's own conditions (tools::ControlHandlers).
  std::string too_long_reply(size_t limit) const;
  std::string busy_reply(size_t max_clients) const;
  // The reply to a line that came with more file descriptors than the server takes.
  std::string too_many_fds_reply(size_t limit) const;

 private:
  struct Command {
    std::string summary;
    Handler handler;
    FdHandler fd_handler;  // set instead of handler by add_with_fds
  };
  std::string version_;
  std::map<std::string, Command> commands_;  // sorted: "help" lists them in order
};

// Argument helpers for handlers. Each returns false with `error` naming the argument and saying
// what is accepted.
// Rejects argument names other than `allowed` (a typo must not be silently ignored).
bool check_arg_names(const nlohmann::json& args, std::initializer_list<const char*> allowed,
                     const std::string& cmd, std::string& error);
// A required string argument.
bool string_arg(const nlohmann::json& args, const char* name, const std::string& cmd,
                std::string& out, std::string& error);

}  // namespace qswitch::tools
