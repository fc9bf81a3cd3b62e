// switch/l2_switch.cc: learning and forwarding (see the header).
#include "switch/l2_switch.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace qswitch::sw {

namespace {
constexpr uint32_t kSegChunks = 16;  // of PackedFrames::kChunkSize bytes
}  // namespace

L2Switch::L2Switch(const SwitchConfig& config)
    : config_(config), macs_(config.mac), seg_memory_(kSegChunks) {
  seg_memory_.set_pressure(this);
  segs_.reserve(kMaxSegmentCount);
}

L2Switch::~L2Switch() {
  drop_variants();
  drop_segments();
  seg_memory_.set_pressure(nullptr);  // nobody is left to relieve it
}

void L2Switch::drop_segments() {
  for (const Frame& s : segs_) chunk_unref(s.chunk);
  segs_.clear();
  seg_source_ = nullptr;
  seg_failed_ = false;
}

uint8_t* L2Switch::reserve_frame(uint32_t size, Frame* frame) {
  uint8_t* out = seg_memory_.reserve(size);
  // A full chunk goes (its frames hold their own references) for a fresh one.
  if (out == nullptr && seg_memory_.next_chunk()) out = seg_memory_.reserve(size);
  if (out == nullptr) return out;
  *frame = seg_memory_.commit(size);
  chunk_ref(frame->chunk);
  return out;
}

uint8_t* L2Switch::add_segment(uint32_t size) {
  Frame f;
  uint8_t* out = reserve_frame(size, &f);
  if (out != nullptr) segs_.push_back(f);
  return out;
}

namespace {

// `size` bytes of `frame` from `offset` on, into `out`, wherever they are (split frames: the
// head, then the tail in the sender's memory).
void copy_frame_bytes(const Frame& frame, uint32_t offset, uint32_t size, uint8_t* out) {
  if (frame.split() && offset + size > frame.head) {
    if (offset < frame.head) {
      const uint32_t n = frame.head - offset;
      std::memcpy(out, frame.data() + offset, n);
      out += n;
      offset += n;
      size -= n;
    }
    std::memcpy(out, frame.tail() + (offset - frame.head), size);
    return;
  }
  std::memcpy(out, frame.data() + offset, size);
}

}  // namespace

const Frame* L2Switch::variant(const Frame& frame, const Ingress& ingress, bool tagged) {
  VariantState& state = variant_state_[tagged ? 1 : 0];
  if (state == VariantState::kMade) return &variants_[tagged ? 1 : 0];
  if (state == VariantState::kFailed) return nullptr;
  variants_used_ = true;
  // The MACs, then the tag (tagged), then everything after the arrived tag (if any).
  const uint32_t rest_at = ingress.form == Form::kUntagged ? 12 : 12 + kVlanTagSize;
  const uint32_t rest = frame.size - rest_at;
  const uint32_t tag = tagged ? kVlanTagSize : 0;
  const uint32_t size = 12 + tag + rest;
  const uint32_t padded = std::max(size, tagged ? size : kPadFrameSize);
  const int32_t shift = static_cast<int32_t>(12 + tag) - static_cast<int32_t>(rest_at);
  FrameOffload offload = frame.offload;
  const bool csum_ok = offload == FrameOffload{} || offload.csum_start >= rest_at;
  Frame* v = &variants_[tagged ? 1 : 0];
  uint8_t* out = padded <= kMaxFrameSize && csum_ok ? reserve_frame(padded, v) : nullptr;
  if (out == nullptr) {
    ++counters_.vlan_dropped;
    state = VariantState::kFailed;
    return nullptr;
  }
  copy_frame_bytes(frame, 0, 12, out);
  if (tagged) {
    const uint16_t priority = ingress.form == Form::kUntagged ? 0 : ingress.tci & ~kVlanIdMask;
    const uint16_t tci = static_cast<uint16_t>(priority | ingress.vlan);
    out[12] = static_cast<uint8_t>(kTpidVlan >> 8);
    out[13] = static_cast<uint8_t>(kTpidVlan & 0xff);
    out[14] = static_cast<uint8_t>(tci >> 8);
    out[15] = static_cast<uint8_t>(tci & 0xff);
    ++counters_.vlan_tag_pushes;
  } else {
    ++counters_.vlan_tag_pops;
  }
  copy_frame_bytes(frame, rest_at, rest, out + 12 + tag);
  if (padded > size) std::memset(out + size, 0, padded - size);
  if (offload != FrameOffload{}) {
    offload.csum_start = static_cast<uint16_t>(offload.csum_start + shift);
  }
  v->offload = offload;
  state = VariantState::kMade;
  return v;
}

