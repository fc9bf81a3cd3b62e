// tests/switch/offload_test.cc: the virtio_net_hdr codec, checksum completion and TCP
// segmentation (switch/offload.h). Reference frames are built here and every segment is checked
// by a parser and checksum written here, independent of the module: checksums recomputed from
// scratch, lengths, ids, sequence continuity, flags, payloads concatenated back to the input's.
// One small case (3 segments) is compared byte for byte with bytes derived by hand (and checked
// with a separate script): the IPv4 and TCP checksums are in the literals.
#include "switch/offload.h"

#include "switch/frame.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace qswitch::sw {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- an independent reference: RFC 1071 checksum, word by word ----

uint32_t ref_sum(const Bytes& b, size_t from, size_t to) {
  uint32_t s = 0;
  for (size_t i = from; i < to; i += 2) {
    uint32_t hi = b[i];
    uint32_t lo = i + 1 < to ? b[i + 1] : 0;
    s += (hi << 8) | lo;
    s = (s & 0xffff) + (s >> 16);
  }
  return s;
}
uint16_t ref_fold(uint32_t s) {
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}
uint16_t be16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }
uint32_t be32(const Bytes& b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}
void put16(Bytes& b, size_t at, uint32_t v) {
  b[at] = static_cast<uint8_t>(v >> 8);
  b[at + 1] = static_cast<uint8_t>(v);
}
void put32(Bytes& b, size_t at, uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v);
}

// The TCP pseudo-header sum of `frame` whose IP header is at `l3` (v4 or v6), for `tcp_len`.
uint32_t ref_pseudo(const Bytes& f, size_t l3, bool v6, uint32_t tcp_len) {
  uint32_t s = v6 ? ref_sum(f, l3 + 8, l3 + 40) : ref_sum(f, l3 + 12, l3 + 20);
  s += 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
  return ref_fold(s);
}

// ---- reference frames ----

struct Spec {
  bool vlan = false;
  bool v6 = false;
  uint32_t ip_options = 0;   // bytes, multiple of 4 (IPv4)
  uint32_t tcp_options = 0;  // bytes, multiple of 4
  uint32_t payload = 65000;
  uint16_t gso_size = 1448;
  uint8_t flags = 0x10 | 0x08 | 0x01 | 0x80;  // ACK PSH FIN CWR
  uint16_t id = 0xfffe;                       // wraps after the second segment
  uint32_t seq = 0xffffff00;                  // wraps too
  bool needs_csum = true;

  size_t l3() const { return vlan ? 18 : 14; }
  size_t l4() const { return l3() + (v6 ? 40 : 20 + ip_options); }
  size_t headers() const { return l4() + 20 + tcp_options; }
};

struct Input {
  Bytes frame;
  OffloadInfo info;
};

