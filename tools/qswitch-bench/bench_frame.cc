// tools/qswitch-bench/bench_frame.cc: building and checking bench frames (layout in the header).
#include "tools/qswitch-bench/bench_frame.h"

#include <algorithm>
#include <cstring>

namespace qswitch::tools {

namespace {

// Offsets in an untagged frame; a tagged one has them `tag_size` bytes later.
constexpr uint32_t kEtherTypeAt = 12;
constexpr uint32_t kMagicAt = 14;
constexpr uint32_t kSenderAt = 18;
constexpr uint32_t kKindAt = 20;
constexpr uint32_t kSeqAt = 22;
constexpr uint32_t kCheckAt = 30;

}  // namespace

Mac port_mac(uint32_t index) {
  return {0x02, 0x51, 0x42, 0x00, static_cast<uint8_t>(index >> 8), static_cast<uint8_t>(index)};
}

uint32_t received_frame_size(uint32_t sent_size, uint16_t sender_vlan, uint16_t receiver_vlan) {
  uint32_t untagged = sent_size - tag_size(sender_vlan);
  return receiver_vlan != 0 ? untagged + kVlanTagSize : std::max(untagged, kMinWireFrameSize);
}

BodyPattern::BodyPattern(uint32_t untagged_frame_size)
    : body_size_(untagged_frame_size > kBenchHeaderSize ? untagged_frame_size - kBenchHeaderSize
                                                        : 0),
      bytes_(body_size_ + kPatternPeriod) {
  for (size_t i = 0; i < bytes_.size(); ++i) bytes_[i] = static_cast<uint8_t>(i ^ 0x5a);
}

uint32_t frame_check(uint64_t seq, uint32_t sender, uint32_t untagged_size) {
  // splitmix64's finalizer over the fields the receiver also knows.
  uint64_t z = seq * 0x9e3779b97f4a7c15ULL ^ (uint64_t{sender} << 40) ^ untagged_size;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

void fill_frame_header(uint8_t* frame, const Mac& dst, uint32_t sender, FrameKind kind,
                       uint16_t vlan) {
  Mac src = port_mac(sender);
  std::memcpy(frame, dst.data(), 6);
  std::memcpy(frame + 6, src.data(), 6);
  const uint32_t t = tag_size(vlan);
  if (t != 0) {
    put_be16(frame + 12, kVlanTpid);
    put_be16(frame + 14, vlan);  // TCI: priority 0, DEI 0, VID
  }
  put_be16(frame + t + kEtherTypeAt, kBenchEtherType);
  put_be32(frame + t + kMagicAt, kBenchMagic);
  put_be16(frame + t + kSenderAt, static_cast<uint16_t>(sender));
  put_be16(frame + t + kKindAt, static_cast<uint16_t>(kind));
}

void fill_frame_data(uint8_t* frame, uint32_t size, uint32_t sender, uint64_t seq,
                     const BodyPattern& pattern, uint16_t vlan) {
  const uint32_t t = tag_size(vlan);
  const uint32_t untagged = size - t;
  put_be64(frame + t + kSeqAt, seq);
  put_be32(frame + t + kCheckAt, frame_check(seq, sender, untagged));
  if (untagged > kBenchHeaderSize) {
    std::memcpy(frame + t + kBenchHeaderSize, pattern.body_for(seq), untagged - kBenchHeaderSize);
  }
}

void set_frame_destination(uint8_t* frame, const Mac& dst) { std::memcpy(frame, dst.data(), 6); }

FrameCheck classify_frame(const uint8_t* frame, uint32_t size, const ReceiverView& view) {
  FrameCheck out;
  if (size < 14) return out;  // foreign
  // A tagged frame's bench header starts 4 bytes later; 16 bytes hold the tag and an EtherType.
  const bool tagged = size >= 18 && get_be16(frame + kEtherTypeAt) == kVlanTpid;
  const uint32_t t = tagged ? kVlanTagSize : 0;
  bool ours = size >= t + kBenchHeaderSize &&
              get_be16(frame + t + kEtherTypeAt) == kBenchEtherType &&
              get_be32(frame + t + kMagicAt) == kBenchMagic;
  if (std::memcmp(frame, view.own.data(), 6) != 0) {
    if (ours && std::memcmp(frame, kBroadcastMac.data(), 6) == 0 &&
        get_be16(frame + t + kKindAt) == static_cast<uint16_t>(FrameKind::kHello)) {
      out.verdict = Verdict::kHello;
    }
    return out;  // someone else's frame, flooded to us: foreign
  }
  // Addressed to this port: only its senders write such frames, so anything else is damage,
  // including a tag where none belongs, none where one does, or another VID or priority.
  out.verdict = Verdict::kCorrupt;
  if (!ours) return out;
  const uint32_t sender = get_be16(frame + t + kSenderAt);
  if (!view.sends_here(sender)) return out;
  const SenderView& from = view.from[sender];
  if (size != from.size) return out;
  if (tagged != (view.vlan != 0) || (tagged && get_be16(frame + 14) != view.vlan)) return out;
  const Mac sender_mac = port_mac(sender);
  if (get_be16(frame + t + kKindAt) != static_cast<uint16_t>(FrameKind::kData) ||
      std::memcmp(frame + 6, sender_mac.data(), 6) != 0) {
    return out;
  }
  // The sender's untagged frame ends at t + sent_size; a popped frame shorter than 60 bytes
  // arrives padded, and the padding must be zeros. size == from.size bounds both.
  const uint32_t end = t + from.sent_size;
  if (from.sent_size < kBenchHeaderSize || end > size) return out;
  uint64_t seq = get_be64(frame + t + kSeqAt);
  if (get_be32(frame + t + kCheckAt) != frame_check(seq, sender, from.sent_size)) {
    return out;
  }
  if (std::memcmp(frame + t + kBenchHeaderSize, from.pattern->body_for(seq),
                  from.sent_size - kBenchHeaderSize) != 0) {
    return out;
  }
  for (uint32_t i = end; i < size; ++i) {
    if (frame[i] != 0) return out;
  }
  out.verdict = Verdict::kData;
  out.sender = sender;
  out.seq = seq;
  return out;
}

}  // namespace qswitch::tools
