// tools/qswitch/services/control_api.cc: see the header.
#include "tools/qswitch/services/control_api.h"

#include <exception>

#include "tools/qswitch/services/control_server.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

const char* type_name(const json& j) {
  // nlohmann's type_name() is noexcept; spelled out to keep JSON's own words.
  return j.type_name();
}

std::string reply_line(const Reply& r, const json* id) {
  json out = json::object();
  out["ok"] = r.ok;
  if (r.ok) {
    out["result"] = r.result;
  } else {
    out["error"] = r.error;
  }
  if (id != nullptr) out["id"] = *id;
  return dump_json(out);
}

}  // namespace

ControlApi::ControlApi(std::string version) : version_(std::move(version)) {
  add("help", "list the commands with a one-line description each", [this](const json& args) {
    std::string error;
    if (!check_arg_names(args, {}, "help", error)) return Reply::failure(error);
    json list = json::array();
    for (const auto& [name, command] : commands_) {
      list.push_back(json{{"name", name}, {"summary", command.summary}});
    }
    return Reply::success(std::move(list));
  });
  add("version", "the qswitch version answering on this socket", [this](const json& args) {
    std::string error;
    if (!check_arg_names(args, {}, "version", error)) return Reply::failure(error);
    return Reply::success(json{{"name", "qswitch"}, {"version", version_}});
  });
}

void ControlApi::add(std::string name, std::string summary, Handler handler) {
  commands_[std::move(name)] = Command{std::move(summary), std::move(handler), nullptr};
}

void ControlApi::add_with_fds(std::string name, std::string summary, FdHandler handler) {
  commands_[std::move(name)] = Command{std::move(summary), nullptr, std::move(handler)};
}

std::string ControlApi::too_long_reply(size_t limit) const {
  return reply_line(Reply::failure("request too long: a request is one line, and the rest of "
                                   "this one was discarded; limit " +
                                   std::to_string(limit) + " bytes"),
                    nullptr);
}

std::string ControlApi::busy_reply(size_t max_clients) const {
  return reply_line(Reply::failure("too many control clients: " + std::to_string(max_clients) +
                                   " are connected, the limit; try again when one has closed"),
                    nullptr);
}

std::string ControlApi::too_many_fds_reply(size_t limit) const {
  return reply_line(Reply::failure("too many file descriptors with one request: the limit is " +
                                   std::to_string(limit) +
                                   " (port.attach takes 1); all were "
                                   "closed and the request was not run"),
                    nullptr);
}

std::string ControlApi::handle_line(std::string_view line) {
  return handle_line(line, nullptr, nullptr);
}

std::string ControlApi::handle_line(std::string_view line, Takeover* takeover) {
  return handle_line(line, takeover, nullptr);
}

std::string ControlApi::handle_line(std::string_view line, Takeover* takeover,
                                    std::vector<io::Fd>* fds) {
  const char* accepted =
      "expected one JSON object per line: {\"cmd\": NAME, \"args\": {...}, "
      "\"id\": ANY}";
  bool too_deep = false;
  json request = parse_json_line(line, &too_deep);
  if (request.is_discarded()) {
    return reply_line(
        Reply::failure(std::string(line.find_first_not_of(" \t\r") == std::string_view::npos
                                       ? "empty request"
                                   : too_deep ? "JSON nested more than " +
                                                    std::to_string(kMaxJsonDepth) + " levels deep"
                                              : "malformed JSON") +
                       "; " + accepted),
        nullptr);
  }
  if (!request.is_object()) {
    return reply_line(Reply::failure(std::string("request is a JSON ") + type_name(request) +
                                     ", not an object; " + accepted),
                      nullptr);
  }
  const json* id = nullptr;
  if (auto at = request.find("id"); at != request.end()) id = &*at;

  for (const auto& [key, value] : request.items()) {
    if (key != "cmd" && key != "args" && key != "id") {
      return reply_line(Reply::failure("unknown request field '" + key +
                                       "'; a request has only cmd, args and id"),
                        id);
    }
    (void)value;
  }
  auto cmd_at = request.find("cmd");
  if (cmd_at == request.end()) {
    return reply_line(Reply::failure(std::string("missing \"cmd\"; ") + accepted +
                                     "; \"help\" lists the commands"),
                      id);
  }
  if (!cmd_at->is_string()) {
    return reply_line(Reply::failure(std::string("\"cmd\" is a JSON ") + type_name(*cmd_at) +
                                     ", expected a string naming a command; \"help\" lists "
                                     "them"),
                      id);
  }
  const std::string& cmd = cmd_at->get_ref<const std::string&>();
  auto command = commands_.find(cmd);
  if (command == commands_.end()) {
    std::string names;
    for (const auto& [name, c] : commands_) {
      if (!names.empty()) names += ", ";
      names += name;
    }
    return reply_line(Reply::failure("unknown command '" + cmd + "'; commands: " + names), id);
  }
  static const json kNoArgs = json::object();
  const json* args = &kNoArgs;
  if (auto at = request.find("args"); at != request.end()) {
    if (!at->is_object()) {
      return reply_line(Reply::failure(std::string("\"args\" is a JSON ") + type_name(*at) +
                                       ", expected an object, e.g. {\"spec\": \"tcp::8080-:80\"}"),
                        id);
    }
    args = &*at;
  }
  // The control plane's boundary: a handler bug (a JSON type error, say) becomes an error reply
  // rather than the end of the switch. Handlers themselves use the non-throwing API.
  Reply reply;
  try {
    if (command->second.fd_handler) {
      std::vector<io::Fd> none;
      reply = command->second.fd_handler(*args, fds != nullptr ? *fds : none);
    } else {
      reply = command->second.handler(*args);
    }
  } catch (const std::exception& e) {
    reply = Reply::failure("internal error in '" + cmd + "': " + e.what());
  }
  if (reply.ok && reply.takeover) {
    if (takeover == nullptr) {
      reply = Reply::failure("'" + cmd +
                             "' streams on the control connection, which this "
                             "transport cannot hand over");
    } else {
      *takeover = std::move(reply.takeover);
    }
  }
  return reply_line(reply, id);
}

bool check_arg_names(const json& args, std::initializer_list<const char*> allowed,
                     const std::string& cmd, std::string& error) {
  for (const auto& [key, value] : args.items()) {
    (void)value;
    bool known = false;
    std::string names;
    for (const char* a : allowed) {
      if (key == a) known = true;
      if (!names.empty()) names += ", ";
      names += a;
    }
    if (!known) {
      error = "'" + cmd + "' has no argument '" + key + "'; " +
              (names.empty() ? std::string("it takes none") : "it takes: " + names);
      return false;
    }
  }
  return true;
}

bool string_arg(const json& args, const char* name, const std::string& cmd, std::string& out,
                std::string& error) {
  auto at = args.find(name);
  if (at == args.end()) {
    error = "'" + cmd + "' needs the argument \"" + name + "\" (a string)";
    return false;
  }
  if (!at->is_string()) {
    error = "'" + cmd + "': argument \"" + name + "\" is a JSON " + at->type_name() +
            ", expected a string";
    return false;
  }
  out = at->get_ref<const std::string&>();
  return true;
}

}  // namespace qswitch::tools