Input build(const Spec& s) {
  Input in;
  Bytes& f = in.frame;
  f.assign(s.headers() + s.payload, 0);
  for (int i = 0; i < 6; ++i) {
    f[i] = static_cast<uint8_t>(0x02 + i * 0x11);
    f[6 + i] = static_cast<uint8_t>(0x52 + i);
  }
  size_t at = 12;
  if (s.vlan) {
    put16(f, at, 0x8100);
    put16(f, at + 2, 0x2007);  // PCP 1, VID 7
    at += 4;
  }
  put16(f, at, s.v6 ? 0x86dd : 0x0800);
  const size_t l3 = s.l3();
  if (s.v6) {
    put32(f, l3, 0x60012345);  // version 6, traffic class 0, flow label 0x12345
    put16(f, l3 + 4, static_cast<uint32_t>(f.size() - l3 - 40));
    f[l3 + 6] = 6;
    f[l3 + 7] = 64;
    for (int i = 0; i < 16; ++i) {
      f[l3 + 8 + i] = static_cast<uint8_t>(0x20 + i);
      f[l3 + 24 + i] = static_cast<uint8_t>(0xa0 + i);
    }
  } else {
    f[l3] = static_cast<uint8_t>(0x40 | (5 + s.ip_options / 4));
    f[l3 + 1] = 0x02;  // ECT(0)
    put16(f, l3 + 2, static_cast<uint32_t>(f.size() - l3));
    put16(f, l3 + 4, s.id);
    put16(f, l3 + 6, 0x4000);  // DF
    f[l3 + 8] = 64;
    f[l3 + 9] = 6;
    put32(f, l3 + 12, 0x0a000001);
    put32(f, l3 + 16, 0xc0a80102);
    for (uint32_t i = 0; i < s.ip_options; ++i) f[l3 + 20 + i] = 0x01;  // NOPs
    if (s.ip_options >= 4) {
      f[l3 + 20] = 0x94;  // Router Alert (RFC 2113), copied flag set
      f[l3 + 21] = 4;
      f[l3 + 22] = 0;
      f[l3 + 23] = 0;
    }
    put16(f, l3 + 10, static_cast<uint16_t>(~ref_sum(f, l3, s.l4())));
  }
  const size_t l4 = s.l4();
  put16(f, l4, 40000);
  put16(f, l4 + 2, 5201);
  put32(f, l4 + 4, s.seq);
  put32(f, l4 + 8, 0x11223344);
  f[l4 + 12] = static_cast<uint8_t>((5 + s.tcp_options / 4) << 4);
  f[l4 + 13] = s.flags;
  put16(f, l4 + 14, 502);
  for (uint32_t i = 0; i < s.tcp_options; ++i) f[l4 + 20 + i] = 0x01;
  if (s.tcp_options >= 12) {  // NOP NOP timestamps
    f[l4 + 22] = 8;
    f[l4 + 23] = 10;
    put32(f, l4 + 24, 0xdeadbeef);
    put32(f, l4 + 28, 0x01020304);
  }
  for (uint32_t i = 0; i < s.payload; ++i) {
    f[s.headers() + i] = static_cast<uint8_t>(i * 7 + (i >> 8));
  }
  const uint32_t tcp_len = static_cast<uint32_t>(f.size() - l4);
  if (s.needs_csum) {
    // What a guest leaves: the pseudo-header sum, folded, not inverted (tcp_v4_send_check).
    put16(f, l4 + 16, ref_pseudo(f, l3, s.v6, tcp_len));
  } else {
    put16(f, l4 + 16,
          static_cast<uint16_t>(
              ~ref_fold(ref_pseudo(f, l3, s.v6, tcp_len) + ref_sum(f, l4, f.size()))));
  }
  in.info.gso_type = s.v6 ? GsoType::kTcpV6 : GsoType::kTcpV4;
  in.info.gso_size = s.gso_size;
  in.info.hdr_len = static_cast<uint16_t>(s.headers());
  in.info.needs_csum = s.needs_csum;
  in.info.csum_start = static_cast<uint16_t>(l4);
  in.info.csum_offset = 16;
  return in;
}

std::vector<Bytes> run(const Input& in, OffloadError* error = nullptr) {
  std::vector<Bytes> out;
  OffloadError e = software_offload(in.frame.data(), static_cast<uint32_t>(in.frame.size()),
                                    in.info, [&](uint32_t size) {
                                      out.emplace_back(size, 0xee);
                                      return out.back().data();
                                    });
  if (error != nullptr) *error = e;
  return out;
}

