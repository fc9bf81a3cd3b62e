// tools/qswitch/config/lab_file.h: the lab file (`qswitch --config lab.toml`), a TOML file that
// says everything the command line says, plus names for ports and guests (docs/lab-file.md).
//
// Theory of operation
// - The text is parsed by toml++ (Debian's libtomlplusplus-dev, header-only here, built with
//   TOML_EXCEPTIONS=0: a syntax error is a parse_result, no exception crosses our code; only
//   lab_file.cc includes it; the non-ASCII characters toml++ 3.3.0 mishandles (undefined
//   behaviour, lab_file.cc) reach it shielded and come back out unchanged). Then a fixed schema
//   is walked: [switch], [[listen]], [[connect]],
//   [[dgram]], [[vhost-user]], [[tap]], [[vxlan]], [[slirp]] (one per VLAN), [[guest]].
//   A key or table outside the schema, a value of the wrong TOML type, a missing key, a bad value
//   and a duplicate name or MAC are errors; the first one found (in file order) is reported.
// - Values go through the command line's own parsers (apply_option_value in options.h, and
//   parse_slirp_options for [[slirp]], whose keys become the --slirp text), so a file and argv
//   accept exactly the same values and say the same thing about a bad one. Integers and
//   booleans are TOML integers and booleans; lists (vxlan remotes, slirp hostfwd, lease,
//   dnssearch) are TOML arrays of strings.
// - Every error reads "FILE:LINE:COLUMN: PATH: MESSAGE", PATH as "listen[1].address" (array
//   indices from 0), the position that of the offending key or value (a missing key: its table's),
//   the message naming the value and what would be accepted.
// - parse_lab_file() gives the options as the file wrote them: no zero configuration, no default
//   control socket. parse_configuration() is main()'s: the command line, on top of --config FILE
//   when given (options.h: port options add ports, the others replace the file's value), then the
//   defaults, as parse_options() does for a command line alone.
// - format_lab_file() writes a resolved configuration back as a lab file with every default
//   filled in (--check); parse_lab_file() reads it back to the same configuration. Strings are
//   written as TOML basic strings: a value from argv that is not UTF-8 cannot be read back.
// - Names (`name = "web"` on a port table, [[guest]]) are checked (1..32 of A-Z a-z 0-9 . _ -, not
//   starting with . or -) and unique among ports and among guests; the control API shows them
//   (`ports` "name" and "guests", `macs` "guest", `stats`; switchd.cc publishes them at start and
//   reload).
// - A [[guest]] may name the port it joins (`port = "web"`: a [[listen]], [[vhost-user]] or
//   [[dgram]] table whose join line is known before start: not tcp or udp port 0, not a
//   connect: vhost-user, and a secured port must not hold other MACs only) and say how it
//   configures itself (`ip = "dhcp"` or "A.B.C.D/LEN"). Ports are resolved after the whole file
//   is read, so [[guest]] may come first. qswitch itself only checks and echoes them (--check
//   writes each guest's join line as a comment); tools/demo --lab boots guests from them.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switch/mac_address.h"
#include "tools/qswitch/config/options.h"

namespace qswitch::tools {

struct LabGuest {
  std::string name;
  sw::MacAddress mac;
  std::string port;  // the name of the port table it joins; "" when the file gave none
  std::string ip;    // "dhcp" or "A.B.C.D/LEN"; "dhcp" by default with a port, "" without
};

// The names a lab file gave its ports: one per entry of Options' list of the same name, "" for
// none (and for every port the command line added).
struct PortNames {
  std::vector<std::string> listen;
  std::vector<std::string> connect;
  std::vector<std::string> dgram;
  std::vector<std::string> vhost_user;
  std::vector<std::string> taps;
  std::vector<std::string> vxlans;
  std::vector<std::string> slirp;
};

struct LabFile {
  Options options;
  PortNames names;
  std::vector<LabGuest> guests;
};

struct LabFileResult {
  std::optional<LabFile> lab;
  std::string error;  // set when lab is empty
};

// Lab file text; `source` is the name errors start with (the file's path).
LabFileResult parse_lab_file(std::string_view text, const std::string& source);
// Reads `path` (a regular file of at most 1 MiB) and parses it.
LabFileResult read_lab_file(const std::string& path);
// The command line, with the lab file it names (--config) under it, resolved.
LabFileResult parse_configuration(int argc, const char* const* argv);
// A resolved configuration as lab file text, every default written out (--check).
// `guest_joins`, when given, holds each guest's join line (join_lines.h: lab_guest_join_line),
// written as a comment under its [[guest]] table.
std::string format_lab_file(const LabFile& lab, const std::vector<std::string>& guest_joins = {});

// The port a guest joins (LabGuest::port): which of Options' lists and the index in it.
struct GuestPort {
  enum class Kind { kListen, kDgram, kVhostUser };
  Kind kind;
  size_t index;
};
// The port named `guest.port` among the lab's [[listen]], [[dgram]] and [[vhost-user]] tables;
// empty when the guest has none or the name is not one of those.
std::optional<GuestPort> guest_port(const LabFile& lab, const LabGuest& guest);

}  // namespace qswitch::tools
