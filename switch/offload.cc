// switch/offload.cc: see offload.h for the theory of operation.
#include "switch/offload.h"

#include <cstring>

#include "switch/frame.h"

namespace qswitch::sw {
namespace {

// include/uapi/linux/virtio_net.h
constexpr uint8_t kFlagNeedsCsum = 1;
constexpr uint8_t kFlagDataValid = 2;
constexpr uint8_t kGsoNone = 0;
constexpr uint8_t kGsoTcpV4 = 1;
constexpr uint8_t kGsoTcpV6 = 4;
constexpr uint8_t kGsoEcn = 0x80;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint32_t kEthHeaderSize = 14;
constexpr uint32_t kVlanTagSize = 4;
constexpr uint32_t kIpv4MinHeaderSize = 20;
constexpr uint32_t kIpv6HeaderSize = 40;
constexpr uint32_t kTcpMinHeaderSize = 20;
constexpr uint16_t kTcpCsumOffset = 16;  // offsetof(struct tcphdr, check)
constexpr uint16_t kUdpCsumOffset = 6;   // offsetof(struct udphdr, check)
constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpPsh = 0x08;
constexpr uint8_t kTcpCwr = 0x80;

uint16_t load_le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
void store_le16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}

// The IPv4 or IPv6 pseudo-header sum (RFC 793 section 3.1, RFC 8200 section 8.1) for a TCP
// segment of `tcp_size` bytes; `ip` is the segment's IP header.
uint64_t tcp_pseudo_header_sum(const uint8_t* ip, bool ipv6, uint32_t tcp_size) {
  uint64_t sum = 0;
  if (ipv6) {
    sum = checksum_add(sum, ip + 8, 32);  // source and destination
    sum += tcp_size >> 16;
    sum += tcp_size & 0xffff;
  } else {
    sum = checksum_add(sum, ip + 12, 8);
    sum += tcp_size;
  }
  return sum + kIpProtoTcp;
}

}  // namespace

const char* offload_error_text(OffloadError e) {
  switch (e) {
    case OffloadError::kOk:
      return "ok";
    case OffloadError::kHeaderTooShort:
      return "virtio_net_hdr shorter than 10 bytes";
    case OffloadError::kUnknownGsoType:
      return "gso_type is not none, TCPv4 or TCPv6";
    case OffloadError::kEcnWithoutGso:
      return "GSO_ECN without a gso_type";
    case OffloadError::kGsoSizeOutOfRange:
      return "gso_size below 64 or 65535";
    case OffloadError::kCsumNotTcp:
      return "GSO checksum field is not the TCP header's";
    case OffloadError::kNotGso:
      return "frame has no gso_type";
    case OffloadError::kFrameTooLarge:
      return "frame larger than 65549 bytes";
    case OffloadError::kCsumOutOfFrame:
      return "checksum start or field outside the frame";
    case OffloadError::kHdrLenPastFrame:
      return "hdr_len larger than the frame";
    case OffloadError::kTruncatedHeaders:
      return "headers run past the end of the frame";
    case OffloadError::kNotIp:
      return "EtherType is neither IPv4 nor IPv6";
    case OffloadError::kIpVersionMismatch:
      return "IP version disagrees with gso_type";
    case OffloadError::kIpv4HeaderTooShort:
      return "IPv4 header length below 20 bytes";
    case OffloadError::kIpv4Fragment:
      return "IPv4 fragment";
    case OffloadError::kIpLengthMismatch:
      return "IP length disagrees with the frame length";
    case OffloadError::kNotTcp:
      return "IP payload is not TCP";
    case OffloadError::kTcpHeaderTooShort:
      return "TCP data offset below 20 bytes";
    case OffloadError::kNoRoom:
      return "no room for an output frame";
  }
  return "unknown offload error";
}

