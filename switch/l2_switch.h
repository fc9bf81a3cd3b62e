// switch/l2_switch.h: learning and forwarding.
//
// Theory of operation
// - receive() takes a burst of frames from one port. For each: a multicast source is dropped
//   (drop_bad_source); otherwise the source is learned on the input port. Broadcast, multicast
//   and unknown unicast flood to every attached port but the input; known unicast goes to the
//   one port it was learned on, and is dropped (drop_same_port) when that is the input port, so
//   a frame never returns to its source.
// - Flow control: when a known-unicast destination reports congested() (backed up but still
//   draining), receive() tells the caller, which pauses reading that input until it is not.
//   Floods never throttle: one slow port must not slow a broadcast for everyone.
// - Output is deferred: ports get enqueue() now and flush() once, from flush(), at the end of
//   the loop turn, so one writev carries every frame a port got in that turn (DPDK l2fwd's
//   tx buffers, OVS's output batching).
// - The slirp port and every backend are plain Ports: no special cases.
// - Duplicate MACs: a source MAC that flaps between two ports (two guests on QEMU's default
//   52:54:00:12:34:56) is counted on both ports and reported through Events, at most once per
//   dup_report_interval_ms.
// - Pinned MACs (pin_mac()): the MAC of a port of the switch's own (the slirp gateway) stays on
//   that port; a frame from another port with that source is dropped (drop_mac_spoof) and
//   reported through Events, so a guest cannot take the gateway's MAC.
// - Receive memory: the switch is every pool's ChunkPressure (frame.h). relieve() has every
//   port copy out the frames it holds in that pool's chunks, so a port that stops reading
//   never keeps another port's input.
// - Offloads (frame.h FrameOffload, offload.h): a large TCP segment a guest left to "hardware"
//   goes whole to a port that takes it (Port::takes()) and, toward every other port, as the
//   segments Linux's GSO would make. They are cut once per frame, when the first port that needs
//   them is served, into chunks of the switch's own pool (a flood reuses them), and each segment
//   is queued like any received frame (it pins its chunk). Capture sees what each port gets.
// - Split frames (frame.h: zero copy out of a vhost-user guest) go as they are to ports that
//   take them (Port::takes_split()); for the others, one contiguous copy is made per frame, in
//   the same memory and the same way as cut segments (split_copies).
// - VLANs (vlan.h, IEEE 802.1Q): each port carries the VLANs of its VlanMembership (access VLAN 1
//   by default). A frame is classified on input from its head (bytes 12..15): untagged (or
//   priority-tagged, VID 0) frames belong to the port's untagged VLAN (none on a trunk without a
//   native VLAN: drop_vlan_untagged); a tagged frame on an access port is dropped
//   (drop_vlan_tagged), on a trunk it must carry that VLAN (drop_vlan_not_member). Learning,
//   lookup and flooding are per VLAN (the MAC table's key holds the VLAN id); a frame never
//   leaves through a port that does not carry its VLAN.
// - A frame leaves a trunk tagged (but on its native VLAN) and an access port untagged. When
//   that is not how it arrived, the switch makes the other form once per frame, in the same
//   memory as cut segments, and every port that needs it gets that one copy: a tag pushed (TCI =
//   the VLAN, priority 0, or the priority-tagged frame's priority) or popped (a result shorter
//   than 60 bytes padded with zeros); a tagged frame leaving tagged is not touched, so its
//   priority bits survive. Counters vlan_tag_pushes, vlan_tag_pops, vlan_dropped (no memory, or
//   a push past kMaxFrameSize). An offloaded frame's csum_start moves with the tag; a split
//   frame's other form is a whole copy. A flood serves the ports taking the frame as it arrived
//   first, then each other form, so each form is cut (offload) or joined (split) once.
// - Port security (port_security.h): a secured port's frames are checked before learning (its own
//   MACs only, ARP naming its MAC; then, in a VLAN a slirp port serves or on a port with ip=
//   addresses, its IP sources, ARP sender IPs and neighbour advertisement targets); its MACs are
//   pinned in the VLANs it uses them. The address book (address_book.h) is what the slirp ports'
//   DHCP servers and IPv6 prefixes say each VLAN's guests were given; an unsecured port never
//   reads it.
// - Burst memo: within one receive() call, a source already refreshed on the input port is not
//   learned again, and a destination already looked up (8 slots, by the MAC's last byte) is not
//   looked up again, as long as the table has only been refreshed since: any other learning
//   outcome forgets the memo. A guest's burst holds one source and few destinations, so most
//   frames skip both hash lookups; the table ends in exactly the state per-frame calls leave.
//   Events callbacks may change the table (or ports): the memo is forgotten after each.
// - Unicast groups: consecutive frames of a burst for one known-unicast destination that leave as
//   they came (no VLAN change, no offload to cut, not split, no capture) are handed to it
//   together (Port::enqueue_burst(); a lone frame through enqueue()), when the next frame goes
//   elsewhere, before anything else is output or an Events callback runs, and at the end of the
//   burst; a guest's burst to one peer then costs one call, and the stream queue joins it into runs
//   with a few compares per frame. Each port still gets its frames in the order they came.
// - Same-head path: a frame of an unsecured port whose first 16 bytes (destination, source, then
//   EtherType or tag) are those of the frame just before it in the burst, when that one joined
//   the unicast group and its source was already refreshed (the memo says so), would take every
//   decision that frame took: it is counted and joins the group without being classified,
//   learned or looked up (the memo would have skipped both lookups: the table ends the same).
//   A stream of frames between two guests is mostly that.
// - Congestion is asked once per burst of each known-unicast destination, after the burst (a
//   queue only grows within a burst, and `now` does not move: what a port answers after the
//   last frame it took is what it would have answered after any).
// - Single-threaded; no allocation per frame (the flush list is reserved per attached port, the
//   segment list once for the most segments a frame can make).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "switch/counters.h"
#include "switch/frame.h"
#include "switch/mac_table.h"
#include "switch/offload.h"
#include "switch/packed_frames.h"
#include "switch/port.h"
#include "switch/port_security.h"
#include "switch/types.h"

