// backends/tap/tap_port.h: a Linux tap device as a switch port (--tap NAME, --tap fd=N).
//
// Theory of operation
// - Opening: /dev/net/tun with IFF_TAP | IFF_NO_PI (no packet-information prefix: each read or
//   write is exactly one Ethernet frame, no FCS; Documentation/networking/tuntap.rst).
//   * An existing tap (root made it once: `ip tuntap add NAME mode tap user USER`) is attached
//     as it is: its link state and addresses are its owner's business, qswitch changes nothing.
//   * A tap that does not exist is created when qswitch has CAP_NET_ADMIN (IFF_TUN_EXCL tells
//     the two cases apart). qswitch then sets the new link up, since nobody else will; the
//     device is not persistent and disappears when qswitch exits. Addresses stay the user's.
//   * fd=N adopts an inherited fd; TUNGETIFF must say it is a tap with IFF_NO_PI.
//   The fd is non-blocking and close-on-exec.
// - Offloads (a tap qswitch opens by name): IFF_VNET_HDR with a 12-byte virtio_net_hdr before
//   every frame (TUNSETVNETHDRSZ) and TUNSETOFFLOAD (CSUM, TSO4, TSO6, TSO_ECN), as QEMU's tap
//   backend sets them: the kernel hands over TCP segments up to 64 KiB with their checksum left
//   to do, and takes them. A checksum left to do is completed in our copy; a large segment goes
//   whole to ports that take it (a vhost-user guest, another tap) and is cut by the switch for
//   the others (switch/offload.h). Counted: tap_gso_frames, tap_csum_completed, tap_bad_offload.
//   An inherited fd=N stays as it was opened: without a vnet header (refused with one).
// - Reading: on each wake-up, up to DatagramRx::kSlots read()s, one frame each, straight into
//   consecutive DatagramRx slots (zero copy), forwarded as one burst. A read shorter than 14
//   bytes is dropped and counted (drop_bad_length); the port stays up.
// - Writing: a DatagramTx bounded by --queue-size; flush() writes one frame per writev (frame
//   plus zero padding to 60 bytes) until EAGAIN, then waits for POLLOUT.
// - A link that is down makes write() fail with EIO: that frame is dropped and counted
//   (tap_link_down), and the port stays, so `ip link set NAME up` later just works.
// - A tap that goes away (device deleted: EBADFD, ENODEV, ENXIO...) closes the port with the
//   reason logged; nothing else on the switch notices.
// - Flow control as the stream ports: congested() while the queue is over half full and the
//   device took a frame within kStuckMs; reading pauses while a unicast destination is
//   congested or every receive chunk is held by output queues.
#pragma once

#include <memory>
#include <string>

#include "backends/runtime/switch_loop.h"
#include "backends/tap/tap_config.h"

namespace qswitch::backends {

// Opens the tap and returns its port (not yet adopted by the loop), or nullptr with `error`
// naming the device and what to do about it. On success `name`, when given, receives the
// interface name: the one asked for, or (fd=N) the one the kernel reports for the fd.
std::unique_ptr<LoopPort> open_tap_port(SwitchLoop& loop, const TapSpec& spec, std::string& error,
                                        std::string* name = nullptr);

}  // namespace qswitch::backends
