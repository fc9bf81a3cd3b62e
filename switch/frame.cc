// switch/frame.cc: chunk pools and reference counting (see frame.h).
#include "switch/frame.h"

#include <algorithm>
#include <cstring>

namespace qswitch::sw {

namespace {
void free_chunk(RxChunk* c) {
  delete[] c->data;
  delete c;
}
}  // namespace

void chunk_release(RxChunk* c) {
  if (c->pool != nullptr) {
    c->pool->recycle(c);
  } else {
    free_chunk(c);  // orphaned: its port is gone and this was the last frame in it
  }
}

ChunkPool::ChunkPool(uint32_t chunk_size, uint32_t max_chunks)
    : chunk_size_(chunk_size), max_chunks_(max_chunks) {}

ChunkPool::~ChunkPool() {
  // A port that goes away must not leave its chunks pinned by a queue that never drains (each
  // one is a whole chunk kept alive by a frame or two): have the queues copy those frames out.
  if (pressure_ != nullptr &&
      std::any_of(all_.begin(), all_.end(), [](const RxChunk* c) { return c->refs != 0; })) {
    pressure_->relieve(*this);
  }
  for (RxChunk* c : all_) {
    if (c->refs == 0) {
      free_chunk(c);
    } else {
      c->pool = nullptr;
    }
  }
}

RxChunk* ChunkPool::acquire() {
  if (pressure_ != nullptr && !relieving_ && available_count() <= max_chunks_ / 4) {
    relieving_ = true;  // relief never acquires from this pool, but be safe against re-entry
    pressure_->relieve(*this);
    relieving_ = false;
  }
  RxChunk* c = nullptr;
  if (!free_.empty()) {
    c = free_.back();
    free_.pop_back();
  } else if (all_.size() < max_chunks_) {
    c = new RxChunk;
    c->data = new uint8_t[chunk_size_];  // default-initialised: untouched pages stay unmapped
    c->capacity = chunk_size_;
    c->pool = this;
    if (all_.capacity() == 0) all_.reserve(max_chunks_);
    all_.push_back(c);
    if (free_.capacity() == 0) free_.reserve(max_chunks_);
  } else {
    return nullptr;
  }
  c->refs = 1;
  return c;
}

}  // namespace qswitch::sw

namespace qswitch::sw {

const uint8_t* CopyRing::push(const uint8_t* bytes, size_t first, const uint8_t* more,
                              size_t more_size) {
  const size_t size = first + more_size;
  size_t at;
  if (used_ == 0) {
    if (size > capacity_) return nullptr;  // before allocating: an empty ring holds no buffer
    head_ = tail_ = 0;
    at = 0;
    if (buf_ == nullptr) buf_ = new uint8_t[capacity_];  // untouched pages stay unmapped
  } else if (tail_ > head_) {
    // [head_, tail_) in use: room at the end, else wrap to the front.
    if (capacity_ - tail_ >= size) {
      at = tail_;
    } else if (head_ >= size) {
      used_ += capacity_ - tail_;  // the end is skipped until head_ passes it
      at = 0;
    } else {
      return nullptr;
    }
  } else {
    // Wrapped: [head_, end) and [0, tail_) in use.
    if (head_ - tail_ < size) return nullptr;
    at = tail_;
  }
  std::memcpy(buf_ + at, bytes, first);
  if (more_size > 0) std::memcpy(buf_ + at + first, more, more_size);
  tail_ = at + size;
  used_ += size;
  return buf_ + at;
}

void CopyRing::pop(const uint8_t* copy, size_t size) {
  const size_t at = static_cast<size_t>(copy - buf_);
  if (at != head_) used_ -= capacity_ - head_;  // the copy was placed after a wrap
  used_ -= size;
  head_ = at + size;
  if (used_ == 0) {
    delete[] buf_;
    buf_ = nullptr;
    head_ = tail_ = 0;
  }
}

}  // namespace qswitch::sw
