// backends/vhost_user/vhost_user_listener.cc: see the header.
#include "backends/vhost_user/vhost_user_listener.h"

#include <unistd.h>

#include <memory>

#include "backends/vhost_user/vhost_user_port.h"

namespace qswitch::backends::vhost_user {

VhostUserListener::VhostUserListener(SwitchLoop& loop, io::SocketAddress address)
    : loop_(loop), address_(std::move(address)), watch_(loop.uv()) {
  if (address_.kind != io::SocketAddress::Kind::kUnix) {
    error_ =
        "vhost-user listens on unix sockets only (its file descriptors travel as "
        "SCM_RIGHTS): " +
        address_.to_string();
    return;
  }
  io::SocketResult r = io::listen_on(address_);
  if (!r.ok()) {
    error_ = r.message;
    return;
  }
  fd_ = std::move(r.fd);
  watch_.start(fd_.get(), "vhost-user " + address_.to_string(),
               [this](io::Fd fd) { on_connection(std::move(fd)); });
}

void VhostUserListener::close_ports(const std::string& reason) {
  // close() runs the hook that erases the port from ports_: take them from a copy.
  const std::vector<LoopPort*> copy = ports_;
  for (LoopPort* p : copy) p->close(reason);
}

VhostUserListener::~VhostUserListener() {
  // Ports outlive the listener (they belong to the loop): stop them calling back into it.
  for (LoopPort* p : ports_) p->set_close_hook(nullptr);
  watch_.stop();
  if (fd_.valid()) ::unlink(address_.path.c_str());
}

void VhostUserListener::on_connection(io::Fd fd) {
  std::string peer = "vhost-user:" + address_.path + " (" +
                     io::peer_name(fd.get(), io::SocketAddress::Kind::kUnix) + ")";
  auto port = make_vhost_user_port(loop_, std::move(fd), std::move(peer));
  port->set_endpoint_id(id_);
  port->set_close_hook([this](LoopPort& p) { std::erase(ports_, &p); });
  ports_.push_back(&loop_.adopt(std::move(port)));
}

}  // namespace qswitch::backends::vhost_user
