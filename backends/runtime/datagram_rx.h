// backends/runtime/datagram_rx.h: receive slots for ports that get one frame per read (datagram
// sockets, tap devices, VXLAN).
//
// Theory of operation
// - Frames must sit in switch chunks with their 4-byte length prefix in front (switch/frame.h),
//   so a frame read from a datagram can go to a stream peer straight from the memory it was
//   received into. A chunk here is an array of kSlots slots; each slot is the prefix followed by
//   room for the largest frame (kMaxFrameSize). One recvmmsg() (or a run of read()s on a tap)
//   fills consecutive slots, the port writes the prefixes and hands the switch views into them.
// - Only the bytes a datagram actually carries are touched: a chunk is allocated without zeroing,
//   so a slot that got a 64-byte frame costs one resident page, not 64 KiB.
// - Usage per read burst: n = available() (0: every chunk is still held by output queues, stop
//   reading, as the stream ports do), point message i at slot(i) with capacity slot_capacity(),
//   make frames with frame(i, len) for the slots that got a valid frame (classify_datagram), then
//   advance(k) for the k slots the burst consumed. A slot that got a bad datagram is simply
//   never made a frame.
// - The receiver holds one reference on its current chunk and releases it when every slot has
//   been used, so the chunk goes back to the pool when the last output lets go of its frames.
#pragma once

#include <cstdint>

#include "switch/frame.h"

namespace qswitch::backends {

// What one received datagram is, from the receive call's length and its MSG_TRUNC flag alone:
// a frame (kMinFrameSize..kMaxFrameSize bytes), a runt (shorter, empty included) or oversize
// (cut by the kernel to the slot, or longer than any frame). Only a frame is handed on.
enum class DatagramKind { kFrame, kRunt, kOversize };
inline DatagramKind classify_datagram(uint32_t len, bool truncated) {
  if (truncated || len > sw::kMaxFrameSize) return DatagramKind::kOversize;
  if (len < sw::kMinFrameSize) return DatagramKind::kRunt;
  return DatagramKind::kFrame;
}

class DatagramRx {
 public:
  static constexpr uint32_t kSlots = 32;  // frames per chunk, and per recvmmsg at most
  explicit DatagramRx(uint32_t max_chunks = 8);
  ~DatagramRx();
  DatagramRx(const DatagramRx&) = delete;
  DatagramRx& operator=(const DatagramRx&) = delete;

  // Free slots in the current chunk, taking a new chunk when it is used up; 0 when none is free.
  uint32_t available();
  // The frame area (after the prefix) of the i-th free slot, i < available().
  uint8_t* slot(uint32_t i) const;
  static constexpr uint32_t slot_capacity() { return sw::kMaxFrameSize; }
  // Writes slot i's prefix and returns the view of its `len`-byte frame (len within
  // kMinFrameSize..kMaxFrameSize: the caller has checked).
  sw::Frame frame(uint32_t i, uint32_t len) const;
  // The first `n` free slots are used.
  void advance(uint32_t n);
  // Who relieves this receiver's pool when it runs short (switch/frame.h).
  void set_pressure(sw::ChunkPressure* pressure) { pool_.set_pressure(pressure); }

  static constexpr uint32_t kStride = (sw::kMaxWireSize + 63) / 64 * 64;

 private:
  sw::ChunkPool pool_;
  sw::RxChunk* chunk_ = nullptr;
  uint32_t next_ = 0;  // first free slot of chunk_
};

}  // namespace qswitch::backends
