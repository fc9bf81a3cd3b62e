// switch/l2_switch.cc: learning and forwarding (see the header).
#include "switch/l2_switch.h"

#include <cstring>

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
  drop_segments();
  seg_memory_.set_pressure(nullptr);  // nobody is left to relieve it
}

void L2Switch::drop_segments() {
  for (const Frame& s : segs_) chunk_unref(s.chunk);
  segs_.clear();
  seg_source_ = nullptr;
  seg_failed_ = false;
}

uint8_t* L2Switch::add_segment(uint32_t size) {
  uint8_t* out = seg_memory_.reserve(size);
  // A full chunk goes (its segments hold their own references) for a fresh one.
  if (out == nullptr && seg_memory_.next_chunk()) out = seg_memory_.reserve(size);
  if (out == nullptr) return out;
  segs_.push_back(seg_memory_.commit(size));
  chunk_ref(segs_.back().chunk);
  return out;
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
  // Every attached port can be on the flush list once per turn: reserve now, not per frame.
  flush_list_.reserve(attached_count_);
  return id;
}

void L2Switch::detach(Port& port) {
  const PortId id = port.id_;
  if (id >= ports_.size() || ports_[id] != &port) return;
  macs_.flush_port(id);
  for (size_t i = 0; i < flush_list_.size(); ++i) {
    if (flush_list_[i] == &port) {
      flush_list_[i] = flush_list_.back();
      flush_list_.pop_back();
      break;
    }
  }
  ports_[id] = nullptr;
  free_ids_.push_back(id);
  port.id_ = kNoPort;
  --attached_count_;
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
  if (!out.flush_pending_) {
    out.flush_pending_ = true;
    flush_list_.push_back(&out);
  }
}

PortId L2Switch::receive(Port& in, std::span<const Frame> frames, Millis now) {
  const PortId in_id = in.id_;
  PortId congested = kNoPort;
  for (const Frame& f : frames) {
    ++counters_.frames_in;
    if (capture_ != nullptr) capture_->ingress(in, f);
    in.counters_.rx_frames += 1;
    in.counters_.rx_bytes += f.size;
    const MacAddress src = MacAddress::from_wire(f.src());
    if (src.is_multicast()) {
      in.counters_.drop_bad_source += 1;
      continue;
    }
    const LearnOutcome learned = macs_.learn(src, 0, in_id, now);
    if (learned.result == LearnResult::kPinned) {
      in.counters_.drop_mac_spoof += 1;
      ++counters_.mac_spoofs;
      Port* owner = port(learned.previous_port);
      if (events_ != nullptr && owner != nullptr) events_->on_mac_spoof(in, src, *owner);
      continue;
    }
    if (learned.result == LearnResult::kMoved) {
      ++counters_.mac_moves;
      if (learned.flapping) note_duplicate(src, learned.previous_port, in, now);
    }
    if (!in.has_first_mac_) {
      in.has_first_mac_ = true;
      if (events_ != nullptr) events_->on_first_mac(in, src);
    }

    const MacAddress dst = MacAddress::from_wire(f.dst());
    if (!dst.is_multicast()) {
      const PortId out_id = macs_.lookup(dst, 0, now);
      if (out_id == in_id) {
        in.counters_.drop_same_port += 1;
        continue;
      }
      if (out_id != kNoPort) {
        ++counters_.unicast;
        Port& out = *ports_[out_id];
        output(out, f);
        if (out.congested(now)) congested = out_id;
        continue;
      }
    }
    ++counters_.flooded;
    for (Port* p : ports_) {
      if (p != nullptr && p != &in) output(*p, f);
    }
  }
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
    events_->on_duplicate_mac(mac, *was_port, now_port, dup_since_report_);
  }
  dup_since_report_ = 0;
}

}  // namespace qswitch::sw
