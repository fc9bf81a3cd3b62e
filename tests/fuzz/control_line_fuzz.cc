// tests/fuzz/control_line_fuzz.cc: the control channel as a client reaches it: arbitrary bytes
// sent over a real unix socket to tools::ControlServer (line splitting, the too-long rule, a
// last line without '\n'), each line handled by tools::ControlApi with qswitch's real command
// set on a real (port-less but for slirp) switch loop, one reply line back per request line.
//
// Commands that would act outside the process are replaced by stubs that run the same argument
// checks and parsers but bind nothing: port.add (listeners, diallers and datagram sockets on any
// address or path) and hostfwd.add (host sockets). "capture" is answered but its takeover is not
// run (nothing streams). Everything else is the real handler: help, version, ports, macs, stats,
// port.remove, port.attach (no fds come with the lines), capture's filter compilation,
// capture.list/stop, hostfwd.list/remove, usernet, dhcp.leases.
//
// The server's line limit is lowered to 512 bytes so inputs of a few KiB cross it; the
// nesting limit (kMaxJsonDepth) is reached within a few hundred bytes.
//
// Checked: the server answers every request line with exactly one reply line (a line ended by
// '\n', and a non-empty last line without one) and closes the connection once the client has
// closed its side and the replies are out; every reply is a JSON object (shallow enough for
// parse_json_line) with a boolean "ok" and, when false, a non-empty "error" string.
#include <fuzzer/FuzzedDataProvider.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "backends/runtime/switch_loop.h"
#include "slirp/slirp_port.h"
#include "tests/fuzz/fuzz_check.h"
#include "tools/qswitch/config/dgram_options.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/config/slirp_options_parse.h"
#include "tools/qswitch/services/attach_commands.h"
#include "tools/qswitch/services/capture_commands.h"
#include "tools/qswitch/services/capture_hub.h"
#include "tools/qswitch/services/control_api.h"
#include "tools/qswitch/services/control_server.h"
#include "tools/qswitch/services/endpoints.h"
#include "tools/qswitch/services/slirp_commands.h"
#include "tools/qswitch/services/switch_commands.h"

namespace {

using namespace qswitch;
using json = nlohmann::json;

constexpr size_t kMaxLine = 512;

struct World {
  std::string dir;
  std::unique_ptr<backends::SwitchLoop> loop;
  std::unique_ptr<tools::Endpoints> endpoints;
  std::unique_ptr<tools::CaptureHub> capture;
  tools::ControlApi api;
  std::unique_ptr<tools::ControlServer> server;

  World() {
    char tmpl[] = "/tmp/qswitch-fuzz-control.XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    // libuv takes SIGINT/SIGTERM/SIGUSR1 for the switch loop; libFuzzer keeps its own.
    struct sigaction saved[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGUSR1};
    for (int i = 0; i < 3; ++i) ::sigaction(sigs[i], nullptr, &saved[i]);
    loop = std::make_unique<backends::SwitchLoop>(backends::LoopConfig{});
    for (int i = 0; i < 3; ++i) ::sigaction(sigs[i], &saved[i], nullptr);
    endpoints = std::make_unique<tools::Endpoints>(*loop);
    capture = std::make_unique<tools::CaptureHub>(loop->uv(), loop->fabric());
    std::string error;
    std::unique_ptr<slirp::SlirpPort> slirp =
        slirp::SlirpPort::create(*loop, slirp::default_slirp_options(), error);
    FUZZ_CHECK(slirp != nullptr);
    slirp::SlirpPort* slirp_port = slirp.get();
    loop->adopt(std::move(slirp));

    tools::register_switch_commands(api, *loop, *endpoints);
    tools::register_capture_commands(api, *capture);
    tools::register_attach_commands(api, *loop);
    tools::register_slirp_commands(api, *slirp_port, loop->uv());
    add_stubs(*slirp_port);

    tools::ControlHandlers handlers;
    handlers.line_fds = [this](std::string_view line, std::vector<io::Fd>& fds, tools::Takeover&) {
      tools::Takeover takeover;  // never run: nothing streams on the fuzz connection
      return api.handle_line(line, &takeover, &fds);
    };
    handlers.too_long = [this](size_t limit) { return api.too_long_reply(limit); };
    handlers.busy = [this](size_t max) { return api.busy_reply(max); };
    tools::ControlLimits limits;
    limits.max_line_size = kMaxLine;
    server = std::make_unique<tools::ControlServer>(loop->uv(), dir + "/control.sock",
                                                    std::move(handlers), limits);
    FUZZ_CHECK(server->ok());
  }

