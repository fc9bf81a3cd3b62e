// switch/output_ring.cc: the bounded ring of queued output frames (see the header).
#include "switch/output_ring.h"

#include <algorithm>

namespace qswitch::sw {

namespace {
constexpr size_t kInitialEntries = 64;
constexpr size_t kMaxEntries = 65536;

// Enough entries for max_bytes of 64-byte frames, rounded up to a power of two and capped, so a
// stuck peer costs at most kMaxEntries * sizeof(Entry) of bookkeeping.
size_t entry_cap(size_t max_bytes) {
  size_t n = kInitialEntries;
  while (n * 64 < max_bytes && n < kMaxEntries) n *= 2;
  return n;
}
}  // namespace

OutputRing::OutputRing(size_t max_bytes, bool merge_runs)
    : max_bytes_(max_bytes),
      max_entries_(entry_cap(max_bytes)),
      merge_runs_(merge_runs),
      // Every queued frame copied with its prefix.
      copies_(max_bytes + max_entries_ * kPrefixSize) {}

bool OutputRing::grow() {
  const size_t old_size = ring_.size();
  const size_t new_size = old_size == 0 ? kInitialEntries : old_size * 2;
  if (new_size > max_entries_) return false;
  std::vector<Entry> next(new_size);
  for (size_t i = 0; i < count_; ++i) next[i] = at(i);
  ring_.swap(next);
  head_ = 0;
  return true;
}

namespace {
// The run rules (see Runs in the header), for joins_last() and push_burst(): an entry frames may
// join is plain (not split, no offload, at least kPadFrameSize bytes) and pins a chunk ...
bool extendable(const OutputRing::Entry& e) {
  return e.chunk != nullptr && e.head == 0 && !e.offload.any() && e.size >= kPadFrameSize;
}
// ... and a frame joins one that ends at `end` in `chunk` when it is plain too and starts there.
bool continues_run(const Frame& f, const uint8_t* end, const RxChunk* chunk) {
  return f.wire == end && f.chunk == chunk && f.head == 0 && !f.offload.any() &&
         f.size >= kPadFrameSize;
}
}  // namespace

bool OutputRing::joins_last(const Frame& frame) const {
  if (!merge_runs_ || count_ == copied_count_ || frame.chunk == nullptr) return false;
  const Entry& last = at(count_ - 1);
  return extendable(last) && continues_run(frame, last.wire + last.wire_bytes(), last.chunk) &&
         last.wire_bytes() + kPrefixSize + frame.size <= kMaxWireSize;
}

bool OutputRing::push(const Frame& frame) {
  if (!has_room(frame.size)) return false;
  if (frame.head > UINT16_MAX) return false;
  if (joins_last(frame)) {
    Entry& last = slot(count_ - 1);
    last.size += frame.size;
    ++last.frames;
  } else {
    if (count_ == ring_.size() && !grow()) return false;
    slot(count_) = Entry{frame.wire, frame.size,  static_cast<uint16_t>(frame.head),
                         1,          frame.chunk, frame.offload};
    chunk_ref(frame.chunk);
    ++count_;
  }
  ++frames_;
  queued_bytes_ += frame.size;
  return true;
}

bool OutputRing::push_continuing(const Frame& frame) {
  if (!has_room(frame.size)) return false;
  Entry& last = slot(count_ - 1);
  if (last.wire_bytes() + kPrefixSize + frame.size > kMaxWireSize) return push(frame);
  last.size += frame.size;
  ++last.frames;
  ++frames_;
  queued_bytes_ += frame.size;
  return true;
}

size_t OutputRing::push_burst(std::span<const Frame> frames) {
  size_t i = 0;
  while (i < frames.size()) {
    if (!push(frames[i])) return i;
    ++i;
    if (!merge_runs_ || count_ == copied_count_) continue;
    // Extend the last entry while the frames continue its run: joins_last()'s and push()'s checks,
    // with the entry's fields in registers.
    Entry& last = slot(count_ - 1);
    if (!extendable(last)) continue;
    const uint8_t* end = last.wire + last.wire_bytes();
    size_t wire = last.wire_bytes();
    uint32_t size = last.size;
    size_t in_run = last.frames;
    size_t queued = queued_bytes_;
    size_t count = frames_;
    for (; i < frames.size(); ++i) {
      const Frame& f = frames[i];
      if (!continues_run(f, end, last.chunk)) break;
      const size_t w = kPrefixSize + f.size;
      if (wire + w > kMaxWireSize || queued + f.size > max_bytes_ || count == max_entries_) break;
      wire += w;
      end += w;
      size += f.size;
      ++in_run;
      queued += f.size;
      ++count;
    }
    last.size = size;
    last.frames = static_cast<uint16_t>(in_run);  // at most kMaxWireSize / 64
    queued_bytes_ = queued;
    frames_ = count;
  }
  return i;
}

OutputRing::Written OutputRing::pop(size_t n) {
  Written w;
  n = std::min(n, count_);
  for (size_t i = 0; i < n; ++i) {
    Entry& e = ring_[head_];
    w.frames += e.frames;
    w.bytes += std::max(e.size, kPadFrameSize);  // a run's frames are all at least that
    queued_bytes_ -= e.size;
    frames_ -= e.frames;
    if (copied_count_ > 0) {
      copies_.pop(e.wire, e.wire_bytes());
      --copied_count_;
    } else {
      chunk_unref(e.chunk);
    }
    e.chunk = nullptr;
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
  }
  return w;
}

OutputRing::Written OutputRing::trim_front(size_t& bytes) {
  Written w;
  if (count_ == 0) return w;
  Entry& e = ring_[head_];
  while (e.frames > 1) {
    const uint32_t size = load_be32(e.wire);  // the run's first frame (plain: its own prefix)
    const size_t wire = kPrefixSize + size;
    if (bytes < wire) break;
    if (copied_count_ > 0) copies_.pop(e.wire, wire);  // the copy's front, in order
    bytes -= wire;
    e.wire += wire;
    e.size -= size;
    --e.frames;
    frames_ -= 1;
    queued_bytes_ -= size;
    w.frames += 1;
    w.bytes += size;
  }
  return w;
}

uint64_t OutputRing::clear() {
  const uint64_t dropped = frames_;
  pop(count_);
  return dropped;
}

size_t OutputRing::unpin(const ChunkOwner& pool) {
  size_t last = count_;
  for (size_t i = count_; i > copied_count_; --i) {
    const RxChunk* c = at(i - 1).chunk;
    if (c != nullptr && c->pool == &pool) {
      last = i - 1;
      break;
    }
  }
  if (last == count_) return 0;
  size_t copied = 0;
  while (copied_count_ <= last) {
    Entry& e = slot(copied_count_);
    const uint8_t* copy =
        e.head == 0 ? copies_.push(e.wire, e.wire_bytes())
                    : copies_.push(e.wire, kPrefixSize + e.head, e.tail(), e.size - e.head);
    if (copy == nullptr) break;
    e.wire = copy;
    e.head = 0;
    chunk_unref(e.chunk);
    e.chunk = nullptr;
    ++copied_count_;
    copied += e.frames;
  }
  return copied;
}

}  // namespace qswitch::sw