// The independent checker: every segment against the input and the spec.
void check_segments(const Spec& s, const Input& in, const std::vector<Bytes>& segs) {
  const size_t l3 = s.l3(), l4 = s.l4(), hdrs = s.headers();
  const size_t expected_count = (s.payload + s.gso_size - 1) / s.gso_size;
  ASSERT_EQ(segs.size(), expected_count);
  Bytes payload;
  for (size_t i = 0; i < segs.size(); ++i) {
    SCOPED_TRACE("segment " + std::to_string(i));
    const Bytes& g = segs[i];
    const bool first = i == 0, last = i + 1 == segs.size();
    ASSERT_GT(g.size(), hdrs);
    ASSERT_LE(g.size(), hdrs + s.gso_size);
    if (!last) {
      ASSERT_EQ(g.size(), hdrs + s.gso_size);
    }
    // Ethernet and tag unchanged.
    EXPECT_TRUE(std::equal(g.begin(), g.begin() + static_cast<long>(l3), in.frame.begin()));
    if (s.v6) {
      EXPECT_EQ(be16(g, l3 + 4), g.size() - l3 - 40);
      EXPECT_TRUE(std::equal(g.begin() + static_cast<long>(l3),
                             g.begin() + static_cast<long>(l3 + 4),
                             in.frame.begin() + static_cast<long>(l3)));
      EXPECT_TRUE(std::equal(g.begin() + static_cast<long>(l3 + 6),
                             g.begin() + static_cast<long>(l4),
                             in.frame.begin() + static_cast<long>(l3 + 6)));
    } else {
      EXPECT_EQ(be16(g, l3 + 2), g.size() - l3);
      EXPECT_EQ(be16(g, l3 + 4), static_cast<uint16_t>(s.id + i));
      EXPECT_EQ(ref_sum(g, l3, l4), 0xffff) << "IPv4 header checksum";
      for (size_t k : {l3, l3 + 1, l3 + 6, l3 + 7, l3 + 8, l3 + 9}) EXPECT_EQ(g[k], in.frame[k]);
      EXPECT_TRUE(std::equal(g.begin() + static_cast<long>(l3 + 12),
                             g.begin() + static_cast<long>(l4),
                             in.frame.begin() + static_cast<long>(l3 + 12)));
    }
    // TCP: ports, ack, offset, window, urgent, options unchanged; seq, flags, checksum.
    EXPECT_EQ(be32(g, l4 + 4), s.seq + static_cast<uint32_t>(i * s.gso_size));
    uint8_t flags = s.flags;
    if (!last) flags &= static_cast<uint8_t>(~0x09);
    if (!first) flags &= static_cast<uint8_t>(~0x80);
    EXPECT_EQ(g[l4 + 13], flags);
    for (size_t k : {0, 1, 2, 3, 8, 9, 10, 11, 12, 14, 15, 18, 19}) {
      EXPECT_EQ(g[l4 + k], in.frame[l4 + k]) << "TCP byte " << k;
    }
    EXPECT_TRUE(std::equal(g.begin() + static_cast<long>(l4 + 20),
                           g.begin() + static_cast<long>(hdrs),
                           in.frame.begin() + static_cast<long>(l4 + 20)));
    const uint32_t tcp_len = static_cast<uint32_t>(g.size() - l4);
    EXPECT_EQ(ref_fold(ref_pseudo(g, l3, s.v6, tcp_len) + ref_sum(g, l4, g.size())), 0xffff)
        << "TCP checksum";
    payload.insert(payload.end(), g.begin() + static_cast<long>(hdrs), g.end());
  }
  EXPECT_TRUE(payload == Bytes(in.frame.begin() + static_cast<long>(hdrs), in.frame.end()));
}

void segment_and_check(const Spec& s) {
  Input in = build(s);
  OffloadError e = OffloadError::kNoRoom;
  std::vector<Bytes> segs = run(in, &e);
  ASSERT_EQ(e, OffloadError::kOk) << offload_error_text(e);
  check_segments(s, in, segs);
}

TEST(OffloadSegmentTest, CutsTheLargestTcpV4FrameInto46Segments) {
  Spec s;
  s.payload = 65535 - 40;  // the largest IPv4 TCP payload: 46 segments, the last 335 bytes
  ASSERT_EQ((s.payload + 1447) / 1448, 46u);
  segment_and_check(s);
  s.payload = 65000;
  segment_and_check(s);
}

TEST(OffloadSegmentTest, CutsTcpV4WithIpAndTcpOptions) {
  Spec s;
  s.ip_options = 40;
  s.tcp_options = 12;
  s.payload = 65535 - 60 - 32;
  segment_and_check(s);
}

TEST(OffloadSegmentTest, CutsTcpV4BehindAVlanTag) {
  Spec s;
  s.vlan = true;
  s.tcp_options = 12;
  s.ip_options = 4;
  segment_and_check(s);
}

TEST(OffloadSegmentTest, CutsTcpV6WithAndWithoutTag) {
  Spec s;
  s.v6 = true;
  s.tcp_options = 12;
  s.payload = 65549 - 14 - 40 - 32;  // the largest frame the switch carries (kMaxFrameSize)
  segment_and_check(s);
  s.vlan = true;
  s.payload = 65549 - 18 - 40 - 32;  // the largest frame the switch carries
  segment_and_check(s);
}

TEST(OffloadSegmentTest, ExactMultipleOfGsoSizeAndSmallestGsoSize) {
  Spec s;
  s.payload = 1448 * 3;
  segment_and_check(s);
  s.gso_size = kMinGsoSize;
  s.payload = 65535 - 40;
  segment_and_check(s);  // 1024 segments: kMaxSegmentCount
  EXPECT_EQ(kMaxSegmentCount, 1024u);
}

TEST(OffloadSegmentTest, WithoutNeedsCsumTheChecksumIsStillComputedInFull) {
  Spec s;
  s.needs_csum = false;
  segment_and_check(s);
  s.v6 = true;
  segment_and_check(s);
}

