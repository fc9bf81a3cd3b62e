// tests/fuzz/datagram_rx_fuzz.cc: the datagram receive path minus the socket: bursts of
// arbitrary datagrams land in backends::DatagramRx slots as recvmmsg() leaves them (cut to the
// slot with MSG_TRUNC when longer), classify_datagram() decides which become frames, and the
// frames go through the switch core (sw::L2Switch: learning and forwarding on their MAC
// addresses) to ports that hold them for a while, as output queues do, so receive chunks run
// out and come back.
//
// Input (FuzzedDataProvider): chunk count, then bursts: how many datagrams, each one's length
// (mostly small, sometimes up to past the slot) and bytes, which of two sender ports it is from,
// and how many held frames the outputs release.
//
// Checked: a datagram becomes a frame exactly when it is 14..65549 bytes and not truncated; a
// frame's prefix holds its length, its bytes are the datagram's, and it lies inside its chunk
// (chunks are exact-size heap blocks: ASan sees any overflow); once the outputs let go of every
// frame, available() is non-zero again (no chunk leaks a reference; LeakSanitizer checks the
// end); the switch counted every frame.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "backends/runtime/datagram_rx.h"
#include "switch/l2_switch.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace sw = qswitch::sw;
using qswitch::backends::classify_datagram;
using qswitch::backends::DatagramKind;
using qswitch::backends::DatagramRx;

// A port whose output queue holds frames (a chunk reference each) until release().
class HoldingPort final : public sw::Port {
 public:
  void enqueue(const sw::Frame& f) override {
    if (held_.size() >= 256) {
      counters_.drop_queue_full += 1;
      return;
    }
    sw::chunk_ref(f.chunk);
    held_.push_back(f);
  }
  void flush() override {}
  std::string describe() const override { return "fuzz"; }
  void release(size_t n) {
    for (; n > 0 && !held_.empty(); --n) {
      sw::chunk_unref(held_.front().chunk);
      held_.pop_front();
    }
  }
  ~HoldingPort() override { release(held_.size()); }

 private:
  std::deque<sw::Frame> held_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  HoldingPort ports[3];
  sw::SwitchConfig config;
  config.mac.max_entries = 64;
  config.mac.seed = 1;
  sw::L2Switch fabric(config);
  for (HoldingPort& p : ports) fabric.attach(p);
  {
    DatagramRx rx(in.ConsumeIntegralInRange<uint32_t>(1, 3));
    std::vector<uint8_t> scratch;
    uint64_t frames = 0;
    sw::Millis now = 0;
    for (int burst = 0; burst < 1000 && in.remaining_bytes() > 0; ++burst) {
      now += in.ConsumeIntegralInRange<int>(0, 1000);
      for (HoldingPort& p : ports) p.release(in.ConsumeIntegralInRange<size_t>(0, 64));
      uint32_t n = rx.available();
      if (n == 0) {
        for (HoldingPort& p : ports) p.release(SIZE_MAX);
        n = rx.available();
        FUZZ_CHECK(n > 0);  // nothing holds a frame: a chunk must be free
      }
      const uint32_t got = in.ConsumeIntegralInRange<uint32_t>(1, n);
      std::vector<sw::Frame> run[2];
      for (uint32_t i = 0; i < got; ++i) {
        const int from = in.ConsumeBool() ? 1 : 0;
        // The datagram as sent: mostly a few bytes to a few hundred, now and then huge.
        size_t dlen = in.ConsumeIntegralInRange<size_t>(0, 300);
        if (dlen > 290) dlen = in.ConsumeIntegralInRange<size_t>(0, sw::kMaxFrameSize + 64);
        std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(std::min<size_t>(dlen, 512));
        bytes.resize(dlen, 0x5a);
        // recvmmsg: at most slot_capacity() bytes land; a longer datagram is cut (MSG_TRUNC).
        const size_t landed = std::min<size_t>(dlen, DatagramRx::slot_capacity());
        const bool truncated = dlen > DatagramRx::slot_capacity();
        if (landed > 0) std::memcpy(rx.slot(i), bytes.data(), landed);
        const auto len = static_cast<uint32_t>(landed);
        const DatagramKind kind = classify_datagram(len, truncated);
        const bool frame_ok = !truncated && len >= sw::kMinFrameSize && len <= sw::kMaxFrameSize;
        FUZZ_CHECK((kind == DatagramKind::kFrame) == frame_ok);
        if (!frame_ok) {
          FUZZ_CHECK(kind == (truncated ? DatagramKind::kOversize : DatagramKind::kRunt));
          continue;
        }
        const sw::Frame f = rx.frame(i, len);
        FUZZ_CHECK(f.size == len && sw::load_be32(f.wire) == len);
        FUZZ_CHECK(f.chunk != nullptr && f.wire >= f.chunk->data &&
                   f.wire + sw::kPrefixSize + f.size <= f.chunk->data + f.chunk->capacity);
        FUZZ_CHECK(std::memcmp(f.data(), bytes.data(), len) == 0);
        run[from].push_back(f);
      }
      // The switch takes each sender's frames as one burst (the port reads them together).
      for (int from = 0; from < 2; ++from) {
        if (run[from].empty()) continue;
        fabric.receive(ports[from], run[from], now);
        frames += run[from].size();
      }
      fabric.flush();
      rx.advance(got);
      FUZZ_CHECK(fabric.counters().frames_in == frames);
    }
  }
  // rx is gone: the chunks the ports still hold are orphaned and freed by their last release.
  for (HoldingPort& p : ports) p.release(SIZE_MAX);
  return 0;
}
