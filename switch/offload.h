// switch/offload.h: a frame's offload state (checksum and TCP segmentation a guest left to the
// "hardware"), the virtio_net_hdr codec for it, and the software fallback: checksum completion
// and TCP segmentation, so ports that take only ordinary frames get what Linux's GSO would send.
//
// Theory of operation
// - A vhost-user guest that negotiated VIRTIO_NET_F_CSUM and HOST_TSO4/6 prefixes each frame
//   with a virtio_net_hdr (virtio 1.2 section 5.1.6, Linux include/uapi/linux/virtio_net.h):
//       u8 flags, u8 gso_type, le16 hdr_len, le16 gso_size, le16 csum_start, le16 csum_offset
//       [le16 num_buffers: 12 bytes with VERSION_1 or MRG_RXBUF, 10 without]
//   Little-endian: qswitch speaks virtio 1.x only (no legacy guest-endian headers).
//   OffloadInfo is the switch's own copy of what matters, independent of that layout:
//   decode_virtio_net_hdr() reads it and refuses what Linux's virtio_net_hdr_to_skb() refuses
//   (include/linux/virtio_net.h), encode_virtio_net_hdr() writes it back for ports that take
//   offloads.
// - NEEDS_CSUM: the guest summed the pseudo-header into the checksum field (folded, not
//   inverted) and left the rest: complete_checksum() sums [csum_start, end) with that field in
//   place, then stores the folded, inverted sum there (what skb_checksum_help() does).
// - TCP segmentation (gso_type TCPV4/TCPV6): the frame is Ethernet, at most one 802.1Q tag,
//   IPv4 (options allowed, not a fragment) or IPv6 (no extension headers), TCP (options
//   allowed), then the payload. Each segment is those headers plus the next gso_size payload
//   bytes (the last one the rest), fixed up as tcp_gso_segment(), inet_gso_segment() and
//   ipv6_gso_segment() (net/ipv4/tcp_offload.c, af_inet.c, net/ipv6/ip6_offload.c) do:
//   IPv4 total length, id + index (the first keeps the guest's id), header checksum; IPv6
//   payload length; TCP seq + index * gso_size; FIN and PSH only on the last segment, CWR only
//   on the first; the TCP checksum of each segment computed in full (pseudo-header, header,
//   payload). For a guest that seeded the pseudo-header honestly that is Linux's result byte
//   for byte (tests/switch/offload_kernel_test.cc compares with the kernel through two taps);
//   Linux adjusts the guest's seed, so a wrong seed gives a wrong checksum there and the right
//   one here.
// - A GSO frame whose payload is not more than gso_size is not cut (Linux marks it non-GSO):
//   it goes out unchanged but for its checksum completion, as a non-GSO frame would. One known
//   difference from Linux there: skb_checksum_help() stores a zero result as 0xffff for any
//   protocol; complete_checksum() keeps TCP's 0 (the same one's complement zero to a receiver)
//   and uses 0xffff for UDP only, where 0 would mean "no checksum".
// - Every byte of the frame and header is the guest's: every refusal is a named OffloadError,
//   nothing is read or written outside the frame or the caller's room. gso_size is at least
//   kMinGsoSize, which caps one frame at kMaxSegmentCount segments (a 64 KiB frame cut into
//   1-byte segments would be 65535 frames, ~3.6 MB of output for 64 KiB of input).
// - No allocation, no exception, no system call: the caller brings the memory for each segment
//   (plan_tcp_segmentation() says how many and how big; software_offload() asks a callback).
#pragma once

#include <cstdint>

#include "switch/frame.h"

namespace qswitch::sw {

// virtio_net_hdr sizes: without and with num_buffers.
inline constexpr uint32_t kVirtioNetHdrSize = 10;
inline constexpr uint32_t kVirtioNetHdrMrgSize = 12;

// Smallest gso_size accepted. IPv4's minimum MTU (68, RFC 791) would allow a 28-byte MSS, but
// no TCP sends such segments in bulk (Linux's default tcp_min_snd_mss is 48, its own TSO sizes
// are far larger); 64 bounds a 64 KiB frame to 1024 segments.
inline constexpr uint16_t kMinGsoSize = 64;
// gso_size 0xffff is Linux's GSO_BY_FRAGS, refused by virtio_net_hdr_to_skb(): refused here too.
inline constexpr uint16_t kMaxGsoSize = 0xfffe;
// The most segments one frame can become: the largest payload over the smallest gso_size.
inline constexpr uint32_t kMaxSegmentCount = (65535 + kMinGsoSize - 1) / kMinGsoSize;

enum class GsoType : uint8_t { kNone, kTcpV4, kTcpV6 };

// A frame's offload state.
struct OffloadInfo {
  GsoType gso_type = GsoType::kNone;
  bool ecn = false;         // VIRTIO_NET_HDR_GSO_ECN: the guest's TCP uses ECN (CWR may be set)
  uint16_t gso_size = 0;    // payload bytes per segment (the MSS); meaningful with a gso_type
  uint16_t hdr_len = 0;     // the guest's hint of its header length; never trusted
  bool needs_csum = false;  // the checksum at csum_start + csum_offset is to be completed
  uint16_t csum_start = 0;  // from the start of the Ethernet header
  uint16_t csum_offset = 0;
  bool data_valid = false;  // VIRTIO_NET_HDR_F_DATA_VALID: checksums verified (toward a guest)

