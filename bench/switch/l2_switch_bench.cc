// bench/switch/l2_switch_bench.cc: forwarding microbenchmarks for L2Switch.
//
// Theory of operation: N CountingPorts are attached (N = 2, 8, 64); their enqueue() only counts,
// so the numbers are the switch's own cost per frame: learn the source, look up the destination,
// hand the frame to one port (known unicast) or to N-1 ports (broadcast), then one flush() per
// batch. One iteration is a burst of 32 frames (libuv's read budget, DPDK's burst) received on
// port 0. Frames are 60-byte minimum frames in static storage (chunk == nullptr), prefixed with
// their 4-byte length like frames in a receive chunk. Items are frames received; bytes are their
// Ethernet lengths; "out_frames" is the enqueue rate across all outputs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "switch/frame.h"
#include "switch/l2_switch.h"
#include "switch/port.h"

namespace qswitch::sw {
namespace {

constexpr size_t kBurst = 32;
constexpr uint32_t kFrameSize = kPadFrameSize;

class CountingPort : public Port {
 public:
  void enqueue(const Frame& frame) override {
    ++enqueued_;
    bytes_ += frame.size;
  }
  void flush() override { ++flushes_; }
  std::string describe() const override { return "bench"; }

  uint64_t enqueued_ = 0;
  uint64_t bytes_ = 0;
  uint64_t flushes_ = 0;
};

MacAddress port_mac(size_t port) {
  MacAddress m;
  m.bytes = {0x52, 0x54, 0x00, 0x00, static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port)};
  return m;
}

// Frames in one contiguous buffer, laid out as in a receive chunk.
class FrameBurst {
 public:
  explicit FrameBurst(size_t count) : storage_(count * (kPrefixSize + kFrameSize)) {
    for (size_t i = 0; i < count; ++i) {
      uint8_t* wire = storage_.data() + i * (kPrefixSize + kFrameSize);
      store_be32(wire, kFrameSize);
      wire[kPrefixSize + 12] = 0x08;  // EtherType IPv4; the switch does not look
      frames_.push_back(Frame{wire, kFrameSize, 0, nullptr, {}});
    }
  }
  void set(size_t i, const MacAddress& dst, const MacAddress& src) {
    uint8_t* data = storage_.data() + i * (kPrefixSize + kFrameSize) + kPrefixSize;
    std::copy(dst.bytes.begin(), dst.bytes.end(), data);
    std::copy(src.bytes.begin(), src.bytes.end(), data + 6);
  }
  std::span<const Frame> frames() const { return frames_; }

 private:
  std::vector<uint8_t> storage_;
  std::vector<Frame> frames_;
};

struct Bench {
  explicit Bench(size_t port_count) : sw(config()) {
    for (size_t i = 0; i < port_count; ++i) {
      ports.push_back(std::make_unique<CountingPort>());
      sw.attach(*ports.back());
    }
    // Every port announces its guest's MAC once (a frame to broadcast), so unicast is known.
    FrameBurst hello(1);
    for (size_t i = 0; i < port_count; ++i) {
      hello.set(0, MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, port_mac(i));
      sw.receive(*ports[i], hello.frames()[0], 0);
    }
    sw.flush();
  }
  static SwitchConfig config() {
    SwitchConfig c;
    c.mac.seed = 0x243f6a8885a308d3ull;
    c.mac.age_ms = 1'000'000'000'000;  // the bench clock must never age the table
    return c;
  }
  uint64_t out_frames() const {
    uint64_t n = 0;
    for (const auto& p : ports) n += p->enqueued_;
    return n;
  }

  L2Switch sw;
  std::vector<std::unique_ptr<CountingPort>> ports;
};

void run(benchmark::State& state, Bench& b, const FrameBurst& burst) {
  const uint64_t out_before = b.out_frames();
  Millis now = 1;
  for (auto _ : state) {
    b.sw.receive(*b.ports[0], burst.frames(), now);
    b.sw.flush();
    ++now;  // one burst per millisecond tick: refreshes mostly take the cheap path
  }
  const int64_t frames = static_cast<int64_t>(state.iterations() * kBurst);
  state.SetItemsProcessed(frames);
  state.SetBytesProcessed(frames * kFrameSize);
  state.counters["out_frames"] = benchmark::Counter(
      static_cast<double>(b.out_frames() - out_before), benchmark::Counter::kIsRate);
}

// Port 0's guest talks to the guests on the other ports in turn.
void BM_SwitchKnownUnicast(benchmark::State& state) {
  const size_t port_count = static_cast<size_t>(state.range(0));
  Bench b(port_count);
  FrameBurst burst(kBurst);
  for (size_t i = 0; i < kBurst; ++i) burst.set(i, port_mac(1 + i % (port_count - 1)), port_mac(0));
  const uint64_t unicast_before = b.sw.counters().unicast;
  run(state, b, burst);
  if (b.sw.counters().unicast - unicast_before != state.iterations() * kBurst) {
    state.SkipWithError("frames were not forwarded as known unicast");
  }
}
BENCHMARK(BM_SwitchKnownUnicast)->Arg(2)->Arg(8)->Arg(64);

// Port 0's guest broadcasts: every frame goes to the other port_count - 1 ports.
void BM_SwitchBroadcast(benchmark::State& state) {
  const size_t port_count = static_cast<size_t>(state.range(0));
  Bench b(port_count);
  FrameBurst burst(kBurst);
  for (size_t i = 0; i < kBurst; ++i) {
    burst.set(i, MacAddress{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, port_mac(0));
  }
  const uint64_t flooded_before = b.sw.counters().flooded;
  run(state, b, burst);
  if (b.sw.counters().flooded - flooded_before != state.iterations() * kBurst) {
    state.SkipWithError("frames were not flooded");
  }
}
BENCHMARK(BM_SwitchBroadcast)->Arg(2)->Arg(8)->Arg(64);

}  // namespace
}  // namespace qswitch::sw