void L2Switch::drop_variants() {
  for (int i = 0; i < 2; ++i) {
    if (variant_state_[i] == VariantState::kMade) chunk_unref(variants_[i].chunk);
    variant_state_[i] = VariantState::kNone;
  }
  variants_used_ = false;
  // Segments cut from a variant: its memory may hold another frame's variant next.
  if (seg_source_ != nullptr) drop_segments();
}

// A split frame's one contiguous copy, for the ports that do not take split frames (frame.h).
// It goes where cut segments go (a split frame has no offload to cut).
bool L2Switch::join(const Frame& frame) {
  if (seg_source_ == frame.wire) return !seg_failed_;
  drop_segments();
  seg_source_ = frame.wire;
  uint8_t* out = add_segment(frame.size);
  if (out == nullptr) {
    ++counters_.split_dropped;
    seg_failed_ = true;
    return false;
  }
  std::memcpy(out, frame.data(), frame.head);
  std::memcpy(out + frame.head, frame.tail(), frame.size - frame.head);
  ++counters_.split_copies;
  return true;
}

bool L2Switch::cut(const Frame& frame) {
  if (seg_source_ == frame.wire) return !seg_failed_;
  drop_segments();
  seg_source_ = frame.wire;
  const OffloadInfo info = offload_info(frame.offload);
  const OffloadError e = software_offload(frame.data(), frame.size, info,
                                          [&](uint32_t size) { return add_segment(size); });
  if (e != OffloadError::kOk) {
    // Out of segment memory (the ports checked the frame when it came in): the ports that
    // need it cut do without it; TCP resends.
    ++counters_.gso_dropped;
    drop_segments();
    seg_source_ = frame.wire;
    seg_failed_ = true;
    return false;
  }
  ++counters_.gso_cut;
  counters_.gso_segments += segs_.size();
  return true;
}

PortId L2Switch::attach(Port& port) {
  PortId id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<PortId>(ports_.size());
    ports_.push_back(nullptr);
  }
  ports_[id] = &port;
  port.id_ = id;
  port.flush_pending_ = false;
  port.has_first_mac_ = false;
  ++attached_count_;
  // Every attached port can be on the flush list once per turn (and on the burst's unicast
  // list): reserve now, not per frame.
  flush_list_.reserve(attached_count_);
  unicast_outs_.reserve(attached_count_);
  return id;
}

void L2Switch::detach(Port& port) {
  const PortId id = port.id_;
  if (id >= ports_.size() || ports_[id] != &port) return;
  macs_.flush_port(id);
  for (std::vector<Port*>* list : {&flush_list_, &unicast_outs_}) {
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i] == &port) {
        (*list)[i] = list->back();
        list->pop_back();
        break;
      }
    }
  }
  port.unicast_pending_ = false;
  ports_[id] = nullptr;
  free_ids_.push_back(id);
  port.id_ = kNoPort;
  --attached_count_;
}

