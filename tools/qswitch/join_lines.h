// tools/qswitch/join_lines.h: how a QEMU guest joins this switch, as qswitch prints it at start
// ("join with: -netdev ... -device virtio-net-pci,netdev=n0,mac=..."). Tests and users copy
// these lines, so their text is fixed. Everything is made from typed values (socket
// addresses, sockaddrs, the --dgram config), never from another line's text.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "backends/dgram/dgram_config.h"
#include "backends/runtime/io/socket_address.h"
#include "switch/mac_address.h"

namespace qswitch::tools {

// "-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH" (or inet HOST/PORT); `server`
// is the guest's side: off for a guest of one of our listeners.
std::string stream_netdev(const io::SocketAddress& ep, bool server);

// The -netdev of a guest of a --dgram socket. `bound` is the socket's bound address (for udp,
// with the real port when 0 was asked; ignored for unix and multicast). A unix guest gets its
// own path beside ours, made unique by the last three bytes of `mac`.
std::string dgram_netdev(const backends::DgramConfig& config, const sockaddr_storage& bound,
                         const sw::MacAddress& mac);

// "join with: NETDEV -device virtio-net-pci,netdev=n0,mac=MAC".
std::string join_line(const std::string& netdev, const sw::MacAddress& mac);

}  // namespace qswitch::tools
