// switch/stream_tx_queue.cc: a stream port's bounded output queue (see the header).
#include "switch/stream_tx_queue.h"

#include <algorithm>
#include <cstring>

namespace qswitch::sw {

namespace {
constexpr uint8_t kZeros[kPadFrameSize] = {};
// The length prefix of a frame padded to kPadFrameSize (big-endian, frame.h).
constexpr uint8_t kPadPrefix[kPrefixSize] = {0, 0, 0, kPadFrameSize};

// The bytes of `e` on the wire: prefix and frame, padded to kPadFrameSize.
size_t wire_size(const OutputRing::Entry& e) {
  return e.size >= kPadFrameSize ? e.wire_bytes() : kPrefixSize + kPadFrameSize;
}
}  // namespace

StreamTxQueue::StreamTxQueue(size_t max_bytes, ChunkPool* staging)
    : staging_(staging), ring_(max_bytes, /*merge_runs=*/true) {}

StreamTxQueue::~StreamTxQueue() {
  ring_.clear();
  restart_staging();
}

Frame StreamTxQueue::stage(const Frame& frame) {
  const size_t need = kPrefixSize + frame.size;
  if (stage_ == nullptr || stage_->capacity - staging_used_ < need) {
    staged_end_ = nullptr;  // this copy starts a run of its own
    // A chunk of ours that nothing queued is in any more (the one just filled, when its copies
    // were written), else a new one.
    RxChunk* next = nullptr;
    for (uint32_t i = 0; i < held_count_ && next == nullptr; ++i) {
      if (held_[i]->refs == 1) next = held_[i];
    }
    if (next == nullptr) {
      if (held_count_ == kMaxStagingChunks) return Frame{};
      next = staging_->acquire();
      if (next == nullptr) return Frame{};
      held_[held_count_++] = next;
    }
    stage_ = next;
    staging_used_ = 0;
  }
  uint8_t* wire = stage_->data + staging_used_;
  store_be32(wire, frame.size);
  std::memcpy(wire + kPrefixSize, frame.data(), frame.size);
  return Frame{wire, frame.size, 0, stage_, {}};
}

bool StreamTxQueue::push(const Frame& frame) {
  // After a copy, the last entry is in stage_, which no frame from elsewhere continues.
  if (staging_ != nullptr && frame.size <= kCopyMaxSize && frame.size >= kPadFrameSize &&
      frame.head == 0 && !frame.offload.any() &&
      (staged_end_ != nullptr || !ring_.joins_last(frame))) {
    const Frame copy = stage(frame);
    if (copy.chunk != nullptr) {
      if (!(copy.wire == staged_end_ ? ring_.push_continuing(copy) : ring_.push(copy))) {
        return false;
      }
      staging_used_ += kPrefixSize + copy.size;
      staged_end_ = copy.wire + kPrefixSize + copy.size;
      return true;
    }
  }
  staged_end_ = nullptr;
  return ring_.push(frame);
}

void StreamTxQueue::restart_staging() {
  staged_end_ = nullptr;
  for (uint32_t i = 0; i < held_count_; ++i) chunk_unref(held_[i]);  // nothing queued is in them
  held_count_ = 0;
  stage_ = nullptr;
}

uint64_t StreamTxQueue::clear() {
  head_offset_ = 0;
  const uint64_t dropped = ring_.clear();
  restart_staging();
  return dropped;
}

int StreamTxQueue::fill_iov(iovec* iov, int max, size_t& bytes) {
  int n = 0;
  size_t skip = head_offset_;
  size_t described = 0;
  auto add = [&](const uint8_t* p, size_t len) -> bool {
    if (skip >= len) {
      skip -= len;
      return true;
    }
    p += skip;
    len -= skip;
    skip = 0;
    described += len;
    if (n > 0 && static_cast<const uint8_t*>(iov[n - 1].iov_base) + iov[n - 1].iov_len == p) {
      iov[n - 1].iov_len += len;  // adjacent in memory: one iovec for the run
      return true;
    }
    if (n == max) return false;
    iov[n++] = iovec{const_cast<uint8_t*>(p), len};
    return true;
  };
  const size_t count = ring_.count();
  for (size_t i = 0; i < count && described < kMaxDescribe; ++i) {
    const OutputRing::Entry& e = ring_.at(i);
    const int before = n;
    const size_t described_before = described;
    bool ok;
    if (e.head != 0) {
      // A split frame (frame.h, never shorter than its head): prefix and head, then the tail.
      ok = add(e.wire, kPrefixSize + e.head) && add(e.tail(), e.size - e.head);
    } else if (e.size >= kPadFrameSize) {
      ok = add(e.wire, e.wire_bytes());  // one frame, or a run of them
    } else {
      ok = add(kPadPrefix, kPrefixSize) && add(e.wire + kPrefixSize, e.size) &&
           add(kZeros, kPadFrameSize - e.size);
    }
    if (!ok) {
      // Out of iovecs mid-frame: describe only whole frames beyond the first (simpler for
      // consume), unless this is the first one.
      if (i > 0) {
        n = before;
        described = described_before;
      }
      break;
    }
  }
  bytes = described;
  return n;
}

StreamTxQueue::Written StreamTxQueue::consume(size_t n) {
  n += head_offset_;
  head_offset_ = 0;
  size_t whole = 0;
  const size_t count = ring_.count();
  for (; whole < count; ++whole) {
    const size_t ws = wire_size(ring_.at(whole));
    if (n < ws) break;
    n -= ws;
  }
  Written w = ring_.pop(whole);
  if (n > 0) {
    // Part of the next entry: the frames of a run it covers leave now.
    const Written more = ring_.trim_front(n);
    w.frames += more.frames;
    w.bytes += more.bytes;
    head_offset_ = n;
  }
  if (ring_.empty()) restart_staging();
  return w;
}

}  // namespace qswitch::sw
