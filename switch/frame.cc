// switch/frame.cc: chunk pools and reference counting (see frame.h).
#include "switch/frame.h"

#include <algorithm>

namespace qswitch::sw {

namespace {
void free_chunk(RxChunk* c) {
  delete[] c->data;
  delete c;
}
}  // namespace

void chunk_unref(RxChunk* c) {
  if (c == nullptr || --c->refs != 0) return;
  if (c->pool != nullptr) {
    c->pool->recycle(c);
  } else {
    free_chunk(c);  // orphaned: its port is gone and this was the last frame in it
  }
}

ChunkPool::ChunkPool(uint32_t chunk_size, uint32_t max_chunks)
    : chunk_size_(chunk_size), max_chunks_(max_chunks) {}

ChunkPool::~ChunkPool() {
  for (RxChunk* c : all_) {
    if (c->refs == 0) {
      free_chunk(c);
    } else {
      c->pool = nullptr;
    }
  }
}

RxChunk* ChunkPool::acquire() {
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
