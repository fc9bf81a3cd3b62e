// tools/qswitch/client/exec.h: `qswitch exec`, a launcher that puts a QEMU guest on a running
// switch with no socket path to pick and nothing left on disk.
//
// Theory of operation
// - `qswitch exec [--switch NAME|PATH] [--type dgram|stream|vhost-user] [--mac MAC] --
//   PROGRAM ARGS...`
//   finds the switch's control socket as `qswitch ctl` does (default: default_control_path();
//   NAME: DIR/NAME.ctl beside the default socket; a PATH ending in .sock: the control socket
//   beside that switch socket (control_path_for); any other PATH: the control socket itself).
// - It creates a socketpair (SOCK_DGRAM, or SOCK_STREAM with --type stream), sends one end with
//   a `port.attach` request over the control socket (SCM_RIGHTS, with the request line in the
//   same sendmsg) and waits for the reply (10 s at most). Before that, as for `qswitch ctl`,
//   the default directory and the server's uid are checked (socket_trust.h): another user's
//   server gets no request and no fd. On success it forks PROGRAM with the other end
//   inherited and these arguments appended (QEMU 7.2 net/dgram.c and net/stream.c;
//   a dgram fd must come without remote.*, QEMU refuses "remote with local.fd"):
//     -netdev dgram,id=ID,local.type=fd,local.str=N          (--type dgram, the default)
//     -netdev stream,id=ID,addr.type=fd,addr.str=N           (--type stream)
//     -device virtio-net-pci,netdev=ID,mac=MAC
//   ID is qs0, or the first qsN no -netdev/-nic id= in ARGS uses; MAC is --mac or a fresh random
//   52:54:00:xx:xx:xx.
// - --type vhost-user: QEMU's vhost-user chardev cannot take a socket fd (it passes fds, which
//   QEMU 7.2 allows only on a unix socket it connected or accepted itself), so the launcher
//   first checks that the switch answers, then listens on a socket in a private directory it
//   creates (mkdtemp, 0700), starts PROGRAM with exec_vhost_user_args() pointing there, accepts
//   QEMU's connection (while PROGRAM runs, up to 60 s), removes the socket and the directory,
//   and sends the accepted socket with port.attach "type": "vhost-user". QEMU waits for the
//   vhost-user replies meanwhile; nothing is left on disk once the port is up.
// - While PROGRAM runs the launcher keeps the control connection open: the switch closes the
//   port when it closes. SIGINT/SIGTERM/SIGHUP are forwarded to PROGRAM. If the switch closes
//   the connection first (port removed, switch stopped) one line says so; PROGRAM keeps running.
//   PROGRAM gets SIGTERM if the launcher dies (PR_SET_PDEATHSIG): its port is gone by then.
// - Exit status: PROGRAM's, or 128+N when a signal N killed it; 1 when the switch could not be
//   reached or refused the port (the message names the control path tried and how to start a
//   switch); 2 for bad arguments (with the usage); 127 when PROGRAM could not be executed.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qswitch::tools {

enum class ExecType { kDgram, kStream, kVhostUser };
const char* exec_type_name(ExecType type);  // "dgram", "stream", "vhost-user"

struct ExecOptions {
  std::string control_path;  // resolved from --switch
  ExecType type = ExecType::kDgram;
  std::string mac;  // --mac, or generated
  // --vlan N, --trunk LIST, --native N (checked), --port-security (with the guest's MAC), --ip
  // ADDR (repeatable): the port's VLANs and security, sent with port.attach as string arguments
  // ("ip" as a list of them).
  std::vector<std::pair<std::string, std::string>> port_keys;
  std::vector<std::string> program;  // PROGRAM ARGS... (not empty)
  bool help = false;
};

// argv[0] is "exec". False with `error` on a usage error.
bool parse_exec_args(int argc, const char* const* argv, ExecOptions& options, std::string& error);
// --switch NAME|PATH -> the control socket path (see above).
std::string exec_control_path(const std::string& switch_arg);
// The -netdev id to use: "qs0", or the first "qsN" that no -netdev/-nic id= in `program` uses.
std::string free_netdev_id(const std::vector<std::string>& program);
// The arguments appended to PROGRAM for the inherited fd `fd` (dgram, stream).
std::vector<std::string> exec_netdev_args(ExecType type, const std::string& id, int fd,
                                          const std::string& mac);
// --type vhost-user: the arguments appended to PROGRAM for a vhost-user NIC whose chardev
// connects to `socket_path`: the guest's RAM as a shared memfd (as large as PROGRAM's -m, or
// 128M, QEMU's default, without one; left out when PROGRAM already names a memory-backend=),
// the chardev, the netdev and the device, with vectors=0 unless PROGRAM runs under KVM.
std::vector<std::string> exec_vhost_user_args(const std::vector<std::string>& program,
                                              const std::string& id, const std::string& socket_path,
                                              const std::string& mac);
// Whether PROGRAM's arguments select KVM (-enable-kvm, -accel kvm, -machine ...,accel=kvm):
// QEMU's default accelerator is TCG.
bool program_uses_kvm(const std::vector<std::string>& program);
// PROGRAM's RAM size as a memory backend's size= value ("256M" for -m 256, "1G" for -m 1G or
// -m size=1G,...), or "128M" without -m.
std::string program_memory_size(const std::vector<std::string>& program);
// The port.attach request line for `name` (the program's base name).
std::string attach_request_line(
    ExecType type, const std::string& name,
    const std::vector<std::pair<std::string, std::string>>& port_keys = {});
const char* exec_usage();

// argv[0] is "exec".
int run_exec(int argc, char** argv);

}  // namespace qswitch::tools
