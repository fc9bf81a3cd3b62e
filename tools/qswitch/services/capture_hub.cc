// tools/qswitch/services/capture_hub.cc: see the header.
#include "tools/qswitch/services/capture_hub.h"

#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace qswitch::tools {

namespace {
constexpr size_t kPcapRecordHeaderSize = 16;  // struct pcap_sf_pkthdr: ts_sec, ts_usec, caplen, len
constexpr int kMaxWritesPerTurn = 8;
constexpr int kMaxReadsPerWake = 16;

std::string port_text(const std::optional<sw::PortId>& port) {
  return port ? "port " + std::to_string(*port) : std::string("whole switch");
}
}  // namespace

class CaptureHub::Session {
 public:
  Session(CaptureHub& hub, uint64_t id, const CaptureSpec& spec, std::string output_name)
      : hub_(hub), id_(id), spec_(spec), output_name_(std::move(output_name)) {}
  const std::string& output_name() const { return output_name_; }

  ~Session() {
    // A regular file gets everything that was buffered (a write to it does not block for long);
    // a socket or pipe gets one last non-blocking attempt.
    if (!pollable_ && fd_.valid()) {
      for (int i = 0; i < 1024 && size_ > 0 && fd_.valid(); ++i) drain_once();
    } else if (fd_.valid()) {
      drain_once();
    }
    if (dumper_ != nullptr) pcap_dump_close(dumper_);  // fcloses the cookie FILE
    if (has_filter_) pcap_freecode(&program_);
    if (dead_ != nullptr) pcap_close(dead_);
    poll_.close();  // before fd_ closes (member order would do it too; explicit for clarity)
  }

