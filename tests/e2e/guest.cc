// tests/e2e/guest.cc: see guest.h.
#include "tests/e2e/guest.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#ifndef QS_GUEST_DIR
#error "QS_GUEST_DIR must name the guest image directory (tests/e2e/CMakeLists.txt)"
#endif
#ifndef QS_QSWITCH_PATH
#error "QS_QSWITCH_PATH must name the qswitch binary (tests/e2e/CMakeLists.txt)"
#endif
#ifndef QS_E2E_REPORT_PATH
#error "QS_E2E_REPORT_PATH must name the e2e report file (tests/e2e/CMakeLists.txt)"
#endif

namespace qswitch::e2e {
namespace {

constexpr const char* kQemu = "qemu-system-x86_64";

bool find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string tail(const std::string& text, size_t max_size) {
  return text.size() <= max_size ? text : "..." + text.substr(text.size() - max_size);
}

std::string strip_cr(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c != '\r') out.push_back(c);
  }
  return out;
}

}  // namespace

std::string guest_image_dir() { return QS_GUEST_DIR; }
std::string qswitch_binary() { return QS_QSWITCH_PATH; }
std::string e2e_report_path() { return QS_E2E_REPORT_PATH; }

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string missing_e2e_prerequisites() {
  std::string missing;
  if (!find_in_path(kQemu)) {
    missing += std::string(kQemu) + " is not in PATH (apt-get install qemu-system-x86). ";
  }
  for (const char* file : {"vmlinuz", "initrd.img"}) {
    std::string path = guest_image_dir() + "/" + file;
    if (::access(path.c_str(), R_OK) != 0) {
      missing += "guest image file " + path + " is missing (build target guest_image, or run " +
                 "tools/make-guest-image " + guest_image_dir() + "). ";
    }
  }
  return missing;
}

std::vector<std::string> accelerator_args() {
  const bool kvm_usable = ::access("/dev/kvm", R_OK | W_OK) == 0;
  const bool pvm = std::filesystem::exists("/sys/module/kvm_pvm");
  if (kvm_usable && !pvm) return {"-accel", "kvm", "-cpu", "host"};
  return {"-accel", "tcg", "-cpu", "qemu64"};
}

bool accelerator_is_tcg() { return accelerator_args()[1] == "tcg"; }

std::unique_ptr<Guest> Guest::start(const GuestOptions& options, const std::string& log_dir,
                                    std::string* error) {
  if (!options.vhost_user_socket.empty() && options.memory_mib <= 0) {
    *error =
        "guest " + options.name + ": a vhost-user guest needs memory_mib (the shared memfd's size)";
    return nullptr;
  }
  std::string image = guest_image_dir();
  std::vector<std::string> argv = options.launcher;
  for (const char* a :
       {kQemu, "-nodefaults", "-no-user-config", "-display", "none", "-smp", "1", "-no-reboot"}) {
    argv.emplace_back(a);
  }
  if (options.memory_mib > 0) {
    argv.emplace_back("-m");
    argv.push_back(std::to_string(options.memory_mib));
  }
  for (const std::string& a : accelerator_args()) argv.push_back(a);
  // quiet loglevel=1: no kernel text on the console. panic=-1 with -no-reboot: a dead guest ends
  // QEMU. no_timer_check: under TCG on a loaded host the IO-APIC timer check fails and panics.
  std::string append =
      "console=ttyS0 quiet loglevel=1 panic=-1 no_timer_check qs.ip=" + options.ip_cidr +
      " qs.mtu=" + std::to_string(options.mtu) + " qs.name=" + options.name;
  for (const std::string& a :
       {std::string("-kernel"), image + "/vmlinuz", std::string("-initrd"), image + "/initrd.img",
        std::string("-append"), append,
        // signal=off: a ^C byte on the console goes to the guest, it does not stop QEMU.
        std::string("-chardev"), std::string("stdio,id=s0,signal=off"), std::string("-serial"),
        std::string("chardev:s0")}) {
    argv.push_back(a);
  }
  if (!options.vhost_user_socket.empty()) {
    const std::string size = std::to_string(options.memory_mib) + "M";
    for (const std::string& a :
         {std::string("-object"), "memory-backend-memfd,id=mem,size=" + size + ",share=on",
          std::string("-machine"), std::string("memory-backend=mem"), std::string("-chardev"),
          "socket,id=c0,path=" + options.vhost_user_socket +
              (options.vhost_user_reconnect ? ",reconnect=1" : ""),
          std::string("-netdev"), std::string("vhost-user,id=n0,chardev=c0"),
          std::string("-device"),
          "virtio-net-pci,netdev=n0,mac=" + options.mac +
              (accelerator_is_tcg() ? ",vectors=0" : "")}) {
      argv.push_back(a);
    }
  } else if (!options.netdev.empty()) {
    for (const std::string& a : {std::string("-netdev"), options.netdev, std::string("-device"),
                                 "virtio-net-pci,netdev=n0,mac=" + options.mac}) {
      argv.push_back(a);
    }
  }
  if (!options.qmp_path.empty()) {
    argv.emplace_back("-qmp");
    argv.push_back("unix:" + options.qmp_path + ",server=on,wait=off");
  }
  for (const std::string& a : options.extra_args) argv.push_back(a);
  std::unique_ptr<Guest> guest(new Guest());
  guest->options_ = options;
  guest->log_path_ = log_dir + "/" + options.name + ".qemu.log";
  guest->started_ = std::chrono::steady_clock::now();
  guest->process_ = Subprocess::spawn(argv, guest->log_path_, error);
  if (!guest->process_) return nullptr;
  return guest;
}

