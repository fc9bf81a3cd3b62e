// tools/qswitch-bench/bench_frame.h: the frames qswitch-bench sends, and how receivers check them.
//
// Theory of operation
// - Layout (offsets in the Ethernet frame, no FCS):
//     0  dst MAC            6  src MAC (02:51:42:00:00:<sender>)   12  EtherType 0x88B5
//     14 magic "QSB1"       18 sender index (u16)   20 kind (u16: 1 hello, 2 data)
//     22 sequence (u64)     30 check (u32) = mix(sequence, sender, size)
//     34 .. size            body: a fixed byte pattern read from offset (sequence % 251)
//   0x88B5 is the IEEE 802 "local experimental" EtherType, so nothing on a real network parses it.
//   Multi-byte fields are big-endian, like everything else on the wire.
// - The body pattern has period 256 and the offset changes with the sequence, so a frame with a
//   stale or shifted body (a switch mixing up buffers) fails the memcmp, as does a flipped byte.
//   Building and checking a body are one memcpy / memcmp against the same pattern buffer.
// - Senders fill frames in place (fill_frame_header once per slot, fill_frame_data per use):
//   nothing allocates per frame. classify_frame() is the receiver's whole check.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace qswitch::tools {

using Mac = std::array<uint8_t, 6>;

inline constexpr uint16_t kBenchEtherType = 0x88b5;
inline constexpr uint32_t kBenchMagic = 0x51534231;  // "QSB1"
inline constexpr uint32_t kBenchHeaderSize = 34;     // Ethernet header + bench header
inline constexpr uint32_t kPatternPeriod = 251;      // offsets 0..250, all distinct mod 256
inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

enum class FrameKind : uint16_t { kHello = 1, kData = 2 };

// Locally administered (bit 1 of the first octet), unicast: 02:51:42:00:00:<index>.
Mac port_mac(uint32_t index);

// The body bytes of every frame of one size, at every sequence offset.
class BodyPattern {
 public:
  explicit BodyPattern(uint32_t frame_size);
  const uint8_t* body_for(uint64_t seq) const { return bytes_.data() + seq % kPatternPeriod; }
  uint32_t body_size() const { return body_size_; }

 private:
  uint32_t body_size_;
  std::vector<uint8_t> bytes_;
};

uint32_t frame_check(uint64_t seq, uint32_t sender, uint32_t size);

// The constant part: MACs, EtherType, magic, sender, kind.
void fill_frame_header(uint8_t* frame, const Mac& dst, uint32_t sender, FrameKind kind);
// The per-frame part: sequence, check, body.
void fill_frame_data(uint8_t* frame, uint32_t size, uint32_t sender, uint64_t seq,
                     const BodyPattern& pattern);

enum class Verdict {
  kData,     // a valid data frame from the expected sender; `seq` is set
  kHello,    // a bench broadcast hello
  kForeign,  // not for this port, or not a bench frame
  kCorrupt,  // addressed to this port but not what any bench sender wrote
};

struct FrameCheck {
  Verdict verdict = Verdict::kForeign;
  uint64_t seq = 0;
};

// What one receiving port expects.
struct ReceiverView {
  Mac own;
  uint32_t expect_from = 0;
  Mac expect_mac;
  uint32_t size = 0;
  const BodyPattern* pattern = nullptr;
};

FrameCheck classify_frame(const uint8_t* frame, uint32_t size, const ReceiverView& view);

inline void put_be16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void put_be64(uint8_t* p, uint64_t v) {
  put_be32(p, static_cast<uint32_t>(v >> 32));
  put_be32(p + 4, static_cast<uint32_t>(v));
}
inline uint16_t get_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t get_be64(const uint8_t* p) {
  return (uint64_t{get_be32(p)} << 32) | get_be32(p + 4);
}

}  // namespace qswitch::tools
