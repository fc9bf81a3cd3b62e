// tests/fuzz/stream_framing_fuzz.cc: sw::StreamRxBuffer, the decoder of QEMU's stream framing
// (4-byte big-endian length, then the frame), fed an arbitrary byte stream cut into arbitrary
// reads, with frames held by "output queues" for a while as the switch holds them.
//
// Input: the stream is taken from the front of the data, the choices (chunk size, chunk count,
// each read's size, how many frames each commit may hand out, how long frames are held) from the
// back (FuzzedDataProvider), so the fuzzer mutates both independently.
//
// Checked against an independent reference decoder of the bytes actually fed:
// - every frame handed out is the next frame of the stream, byte for byte, and lies inside its
//   chunk's memory (ASan checks every byte read besides);
// - kBadLength comes exactly when the next frame's length prefix is out of range, and
//   bad_length() names it;
// - reads never reach past a chunk (chunks are exact-size heap blocks: ASan sees an overflow),
//   and write_space() never stays empty once every frame is drained and released (no deadlock);
// - after the stream: pending_size() is exactly the bytes of the incomplete last frame.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "switch/frame.h"
#include "switch/stream_rx_buffer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using qswitch::sw::Frame;
using qswitch::sw::StreamRxBuffer;

// The reference: frames of `stream[0..fed)` one after the other.
struct Reference {
  std::vector<uint8_t> stream;
  size_t next = 0;  // offset of the next frame's prefix

  // 1: a complete frame at `next`, 0: incomplete, -1: a complete prefix with a bad length.
  int state(size_t* size) const {
    if (stream.size() - next < qswitch::sw::kPrefixSize) return 0;
    const uint32_t len = qswitch::sw::load_be32(stream.data() + next);
    *size = len;
    if (len < qswitch::sw::kMinFrameSize || len > qswitch::sw::kMaxFrameSize) return -1;
    return stream.size() - next - qswitch::sw::kPrefixSize >= len ? 1 : 0;
  }
};

void check_frame(Reference& ref, const Frame& f) {
  size_t size = 0;
  FUZZ_CHECK(ref.state(&size) == 1);
  FUZZ_CHECK(f.size == size);
  FUZZ_CHECK(f.chunk != nullptr);
  FUZZ_CHECK(f.wire >= f.chunk->data);
  FUZZ_CHECK(f.wire + qswitch::sw::kPrefixSize + f.size <= f.chunk->data + f.chunk->capacity);
  FUZZ_CHECK(qswitch::sw::load_be32(f.wire) == f.size);
  FUZZ_CHECK(
      std::memcmp(f.data(), ref.stream.data() + ref.next + qswitch::sw::kPrefixSize, f.size) == 0);
  ref.next += qswitch::sw::kPrefixSize + f.size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  // Small main parts reach the slack path (a frame finished past the main part) often.
  static constexpr uint32_t kMainSizes[] = {32, 100, 1024, 4096, 65536};
  const uint32_t main_size = in.PickValueInArray(kMainSizes);
  const uint32_t max_chunks = in.ConsumeIntegralInRange<uint32_t>(1, 4);
  StreamRxBuffer rx(main_size, max_chunks);
  Reference ref;
  std::deque<Frame> held;  // frames an output still holds (a chunk reference each)
  Frame out[16];
  bool bad = false;

  auto release = [&](size_t n) {
    for (; n > 0 && !held.empty(); --n) {
      qswitch::sw::chunk_unref(held.front().chunk);
      held.pop_front();
    }
  };
  // Hands frames out; returns false once the stream had a bad length.
  auto take = [&](StreamRxBuffer::Status st, size_t count, size_t hold_max) {
    for (size_t i = 0; i < count; ++i) {
      check_frame(ref, out[i]);
      if (held.size() < hold_max) {
        qswitch::sw::chunk_ref(out[i].chunk);
        held.push_back(out[i]);
      }
    }
    if (st == StreamRxBuffer::Status::kBadLength) {
      size_t len = 0;
      FUZZ_CHECK(ref.state(&len) == -1);
      FUZZ_CHECK(rx.bad_length() == len);
      return false;
    }
    return true;
  };

  for (int step = 0; step < 100000 && !bad && in.remaining_bytes() > 0; ++step) {
    const size_t want = in.ConsumeIntegralInRange<size_t>(0, 70000);
    const size_t out_room = in.ConsumeIntegralInRange<size_t>(1, 16);
    const size_t hold_max = in.ConsumeIntegralInRange<size_t>(0, 64);
    release(in.ConsumeIntegralInRange<size_t>(0, 8));

    std::span<uint8_t> space = rx.write_space();
    if (space.empty()) {
      // Complete frames not handed out yet, or every chunk held: drain, then release.
      size_t count = 0;
      const auto st = rx.drain({out, out_room}, count);
      if (!take(st, count, hold_max)) {
        bad = true;
        break;
      }
      if (count == 0) {
        release(held.size());
        // Nothing held and nothing to drain: there must be room now.
        size_t count2 = 0;
        const auto st2 = rx.drain({out, 16}, count2);
        if (!take(st2, count2, 0)) {
          bad = true;
          break;
        }
        if (count2 == 0) FUZZ_CHECK(!rx.write_space().empty());
      }
      continue;
    }
    const size_t n = std::min({want, space.size(), in.remaining_bytes()});
    if (n == 0) {
      size_t count = 0;
      const auto st = rx.drain({out, out_room}, count);
      if (!take(st, count, hold_max)) bad = true;
      continue;
    }
    const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(n);
    std::memcpy(space.data(), bytes.data(), bytes.size());
    ref.stream.insert(ref.stream.end(), bytes.begin(), bytes.end());
    size_t count = 0;
    const auto st = rx.commit(bytes.size(), {out, out_room}, count);
    if (!take(st, count, hold_max)) bad = true;
  }
  if (!bad) {
    // Drain what is left: afterwards only an incomplete frame (or a bad prefix) remains.
    for (int i = 0; i < 100000; ++i) {
      size_t count = 0;
      const auto st = rx.drain({out, 16}, count);
      if (!take(st, count, 0)) {
        bad = true;
        break;
      }
      if (count == 0) break;
    }
    if (!bad) {
      size_t len = 0;
      FUZZ_CHECK(ref.state(&len) == 0);
      FUZZ_CHECK(rx.pending_size() == ref.stream.size() - ref.next);
    }
  }
  release(held.size());
  return 0;
}
