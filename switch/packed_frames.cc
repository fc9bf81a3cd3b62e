// switch/packed_frames.cc: see the header.
#include "switch/packed_frames.h"

namespace qswitch::sw {

namespace {
constexpr uint32_t kAlign = 8;
uint32_t footprint(uint32_t len) { return (kPrefixSize + len + kAlign - 1) & ~(kAlign - 1); }
}  // namespace

PackedFrames::PackedFrames(uint32_t max_chunks) : pool_(kChunkSize, max_chunks) {}

PackedFrames::~PackedFrames() { chunk_unref(chunk_); }

uint8_t* PackedFrames::reserve(uint32_t len) const {
  if (chunk_ == nullptr || kPrefixSize + len > kChunkSize - used_) return nullptr;
  return chunk_->data + used_ + kPrefixSize;
}

Frame PackedFrames::commit(uint32_t len) {
  uint8_t* wire = chunk_->data + used_;
  store_be32(wire, len);
  used_ += footprint(len);
  if (used_ > kChunkSize) used_ = kChunkSize;  // the last frame's padding may pass the end
  return Frame{wire, len, 0, chunk_, {}};
}

bool PackedFrames::next_chunk() {
  chunk_unref(chunk_);
  chunk_ = pool_.acquire();
  used_ = 0;
  return chunk_ != nullptr;
}

}  // namespace qswitch::sw
