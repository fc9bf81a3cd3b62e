// tools/qswitch/config/lab_file.cc: see the header. One pass over the parsed TOML tree: the top
// level's tables in file order, each table's keys in file order (toml++ keeps a table's keys
// sorted by name, so they are sorted back by position first); the first error stops the walk.
// The table of each kind (kListenKeys, ...) is the schema: its keys, their TOML types and what a
// value is, which the errors and docs/lab-file.md repeat.
#include "tools/qswitch/config/lab_file.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <utility>

// Built with TOML_HEADER_ONLY=1 and TOML_EXCEPTIONS=0 (tools/CMakeLists.txt).
#include <toml++/toml.h>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/socket_address.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/security_keys.h"
#include "tools/qswitch/config/slirp_options_parse.h"
#include "tools/qswitch/config/vlan_keys.h"

namespace qswitch::tools {

namespace {

// A lab file larger than this is surely not one.
constexpr size_t kMaxFileSize = size_t{1} << 20;
constexpr size_t kMaxNameSize = 32;

// The TOML type a key takes. kStrings: an array of strings, or one string for a list of one.
enum class Kind { kString, kInteger, kBoolean, kStrings };

struct KeySpec {
  std::string_view name;
  Kind kind;
  const char* accepts;  // what a value is: the type errors and missing-key errors say it
  bool required = false;
};

constexpr const char* kNameAccepts =
    "a name of 1..32 letters, digits, '.', '_' or '-', not starting with '.' or '-'";

constexpr KeySpec kSwitchKeys[] = {
    {"mac-age", Kind::kInteger, "seconds, 1..1000000, default 300"},
    {"mac-max", Kind::kInteger, "MAC table entries, 16..1000000, default 4096"},
    {"queue-size", Kind::kInteger, "bytes per port's output queue, 65550..1073741824"},
    {"guests", Kind::kInteger, "example QEMU lines to print, 0..64, default 2"},
    {"control", Kind::kString, "unix:PATH or none"},
    {"metrics", Kind::kString, "tcp:HOST:PORT, or a port on 127.0.0.1 (\"9100\")"},
    {"pcap", Kind::kString, "a pcap file name"},
    {"slirp", Kind::kBoolean, "true (a slirp port, [[slirp]] for its settings) or false (none)"},
};

// The keys every port table takes besides its own: its name, its VLANs (vlan_keys.h) and its
// port security (security_keys.h).
constexpr KeySpec kPortKeys[] = {
    {"name", Kind::kString, kNameAccepts},
    {"vlan", Kind::kInteger, "the VLAN of an access port, 1..4094 (default 1)"},
    {"trunk", Kind::kString, "a trunk's tagged VLANs, as \"10,20-29\""},
    {"native", Kind::kInteger, "a trunk's untagged VLAN, 1..4094"},
    {"port-security", Kind::kBoolean, "true: the port sends only from its own MACs"},
    {"mac", Kind::kStrings, "the port's own MACs (unicast, 52:54:00:12:34:56)"},
    {"max-macs", Kind::kInteger, "how many MACs the port may send from, 1..64"},
    {"ip", Kind::kStrings,
     "addresses the port may send from besides DHCP/SLAAC (10.0.2.15, fec0::15)"},
};

constexpr KeySpec kListenKeys[] = {
    {"address", Kind::kString, "unix:PATH or tcp:HOST:PORT", true},
};

constexpr KeySpec kDgramKeys[] = {
    {"address", Kind::kString,
     "unix:PATH, udp:HOST:PORT, udp:LHOST:LPORT-RHOST:RPORT or mcast:GROUP:PORT", true},
    {"remote", Kind::kString, "RHOST:RPORT, the one peer of a udp: address"},
    {"localaddr", Kind::kString, "the interface address of an mcast: address"},
};

constexpr KeySpec kVhostUserKeys[] = {
    {"address", Kind::kString, "unix:PATH (qswitch listens) or connect:PATH (qswitch dials)", true},
};

constexpr KeySpec kTapKeys[] = {
    {"ifname", Kind::kString, "a tap interface name (1..15 bytes)"},
    {"fd", Kind::kInteger, "an inherited tap file descriptor, >= 0"},
};

constexpr KeySpec kVxlanKeys[] = {
    {"vni", Kind::kInteger, "a VNI, 0..16777215", true},
    {"local", Kind::kString, "ADDR[:PORT] (port default 4789, IPv6 as [ADDR]:PORT)", true},
    {"remote", Kind::kStrings, "ADDR[:PORT] of each remote VTEP, 1..64 of them", true},
};

// The --slirp keys, in the order parse_slirp_options applies them (vlan, then QEMU's, net first):
// a prefix of its items in this order fails exactly when the whole does at or before the
// prefix's end.
constexpr KeySpec kSlirpKeys[] = {
    {"vlan", Kind::kInteger, "the VLAN this slirp port serves, 1..4094 (default 1)"},
    {"net", Kind::kString, "A.B.C.D/LEN (LEN 4..30)"},
    {"host", Kind::kString, "an IPv4 address in net"},
    {"dns", Kind::kString, "an IPv4 address in net"},
    {"dhcpstart", Kind::kString, "an IPv4 address in net"},
    {"ipv6", Kind::kBoolean, "true or false"},
    {"ipv6-net", Kind::kString, "PREFIX/LEN (LEN 0..126)"},
    {"ipv6-host", Kind::kString, "an IPv6 address in ipv6-net"},
    {"ipv6-dns", Kind::kString, "an IPv6 address in ipv6-net"},
    {"hostname", Kind::kString, "a host name offered over DHCP"},
    {"domainname", Kind::kString, "a domain name offered over DHCP"},
    {"dnssearch", Kind::kStrings, "domain names"},
    {"tftp", Kind::kString, "a directory served over TFTP"},
    {"bootfile", Kind::kString, "the DHCP boot file name"},
    {"restrict", Kind::kBoolean, "true or false"},
    {"mtu", Kind::kInteger, "68..65520"},
    {"max-leases-per-port", Kind::kInteger, "0..65536 (0: no cap)"},
    {"max-host-sockets", Kind::kInteger, "0..1048576 (0: no cap)"},
    {"max-host-sockets-per-port", Kind::kInteger, "0..1048576 (0: no cap)"},
    {"hostfwd", Kind::kStrings, "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT each"},
    {"lease", Kind::kStrings, "MAC:IP or MAC:IP:NAME each (NAME: the guest's DNS name)"},
    {"dns-record", Kind::kStrings, "NAME=ADDR each (a static DNS record: IPv4 or IPv6)"},
    {"name", Kind::kString, kNameAccepts},
};

constexpr KeySpec kGuestKeys[] = {
    {"name", Kind::kString, kNameAccepts, true},
    {"mac", Kind::kString, "a unicast MAC address, e.g. 52:54:00:12:34:56", true},
    {"port", Kind::kString, "the name of the [[listen]], [[vhost-user]] or [[dgram]] it joins"},
    {"ip", Kind::kString, "\"dhcp\" or an IPv4 address with its prefix length, \"10.0.20.10/24\""},
};

// The top level: [switch] is one table, the others arrays of tables.
constexpr std::string_view kArrayTables[] = {"listen", "connect", "dgram", "vhost-user",
                                             "tap",    "vxlan",   "slirp", "guest"};

std::string accepted_tables() {
  std::string s = "[switch]";
  for (std::string_view t : kArrayTables) s += ", [[" + std::string(t) + "]]";
  return s;
}

std::string key_list(std::span<const KeySpec> specs) {
  std::string s;
  for (const KeySpec& k : specs) {
    if (!s.empty()) s += ", ";
    s += k.name;
  }
  return s;
}

const KeySpec* find_key(std::span<const KeySpec> specs, std::string_view name) {
  for (const KeySpec& k : specs) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

std::string type_of(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "nothing";
  }
}

std::string kind_text(Kind k) {
  switch (k) {
    case Kind::kString:
      return "a string";
    case Kind::kInteger:
      return "an integer";
    case Kind::kBoolean:
      return "a boolean";
    case Kind::kStrings:
      return "an array of strings";
  }
  return "";
}

bool has_kind(const toml::node& n, Kind k) {
  switch (k) {
    case Kind::kString:
      return n.is_string();
    case Kind::kInteger:
      return n.is_integer();
    case Kind::kBoolean:
      return n.is_boolean();
    case Kind::kStrings:
      return n.is_string() || n.is_array();
  }
  return false;
}

// The elements of a kStrings value (one string stands for a list of one).
std::vector<const toml::node*> items_of(const toml::node& n) {
  std::vector<const toml::node*> out;
  if (const toml::array* a = n.as_array()) {
    for (const toml::node& e : *a) out.push_back(&e);
  } else {
    out.push_back(&n);
  }
  return out;
}

const std::string& str(const toml::node& n) { return n.as_string()->get(); }
int64_t integer(const toml::node& n) { return n.as_integer()->get(); }
bool boolean(const toml::node& n) { return n.as_boolean()->get(); }

// "'0': expected ..." from "--mac-age '0': expected ...": the file names the key instead.
std::string without_flag(std::string message, std::string_view option) {
  const std::string flag = "--" + std::string(option);
  for (;;) {
    if (message.rfind(flag + " ", 0) == 0) {
      message.erase(0, flag.size() + 1);
    } else if (message.rfind(flag + ": ", 0) == 0) {
      message.erase(0, flag.size() + 2);
    } else {
      return message;
    }
  }
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameSize || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// "A.B.C.D/LEN", LEN 1..32.
bool valid_ipv4_cidr(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 ||
      !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int n = std::stoi(len);
  in_addr addr{};
  return n >= 1 && n <= 32 && ::inet_pton(AF_INET, text.substr(0, slash).c_str(), &addr) == 1;
}

std::string position_text(const toml::source_position& p) {
  return std::to_string(p.line) + ":" + std::to_string(p.column);
}

// One table's entries in file order.
struct Entry {
  std::string_view key;
  toml::source_position key_at;
  const toml::node* node;
};

std::vector<Entry> in_file_order(const toml::table& t) {
  std::vector<Entry> out;
  for (const auto& [k, v] : t) out.push_back(Entry{k.str(), k.source().begin, &v});
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return std::pair(a.key_at.line, a.key_at.column) < std::pair(b.key_at.line, b.key_at.column);
  });
  return out;
}

// The walk: the file's name, the first error, the result so far.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  bool fail(const toml::source_position& at, const std::string& path, const std::string& message) {
    if (error_.empty()) error_ = source_ + ":" + position_text(at) + ": " + path + ": " + message;
    return false;
  }
  bool fail(const toml::node& at, const std::string& path, const std::string& message) {
    return fail(at.source().begin, path, message);
  }
  std::string take_error() { return std::move(error_); }

  bool read(const toml::table& root);
  LabFile take_lab() { return std::move(lab_); }

 private:
  // Every key of `t` in `specs` and of its type, every required one there.
  // `common`: keys taken besides `specs` (kPortKeys for the port tables).
  bool check_table(const toml::table& t, const std::string& path, std::span<const KeySpec> specs,
                   std::span<const KeySpec> common = {});
  bool read_switch(const toml::node& n);
  bool read_array(std::string_view name, const toml::node& n);
  bool read_port(std::string_view kind, const toml::table& t, const std::string& path);
  bool read_dgram(const toml::table& t, const std::string& path);
  bool read_tap(const toml::table& t, const std::string& path);
  bool read_vxlan(const toml::table& t, const std::string& path);
  bool read_slirp(const toml::table& t, const std::string& path);
  bool read_guest(const toml::table& t, const std::string& path);
  // Every guest's port (known once the whole file is read): one a QEMU guest can join.
  bool resolve_guests();
  bool resolve_guest(size_t i);
  // `value` of `option` (its argv spelling) into the options; an error is reported at `at`.
  bool apply(std::string_view option, const std::string& value, const toml::node& at,
             const std::string& path);
  // A port's `name`, or "" when it has none; false on a bad or repeated name.
  bool port_name(const toml::table& t, const std::string& path, std::string& out);
  // A port's vlan, trunk and native keys as the option's ",vlan=N" items (vlan_keys.h), or ""
  // when it has none; false on a bad value or a contradiction.
  bool vlan_items(const toml::table& t, const std::string& path, std::string& out);
  bool finish();

  std::string source_;
  std::string error_;
  LabFile lab_;
  std::map<std::string, std::string, std::less<>> port_names_;  // name -> path of its table
  const toml::node* switch_slirp_ = nullptr;                    // [switch] slirp = ...
  std::vector<const toml::table*> slirp_tables_;  // the [[slirp]] tables, as options.slirp
  std::vector<const toml::table*> guest_tables_;  // the [[guest]] tables, as lab_.guests
};

