// backends/runtime/io/served_client.cc: see the header.
#include "backends/runtime/io/served_client.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace qswitch::io {

ServedClient::ServedClient(uv_loop_t* loop, Fd fd_in) : fd(std::move(fd_in)) {
  uv_poll_init_socket(loop, poll.get(), fd.get());
  poll.get()->data = this;
  uv_timer_init(loop, timer.get());
  timer.get()->data = this;
}

void ServedClient::watch(int events) {
  set_poll_events(poll.get(), poll_events_, events, [](uv_poll_t* h, int status, int ev) {
    if (h->data != nullptr) static_cast<ServedClient*>(h->data)->on_event(status, ev);
  });
}

void ServedClient::start_timer(uint64_t ms) {
  uv_timer_start(
      timer.get(),
      [](uv_timer_t* t) {
        if (t->data != nullptr) static_cast<ServedClient*>(t->data)->on_timer();
      },
      ms, 0);
}

bool ServedClient::send_out(std::string& reason, bool& progressed) {
  while (pending() > 0) {
    const ssize_t n =
        ::send(fd.get(), out.data() + out_offset, pending(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      out_offset += static_cast<size_t>(n);
      progressed = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    reason = n < 0 ? std::strerror(errno) : "send returned 0";
    return false;
  }
  if (pending() == 0) {
    out.clear();
    out_offset = 0;
    if (out.capacity() > kKeepCapacity) std::string().swap(out);
  } else if (out_offset > kKeepCapacity && out_offset * 2 > out.size()) {
    out.erase(0, out_offset);  // keep appends cheap when the client reads slowly
    out_offset = 0;
  }
  return true;
}

void ClientList::refuse(int fd, std::string_view reply) {
  ssize_t ignored = ::send(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)ignored;
}

ServedClient& ClientList::add(std::unique_ptr<ServedClient> client) {
  ServedClient& ref = *client;
  clients_.push_back(std::move(client));
  return ref;
}

std::unique_ptr<ServedClient> ClientList::release(ServedClient& client) {
  auto at =
      std::find_if(clients_.begin(), clients_.end(),
                   [&](const std::unique_ptr<ServedClient>& p) { return p.get() == &client; });
  if (at == clients_.end()) return nullptr;
  std::unique_ptr<ServedClient> gone = std::move(*at);
  *at = std::move(clients_.back());
  clients_.pop_back();
  return gone;
}

ServedListener::~ServedListener() {
  clients_.clear();
  watch_.stop();
}

bool ServedListener::listen(const SocketAddress& ep) {
  SocketResult r = listen_on(ep);
  if (!r.ok()) {
    error_ = r.message;
    return false;
  }
  fd_ = std::move(r.fd);
  return true;
}

void ServedListener::start_accepting(std::string name) {
  watch_.start(fd_.get(), std::move(name), [this](Fd fd) { on_connection(std::move(fd)); });
}

}  // namespace qswitch::io
