// tests/fuzz/vxlan_rx_fuzz.cc: the VXLAN port's receive path minus the socket: each datagram
// lands as recvmmsg() leaves it with the port's two iovecs (8 header bytes, then a
// backends::DatagramRx slot; cut with MSG_TRUNC when longer), check_vxlan_datagram() decides,
// and a frame's inner source is learned in a MAC table per remote as the port does.
//
// Input (FuzzedDataProvider): our VNI, then datagrams: length (mostly small, sometimes past the
// slot), bytes, which remote sent it. A datagram shorter than the header leaves the previous
// header bytes in place, as the port's reused header buffer does.
//
// Checked against a reference written from RFC 7348 section 5: a datagram is a frame exactly
// when it is not truncated, holds the header and at least a 14-byte frame, has the I flag and
// carries our VNI (the reserved bits and other flags are ignored); the frame's length and bytes;
// the VNI reported for a wrong-VNI drop; encode_vxlan_header() of any 24-bit VNI decodes to it.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backends/runtime/datagram_rx.h"
#include "backends/vxlan/vxlan_header.h"
#include "switch/mac_table.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace sw = qswitch::sw;
using namespace qswitch::backends;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint32_t our_vni = in.ConsumeIntegralInRange<uint32_t>(0, kVxlanMaxVni);
  {
    uint8_t h[kVxlanHeaderSize];
    encode_vxlan_header(our_vni, h);
    const auto back = decode_vxlan_header(h);
    FUZZ_CHECK(back && *back == our_vni);
    const VxlanRx r = check_vxlan_datagram(h, kVxlanHeaderSize + sw::kMinFrameSize, false, our_vni);
    FUZZ_CHECK(r.check == VxlanRxCheck::kFrame && r.frame_len == sw::kMinFrameSize);
  }
  DatagramRx rx(1);
  sw::MacTable macs(sw::MacTableConfig{64, 300'000, 10'000, 1});
  uint8_t header[kVxlanHeaderSize] = {};
  sw::Millis now = 0;
  for (int burst = 0; burst < 200 && in.remaining_bytes() > 0; ++burst) {
    const uint32_t n = rx.available();
    FUZZ_CHECK(n > 0);  // nothing here holds frames beyond the burst
    const uint32_t got = in.ConsumeIntegralInRange<uint32_t>(1, n);
    for (uint32_t i = 0; i < got; ++i) {
      const auto remote = static_cast<sw::PortId>(in.ConsumeIntegralInRange<int>(0, 3));
      size_t dlen = in.ConsumeIntegralInRange<size_t>(0, 300);
      if (dlen > 290) {
        dlen = in.ConsumeIntegralInRange<size_t>(0, kVxlanHeaderSize + sw::kMaxFrameSize + 64);
      }
      std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(std::min<size_t>(dlen, 512));
      bytes.resize(dlen, 0xa5);
      // Scatter as recvmmsg does over {header, slot}.
      const size_t to_header = std::min<size_t>(dlen, kVxlanHeaderSize);
      if (to_header > 0) std::memcpy(header, bytes.data(), to_header);
      const size_t to_slot = std::min<size_t>(dlen - to_header, DatagramRx::slot_capacity());
      if (to_slot > 0) std::memcpy(rx.slot(i), bytes.data() + to_header, to_slot);
      const bool truncated = dlen > kVxlanHeaderSize + DatagramRx::slot_capacity();
      const auto len = static_cast<uint32_t>(to_header + to_slot);

      const VxlanRx r = check_vxlan_datagram(header, len, truncated, our_vni);
      // The reference.
      const bool long_enough = len >= kVxlanHeaderSize + sw::kMinFrameSize;
      const bool i_flag = (header[0] & 0x08) != 0;
      const uint32_t vni = (uint32_t{header[4]} << 16) | (uint32_t{header[5]} << 8) | header[6];
      if (truncated) {
        FUZZ_CHECK(r.check == VxlanRxCheck::kOversize);
      } else if (!long_enough) {
        FUZZ_CHECK(r.check == VxlanRxCheck::kRunt);
      } else if (!i_flag) {
        FUZZ_CHECK(r.check == VxlanRxCheck::kNoIFlag);
      } else if (vni != our_vni) {
        FUZZ_CHECK(r.check == VxlanRxCheck::kWrongVni && r.vni == vni);
      } else {
        FUZZ_CHECK(r.check == VxlanRxCheck::kFrame && r.vni == vni);
        FUZZ_CHECK(r.frame_len == len - kVxlanHeaderSize);
        FUZZ_CHECK(r.frame_len >= sw::kMinFrameSize && r.frame_len <= sw::kMaxFrameSize);
        const sw::Frame f = rx.frame(i, r.frame_len);
        FUZZ_CHECK(f.wire + sw::kPrefixSize + f.size <= f.chunk->data + f.chunk->capacity);
        FUZZ_CHECK(std::memcmp(f.data(), bytes.data() + kVxlanHeaderSize, f.size) == 0);
        const uint8_t* src = f.data() + 6;
        if ((src[0] & 0x01) == 0) macs.learn(sw::MacAddress::from_wire(src), 0, remote, now);
        FUZZ_CHECK(macs.size() <= 64);
      }
    }
    rx.advance(got);
    now += 10;
  }
  return 0;
}
