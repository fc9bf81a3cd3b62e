// tests/fuzz/offload_fuzz.cc: a guest's virtio_net_hdr and frame into the software offload
// path (switch/offload.h): decode_virtio_net_hdr(), then software_offload() (checksum completion
// or TCP segmentation) into exactly-sized buffers, so ASan sees any byte written past a segment.
//
// Input (no FuzzedDataProvider: a fixed layout, so seeds are plain bytes): byte 0 picks fix-ups,
// bytes 1..12 are the virtio_net_hdr, the rest is the frame. Fix-ups help the fuzzer past the
// checks a random frame rarely passes: (1) pad the frame with a pattern up to a size taken from
// hdr_len (up to 65535 bytes, so 1024-segment cuts happen), (2) set the IP length fields
// to the frame's, (4) point csum_start/csum_offset at the TCP checksum, (8) bring gso_size into
// 64..2111, (16) decode only 10 header bytes.
//
// Checked besides the sanitizers, against a reference parser written here from the rules in
// offload.h: a decoded header encodes and decodes back to itself; software_offload() accepts a
// TCP GSO frame exactly when the reference does; accepted and cut, the segments number
// ceil(payload / gso_size), each holds the reference's headers plus at most gso_size payload
// bytes (all but the last exactly gso_size), their payloads concatenate to the input's, their
// sequence numbers advance by the payload, their IPv4 header and TCP checksums verify; not cut,
// or gso NONE, the output is the input except the two checksum bytes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "switch/frame.h"
#include "switch/offload.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace sw = qswitch::sw;
using Bytes = std::vector<uint8_t>;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

uint32_t ref_sum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2) {
    s += uint32_t{p[i]} << 8 | (i + 1 < n ? p[i + 1] : 0);
    s = (s & 0xffff) + (s >> 16);
  }
  return s;
}
uint32_t fold(uint32_t s) {
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return s;
}

struct Ref {
  bool ok = false;
  bool v6 = false;
  size_t l3 = 0, l4 = 0, headers = 0;
};

// Where the headers are, as far as they can be found (ok: a frame offload.h accepts for GSO,
// before the offload-header checks).
Ref ref_parse(const Bytes& f, bool want_v6) {
  Ref r;
  if (f.size() < 14) return r;
  r.l3 = 14;
  uint16_t type = be16(&f[12]);
  if (type == 0x8100) {
    if (f.size() < 18) return r;
    type = be16(&f[16]);
    r.l3 = 18;
  }
  if (type != (want_v6 ? 0x86dd : 0x0800)) return r;
  r.v6 = want_v6;
  const uint8_t* ip = &f[r.l3];
  const size_t rest = f.size() - r.l3;
  if (!want_v6) {
    if (rest < 20 || ip[0] >> 4 != 4 || (ip[0] & 15) < 5 || rest < (ip[0] & 15u) * 4) return r;
    if ((be16(ip + 6) & 0x3fff) != 0 || be16(ip + 2) != rest || ip[9] != 6) return r;
    r.l4 = r.l3 + (ip[0] & 15u) * 4;
  } else {
    if (rest < 40 || ip[0] >> 4 != 6 || be16(ip + 4) != rest - 40 || ip[6] != 6) return r;
    r.l4 = r.l3 + 40;
  }
  if (f.size() - r.l4 < 20) return r;
  const size_t th = (f[r.l4 + 12] >> 4) * 4u;
  if (th < 20 || f.size() - r.l4 < th) return r;
  r.headers = r.l4 + th;
  r.ok = true;
  return r;
}

// The fix-ups of the header comment, each applied only where the bytes are there.
void fix_up(uint8_t bits, uint8_t* hdr, Bytes& frame) {
  if ((bits & 1) != 0) {
    const size_t want = size_t{hdr[2]} | size_t{hdr[3]} << 8;
    for (size_t i = frame.size(); i < want; ++i) frame.push_back(static_cast<uint8_t>(i * 13));
  }
  const bool v6 = (hdr[1] & 0x7f) == 4;
  size_t l3 = 14;
  if (frame.size() >= 18 && be16(&frame[12]) == 0x8100) l3 = 18;
  if ((bits & 2) != 0 && frame.size() >= l3 + 40) {
    if (v6) {
      put16(&frame[l3 + 4], static_cast<uint32_t>(frame.size() - l3 - 40));
    } else {
      put16(&frame[l3 + 2], static_cast<uint32_t>(frame.size() - l3));
    }
  }
  if ((bits & 4) != 0 && frame.size() >= l3 + 20) {
    const size_t l4 = v6 ? l3 + 40 : l3 + (frame[l3] & 15u) * 4;
    hdr[6] = static_cast<uint8_t>(l4);  // little-endian; l4 < 256
    hdr[7] = 0;
    hdr[8] = 16;
    hdr[9] = 0;
  }
  if ((bits & 8) != 0) {
    const uint32_t g = 64 + (uint32_t{hdr[4]} | uint32_t{hdr[5]} << 8) % 2048;
    hdr[4] = static_cast<uint8_t>(g);
    hdr[5] = static_cast<uint8_t>(g >> 8);
  }
}