bool Reader::check_table(const toml::table& t, const std::string& path,
                         std::span<const KeySpec> specs, std::span<const KeySpec> common) {
  for (const Entry& e : in_file_order(t)) {
    const std::string key_path = path + "." + std::string(e.key);
    const KeySpec* spec = find_key(specs, e.key);
    if (spec == nullptr) spec = find_key(common, e.key);
    if (spec == nullptr) {
      const std::string more = common.empty() ? "" : ", " + key_list(common);
      return fail(e.key_at, key_path, "unknown key; accepted: " + key_list(specs) + more);
    }
    if (!has_kind(*e.node, spec->kind)) {
      return fail(*e.node, key_path,
                  "expected " + kind_text(spec->kind) + " (" + spec->accepts + "), got " +
                      type_of(*e.node));
    }
    if (spec->kind == Kind::kString || spec->kind == Kind::kStrings) {
      const auto items = items_of(*e.node);
      for (size_t i = 0; i < items.size(); ++i) {
        const std::string item_path =
            e.node->is_array() ? key_path + "[" + std::to_string(i) + "]" : key_path;
        if (!items[i]->is_string()) {
          return fail(
              *items[i], item_path,
              "expected a string (" + std::string(spec->accepts) + "), got " + type_of(*items[i]));
        }
        // "\u0000" is valid TOML; the C library would stop reading a path or name at it.
        if (str(*items[i]).find('\0') != std::string::npos) {
          return fail(*items[i], item_path, "a NUL byte (\\u0000) is not accepted in any value");
        }
      }
    }
  }
  for (const KeySpec& k : specs) {
    if (k.required && !t.contains(k.name)) {
      return fail(t.source().begin, path,
                  "missing key " + std::string(k.name) + " (" + k.accepts + ")");
    }
  }
  return true;
}

