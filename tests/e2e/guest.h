// tests/e2e/guest.h: one real QEMU guest (tools/make-guest-image) driven over its serial console.
//
// Theory of operation: start() runs qemu-system-x86_64 with the test kernel and initrd, no default
// devices, no display, 256 MiB (options.memory_mib), the serial port on QEMU's stdio (pipes held
// by the test, see Subprocess) and one virtio-net NIC on the -netdev the test gives (its id must
// be n0), or on a vhost-user socket (options.vhost_user_socket, see GuestOptions). The guest's
// /init reads qs.ip/qs.mtu/qs.name from the kernel command line, configures eth0 and prints
// "QS-READY <name> <ip>"; wait_ready() waits for that line with a bounded timeout. With
// qs.ip=dhcp (ip_cidr "dhcp") the guest first runs udhcpc, which prints
// "QS-DHCP ip=.. router=.. dns=.. mask=.. mtu=.. lease=.."; ip() is then the address QS-READY
// reported and console_line("QS-DHCP ") the DHCP line. After QS-READY the console is a busybox
// shell without echo or prompt, so a command is sent as three lines:
//   echo QS-B''EGIN-<token>     <command>     echo QS-E''ND-<token>=$?
// and its output is the text between the QS-BEGIN-<token> and QS-END-<token>=<rc> lines. The
// quotes keep the marker out of anything the tty might echo. send()/wait_result() split run() so a
// test can start a command in several guests and then collect the results: guests work in parallel.
// Accelerator: KVM only where it works: /dev/kvm usable and no /sys/module/kvm_pvm (under the PVM
// hypervisor QEMU aborts with -cpu host); otherwise TCG with -cpu qemu64.
// With options.qmp_path the guest also has a QMP monitor there (see QmpClient in qmp_client.h).
// options.extra_args go last on QEMU's command line, as they are (a NIC from a join line).
// The destructor ends this guest's QEMU by its pid (Subprocess). With a launcher (`qswitch exec`)
// that pid is the launcher's, which passes SIGTERM on to QEMU.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/subprocess.h"

namespace qswitch::e2e {

struct GuestOptions {
  std::string name;     // qs.name=, also the log file name: "g1"
  std::string ip_cidr;  // qs.ip=: "10.0.0.11/24", or "dhcp"
  std::string mac;      // "52:54:00:12:00:01"
  std::string netdev;   // everything after -netdev: "stream,id=n0,server=off,addr.type=unix,..."
  int mtu = 1500;       // qs.mtu=
  // Words run before qemu-system-x86_64 ARGS, e.g. {"qswitch", "exec", "--mac", MAC, "--"}: the
  // launcher then runs QEMU and adds the NIC itself, so leave `netdev` empty (no -netdev and no
  // -device are added then). The guest's pid is the launcher's.
  std::vector<std::string> launcher;
  // When set, QEMU serves QMP on this unix socket (-qmp unix:PATH,server=on,wait=off), for tests
  // that pause and resume the guest (`stop`, `cont`).
  std::string qmp_path;
  // -m in MiB; 0 leaves -m out (QEMU then takes the size of a -machine memory-backend given in
  // extra_args).
  int memory_mib = 256;
  // When set, the NIC is vhost-user on this unix socket (qswitch --vhost-user) and `netdev` is not
  // used. The back-end reads the rings in the guest's memory, so that memory is shared: a memfd
  // backend (share=on) the size of -m (memory_mib; QEMU requires them equal), then
  // -chardev socket (reconnect=1 with vhost_user_reconnect: QEMU dials again every second after
  // the back-end goes away), -netdev vhost-user and the virtio-net device. Under TCG the device
  // gets vectors=0 (QEMU 7.2 segfaults with MSI-X on a vhost-user NIC there); under KVM MSI-X
  // stays on.
  std::string vhost_user_socket;
  bool vhost_user_reconnect = false;
  // Added at the end of QEMU's command line as they are, e.g. the words of a printed join line
  // (leave `netdev` and vhost_user_socket empty then, and memory_mib 0 if they hold the memory).
  std::vector<std::string> extra_args;
};

struct CommandResult {
  bool completed = false;  // the QS-END marker arrived before the timeout
  int exit_code = -1;
  std::string output;  // the command's console output, "\r" removed
};

// Paths fixed at build time (CMake compile definitions) and what the machine offers.
std::string guest_image_dir();
std::string qswitch_binary();
std::string e2e_report_path();
// Empty when QEMU and the guest image are there; otherwise says what is missing and how to get it.
std::string missing_e2e_prerequisites();
// {"-accel", "kvm", "-cpu", "host"} or {"-accel", "tcg", "-cpu", "qemu64"}, see above.
std::vector<std::string> accelerator_args();
// accelerator_args() chose TCG.
bool accelerator_is_tcg();

class Guest {
 public:
  // Starts QEMU (does not wait for the boot). The QEMU log goes to log_dir/<name>.qemu.log.
  static std::unique_ptr<Guest> start(const GuestOptions& options, const std::string& log_dir,
                                      std::string* error);
  ~Guest() = default;

  // Waits for "QS-READY <name>". On failure *error holds the console and the QEMU log.
  bool wait_ready(std::chrono::milliseconds timeout, std::string* error);
  // Seconds from start() to QS-READY (0 before it).
  double boot_seconds() const { return boot_seconds_; }

  // Sends a command and returns its token for wait_result().
  std::string send(const std::string& command);
  CommandResult wait_result(const std::string& token, std::chrono::milliseconds timeout);
  CommandResult run(const std::string& command, std::chrono::milliseconds timeout);

  const GuestOptions& options() const { return options_; }
  // The address QS-READY reported (after wait_ready), else ip_cidr without the prefix length.
  std::string ip() const;
  // Waits until a complete console line holds `text` (true), or QS-ERROR appears or `timeout`
  // passes (false).
  bool wait_for_console(const std::string& text, std::chrono::milliseconds timeout);
  // What follows `prefix` on the first console line holding it, without "\r"; empty if none.
  std::string console_line(const std::string& prefix);
  // Everything the console printed so far, and the tail of the QEMU log: for failure messages.
  std::string diagnostics();
  pid_t pid() const { return process_->pid(); }

 private:
  Guest() = default;

  GuestOptions options_;
  std::string log_path_;
  std::unique_ptr<Subprocess> process_;
  std::chrono::steady_clock::time_point started_;
  double boot_seconds_ = 0;
  std::string ready_ip_;  // from the QS-READY line
  unsigned next_token_ = 0;
};

// Reads a whole (small) file; empty when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace qswitch::e2e