TEST(OffloadSegmentTest, FlagsOtherThanFinPshCwrStayOnEverySegment) {
  Spec s;
  s.flags = 0x10 | 0x40 | 0x20;  // ACK ECE URG
  s.payload = 5000;
  segment_and_check(s);
}

// Eth 02:00:00:00:00:02 <- 02:00:00:00:00:01, IPv4 10.0.0.1 -> 10.0.0.2 id 0x1234 DF ttl 64,
// TCP 4096 -> 80 seq 0x01020304 ack 0x0a0b0c0d flags CWR|ACK|PSH|FIN window 0x2000; payload
// 64 x 0x11, 64 x 0x22, 8 x 0x33; gso_size 64. The guest's TCP field holds the pseudo-header
// sum 0x0a00+0x0001+0x0a00+0x0002+0x0006+0x009c (156 TCP bytes) = 0x14a5.
const Bytes kHandInputHeaders = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00,
                                 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0xb0, 0x12, 0x34, 0x40, 0x00,
                                 0x40, 0x06, 0x14, 0x12, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00,
                                 0x02, 0x10, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b,
                                 0x0c, 0x0d, 0x50, 0x99, 0x20, 0x00, 0x14, 0xa5, 0x00, 0x00};
// Segment 0: total length 0x68, id 0x1234, IP checksum 0x145a, seq +0, flags CWR|ACK (FIN, PSH
// cleared), TCP checksum: pseudo-header 0a00+0001+0a00+0002+0006+0054 = 0x145d; header words
// 1000+0050+0102+0304+0a0b+0c0d+5090+2000 = 0x9afe; payload 32 x 0x1111 = 0x22220; total
// 0x2d17b, folded 0xd17d, inverted 0x2e82. Segment 1: id 0x1235, seq +64, flags ACK (CWR cleared
// too). Segment 2: total length 0x30, id 0x1236, seq +128, flags ACK|PSH|FIN, TCP checksum
// 0x1425 + 0x9b07 + 4 x 0x3333 = 0x17bf8 -> 0x7bf9 -> 0x8406.
const Bytes kHandSegmentHeaders[3] = {
    {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
     0x45, 0x00, 0x00, 0x68, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x14, 0x5a, 0x0a, 0x00,
     0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x10, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04,
     0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x90, 0x20, 0x00, 0x2e, 0x82, 0x00, 0x00},
    {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
     0x45, 0x00, 0x00, 0x68, 0x12, 0x35, 0x40, 0x00, 0x40, 0x06, 0x14, 0x59, 0x0a, 0x00,
     0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x10, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x44,
     0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x10, 0x20, 0x00, 0x0c, 0xa0, 0x00, 0x00},
    {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
     0x45, 0x00, 0x00, 0x30, 0x12, 0x36, 0x40, 0x00, 0x40, 0x06, 0x14, 0x90, 0x0a, 0x00,
     0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x10, 0x00, 0x00, 0x50, 0x01, 0x02, 0x03, 0x84,
     0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x19, 0x20, 0x00, 0x84, 0x06, 0x00, 0x00},
};

TEST(OffloadSegmentTest, ThreeSegmentsMatchHandDerivedBytes) {
  Input in;
  in.frame = kHandInputHeaders;
  for (int i = 0; i < 64; ++i) in.frame.push_back(0x11);
  for (int i = 0; i < 64; ++i) in.frame.push_back(0x22);
  for (int i = 0; i < 8; ++i) in.frame.push_back(0x33);
  in.info.gso_type = GsoType::kTcpV4;
  in.info.gso_size = 64;
  in.info.needs_csum = true;
  in.info.csum_start = 34;
  in.info.csum_offset = 16;
  in.info.hdr_len = 54;
  OffloadError e = OffloadError::kNoRoom;
  std::vector<Bytes> segs = run(in, &e);
  ASSERT_EQ(e, OffloadError::kOk);
  ASSERT_EQ(segs.size(), 3u);
  const uint8_t fill[3] = {0x11, 0x22, 0x33};
  const size_t sizes[3] = {64, 64, 8};
  for (int i = 0; i < 3; ++i) {
    Bytes expected = kHandSegmentHeaders[i];
    expected.insert(expected.end(), sizes[i], fill[i]);
    EXPECT_EQ(segs[i], expected) << "segment " << i;
  }
}