void check_cut(const Bytes& in, const Ref& r, const sw::OffloadInfo& info,
               const std::vector<Bytes>& out) {
  const size_t payload = in.size() - r.headers;
  const size_t count = payload > info.gso_size ? (payload + info.gso_size - 1) / info.gso_size : 1;
  FUZZ_CHECK(out.size() == count);
  if (count == 1) {
    FUZZ_CHECK(out[0].size() == in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      FUZZ_CHECK(out[0][i] == in[i] || (info.needs_csum && (i == r.l4 + 16 || i == r.l4 + 17)));
    }
    return;
  }
  Bytes cat;
  for (size_t k = 0; k < out.size(); ++k) {
    const Bytes& g = out[k];
    FUZZ_CHECK(g.size() > r.headers && g.size() <= r.headers + info.gso_size);
    FUZZ_CHECK(k + 1 == out.size() || g.size() == r.headers + info.gso_size);
    FUZZ_CHECK(be32(&g[r.l4 + 4]) ==
               static_cast<uint32_t>(be32(&in[r.l4 + 4]) + k * info.gso_size));
    const uint32_t tcp_len = static_cast<uint32_t>(g.size() - r.l4);
    uint32_t pseudo = 0;
    if (r.v6) {
      FUZZ_CHECK(be16(&g[r.l3 + 4]) == g.size() - r.l3 - 40);
      pseudo = ref_sum(&g[r.l3 + 8], 32);
    } else {
      FUZZ_CHECK(be16(&g[r.l3 + 2]) == g.size() - r.l3);
      FUZZ_CHECK(fold(ref_sum(&g[r.l3], r.l4 - r.l3)) == 0xffff);
      FUZZ_CHECK(be16(&g[r.l3 + 4]) == static_cast<uint16_t>(be16(&in[r.l3 + 4]) + k));
      pseudo = ref_sum(&g[r.l3 + 12], 8);
    }
    pseudo += 6 + (tcp_len >> 16) + (tcp_len & 0xffff);
    FUZZ_CHECK(fold(ref_sum(&g[r.l4], tcp_len, fold(pseudo))) == 0xffff);
    cat.insert(cat.end(), g.begin() + static_cast<long>(r.headers), g.end());
  }
  FUZZ_CHECK(cat.size() == payload);
  FUZZ_CHECK(std::memcmp(cat.data(), in.data() + r.headers, payload) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 + sw::kVirtioNetHdrMrgSize) return 0;
  uint8_t hdr[sw::kVirtioNetHdrMrgSize];
  std::memcpy(hdr, data + 1, sizeof hdr);
  Bytes frame(data + 1 + sizeof hdr, data + size);
  fix_up(data[0], hdr, frame);

  sw::OffloadInfo info;
  const uint32_t hdr_size = (data[0] & 16) != 0 ? sw::kVirtioNetHdrSize : sw::kVirtioNetHdrMrgSize;
  if (sw::decode_virtio_net_hdr(hdr, hdr_size, &info) != sw::OffloadError::kOk) return 0;
  {
    uint8_t again[sw::kVirtioNetHdrMrgSize];
    sw::encode_virtio_net_hdr(info, again, sizeof again);
    sw::OffloadInfo back;
    FUZZ_CHECK(sw::decode_virtio_net_hdr(again, sizeof again, &back) == sw::OffloadError::kOk);
    FUZZ_CHECK(back.gso_type == info.gso_type &&
               back.gso_size == (back.gso_type == sw::GsoType::kNone ? 0 : info.gso_size));
    FUZZ_CHECK(back.needs_csum == info.needs_csum && back.data_valid == info.data_valid);
  }

  std::vector<Bytes> out;
  const sw::OffloadError e = sw::software_offload(frame.data(), static_cast<uint32_t>(frame.size()),
                                                  info, [&](uint32_t n) {
                                                    out.emplace_back(n);
                                                    return out.back().data();
                                                  });
  FUZZ_CHECK(e != sw::OffloadError::kNoRoom);
  if (info.gso_type == sw::GsoType::kNone) {
    const bool csum_fits =
        !info.needs_csum ||
        (info.csum_start < frame.size() && info.csum_start + info.csum_offset + 2u <= frame.size());
    const bool ok = frame.size() >= sw::kMinFrameSize && frame.size() <= sw::kMaxFrameSize &&
                    info.hdr_len <= frame.size() && csum_fits;
    FUZZ_CHECK(ok == (e == sw::OffloadError::kOk));
    if (!ok) return 0;
    FUZZ_CHECK(out.size() == 1 && out[0].size() == frame.size());
    const size_t field = size_t{info.csum_start} + info.csum_offset;
    for (size_t i = 0; i < frame.size(); ++i) {
      FUZZ_CHECK(out[0][i] == frame[i] || (info.needs_csum && (i == field || i == field + 1)));
    }
    // With the guest's seed (the pseudo-header sum it stood for) the range now sums to zero.
    if (info.needs_csum && info.csum_offset % 2 == 0) {
      const uint32_t seed = be16(&frame[field]);
      FUZZ_CHECK(fold(ref_sum(&out[0][info.csum_start], frame.size() - info.csum_start, seed)) ==
                 0xffff);
    }
    return 0;
  }
  const Ref r = ref_parse(frame, info.gso_type == sw::GsoType::kTcpV6);
  const bool ok = r.ok && frame.size() <= sw::kMaxFrameSize && info.hdr_len <= frame.size() &&
                  (!info.needs_csum || info.csum_start == r.l4);
  FUZZ_CHECK(ok == (e == sw::OffloadError::kOk));
  if (ok) check_cut(frame, r, info, out);
  return 0;
}
