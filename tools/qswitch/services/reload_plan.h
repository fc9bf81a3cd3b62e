// tools/qswitch/services/reload_plan.h: what `qswitch ctl reload` (and SIGHUP) would change,
// worked out from two resolved configurations alone (no sockets, no loop): the running one and
// the one the edited lab file (with the same command line on top) now gives. Switchd applies
// the plan (switchd.cc); docs/lab-file.md "Reload" is the user's view.
//
// Theory of operation
// - Ports are matched by identity, in file order (a second entry with the same identity matches
//   the second one running): a listener, dialler or vhost-user socket by its address, a datagram
//   socket by its address text, a tap by its name (or fd=N), a VXLAN port by vni and local
//   address, a slirp port by its VLAN. Unmatched running entries are `removed`, unmatched new
//   ones `added`.
// - A matched pair is compared as the lab file writes it (format_lab_file(), so every key that
//   the file can say takes part and a new key needs no code here): equal -> `unchanged`; only the
//   VLAN keys, port security keys or name differ -> `changed`, applied in place to the endpoint
//   and its live ports; a slirp port whose only difference is (also) its hostfwd list or its
//   dns-record list -> `changed`, the forwards and records to remove and add listed (records
//   added at run time with `ctl dns add` stay); anything else -> `restarted` (stopped and
//   started again with the new settings; its connections close). A datagram socket has no
//   in-place VLAN or security change: it restarts (a rename alone is in place).
// - The switch-wide settings (control socket, metrics, pcap, queue size, MAC table age and
//   size) cannot change while qswitch runs: a difference is an `error` naming the key, and the
//   reload changes nothing. `guests` only shapes the join lines printed at start: ignored.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "slirp/slirp_options.h"
#include "tools/qswitch/config/lab_file.h"

namespace qswitch::tools {

enum class LabPortKind { kListen, kConnect, kDgram, kVhostUser, kTap, kVxlan, kSlirp };

inline constexpr LabPortKind kLabPortKinds[] = {
    LabPortKind::kListen, LabPortKind::kConnect, LabPortKind::kDgram, LabPortKind::kVhostUser,
    LabPortKind::kTap,    LabPortKind::kVxlan,   LabPortKind::kSlirp};

// "listen", "connect", "dgram", "vhost-user", "tap", "vxlan", "slirp" (the lab file's tables).
const char* lab_port_kind_name(LabPortKind kind);
// How many entries of `kind` `o` has; the names a lab file gave them.
size_t lab_port_count(const Options& o, LabPortKind kind);
const std::vector<std::string>& lab_port_names(const PortNames& names, LabPortKind kind);
// Entry `i` of `kind`'s VLANs and port security (a slirp port: an access port of its VLAN, not
// secured).
sw::VlanMembership lab_port_vlans(const Options& o, LabPortKind kind, size_t i);
sw::PortSecurity lab_port_security(const Options& o, LabPortKind kind, size_t i);

struct ReloadItem {
  static constexpr size_t kNone = static_cast<size_t>(-1);
  LabPortKind kind = LabPortKind::kListen;
  size_t old_index = kNone;  // in the running Options' list of this kind; kNone: added
  size_t new_index = kNone;  // in the new Options' list; kNone: removed
  std::string identity;      // "unix:/run/lab.sock", "qs0", "vni=42 local=...", "vlan=10"
  // changed: what, among "vlan", "port-security", "name", "hostfwd", "dns-record"; restarted:
  // "settings" too.
  std::vector<std::string> what;
  // slirp, changed: the forwards to stop and to start (a forward whose guest side changed is in
  // both, under the same host socket).
  std::vector<slirp::HostForward> hostfwd_remove;
  std::vector<slirp::HostForward> hostfwd_add;
  // slirp, changed: the static DNS records to drop and to add.
  std::vector<slirp::DnsRecord> dns_record_remove;
  std::vector<slirp::DnsRecord> dns_record_add;

  // "listen unix:/run/lab.sock" (the reply's text for this item).
  std::string label() const;
};

struct ReloadPlan {
  std::string error;  // set: the new configuration cannot be applied while running; no items
  std::vector<ReloadItem> removed;
  std::vector<ReloadItem> added;
  std::vector<ReloadItem> changed;
  std::vector<ReloadItem> restarted;
  std::vector<ReloadItem> unchanged;

  bool no_change() const {
    return removed.empty() && added.empty() && changed.empty() && restarted.empty();
  }
};

ReloadPlan plan_reload(const LabFile& running, const LabFile& next);

}  // namespace qswitch::tools