bool Reader::apply(std::string_view option, const std::string& value, const toml::node& at,
                   const std::string& path) {
  const std::string error = apply_option_value(lab_.options, option, value);
  if (error.empty()) return true;
  return fail(at, path, without_flag(error, option));
}

bool Reader::vlan_items(const toml::table& t, const std::string& path, std::string& out) {
  VlanKeys keys;
  std::string error;
  const toml::node* first = nullptr;
  for (const char* key : {"vlan", "trunk", "native"}) {
    const toml::node* n = t.get(key);
    if (n == nullptr) continue;
    if (first == nullptr) first = n;
    const std::string value =
        std::string_view(key) == "trunk" ? str(*n) : std::to_string(integer(*n));
    if (!keys.set(key, value, error)) return fail(*n, path + "." + key, error);
    out += std::string(",") + key + "=" + value;
  }
  sw::VlanMembership m;
  if (first != nullptr && !keys.resolve(m, error)) return fail(*first, path, error);
  // Port security: port-security (a boolean), mac (one or a list), max-macs.
  SecurityKeys secure;
  first = nullptr;
  if (const toml::node* n = t.get("port-security")) {
    first = n;
    const std::string value = n->as_boolean()->get() ? "on" : "off";
    if (!secure.set("port-security", value, error)) return fail(*n, path + ".port-security", error);
    out += ",port-security=" + value;
  }
  if (const toml::node* list = t.get("mac")) {
    if (first == nullptr) first = list;
    const std::vector<const toml::node*> macs = items_of(*list);
    for (size_t i = 0; i < macs.size(); ++i) {
      const std::string& value = str(*macs[i]);
      if (!secure.set("mac", value, error)) {
        return fail(*macs[i],
                    path + ".mac" + (list->is_array() ? "[" + std::to_string(i) + "]" : ""), error);
      }
      out += ",mac=" + value;
    }
  }
  if (const toml::node* n = t.get("max-macs")) {
    if (first == nullptr) first = n;
    const std::string value = std::to_string(integer(*n));
    if (!secure.set("max-macs", value, error)) return fail(*n, path + ".max-macs", error);
    out += ",max-macs=" + value;
  }
  if (const toml::node* list = t.get("ip")) {
    if (first == nullptr) first = list;
    const std::vector<const toml::node*> ips = items_of(*list);
    for (size_t i = 0; i < ips.size(); ++i) {
      const std::string& value = str(*ips[i]);
      if (!secure.set("ip", value, error)) {
        return fail(*ips[i], path + ".ip" + (list->is_array() ? "[" + std::to_string(i) + "]" : ""),
                    error);
      }
      out += ",ip=" + value;
    }
  }
  sw::PortSecurity security;
  if (first != nullptr && !secure.resolve(security, error)) return fail(*first, path, error);
  return true;
}

bool Reader::port_name(const toml::table& t, const std::string& path, std::string& out) {
  out.clear();
  const toml::node* n = t.get("name");
  if (n == nullptr) return true;
  const std::string& name = str(*n);
  if (!valid_name(name)) {
    return fail(*n, path + ".name", "'" + name + "' is not " + kNameAccepts);
  }
  const auto [at, inserted] = port_names_.emplace(name, path);
  if (!inserted) return fail(*n, path + ".name", "'" + name + "' already names " + at->second);
  out = name;
  return true;
}

bool Reader::read(const toml::table& root) {
  for (const Entry& e : in_file_order(root)) {
    const std::string name(e.key);
    if (name == "switch") {
      if (!read_switch(*e.node)) return false;
      continue;
    }
    if (std::find(std::begin(kArrayTables), std::end(kArrayTables), name) !=
        std::end(kArrayTables)) {
      if (!read_array(name, *e.node)) return false;
      continue;
    }
    std::string hint;
    if (find_key(kSwitchKeys, name) != nullptr) hint = " (" + name + " belongs in [switch])";
    return fail(e.key_at, name,
                (e.node->is_table() ? "unknown table" : "unknown key at the top level") + hint +
                    "; a lab file holds " + accepted_tables());
  }
  return finish();
}

bool Reader::read_switch(const toml::node& n) {
  const toml::table* t = n.as_table();
  if (t == nullptr) return fail(n, "switch", "expected a table ([switch]), got " + type_of(n));
  if (!check_table(*t, "switch", kSwitchKeys)) return false;
  for (const Entry& e : in_file_order(*t)) {
    const std::string path = "switch." + std::string(e.key);
    if (e.key == "slirp") {
      switch_slirp_ = e.node;
    } else if (e.node->is_integer()) {
      if (!apply(e.key, std::to_string(integer(*e.node)), *e.node, path)) return false;
    } else if (!apply(e.key, str(*e.node), *e.node, path)) {
      return false;
    }
  }
  return true;
}

bool Reader::read_array(std::string_view name, const toml::node& n) {
  const std::string what(name);
  const toml::array* a = n.as_array();
  if (a == nullptr || (!a->empty() && !a->is_array_of_tables())) {
    return fail(n, what,
                "expected an array of tables ([[" + what + "]]), got " +
                    (a == nullptr ? type_of(n) : "an array of other things"));
  }
  for (size_t i = 0; i < a->size(); ++i) {
    const toml::table& t = *a->get(i)->as_table();
    const std::string path = what + "[" + std::to_string(i) + "]";
    bool ok = true;
    if (name == "listen" || name == "connect" || name == "vhost-user") {
      ok = read_port(name, t, path);
    } else if (name == "dgram") {
      ok = read_dgram(t, path);
    } else if (name == "tap") {
      ok = read_tap(t, path);
    } else if (name == "vxlan") {
      ok = read_vxlan(t, path);
    } else if (name == "slirp") {
      ok = read_slirp(t, path);
    } else {
      ok = read_guest(t, path);
    }
    if (!ok) return false;
  }
  return true;
}

