// tools/qswitch/services/attach_commands.h: `port.attach`, the server side of `qswitch exec`: a
// port on a socket that the client passes over the control connection (SCM_RIGHTS), which lives
// exactly as long as that connection.
//
// Theory of operation
// - Request: {"cmd": "port.attach", "args": {"type": "dgram"|"stream", "name": TEXT (optional,
//   for logs)}} sent with exactly one fd: a connected unix or inet socket of that type (the
//   launcher's end of a socketpair whose other end QEMU gets). Everything is checked before
//   anything is created: no fd, two fds, a fd that is not a socket, a socket of the other type,
//   a listening or unconnected socket, a bad type or name are error replies that change nothing
//   (the passed fds are closed).
// - Then the port is created (dgram: backends::adopt_connected_dgram; stream: a StreamPort) and
//   the reply is {"port": ID, "type": ..., "peer": "exec:NAME (pid P)"} (P: the creator of the
//   passed socket, from SO_PEERCRED). The port shows in `ports` like any other.
// - The control connection is then taken over (a Takeover, as `capture` does): it carries no
//   more requests and is only watched. When it closes (the launcher exited, or QEMU and the
//   launcher were killed) the port is closed, reason "launcher exited". When the port closes
//   first (port.remove, a protocol error, the switch shutting down) the connection is closed, so
//   the launcher sees EOF. If the client goes away before the reply could be sent, the port is
//   closed at once: a port never outlives its launcher.
// - Names: "name" is kept in `names` (when given) by the port's serial while the port is up; the
//   slirp ports' DNS names use it for the MACs that get a DHCP lease through that port.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "backends/runtime/switch_loop.h"
#include "tools/qswitch/services/control_api.h"

namespace qswitch::tools {

// The "name" of each attached port that is up, by LoopPort::serial().
class ExecNames {
 public:
  void set(uint64_t serial, std::string name) { names_[serial] = std::move(name); }
  void erase(uint64_t serial) { names_.erase(serial); }
  std::string find(uint64_t serial) const {
    const auto it = names_.find(serial);
    return it == names_.end() ? std::string() : it->second;
  }

 private:
  std::map<uint64_t, std::string> names_;
};

// `names` (may be null) must outlive the loop's ports.
void register_attach_commands(ControlApi& api, backends::SwitchLoop& loop,
                              ExecNames* names = nullptr);

}  // namespace qswitch::tools
