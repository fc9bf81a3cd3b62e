// tools/qswitch/client/capture_client.cc: see the header.
#include "tools/qswitch/client/capture_client.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "switch/types.h"
#include "tools/qswitch/client/ctl.h"
#include "tools/qswitch/client/pcap_stream.h"
#include "tools/qswitch/config/config_parse.h"
#include "tools/qswitch/config/json_line.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

// Writes all of `size` bytes (waiting when the fd is non-blocking); false with errno set.
bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n > 0) {
      data += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

const char* capture_usage() {
  return "usage: qswitch ctl [--sock PATH] capture [--port ID] [--filter BPF] -w FILE|-\n"
         "                   [--duration SECONDS] [--count N]\n"
         "  live capture of the whole switch (each frame once, as it enters) or of one port\n"
         "  (frames it sends and frames sent to it), as pcap\n"
         "  --port ID        one port (`qswitch ctl ports` lists them)\n"
         "  --filter BPF     a pcap-filter(7) expression, e.g. 'arp' or 'ether src "
         "52:54:00:12:34:56'\n"
         "  -w FILE          write to FILE (created mode 0600); -w - writes to stdout, e.g.\n"
         "                   qswitch ctl capture -w - | tshark -r -\n"
         "  --duration S     stop after S seconds (a decimal number)\n"
         "  --count N        stop after N packets\n"
         "  stops on SIGINT/SIGTERM too; the file is a valid pcap whenever it stops\n"
         "  qswitch ctl capture list        the capture sessions running, with their counters\n"
         "  qswitch ctl capture stop id=N   end session N (e.g. a --pcap FILE capture)\n";
}

bool parse_capture_args(const std::vector<std::string>& args, CaptureCliOptions& o,
                        std::string& error) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_value = false;
    if (arg.rfind("--", 0) == 0) {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_value = true;
      }
    }
    auto need = [&](const char* what) {
      if (has_value) return true;
      if (i + 1 >= args.size()) {
        error = arg + " needs " + what;
        return false;
      }
      value = args[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      o.help = true;
    } else if (arg == "--port") {
      if (!need("a port id")) return false;
      uint32_t id = 0;
      if (!parse_port_id(value, id)) {
        error =
            "--port '" + value + "': expected a port id (a number; `qswitch ctl ports` lists them)";
        return false;
      }
      o.port = id;
    } else if (arg == "--filter") {
      if (!need("a pcap-filter(7) expression")) return false;
      o.filter = value;
    } else if (arg == "-w" || arg == "--write") {
      if (!need("FILE or - (stdout)")) return false;
      if (value.empty()) {
        error = arg + " needs FILE or - (stdout)";
        return false;
      }
      o.write_path = value;
    } else if (arg == "--duration") {
      if (!need("a number of seconds")) return false;
      const std::optional<double> d = parse_decimal_seconds(value, 1e7);
      if (!d) {
        error = "--duration '" + value +
                "': expected seconds, a decimal number > 0 and at most 10000000 (e.g. 2 or 0.5)";
        return false;
      }
      o.duration_s = *d;
    } else if (arg == "--count") {
      if (!need("a number of packets")) return false;
      const std::optional<uint64_t> n = parse_decimal(value, 1);
      if (!n) {
        error = "--count '" + value + "': expected a number of packets > 0";
        return false;
      }
      o.count = *n;
    } else if (arg == "--sock") {
      if (!need("a PATH")) return false;
      if (value.rfind("unix:", 0) == 0) value = value.substr(5);
      if (value.empty()) {
        error = "--sock needs a PATH";
        return false;
      }
      o.sock = value;
    } else {
      error = "capture: unknown argument '" + args[i] +
              "'; capture takes --port ID, --filter BPF, -w FILE|-, --duration S, --count N";
      return false;
    }
  }
  if (!o.help && o.write_path.empty()) {
    error = "capture needs -w FILE (a pcap file to write) or -w - (pcap on stdout)";
    return false;
  }
  return true;
}

std::string capture_request_line(const CaptureCliOptions& o) {
  json args = json::object();
  if (o.port) args["port"] = *o.port;
  if (!o.filter.empty()) args["filter"] = o.filter;
  json request{{"cmd", "capture"}, {"args", std::move(args)}};
  return dump_json(request);
}

namespace {

// Sends the capture request; on success `conn` carries the pcap stream and `rest` holds its
// first bytes (those that came with the reply). Prints why not, otherwise.
bool start_capture(const CaptureCliOptions& o, io::Fd& conn, std::string& rest) {
  std::string reply_text, error;
  if (!ctl_stream_request(o.sock, capture_request_line(o), conn, reply_text, rest, error)) {
    std::fprintf(stderr, "qswitch ctl: %s\n", error.c_str());
    return false;
  }
  const json reply = parse_json_line(reply_text);
  const bool ok = reply.is_object() && reply.contains("ok") && reply["ok"].is_boolean() &&
                  reply["ok"].get<bool>();
  if (!ok) {
    const std::string message =
        reply.is_object() && reply.contains("error") && reply["error"].is_string()
            ? reply["error"].get_ref<const std::string&>()
            : "not a control reply from " + o.sock + ": " + reply_text.substr(0, 200);
    std::fprintf(stderr, "qswitch ctl: %s\n", message.c_str());
    return false;
  }
  return true;
}

// SIGINT and SIGTERM set g_stop_signal (without SA_RESTART, so poll() returns EINTR at once)
// while this object lives; SIGPIPE is ignored (a reader of stdout that goes away is EPIPE).
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    std::signal(SIGPIPE, SIG_IGN);
    g_stop_signal = 0;
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Where the capture goes: the pcap stream cut at record boundaries, written to `out`.
struct CaptureSink {
  int out = STDOUT_FILENO;
  std::string target;  // "stdout" or the file's path, for messages
  PcapStreamCutter cutter;
  bool header_written = false;
  uint64_t written_records = 0;
  std::string stop_reason;
  int status = 0;

