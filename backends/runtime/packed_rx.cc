// backends/runtime/packed_rx.cc: see the header.
#include "backends/runtime/packed_rx.h"

namespace qswitch::backends {

namespace {
constexpr uint32_t kAlign = 8;
uint32_t footprint(uint32_t len) { return (sw::kPrefixSize + len + kAlign - 1) & ~(kAlign - 1); }
}  // namespace

PackedRx::PackedRx(uint32_t max_chunks) : pool_(kChunkSize, max_chunks) {}

PackedRx::~PackedRx() { sw::chunk_unref(chunk_); }

uint8_t* PackedRx::reserve(uint32_t len) const {
  if (chunk_ == nullptr || sw::kPrefixSize + len > kChunkSize - used_) return nullptr;
  return chunk_->data + used_ + sw::kPrefixSize;
}

sw::Frame PackedRx::commit(uint32_t len) {
  uint8_t* wire = chunk_->data + used_;
  sw::store_be32(wire, len);
  used_ += footprint(len);
  if (used_ > kChunkSize) used_ = kChunkSize;  // the last frame's padding may pass the end
  return sw::Frame{wire, len, chunk_, {}};
}

bool PackedRx::next_chunk() {
  sw::chunk_unref(chunk_);
  chunk_ = pool_.acquire();
  used_ = 0;
  return chunk_ != nullptr;
}

}  // namespace qswitch::backends
