// switch/stream_tx_queue.cc: bounded output queue in stream framing (see the header).
#include "switch/stream_tx_queue.h"

#include <algorithm>

namespace qswitch::sw {

namespace {
constexpr uint8_t kZeros[kPadFrameSize] = {};
constexpr size_t kInitialEntries = 64;
constexpr size_t kMaxEntries = 65536;
}  // namespace

namespace {
// Enough entries for max_bytes of 64-byte frames (the smallest a guest's stack sends in bulk),
// rounded up to a power of two and capped, so a stuck peer costs at most kMaxEntries *
// sizeof(Entry) (1.5 MiB) of bookkeeping. Beyond that, push() refuses.
size_t entry_cap(size_t max_bytes) {
  size_t n = kInitialEntries;
  while (n * 64 < max_bytes && n < kMaxEntries) n *= 2;
  return n;
}
}  // namespace

StreamTxQueue::StreamTxQueue(size_t max_bytes)
    : max_bytes_(max_bytes),
      max_entries_(entry_cap(max_bytes)),
      // Every queued frame copied with its prefix.
      copies_(max_bytes + max_entries_ * kPrefixSize) {}

StreamTxQueue::~StreamTxQueue() { clear(); }

uint32_t StreamTxQueue::wire_size(const Entry& e) {
  return kPrefixSize + std::max(e.size, kPadFrameSize);
}

bool StreamTxQueue::grow() {
  const size_t old_size = ring_.size();
  const size_t new_size = old_size == 0 ? kInitialEntries : old_size * 2;
  if (new_size > max_entries_) return false;
  std::vector<Entry> next(new_size);
  for (size_t i = 0; i < count_; ++i) next[i] = at(i);
  ring_.swap(next);
  head_ = 0;
  return true;
}

bool StreamTxQueue::push(const Frame& frame) {
  if (queued_bytes_ + frame.size > max_bytes_) return false;
  if (count_ == ring_.size() && !grow()) return false;
  Entry& e = ring_[(head_ + count_) & (ring_.size() - 1)];
  e.wire = frame.wire;
  e.size = frame.size;
  e.chunk = frame.chunk;
  if (frame.size < kPadFrameSize) store_be32(e.pad_prefix, kPadFrameSize);
  chunk_ref(frame.chunk);
  ++count_;
  queued_bytes_ += frame.size;
  return true;
}

int StreamTxQueue::fill_iov(iovec* iov, int max) {
  int n = 0;
  size_t skip = head_offset_;
  auto add = [&](const uint8_t* p, size_t len) -> bool {
    if (skip >= len) {
      skip -= len;
      return true;
    }
    p += skip;
    len -= skip;
    skip = 0;
    if (n > 0 && static_cast<const uint8_t*>(iov[n - 1].iov_base) + iov[n - 1].iov_len == p) {
      iov[n - 1].iov_len += len;  // adjacent on input: one iovec for the run
      return true;
    }
    if (n == max) return false;
    iov[n++] = iovec{const_cast<uint8_t*>(p), len};
    return true;
  };
  for (size_t i = 0; i < count_; ++i) {
    Entry& e = at(i);
    const int before = n;
    bool ok;
    if (e.size >= kPadFrameSize) {
      ok = add(e.wire, kPrefixSize + e.size);
    } else {
      ok = add(e.pad_prefix, kPrefixSize) && add(e.wire + kPrefixSize, e.size) &&
           add(kZeros, kPadFrameSize - e.size);
    }
    if (!ok) {
      // Out of iovecs mid-frame: describe only whole frames beyond the first (simpler for
      // consume), unless this is the first one.
      if (i > 0) n = before;
      break;
    }
  }
  return n;
}

StreamTxQueue::Written StreamTxQueue::consume(size_t n) {
  Written w;
  n += head_offset_;
  head_offset_ = 0;
  while (count_ > 0) {
    Entry& e = at(0);
    const uint32_t ws = wire_size(e);
    if (n < ws) {
      head_offset_ = n;
      break;
    }
    n -= ws;
    w.frames += 1;
    w.bytes += std::max(e.size, kPadFrameSize);
    pop_front();
  }
  return w;
}

void StreamTxQueue::pop_front() {
  Entry& e = at(0);
  queued_bytes_ -= e.size;
  if (copied_count_ > 0) {
    copies_.pop(e.wire, kPrefixSize + e.size);
    --copied_count_;
  } else {
    chunk_unref(e.chunk);
  }
  e.chunk = nullptr;
  head_ = (head_ + 1) & (ring_.size() - 1);
  --count_;
}

uint64_t StreamTxQueue::clear() {
  const uint64_t dropped = count_;
  while (count_ > 0) pop_front();
  head_offset_ = 0;
  return dropped;
}

size_t StreamTxQueue::unpin(const ChunkPool& pool) {
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
    Entry& e = at(copied_count_);
    const uint8_t* copy = copies_.push(e.wire, kPrefixSize + e.size);
    if (copy == nullptr) break;
    e.wire = copy;
    chunk_unref(e.chunk);
    e.chunk = nullptr;
    ++copied_count_;
    ++copied;
  }
  return copied;
}

}  // namespace qswitch::sw