bool Guest::wait_ready(std::chrono::milliseconds timeout, std::string* error) {
  const std::string marker = "QS-READY " + options_.name + " ";
  bool ready = process_->wait_for(
      [&](const std::string& out) {
        // The whole QS-READY line (it ends with the address), or any QS-ERROR.
        const size_t at = out.find(marker);
        return (at != std::string::npos && out.find('\n', at) != std::string::npos) ||
               out.find("QS-ERROR") != std::string::npos;
      },
      timeout);
  if (ready && process_->output().find("QS-ERROR") == std::string::npos) {
    const auto elapsed = std::chrono::steady_clock::now() - started_;
    boot_seconds_ = std::chrono::duration<double>(elapsed).count();
    // "QS-READY <name> <ip>": the ip ends at the end of the line.
    ready_ip_ = console_line(marker);
    return true;
  }
  *error = "guest " + options_.name + " did not print '" + marker + "' within " +
           std::to_string(timeout.count()) + " ms. " + diagnostics();
  return false;
}

std::string Guest::ip() const {
  if (!ready_ip_.empty()) return ready_ip_;
  return options_.ip_cidr.substr(0, options_.ip_cidr.find('/'));
}

bool Guest::wait_for_console(const std::string& text, std::chrono::milliseconds timeout) {
  auto line_complete = [&](const std::string& out) {
    const size_t at = out.find(text);
    return at != std::string::npos && out.find('\n', at) != std::string::npos;
  };
  process_->wait_for(
      [&](const std::string& out) {
        return line_complete(out) || out.find("QS-ERROR") != std::string::npos;
      },
      timeout);
  return line_complete(process_->output());
}

std::string Guest::console_line(const std::string& prefix) {
  process_->drain();
  const std::string out = strip_cr(process_->output());
  const size_t at = out.find(prefix);
  if (at == std::string::npos) return "";
  const size_t begin = at + prefix.size();
  const size_t eol = out.find('\n', begin);
  if (eol == std::string::npos) return "";  // the line is not complete yet
  return out.substr(begin, eol - begin);
}

std::string Guest::send(const std::string& command) {
  std::string token = options_.name + "-" + std::to_string(++next_token_);
  process_->write_stdin("echo QS-B''EGIN-" + token + "\n" + command + "\necho QS-E''ND-" + token +
                        "=$?\n");
  return token;
}

CommandResult Guest::wait_result(const std::string& token, std::chrono::milliseconds timeout) {
  const std::string begin = "QS-BEGIN-" + token + "\r\n";
  const std::string end = "QS-END-" + token + "=";
  CommandResult result;
  // Complete when "QS-END-<token>=<digits>" is followed by the end of its line.
  auto end_complete = [&](const std::string& out) {
    size_t at = out.find(end);
    if (at == std::string::npos) return false;
    size_t eol = out.find('\n', at);
    return eol != std::string::npos;
  };
  result.completed = process_->wait_for(end_complete, timeout);
  const std::string& out = process_->output();
  size_t b = out.find(begin);
  size_t e = out.find(end);
  if (b != std::string::npos && e != std::string::npos && b < e) {
    b += begin.size();
    result.output = strip_cr(std::string_view(out).substr(b, e - b));
  } else if (b != std::string::npos) {
    result.output = strip_cr(std::string_view(out).substr(b + begin.size()));
  }
  if (result.completed) {
    result.exit_code = std::atoi(out.c_str() + e + end.size());
  }
  return result;
}

CommandResult Guest::run(const std::string& command, std::chrono::milliseconds timeout) {
  return wait_result(send(command), timeout);
}

std::string Guest::diagnostics() {
  process_->drain();
  std::string text = "\n--- console of " + options_.name + " (pid " +
                     std::to_string(process_->pid()) + ") ---\n" +
                     tail(strip_cr(process_->output()), 3000);
  if (auto status = process_->wait_exit(std::chrono::milliseconds(0))) {
    text += "\n--- QEMU exited: " + describe_wait_status(*status) + " ---";
  }
  text += "\n--- " + log_path_ + " ---\n" + tail(read_text_file(log_path_), 2000);
  return text;
}

}  // namespace qswitch::e2e
