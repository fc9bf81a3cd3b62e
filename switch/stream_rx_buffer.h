// switch/stream_rx_buffer.h: turns a byte stream in QEMU's stream framing into Frames, in place.
//
// Theory of operation
// - Framing (QEMU net/stream.c, net_stream_send / net_fill_rstate): a 4-byte big-endian length,
//   then that many bytes of Ethernet frame without FCS. A length outside kMinFrameSize..
//   kMaxFrameSize is a protocol error: the caller closes the port (QEMU itself resets the
//   connection on such a length).
// - The caller reads straight into write_space() and calls commit(n). Bytes are never copied:
//   complete frames are handed out as Frames pointing into the current chunk.
// - A chunk is `main_size` bytes plus kMaxWireSize of slack. Reads fill the main part; a frame
//   that started in the main part but is not complete when it is full is finished in the slack,
//   with reads sized to exactly what that frame still needs. Only when no partial frame is left
//   does the buffer move to a fresh chunk, so every frame is contiguous in memory; a chunk that
//   nobody but the buffer holds any more (its frames all let go) is reused instead.
// - Frames from commit() stay valid until the next write_space() call (which may switch
//   chunks); keep one longer by taking a chunk reference (frame.h).
// - An empty write_space() means every chunk is still held by output queues: stop reading and
//   try again later. That pauses this input only. It is also empty while the main part is full
//   and holds only complete frames the caller has not drained yet: drain() them first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "switch/frame.h"

namespace qswitch::sw {

class StreamRxBuffer {
 public:
  static constexpr uint32_t kDefaultMainSize = 128 * 1024;
  static constexpr uint32_t kDefaultMaxChunks = 16;

  explicit StreamRxBuffer(uint32_t main_size = kDefaultMainSize,
                          uint32_t max_chunks = kDefaultMaxChunks);
  ~StreamRxBuffer();
  StreamRxBuffer(const StreamRxBuffer&) = delete;
  StreamRxBuffer& operator=(const StreamRxBuffer&) = delete;

  std::span<uint8_t> write_space();

  enum class Status { kOk, kBadLength };
  // `n` bytes were written at the start of the last write_space(). Appends each complete frame
  // to out[count...] while there is room; returns kBadLength (and stops) on a bad length.
  // Frames that do not fit in `out` stay buffered: call drain() to get them.
  Status commit(size_t n, std::span<Frame> out, size_t& count);
  // Hands out complete frames still buffered (after commit() ran out of room in `out`).
  Status drain(std::span<Frame> out, size_t& count);

  uint32_t bad_length() const { return bad_length_; }
  // Bytes of an incomplete frame waiting for more input.
  size_t pending_size() const { return fill_ - parse_; }
  const ChunkPool& pool() const { return pool_; }
  // Who relieves this buffer's pool when it runs short (frame.h).
  void set_pressure(ChunkPressure* pressure) { pool_.set_pressure(pressure); }

 private:
  ChunkPool pool_;
  uint32_t main_size_;
  RxChunk* chunk_ = nullptr;
  uint32_t parse_ = 0;  // first byte not yet handed out
  uint32_t fill_ = 0;   // end of received bytes
  uint32_t bad_length_ = 0;
};

}  // namespace qswitch::sw
