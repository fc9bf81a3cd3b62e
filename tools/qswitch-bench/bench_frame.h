// tools/qswitch-bench/bench_frame.h: the frames qswitch-bench sends, and how receivers check them.
//
// Theory of operation
// - Layout (offsets in the Ethernet frame, no FCS):
//     0  dst MAC            6  src MAC (02:51:42:00:00:<sender>)   12  EtherType 0x88B5
//     14 magic "QSB1"       18 sender index (u16)   20 kind (u16: 1 hello, 2 data)
//     22 sequence (u64)     30 check (u32) = mix(sequence, sender, untagged size)
//     34 .. size            body: a fixed byte pattern read from offset (sequence % 251)
//   0x88B5 is the IEEE 802 "local experimental" EtherType, so nothing on a real network parses it.
//   Multi-byte fields are big-endian, like everything else on the wire.
// - A port with --vlan sends 802.1Q-tagged frames: TPID 0x8100 and TCI = VID (priority 0, DEI 0)
//   at offset 12, and everything from the EtherType on 4 bytes later (IEEE 802.1Q section 9).
//   A frame's "untagged size" is its size without that tag; the check word and the body cover the
//   untagged frame, so a switch may push or pop the tag on the way and the receiver still checks
//   every byte. `size` of a tagged frame counts the tag: it is the size on the sending wire.
//   A data frame with the wrong tag (missing, unexpected, another VID or priority) is corrupt.
// - What a receiver gets (received_frame_size): the sender's untagged size plus 4 on a tagged
//   port; on an untagged port the untagged size, but at least 60: a switch that pops the tag of a
//   frame shorter than 64 bytes pads the result with zeros to IEEE 802.3's minimum (qswitch does,
//   docs/vlans.md), and classify_frame() requires those padding bytes to be zero.
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
inline constexpr uint16_t kVlanTpid = 0x8100;  // IEEE 802.1Q C-tag
inline constexpr uint32_t kVlanTagSize = 4;
inline constexpr uint32_t kMinWireFrameSize = 60;  // IEEE 802.3 minimum without FCS

enum class FrameKind : uint16_t { kHello = 1, kData = 2 };

// Locally administered (bit 1 of the first octet), unicast: 02:51:42:00:00:<index>.
Mac port_mac(uint32_t index);

// The tag's bytes on a port's wire: 4 when the port tags (vlan != 0), 0 when it does not.
inline uint32_t tag_size(uint16_t vlan) { return vlan != 0 ? kVlanTagSize : 0; }

// The size of a frame sent as `sent_size` bytes by a port tagging with `sender_vlan` (0: none),
// as a port tagging with `receiver_vlan` receives it through a switch that pushes, pops or keeps
// the tag (a pop shorter than 60 bytes padded to 60).
uint32_t received_frame_size(uint32_t sent_size, uint16_t sender_vlan, uint16_t receiver_vlan);

// The body bytes of every frame of one untagged size, at every sequence offset.
class BodyPattern {
 public:
  explicit BodyPattern(uint32_t untagged_frame_size);
  const uint8_t* body_for(uint64_t seq) const { return bytes_.data() + seq % kPatternPeriod; }
  uint32_t body_size() const { return body_size_; }

 private:
  uint32_t body_size_;
  std::vector<uint8_t> bytes_;
};

// `untagged_size`: the frame's size without a VLAN tag.
uint32_t frame_check(uint64_t seq, uint32_t sender, uint32_t untagged_size);

// The constant part: MACs, the tag when `vlan` is not 0, EtherType, magic, sender, kind.
void fill_frame_header(uint8_t* frame, const Mac& dst, uint32_t sender, FrameKind kind,
                       uint16_t vlan);
// The per-frame part: sequence, check, body. `size` counts the tag (when `vlan` is not 0);
// `pattern` is built for the untagged size, size - tag_size(vlan).
void fill_frame_data(uint8_t* frame, uint32_t size, uint32_t sender, uint64_t seq,
                     const BodyPattern& pattern, uint16_t vlan);

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
  uint16_t vlan = 0;       // the VID of the tag every data frame carries here; 0: untagged
  uint32_t size = 0;       // data frame bytes on this port's wire, tag and padding included
  uint32_t sent_size = 0;  // the sender's frame without its tag: what check and body cover
  const BodyPattern* pattern = nullptr;  // built for sent_size
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