void L2Switch::set_vlans(Port& port, const VlanMembership& vlans, Millis now) {
  if (port.vlans_ == vlans) return;
  const bool attached = port.id_ < ports_.size() && ports_[port.id_] == &port;
  std::vector<MacAddress> pinned;
  if (attached) {
    macs_.for_each([&](const MacEntryView& e) {
      if (e.port == port.id_ && e.pinned) pinned.push_back(e.mac);
    });
    macs_.flush_port(port.id_);
  }
  port.vlans_ = vlans;
  for (const MacAddress& mac : pinned) pin_mac(port, mac, now);
}

void L2Switch::set_security(Port& port, const PortSecurity& security) {
  const bool attached = port.id_ < ports_.size() && ports_[port.id_] == &port;
  if (attached) macs_.flush_port(port.id_);
  port.security_ = security;
  port.held_macs_.clear();
  if (!security.enabled) return;
  port.held_macs_.reserve(std::max<size_t>(security.max_macs, security.macs.size()));
  port.held_macs_ = security.macs;
}

void L2Switch::security_drop(Port& in, const MacAddress& src, SecurityDrop why,
                             const IpAddress& addr) {
  if (is_ip_drop(why)) {
    in.counters_.drop_ip_spoof += 1;
    ++counters_.ip_spoofs;
  } else {
    in.counters_.drop_mac_spoof += 1;
    ++counters_.mac_spoofs;
  }
  if (events_ == nullptr) return;
  emit_group();  // the callback may change the ports
  events_->on_port_security(in, src, why, addr);
}

bool L2Switch::checks_ip(const Port& port) const {
  if (!port.security_.enabled) return false;
  if (!port.security_.ips.empty()) return true;
  const VlanMembership& m = port.vlans_;
  if (m.untagged != 0 && addresses_.serves(m.untagged)) return true;
  bool any = false;
  if (m.trunk) m.tagged.for_each([&](uint16_t v) { any = any || addresses_.serves(v); });
  return any;
}

std::vector<L2Switch::AllowedAddress> L2Switch::allowed_addresses(const Port& port) const {
  std::vector<AllowedAddress> out;
  if (!port.security_.enabled) return out;
  for (const IpAddress& a : port.security_.ips)
    out.push_back({a, AllowedAddress::Source::kGiven, 0});
  auto in_vlan = [&](uint16_t vlan) {
    if (!addresses_.serves(vlan)) return;
    for (const MacAddress& mac : port.held_macs_) {
      if (const std::optional<IpAddress> a = addresses_.lease(vlan, mac)) {
        out.push_back({*a, AllowedAddress::Source::kLease, vlan});
      }
      if (const std::optional<IpAddress> a = addresses_.slaac(vlan, mac)) {
        out.push_back({*a, AllowedAddress::Source::kSlaac, vlan});
      }
    }
  };
  const VlanMembership& m = port.vlans_;
  if (m.untagged != 0) in_vlan(m.untagged);
  if (m.trunk) {
    m.tagged.for_each([&](uint16_t v) {
      if (v != m.untagged) in_vlan(v);
    });
  }
  return out;
}

bool L2Switch::secure_source(Port& in, const Frame& frame, const Ingress& ingress,
                             const MacAddress& src, bool* held) {
  *held = std::find(in.held_macs_.begin(), in.held_macs_.end(), src) != in.held_macs_.end();
  if (!*held && in.held_macs_.size() >= in.security_.max_macs) {
    security_drop(in, src, SecurityDrop::kNotItsMac);
    return false;
  }
  // ARP (after the tag, if any): the sender hardware address is the frame's source.
  const uint8_t* d = frame.data();
  const uint32_t l3 = ingress.form == Form::kUntagged ? 14 : 14 + kVlanTagSize;
  if (d[l3 - 2] == 0x08 && d[l3 - 1] == 0x06 &&
      (frame.size < l3 + 14 || std::memcmp(d + l3 + 8, src.bytes.data(), 6) != 0)) {
    security_drop(in, src, SecurityDrop::kArpSenderMac);
    return false;
  }
  // IP (port_security.h), from the head only: a split frame's tail is the guest's to change.
  if (in.security_.ips.empty() && !addresses_.serves(ingress.vlan)) return true;
  const uint32_t readable = frame.split() ? std::min(frame.head, frame.size) : frame.size;
  const IpVerdict v = check_ip(d, readable, l3, src, ingress.vlan, in.security_, addresses_);
  if (!v.ok) {
    security_drop(in, src, v.why, v.addr);
    return false;
  }
  return true;
}