  // port.add and hostfwd.add: the real argument checks and parsers, then a success reply
  // instead of the bind.
  void add_stubs(slirp::SlirpPort& slirp_port) {
    api.add("port.add", "fuzz stub: checks the arguments, binds nothing", [](const json& args) {
      std::string error, mode, address;
      if (!tools::check_arg_names(args, {"mode", "address"}, "port.add", error) ||
          !tools::string_arg(args, "mode", "port.add", mode, error) ||
          !tools::string_arg(args, "address", "port.add", address, error)) {
        return tools::Reply::failure(error);
      }
      if (mode == "dgram") {
        auto spec = tools::parse_dgram_spec(address, error);
        if (!spec) return tools::Reply::failure("port.add: address " + error);
        return tools::Reply::success({{"mode", mode}, {"address", spec->name}});
      }
      if (mode != "listen" && mode != "connect") {
        return tools::Reply::failure("port.add: mode '" + mode +
                                     "': expected listen, connect or dgram");
      }
      auto ep = tools::parse_socket_address(address, error);
      if (!ep) return tools::Reply::failure("port.add: address " + error);
      return tools::Reply::success({{"mode", mode}, {"address", ep->to_string()}});
    });
    slirp::SlirpPort* p = &slirp_port;
    api.add("hostfwd.add", "fuzz stub: checks the spec, binds nothing", [p](const json& args) {
      std::string error, spec;
      if (!tools::check_arg_names(args, {"spec"}, "hostfwd.add", error) ||
          !tools::string_arg(args, "spec", "hostfwd.add", spec, error)) {
        return tools::Reply::failure(error);
      }
      slirp::HostForward f;
      if (!tools::parse_hostfwd(spec, f, error) ||
          !tools::check_hostfwd_guest(f, p->options(), error)) {
        return tools::Reply::failure(error);
      }
      return tools::Reply::success(f.to_string());
    });
  }

  ~World() {
    server.reset();
    capture.reset();
    endpoints.reset();
    loop.reset();
    ::rmdir(dir.c_str());
  }
};

World* world = nullptr;

void check_reply(std::string_view line) {
  bool too_deep = false;
  const json r = tools::parse_json_line(line, &too_deep);
  FUZZ_CHECK(!too_deep);
  FUZZ_CHECK(r.is_object());
  FUZZ_CHECK(r.contains("ok") && r["ok"].is_boolean());
  if (!r["ok"].get<bool>()) {
    FUZZ_CHECK(r.contains("error") && r["error"].is_string() &&
               !r["error"].get_ref<const std::string&>().empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  world = new World();
  std::atexit([] {
    delete world;
    world = nullptr;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, world->server->path().c_str(), sizeof addr.sun_path - 1);
  FUZZ_CHECK(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);

  size_t sent = 0;
  bool shut = false, eof = false;
  std::string replies;
  char buf[65536];
  uv_loop_t* uv = world->loop->uv();
  for (int turn = 0; turn < 100000 && !eof; ++turn) {
    if (sent < size) {
      const ssize_t n = ::send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    if (sent == size && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    uv_run(uv, UV_RUN_NOWAIT);
    for (;;) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        replies.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      break;
    }
  }
  ::close(fd);
  FUZZ_CHECK(eof);  // the server closed the connection: nothing left hanging

  // One reply per request line: each '\n', and a non-empty last line without one.
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t expected = 0;
  for (char c : input) expected += c == '\n' ? 1 : 0;
  if (!input.empty() && input.back() != '\n') ++expected;
  size_t got = 0;
  std::string_view rest = replies;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    FUZZ_CHECK(nl != std::string_view::npos);  // every reply ends with '\n'
    check_reply(rest.substr(0, nl));
    rest.remove_prefix(nl + 1);
    ++got;
  }
  FUZZ_CHECK(got == expected);
  return 0;
}
