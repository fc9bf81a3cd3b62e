// backends/vxlan/vxlan_port.h: one L2 segment across machines over VXLAN (RFC 7348), as ONE
// switch port for all remotes (--vxlan vni=N,local=ADDR:PORT,remote=ADDR[:PORT]...).
//
// Theory of operation
// - One UDP socket bound to `local`. Every remote (a Linux vxlan device, Open vSwitch, another
//   qswitch) is reached through it; they all sit behind this single port, so the switch never
//   forwards a frame from one remote to another (split horizon, RFC 7348 section 4.2's
//   "head-end replication" model): a mesh of qswitches joined by VXLAN cannot loop.
// - Which remote sent a datagram: its source IP, and its source port too when it matches a
//   remote exactly. Linux picks the UDP source port from a hash of the inner flow (RFC 7348
//   section 5, "Source Port"), so the port alone cannot identify a peer; two remotes on one IP
//   are told apart by their port when they send from it (as qswitch does).
// - Receiving: up to kReadsPerWake recvmmsg() calls per wake-up, each of up to
//   DatagramRx::kSlots messages whose iov[0] is an 8-byte header scratch and iov[1] a DatagramRx
//   slot: the inner frame lands in switch memory without a copy. Dropped and counted, with
//   rate-limited log lines: a datagram from an address not in the remote list
//   (vxlan_unknown_remote), without the I flag (vxlan_bad_header), with another VNI
//   (vxlan_wrong_vni), or whose inner frame is shorter than 14 bytes or truncated
//   (drop_bad_length). The port stays up.
// - Learning inside the port: a fixed-size sw::MacTable (the switch's --mac-max and --mac-age;
//   "port" = remote index) maps the inner source MAC of received frames to the remote it came
//   from. No allocation per frame.
// - Sending: frames queue in a DatagramTx (bounded by --queue-size). flush() turns each into
//   datagrams, iov = {header, frame, padding to 60}: known unicast -> its remote only;
//   broadcast, multicast and unknown unicast -> every remote (head-end replication). Datagrams
//   leave in sendmmsg() batches of up to kSendBatch until EAGAIN, then the port waits for
//   POLLOUT; a flood cut by EAGAIN resumes at the remote it stopped at. A datagram the kernel
//   refuses (unreachable, too big) is dropped and counted (vxlan_send_errors). So is an ICMP
//   error reported later on the socket (a poll error, or a receive that returns it): it is
//   taken with SO_ERROR (backends/runtime/socket_error.h) and the socket is polled again, so a
//   remote that is down or unreachable never closes the port.
// - Flow control as the stream ports: congested() while the queue is over half full and the
//   socket took datagrams within kStuckMs.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/runtime/io/own_sockets.h"
#include "backends/runtime/switch_loop.h"
#include "backends/vxlan/vxlan_config.h"

namespace qswitch::backends {

// "vni=42 local=10.1.1.1:4789 remote=10.1.1.2:4789 remote=..." (what qswitch prints at start).
std::string to_string(const VxlanConfig& config);

// Binds the socket and returns the port (not yet adopted by the loop), or nullptr with `error`
// naming the bad value. With `own`, the bound address is registered there for as long as the
// socket is open (guests behind NAT must not reach it; see io::OwnSockets).
std::unique_ptr<LoopPort> open_vxlan_port(SwitchLoop& loop, const VxlanConfig& config,
                                          std::string& error, io::OwnSockets* own = nullptr);

// The address a port from open_vxlan_port() is bound to (the real port when 0 was asked);
// nullptr's or another kind's: an empty sockaddr_storage.
sockaddr_storage vxlan_bound_local(const LoopPort& port);

}  // namespace qswitch::backends