  // Compiles the filter; false with `error` naming libpcap's message.
  bool compile(std::string& error) {
    dead_ = pcap_open_dead(DLT_EN10MB, kSnapLen);
    if (dead_ == nullptr) {
      error = "libpcap: pcap_open_dead failed";
      return false;
    }
    if (spec_.filter.empty()) return true;
    if (pcap_compile(dead_, &program_, spec_.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      error = "bad capture filter '" + spec_.filter + "': " + pcap_geterr(dead_) +
              " (a pcap-filter(7) expression, e.g. \"arp\", \"ether src 52:54:00:12:34:56\", "
              "\"icmp or udp port 67\")";
      return false;
    }
    has_filter_ = true;
    return true;
  }

  bool open(io::Fd out, std::string& error) {
    if (spec_.buffer_size < size_t{64} * 1024) spec_.buffer_size = size_t{64} * 1024;
    ring_.resize(spec_.buffer_size);
    cookie_io_functions_t io{};
    io.write = [](void* cookie, const char* buf, size_t size) -> ssize_t {
      return static_cast<Session*>(cookie)->push(buf, size);
    };
    FILE* f = fopencookie(this, "w", io);
    if (f == nullptr) {
      error = std::string("fopencookie: ") + std::strerror(errno);
      return false;
    }
    setvbuf(f, nullptr, _IONBF, 0);       // every pcap_dump reaches the ring at once
    dumper_ = pcap_dump_fopen(dead_, f);  // writes the global header
    if (dumper_ == nullptr) {
      error = std::string("libpcap: pcap_dump_fopen: ") + pcap_geterr(dead_);
      fclose(f);
      return false;
    }
    fd_ = std::move(out);
    const int flags = ::fcntl(fd_.get(), F_GETFL);
    if (flags >= 0) ::fcntl(fd_.get(), F_SETFL, flags | O_NONBLOCK);
    struct stat st {};
    is_socket_ = ::fstat(fd_.get(), &st) == 0 && S_ISSOCK(st.st_mode);
    // A regular file cannot be polled (epoll refuses it): it is written every turn instead.
    pollable_ = uv_poll_init(hub_.loop_, poll_.get(), fd_.get()) == 0;
    poll_.get()->data = this;
    update_poll();
    return true;
  }

  void offer(const sw::Port& port, const sw::Frame& frame, bool is_ingress, const timeval& ts) {
    if (ended_) return;
    if (spec_.port) {
      if (port.id() != *spec_.port) return;
    } else if (!is_ingress) {
      return;  // whole switch: each frame once, as it enters
    }
    pcap_pkthdr h{};
    h.ts = ts;
    h.len = frame.size;
    h.caplen = std::min<uint32_t>(frame.size, kSnapLen);
    const uint8_t* bytes = frame.data();
    if (frame.split()) {
      // A frame lent from a guest's memory (switch/frame.h): its bytes in one piece, as
      // pcap wants them.
      if (hub_.joined_.empty()) hub_.joined_.resize(kSnapLen);  // once
      std::memcpy(hub_.joined_.data(), frame.data(), std::min(frame.head, h.caplen));
      if (h.caplen > frame.head) {
        std::memcpy(hub_.joined_.data() + frame.head, frame.tail(), h.caplen - frame.head);
      }
      bytes = hub_.joined_.data();
    }
    if (has_filter_ && pcap_offline_filter(&program_, &h, bytes) == 0) {
      ++filtered_out_;
      return;
    }
    if (ring_.size() - size_ < kPcapRecordHeaderSize + h.caplen) {
      ++dropped_slow_;
      return;
    }
    pcap_dump(reinterpret_cast<u_char*>(dumper_), &h, bytes);
    ++captured_;
  }

  // The fopencookie write callback. The caller checked that the whole record fits, so this
  // never writes part of one.
  ssize_t push(const char* buf, size_t n) {
    if (ring_.size() - size_ < n) return 0;  // cannot happen (checked before pcap_dump)
    const size_t cap = ring_.size();
    const size_t tail = (head_ + size_) % cap;
    const size_t first = std::min(n, cap - tail);
    std::memcpy(ring_.data() + tail, buf, first);
    std::memcpy(ring_.data(), buf + first, n - first);
    size_ += n;
    return static_cast<ssize_t>(n);
  }

  // Called once per loop turn: writes what the output takes.
  void on_turn() {
    if (ended_ || size_ == 0 || want_write_) return;
    for (int i = 0; i < kMaxWritesPerTurn && size_ > 0 && !want_write_ && !ended_; ++i) {
      drain_once();
    }
    update_poll();
  }

  void on_poll(int status, int events) {
    if (ended_) return;
    if (status < 0) {
      // libuv reports POLLERR/POLLHUP on the output as an error status: the consumer is gone.
      end(std::string("the consumer went away (poll: ") + uv_strerror(status) + ")");
      return;
    }
    if ((events & (UV_READABLE | UV_DISCONNECT)) != 0) {
      char scratch[4096];
      for (int i = 0; i < kMaxReadsPerWake; ++i) {
        const ssize_t n = ::recv(fd_.get(), scratch, sizeof scratch, MSG_DONTWAIT);
        if (n > 0) continue;  // a capture client has nothing to say: discarded
        if (n == 0) {
          end("client closed the connection");
          return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        end(std::string("client connection: ") + std::strerror(errno));
        return;
      }
    }
    if ((events & UV_WRITABLE) != 0) {
      want_write_ = false;
      for (int i = 0; i < kMaxWritesPerTurn && size_ > 0 && !want_write_ && !ended_; ++i) {
        drain_once();
      }
    }
    if (!ended_) update_poll();
  }

  void end(const std::string& reason) {
    if (ended_) return;
    ended_ = true;
    end_reason_ = reason;
    if (pollable_) uv_poll_stop(poll_.get());
    poll_events_ = 0;
  }

  CaptureInfo info() const {
    CaptureInfo i;
    i.id = id_;
    i.port = spec_.port;
    i.filter = spec_.filter;
    i.output = output_name_;
    i.captured = captured_;
    i.dropped_slow = dropped_slow_;
    i.filtered_out = filtered_out_;
    i.buffered_size = size_;
    return i;
  }

  bool ended() const { return ended_; }
  const std::string& end_reason() const { return end_reason_; }
  uint64_t id() const { return id_; }

 private:
  void drain_once() {
    if (size_ == 0) return;
    const size_t cap = ring_.size();
    iovec iov[2];
    iov[0].iov_base = ring_.data() + head_;
    iov[0].iov_len = std::min(size_, cap - head_);
    iov[1].iov_base = ring_.data();
    iov[1].iov_len = size_ - iov[0].iov_len;
    const int iov_count = iov[1].iov_len > 0 ? 2 : 1;
    ssize_t n;
    if (is_socket_) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(iov_count);
      n = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
      n = ::writev(fd_.get(), iov, iov_count);
    }
    if (n > 0) {
      const auto done = static_cast<size_t>(n);
      head_ = (head_ + done) % cap;
      size_ -= done;
      if (size_ == 0) head_ = 0;
      return;
    }
    if (n < 0 && errno == EINTR) return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (pollable_) {
        want_write_ = true;
      }
      return;
    }
    end(n < 0 ? std::string("writing the capture: ") + std::strerror(errno)
              : std::string("writing the capture: wrote nothing"));
  }