// virtio 1.2 section 5.1.6.2; Linux include/linux/virtio_net.h virtio_net_hdr_to_skb().
OffloadError decode_virtio_net_hdr(const uint8_t* hdr, uint32_t size, OffloadInfo* out) {
  if (size < kVirtioNetHdrSize) return OffloadError::kHeaderTooShort;
  OffloadInfo info;
  const uint8_t flags = hdr[0];
  const uint8_t gso = hdr[1];
  info.hdr_len = load_le16(hdr + 2);
  info.gso_size = load_le16(hdr + 4);
  info.csum_start = load_le16(hdr + 6);
  info.csum_offset = load_le16(hdr + 8);
  info.needs_csum = (flags & kFlagNeedsCsum) != 0;
  info.data_valid = (flags & kFlagDataValid) != 0;
  if (gso != kGsoNone) {
    switch (gso & ~kGsoEcn) {
      case kGsoTcpV4:
        info.gso_type = GsoType::kTcpV4;
        break;
      case kGsoTcpV6:
        info.gso_type = GsoType::kTcpV6;
        break;
      case kGsoNone:  // the ECN bit alone
        return OffloadError::kEcnWithoutGso;
      default:
        return OffloadError::kUnknownGsoType;
    }
    info.ecn = (gso & kGsoEcn) != 0;
    if (info.gso_size < kMinGsoSize || info.gso_size > kMaxGsoSize) {
      return OffloadError::kGsoSizeOutOfRange;
    }
    // virtio_net_hdr_to_skb(): a TCP GSO packet's partial checksum must be TCP's.
    if (info.needs_csum && info.csum_offset != kTcpCsumOffset) return OffloadError::kCsumNotTcp;
  }
  *out = info;
  return OffloadError::kOk;
}

void encode_virtio_net_hdr(const OffloadInfo& info, uint8_t* hdr, uint32_t size) {
  uint8_t flags = 0;
  if (info.needs_csum) flags |= kFlagNeedsCsum;
  if (info.data_valid) flags |= kFlagDataValid;
  uint8_t gso = kGsoNone;
  if (info.gso_type == GsoType::kTcpV4) gso = kGsoTcpV4;
  if (info.gso_type == GsoType::kTcpV6) gso = kGsoTcpV6;
  if (gso != kGsoNone && info.ecn) gso |= kGsoEcn;
  hdr[0] = flags;
  hdr[1] = gso;
  store_le16(hdr + 2, info.hdr_len);
  store_le16(hdr + 4, gso == kGsoNone ? 0 : info.gso_size);
  store_le16(hdr + 6, info.needs_csum ? info.csum_start : 0);
  store_le16(hdr + 8, info.needs_csum ? info.csum_offset : 0);
  if (size >= kVirtioNetHdrMrgSize) store_le16(hdr + 10, 0);
}

uint64_t checksum_add(uint64_t sum, const uint8_t* bytes, uint32_t size) {
  uint32_t i = 0;
  for (; i + 1 < size; i += 2) sum += static_cast<uint64_t>((bytes[i] << 8) | bytes[i + 1]);
  if (i < size) sum += static_cast<uint64_t>(bytes[i]) << 8;
  return sum;
}

