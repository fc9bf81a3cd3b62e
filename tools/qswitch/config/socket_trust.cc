// tools/qswitch/config/socket_trust.cc: see the header.
#include "tools/qswitch/config/socket_trust.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace qswitch::tools {

namespace {

// XDG_RUNTIME_DIR when it is set to an absolute path (the only case qswitch uses it), or nullptr.
const char* xdg_runtime_dir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  return xdg != nullptr && xdg[0] == '/' ? xdg : nullptr;
}

constexpr const char* kRequired =
    "qswitch needs a directory that you own and that group and others cannot write (mode 0700)";

// The user name of `uid`, or "" when it has no passwd entry.
std::string user_name(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr &&
      found->pw_name != nullptr) {
    return found->pw_name;
  }
  return "";
}

// "uid 65534 (nobody)", or "uid 4242" when the uid has no passwd entry.
std::string user_text(uid_t uid) {
  const std::string name = user_name(uid);
  return "uid " + std::to_string(uid) + (name.empty() ? "" : " (" + name + ")");
}

// "you (uid 1000, alice)".
std::string you_text() {
  const std::string name = user_name(::geteuid());
  return "you (uid " + std::to_string(::geteuid()) + (name.empty() ? "" : ", " + name) + ")";
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

const char* kind_text(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "not a directory";
}

// How to get a good directory instead, for a directory `dir` that is not one.
std::string fix_text(const std::string& dir, const char* remove_how) {
  std::string fix = "Fix: remove it (" + std::string(remove_how) + dir +
                    ") and run again; qswitch then creates it 0700";
  if (xdg_runtime_dir() == nullptr) {
    fix += ", or set XDG_RUNTIME_DIR to a private directory of your own (e.g. /run/user/" +
           std::to_string(::getuid()) + ")";
  }
  return fix;
}

// Checks `dir` after lstat() gave `st`: a real directory, ours, not writable by group/others.
bool trust_dir_stat(const std::string& dir, const struct stat& st, std::string& error) {
  const std::string what = "the socket directory " + dir;
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    const ssize_t n = ::readlink(dir.c_str(), target, sizeof target - 1);
    const std::string to = n > 0 ? " (to " + std::string(target, static_cast<size_t>(n)) + ")" : "";
    error = what + " is a symbolic link" + to +
            ", which qswitch does not follow: whoever made the link chooses where the sockets "
            "go. " +
            kRequired + ". " + fix_text(dir, "rm ");
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    error = what + " is " + kind_text(st.st_mode) + ", not a directory. " + kRequired + ". " +
            fix_text(dir, "rm ");
    return false;
  }
  if (st.st_uid != ::geteuid()) {
    error = what + " belongs to " + user_text(st.st_uid) + ", not to " + you_text() +
            ", so its owner can replace or impersonate the sockets in it. " + kRequired + ". " +
            fix_text(dir, "as its owner or root: rm -r ");
    return false;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    error = what + " has mode " + mode_text(st.st_mode) +
            ": group or others can write it, so they can replace or impersonate the sockets in "
            "it. " +
            kRequired + ". Fix: chmod 700 " + dir +
            " (after checking it holds nothing you did not put there), or remove it (rm -r " + dir +
            ") and run again";
    return false;
  }
  return true;
}

}  // namespace

std::string default_socket_dir() {
  if (const char* xdg = xdg_runtime_dir()) {
    std::string base = xdg;
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    return (base == "/" ? "" : base) + "/qswitch";
  }
  return "/tmp/qswitch-" + std::to_string(::getuid());
}

bool trust_socket_dir_for(const std::string& socket_path, DirUse use, std::string& error) {
  const size_t slash = socket_path.rfind('/');
  if (slash == std::string::npos) return true;
  const std::string dir = default_socket_dir();
  if (socket_path.compare(0, slash, dir) != 0 || slash != dir.size()) return true;
  if (use == DirUse::kCreate && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    const int err = errno;
    error = "cannot create the socket directory " + dir + ": " + std::strerror(err);
    if (err == ENOENT && xdg_runtime_dir() != nullptr) {
      error += " (XDG_RUNTIME_DIR is " + dir.substr(0, dir.rfind('/')) +
               ", which does not exist; unset it or point it at a directory of yours)";
    }
    return false;
  }
  // Whether mkdir made it or something was there (EEXIST): the same check, without following
  // a symbolic link.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT && use == DirUse::kLookUp) return true;
    error = "cannot check the socket directory " + dir + ": " + std::strerror(errno);
    return false;
  }
  return trust_dir_stat(dir, st, error);
}

bool trust_control_peer(int fd, const std::string& path, std::string& error) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
    const int err = len != sizeof cred ? EPROTO : errno;
    error = "cannot tell who serves the control socket " + path +
            " (SO_PEERCRED: " + std::strerror(err) + "); nothing was sent to it";
    return false;
  }
  if (cred.uid == ::geteuid() || cred.uid == 0) return true;
  error = "refusing the control socket " + path + ": the process serving it (pid " +
          std::to_string(cred.pid) + ") runs as " + user_text(cred.uid) + ", not as " + you_text() +
          (::geteuid() == 0 ? "" : " nor as root") +
          ", so it is not a switch of yours; nothing was sent to it. Check "
          "who made it (ls -l " +
          path + ") and use the control socket of a switch you started";
  return false;
}

}  // namespace qswitch::tools
