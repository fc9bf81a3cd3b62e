// tests/support/test_frames.h: Ethernet frames that tests build, send and recognise.
//
// A test frame is dst(6) src(6) ethertype 0x88b5 (IEEE 802 local experimental, so nothing on a
// real network would act on it), then, if there is room, a 4-byte big-endian sequence number and
// a payload whose every byte is a function of (seq, offset). So a receiver can check that a frame
// arrived intact and in order without keeping a copy of what was sent.
// Test MACs are locally administered unicast: 02:71:xx:xx:xx:xx.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qswitch::test_support {

using Mac = std::array<uint8_t, 6>;

inline constexpr Mac kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr uint16_t kTestEthertype = 0x88b5;
inline constexpr size_t kEthHeaderSize = 14;
inline constexpr size_t kMinPaddedSize = 60;
inline constexpr size_t kMaxFrameSize = 65535 + 14;

// Distinct per index: 02:71:<index as 4 bytes big-endian>.
Mac test_mac(uint32_t index);
std::string mac_to_string(const Mac& mac);  // "02:71:00:00:00:01"
std::optional<Mac> parse_mac(const std::string& text);

// A frame of exactly `size` bytes (>= 14). The sequence number is stored when size >= 18.
std::vector<uint8_t> make_frame(const Mac& dst, const Mac& src, size_t size, uint32_t seq);

Mac frame_dst(std::span<const uint8_t> frame);
Mac frame_src(std::span<const uint8_t> frame);
// The stored sequence number, or nullopt when the frame is shorter than 18 bytes.
std::optional<uint32_t> frame_seq(std::span<const uint8_t> frame);

// True when `frame` is make_frame(dst, src, original_size, seq) for its own dst/src/seq, padded
// with zeros up to frame.size() (pass original_size = frame.size() for an unpadded frame).
bool frame_is_intact(std::span<const uint8_t> frame, size_t original_size);

}  // namespace qswitch::test_support