TEST(OffloadSegmentTest, PlanSaysHowManyAndHowBig) {
  Spec s;
  s.payload = 3000;
  Input in = build(s);
  TcpSegmentation plan;
  ASSERT_EQ(plan_tcp_segmentation(in.frame.data(), static_cast<uint32_t>(in.frame.size()), in.info,
                                  &plan),
            OffloadError::kOk);
  EXPECT_TRUE(plan.cut);
  EXPECT_EQ(plan.segment_count, 3u);
  EXPECT_EQ(plan.header_size, 54u);
  EXPECT_EQ(plan.segment_size(0), 54u + 1448);
  EXPECT_EQ(plan.segment_size(2), 54u + 3000 - 2 * 1448);
  Bytes out(plan.segment_size(2));
  EXPECT_EQ(write_tcp_segment(in.frame.data(), plan, 2, out.data()), out.size());
}

TEST(OffloadSegmentTest, PayloadNotLargerThanGsoSizeGoesOutWholeWithItsChecksumCompleted) {
  for (uint32_t payload : {0u, 1u, 1447u, 1448u}) {
    for (bool v6 : {false, true}) {
      SCOPED_TRACE(payload);
      Spec s;
      s.v6 = v6;
      s.payload = payload;
      s.id = 77;
      Input in = build(s);
      std::vector<Bytes> segs = run(in);
      ASSERT_EQ(segs.size(), 1u);
      const Bytes& g = segs[0];
      ASSERT_EQ(g.size(), in.frame.size());
      // Only the TCP checksum changed; flags (FIN, PSH, CWR), id, IP checksum are the guest's.
      Bytes expect = in.frame;
      expect[s.l4() + 16] = g[s.l4() + 16];
      expect[s.l4() + 17] = g[s.l4() + 17];
      EXPECT_EQ(g, expect);
      EXPECT_EQ(ref_fold(ref_pseudo(g, s.l3(), v6, static_cast<uint32_t>(g.size() - s.l4())) +
                         ref_sum(g, s.l4(), g.size())),
                0xffff);
    }
  }
}

// ---- refusals ----

OffloadError refusal(const Input& in) {
  OffloadError e = OffloadError::kOk;
  std::vector<Bytes> segs = run(in, &e);
  EXPECT_TRUE(segs.empty());
  return e;
}

TEST(OffloadRefusalTest, EveryMalformedFrameIsRefusedByName) {
  Spec s;
  s.payload = 3000;
  const Input good = build(s);
  const size_t l3 = s.l3(), l4 = s.l4();
  auto with = [&](auto change) {
    Input in = good;
    change(in);
    return refusal(in);
  };
  EXPECT_EQ(with([](Input& in) { in.info.gso_size = 0; }), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(with([](Input& in) { in.info.gso_size = 63; }), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(with([](Input& in) { in.info.gso_size = 0xffff; }), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(with([](Input& in) { in.info.hdr_len = static_cast<uint16_t>(in.frame.size() + 1); }),
            OffloadError::kHdrLenPastFrame);
  EXPECT_EQ(with([](Input& in) { in.info.csum_offset = 6; }), OffloadError::kCsumNotTcp);
  EXPECT_EQ(with([](Input& in) { in.info.csum_start = 14; }), OffloadError::kCsumNotTcp);
  EXPECT_EQ(with([](Input& in) { in.info.gso_type = GsoType::kTcpV6; }),
            OffloadError::kIpVersionMismatch);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3] = 0x65; }), OffloadError::kIpVersionMismatch);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3] = 0x44; }), OffloadError::kIpv4HeaderTooShort);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3 + 6] |= 0x20; }), OffloadError::kIpv4Fragment);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3 + 7] = 1; }), OffloadError::kIpv4Fragment);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3 + 3] ^= 1; }), OffloadError::kIpLengthMismatch);
  EXPECT_EQ(with([](Input& in) { in.frame.push_back(0); }), OffloadError::kIpLengthMismatch);
  EXPECT_EQ(with([&](Input& in) { in.frame[l3 + 9] = 17; }), OffloadError::kNotTcp);
  EXPECT_EQ(with([&](Input& in) { in.frame[l4 + 12] = 0x40; }), OffloadError::kTcpHeaderTooShort);
  EXPECT_EQ(with([](Input& in) { in.frame[12] = 0x08, in.frame[13] = 0x06; }),
            OffloadError::kNotIp);
  EXPECT_EQ(with([](Input& in) { in.frame[12] = 0x81, in.frame[13] = 0x00; }),
            OffloadError::kNotIp);  // a tag whose inner type is the IPv4 version byte's
  EXPECT_EQ(with([](Input& in) { in.frame.resize(kMaxFrameSize + 1); }),
            OffloadError::kFrameTooLarge);
  EXPECT_EQ(with([](Input& in) { in.info.gso_type = GsoType::kNone, in.info.csum_start = 0xfff0; }),
            OffloadError::kCsumOutOfFrame);
  EXPECT_EQ(with([](Input& in) { in.info.gso_type = GsoType::kNone, in.frame.resize(13); }),
            OffloadError::kTruncatedHeaders);  // not even an Ethernet header
  TcpSegmentation plan;
  Input none = good;
  none.info.gso_type = GsoType::kNone;
  EXPECT_EQ(plan_tcp_segmentation(none.frame.data(), 100, none.info, &plan), OffloadError::kNotGso);
}

