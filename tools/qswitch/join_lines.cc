// tools/qswitch/join_lines.cc: see the header.
#include "tools/qswitch/join_lines.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <optional>

#include "tools/qswitch/config/dgram_options.h"

namespace qswitch::tools {

namespace {

// The numeric host of an inet address, without brackets ("::1", "127.0.0.1").
std::string host_of(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, host, sizeof host);
  } else {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, host, sizeof host);
  }
  return host;
}

}  // namespace

std::string stream_netdev(const io::SocketAddress& ep, bool server) {
  const std::string mode = server ? "server=on" : "server=off";
  if (ep.kind == io::SocketAddress::Kind::kUnix) {
    return "-netdev stream,id=n0," + mode + ",addr.type=unix,addr.path=" + ep.path;
  }
  return "-netdev stream,id=n0," + mode + ",addr.type=inet,addr.host=" + ep.host +
         ",addr.port=" + std::to_string(ep.port);
}

std::string dgram_netdev(const backends::DgramConfig& config, const sockaddr_storage& bound,
                         const sw::MacAddress& mac) {
  using Mode = backends::DgramConfig::Mode;
  if (config.family == AF_UNIX) {
    const std::string path = dgram_unix_path(config);
    char tag[9];
    std::snprintf(tag, sizeof tag, "%02x-%02x-%02x", mac.bytes[3], mac.bytes[4], mac.bytes[5]);
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    return "-netdev dgram,id=n0,local.type=unix,local.path=" + dir + "guest-" + tag +
           ".dgram,remote.type=unix,remote.path=" + path;
  }
  if (config.mode == Mode::kMulticast) {
    return "-netdev socket,id=n0,mcast=" + io::sockaddr_text(config.local, config.local_len);
  }
  // udp:LOCAL or udp:LOCAL-REMOTE: the guest sends to our LOCAL and binds our REMOTE (or, with
  // no remote, any port on our host, which a learning socket answers).
  const bool connected = config.mode == Mode::kConnected && config.remote_len > 0;
  const std::string guest_host = host_of(connected ? config.remote : bound);
  const std::string guest_port = connected ? std::to_string(io::port_of(config.remote)) : "0";
  return "-netdev dgram,id=n0,local.type=inet,local.host=" + guest_host +
         ",local.port=" + guest_port + ",remote.type=inet,remote.host=" + host_of(bound) +
         ",remote.port=" + std::to_string(io::port_of(bound));
}

std::string vhost_user_netdev(const io::SocketAddress& ep) {
  return "-object memory-backend-memfd,id=qsmem,size=" + std::string(kVhostUserMemory) +
         ",share=on -machine memory-backend=qsmem -chardev socket,id=qsc0,path=" + ep.path +
         " -netdev vhost-user,id=n0,chardev=qsc0";
}

std::string join_line(const std::string& netdev, const sw::MacAddress& mac,
                      const std::string& device_options) {
  return "join with: " + netdev + " -device virtio-net-pci,netdev=n0,mac=" + mac.to_string() +
         device_options;
}

std::string lab_guest_join_line(const LabFile& lab, const LabGuest& guest) {
  const std::optional<GuestPort> port = guest_port(lab, guest);
  if (!port) return "";
  const Options& o = lab.options;
  switch (port->kind) {
    case GuestPort::Kind::kListen:
      return join_line(stream_netdev(o.listen[port->index], false), guest.mac);
    case GuestPort::Kind::kDgram: {
      const backends::DgramConfig& d = o.dgram[port->index];
      return join_line(dgram_netdev(d, d.local, guest.mac), guest.mac);
    }
    case GuestPort::Kind::kVhostUser:
      return join_line(vhost_user_netdev(o.vhost_user[port->index].address), guest.mac,
                       kVhostUserTcgDevice);
  }
  return "";
}

}  // namespace qswitch::tools
