// tools/qswitch/config/json_line.h: the control protocol's wire form, one JSON value per line,
// read and written by the daemon (services/control_api) and by its clients (client/ctl, exec)
// alike. Parsing never throws and never recurses on the input; dumping never throws.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace qswitch::tools {

// Dumps without ever throwing: invalid UTF-8 in strings is replaced.
std::string dump_json(const nlohmann::json& j);

// The deepest nesting of arrays and objects accepted on a control line (requests, and replies
// read by the clients). nlohmann's parser is iterative, but copying and dumping a value recurse
// once per level, so a line nested tens of thousands of levels deep would overflow the stack.
inline constexpr int kMaxJsonDepth = 64;
// Parses one line with nlohmann's non-throwing parser. The result is discarded (is_discarded())
// when the line is not JSON or nests deeper than kMaxJsonDepth; *too_deep tells the second case.
// Nothing recurses on the input: a too deep part is never stored.
nlohmann::json parse_json_line(std::string_view line, bool* too_deep = nullptr);

}  // namespace qswitch::tools
