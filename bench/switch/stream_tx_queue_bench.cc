// bench/switch/stream_tx_queue_bench.cc: the stream port's output queue, per frame.
//
// Theory of operation: one iteration is a burst of 32 frames (libuv's read budget) queued, then
// described with fill_iov() (64 iovecs, as the stream port's flush) and consumed as one complete
// write, so the numbers are the queue's own cost per frame. Two cases:
// - BM_StreamQueueBurst: frames back to back in one receive chunk (as they arrive from a stream
//   peer), handed over with push_burst() as the switch hands a unicast group: a run, so a burst
//   of frames of at least 60 bytes is one entry and leaves in one iovec; 14-byte frames are
//   padded to 60 and take an entry and three iovecs each.
// - BM_StreamQueueLoneFrames: frames that are not adjacent (one in eight of a chunk, as an
//   output gets them when eight ports each send to all others), pushed one at a time: up to
//   StreamTxQueue::kCopyMaxSize bytes they are copied into a staging chunk (from a pool, as the
//   switch gives its queues one) and join one run; larger ones are an entry and an iovec each.
// Items are frames, bytes their Ethernet lengths.
#include <benchmark/benchmark.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "switch/frame.h"
#include "switch/stream_tx_queue.h"

namespace qswitch::sw {
namespace {

constexpr size_t kBurst = 32;
constexpr int kIov = 64;

// Describes and consumes everything queued, as complete writes; returns the frames written.
size_t drain(StreamTxQueue& q, iovec* iov) {
  size_t total = 0;
  while (!q.empty()) {
    const int n = q.fill_iov(iov, kIov);
    size_t bytes = 0;
    for (int i = 0; i < n; ++i) bytes += iov[i].iov_len;
    total += q.consume(bytes).frames;
  }
  return total;
}

// kBurst frames of `size` bytes in `chunk`, one every `apart` frames' room (1: back to back).
std::vector<Frame> lay_out(RxChunk* chunk, uint32_t size, size_t apart) {
  std::vector<Frame> frames;
  for (size_t i = 0; i < kBurst; ++i) {
    uint8_t* wire = chunk->data + apart * i * (kPrefixSize + size);
    store_be32(wire, size);
    frames.push_back(Frame{wire, size, 0, chunk, {}});
  }
  return frames;
}

void BM_StreamQueueBurst(benchmark::State& state) {
  const auto frame_size = static_cast<uint32_t>(state.range(0));
  ChunkPool pool(kBurst * (kPrefixSize + frame_size), 1);
  RxChunk* chunk = pool.acquire();
  const std::vector<Frame> frames = lay_out(chunk, frame_size, 1);
  StreamTxQueue q(1 << 20);
  iovec iov[kIov];
  for (auto _ : state) {
    q.push_burst(frames);
    benchmark::DoNotOptimize(drain(q, iov));
  }
  chunk_unref(chunk);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBurst));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBurst * frame_size));
}
BENCHMARK(BM_StreamQueueBurst)->Arg(14)->Arg(60)->Arg(1514);

void BM_StreamQueueLoneFrames(benchmark::State& state) {
  constexpr size_t kApart = 8;
  const auto frame_size = static_cast<uint32_t>(state.range(0));
  ChunkPool pool(kApart * kBurst * (kPrefixSize + frame_size), 1);
  RxChunk* chunk = pool.acquire();
  const std::vector<Frame> frames = lay_out(chunk, frame_size, kApart);
  // The staging pool a switch gives its stream queues (SwitchLoop::staging()).
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, StreamTxQueue::kMaxStagingChunks);
  StreamTxQueue q(1 << 20, &staging);
  iovec iov[kIov];
  for (auto _ : state) {
    for (const Frame& f : frames) q.push(f);
    benchmark::DoNotOptimize(drain(q, iov));
  }
  chunk_unref(chunk);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBurst));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBurst * frame_size));
}
BENCHMARK(BM_StreamQueueLoneFrames)->Arg(60)->Arg(256)->Arg(1514);

}  // namespace
}  // namespace qswitch::sw