  void update_poll() {
    if (!pollable_ || ended_) return;
    int events = 0;
    if (is_socket_) events |= UV_READABLE | UV_DISCONNECT;
    if (want_write_) events |= UV_WRITABLE;
    io::set_poll_events(poll_.get(), poll_events_, events, [](uv_poll_t* h, int status, int ev) {
      if (h->data != nullptr) static_cast<Session*>(h->data)->on_poll(status, ev);
    });
  }

  CaptureHub& hub_;
  uint64_t id_;
  CaptureSpec spec_;
  std::string output_name_;
  pcap_t* dead_ = nullptr;
  bpf_program program_{};
  bool has_filter_ = false;
  pcap_dumper_t* dumper_ = nullptr;
  std::vector<uint8_t> ring_;
  size_t head_ = 0;
  size_t size_ = 0;
  io::Fd fd_;  // declared before poll_: the handle is closed (stopping the poll) before the fd
  io::UvHandle<uv_poll_t> poll_;
  bool is_socket_ = false;
  bool pollable_ = false;
  bool want_write_ = false;
  int poll_events_ = 0;
  bool ended_ = false;
  std::string end_reason_;
  uint64_t captured_ = 0;
  uint64_t dropped_slow_ = 0;
  uint64_t filtered_out_ = 0;
};

CaptureHub::CaptureHub(uv_loop_t* loop, sw::L2Switch& fabric) : loop_(loop), fabric_(fabric) {
  uv_check_init(loop_, check_.get());
  check_.get()->data = this;
}

CaptureHub::~CaptureHub() {
  if (hook_installed_) fabric_.set_capture_hook(nullptr);
  for (auto& s : sessions_) {
    const CaptureInfo i = s->info();
    io::log_line(
        "capture %llu ended: switch stopping: captured=%llu dropped_slow=%llu "
        "filtered_out=%llu",
        static_cast<unsigned long long>(i.id), static_cast<unsigned long long>(i.captured),
        static_cast<unsigned long long>(i.dropped_slow),
        static_cast<unsigned long long>(i.filtered_out));
  }
  sessions_.clear();
  check_.close();
}

bool CaptureHub::validate(const CaptureSpec& spec, std::string& error) const {
  if (spec.port && fabric_.port(*spec.port) == nullptr) {
    error = "no port " + std::to_string(*spec.port) + " on this switch (`ports` lists them)";
    return false;
  }
  if (spec.filter.empty()) return true;
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, kSnapLen);
  if (dead == nullptr) {
    error = "libpcap: pcap_open_dead failed";
    return false;
  }
  bpf_program program{};
  bool ok = pcap_compile(dead, &program, spec.filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (ok) {
    pcap_freecode(&program);
  } else {
    error = "bad capture filter '" + spec.filter + "': " + pcap_geterr(dead) +
            " (a pcap-filter(7) expression, e.g. \"arp\", \"ether src 52:54:00:12:34:56\", "
            "\"icmp or udp port 67\")";
  }
  pcap_close(dead);
  return ok;
}

