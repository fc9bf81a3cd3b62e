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
#include "tools/qswitch/config/lab_file.h"

namespace qswitch::tools {

// "-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH" (or inet HOST/PORT); `server`
// is the guest's side: off for a guest of one of our listeners.
std::string stream_netdev(const io::SocketAddress& ep, bool server);

// The -netdev of a guest of a --dgram socket. `bound` is the socket's bound address (for udp,
// with the real port when 0 was asked; ignored for unix and multicast). A unix guest gets its
// own path beside ours, made unique by the last three bytes of `mac`.
std::string dgram_netdev(const backends::DgramConfig& config, const sockaddr_storage& bound,
                         const sw::MacAddress& mac);

// A vhost-user guest's memory: shared (the switch maps it), as large as the guest's RAM. QEMU
// takes the RAM size from the backend when -m is left out; with -m they must be equal.
inline constexpr const char* kVhostUserMemory = "1G";
// What a vhost-user guest adds: its RAM as a shared memfd, the chardev to our socket `ep` and
// the vhost-user netdev.
std::string vhost_user_netdev(const io::SocketAddress& ep);
// The -device option a vhost-user guest needs under TCG: QEMU 7.2 crashes (vhost_net_start ->
// msix_set_vector_notifiers) when the driver starts a vhost-user NIC with MSI-X without KVM.
// Under KVM MSI-X works and is faster; the option is harmless there (legacy interrupts).
inline constexpr const char* kVhostUserTcgDevice = ",vectors=0";

// "join with: NETDEV -device virtio-net-pci,netdev=n0,mac=MAC[DEVICE_OPTIONS]".
std::string join_line(const std::string& netdev, const sw::MacAddress& mac,
                      const std::string& device_options = "");

// The join line of a lab file's [[guest]] on its port (guest.port), with its MAC: what
// `qswitch --check` writes under the guest (the lab file resolved it: a port whose join line is
// known before start); "" for a guest without a port.
std::string lab_guest_join_line(const LabFile& lab, const LabGuest& guest);

}  // namespace qswitch::tools
