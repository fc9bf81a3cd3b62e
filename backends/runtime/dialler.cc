// backends/runtime/dialler.cc: see the header.
#include "backends/runtime/dialler.h"

#include <cerrno>
#include <cstring>
#include <memory>

#include "backends/runtime/io/log.h"

namespace qswitch::backends {

namespace {
constexpr uint64_t kFirstBackoffMs = 100;
constexpr uint64_t kMaxBackoffMs = 5000;
}  // namespace

Dialler::Dialler(SwitchLoop& loop, io::SocketAddress address, PortFactory factory, std::string id,
                 const sw::VlanMembership& vlans, const sw::PortSecurity& security)
    : loop_(loop),
      address_(std::move(address)),
      factory_(std::move(factory)),
      id_(std::move(id)),
      vlans_(vlans),
      security_(security) {
  uv_timer_init(loop_.uv(), timer_.get());
  timer_.get()->data = this;
  dial();
}

Dialler::~Dialler() {
  close_port("switch shutting down");  // before the timer goes: close_port() stops it
  if (polling_) uv_poll_stop(poll_.get());
  poll_.close();
  timer_.close();
}

void Dialler::close_port(const std::string& reason) {
  uv_timer_stop(timer_.get());
  if (port_ == nullptr) return;
  LoopPort* p = port_;
  port_ = nullptr;
  p->set_close_hook(nullptr);
  p->close(reason);
}

void Dialler::dial() {
  io::SocketResult r = io::start_connect(address_);
  if (r.ok() && r.error == 0) {
    connected_fd(std::move(r.fd));
    return;
  }
  if (!r.ok()) {
    failed(r.error != 0 ? std::string(std::strerror(r.error)) : r.message);
    return;
  }
  // In progress (tcp): wait for writability.
  pending_ = std::move(r.fd);
  poll_.renew();
  uv_poll_init_socket(loop_.uv(), poll_.get(), pending_.get());
  poll_.get()->data = this;
  polling_ = true;
  uv_poll_start(poll_.get(), UV_WRITABLE, [](uv_poll_t* h, int, int) {
    if (h->data != nullptr) static_cast<Dialler*>(h->data)->on_connect_ready();
  });
}

void Dialler::on_connect_ready() {
  uv_poll_stop(poll_.get());
  polling_ = false;
  const int err = io::connect_result(pending_.get());
  io::Fd fd = std::move(pending_);
  if (err != 0) {
    failed(std::strerror(err));
    return;
  }
  connected_fd(std::move(fd));
}

void Dialler::connected_fd(io::Fd fd) {
  backoff_ms_ = 0;
  outage_logged_ = false;
  std::string peer = address_.to_string() + " (dialled)";
  std::unique_ptr<LoopPort> port = factory_(std::move(fd), std::move(peer));
  port->set_endpoint_id(id_);
  port->set_close_hook([this](LoopPort&) {
    port_ = nullptr;
    io::log_line("connect %s: connection lost, redialling", address_.to_string().c_str());
    schedule_retry();
  });
  port_ = &loop_.adopt(std::move(port), vlans_, security_);
  io::log_line("connect %s: connected as port %u", address_.to_string().c_str(), port_->id());
}

void Dialler::failed(const std::string& why) {
  if (!outage_logged_) {
    outage_logged_ = true;
    io::log_line("connect %s: %s; retrying (up to every %llu ms) until it answers",
                 address_.to_string().c_str(), why.c_str(),
                 static_cast<unsigned long long>(kMaxBackoffMs));
  }
  schedule_retry();
}

void Dialler::schedule_retry() {
  backoff_ms_ = backoff_ms_ == 0 ? kFirstBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
  uv_timer_start(
      timer_.get(), [](uv_timer_t* h) { static_cast<Dialler*>(h->data)->dial(); }, backoff_ms_, 0);
}

}  // namespace qswitch::backends
