// tests/fuzz/vlan_switch_fuzz.cc: frames of any bytes into a switch whose ports are access ports
// and trunks of a few VLANs (switch/vlan.h, l2_switch.h): the 802.1Q classification, per-VLAN
// learning and flooding, and the tags pushed and popped at trunk edges.
//
// Input: byte 0 picks the ports' memberships (two bits per port: access 10, access 20, trunk
// 10,20 with native 1, trunk 10,30 without one); then frames, each a port byte, a 16-bit
// big-endian size (clamped to 14..kMaxFrameSize) and that many bytes (zero-filled past the end
// of the input).
//
// Checks beyond the sanitizers, for every frame a port is handed:
// - it is 14..kMaxFrameSize bytes, never handed to the port it came from;
// - the port carries the VLAN the frame was classified into on input (computed here,
//   independently): VLANs never leak;
// - it has an outer tag exactly when the port carries that VLAN tagged (a trunk, not its native
//   VLAN), and the tag names that VLAN; else it is the input without its outer tag (the inner tag
//   of a double-tagged input is payload);
// - a frame whose tag was popped is at least 60 bytes; its payload is the input's without the
//   tag;
// - from a secured port (port_security.h; the last port when byte 0's low bit is set) only frames
//   from its held MACs, never more than max_macs of them, and ARP naming the frame's source.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "switch/l2_switch.h"
#include "switch/vlan.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace qswitch::sw;

constexpr int kPorts = 5;

class CheckingPort : public Port {
 public:
  void enqueue(const Frame& f) override {
    FUZZ_CHECK(f.size >= kMinFrameSize && f.size <= kMaxFrameSize);
    FUZZ_CHECK(this != input);
    FUZZ_CHECK(!f.split());
    const uint8_t* d = f.data();
    const VlanMembership& m = vlans();
    FUZZ_CHECK(m.carries(expected_vlan));
    // Tagged exactly when this port carries the frame's VLAN tagged, and then the outer tag names
    // that VLAN; otherwise the frame is the input without its outer tag (a double-tagged input's
    // inner tag is payload).
    const bool tagged = m.tags(expected_vlan);
    if (tagged) {
      FUZZ_CHECK(f.size >= 18 && d[12] == 0x81 && d[13] == 0x00);
      FUZZ_CHECK((((d[14] << 8) | d[15]) & kVlanIdMask) == expected_vlan);
    }
    // The payload after the MACs and any tag is the input's (a pop pads to 60 bytes).
    const uint32_t at = tagged ? 16 : 12;
    const uint32_t size = f.size - at;
    FUZZ_CHECK(size >= in_rest_size || (!tagged && f.size == kPadFrameSize));
    FUZZ_CHECK(std::memcmp(d + at, in_rest, in_rest_size < size ? in_rest_size : size) == 0);
    FUZZ_CHECK(std::memcmp(d, in_macs, 12) == 0);
    // From a secured port only its own MACs, at most max_macs of them, and ARP naming them.
    if (input->security().enabled) {
      const std::vector<MacAddress>& held = input->held_macs();
      FUZZ_CHECK(held.size() <= input->security().max_macs);
      FUZZ_CHECK(std::find(held.begin(), held.end(), MacAddress::from_wire(d + 6)) != held.end());
      const uint32_t l3 = tagged ? 18 : 14;
      if (f.size >= l3 + 14 && d[l3 - 2] == 0x08 && d[l3 - 1] == 0x06) {
        FUZZ_CHECK(std::memcmp(d + l3 + 8, d + 6, 6) == 0);
      }
    }
    ++got;
  }
  void flush() override {}
  std::string describe() const override { return "fuzz"; }

  static inline const Port* input = nullptr;  // the port the frame came in on
  static inline uint16_t expected_vlan = 0;
  static inline const uint8_t* in_macs = nullptr;
  static inline const uint8_t* in_rest = nullptr;
  static inline uint32_t in_rest_size = 0;
  uint64_t got = 0;
};

VlanMembership membership(int kind) {
  VlanSet s;
  switch (kind & 3) {
    case 0:
      return VlanMembership::access(10);
    case 1:
      return VlanMembership::access(20);
    case 2:
      s.add(10);
      s.add(20);
      return VlanMembership::make_trunk(s, 1);
    default:
      s.add(10);
      s.add(30);
      return VlanMembership::make_trunk(s);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  SwitchConfig config;
  config.mac.max_entries = 64;
  config.mac.seed = 1;
  L2Switch sw(config);
  CheckingPort ports[kPorts];
  for (int i = 0; i < kPorts; ++i) {
    sw.set_vlans(ports[i], membership(data[0] >> (2 * (i % 4))), 0);
    sw.attach(ports[i]);
  }
  // The last port is secured (two MACs) when byte 0's low bit says so.
  if ((data[0] & 1) != 0) {
    PortSecurity s;
    s.enabled = true;
    s.max_macs = 2;
    sw.set_security(ports[kPorts - 1], s);
  }
  std::vector<uint8_t> wire(kPrefixSize + kMaxFrameSize);
  size_t pos = 1;
  Millis now = 0;
  while (pos + 3 <= size) {
    CheckingPort& in = ports[data[pos] % kPorts];
    uint32_t len = (uint32_t{data[pos + 1]} << 8) | data[pos + 2];
    pos += 3;
    if (len < kMinFrameSize) len = kMinFrameSize;
    const size_t avail = size - pos < len ? size - pos : len;
    std::memset(wire.data(), 0, kPrefixSize + len);
    store_be32(wire.data(), len);
    std::memcpy(wire.data() + kPrefixSize, data + pos, avail);
    pos += avail;
    const uint8_t* d = wire.data() + kPrefixSize;
    // The VLAN this frame belongs to on `in`, or none (then no port may get it).
    const VlanMembership& m = in.vlans();
    const bool tagged = d[12] == 0x81 && d[13] == 0x00 && len >= 18;
    const uint16_t vid = tagged ? static_cast<uint16_t>(((d[14] << 8) | d[15]) & 0xfff) : 0;
    CheckingPort::input = &in;
    CheckingPort::expected_vlan = vid != 0 ? vid : m.untagged;
    CheckingPort::in_macs = d;
    CheckingPort::in_rest = d + (tagged ? 16 : 12);
    CheckingPort::in_rest_size = len - (tagged ? 16 : 12);
    uint64_t before = 0;
    for (const CheckingPort& p : ports) before += p.got;
    const bool short_tag = d[12] == 0x81 && d[13] == 0x00 && len < 18;
    const bool admitted =
        !short_tag && (vid != 0 ? m.trunk && m.carries(vid) && vid <= kMaxVlanId : m.untagged != 0);
    Frame f{wire.data(), len, 0, nullptr, {}};
    sw.receive(in, f, now);
    sw.flush();
    uint64_t after = 0;
    for (const CheckingPort& p : ports) after += p.got;
    if (!admitted) FUZZ_CHECK(after == before);
    now += 10;
  }
  return 0;
}