TEST(OffloadRefusalTest, HeadersCutShortAnywhereAreTruncated) {
  for (bool v6 : {false, true}) {
    for (bool vlan : {false, true}) {
      Spec s;
      s.v6 = v6;
      s.vlan = vlan;
      s.ip_options = v6 ? 0 : 8;
      s.tcp_options = 12;
      s.payload = 0;
      const Input good = build(s);
      for (size_t n = 0; n < good.frame.size(); ++n) {
        SCOPED_TRACE(n);
        Input in = good;
        in.frame.resize(n);
        in.info.needs_csum = false;
        in.info.hdr_len = 0;
        OffloadError e = refusal(in);
        // Cut inside the IP header's fields the length is checked against, or past them.
        EXPECT_TRUE(e == OffloadError::kTruncatedHeaders || e == OffloadError::kIpLengthMismatch)
            << offload_error_text(e);
      }
    }
  }
}

TEST(OffloadRefusalTest, IPv6NextHeaderOtherThanTcpIsRefused) {
  Spec s;
  s.v6 = true;
  s.payload = 3000;
  Input in = build(s);
  in.frame[s.l3() + 6] = 0;  // hop-by-hop options: extension headers are not walked
  EXPECT_EQ(refusal(in), OffloadError::kNotTcp);
  in = build(s);
  in.frame[s.l3() + 5] ^= 1;
  EXPECT_EQ(refusal(in), OffloadError::kIpLengthMismatch);
}

TEST(OffloadRefusalTest, NoRoomStopsAndKeepsWhatWasWritten) {
  Spec s;
  s.payload = 5000;
  Input in = build(s);
  int asked = 0;
  Bytes room(2000);
  OffloadError e =
      software_offload(in.frame.data(), static_cast<uint32_t>(in.frame.size()), in.info,
                       [&](uint32_t) -> uint8_t* { return ++asked <= 2 ? room.data() : nullptr; });
  EXPECT_EQ(e, OffloadError::kNoRoom);
  EXPECT_EQ(asked, 3);
}

TEST(OffloadRefusalTest, EveryErrorHasItsOwnText) {
  std::set<std::string> texts;
  for (int i = 0; i <= static_cast<int>(OffloadError::kNoRoom); ++i) {
    texts.insert(offload_error_text(static_cast<OffloadError>(i)));
  }
  EXPECT_EQ(texts.size(), static_cast<size_t>(OffloadError::kNoRoom) + 1);
}

// ---- the virtio_net_hdr codec ----

Bytes hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t start,
          uint16_t offset) {
  return {flags,
          gso,
          static_cast<uint8_t>(hdr_len),
          static_cast<uint8_t>(hdr_len >> 8),
          static_cast<uint8_t>(gso_size),
          static_cast<uint8_t>(gso_size >> 8),
          static_cast<uint8_t>(start),
          static_cast<uint8_t>(start >> 8),
          static_cast<uint8_t>(offset),
          static_cast<uint8_t>(offset >> 8),
          0x01,
          0x00};
}

OffloadError decode(const Bytes& h, OffloadInfo* info, uint32_t size = 12) {
  return decode_virtio_net_hdr(h.data(), size, info);
}