bool L2Switch::classify(Port& in, const Frame& frame, Ingress& ingress) {
  const uint8_t* d = frame.data();
  const VlanMembership& m = in.vlans_;
  const bool tag = d[12] == (kTpidVlan >> 8) && d[13] == (kTpidVlan & 0xff);
  if (!tag) {
    if (m.untagged == 0) {
      in.counters_.drop_vlan_untagged += 1;
      return false;
    }
    ingress.vlan = m.untagged;
    ingress.form = Form::kUntagged;
    return true;
  }
  if (frame.size < 12 + kVlanTagSize + 2) {  // the tag and the EtherType after it
    in.counters_.drop_vlan_not_member += 1;
    return false;
  }
  const uint16_t tci = load_be16(d + 14);
  const uint16_t vid = tci & kVlanIdMask;
  ingress.tci = tci;
  if (vid == 0) {  // a priority tag: the frame is untagged as far as VLANs go
    if (m.untagged == 0) {
      in.counters_.drop_vlan_untagged += 1;
      return false;
    }
    ingress.vlan = m.untagged;
    ingress.form = Form::kPriorityTagged;
    return true;
  }
  if (!m.trunk) {
    in.counters_.drop_vlan_tagged += 1;
    return false;
  }
  if (vid > kMaxVlanId || !m.carries(vid)) {
    in.counters_.drop_vlan_not_member += 1;
    return false;
  }
  ingress.vlan = vid;
  ingress.form = Form::kTagged;
  return true;
}

void L2Switch::send(Port& out, const Frame& frame, const Ingress& ingress) {
  const bool tagged = out.vlans_.tags(ingress.vlan);
  if (ingress.form == (tagged ? Form::kTagged : Form::kUntagged)) {
    output(out, frame);
    return;
  }
  if (const Frame* v = variant(frame, ingress, tagged)) output(out, *v);
}

void L2Switch::flood(Port& in, const Frame& frame, const Ingress& ingress) {
  bool other[2] = {false, false};  // some port takes the frame untagged / tagged, not as it came
  for (Port* p : ports_) {
    if (p == nullptr || p == &in || !p->vlans_.carries(ingress.vlan)) continue;
    const bool tagged = p->vlans_.tags(ingress.vlan);
    if (ingress.form == (tagged ? Form::kTagged : Form::kUntagged)) {
      output(*p, frame);
    } else {
      other[tagged ? 1 : 0] = true;
    }
  }
  for (int t = 0; t < 2; ++t) {
    if (!other[t]) continue;
    const Frame* v = variant(frame, ingress, t == 1);
    if (v == nullptr) continue;
    for (Port* p : ports_) {
      if (p == nullptr || p == &in || !p->vlans_.carries(ingress.vlan)) continue;
      if (p->vlans_.tags(ingress.vlan) == (t == 1)) output(*p, *v);
    }
  }
}

void L2Switch::output(Port& out, const Frame& frame) {
  if (frame.offload.any() && !out.takes(frame.offload)) {
    if (!cut(frame)) return;
    for (const Frame& s : segs_) queue(out, s);
    return;
  }
  if (frame.split() && !out.takes_split()) {
    if (join(frame)) queue(out, segs_.front());
    return;
  }
  queue(out, frame);
}

void L2Switch::queue(Port& out, const Frame& frame) {
  if (capture_ != nullptr) capture_->egress(out, frame);
  out.enqueue(frame);
  to_flush(out);
}

void L2Switch::to_flush(Port& out) {
  if (!out.flush_pending_) {
    out.flush_pending_ = true;
    flush_list_.push_back(&out);
  }
}

