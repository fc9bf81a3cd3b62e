// backends/dgram/datagram_tx.cc: see the header.
#include "backends/dgram/datagram_tx.h"

#include <algorithm>

namespace qswitch::backends {

namespace {
constexpr uint8_t kZeros[sw::kPadFrameSize] = {};
constexpr size_t kInitialEntries = 64;
constexpr size_t kMaxEntries = 65536;
}  // namespace

DatagramTx::DatagramTx(size_t max_bytes) : max_bytes_(max_bytes), copies_(max_bytes) {
  size_t n = kInitialEntries;
  while (n * 64 < max_bytes_ && n < kMaxEntries) n *= 2;
  max_entries_ = n;
}

DatagramTx::~DatagramTx() { clear(); }

bool DatagramTx::grow() {
  const size_t old_size = ring_.size();
  const size_t new_size = old_size == 0 ? kInitialEntries : old_size * 2;
  if (new_size > max_entries_) return false;
  std::vector<Entry> next(new_size);
  for (size_t i = 0; i < count_; ++i) next[i] = at(i);
  ring_.swap(next);
  head_ = 0;
  return true;
}

bool DatagramTx::push(const sw::Frame& frame) {
  if (queued_bytes_ + frame.size > max_bytes_) return false;
  if (count_ == ring_.size() && !grow()) return false;
  Entry& e = ring_[(head_ + count_) & (ring_.size() - 1)];
  e.data = frame.data();
  e.size = frame.size;
  e.chunk = frame.chunk;
  sw::chunk_ref(frame.chunk);
  ++count_;
  queued_bytes_ += frame.size;
  return true;
}

int DatagramTx::iov(size_t i, iovec out[2]) const {
  const Entry& e = at(i);
  out[0] = iovec{const_cast<uint8_t*>(e.data), e.size};
  if (e.size >= sw::kPadFrameSize) return 1;
  out[1] = iovec{const_cast<uint8_t*>(kZeros), sw::kPadFrameSize - e.size};
  return 2;
}

DatagramTx::Written DatagramTx::pop(size_t n) {
  Written w;
  n = std::min(n, count_);
  for (size_t i = 0; i < n; ++i) {
    Entry& e = ring_[head_];
    w.frames += 1;
    w.bytes += std::max(e.size, sw::kPadFrameSize);
    queued_bytes_ -= e.size;
    if (copied_count_ > 0) {
      copies_.pop(e.data, e.size);
      --copied_count_;
    } else {
      sw::chunk_unref(e.chunk);
    }
    e.chunk = nullptr;
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
  }
  return w;
}

size_t DatagramTx::unpin(const sw::ChunkPool& pool) {
  size_t last = count_;
  for (size_t i = count_; i > copied_count_; --i) {
    const sw::RxChunk* c = at(i - 1).chunk;
    if (c != nullptr && c->pool == &pool) {
      last = i - 1;
      break;
    }
  }
  if (last == count_) return 0;
  size_t copied = 0;
  while (copied_count_ <= last) {
    Entry& e = ring_[(head_ + copied_count_) & (ring_.size() - 1)];
    const uint8_t* copy = copies_.push(e.data, e.size);
    if (copy == nullptr) break;
    e.data = copy;
    sw::chunk_unref(e.chunk);
    e.chunk = nullptr;
    ++copied_count_;
    ++copied;
  }
  return copied;
}

uint64_t DatagramTx::clear() {
  const uint64_t n = count_;
  pop(count_);
  return n;
}

}  // namespace qswitch::backends