// [[listen]], [[connect]], [[vhost-user]]: an address as its option takes it.
bool Reader::read_port(std::string_view kind, const toml::table& t, const std::string& path) {
  if (!check_table(t, path,
                   kind == "vhost-user" ? std::span<const KeySpec>(kVhostUserKeys)
                                        : std::span<const KeySpec>(kListenKeys),
                   kPortKeys)) {
    return false;
  }
  std::string name;
  std::string vlans;
  if (!port_name(t, path, name) || !vlan_items(t, path, vlans)) return false;
  const toml::node& address = *t.get("address");
  if (!apply(kind, str(address) + vlans, address, path + ".address")) return false;
  PortNames& names = lab_.names;
  (kind == "listen"    ? names.listen
   : kind == "connect" ? names.connect
                       : names.vhost_user)
      .push_back(name);
  return true;
}

// [[dgram]]: address is the --dgram text; remote and localaddr the structured way of writing its
// udp:LOCAL-REMOTE and mcast:GROUP:PORT,localaddr=ADDR forms.
bool Reader::read_dgram(const toml::table& t, const std::string& path) {
  if (!check_table(t, path, kDgramKeys, kPortKeys)) return false;
  std::string name;
  std::string vlans;
  if (!port_name(t, path, name) || !vlan_items(t, path, vlans)) return false;
  const toml::node& address = *t.get("address");
  std::string text = str(address);
  Options scratch;
  if (const std::string error = apply_option_value(scratch, "dgram", text); !error.empty()) {
    return fail(address, path + ".address", without_flag(error, "dgram"));
  }
  const backends::DgramConfig& alone = scratch.dgram.back();
  const toml::node* extra = nullptr;
  std::string extra_path;
  if (const toml::node* remote = t.get("remote")) {
    if (text.rfind("udp:", 0) != 0 || alone.mode != backends::DgramConfig::Mode::kLearn) {
      return fail(*remote, path + ".remote",
                  "only with a udp:LHOST:LPORT address (address = \"udp:127.0.0.1:5000\", "
                  "remote = \"127.0.0.1:5001\")");
    }
    text += "-" + str(*remote);
    extra = remote;
    extra_path = path + ".remote";
  }
  if (const toml::node* localaddr = t.get("localaddr")) {
    if (alone.mode != backends::DgramConfig::Mode::kMulticast ||
        text.find(',') != std::string::npos) {
      return fail(*localaddr, path + ".localaddr",
                  "only with an mcast:GROUP:PORT address that has no localaddr of its own "
                  "(address = \"mcast:239.0.0.1:5000\", localaddr = \"10.0.0.1\")");
    }
    text += ",localaddr=" + str(*localaddr);
    extra = localaddr;
    extra_path = path + ".localaddr";
  }
  if (extra != nullptr && !apply("dgram", text + vlans, *extra, extra_path)) return false;
  if (extra == nullptr && !apply("dgram", text + vlans, address, path + ".address")) return false;
  lab_.names.dgram.push_back(name);
  return true;
}

bool Reader::read_tap(const toml::table& t, const std::string& path) {
  if (!check_table(t, path, kTapKeys, kPortKeys)) return false;
  std::string name;
  std::string vlans;
  if (!port_name(t, path, name) || !vlan_items(t, path, vlans)) return false;
  const toml::node* ifname = t.get("ifname");
  const toml::node* fd = t.get("fd");
  if (ifname == nullptr && fd == nullptr) {
    return fail(t.source().begin, path,
                "missing key ifname (a tap interface name) or fd (an inherited tap fd)");
  }
  if (ifname != nullptr && fd != nullptr) {
    return fail(*fd, path + ".fd", "give ifname or fd, not both");
  }
  if (ifname != nullptr) {
    // --tap takes "fd=N" for an fd; in the file that is the fd key.
    if (str(*ifname).rfind("fd=", 0) == 0) {
      return fail(*ifname, path + ".ifname",
                  "'" + str(*ifname) + "' is not an interface name; an inherited fd is fd = N");
    }
    if (!apply("tap", str(*ifname) + vlans, *ifname, path + ".ifname")) return false;
  } else if (!apply("tap", "fd=" + std::to_string(integer(*fd)) + vlans, *fd, path + ".fd")) {
    return false;
  }
  lab_.names.taps.push_back(name);
  return true;
}

// [[vxlan]]: its keys become the --vxlan text. The parser's messages start with the item they
// are about ("vni=..", "local=..", "remote=ADDR: .."), which says which key to point at.
bool Reader::read_vxlan(const toml::table& t, const std::string& path) {
  if (!check_table(t, path, kVxlanKeys, kPortKeys)) return false;
  std::string name;
  std::string vlans;
  if (!port_name(t, path, name) || !vlan_items(t, path, vlans)) return false;
  const toml::node& vni = *t.get("vni");
  const toml::node& local = *t.get("local");
  const std::vector<const toml::node*> remotes = items_of(*t.get("remote"));
  // A comma would start another item of the --vxlan text.
  if (str(local).find(',') != std::string::npos) {
    return fail(local, path + ".local", "'" + str(local) + "' is not ADDR[:PORT] (no ',')");
  }
  std::string text = "vni=" + std::to_string(integer(vni)) + ",local=" + str(local);
  for (size_t i = 0; i < remotes.size(); ++i) {
    const std::string& r = str(*remotes[i]);
    if (r.find(',') != std::string::npos) {
      return fail(*remotes[i], path + ".remote[" + std::to_string(i) + "]",
                  "'" + r + "' is not ADDR[:PORT] (no ',')");
    }
    text += ",remote=" + r;
  }
  if (remotes.empty()) {
    return fail(*t.get("remote"), path + ".remote", "expected at least one remote ADDR[:PORT]");
  }
  Options scratch;
  const std::string error = without_flag(apply_option_value(scratch, "vxlan", text), "vxlan");
  if (error.empty()) {
    if (!apply("vxlan", text + vlans, vni, path + ".vni")) return false;
    lab_.names.vxlans.push_back(name);
    return true;
  }
  if (error.rfind("vni=", 0) == 0) return fail(vni, path + ".vni", error);
  if (error.rfind("local=", 0) == 0) return fail(local, path + ".local", error);
  // "remote=ADDR: ...": the last remote written so (a repeated one is the second).
  for (size_t i = remotes.size(); i-- > 0;) {
    if (error.rfind("remote=" + str(*remotes[i]) + ":", 0) == 0) {
      return fail(*remotes[i], path + ".remote[" + std::to_string(i) + "]", error);
    }
  }
  return fail(*t.get("remote"), path + ".remote", error);
}