namespace qswitch::sw {

struct SwitchConfig {
  MacTableConfig mac;
  Millis dup_report_interval_ms = 10'000;
};

class L2Switch : public ChunkPressure {
 public:
  class Events {
   public:
    virtual ~Events() = default;
    virtual void on_first_mac(Port& port, const MacAddress& mac) = 0;
    // `count` events happened since the last report (this one included).
    virtual void on_duplicate_mac(const MacAddress& mac, Port& was, Port& now, uint64_t count) = 0;
    // A frame from `in` used `mac`, pinned to `owner` (the frame was dropped). Rate-limit here.
    virtual void on_mac_spoof(Port& /*in*/, const MacAddress& /*mac*/, Port& /*owner*/) {}
    // A secured port's frame from `mac` was dropped for `why` (port_security.h); `addr` is the IP
    // address it claimed (kNone for the MAC drops and unreadable headers). Rate-limit here.
    virtual void on_port_security(Port& /*in*/, const MacAddress& /*mac*/, SecurityDrop /*why*/,
                                  const IpAddress& /*addr*/) {}
  };

  // Sees frames as they cross the switch, for live capture. ingress() gets every frame a port
  // received (before any decision, drops included); egress() every frame queued to a port.
  // Frames are borrowed for the call only (take a chunk reference to keep one).
  class CaptureHook {
   public:
    virtual ~CaptureHook() = default;
    virtual void ingress(const Port& in, const Frame& frame) = 0;
    virtual void egress(const Port& out, const Frame& frame) = 0;
  };

  explicit L2Switch(const SwitchConfig& config);
  L2Switch(const L2Switch&) = delete;
  L2Switch& operator=(const L2Switch&) = delete;

  ~L2Switch() override;

  void set_events(Events* events) { events_ = events; }
  // nullptr: no capture, and the data path pays one pointer test per frame.
  void set_capture_hook(CaptureHook* hook) { capture_ = hook; }

