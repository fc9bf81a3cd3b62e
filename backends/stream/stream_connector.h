// backends/stream/stream_connector.h: dials a stream peer and keeps dialling.
//
// Serves a QEMU started with "-netdev stream,server=on" or "-netdev socket,listen=", or another
// qswitch. QEMU 7.2's stream clients cannot reconnect, so qswitch is the side that redials: when
// the connection fails or the port closes, it waits (100 ms, doubling up to 5 s; reset once a
// connection is up) and tries again, forever. Each state change is logged once: connected,
// lost, and the first failure of an outage (not every retry).
#pragma once

#include <uv.h>

#include <string>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/socket_address.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends {

class StreamConnector {
 public:
  // `id` names the dialler in ports' endpoint_id().
  StreamConnector(SwitchLoop& loop, io::SocketAddress address, std::string id = {});
  ~StreamConnector();
  StreamConnector(const StreamConnector&) = delete;
  StreamConnector& operator=(const StreamConnector&) = delete;

  const io::SocketAddress& address() const { return address_; }
  bool connected() const { return port_ != nullptr; }
  LoopPort* port() const { return port_; }
  // Closes the connection for good (no redial): the connector is being removed.
  void close_port(const std::string& reason);

 private:
  void dial();
  void on_connect_ready();
  void connected_fd(io::Fd fd);
  void failed(const std::string& why);
  void schedule_retry();

  SwitchLoop& loop_;
  io::SocketAddress address_;
  io::Fd pending_;
  io::UvHandle<uv_poll_t> poll_;
  bool polling_ = false;
  io::UvHandle<uv_timer_t> timer_;
  uint64_t backoff_ms_ = 0;
  bool outage_logged_ = false;
  LoopPort* port_ = nullptr;
  std::string id_;
};

}  // namespace qswitch::backends