uint16_t checksum_fold(uint64_t sum) {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

bool complete_checksum(uint8_t* frame, uint32_t size, uint32_t csum_start, uint32_t csum_offset,
                       bool udp) {
  if (csum_start >= size) return false;
  if (uint64_t{csum_start} + csum_offset + 2 > size) return false;
  uint16_t csum =
      static_cast<uint16_t>(~checksum_fold(checksum_add(0, frame + csum_start, size - csum_start)));
  if (udp && csum == 0) csum = 0xffff;
  store_be16(frame + csum_start + csum_offset, csum);
  return true;
}

OffloadError check_plain_frame(uint32_t size, const OffloadInfo& info) {
  if (size < kEthHeaderSize) return OffloadError::kTruncatedHeaders;
  if (size > kMaxFrameSize) return OffloadError::kFrameTooLarge;
  if (info.hdr_len > size) return OffloadError::kHdrLenPastFrame;
  if (info.needs_csum &&
      (info.csum_start >= size || uint32_t{info.csum_start} + info.csum_offset + 2 > size)) {
    return OffloadError::kCsumOutOfFrame;
  }
  return OffloadError::kOk;
}

void write_plain_frame(const uint8_t* frame, uint32_t size, const OffloadInfo& info, uint8_t* out) {
  std::memcpy(out, frame, size);
  if (info.needs_csum) {
    complete_checksum(out, size, info.csum_start, info.csum_offset,
                      info.csum_offset == kUdpCsumOffset);
  }
}

// The checks of virtio_net_hdr_to_skb(), inet_gso_segment()/ipv6_gso_segment() and
// tcp_gso_segment(), plus what the frame must be for the cut to be a TCP stream's: not a
// fragment, IP lengths that are the frame's (Linux would cut trailing bytes into the stream).
OffloadError plan_tcp_segmentation(const uint8_t* frame, uint32_t size, const OffloadInfo& info,
                                   TcpSegmentation* plan) {
  if (info.gso_type == GsoType::kNone) return OffloadError::kNotGso;
  if (info.gso_size < kMinGsoSize || info.gso_size > kMaxGsoSize) {
    return OffloadError::kGsoSizeOutOfRange;
  }
  if (size > kMaxFrameSize) return OffloadError::kFrameTooLarge;
  if (info.hdr_len > size) return OffloadError::kHdrLenPastFrame;
  if (info.needs_csum && info.csum_offset != kTcpCsumOffset) return OffloadError::kCsumNotTcp;

  TcpSegmentation p;
  const bool want_ipv6 = info.gso_type == GsoType::kTcpV6;
  if (size < kEthHeaderSize) return OffloadError::kTruncatedHeaders;
  uint32_t l3 = kEthHeaderSize;
  uint16_t ethertype = load_be16(frame + 12);
  if (ethertype == kEtherTypeVlan) {
    if (size < kEthHeaderSize + kVlanTagSize) return OffloadError::kTruncatedHeaders;
    ethertype = load_be16(frame + 16);
    l3 += kVlanTagSize;
  }
  if (ethertype != kEtherTypeIpv4 && ethertype != kEtherTypeIpv6) return OffloadError::kNotIp;
  if ((ethertype == kEtherTypeIpv6) != want_ipv6) return OffloadError::kIpVersionMismatch;

  const uint8_t* ip = frame + l3;
  uint32_t l4 = 0;
  if (!want_ipv6) {
    if (size - l3 < kIpv4MinHeaderSize) return OffloadError::kTruncatedHeaders;
    if ((ip[0] >> 4) != 4) return OffloadError::kIpVersionMismatch;
    const uint32_t ihl = (ip[0] & 0x0fu) * 4;
    if (ihl < kIpv4MinHeaderSize) return OffloadError::kIpv4HeaderTooShort;
    if (size - l3 < ihl) return OffloadError::kTruncatedHeaders;
    if ((load_be16(ip + 6) & 0x3fff) != 0) return OffloadError::kIpv4Fragment;  // MF, offset
    if (load_be16(ip + 2) != size - l3) return OffloadError::kIpLengthMismatch;
    if (ip[9] != kIpProtoTcp) return OffloadError::kNotTcp;
    l4 = l3 + ihl;
  } else {
    if (size - l3 < kIpv6HeaderSize) return OffloadError::kTruncatedHeaders;
    if ((ip[0] >> 4) != 6) return OffloadError::kIpVersionMismatch;
    if (load_be16(ip + 4) != size - l3 - kIpv6HeaderSize) return OffloadError::kIpLengthMismatch;
    if (ip[6] != kIpProtoTcp) return OffloadError::kNotTcp;
    l4 = l3 + kIpv6HeaderSize;
  }

  if (size - l4 < kTcpMinHeaderSize) return OffloadError::kTruncatedHeaders;
  const uint32_t thlen = (frame[l4 + 12] >> 4) * 4u;
  if (thlen < kTcpMinHeaderSize) return OffloadError::kTcpHeaderTooShort;
  if (size - l4 < thlen) return OffloadError::kTruncatedHeaders;
  if (info.needs_csum && info.csum_start != l4) return OffloadError::kCsumNotTcp;

  p.l3_offset = l3;
  p.l4_offset = l4;
  p.header_size = l4 + thlen;
  p.payload_size = size - p.header_size;
  p.gso_size = info.gso_size;
  p.ipv6 = want_ipv6;
  p.needs_csum = info.needs_csum;
  p.csum_offset = info.csum_offset;
  p.cut = p.payload_size > p.gso_size;
  p.segment_count = p.cut ? (p.payload_size + p.gso_size - 1) / p.gso_size : 1;
  *plan = p;
  return OffloadError::kOk;
}

uint32_t write_tcp_segment(const uint8_t* frame, const TcpSegmentation& plan, uint32_t index,
                           uint8_t* out) {
  const uint32_t seg_size = plan.segment_size(index);
  if (!plan.cut) {
    std::memcpy(out, frame, seg_size);
    if (plan.needs_csum) complete_checksum(out, seg_size, plan.l4_offset, plan.csum_offset);
    return seg_size;
  }
  const uint32_t offset = index * plan.gso_size;
  const uint32_t payload = seg_size - plan.header_size;
  std::memcpy(out, frame, plan.header_size);
  std::memcpy(out + plan.header_size, frame + plan.header_size + offset, payload);

  uint8_t* ip = out + plan.l3_offset;
  if (plan.ipv6) {
    store_be16(ip + 4, static_cast<uint16_t>(seg_size - plan.l3_offset - kIpv6HeaderSize));
  } else {
    // inet_gso_segment(): id++ per segment, total length, header checksum.
    const uint32_t ihl = plan.l4_offset - plan.l3_offset;
    store_be16(ip + 2, static_cast<uint16_t>(seg_size - plan.l3_offset));
    store_be16(ip + 4, static_cast<uint16_t>(load_be16(ip + 4) + index));
    store_be16(ip + 10, 0);
    store_be16(ip + 10, static_cast<uint16_t>(~checksum_fold(checksum_add(0, ip, ihl))));
  }

  // tcp_gso_segment(): seq, FIN/PSH on the last only, CWR on the first only, the checksum.
  uint8_t* th = out + plan.l4_offset;
  store_be32(th + 4, load_be32(th + 4) + offset);
  if (index + 1 != plan.segment_count) th[13] &= static_cast<uint8_t>(~(kTcpFin | kTcpPsh));
  if (index != 0) th[13] &= static_cast<uint8_t>(~kTcpCwr);
  const uint32_t tcp_size = seg_size - plan.l4_offset;
  store_be16(th + kTcpCsumOffset, 0);
  uint64_t sum = tcp_pseudo_header_sum(ip, plan.ipv6, tcp_size);
  sum = checksum_add(sum, th, tcp_size);
  store_be16(th + kTcpCsumOffset, static_cast<uint16_t>(~checksum_fold(sum)));
  return seg_size;
}

FrameOffload frame_offload(const OffloadInfo& info) {
  FrameOffload o;
  o.gso = info.gso_type == GsoType::kTcpV4   ? FrameOffload::kGsoTcpV4
          : info.gso_type == GsoType::kTcpV6 ? FrameOffload::kGsoTcpV6
                                             : uint8_t{0};
  if (o.gso != 0) {
    if (info.ecn) o.gso |= FrameOffload::kGsoEcn;
    o.gso_size = info.gso_size;
  }
  if (info.needs_csum) {
    o.flags = FrameOffload::kNeedsCsum;
    o.csum_start = info.csum_start;
    o.csum_offset = info.csum_offset;
  }
  return o;
}

OffloadInfo offload_info(const FrameOffload& offload) {
  OffloadInfo info;
  const uint8_t type = offload.gso & ~FrameOffload::kGsoEcn;
  info.gso_type = type == FrameOffload::kGsoTcpV4   ? GsoType::kTcpV4
                  : type == FrameOffload::kGsoTcpV6 ? GsoType::kTcpV6
                                                    : GsoType::kNone;
  info.ecn = (offload.gso & FrameOffload::kGsoEcn) != 0;
  info.gso_size = offload.gso_size;
  info.needs_csum = (offload.flags & FrameOffload::kNeedsCsum) != 0;
  info.csum_start = offload.csum_start;
  info.csum_offset = offload.csum_offset;
  return info;
}

OffloadError take_frame_offload(const uint8_t* hdr, uint32_t hdr_size, uint8_t* frame,
                                uint32_t size, FrameOffload* out, bool* csum_completed) {
  *out = FrameOffload{};
  *csum_completed = false;
  // The common case, an ordinary frame (no flag, no gso type): nothing to check or do, as the
  // decoder would find (it ignores every other field then).
  if (hdr_size >= kVirtioNetHdrSize && hdr[0] == 0 && hdr[1] == 0) return OffloadError::kOk;
  OffloadInfo info;
  OffloadError e = decode_virtio_net_hdr(hdr, hdr_size, &info);
  if (e != OffloadError::kOk) return e;
  if (info.gso_type != GsoType::kNone) {
    TcpSegmentation plan;
    e = plan_tcp_segmentation(frame, size, info, &plan);
    if (e != OffloadError::kOk) return e;
    if (plan.cut) {
      *out = frame_offload(info);
      return OffloadError::kOk;
    }
  }
  if (!info.needs_csum) return OffloadError::kOk;
  constexpr uint16_t kUdpCsumOffset = 6;
  if (!complete_checksum(frame, size, info.csum_start, info.csum_offset,
                         info.csum_offset == kUdpCsumOffset)) {
    return OffloadError::kCsumOutOfFrame;
  }
  *csum_completed = true;
  return OffloadError::kOk;
}

void frame_offload_header(const uint8_t* frame, uint32_t size, const FrameOffload& offload,
                          uint8_t* hdr, uint32_t hdr_size) {
  std::memset(hdr, 0, hdr_size);
  if (!offload.any()) return;
  OffloadInfo info = offload_info(offload);
  TcpSegmentation plan;
  if (plan_tcp_segmentation(frame, size, info, &plan) == OffloadError::kOk) {
    info.hdr_len = static_cast<uint16_t>(plan.header_size);
  }
  encode_virtio_net_hdr(info, hdr, hdr_size);
}

}  // namespace qswitch::sw