// [[slirp]]: its keys become --slirp items (",," for a comma in a value), in the parser's order.
// When the whole is refused, the shortest refused prefix (found by bisection) ends with the item
// to blame. One table per VLAN; a host forward on a host socket an earlier table's forward binds
// already is refused at its own position (check_slirp_ports in options.h, table by table).
bool Reader::read_slirp(const toml::table& t, const std::string& path) {
  if (!check_table(t, path, kSlirpKeys)) return false;
  std::string name;
  if (!port_name(t, path, name)) return false;
  struct Item {
    std::string text;  // key=value, commas doubled
    const toml::node* node;
    std::string path;
  };
  std::vector<Item> items;
  for (const KeySpec& k : kSlirpKeys) {
    const toml::node* n = t.get(k.name);
    if (n == nullptr || k.name == "name") continue;
    const std::string key_path = path + "." + std::string(k.name);
    const auto values = items_of(*n);
    for (size_t i = 0; i < values.size(); ++i) {
      const toml::node& v = *values[i];
      std::string value;
      if (v.is_boolean()) {
        value = boolean(v) ? "on" : "off";
      } else if (v.is_integer()) {
        value = std::to_string(integer(v));
      } else {
        for (char c : str(v)) value += c == ',' ? std::string(",,") : std::string(1, c);
      }
      items.push_back(Item{std::string(k.name) + "=" + value, &v,
                           n->is_array() ? key_path + "[" + std::to_string(i) + "]" : key_path});
    }
  }
  const auto text_of = [&](size_t count) {
    std::string text;
    for (size_t i = 0; i < count; ++i) text += (i == 0 ? "" : ",") + items[i].text;
    return text;
  };
  slirp::SlirpOptions options;
  std::string error;
  if (!parse_slirp_options(text_of(items.size()), options, error)) {
    size_t lo = 1;  // the shortest refused prefix is in [lo, hi]
    size_t hi = items.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      slirp::SlirpOptions scratch;
      std::string why;
      if (parse_slirp_options(text_of(mid), scratch, why)) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (items.empty()) return fail(t.source().begin, path, error);
    return fail(*items[lo - 1].node, items[lo - 1].path, error);
  }
  for (size_t j = 0; j < lab_.options.slirp.size(); ++j) {
    const slirp::SlirpOptions& other = lab_.options.slirp[j];
    const std::string other_path = "slirp[" + std::to_string(j) + "] (line " +
                                   std::to_string(slirp_tables_[j]->source().begin.line) + ")";
    if (other.vlan == options.vlan) {
      const toml::node* vlan = t.get("vlan");
      return fail(vlan != nullptr ? vlan->source().begin : t.source().begin,
                  vlan != nullptr ? path + ".vlan" : path,
                  "VLAN " + std::to_string(options.vlan) +
                      (vlan != nullptr ? "" : " (the default)") + " has a slirp port already, " +
                      other_path + "; one [[slirp]] per VLAN (give this one another vlan = N)");
    }
    size_t k = 0;  // options.hostfwd[k] came from the k-th hostfwd item
    for (const Item& item : items) {
      if (item.text.rfind("hostfwd=", 0) != 0) continue;
      const slirp::HostForward& mine = options.hostfwd[k++];
      for (const slirp::HostForward& theirs : other.hostfwd) {
        if (!hostfwds_clash(mine, theirs)) continue;
        return fail(*item.node, item.path,
                    "'" + mine.to_string() + "' binds " + (mine.udp ? "udp" : "tcp") + " port " +
                        std::to_string(mine.host_port) + " on the host, as " + other_path +
                        "'s hostfwd '" + theirs.to_string() +
                        "' does; give one of them another host port");
      }
    }
  }
  lab_.options.slirp.push_back(std::move(options));
  lab_.names.slirp.push_back(name);
  slirp_tables_.push_back(&t);
  return true;
}

bool Reader::read_guest(const toml::table& t, const std::string& path) {
  if (!check_table(t, path, kGuestKeys)) return false;
  const toml::node& name = *t.get("name");
  const toml::node& mac_node = *t.get("mac");
  if (!valid_name(str(name))) {
    return fail(name, path + ".name", "'" + str(name) + "' is not " + kNameAccepts);
  }
  const auto mac = sw::MacAddress::parse(str(mac_node));
  if (!mac || mac->is_multicast() || mac->is_zero()) {
    return fail(mac_node, path + ".mac",
                "'" + str(mac_node) +
                    "' is not a unicast MAC address (six hex bytes with ':', the group bit "
                    "clear, not all zeros; e.g. 52:54:00:12:34:56)");
  }
  for (size_t i = 0; i < lab_.guests.size(); ++i) {
    const std::string other = "guest[" + std::to_string(i) + "]";
    if (lab_.guests[i].name == str(name)) {
      return fail(name, path + ".name", "'" + str(name) + "' already names " + other);
    }
    if (lab_.guests[i].mac == *mac) {
      return fail(mac_node, path + ".mac", mac->to_string() + " is already the MAC of " + other);
    }
  }
  LabGuest guest{str(name), *mac, "", ""};
  const toml::node* ip = t.get("ip");
  if (const toml::node* port = t.get("port")) {
    guest.port = str(*port);
    guest.ip = ip != nullptr ? str(*ip) : "dhcp";
  } else if (ip != nullptr) {
    return fail(*ip, path + ".ip",
                "an address for a guest without a port; give it port = \"NAME\" (the port table "
                "it joins) too");
  }
  if (ip != nullptr && guest.ip != "dhcp") {
    if (!valid_ipv4_cidr(guest.ip)) {
      return fail(*ip, path + ".ip",
                  "'" + guest.ip +
                      "' is not \"dhcp\" or an IPv4 address with its prefix length 1..32 "
                      "(\"10.0.20.10/24\")");
    }
    const std::string addr = guest.ip.substr(0, guest.ip.find('/'));
    for (size_t i = 0; i < lab_.guests.size(); ++i) {
      const std::string& other = lab_.guests[i].ip;
      if (other != "dhcp" && other.substr(0, other.find('/')) == addr) {
        return fail(*ip, path + ".ip",
                    addr + " is already the address of guest[" + std::to_string(i) + "] ('" +
                        lab_.guests[i].name + "')");
      }
    }
  }
  lab_.guests.push_back(std::move(guest));
  guest_tables_.push_back(&t);
  return true;
}

bool Reader::resolve_guests() {
  for (size_t i = 0; i < lab_.guests.size(); ++i) {
    if (!lab_.guests[i].port.empty() && !resolve_guest(i)) return false;
  }
  return true;
}