  bool operator==(const OffloadInfo&) const = default;
};

// Why a header or frame was refused.
enum class OffloadError : uint8_t {
  kOk,
  kHeaderTooShort,      // fewer than kVirtioNetHdrSize bytes of virtio_net_hdr
  kUnknownGsoType,      // gso_type not NONE, TCPV4 or TCPV6 (UDP and UDP_L4 not offered)
  kEcnWithoutGso,       // GSO_ECN on gso_type NONE (Linux: -EINVAL)
  kGsoSizeOutOfRange,   // gso_size < kMinGsoSize or 0xffff (GSO_BY_FRAGS)
  kCsumNotTcp,          // GSO with NEEDS_CSUM whose checksum is not the TCP header's
  kNotGso,              // plan_tcp_segmentation() on gso_type NONE
  kFrameTooLarge,       // more than kMaxFrameSize bytes
  kCsumOutOfFrame,      // csum_start past the end, or the checksum field not inside the frame
  kHdrLenPastFrame,     // hdr_len larger than the frame (Linux's tun refuses it too)
  kTruncatedHeaders,    // Ethernet, VLAN, IP or TCP header (with options) past the frame
  kNotIp,               // EtherType neither IPv4 nor IPv6 (after at most one 802.1Q tag)
  kIpVersionMismatch,   // EtherType or IP version disagrees with the gso_type
  kIpv4HeaderTooShort,  // IHL < 5
  kIpv4Fragment,        // MF set or a fragment offset: not a whole TCP segment
  kIpLengthMismatch,    // IPv4 total length / IPv6 payload length is not the frame's
  kNotTcp,              // IPv4 protocol or IPv6 next header not TCP (no extension headers)
  kTcpHeaderTooShort,   // TCP data offset < 5
  kNoRoom,              // software_offload(): the caller had no room for a segment
};

const char* offload_error_text(OffloadError e);

// What a port does with the virtio_net_hdr (`hdr_size` bytes) of a frame it received into
// memory of its own (a vhost-user guest's frame copied out of its ring, a tap's read): checks
// it as Linux would (decode_virtio_net_hdr, plan_tcp_segmentation), completes a checksum left
// to do in `frame`, and for a large TCP segment fills `*out` for the switch (a segment no
// larger than gso_size is an ordinary frame, as Linux treats it). *csum_completed says whether
// a checksum was completed. On an error the frame is to be dropped.
OffloadError take_frame_offload(const uint8_t* hdr, uint32_t hdr_size, uint8_t* frame,
                                uint32_t size, FrameOffload* out, bool* csum_completed);
// The virtio_net_hdr (`hdr_size` bytes, num_buffers 0) of a frame going to a port that takes
// offloads: zero for an ordinary frame; a large segment's GSO state, hdr_len its headers' size.
void frame_offload_header(const uint8_t* frame, uint32_t size, const FrameOffload& offload,
                          uint8_t* hdr, uint32_t hdr_size);

// The compact form frames carry through the switch (frame.h) and back. hdr_len and data_valid
// do not travel (hdr_len is recomputed where a header is written; data_valid is per port).
FrameOffload frame_offload(const OffloadInfo& info);
OffloadInfo offload_info(const FrameOffload& offload);

// Reads a virtio_net_hdr of `size` bytes (10 or 12; more is ignored). On error `*out` is left
// unchanged. Refuses what virtio_net_hdr_to_skb() refuses (unknown gso types, ECN without one,
// gso_size 0 or GSO_BY_FRAGS, a TCP GSO checksum field other than the TCP checksum) and a
// gso_size below kMinGsoSize. Unknown flag bits are ignored, as Linux does; GSO without
// NEEDS_CSUM is accepted (the spec says the driver MUST set it, Linux accepts it and recomputes
// the pseudo-header; segmentation here computes the checksum in full either way).
OffloadError decode_virtio_net_hdr(const uint8_t* hdr, uint32_t size, OffloadInfo* out);

// Writes `info` as a virtio_net_hdr of `size` bytes (10 or 12; num_buffers is written 0, the
// receive path sets it).
void encode_virtio_net_hdr(const OffloadInfo& info, uint8_t* hdr, uint32_t size);

// The Internet checksum (RFC 1071) pieces: add `size` bytes as big-endian 16-bit words to a
// running sum (an odd last byte is padded with zero: only the last piece may be odd), fold it to
// 16 bits (not inverted).
uint64_t checksum_add(uint64_t sum, const uint8_t* bytes, uint32_t size);
uint16_t checksum_fold(uint64_t sum);

// Completes a NEEDS_CSUM checksum in place: the one's complement sum over [csum_start, size),
// the field at csum_start + csum_offset (the guest's pseudo-header sum) included, is stored
// folded and inverted in that field, big-endian. false (frame untouched) when csum_start >= size
// or the field does not lie inside the frame. A result of 0 is stored as 0 (0 and 0xffff are the
// same one's complement zero to a TCP receiver), unless `udp`: UDP sends 0 as 0xffff, 0 meaning
// "no checksum" there (RFC 768).
bool complete_checksum(uint8_t* frame, uint32_t size, uint32_t csum_start, uint32_t csum_offset,
                       bool udp = false);

// How one TCP GSO frame is cut: where its headers are and what each segment holds.
struct TcpSegmentation {
  uint32_t l3_offset = 0;    // the IP header (after Ethernet and the tag, if any)
  uint32_t l4_offset = 0;    // the TCP header
  uint32_t header_size = 0;  // Ethernet through TCP options: copied into every segment
  uint32_t payload_size = 0;
  uint32_t gso_size = 0;
  uint32_t segment_count = 0;  // 1 when not cut (payload_size <= gso_size)
  bool ipv6 = false;
  bool cut = false;          // false: the frame goes out whole, its checksum completed
  bool needs_csum = false;   // the frame's NEEDS_CSUM (for the whole-frame case)
  uint16_t csum_offset = 0;  // (csum_start is l4_offset when needs_csum)

