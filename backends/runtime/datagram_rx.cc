// backends/runtime/datagram_rx.cc: see the header.
#include "backends/runtime/datagram_rx.h"

namespace qswitch::backends {

DatagramRx::DatagramRx(uint32_t max_chunks) : pool_(kStride * kSlots, max_chunks) {}

DatagramRx::~DatagramRx() { sw::chunk_unref(chunk_); }

uint32_t DatagramRx::available() {
  if (chunk_ != nullptr && next_ == kSlots) {
    sw::chunk_unref(chunk_);
    chunk_ = nullptr;
  }
  if (chunk_ == nullptr) {
    chunk_ = pool_.acquire();
    next_ = 0;
    if (chunk_ == nullptr) return 0;
  }
  return kSlots - next_;
}

uint8_t* DatagramRx::slot(uint32_t i) const {
  return chunk_->data + size_t{next_ + i} * kStride + sw::kPrefixSize;
}

sw::Frame DatagramRx::frame(uint32_t i, uint32_t len) const {
  uint8_t* data = slot(i);
  sw::store_be32(data - sw::kPrefixSize, len);
  return sw::Frame{data - sw::kPrefixSize, len, 0, chunk_, {}};
}

void DatagramRx::advance(uint32_t n) { next_ += n; }

}  // namespace qswitch::backends
