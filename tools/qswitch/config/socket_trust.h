// tools/qswitch/config/socket_trust.h: which unix sockets qswitch and its clients trust.
//
// Theory of operation
// - The default socket directory is $XDG_RUNTIME_DIR/qswitch, or /tmp/qswitch-$UID when
//   XDG_RUNTIME_DIR is unset (or not an absolute path). default_socket_dir() is the one place
//   that chooses it; the default switch socket, the default control socket, the per-process
//   control socket and `qswitch exec --switch NAME` all live in it.
// - /tmp is shared: anyone can create /tmp/qswitch-1000 before user 1000 does, or a directory
//   anyone may write, or a symbolic link to a place of their choosing, and then replace or
//   impersonate the sockets in it. So the directory is trusted only when lstat() says it is a
//   real directory (never a symlink, which is not followed), owned by our effective uid, and not
//   writable by group or others. /tmp's sticky bit then keeps others from renaming it away.
//   The daemon creates it 0700 when missing: mkdir is atomic, and on EEXIST the directory that
//   is there is checked like any other. Clients only check (a missing directory just means no
//   switch runs there; the connect says so).
// - Paths the user gave (--listen unix:PATH, --sock PATH ...) outside the default directory are
//   the user's choice and are not checked here.
// - The server end: `qswitch ctl` and `qswitch exec` read SO_PEERCRED right after connect and,
//   before sending a byte (or an fd: exec passes one with SCM_RIGHTS), require the process that
//   listens to run as their own uid or as root. A socket anyone could have bound (an explicit
//   path, a directory made before this check existed) is then still never fed a request.
// Every refusal is an error text that names the directory or socket, what was found, what is
// required and how to fix it; the callers print it and exit 1.
#pragma once

#include <string>

namespace qswitch::tools {

// $XDG_RUNTIME_DIR/qswitch, or /tmp/qswitch-$UID. Only computes the name.
std::string default_socket_dir();

enum class DirUse {
  kCreate,  // the daemon: create the directory 0700 when it is missing, then check it
  kLookUp,  // a client: check it when it exists
};

// For a unix socket path qswitch is about to bind or connect to: when the path is directly in
// default_socket_dir(), makes sure that directory is trustworthy (see above). True when it is,
// when the path is elsewhere, or (kLookUp) when the directory does not exist. False with `error`
// otherwise.
bool trust_socket_dir_for(const std::string& socket_path, DirUse use, std::string& error);

// Right after connecting `fd` to the control socket `path`: true when the server runs as our
// uid or as root (SO_PEERCRED). False with `error`, which says that nothing was sent.
bool trust_control_peer(int fd, const std::string& path, std::string& error);

}  // namespace qswitch::tools
