// backends/runtime/listener.cc: see the header.
#include "backends/runtime/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace qswitch::backends {

Listener::Listener(SwitchLoop& loop, io::SocketAddress address, PortFactory factory)
    : loop_(loop), address_(std::move(address)), factory_(std::move(factory)), watch_(loop.uv()) {
  io::SocketResult r = io::listen_on(address_);
  if (!r.ok()) {
    error_ = r.message;
    return;
  }
  fd_ = std::move(r.fd);
  if (address_.kind == io::SocketAddress::Kind::kTcp && address_.port == 0) {
    address_.port = io::bound_port(fd_.get());
  }
  watch_.start(fd_.get(), "listen " + address_.to_string(),
               [this](io::Fd fd) { on_connection(std::move(fd)); });
}

void Listener::close_ports(const std::string& reason) {
  // close() runs the hook that erases the port from ports_: take them from a copy.
  const std::vector<LoopPort*> copy = ports_;
  for (LoopPort* p : copy) p->close(reason);
}

Listener::~Listener() {
  // Ports outlive the listener (they belong to the loop): stop them calling back into it.
  for (LoopPort* p : ports_) p->set_close_hook(nullptr);
  watch_.stop();
  if (fd_.valid() && address_.kind == io::SocketAddress::Kind::kUnix)
    ::unlink(address_.path.c_str());
}

void Listener::on_connection(io::Fd fd) {
  const int raw = fd.get();
  if (address_.kind == io::SocketAddress::Kind::kTcp) {
    const int one = 1;
    ::setsockopt(raw, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  std::string peer = address_.to_string() + " (" + io::peer_name(raw, address_.kind) + ")";
  std::unique_ptr<LoopPort> port = factory_(std::move(fd), std::move(peer));
  port->set_endpoint_id(id_);
  port->set_close_hook([this](LoopPort& p) { std::erase(ports_, &p); });
  ports_.push_back(&loop_.adopt(std::move(port), vlans_, security_));
}

}  // namespace qswitch::backends