// The port must be a [[listen]], [[dgram]] or [[vhost-user]] table whose join line is known
// before qswitch starts, and a secured one must let the guest send from its MAC.
bool Reader::resolve_guest(size_t i) {
  const LabGuest& guest = lab_.guests[i];
  const std::string path = "guest[" + std::to_string(i) + "]";
  const toml::node& port_node = *guest_tables_[i]->get("port");
  const std::string at = path + ".port";
  const std::string name = "'" + guest.port + "'";
  const auto named = port_names_.find(guest.port);
  if (named == port_names_.end()) {
    std::string names;
    for (const auto& [n, p] : port_names_) names += (names.empty() ? "" : ", ") + n;
    return fail(port_node, at,
                "no port named " + name +
                    (names.empty() ? " (no port table has a name: give the guest's one name = \"" +
                                         guest.port + "\")"
                                   : " (names: " + names + ")"));
  }
  const std::string& table = named->second;  // "listen[0]"
  const std::optional<GuestPort> port = guest_port(lab_, guest);
  if (!port) {
    return fail(port_node, at,
                name + " is " + table + ", which a QEMU guest cannot join; a guest joins a " +
                    "[[listen]], [[vhost-user]] or [[dgram]] port");
  }
  const Options& o = lab_.options;
  const sw::PortSecurity* security = nullptr;
  std::string why_not;  // why the guest's join line is not known before start
  switch (port->kind) {
    case GuestPort::Kind::kListen: {
      const StreamEndpoint& l = o.listen[port->index];
      if (l.kind == io::SocketAddress::Kind::kTcp && l.port == 0) {
        why_not = "listens on tcp port 0, picked at start";
      }
      security = &l.security;
      break;
    }
    case GuestPort::Kind::kDgram: {
      const backends::DgramConfig& d = o.dgram[port->index];
      if (d.family != AF_UNIX && d.mode != backends::DgramConfig::Mode::kMulticast &&
          io::port_of(d.local) == 0) {
        why_not = "binds udp port 0, picked at start";
      }
      security = &d.security;
      break;
    }
    case GuestPort::Kind::kVhostUser: {
      const backends::vhost_user::VhostUserSpec& v = o.vhost_user[port->index];
      if (v.dial) why_not = "dials the guest's QEMU (connect:), which must then serve the socket";
      security = &v.security;
      break;
    }
  }
  if (!why_not.empty()) {
    return fail(port_node, at,
                name + " (" + table + ") " + why_not +
                    "; a lab guest needs a port whose join line is known before start (a fixed "
                    "port, a unix: path)");
  }
  if (security->enabled && !security->macs.empty() && security->macs.size() >= security->max_macs &&
      std::find(security->macs.begin(), security->macs.end(), guest.mac) == security->macs.end()) {
    std::string macs;
    for (const sw::MacAddress& m : security->macs)
      macs += (macs.empty() ? "" : ", ") + m.to_string();
    return fail(*guest_tables_[i]->get("mac"), path + ".mac",
                guest.mac.to_string() + " is not a MAC its port " + name + " (" + table +
                    ") lets it send from (mac = " + macs +
                    ", max-macs = " + std::to_string(security->max_macs) + ")");
  }
  return true;
}

bool Reader::finish() {
  if (!resolve_guests()) return false;
  if (switch_slirp_ == nullptr) return true;
  if (!boolean(*switch_slirp_)) {
    if (!slirp_tables_.empty()) {
      return fail(*switch_slirp_, "switch.slirp",
                  "false, but the [[slirp]] table at line " +
                      std::to_string(slirp_tables_.front()->source().begin.line) +
                      " asks for one; drop one of them");
    }
    lab_.options.no_slirp = true;
  } else if (lab_.options.slirp.empty()) {
    lab_.options.slirp.push_back(slirp::default_slirp_options());
    lab_.names.slirp.emplace_back();
  }
  return true;
}

// --- what toml++ 3.3.0 must not see ---------------------------------------------------------

// toml++ 3.3.0 (Debian 12) reaches __builtin_unreachable(), undefined behaviour, when it asks
// whether one of these characters is whitespace (is_non_ascii_horizontal_whitespace has no case
// for them), which it does wherever it looks for the end of a key or value or skips blanks, in
// strings too after a line-ending backslash (found by lab_file_fuzz: "a = 1\u020c").
bool unsafe_for_toml(uint32_t c) {
  return (c >= 0xA1 && c <= 0x499) || (c >= 0x2C5E && c <= 0x3057 && c != 0x3000) ||
         (c >= 0xFB26 && c <= 0xFEFE);
}

// So they never reach it: each goes in as itself plus kShield, a character of plane 15 (private
// use: to TOML as good as any other non-ASCII character, and one code point, so every line and
// column stays the same), and comes back out of every string value and message. A file holding
// plane 15 characters of its own is refused.
constexpr uint32_t kShield = 0xF0000;

// The code point of the UTF-8 sequence at s[i] and its length; 0 when it is not one.
size_t utf8_at(std::string_view s, size_t i, uint32_t& c) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char lead = b(0);
  size_t n = 0;
  if (lead < 0x80) {
    c = lead;
    return 1;
  }
  if ((lead & 0xE0) == 0xC0) {
    n = 2;
    c = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    n = 3;
    c = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    n = 4;
    c = lead & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b(k) & 0x3F);
  }
  return n;
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

