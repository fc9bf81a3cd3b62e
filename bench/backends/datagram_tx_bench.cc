// bench/backends/datagram_tx_bench.cc: the one-frame-per-write output queue, per frame.
//
// Theory of operation: one iteration is a burst of 32 frames (libuv's read budget) pushed into
// the queue, each described with iov() as the dgram port's sendmmsg batch does, then released
// with one pop(). So the numbers are the queue's own cost per frame: chunk reference on push,
// the iovec, release on pop. Items are frames, bytes their Ethernet lengths.
#include <benchmark/benchmark.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "backends/runtime/datagram_tx.h"
#include "switch/frame.h"

namespace qswitch::backends {
namespace {

constexpr size_t kBurst = 32;

void BM_DatagramQueueBurst(benchmark::State& state) {
  const auto frame_size = static_cast<uint32_t>(state.range(0));
  sw::ChunkPool pool(kBurst * (sw::kPrefixSize + frame_size), 1);
  sw::RxChunk* chunk = pool.acquire();
  std::vector<sw::Frame> frames;
  for (size_t i = 0; i < kBurst; ++i) {
    uint8_t* wire = chunk->data + i * (sw::kPrefixSize + frame_size);
    sw::store_be32(wire, frame_size);
    frames.push_back(sw::Frame{wire, frame_size, 0, chunk, {}});
  }
  DatagramTx q(1 << 20);
  iovec iov[2 * kBurst];
  for (auto _ : state) {
    for (const sw::Frame& f : frames) q.push(f);
    int n = 0;
    for (size_t i = 0; i < q.count(); ++i) n += q.iov(i, &iov[n]);
    benchmark::DoNotOptimize(iov);
    benchmark::DoNotOptimize(q.pop(q.count()).frames + static_cast<uint64_t>(n));
  }
  sw::chunk_unref(chunk);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBurst));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBurst * frame_size));
}
BENCHMARK(BM_DatagramQueueBurst)->Arg(14)->Arg(60)->Arg(1514);

}  // namespace
}  // namespace qswitch::backends
