// switch/port.h: what the switch core needs from a port. Every port keeps sw::PortCounters
// (switch/counters.h: each counter's name and meaning).
//
// Ownership: enqueue() borrows the frame; a port that queues it takes its own chunk reference
// and releases it once the bytes are written or dropped ("the caller transfers nothing": the
// receiving port's reference stays the receiver's). A port counts its own output drops.
// Ports are owned by the backends layer; the switch keeps a non-owning pointer between attach()
// and detach().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "switch/counters.h"
#include "switch/frame.h"
#include "switch/port_security.h"
#include "switch/types.h"
#include "switch/vlan.h"

namespace qswitch::sw {

class Port {
 public:
  virtual ~Port() = default;

  // Queue `frame` for output (see the ownership note above). Never blocks, never fails loudly:
  // a full queue drops the frame and counts drop_queue_full.
  virtual void enqueue(const Frame& frame) = 0;
  // enqueue() each of `frames`, in order: frames of one input burst that all go to this port,
  // whole (not split) and without offload. A port whose queue takes a burst at once overrides it.
  virtual void enqueue_burst(std::span<const Frame> frames) {
    for (const Frame& f : frames) enqueue(f);
  }
  // Write what is queued without blocking. Called by L2Switch::flush() once per loop turn for
  // every port that got frames since the last call.
  virtual void flush() = 0;
  // The peer's identity for logs: "unix:/run/x.sock", "tcp:127.0.0.1:40312".
  virtual std::string describe() const = 0;
  // True while this port's output is backed up but its peer is still reading (it wrote something
  // recently). A sender of unicast to a congested port is throttled rather than its frames
  // dropped: flow control for a slow receiver. A stuck peer (no progress) is never congested,
  // so it cannot stall anyone: its frames are dropped instead (drop_queue_full).
  virtual bool congested(Millis /*now*/) { return false; }
  // Copy every queued frame that pins a chunk of `pool` into memory of the port's own and let
  // go of those chunks (frame.h: the pool's port runs short of receive memory).
  virtual void release_chunks(const ChunkOwner& /*pool*/) {}

  // Offloaded frames this port takes whole (FrameOffload): kTakesTso4, kTakesTso6, kTakesEcn
  // (a vhost-user guest that negotiated GUEST_TSO4/6, GUEST_ECN). Toward a port without them
  // the switch cuts large TCP segments in software. 0 (the default): ordinary frames only.
  static constexpr uint8_t kTakesTso4 = 1;
  static constexpr uint8_t kTakesTso6 = 2;
  static constexpr uint8_t kTakesEcn = 4;
  uint8_t offload_caps() const { return offload_caps_; }
  bool takes(const FrameOffload& o) const {
    const uint8_t type = o.gso & ~FrameOffload::kGsoEcn;
    const uint8_t need = (type == FrameOffload::kGsoTcpV4   ? kTakesTso4
                          : type == FrameOffload::kGsoTcpV6 ? kTakesTso6
                                                            : uint8_t{0xff}) |
                         ((o.gso & FrameOffload::kGsoEcn) != 0 ? kTakesEcn : uint8_t{0});
    return (offload_caps_ & need) == need;
  }

  // Takes split frames (frame.h: a head, then a tail in a guest's memory), writing them with
  // iovecs. Toward a port that does not, the switch makes one contiguous copy of such a frame.
  bool takes_split() const { return takes_split_; }

  // The VLANs this port carries (vlan.h); access VLAN 1 unless set through
  // L2Switch::set_vlans().
  const VlanMembership& vlans() const { return vlans_; }
  // Port security (port_security.h); off unless set through L2Switch::set_security(). held_macs():
  // the MACs a secured port may send from so far (given, then first seen).
  const PortSecurity& security() const { return security_; }
  const std::vector<MacAddress>& held_macs() const { return held_macs_; }

  PortId id() const { return id_; }
  PortCounters& counters() { return counters_; }
  const PortCounters& counters() const { return counters_; }

 private:
  friend class L2Switch;
  PortId id_ = kNoPort;
  bool flush_pending_ = false;
  bool unicast_pending_ = false;  // on L2Switch::unicast_outs_ (this burst's unicast outputs)
  bool has_first_mac_ = false;
  VlanMembership vlans_;
  PortSecurity security_;
  std::vector<MacAddress> held_macs_;  // reserved for security_.max_macs

 protected:
  void set_offload_caps(uint8_t caps) { offload_caps_ = caps; }
  void set_takes_split(bool takes) { takes_split_ = takes; }
  PortCounters counters_;

 private:
  uint8_t offload_caps_ = 0;
  bool takes_split_ = false;
};

}  // namespace qswitch::sw