// `text` with every unsafe character shielded; false with `where` ("LINE:COLUMN") at a plane 15
// character. Bytes that are not UTF-8 pass as they are (toml++ refuses them).
bool shield(std::string_view text, std::string& out, std::string& where) {
  size_t line = 1;
  size_t column = 1;
  for (size_t i = 0; i < text.size();) {
    uint32_t c = 0;
    const size_t n = utf8_at(text, i, c);
    if (n == 0) {
      out += text[i++];
      continue;
    }
    if (c >= kShield && c <= kShield + 0xFFFF) {
      where = std::to_string(line) + ":" + std::to_string(column);
      return false;
    }
    if (unsafe_for_toml(c)) {
      append_utf8(out, c + kShield);
    } else {
      out.append(text.substr(i, n));
    }
    i += n;
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return true;
}

std::string unshield(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint32_t c = 0;
    const size_t n = utf8_at(s, i, c);
    if (n == 4 && c >= kShield && unsafe_for_toml(c - kShield)) {
      append_utf8(out, c - kShield);
    } else {
      out.append(s.substr(i, n == 0 ? 1 : n));
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

// Every string value of the tree, unshielded (toml++ nests at most 256 deep).
void unshield_values(toml::node& n) {
  if (toml::value<std::string>* v = n.as_string()) {
    v->get() = unshield(v->get());
  } else if (toml::array* a = n.as_array()) {
    for (toml::node& e : *a) unshield_values(e);
  } else if (toml::table* t = n.as_table()) {
    for (auto&& [k, v] : *t) unshield_values(v);
  }
}

// --- writing ----------------------------------------------------------------------------------

// A TOML basic string (TOML 1.0: '"' and '\' escaped, control characters as \uXXXX).
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : ", ") + quoted(items[i]);
  return out + "]";
}

int prefix_length(in_addr mask) {
  const uint32_t m = ntohl(mask.s_addr);
  int n = 0;
  while (n < 32 && (m & (0x80000000u >> n)) != 0) ++n;
  return n;
}

// A port's VLAN keys, when it is not on the default (access VLAN 1).
void write_vlans(std::string& out, const sw::VlanMembership& m) {
  if (m.is_default()) return;
  if (!m.trunk) {
    out += "vlan = " + std::to_string(m.untagged) + "\n";
    return;
  }
  out += "trunk = \"" + m.tagged.to_string() + "\"\n";
  if (m.untagged != 0) out += "native = " + std::to_string(m.untagged) + "\n";
}

// A port's security keys, when it is secured.
void write_security(std::string& out, const sw::PortSecurity& s) {
  if (!s.enabled) return;
  out += "port-security = true\n";
  if (!s.macs.empty()) {
    std::vector<std::string> macs;
    for (const sw::MacAddress& m : s.macs) macs.push_back(m.to_string());
    out += "mac = " + quoted_list(macs) + "\n";
  }
  out += "max-macs = " + std::to_string(s.max_macs) + "\n";
  if (!s.ips.empty()) {
    std::vector<std::string> ips;
    for (const sw::IpAddress& a : s.ips) ips.push_back(a.to_string());
    out += "ip = " + quoted_list(ips) + "\n";
  }
}

void write_name(std::string& out, const std::vector<std::string>& names, size_t i) {
  if (i < names.size() && !names[i].empty()) out += "name = " + quoted(names[i]) + "\n";
}

void write_slirp(std::string& out, const slirp::SlirpOptions& s, const std::string& name) {
  out += "\n[[slirp]]\n";
  if (!name.empty()) out += "name = " + quoted(name) + "\n";
  out += "vlan = " + std::to_string(s.vlan) + "\n";
  out +=
      "net = " + quoted(format_ipv4(s.net) + "/" + std::to_string(prefix_length(s.netmask))) + "\n";
  out += "host = " + quoted(format_ipv4(s.host)) + "\n";
  out += "dns = " + quoted(format_ipv4(s.dns)) + "\n";
  out += "dhcpstart = " + quoted(format_ipv4(s.dhcp_start)) + "\n";
  out += std::string("ipv6 = ") + (s.ipv6 ? "true" : "false") + "\n";
  if (s.ipv6) {
    out += "ipv6-net = " +
           quoted(format_ipv6(s.ipv6_prefix) + "/" + std::to_string(s.ipv6_prefix_len)) + "\n";
    out += "ipv6-host = " + quoted(format_ipv6(s.ipv6_host)) + "\n";
    out += "ipv6-dns = " + quoted(format_ipv6(s.ipv6_dns)) + "\n";
  }
  if (!s.hostname.empty()) out += "hostname = " + quoted(s.hostname) + "\n";
  if (!s.domainname.empty()) out += "domainname = " + quoted(s.domainname) + "\n";
  out += "dnssearch = " + quoted_list(s.dnssearch) + "\n";
  if (!s.tftp.empty()) out += "tftp = " + quoted(s.tftp) + "\n";
  if (!s.bootfile.empty()) out += "bootfile = " + quoted(s.bootfile) + "\n";
  out += std::string("restrict = ") + (s.restrict ? "true" : "false") + "\n";
  out += "mtu = " + std::to_string(s.mtu) + "\n";
  out += "max-leases-per-port = " + std::to_string(s.max_leases_per_port) + "\n";
  if (s.max_host_sockets) {
    out += "max-host-sockets = " + std::to_string(*s.max_host_sockets) + "\n";
  } else {
    out += "# max-host-sockets: " + std::to_string(slirp::kDefaultMaxHostSockets) +
           " or half the fd limit, whichever is smaller\n";
  }
  out += "max-host-sockets-per-port = " + std::to_string(s.max_host_sockets_per_port) + "\n";
  std::vector<std::string> forwards;
  for (const slirp::HostForward& f : s.hostfwd) forwards.push_back(f.to_string());
  out += "hostfwd = " + quoted_list(forwards) + "\n";
  std::vector<std::string> leases;
  for (const slirp::Lease& l : s.leases) {
    leases.push_back(l.mac.to_string() + ":" + format_ipv4(l.addr) +
                     (l.name.empty() ? "" : ":" + l.name));
  }
  out += "lease = " + quoted_list(leases) + "\n";
  std::vector<std::string> records;
  for (const slirp::DnsRecord& r : s.dns_records) {
    records.push_back(r.name + "=" + r.addr.to_string());
  }
  if (!records.empty()) out += "dns-record = " + quoted_list(records) + "\n";
}

// A --dgram text as address and, for its connected and multicast forms, remote or localaddr,
// split where parse_dgram_spec splits it.
void write_dgram(std::string& out, const backends::DgramConfig& d) {
  std::string address = d.name;
  if (d.mode == backends::DgramConfig::Mode::kConnected) {
    const size_t dash = address.find('-');
    out += "address = " + quoted(address.substr(0, dash)) + "\n";
    out += "remote = " + quoted(address.substr(dash + 1)) + "\n";
    return;
  }
  if (d.mode == backends::DgramConfig::Mode::kMulticast) {
    const size_t comma = address.find(",localaddr=");
    if (comma != std::string::npos) {
      out += "address = " + quoted(address.substr(0, comma)) + "\n";
      out += "localaddr = " + quoted(address.substr(comma + 11)) + "\n";
      return;
    }
  }
  out += "address = " + quoted(address) + "\n";
}

}  // namespace

LabFileResult parse_lab_file(std::string_view text, const std::string& source) {
  LabFileResult result;
  std::string shielded;
  std::string where;
  if (!shield(text, shielded, where)) {
    result.error = source + ":" + where +
                   ": a character of Unicode plane 15 (private use, U+F0000..U+FFFFF), which "
                   "qswitch keeps for itself; no lab file value needs one";
    return result;
  }
  toml::parse_result parsed = toml::parse(shielded, std::string_view(source));
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    result.error = source + ":" + position_text(e.source().begin) +
                   ": TOML syntax: " + unshield(e.description());
    return result;
  }
  if (shielded != text) unshield_values(parsed.table());
  Reader reader(source);
  if (!reader.read(parsed.table())) {
    result.error = unshield(reader.take_error());
    return result;
  }
  result.lab = reader.take_lab();
  return result;
}

LabFileResult read_lab_file(const std::string& path) {
  LabFileResult result;
  const io::Fd fd = io::Fd::adopt(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    result.error = path + ": cannot read the lab file: " + std::strerror(errno);
    return result;
  }
  if (!S_ISREG(st.st_mode)) {
    result.error = path + ": not a regular file; expected a lab file (TOML, docs/lab-file.md)";
    return result;
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = path + ": cannot read the lab file: " + std::strerror(errno);
      return result;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileSize) {
      result.error = path + ": larger than 1 MiB; a lab file is a few kilobytes";
      return result;
    }
  }
  return parse_lab_file(text, path);
}