  // Writes what the cutter has ready; false (stop_reason set) when the output failed.
  bool write_ready() {
    const size_t n = cutter.ready_size();
    if (n == 0) return true;
    if (!write_all(out, cutter.data(), n)) {
      if (errno == EPIPE) {
        stop_reason = "the reader of stdout went away";
      } else {
        stop_reason = "writing " + target + ": " + std::strerror(errno);
        status = 1;
      }
      return false;
    }
    header_written = true;
    cutter.consume(n);
    written_records = cutter.record_count();
    return true;
  }

  // Bytes from the switch; false when the capture must stop.
  bool feed(const char* data, size_t n) {
    if (!cutter.feed(data, n)) {
      stop_reason = cutter.error();
      status = 1;
      return false;
    }
    return write_ready();
  }

  // After the stream ended: a stream error not yet reported, and a valid (empty) pcap when
  // nothing arrived at all.
  void finish() {
    if (!cutter.error().empty() && stop_reason.empty()) {
      stop_reason = cutter.error();
      status = 1;
    }
    if (!header_written && status == 0) {
      static const uint32_t header[6] = {kPcapMagicMicro, 0x00040002, 0, 0, 65535, 1};
      if (!write_all(out, reinterpret_cast<const char*>(header), sizeof header) && errno != EPIPE) {
        status = 1;
      }
    }
  }
};

// Copies the capture from `conn` into `sink` until --count, --duration (`deadline` in
// monotonic ms, -1 for none), a stop signal, the end of the stream or an error.
void copy_capture(int conn, int64_t deadline, CaptureSink& sink) {
  char buf[64 * 1024];
  for (;;) {
    if (sink.cutter.limit_reached()) {
      sink.stop_reason = "--count reached";
      return;
    }
    if (g_stop_signal != 0) {
      sink.stop_reason = g_stop_signal == SIGINT ? "interrupted" : "terminated";
      return;
    }
    int timeout = 200;  // a signal between the check and poll() waits at most this long
    if (deadline >= 0) {
      const int64_t left = deadline - monotonic_ms();
      if (left <= 0) {
        sink.stop_reason = "--duration reached";
        return;
      }
      if (left < timeout) timeout = static_cast<int>(left);
    }
    pollfd p{conn, POLLIN, 0};
    if (::poll(&p, 1, timeout) <= 0) continue;
    const ssize_t n = ::read(conn, buf, sizeof buf);
    if (n > 0) {
      if (!sink.feed(buf, static_cast<size_t>(n))) return;
      continue;
    }
    if (n == 0) {
      sink.stop_reason = "qswitch closed the capture";
      return;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    sink.stop_reason = std::string("reading the capture: ") + std::strerror(errno);
    sink.status = 1;
    return;
  }
}

}  // namespace

int run_ctl_capture(const std::string& sock, int argc, const char* const* argv) {
  CaptureCliOptions o;
  o.sock = sock;
  std::vector<std::string> args(argv, argv + argc);
  std::string error;
  if (!parse_capture_args(args, o, error)) {
    std::fprintf(stderr, "qswitch ctl: %s\n%s", error.c_str(), capture_usage());
    return 2;
  }
  if (o.help) {
    std::fputs(capture_usage(), stdout);
    return 0;
  }
  io::Fd conn;
  std::string rest;
  if (!start_capture(o, conn, rest)) return 1;

  CaptureSink sink;
  io::Fd file;
  if (o.write_path != "-") {
    file =
        io::Fd::adopt(::open(o.write_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!file.valid()) {
      std::fprintf(stderr, "qswitch ctl: cannot write %s: %s\n", o.write_path.c_str(),
                   std::strerror(errno));
      return 1;
    }
    sink.out = file.get();
  }
  sink.target = o.write_path == "-" ? std::string("stdout") : o.write_path;
  if (o.count) sink.cutter.set_record_limit(*o.count);
  const int64_t deadline =
      o.duration_s ? monotonic_ms() + static_cast<int64_t>(std::llround(*o.duration_s * 1000)) : -1;
  {
    const StopSignals stop_signals;
    if (sink.feed(rest.data(), rest.size())) copy_capture(conn.get(), deadline, sink);
    conn.reset();  // ends the session on the switch
    sink.finish();
    if (file.valid() && ::close(file.release()) != 0) {
      std::fprintf(stderr, "qswitch ctl: closing %s: %s\n", o.write_path.c_str(),
                   std::strerror(errno));
      sink.status = 1;
    }
  }
  std::fprintf(stderr, "qswitch ctl: capture stopped (%s): %llu packets written to %s\n",
               sink.stop_reason.c_str(), static_cast<unsigned long long>(sink.written_records),
               sink.target.c_str());
  return sink.status;
}

}  // namespace qswitch::tools
