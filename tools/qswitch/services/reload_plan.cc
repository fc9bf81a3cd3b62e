// tools/qswitch/services/reload_plan.cc: see the header.
#include "tools/qswitch/services/reload_plan.h"

#include <algorithm>
#include <functional>

#include "backends/runtime/io/socket_address.h"

namespace qswitch::tools {

namespace {

// What the comparison leaves out of an entry's text: its VLAN keys, its security keys, its name,
// a slirp port's hostfwd list.
struct Without {
  bool vlans = false;
  bool security = false;
  bool hostfwd = false;
  bool dns_records = false;
};

// One entry of one kind: how to find it in Options and PortNames, what identifies it, and how it
// is written with some keys left out.
struct KindOps {
  LabPortKind kind;
  std::function<size_t(const Options&)> count;
  std::function<std::string(const Options&, size_t)> identity;
  std::function<const std::vector<std::string>&(const PortNames&)> names;
  // Copies entry i of `from` alone into `to` (an Options holding nothing else), keys dropped.
  std::function<void(const Options& from, size_t i, Options& to, const Without& w)> copy;
};

template <typename T>
void strip(T& entry, const Without& w) {
  if (w.vlans) entry.vlans = {};
  if (w.security) entry.security = {};
}

std::string stream_identity(const io::SocketAddress& a) { return a.to_string(); }

const std::vector<KindOps>& kinds() {
  static const std::vector<KindOps> all = {
      {LabPortKind::kListen, [](const Options& o) { return o.listen.size(); },
       [](const Options& o, size_t i) { return stream_identity(o.listen[i]); },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.listen; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.listen.push_back(from.listen[i]);
         strip(to.listen.back(), w);
       }},
      {LabPortKind::kConnect, [](const Options& o) { return o.connect.size(); },
       [](const Options& o, size_t i) { return stream_identity(o.connect[i]); },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.connect; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.connect.push_back(from.connect[i]);
         strip(to.connect.back(), w);
       }},
      {LabPortKind::kDgram, [](const Options& o) { return o.dgram.size(); },
       [](const Options& o, size_t i) { return o.dgram[i].name; },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.dgram; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.dgram.push_back(from.dgram[i]);
         strip(to.dgram.back(), w);
       }},
      {LabPortKind::kVhostUser, [](const Options& o) { return o.vhost_user.size(); },
       [](const Options& o, size_t i) {
         return (o.vhost_user[i].dial ? "connect:" : "unix:") + o.vhost_user[i].address.path;
       },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.vhost_user; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.vhost_user.push_back(from.vhost_user[i]);
         strip(to.vhost_user.back(), w);
       }},
      {LabPortKind::kTap, [](const Options& o) { return o.taps.size(); },
       [](const Options& o, size_t i) {
         return o.taps[i].fd >= 0 ? "fd=" + std::to_string(o.taps[i].fd) : o.taps[i].name;
       },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.taps; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.taps.push_back(from.taps[i]);
         strip(to.taps.back(), w);
       }},
      {LabPortKind::kVxlan, [](const Options& o) { return o.vxlans.size(); },
       [](const Options& o, size_t i) {
         return "vni=" + std::to_string(o.vxlans[i].vni) +
                " local=" + io::sockaddr_text(o.vxlans[i].local);
       },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.vxlans; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.vxlans.push_back(from.vxlans[i]);
         strip(to.vxlans.back(), w);
       }},
      {LabPortKind::kSlirp, [](const Options& o) { return o.slirp.size(); },
       [](const Options& o, size_t i) { return "vlan=" + std::to_string(o.slirp[i].vlan); },
       [](const PortNames& n) -> const std::vector<std::string>& { return n.slirp; },
       [](const Options& from, size_t i, Options& to, const Without& w) {
         to.slirp.push_back(from.slirp[i]);
         if (w.hostfwd) to.slirp.back().hostfwd.clear();
         if (w.dns_records) to.slirp.back().dns_records.clear();
       }},
  };
  return all;
}

// Entry i as the lab file writes it, without its name and the keys `w` leaves out: the text from
// its table header on (format_lab_file() of a configuration holding it alone).
std::string entry_text(const KindOps& k, const Options& o, size_t i, const Without& w) {
  LabFile alone;
  k.copy(o, i, alone.options, w);
  const std::string text = format_lab_file(alone);
  const size_t table = text.find("\n[[");
  return table == std::string::npos ? text : text.substr(table);
}