  // Bytes of segment `index` (< segment_count).
  uint32_t segment_size(uint32_t index) const {
    if (!cut) return header_size + payload_size;
    uint32_t first = index * gso_size;
    uint32_t rest = payload_size - first;
    return header_size + (rest < gso_size ? rest : gso_size);
  }
};

// Checks a TCP GSO frame of `size` bytes against `info` and says how it is cut; every refusal
// named above. Reads only [frame, frame + size).
OffloadError plan_tcp_segmentation(const uint8_t* frame, uint32_t size, const OffloadInfo& info,
                                   TcpSegmentation* plan);

// Writes segment `index` of the frame `plan` describes to `out`, which has room for
// plan.segment_size(index) bytes; returns that size. `frame` is the frame the plan was made of.
uint32_t write_tcp_segment(const uint8_t* frame, const TcpSegmentation& plan, uint32_t index,
                           uint8_t* out);

// The software fallback for one frame toward a port that takes no offloads: `next(size)` is
// asked for room for each output frame in turn (uint8_t*, nullptr when there is none: kNoRoom,
// the frames written so far stay written). gso_type NONE: one frame of at least an Ethernet
// header, its checksum completed when NEEDS_CSUM (as UDP when csum_offset is UDP's, 6). TCP GSO:
// the segments, as above.
template <typename Next>
OffloadError software_offload(const uint8_t* frame, uint32_t size, const OffloadInfo& info,
                              Next&& next);

// ---- implementation of the template ----

OffloadError check_plain_frame(uint32_t size, const OffloadInfo& info);
void write_plain_frame(const uint8_t* frame, uint32_t size, const OffloadInfo& info, uint8_t* out);

template <typename Next>
OffloadError software_offload(const uint8_t* frame, uint32_t size, const OffloadInfo& info,
                              Next&& next) {
  if (info.gso_type == GsoType::kNone) {
    OffloadError e = check_plain_frame(size, info);
    if (e != OffloadError::kOk) return e;
    uint8_t* out = next(size);
    if (out == nullptr) return OffloadError::kNoRoom;
    write_plain_frame(frame, size, info, out);
    return OffloadError::kOk;
  }
  TcpSegmentation plan;
  OffloadError e = plan_tcp_segmentation(frame, size, info, &plan);
  if (e != OffloadError::kOk) return e;
  for (uint32_t i = 0; i < plan.segment_count; ++i) {
    uint8_t* out = next(plan.segment_size(i));
    if (out == nullptr) return OffloadError::kNoRoom;
    write_tcp_segment(frame, plan, i, out);
  }
  return OffloadError::kOk;
}

}  // namespace qswitch::sw