void L2Switch::emit_group() {
  if (group_out_ == nullptr) return;
  Port& out = *group_out_;
  group_out_ = nullptr;
  // One frame (frames of a burst taking turns between ports): the plain call is cheaper.
  if (group_end_ - group_begin_ == 1) {
    out.enqueue(*group_begin_);
  } else {
    out.enqueue_burst({group_begin_, group_end_});
  }
  to_flush(out);
}

void L2Switch::forward(Port& in, const Frame& f, const Ingress& ingress, Millis now) {
  const uint8_t* dst = f.dst();
  if ((dst[0] & 0x01) == 0) {  // not multicast (nor broadcast)
    const uint64_t dst_key = mac_key(dst, ingress.vlan);
    PortId out_id;
    if (!memo_.lookup(dst_key, &out_id)) {
      out_id = macs_.lookup(dst_key, now);
      memo_.set_lookup(dst_key, out_id);
    }
    if (out_id == in.id_) {
      in.counters_.drop_same_port += 1;
      return;
    }
    if (out_id != kNoPort) {
      ++counters_.unicast;
      Port& out = *ports_[out_id];
      if (!out.unicast_pending_) {
        out.unicast_pending_ = true;
        unicast_outs_.push_back(&out);
      }
      // Leaving as it is (send()'s first case, output()'s last): it joins the group.
      const bool tagged = out.vlans_.tags(ingress.vlan);
      if (capture_ == nullptr && !f.offload.any() && !f.split() &&
          ingress.form == (tagged ? Form::kTagged : Form::kUntagged)) {
        if (group_out_ == &out && group_end_ == &f) {
          ++group_end_;
          return;
        }
        emit_group();
        group_out_ = &out;
        group_begin_ = &f;
        group_end_ = &f + 1;
        return;
      }
      emit_group();
      send(out, f, ingress);
      return;
    }
  }
  ++counters_.flooded;
  emit_group();
  flood(in, f, ingress);
}

namespace {
// A frame's first kSameHeadBytes (destination, source, then the EtherType or the VLAN tag):
// what every decision of the per-frame path reads from a frame of an unsecured port.
constexpr uint32_t kSameHeadBytes = 16;
// The shortest frame classify() reads as far as that (a tag, then an EtherType).
constexpr uint32_t kSameHeadMinSize = 12 + kVlanTagSize + 2;
static_assert(kSameHeadBytes <= kSameHeadMinSize);
bool same_head(const Frame& a, const Frame& b) {
  uint64_t x[2];
  uint64_t y[2];
  std::memcpy(x, a.data(), sizeof x);
  std::memcpy(y, b.data(), sizeof y);
  return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}
}  // namespace