TEST(OffloadCodecTest, DecodesTso4WithEcnAndChecksum) {
  OffloadInfo info;
  ASSERT_EQ(decode(hdr(0x01, 0x81, 66, 1448, 34, 16), &info), OffloadError::kOk);
  EXPECT_EQ(info.gso_type, GsoType::kTcpV4);
  EXPECT_TRUE(info.ecn);
  EXPECT_EQ(info.gso_size, 1448);
  EXPECT_EQ(info.hdr_len, 66);
  EXPECT_TRUE(info.needs_csum);
  EXPECT_EQ(info.csum_start, 34);
  EXPECT_EQ(info.csum_offset, 16);
  EXPECT_FALSE(info.data_valid);
  ASSERT_EQ(decode(hdr(0x01, 0x04, 74, 1428, 54, 16), &info, 10), OffloadError::kOk);
  EXPECT_EQ(info.gso_type, GsoType::kTcpV6);
  EXPECT_FALSE(info.ecn);
}

TEST(OffloadCodecTest, DecodesPlainChecksumAndDataValidAndIgnoresUnknownFlags) {
  OffloadInfo info;
  ASSERT_EQ(decode(hdr(0x01 | 0x02 | 0x04 | 0x80, 0, 0, 0, 34, 6), &info), OffloadError::kOk);
  EXPECT_EQ(info.gso_type, GsoType::kNone);
  EXPECT_TRUE(info.needs_csum);
  EXPECT_TRUE(info.data_valid);
  EXPECT_EQ(info.csum_offset, 6);  // UDP's: fine without GSO
  // gso_size without a gso_type is not looked at (Linux ignores it too).
  EXPECT_EQ(decode(hdr(0, 0, 0, 1, 0, 0), &info), OffloadError::kOk);
  // GSO without NEEDS_CSUM: accepted, as virtio_net_hdr_to_skb() does.
  ASSERT_EQ(decode(hdr(0, 0x01, 0, 1448, 0, 0), &info), OffloadError::kOk);
  EXPECT_FALSE(info.needs_csum);
}

TEST(OffloadCodecTest, RefusesWhatLinuxRefuses) {
  OffloadInfo info;
  info.gso_size = 4242;
  const OffloadInfo before = info;
  EXPECT_EQ(decode(hdr(1, 1, 0, 1448, 34, 16), &info, 9), OffloadError::kHeaderTooShort);
  EXPECT_EQ(decode(hdr(1, 3, 0, 1448, 34, 6), &info), OffloadError::kUnknownGsoType);  // UDP
  EXPECT_EQ(decode(hdr(1, 5, 0, 1448, 34, 6), &info), OffloadError::kUnknownGsoType);  // UDP_L4
  EXPECT_EQ(decode(hdr(1, 2, 0, 1448, 34, 16), &info), OffloadError::kUnknownGsoType);
  EXPECT_EQ(decode(hdr(1, 0x85, 0, 1448, 34, 6), &info), OffloadError::kUnknownGsoType);
  EXPECT_EQ(decode(hdr(1, 0x80, 0, 1448, 34, 16), &info), OffloadError::kEcnWithoutGso);
  EXPECT_EQ(decode(hdr(1, 1, 0, 0, 34, 16), &info), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(decode(hdr(1, 1, 0, 63, 34, 16), &info), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(decode(hdr(1, 4, 0, 0xffff, 54, 16), &info), OffloadError::kGsoSizeOutOfRange);
  EXPECT_EQ(decode(hdr(1, 1, 0, 1448, 34, 6), &info), OffloadError::kCsumNotTcp);
  EXPECT_EQ(info, before);
}

TEST(OffloadCodecTest, EncodeThenDecodeIsTheSameInfo) {
  OffloadInfo a;
  a.gso_type = GsoType::kTcpV6;
  a.ecn = true;
  a.gso_size = 1428;
  a.hdr_len = 86;
  a.needs_csum = true;
  a.csum_start = 54;
  a.csum_offset = 16;
  Bytes h(12, 0xaa);
  encode_virtio_net_hdr(a, h.data(), 12);
  EXPECT_EQ(h, (Bytes{0x01, 0x84, 86, 0, 0x94, 0x05, 54, 0, 16, 0, 0, 0}));
  OffloadInfo b;
  ASSERT_EQ(decode(h, &b), OffloadError::kOk);
  EXPECT_EQ(a, b);
  OffloadInfo plain;
  plain.data_valid = true;
  Bytes h10(12, 0xaa);
  encode_virtio_net_hdr(plain, h10.data(), 10);
  EXPECT_EQ(h10, (Bytes{0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xaa}));
}

// ---- complete_checksum ----

TEST(OffloadChecksumTest, Rfc1071Example) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2; the checksum is ~0xddf2.
  Bytes b = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x00, 0x00};
  ASSERT_TRUE(complete_checksum(b.data(), 10, 0, 8));
  EXPECT_EQ(be16(b, 8), 0x220d);
  EXPECT_EQ(checksum_fold(checksum_add(0, b.data(), 8)), 0xddf2);
}