LabFileResult parse_configuration(int argc, const char* const* argv) {
  LabFileResult result;
  ParseResult command_line = parse_options(argc, argv);
  if (!command_line.options) {
    result.error = std::move(command_line.error);
    return result;
  }
  const Options& o = *command_line.options;
  if (!o.config || o.help || o.version) {
    result.lab = LabFile{};
    result.lab->options = std::move(*command_line.options);
  } else {
    result = read_lab_file(*o.config);
    if (!result.lab) return result;
    // The command line again, now on top of the file.
    ParseResult merged = parse_options(argc, argv, result.lab->options);
    if (!merged.options) {
      result.error = std::move(merged.error);
      result.lab.reset();
      return result;
    }
    result.lab->options = std::move(*merged.options);
  }
  // Ports the command line added (and zero configuration's listener) have no name.
  const Options& r = result.lab->options;
  PortNames& n = result.lab->names;
  n.listen.resize(r.listen.size());
  n.connect.resize(r.connect.size());
  n.dgram.resize(r.dgram.size());
  n.vhost_user.resize(r.vhost_user.size());
  n.taps.resize(r.taps.size());
  n.vxlans.resize(r.vxlans.size());
  n.slirp.resize(r.slirp.size());
  return result;
}

std::string format_lab_file(const LabFile& lab, const std::vector<std::string>& guest_joins) {
  const Options& o = lab.options;
  const PortNames& names = lab.names;
  std::string out =
      "# The resolved qswitch configuration (qswitch --check): every default written out.\n"
      "# qswitch --config FILE reads it back (docs/lab-file.md).\n"
      "[switch]\n";
  out += "mac-age = " + std::to_string(o.mac_age_s) + "\n";
  out += "mac-max = " + std::to_string(o.mac_max) + "\n";
  out += "queue-size = " + std::to_string(o.queue_size) + "\n";
  out += "guests = " + std::to_string(o.guests) + "\n";
  if (o.control_disabled) {
    out += "control = \"none\"\n";
  } else if (o.control) {
    out += "control = " + quoted(o.control->to_string()) + "\n";
  } else {
    out +=
        "# control: qswitch-PID.ctl in the default socket directory (no unix socket to put it "
        "beside)\n";
  }
  if (o.metrics) {
    out += "metrics = " + quoted(o.metrics->to_string()) + "\n";
  } else {
    out += "# metrics: none\n";
  }
  if (o.pcap) {
    out += "pcap = " + quoted(*o.pcap) + "\n";
  } else {
    out += "# pcap: none\n";
  }
  if (o.slirp.empty()) out += "slirp = false\n";
  for (size_t i = 0; i < o.listen.size(); ++i) {
    out += "\n[[listen]]\naddress = " + quoted(o.listen[i].to_string()) + "\n";
    write_vlans(out, o.listen[i].vlans);
    write_security(out, o.listen[i].security);
    write_name(out, names.listen, i);
  }
  for (size_t i = 0; i < o.connect.size(); ++i) {
    out += "\n[[connect]]\naddress = " + quoted(o.connect[i].to_string()) + "\n";
    write_vlans(out, o.connect[i].vlans);
    write_security(out, o.connect[i].security);
    write_name(out, names.connect, i);
  }
  for (size_t i = 0; i < o.dgram.size(); ++i) {
    out += "\n[[dgram]]\n";
    write_dgram(out, o.dgram[i]);
    write_vlans(out, o.dgram[i].vlans);
    write_security(out, o.dgram[i].security);
    write_name(out, names.dgram, i);
  }
  for (size_t i = 0; i < o.vhost_user.size(); ++i) {
    const auto& v = o.vhost_user[i];
    out +=
        "\n[[vhost-user]]\naddress = " + quoted((v.dial ? "connect:" : "unix:") + v.address.path) +
        "\n";
    write_vlans(out, v.vlans);
    write_security(out, v.security);
    write_name(out, names.vhost_user, i);
  }
  for (size_t i = 0; i < o.taps.size(); ++i) {
    out += "\n[[tap]]\n";
    if (o.taps[i].fd >= 0) {
      out += "fd = " + std::to_string(o.taps[i].fd) + "\n";
    } else {
      out += "ifname = " + quoted(o.taps[i].name) + "\n";
    }
    write_vlans(out, o.taps[i].vlans);
    write_security(out, o.taps[i].security);
    write_name(out, names.taps, i);
  }
  for (size_t i = 0; i < o.vxlans.size(); ++i) {
    const backends::VxlanConfig& v = o.vxlans[i];
    out += "\n[[vxlan]]\nvni = " + std::to_string(v.vni) + "\n";
    out += "local = " + quoted(io::sockaddr_text(v.local)) + "\n";
    std::vector<std::string> remotes;
    for (const backends::VxlanRemote& r : v.remotes) remotes.push_back(io::sockaddr_text(r.addr));
    out += "remote = " + quoted_list(remotes) + "\n";
    write_vlans(out, v.vlans);
    write_security(out, v.security);
    write_name(out, names.vxlans, i);
  }
  for (size_t i = 0; i < o.slirp.size(); ++i) {
    write_slirp(out, o.slirp[i], i < names.slirp.size() ? names.slirp[i] : std::string());
  }
  for (size_t i = 0; i < lab.guests.size(); ++i) {
    const LabGuest& g = lab.guests[i];
    out += "\n[[guest]]\nname = " + quoted(g.name) + "\nmac = " + quoted(g.mac.to_string()) + "\n";
    if (!g.port.empty()) out += "port = " + quoted(g.port) + "\nip = " + quoted(g.ip) + "\n";
    if (i < guest_joins.size() && !guest_joins[i].empty()) out += "# " + guest_joins[i] + "\n";
  }
  return out;
}

std::optional<GuestPort> guest_port(const LabFile& lab, const LabGuest& guest) {
  if (guest.port.empty()) return std::nullopt;
  const auto find = [&](const std::vector<std::string>& names) -> std::optional<size_t> {
    const auto it = std::find(names.begin(), names.end(), guest.port);
    if (it == names.end()) return std::nullopt;
    return static_cast<size_t>(it - names.begin());
  };
  const PortNames& n = lab.names;
  if (const auto i = find(n.listen)) return GuestPort{GuestPort::Kind::kListen, *i};
  if (const auto i = find(n.dgram)) return GuestPort{GuestPort::Kind::kDgram, *i};
  if (const auto i = find(n.vhost_user)) return GuestPort{GuestPort::Kind::kVhostUser, *i};
  return std::nullopt;
}

}  // namespace qswitch::tools