std::string name_of(const KindOps& k, const LabFile& lab, size_t i) {
  const std::vector<std::string>& names = k.names(lab.names);
  return i < names.size() ? names[i] : std::string();
}

bool same_forward(const slirp::HostForward& a, const slirp::HostForward& b) {
  return a.to_string() == b.to_string();
}

// The forwards of `a` that `b` lacks.
std::vector<slirp::HostForward> forwards_missing(const std::vector<slirp::HostForward>& a,
                                                 const std::vector<slirp::HostForward>& b) {
  std::vector<slirp::HostForward> out;
  for (const slirp::HostForward& f : a) {
    if (std::none_of(b.begin(), b.end(),
                     [&](const slirp::HostForward& g) { return same_forward(f, g); })) {
      out.push_back(f);
    }
  }
  return out;
}

// The records of `a` that `b` lacks.
std::vector<slirp::DnsRecord> records_missing(const std::vector<slirp::DnsRecord>& a,
                                              const std::vector<slirp::DnsRecord>& b) {
  std::vector<slirp::DnsRecord> out;
  for (const slirp::DnsRecord& r : a) {
    if (std::none_of(b.begin(), b.end(), [&](const slirp::DnsRecord& g) {
          return g.name == r.name && g.addr == r.addr;
        })) {
      out.push_back(r);
    }
  }
  return out;
}

// A matched pair: unchanged, changed in place, or restarted.
void classify(const KindOps& k, const LabFile& running, const LabFile& next, ReloadItem item,
              ReloadPlan& plan) {
  const Options& a = running.options;
  const Options& b = next.options;
  const size_t i = item.old_index;
  const size_t j = item.new_index;
  const bool renamed = name_of(k, running, i) != name_of(k, next, j);
  if (k.kind == LabPortKind::kSlirp) {
    const Without no_forwards{.hostfwd = true, .dns_records = true};
    if (entry_text(k, a, i, no_forwards) != entry_text(k, b, j, no_forwards)) {
      item.what.emplace_back("settings");
      plan.restarted.push_back(std::move(item));
      return;
    }
    item.hostfwd_remove = forwards_missing(a.slirp[i].hostfwd, b.slirp[j].hostfwd);
    item.hostfwd_add = forwards_missing(b.slirp[j].hostfwd, a.slirp[i].hostfwd);
    if (!item.hostfwd_remove.empty() || !item.hostfwd_add.empty())
      item.what.emplace_back("hostfwd");
    item.dns_record_remove = records_missing(a.slirp[i].dns_records, b.slirp[j].dns_records);
    item.dns_record_add = records_missing(b.slirp[j].dns_records, a.slirp[i].dns_records);
    if (!item.dns_record_remove.empty() || !item.dns_record_add.empty())
      item.what.emplace_back("dns-record");
    if (renamed) item.what.emplace_back("name");
    (item.what.empty() ? plan.unchanged : plan.changed).push_back(std::move(item));
    return;
  }
  const Without bare{.vlans = true, .security = true};
  if (entry_text(k, a, i, bare) != entry_text(k, b, j, bare)) {
    item.what.emplace_back("settings");
    plan.restarted.push_back(std::move(item));
    return;
  }
  const Without no_security{.security = true};
  const Without no_vlans{.vlans = true};
  if (entry_text(k, a, i, no_security) != entry_text(k, b, j, no_security)) {
    item.what.emplace_back("vlan");
  }
  if (entry_text(k, a, i, no_vlans) != entry_text(k, b, j, no_vlans)) {
    item.what.emplace_back("port-security");
  }
  // A datagram socket's ports take its VLANs and security when they are made; there is no
  // setter on a socket that is open: restart it.
  if (k.kind == LabPortKind::kDgram && !item.what.empty()) {
    plan.restarted.push_back(std::move(item));
    return;
  }
  if (renamed) item.what.emplace_back("name");
  (item.what.empty() ? plan.unchanged : plan.changed).push_back(std::move(item));
}

std::string optional_text(const std::optional<io::SocketAddress>& a) {
  return a ? a->to_string() : std::string("none");
}

