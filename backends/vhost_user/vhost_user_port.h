// backends/vhost_user/vhost_user_port.h: one vhost-user front-end (a QEMU guest's virtio-net, or
// DPDK's virtio-user) as a switch port. qswitch is the vhost-user back-end: the guest's rings
// live in its own memory, which QEMU shares with us, and we read and write them directly.
//
// Theory of operation
// - The connection: one unix stream socket per front-end (accepted by a backends::Listener, or
// dialled) carries
//   the control messages (vhost_user_msg.h decodes them, with their fds). The port answers them
//   in order, on the loop, as they come: features, protocol features (REPLY_ACK, NET_MTU), the
//   memory table (each fd checked with fstat, then mapped: GuestMemory), and per virtqueue its
//   size, addresses, base, kick and call eventfds (QEMU docs/interop/vhost-user.rst). A reply is
//   one non-blocking send of at most kMaxReplySize bytes: the front-end waits for each reply
//   before it sends more, so the socket buffer always has room; a send that does not go whole
//   is a protocol error. Any protocol error closes this port, with the reason in the log and in
//   `vhost_protocol_errors`; the listener and every other port go on.
// - Virtio-net has queue 0, the guest's receive queue (we write frames into its buffers), and
//   queue 1, its transmit queue (we take frames from it). A queue runs once it has a kick fd, a
//   memory table, and is enabled: rings start disabled when VHOST_USER_F_PROTOCOL_FEATURES was
//   negotiated (then VHOST_USER_SET_VRING_ENABLE decides), else enabled (vhost-user.rst "Ring
//   states"). GET_VRING_BASE stops a queue and answers where it stopped. A new memory table
//   while queues run sets their rings up again in the new mapping, from where they were.
// - No thread and no polling: each running queue's kick eventfd is one uv_poll on the loop.
//   A kick on the transmit queue takes up to kChainsPerWake chains in bursts of at most the
//   loop's burst size (notifications off meanwhile, so the guest does not kick for buffers we
//   are about to see; EVENT_IDX when negotiated). A frame of at least TxLoans::kMinLend bytes
//   whose virtio-net header asks for nothing and whose bytes lie in one piece is lent to the
//   switch where it is (zero copy: tx_loans.h, switch/frame.h "Split frames"), when the memory is
//   sealed against shrinking; its buffer goes back to the guest once every output wrote it (used
//   entries published on the next loop turn). A stuck output that sits on lent frames is
//   relieved (its queue copies them) when none came back for kLoanCheckMs or half the ring is
//   out, and before the ring stops or the memory table changes. Every other frame is copied out
//   of guest memory into a receive chunk, packed (sw::PackedFrames: a 64-byte frame pins 72
//   bytes of chunk, not a slot of the largest frame's size), and its descriptor goes straight
//   back to the used ring; the burst goes to the switch. More than one wake-up's share
//   continues on the next loop turn (a uv_idle handle); an empty ring turns notifications back
//   on and looks once more, so no frame waits for a kick that is not coming.
// - Output to the guest: a DatagramTx queue bounded by --queue-size, written in flush() into
//   the receive queue's buffers, one copy: with VIRTIO_NET_F_MRG_RXBUF a frame may take several
//   buffers (Virtqueue::put_rx_mergeable), without it one buffer that must hold it all (else the
//   frame is dropped: vhost_rx_too_large). When the guest has no buffer left, the rest waits
//   and the port asks for a kick on the receive queue (`vhost_rx_no_room` counts the times); a
//   guest that takes nothing for kStuckMs is not congested, so its queue fills and further
//   frames are dropped (drop_queue_full): a paused VM costs its own frames only. Frames for a
//   port whose receive queue does not run yet are dropped and counted (vhost_not_running).
// - The guest's interrupt: after writing used entries, the call eventfd is signalled when
//   Virtqueue::need_notify() says so (EVENT_IDX's used_event, or VRING_AVAIL_F_NO_INTERRUPT).
// - Guest memory is untrusted: every descriptor is checked by the Virtqueue against the memory
//   table; a malformed ring (a loop, an address outside memory, avail idx running ahead...)
//   closes this port with the ring error named (`vhost_ring_errors`). A frame shorter than an
//   Ethernet header or longer than kMaxFrameSize is dropped (drop_bad_length) and the port
//   stays.
// - Offloads (CSUM, HOST/GUEST TSO4/6, ECN) through backends::OffloadIntake on the way in (a
//   checksum left to do is completed in our copy, a large segment keeps its state for the
//   switch) and sw::frame_offload_header() on the way out; no multiqueue.
// - Flow control as the other kinds: reading the transmit queue pauses while a unicast
//   destination is congested or every receive chunk is held by output queues, and resumes from
//   the loop's check phase (retry_paused_read()); the guest's own ring is the buffer meanwhile.
// - Counters beyond the common ones (for_each_extra_counter): vhost_kicks, vhost_interrupts,
//   vhost_descriptors, vhost_tx_lent, vhost_gso_frames, vhost_csum_completed, vhost_bad_offload,
//   vhost_rx_no_room, vhost_rx_too_large, vhost_not_running,
//   vhost_ring_errors, vhost_protocol_errors.
#pragma once

#include <memory>
#include <string>

#include "backends/runtime/io/fd.h"
#include "backends/runtime/switch_loop.h"

namespace qswitch::backends::vhost_user {

// The port of one accepted front-end connection (not yet adopted by the loop). `peer` is what
// describe() says ("vhost-user:/path (pid 42)").
std::unique_ptr<LoopPort> make_vhost_user_port(SwitchLoop& loop, io::Fd socket, std::string peer);

}  // namespace qswitch::backends::vhost_user
