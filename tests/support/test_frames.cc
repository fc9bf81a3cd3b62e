// tests/support/test_frames.cc: see test_frames.h.
#include "tests/support/test_frames.h"

#include <cstdio>

namespace qswitch::test_support {
namespace {

uint8_t pattern_byte(uint32_t seq, size_t offset) {
  // Cheap, position- and sequence-dependent, never constant across a frame.
  uint32_t x = seq * 2654435761u + static_cast<uint32_t>(offset) * 40503u;
  return static_cast<uint8_t>((x >> 13) ^ (x >> 3) ^ offset);
}

constexpr size_t kSeqOffset = kEthHeaderSize;
constexpr size_t kPayloadOffset = kEthHeaderSize + 4;

}  // namespace

Mac test_mac(uint32_t index) {
  return {0x02,
          0x71,
          static_cast<uint8_t>(index >> 24),
          static_cast<uint8_t>(index >> 16),
          static_cast<uint8_t>(index >> 8),
          static_cast<uint8_t>(index)};
}

std::string mac_to_string(const Mac& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

std::optional<Mac> parse_mac(const std::string& text) {
  Mac mac{};
  unsigned v[6];
  char tail = 0;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                  &v[5], &tail) != 6) {
    return std::nullopt;
  }
  for (int i = 0; i < 6; ++i) mac[i] = static_cast<uint8_t>(v[i]);
  return mac;
}

std::vector<uint8_t> make_frame(const Mac& dst, const Mac& src, size_t size, uint32_t seq) {
  if (size < kEthHeaderSize) size = kEthHeaderSize;
  std::vector<uint8_t> f(size);
  for (int i = 0; i < 6; ++i) {
    f[i] = dst[i];
    f[6 + i] = src[i];
  }
  f[12] = static_cast<uint8_t>(kTestEthertype >> 8);
  f[13] = static_cast<uint8_t>(kTestEthertype);
  if (size >= kPayloadOffset) {
    f[kSeqOffset] = static_cast<uint8_t>(seq >> 24);
    f[kSeqOffset + 1] = static_cast<uint8_t>(seq >> 16);
    f[kSeqOffset + 2] = static_cast<uint8_t>(seq >> 8);
    f[kSeqOffset + 3] = static_cast<uint8_t>(seq);
    for (size_t i = kPayloadOffset; i < size; ++i) f[i] = pattern_byte(seq, i);
  } else {
    for (size_t i = kEthHeaderSize; i < size; ++i) f[i] = pattern_byte(0, i);  // no room for seq
  }
  return f;
}

Mac frame_dst(std::span<const uint8_t> frame) {
  Mac m{};
  for (size_t i = 0; i < 6 && i < frame.size(); ++i) m[i] = frame[i];
  return m;
}

Mac frame_src(std::span<const uint8_t> frame) {
  Mac m{};
  for (size_t i = 0; i < 6 && 6 + i < frame.size(); ++i) m[i] = frame[6 + i];
  return m;
}

std::optional<uint32_t> frame_seq(std::span<const uint8_t> frame) {
  if (frame.size() < kPayloadOffset) return std::nullopt;
  return (uint32_t{frame[kSeqOffset]} << 24) | (uint32_t{frame[kSeqOffset + 1]} << 16) |
         (uint32_t{frame[kSeqOffset + 2]} << 8) | uint32_t{frame[kSeqOffset + 3]};
}

bool frame_is_intact(std::span<const uint8_t> frame, size_t original_size) {
  if (frame.size() < original_size || original_size < kEthHeaderSize) return false;
  uint32_t seq = 0;
  if (original_size >= kPayloadOffset) {
    auto s = frame_seq(frame);
    if (!s) return false;
    seq = *s;
  }
  const std::vector<uint8_t> expected =
      make_frame(frame_dst(frame), frame_src(frame), original_size, seq);
  for (size_t i = 0; i < original_size; ++i) {
    if (frame[i] != expected[i]) return false;
  }
  for (size_t i = original_size; i < frame.size(); ++i) {
    if (frame[i] != 0) return false;
  }
  return true;
}

}  // namespace qswitch::test_support