// The switch-wide settings that cannot change while qswitch runs: "" when none differs.
std::string fixed_settings_error(const Options& a, const Options& b) {
  struct Setting {
    const char* key;
    std::string was;
    std::string now;
  };
  const auto control = [](const Options& o) {
    return o.control_disabled ? std::string("none") : optional_text(o.control);
  };
  const Setting settings[] = {
      {"control", control(a), control(b)},
      {"metrics", optional_text(a.metrics), optional_text(b.metrics)},
      {"pcap", a.pcap.value_or("none"), b.pcap.value_or("none")},
      {"queue-size", std::to_string(a.queue_size), std::to_string(b.queue_size)},
      {"mac-age", std::to_string(a.mac_age_s), std::to_string(b.mac_age_s)},
      {"mac-max", std::to_string(a.mac_max), std::to_string(b.mac_max)},
  };
  for (const Setting& s : settings) {
    if (s.was == s.now) continue;
    std::string text = std::string("switch.") + s.key + ": " + s.now + " (running: " + s.was +
                       ") cannot change while qswitch runs; restart qswitch to change it";
    if (std::string(s.key) == "control") {
      text +=
          " (without a control key the control socket sits beside the first unix listener: set "
          "control in the file to keep it where it is)";
    }
    return text + "; nothing was changed";
  }
  return "";
}

}  // namespace

const char* lab_port_kind_name(LabPortKind kind) {
  switch (kind) {
    case LabPortKind::kListen:
      return "listen";
    case LabPortKind::kConnect:
      return "connect";
    case LabPortKind::kDgram:
      return "dgram";
    case LabPortKind::kVhostUser:
      return "vhost-user";
    case LabPortKind::kTap:
      return "tap";
    case LabPortKind::kVxlan:
      return "vxlan";
    case LabPortKind::kSlirp:
      return "slirp";
  }
  return "port";
}

size_t lab_port_count(const Options& o, LabPortKind kind) {
  for (const KindOps& k : kinds()) {
    if (k.kind == kind) return k.count(o);
  }
  return 0;
}

const std::vector<std::string>& lab_port_names(const PortNames& names, LabPortKind kind) {
  for (const KindOps& k : kinds()) {
    if (k.kind == kind) return k.names(names);
  }
  return names.listen;
}

sw::VlanMembership lab_port_vlans(const Options& o, LabPortKind kind, size_t i) {
  switch (kind) {
    case LabPortKind::kListen:
      return o.listen[i].vlans;
    case LabPortKind::kConnect:
      return o.connect[i].vlans;
    case LabPortKind::kDgram:
      return o.dgram[i].vlans;
    case LabPortKind::kVhostUser:
      return o.vhost_user[i].vlans;
    case LabPortKind::kTap:
      return o.taps[i].vlans;
    case LabPortKind::kVxlan:
      return o.vxlans[i].vlans;
    case LabPortKind::kSlirp:
      return sw::VlanMembership::access(o.slirp[i].vlan);
  }
  return {};
}

sw::PortSecurity lab_port_security(const Options& o, LabPortKind kind, size_t i) {
  switch (kind) {
    case LabPortKind::kListen:
      return o.listen[i].security;
    case LabPortKind::kConnect:
      return o.connect[i].security;
    case LabPortKind::kDgram:
      return o.dgram[i].security;
    case LabPortKind::kVhostUser:
      return o.vhost_user[i].security;
    case LabPortKind::kTap:
      return o.taps[i].security;
    case LabPortKind::kVxlan:
      return o.vxlans[i].security;
    case LabPortKind::kSlirp:
      return {};
  }
  return {};
}

std::string ReloadItem::label() const {
  return std::string(lab_port_kind_name(kind)) + " " + identity;
}

ReloadPlan plan_reload(const LabFile& running, const LabFile& next) {
  ReloadPlan plan;
  plan.error = fixed_settings_error(running.options, next.options);
  if (!plan.error.empty()) return plan;
  for (const KindOps& k : kinds()) {
    const size_t old_count = k.count(running.options);
    const size_t new_count = k.count(next.options);
    std::vector<bool> matched(old_count, false);
    for (size_t j = 0; j < new_count; ++j) {
      ReloadItem item;
      item.kind = k.kind;
      item.new_index = j;
      item.identity = k.identity(next.options, j);
      for (size_t i = 0; i < old_count; ++i) {
        if (!matched[i] && k.identity(running.options, i) == item.identity) {
          matched[i] = true;
          item.old_index = i;
          break;
        }
      }
      if (item.old_index == ReloadItem::kNone) {
        plan.added.push_back(std::move(item));
      } else {
        classify(k, running, next, std::move(item), plan);
      }
    }
    for (size_t i = 0; i < old_count; ++i) {
      if (matched[i]) continue;
      ReloadItem item;
      item.kind = k.kind;
      item.old_index = i;
      item.identity = k.identity(running.options, i);
      plan.removed.push_back(std::move(item));
    }
  }
  return plan;
}

}  // namespace qswitch::tools
