// tools/qswitch-bench/bench_frame.cc: building and checking bench frames (layout in the header).
#include "tools/qswitch-bench/bench_frame.h"

#include <cstring>

namespace qswitch::tools {

Mac port_mac(uint32_t index) {
  return {0x02, 0x51, 0x42, 0x00, static_cast<uint8_t>(index >> 8), static_cast<uint8_t>(index)};
}

BodyPattern::BodyPattern(uint32_t frame_size)
    : body_size_(frame_size > kBenchHeaderSize ? frame_size - kBenchHeaderSize : 0),
      bytes_(body_size_ + kPatternPeriod) {
  for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = static_cast<uint8_t>(i ^ 0x5a);
}

uint32_t frame_check(uint64_t seq, uint32_t sender, uint32_t size) {
  // splitmix64's finalizer over the fields the receiver also knows.
  uint64_t z = seq * 0x9e3779b97f4a7c15ULL ^ (uint64_t{sender} << 40) ^ size;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

void fill_frame_header(uint8_t* frame, const Mac& dst, uint32_t sender, FrameKind kind) {
  Mac src = port_mac(sender);
  std::memcpy(frame, dst.data(), 6);
  std::memcpy(frame + 6, src.data(), 6);
  put_be16(frame + 12, kBenchEtherType);
  put_be32(frame + 14, kBenchMagic);
  put_be16(frame + 18, static_cast<uint16_t>(sender));
  put_be16(frame + 20, static_cast<uint16_t>(kind));
}

void fill_frame_data(uint8_t* frame, uint32_t size, uint32_t sender, uint64_t seq,
                     const BodyPattern& pattern) {
  put_be64(frame + 22, seq);
  put_be32(frame + 30, frame_check(seq, sender, size));
  if (size > kBenchHeaderSize) {
    std::memcpy(frame + kBenchHeaderSize, pattern.body_for(seq), size - kBenchHeaderSize);
  }
}

FrameCheck classify_frame(const uint8_t* frame, uint32_t size, const ReceiverView& view) {
  FrameCheck out;
  if (size < 14) return out;  // foreign
  bool ours = size >= kBenchHeaderSize && get_be16(frame + 12) == kBenchEtherType &&
              get_be32(frame + 14) == kBenchMagic;
  if (std::memcmp(frame, view.own.data(), 6) != 0) {
    if (ours && std::memcmp(frame, kBroadcastMac.data(), 6) == 0 &&
        get_be16(frame + 20) == static_cast<uint16_t>(FrameKind::kHello)) {
      out.verdict = Verdict::kHello;
    }
    return out;  // someone else's frame, flooded to us: foreign
  }
  // Addressed to this port: only its one sender writes such frames, so anything else is damage.
  out.verdict = Verdict::kCorrupt;
  if (!ours || size != view.size) return out;
  if (get_be16(frame + 18) != view.expect_from ||
      get_be16(frame + 20) != static_cast<uint16_t>(FrameKind::kData) ||
      std::memcmp(frame + 6, view.expect_mac.data(), 6) != 0) {
    return out;
  }
  uint64_t seq = get_be64(frame + 22);
  if (get_be32(frame + 30) != frame_check(seq, view.expect_from, size)) return out;
  if (std::memcmp(frame + kBenchHeaderSize, view.pattern->body_for(seq), size - kBenchHeaderSize) !=
      0) {
    return out;
  }
  out.verdict = Verdict::kData;
  out.seq = seq;
  return out;
}

}  // namespace qswitch::tools
