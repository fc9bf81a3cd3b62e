// tools/qswitch/config/json_line.cc: see the header.
#include "tools/qswitch/config/json_line.h"

namespace qswitch::tools {

using json = nlohmann::json;

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse_json_line(std::string_view line, bool* too_deep) {
  bool deep = false;
  // The callback sees each array or object as it opens, with the number of enclosing ones;
  // returning false drops it, and the parser then stores nothing inside it (iteratively).
  const json::parser_callback_t limit = [&deep](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      deep = true;
      return false;
    }
    return true;
  };
  json j = json::parse(line.begin(), line.end(), limit, /*allow_exceptions=*/false);
  if (too_deep != nullptr) *too_deep = deep;
  if (deep) return json(json::value_t::discarded);
  return j;
}

}  // namespace qswitch::tools
