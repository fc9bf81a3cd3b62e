// bench/switch/stream_tx_queue_bench.cc: the stream port's output queue, per frame.
//
// Theory of operation: one iteration is a burst of 32 frames (libuv's read budget) pushed into
// the queue, described with fill_iov() (64 iovecs, as the stream port's flush) and consumed as
// one complete write, so the numbers are the queue's own cost per frame: chunk reference on push,
// iovec coalescing, release on consume. Frames sit back to back in one receive chunk (as they
// arrive from a stream peer), so a burst of full-size frames leaves in one iovec; 14-byte frames
// are padded to 60 and take three iovecs each. Items are frames, bytes their Ethernet lengths.
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

void BM_StreamQueueBurst(benchmark::State& state) {
  const auto frame_size = static_cast<uint32_t>(state.range(0));
  ChunkPool pool(kBurst * (kPrefixSize + frame_size), 1);
  RxChunk* chunk = pool.acquire();
  std::vector<Frame> frames;
  for (size_t i = 0; i < kBurst; ++i) {
    uint8_t* wire = chunk->data + i * (kPrefixSize + frame_size);
    store_be32(wire, frame_size);
    frames.push_back(Frame{wire, frame_size, 0, chunk, {}});
  }
  StreamTxQueue q(1 << 20);
  iovec iov[kIov];
  for (auto _ : state) {
    for (const Frame& f : frames) q.push(f);
    size_t total = 0;
    while (!q.empty()) {
      const int n = q.fill_iov(iov, kIov);
      size_t bytes = 0;
      for (int i = 0; i < n; ++i) bytes += iov[i].iov_len;
      total += q.consume(bytes).frames;
    }
    benchmark::DoNotOptimize(total);
  }
  chunk_unref(chunk);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBurst));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBurst * frame_size));
}
BENCHMARK(BM_StreamQueueBurst)->Arg(14)->Arg(60)->Arg(1514);

}  // namespace
}  // namespace qswitch::sw