// A real TCP/IPv4 frame (10.0.0.1:4096 -> 10.0.0.2:80, PSH|ACK, "hello, qswitch!": an odd TCP
// length) whose TCP checksum 0x8b89 was computed outside this code base.
const Bytes kRealFrame = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
                          0x08, 0x00, 0x45, 0x00, 0x00, 0x37, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06,
                          0x26, 0xbe, 0x0a, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x10, 0x00,
                          0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d, 0x50, 0x18,
                          0x20, 0x00, 0x8b, 0x89, 0x00, 0x00, 'h',  'e',  'l',  'l',  'o',  ',',
                          ' ',  'q',  's',  'w',  'i',  't',  'c',  'h',  '!'};

TEST(OffloadChecksumTest, CompletesARealTcpV4ChecksumFromThePseudoHeaderSeed) {
  Bytes f = kRealFrame;
  ASSERT_EQ(f.size(), 69u);
  // The guest's seed: pseudo-header 0a00+0001+0a00+0002+0006+0023 = 0x142c.
  f[50] = 0x14;
  f[51] = 0x2c;
  ASSERT_TRUE(complete_checksum(f.data(), 69, 34, 16));
  EXPECT_EQ(f, kRealFrame);
  // The same through software_offload (one frame, gso NONE).
  Bytes seeded = kRealFrame;
  seeded[50] = 0x14;
  seeded[51] = 0x2c;
  OffloadInfo info;
  info.needs_csum = true;
  info.csum_start = 34;
  info.csum_offset = 16;
  std::vector<Bytes> out = run(Input{seeded, info});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], kRealFrame);
}

TEST(OffloadChecksumTest, OddLengthPadsTheLastByteWithZero) {
  Bytes b = {0x00, 0x00, 0x12, 0x34, 0x56};  // field, then 0x1234 + 0x5600
  ASSERT_TRUE(complete_checksum(b.data(), 5, 0, 0));
  EXPECT_EQ(be16(b, 0), static_cast<uint16_t>(~(0x1234 + 0x5600)));
  Bytes c = {0xab, 0x00, 0x00};  // csum_start odd-length single byte before the field
  ASSERT_TRUE(complete_checksum(c.data(), 3, 0, 1));
  EXPECT_EQ(be16(c, 1), static_cast<uint16_t>(~0xab00));
}

TEST(OffloadChecksumTest, ZeroStaysZeroForTcpAndBecomesFfffForUdp) {
  Bytes b = {0xff, 0xff, 0x00, 0x00};  // sums to 0xffff: the checksum is 0
  ASSERT_TRUE(complete_checksum(b.data(), 4, 0, 2));
  EXPECT_EQ(be16(b, 2), 0x0000);
  b[2] = b[3] = 0;
  ASSERT_TRUE(complete_checksum(b.data(), 4, 0, 2, true));
  EXPECT_EQ(be16(b, 2), 0xffff);
  // software_offload() applies UDP's rule to csum_offset 6 only.
  Bytes udp(20, 0);
  udp[0] = udp[1] = 0xff;
  OffloadInfo info;
  info.needs_csum = true;
  info.csum_offset = 6;
  Bytes expected = udp;
  expected[6] = expected[7] = 0xff;
  EXPECT_EQ(run(Input{udp, info}).at(0), expected);
  info.csum_offset = 16;  // TCP's: 0 stays
  EXPECT_EQ(run(Input{udp, info}).at(0), udp);
}

TEST(OffloadChecksumTest, RefusesStartOrFieldOutsideTheFrame) {
  Bytes b(10, 0);
  const Bytes before = b;
  EXPECT_FALSE(complete_checksum(b.data(), 10, 10, 0));
  EXPECT_FALSE(complete_checksum(b.data(), 10, 9, 0));  // field would be bytes 9..10
  EXPECT_FALSE(complete_checksum(b.data(), 10, 0, 9));
  EXPECT_FALSE(complete_checksum(b.data(), 10, 4, 0xffffffff));
  EXPECT_FALSE(complete_checksum(b.data(), 0, 0, 0));
  EXPECT_EQ(b, before);
  EXPECT_TRUE(complete_checksum(b.data(), 10, 0, 8));
  EXPECT_TRUE(complete_checksum(b.data(), 10, 8, 0));
}

}  // namespace
}  // namespace qswitch::sw