PortId L2Switch::receive(Port& in, std::span<const Frame> frames, Millis now) {
  const PortId in_id = in.id_;
  PortId congested = kNoPort;
  memo_.clear();
  const Frame* same_next = nullptr;  // the frame that may take the same-head path (see the theory)
  for (const Frame& f : frames) {
    if (&f == same_next && group_out_ != nullptr && group_end_ == &f && !f.offload.any() &&
        !f.split() && f.size >= kSameHeadMinSize && same_head(f, (&f)[-1])) {
      ++counters_.frames_in;
      in.counters_.rx_frames += 1;
      in.counters_.rx_bytes += f.size;
      ++counters_.unicast;
      ++group_end_;
      ++same_next;
      continue;
    }
    if (variants_used_) drop_variants();
    ++counters_.frames_in;
    if (capture_ != nullptr) capture_->ingress(in, f);
    in.counters_.rx_frames += 1;
    in.counters_.rx_bytes += f.size;
    const MacAddress src = MacAddress::from_wire(f.src());
    if (src.is_multicast()) {
      in.counters_.drop_bad_source += 1;
      continue;
    }
    Ingress ingress;
    if (!classify(in, f, ingress)) continue;
    const bool secured = in.security_.enabled;
    bool held = true;
    if (secured && !secure_source(in, f, ingress, src, &held)) continue;
    const uint64_t src_key = mac_key(f.src(), ingress.vlan);
    // After forward(): the next frame may take the same-head path when this one joined the
    // unicast group, its source needs no learning (the memo says so) and it is long enough.
    auto note_same_next = [&] {
      same_next = !secured && group_out_ != nullptr && group_end_ == &f + 1 &&
                          f.size >= kSameHeadMinSize && memo_.refreshed(src_key, in_id)
                      ? &f + 1
                      : nullptr;
    };
    if (memo_.refreshed(src_key, in_id)) {
      forward(in, f, ingress, now);
      note_same_next();
      continue;
    }
    const LearnOutcome learned = macs_.learn(src_key, in_id, now);
    if (learned.result == LearnResult::kRefreshed) {
      memo_.set_refreshed(src_key, in_id);
    } else {
      memo_.clear();  // the table changed: what the memo says may not hold any more
    }
    if (learned.result == LearnResult::kPinned) {
      in.counters_.drop_mac_spoof += 1;
      ++counters_.mac_spoofs;
      Port* owner = port(learned.previous_port);
      if (events_ != nullptr && owner != nullptr) {
        emit_group();
        events_->on_mac_spoof(in, src, *owner);
      }
      memo_.clear();
      continue;
    }
    if (learned.result == LearnResult::kMoved) {
      ++counters_.mac_moves;
      if (learned.flapping) {
        note_duplicate(src, learned.previous_port, in, now);
        memo_.clear();  // its Events callback may have changed the ports
      }
    }
    if (secured) {
      if (!held) in.held_macs_.push_back(src);  // first seen (capacity reserved)
      // A secured port's MAC is pinned where it uses it (once per VLAN: then it refreshes).
      if (learned.result != LearnResult::kRefreshed) macs_.pin(src, ingress.vlan, in_id, now);
    }
    if (!in.has_first_mac_) {
      in.has_first_mac_ = true;
      if (events_ != nullptr) {
        emit_group();
        events_->on_first_mac(in, src);
      }
      memo_.clear();
    }
    forward(in, f, ingress, now);
    note_same_next();
  }
  emit_group();
  for (Port* out : unicast_outs_) {
    out->unicast_pending_ = false;
    if (out->congested(now)) congested = out->id_;
  }
  unicast_outs_.clear();
  if (variants_used_) drop_variants();
  // Segments are queued (each pinned); the next burst's frames may reuse these addresses.
  if (seg_source_ != nullptr) drop_segments();
  return congested;
}

void L2Switch::relieve(const ChunkOwner& pool) {
  ++counters_.chunk_reliefs;
  for (Port* p : ports_) {
    if (p != nullptr) p->release_chunks(pool);
  }
}

void L2Switch::flush() {
  // A port's flush() may close that port (write error), which detaches it and edits the list:
  // take ports from the back so removals never skip an entry.
  while (!flush_list_.empty()) {
    Port* p = flush_list_.back();
    flush_list_.pop_back();
    p->flush_pending_ = false;
    p->flush();
  }
}

void L2Switch::note_duplicate(const MacAddress& mac, PortId was, Port& now_port, Millis now) {
  ++counters_.dup_mac_events;
  ++dup_since_report_;
  now_port.counters_.dup_mac += 1;
  Port* was_port = port(was);
  if (was_port != nullptr) was_port->counters_.dup_mac += 1;
  if (last_dup_report_ >= 0 && now - last_dup_report_ < config_.dup_report_interval_ms) return;
  last_dup_report_ = now;
  ++counters_.dup_mac_warnings;
  if (events_ != nullptr && was_port != nullptr) {
    emit_group();
    events_->on_duplicate_mac(mac, *was_port, now_port, dup_since_report_);
  }
  dup_since_report_ = 0;
}

}  // namespace qswitch::sw