  // Assigns the port its id. The switch keeps a non-owning pointer until detach().
  PortId attach(Port& port);
  // Forgets the port and every MAC learned on it. Its id may be reused.
  void detach(Port& port);
  // Pins `mac` to the attached `port`, in the port's untagged VLAN (a port of the switch's own
  // is an access port; a trunk without a native VLAN pins nothing), until it detaches (see the
  // theory above).
  void pin_mac(Port& port, const MacAddress& mac, Millis now) {
    if (port.vlans_.untagged != 0) macs_.pin(mac, port.vlans_.untagged, port.id_, now);
  }
  // Sets the VLANs `port` carries (vlan.h), attached or not. An attached port's learned MACs are
  // forgotten (they were learned in its old VLANs); its pinned MACs move to its new untagged
  // VLAN.
  void set_vlans(Port& port, const VlanMembership& vlans, Millis now);
  // Sets `port`'s security (port_security.h), attached or not. An attached port's learned MACs are
  // forgotten; it holds the given MACs again and learns its own anew.
  void set_security(Port& port, const PortSecurity& security);
  // The addresses the switch gave guests (address_book.h): the slirp ports fill it.
  AddressBook& addresses() { return addresses_; }
  const AddressBook& addresses() const { return addresses_; }
  // Does port security check `port`'s IP sources in some VLAN (it is secured, and has ip=
  // addresses or carries a VLAN a slirp port serves)?
  bool checks_ip(const Port& port) const;
  // What a secured `port` may send from besides link-local and unspecified sources: its ip=
  // addresses, then, in each VLAN it carries that a slirp port serves, each of its MACs' DHCP
  // lease and SLAAC address. Allocates: for the control plane.
  struct AllowedAddress {
    enum class Source : uint8_t { kGiven, kLease, kSlaac };
    IpAddress addr;
    Source source = Source::kGiven;
    uint16_t vlan = 0;  // 0 for kGiven (every VLAN)
  };
  std::vector<AllowedAddress> allowed_addresses(const Port& port) const;
  // ChunkPressure: every attached port releases what it holds of `pool`.
  void relieve(const ChunkOwner& pool) override;

  // Returns the id of a known-unicast destination that was congested() after taking a frame
  // of this burst (the input should pause reading until it is not), or kNoPort.
  PortId receive(Port& in, std::span<const Frame> frames, Millis now);
  PortId receive(Port& in, const Frame& frame, Millis now) { return receive(in, {&frame, 1}, now); }
  // Flushes every port that got frames since the last call.
  void flush();
  // Ages the MAC table; call every few seconds.
  size_t expire(Millis now) { return macs_.expire(now); }

  Port* port(PortId id) const { return id < ports_.size() ? ports_[id] : nullptr; }
  size_t port_count() const { return attached_count_; }
  const MacTable& macs() const { return macs_; }
  // The switch-wide counters (switch/counters.h), with the MAC table's evictions: a copy, for
  // the control plane.
  SwitchCounters counters() const {
    SwitchCounters c = counters_;
    c.mac_evictions = macs_.eviction_count();
    return c;
  }
  template <typename F>
  void for_each_port(F&& f) const {
    for (Port* p : ports_) {
      if (p != nullptr) f(*p);
    }
  }

 private:
  // How a frame arrived (see VLANs in the theory above).
  enum class Form : uint8_t { kUntagged, kTagged, kPriorityTagged };
  struct Ingress {
    uint16_t vlan = 0;
    uint16_t tci = 0;  // the tag's, when it had one
    Form form = Form::kUntagged;
  };
  // The frame's VLAN on `in`; false (counted on `in`) when `in` does not take it.
  bool classify(Port& in, const Frame& frame, Ingress& ingress);
  // A secured port's frame before learning: false (counted, reported) when `in` may not send it.
  // *held: `src` is already one of the port's MACs.
  bool secure_source(Port& in, const Frame& frame, const Ingress& ingress, const MacAddress& src,
                     bool* held);
  void security_drop(Port& in, const MacAddress& src, SecurityDrop why, const IpAddress& addr = {});
  // Sends `frame` to `out` in the form `out` takes it for the frame's VLAN.
  void send(Port& out, const Frame& frame, const Ingress& ingress);
  void flood(Port& in, const Frame& frame, const Ingress& ingress);
  // A learned frame to its destination (unicast, or flooded).
  void forward(Port& in, const Frame& frame, const Ingress& ingress, Millis now);
  // The frame tagged (or untagged) for its VLAN, made once per frame; nullptr when it could not
  // be made (counted).
  const Frame* variant(const Frame& frame, const Ingress& ingress, bool tagged);
  void drop_variants();
  // Room for a `size`-byte frame in segment memory: `*frame` is set and holds one reference
  // (write its bytes at the returned address); nullptr when no chunk is free.
  uint8_t* reserve_frame(uint32_t size, Frame* frame);
  void output(Port& out, const Frame& frame);
  void queue(Port& out, const Frame& frame);
  // Puts `out` on the flush list (once per turn).
  void to_flush(Port& out);
  // Hands the unicast group (see the theory above) to its port, if there is one.
  void emit_group();
  // Cuts `frame` into segs_ (once per frame); false when it could not.
  bool cut(const Frame& frame);
  // Room for a `size`-byte frame at the end of segs_, in segment memory (the new frame already
  // pinned and in segs_: write its bytes there); nullptr when no chunk is free.
  uint8_t* add_segment(uint32_t size);
  // Copies split `frame` (frame.h) into segs_ as one frame (once per frame); false when it
  // could not.
  bool join(const Frame& frame);
  void drop_segments();
  void note_duplicate(const MacAddress& mac, PortId was, Port& now, Millis now_ms);

