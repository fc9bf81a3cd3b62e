// tests/switch/queue_test_support.h: what the tests of the output queues (OutputRing,
// StreamTxQueue, DatagramTx) share: a chunk of a real pool to lay frames out in, the layout
// itself (length prefix, then pattern bytes, optional gaps), and the model the random tests
// check a queue against: which frames are queued, from which pool, and which of them unpin()
// has copied (always a prefix of the queue, output_ring.h).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "switch/frame.h"

namespace qswitch::sw::test {

// A pool with one chunk held by the test (the receiving port's own reference).
struct TestChunk {
  explicit TestChunk(uint32_t size = 256 * 1024) : pool(size, 4), chunk(pool.acquire()) {}
  ~TestChunk() { chunk_unref(chunk); }
  TestChunk(const TestChunk&) = delete;
  TestChunk& operator=(const TestChunk&) = delete;
  ChunkPool pool;
  RxChunk* chunk;
};

// Writes frames into `mem` (prefix + pattern bytes, the pattern shifted by `salt`), gaps[i]
// bytes of 0xee before frame i; the frames pin `chunk` (nullptr: static storage).
inline std::vector<Frame> lay_out(uint8_t* mem, size_t mem_size, RxChunk* chunk,
                                  const std::vector<uint32_t>& sizes,
                                  const std::vector<uint32_t>& gaps = {}, uint32_t salt = 0) {
  std::memset(mem, 0xa5, mem_size);
  std::vector<Frame> frames;
  size_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const uint32_t gap = i < gaps.size() ? gaps[i] : 0;
    std::memset(mem + at, 0xee, gap);
    at += gap;
    EXPECT_LE(at + kPrefixSize + sizes[i], mem_size) << "test layout too large";
    store_be32(mem + at, sizes[i]);
    for (uint32_t j = 0; j < sizes[i]; ++j) {
      mem[at + kPrefixSize + j] = static_cast<uint8_t>(i * 41 + j * 3 + salt + 1);
    }
    frames.push_back(Frame{mem + at, sizes[i], 0, chunk, {}});
    at += kPrefixSize + sizes[i];
  }
  return frames;
}

// The same in a TestChunk's chunk.
inline std::vector<Frame> lay_out(TestChunk& c, const std::vector<uint32_t>& sizes,
                                  const std::vector<uint32_t>& gaps = {}, uint32_t salt = 0) {
  return lay_out(c.chunk->data, c.chunk->capacity, c.chunk, sizes, gaps, salt);
}

// A model entry: which frame, from which pool (a test's pool count: static storage), and
// whether the queue holds it as a copy.
struct QueuedModel {
  size_t frame;
  size_t pool;
  bool copied;
};

// What unpin(pool k) must copy: from the first frame not yet copied up to the last one of pool
// k, none if no uncopied frame is from k. Marks them copied and returns how many.
inline size_t unpin_model(std::deque<QueuedModel>& model, size_t k) {
  size_t first = 0;
  while (first < model.size() && model[first].copied) ++first;
  size_t want = 0;
  for (size_t j = model.size(); j > first; --j) {
    if (model[j - 1].pool == k) {
      want = j - first;
      break;
    }
  }
  for (size_t j = first; j < first + want; ++j) model[j].copied = true;
  return want;
}

}  // namespace qswitch::sw::test
