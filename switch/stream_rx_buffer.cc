// switch/stream_rx_buffer.cc: in-place decoding of QEMU stream framing (see the header).
#include "switch/stream_rx_buffer.h"

namespace qswitch::sw {

StreamRxBuffer::StreamRxBuffer(uint32_t main_size, uint32_t max_chunks)
    : pool_(main_size + kMaxWireSize, max_chunks), main_size_(main_size) {}

StreamRxBuffer::~StreamRxBuffer() { chunk_unref(chunk_); }

std::span<uint8_t> StreamRxBuffer::write_space() {
  if (chunk_ != nullptr && fill_ < main_size_) {
    return {chunk_->data + fill_, main_size_ - fill_};
  }
  if (chunk_ != nullptr && parse_ < fill_) {
    // The main part is full. Find the incomplete frame at the end, skipping complete ones the
    // caller has not drained yet, and finish it in the slack, reading exactly what it still
    // needs (first the rest of its prefix, then the rest of its body).
    uint32_t start = parse_;
    while (fill_ - start >= kPrefixSize) {
      const uint32_t size = load_be32(chunk_->data + start);
      if (size < kMinFrameSize || size > kMaxFrameSize) return {};  // drain() reports it
      if (fill_ - start < kPrefixSize + size) break;
      start += kPrefixSize + size;
    }
    const uint32_t have = fill_ - start;
    if (have == 0) return {};  // only undrained complete frames: drain() them first
    const uint32_t need = have < kPrefixSize ? kPrefixSize - have
                                             : kPrefixSize + load_be32(chunk_->data + start) - have;
    return {chunk_->data + fill_, need};
  }
  // No partial frame left (or no chunk yet). A chunk only we hold (every frame in it handed out
  // and let go) starts over; otherwise move to a fresh chunk.
  if (chunk_ != nullptr && chunk_->refs == 1) {
    parse_ = 0;
    fill_ = 0;
    return {chunk_->data, main_size_};
  }
  RxChunk* next = pool_.acquire();
  if (next == nullptr) return {};
  chunk_unref(chunk_);
  chunk_ = next;
  parse_ = 0;
  fill_ = 0;
  return {chunk_->data, main_size_};
}

StreamRxBuffer::Status StreamRxBuffer::commit(size_t n, std::span<Frame> out, size_t& count) {
  fill_ += static_cast<uint32_t>(n);
  return drain(out, count);
}

StreamRxBuffer::Status StreamRxBuffer::drain(std::span<Frame> out, size_t& count) {
  if (chunk_ == nullptr) return Status::kOk;
  while (count < out.size() && fill_ - parse_ >= kPrefixSize) {
    const uint8_t* wire = chunk_->data + parse_;
    const uint32_t size = load_be32(wire);
    if (size < kMinFrameSize || size > kMaxFrameSize) {
      bad_length_ = size;
      return Status::kBadLength;
    }
    if (fill_ - parse_ < kPrefixSize + size) break;
    out[count++] = Frame{wire, size, 0, chunk_, {}};
    parse_ += kPrefixSize + size;
  }
  // A complete prefix with a bad length must be caught even when `out` is full, so that
  // write_space() never sizes a read from it.
  if (fill_ - parse_ >= kPrefixSize) {
    const uint32_t size = load_be32(chunk_->data + parse_);
    if (size < kMinFrameSize || size > kMaxFrameSize) {
      bad_length_ = size;
      return Status::kBadLength;
    }
  }
  return Status::kOk;
}

}  // namespace qswitch::sw