  // The burst memo (see the theory above), keys as mac_key() makes them.
  class BurstMemo {
   public:
    void clear() {
      src_ = kNoKey;
      for (uint64_t& k : dst_key_) k = kNoKey;
    }
    // True when `src` was refreshed on `port` in this burst.
    bool refreshed(uint64_t src, PortId port) const { return src == src_ && port == src_port_; }
    void set_refreshed(uint64_t src, PortId port) {
      src_ = src;
      src_port_ = port;
    }
    // True (and *port set) when `dst` was looked up in this burst.
    bool lookup(uint64_t dst, PortId* port) const {
      const uint32_t i = slot(dst);
      if (dst_key_[i] != dst) return false;
      *port = dst_port_[i];
      return true;
    }
    void set_lookup(uint64_t dst, PortId port) {
      const uint32_t i = slot(dst);
      dst_key_[i] = dst;
      dst_port_[i] = port;
    }

   private:
    static constexpr uint32_t kDstSlots = 8;
    static constexpr uint64_t kNoKey = ~uint64_t{0};  // mac_key() never sets bits 60..63
    static uint32_t slot(uint64_t key) { return static_cast<uint32_t>(key) & (kDstSlots - 1); }
    uint64_t src_ = kNoKey;
    PortId src_port_ = kNoPort;
    uint64_t dst_key_[kDstSlots] = {kNoKey, kNoKey, kNoKey, kNoKey, kNoKey, kNoKey, kNoKey, kNoKey};
    PortId dst_port_[kDstSlots] = {};
  };

  SwitchConfig config_;
  MacTable macs_;
  AddressBook addresses_;
  std::vector<Port*> ports_;  // indexed by PortId, nullptr for free ids
  std::vector<PortId> free_ids_;
  std::vector<Port*> flush_list_;
  std::vector<Port*> unicast_outs_;  // known-unicast destinations of the current burst
  size_t attached_count_ = 0;
  SwitchCounters counters_;
  Events* events_ = nullptr;
  CaptureHook* capture_ = nullptr;
  Millis last_dup_report_ = -1;
  uint64_t dup_since_report_ = 0;
  BurstMemo memo_;
  // The unicast group: frames [group_begin_, group_end_) of the current burst, all for
  // group_out_, leaving as they came (nullptr: none).
  Port* group_out_ = nullptr;
  const Frame* group_begin_ = nullptr;
  const Frame* group_end_ = nullptr;
  // Software segmentation (see the theory above).
  PackedFrames seg_memory_;
  std::vector<Frame> segs_;              // the current frame's segments, one reference each
  const uint8_t* seg_source_ = nullptr;  // the frame segs_ were cut from (this burst)
  bool seg_failed_ = false;
  // The current frame's other VLAN forms: [0] untagged, [1] tagged (see the theory above).
  enum class VariantState : uint8_t { kNone, kMade, kFailed };
  Frame variants_[2];
  VariantState variant_state_[2] = {VariantState::kNone, VariantState::kNone};
  bool variants_used_ = false;
};

}  // namespace qswitch::sw
