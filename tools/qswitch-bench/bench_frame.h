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
// - Senders fill frames in place (fill_frame_header once per slot, fill_frame_data per use;
//   set_frame_destination per use for a sender with several receivers, --mode spread): nothing
//   allocates per frame. classify_frame() is the receiver's whole check.
// - Sequences are per sender and receiver: a sender numbers the frames it sends to each of its
//   receivers 0, 1, 2, ... on its own, so every receiver sees a gapless sequence from each of its
//   senders, whatever the others do. A receiver may have several senders (--mode spread):
//   ReceiverView lists them (a bit mask and one SenderView each: what arrives from that sender),
//   and classify_frame() says which one a frame came from; SenderSequences keeps the next
//   sequence expected from each and counts gaps and reordering per sender.
#pragma once

#include <array>
#include <cstdint>
#include <span>
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
// Rewrites the destination MAC of a frame fill_frame_header built (the first 6 bytes, tagged or
// not): for a sender whose slots do not each keep one receiver.
void set_frame_destination(uint8_t* frame, const Mac& dst);

enum class Verdict {
  kData,     // a valid data frame from one of the expected senders; `sender` and `seq` are set
  kHello,    // a bench broadcast hello
  kForeign,  // not for this port, or not a bench frame
  kCorrupt,  // addressed to this port but not what any bench sender wrote
};

struct FrameCheck {
  Verdict verdict = Verdict::kForeign;
  uint32_t sender = 0;
  uint64_t seq = 0;
};

// What one receiving port expects from one of its senders.
struct SenderView {
  uint32_t size = 0;       // data frame bytes on the receiver's wire, tag and padding included
  uint32_t sent_size = 0;  // the sender's frame without its tag: what check and body cover
  const BodyPattern* pattern = nullptr;  // built for sent_size
};

// What one receiving port expects.
struct ReceiverView {
  Mac own;
  uint16_t vlan = 0;     // the VID of the tag every data frame carries here; 0: untagged
  uint64_t senders = 0;  // bit j: port j sends data frames here (ports 0..63); 0: none does
  std::span<const SenderView> from;  // indexed by sender port; entries not in `senders` unread

  bool sends_here(uint32_t sender) const {
    return sender < from.size() && sender < 64 && ((senders >> sender) & 1) != 0;
  }
};

FrameCheck classify_frame(const uint8_t* frame, uint32_t size, const ReceiverView& view);

// The receiver's side of the per-sender sequences: the next sequence number expected from each
// sender, and what arrived out of line. Sized once for the run's ports; on_data() does not
// allocate. A frame from sender j is compared with the last one seen from j only:
//   seq == next[j]: in order; seq > next[j]: the frames between are missing (gap_lost, which
//   counts frames that may still arrive later); seq < next[j]: reordered (it arrived after a
//   later one), and next[j] does not move back.
class SenderSequences {
 public:
  explicit SenderSequences(uint32_t port_count) : next_(port_count, 0), received_(port_count, 0) {}

  void on_data(uint32_t sender, uint64_t seq) {
    ++received_[sender];
    uint64_t& next = next_[sender];
    if (seq == next) {
      ++next;
    } else if (seq > next) {
      gap_lost_ += seq - next;
      next = seq + 1;
    } else {
      ++reordered_;
    }
  }

  uint64_t next(uint32_t sender) const { return next_[sender]; }
  uint64_t received(uint32_t sender) const { return received_[sender]; }
  const std::vector<uint64_t>& received() const { return received_; }
  uint64_t gap_lost() const { return gap_lost_; }
  uint64_t reordered() const { return reordered_; }

 private:
  std::vector<uint64_t> next_;      // per sender
  std::vector<uint64_t> received_;  // valid data frames per sender
  uint64_t gap_lost_ = 0;
  uint64_t reordered_ = 0;
};

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