uint64_t CaptureHub::attach(const CaptureSpec& spec, io::Fd out, std::string output_name,
                            std::string& error) {
  if (!validate(spec, error)) return 0;
  auto s = std::make_unique<Session>(*this, next_id_, spec, std::move(output_name));
  if (!s->compile(error) || !s->open(std::move(out), error)) return 0;
  ++next_id_;
  io::log_line("capture %llu started: %s%s%s -> %s", static_cast<unsigned long long>(s->id()),
               port_text(spec.port).c_str(), spec.filter.empty() ? "" : ", filter ",
               spec.filter.c_str(), s->output_name().c_str());
  sessions_.push_back(std::move(s));
  update_hook();
  return sessions_.back()->id();
}

bool CaptureHub::start_file(const std::string& path, std::string& error) {
  const int raw = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (raw < 0) {
    error = "--pcap " + path + ": " + std::strerror(errno);
    return false;
  }
  CaptureSpec spec;
  std::string why;
  if (attach(spec, io::Fd::adopt(raw), "file:" + path, why) == 0) {
    error = "--pcap " + path + ": " + why;
    return false;
  }
  return true;
}

bool CaptureHub::stop(uint64_t id) {
  for (auto& s : sessions_) {
    if (s->id() == id && !s->ended()) {
      s->end("stopped");
      sweep();
      return true;
    }
  }
  return false;
}

std::vector<CaptureInfo> CaptureHub::list() const {
  std::vector<CaptureInfo> out;
  for (const auto& s : sessions_) {
    if (!s->ended()) out.push_back(s->info());
  }
  return out;
}

void CaptureHub::ingress(const sw::Port& in, const sw::Frame& frame) { record(in, frame, true); }

void CaptureHub::egress(const sw::Port& out, const sw::Frame& frame) { record(out, frame, false); }

void CaptureHub::record(const sw::Port& port, const sw::Frame& frame, bool is_ingress) {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  timeval ts{};
  ts.tv_sec = now.tv_sec;
  ts.tv_usec = static_cast<suseconds_t>(now.tv_nsec / 1000);
  for (auto& s : sessions_) s->offer(port, frame, is_ingress, ts);
}

void CaptureHub::on_check() {
  for (auto& s : sessions_) s->on_turn();
  sweep();
}

void CaptureHub::sweep() {
  bool removed = false;
  for (size_t i = 0; i < sessions_.size();) {
    if (!sessions_[i]->ended()) {
      ++i;
      continue;
    }
    const CaptureInfo info = sessions_[i]->info();
    io::log_line("capture %llu ended: %s: captured=%llu dropped_slow=%llu filtered_out=%llu",
                 static_cast<unsigned long long>(info.id), sessions_[i]->end_reason().c_str(),
                 static_cast<unsigned long long>(info.captured),
                 static_cast<unsigned long long>(info.dropped_slow),
                 static_cast<unsigned long long>(info.filtered_out));
    sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i));
    removed = true;
  }
  if (removed) update_hook();
}

void CaptureHub::update_hook() {
  const bool want = !sessions_.empty();
  if (want && !hook_installed_) {
    fabric_.set_capture_hook(this);
    hook_installed_ = true;
    if (!check_started_) {
      uv_check_start(check_.get(), [](uv_check_t* h) {
        if (h->data != nullptr) static_cast<CaptureHub*>(h->data)->on_check();
      });
      check_started_ = true;
    }
  } else if (!want && hook_installed_) {
    fabric_.set_capture_hook(nullptr);
    hook_installed_ = false;
    if (check_started_) {
      uv_check_stop(check_.get());
      check_started_ = false;
    }
  }
}

}  // namespace qswitch::tools
