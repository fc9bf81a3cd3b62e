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
//   from its held MACs, never more than max_macs of them, and ARP naming the frame's source;
//   and only the IP sources it was given (address_book.h; VLAN 10 is served by a "slirp port"
//   with prefix fec0::/64 and leased 10.0.2.15 to 52:54:00:00:00:01, and the port has ip=
//   10.0.9.9 and 2001:db8::9, so every VLAN is checked): IPv4 from those (0.0.0.0 only as UDP
//   68 -> 67), ARP sender IPs from those or 0.0.0.0, IPv6 from link-local, ::, 2001:db8::9 or
//   the SLAAC address in VLAN 10, neighbour advertisements (found right after the IPv6 header)
//   for link-local or those addresses.
//
// Then the same frames again, into a second switch set up the same way, consecutive frames of one
// port as one burst (up to 32), as ports hand them over: the burst paths (the burst memo, unicast
// groups, the same-head path; l2_switch.h) must give every port the same frames in the same order
// as the frame-by-frame calls did, and leave the same counters and MAC table. Every frame has the
// same time, so that the duplicate-MAC reports' rate limit cannot tell the runs apart.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "switch/l2_switch.h"
#include "switch/vlan.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace qswitch::sw;

constexpr int kPorts = 5;

// A frame's size and bytes, appended to `log`.
void log_frame(std::vector<uint8_t>& log, const Frame& f) {
  const uint8_t* d = f.data();
  log.insert(log.end(), f.wire, f.wire + kPrefixSize);
  log.insert(log.end(), d, d + f.size);
}

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
      check_ip(d, f.size, l3);
    }
    ++got;
    log_frame(log, f);
  }
  void flush() override {}
  std::string describe() const override { return "fuzz"; }

  // The IP rules (see the top), computed here from the fixed address plan.
  static bool v4_allowed(const uint8_t* a, const uint8_t* src_mac) {
    static const uint8_t kLease[4] = {10, 0, 2, 15}, kGiven[4] = {10, 0, 9, 9};
    static const uint8_t kLeaseMac[6] = {0x52, 0x54, 0, 0, 0, 1};
    if (std::memcmp(a, kGiven, 4) == 0) return true;
    return expected_vlan == 10 && std::memcmp(a, kLease, 4) == 0 &&
           std::memcmp(src_mac, kLeaseMac, 6) == 0;
  }
  static bool v6_allowed(const uint8_t* a, const uint8_t* m) {
    static const uint8_t kGiven[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    if (std::memcmp(a, kGiven, 16) == 0) return true;
    const uint8_t slaac[16] = {
        0xfe, 0xc0, 0,    0,    0,    0,    0,   0, static_cast<uint8_t>(m[0] ^ 2),
        m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]};
    return expected_vlan == 10 && std::memcmp(a, slaac, 16) == 0;
  }
  static bool link_local(const uint8_t* a) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }
  static bool zero(const uint8_t* a, size_t n) {
    return std::all_of(a, a + n, [](uint8_t b) { return b == 0; });
  }
  static void check_ip(const uint8_t* d, uint32_t size, uint32_t l3) {
    const uint16_t type = static_cast<uint16_t>((d[l3 - 2] << 8) | d[l3 - 1]);
    const uint8_t* src_mac = d + 6;
    if (type == 0x0800) {
      FUZZ_CHECK(size >= l3 + 20);
      const uint8_t* ip = d + l3;
      if (zero(ip + 12, 4)) {
        const uint32_t ihl = (ip[0] & 0x0fu) * 4;
        FUZZ_CHECK(ip[9] == 17 && ihl >= 20 && size >= l3 + ihl + 4);
        FUZZ_CHECK(ip[ihl] == 0 && ip[ihl + 1] == 68 && ip[ihl + 2] == 0 && ip[ihl + 3] == 67);
      } else {
        FUZZ_CHECK(v4_allowed(ip + 12, src_mac));
      }
    } else if (type == 0x0806) {
      FUZZ_CHECK(size >= l3 + 28);
      FUZZ_CHECK(zero(d + l3 + 14, 4) || v4_allowed(d + l3 + 14, src_mac));
    } else if (type == 0x86dd) {
      FUZZ_CHECK(size >= l3 + 40);
      const uint8_t* src = d + l3 + 8;
      FUZZ_CHECK(link_local(src) || zero(src, 16) || v6_allowed(src, src_mac));
      // A neighbour advertisement right after the header (extension headers: port_security_test).
      if (d[l3 + 6] == 58 && size >= l3 + 41 && d[l3 + 40] == 136) {
        FUZZ_CHECK(size >= l3 + 40 + 24);
        const uint8_t* target = d + l3 + 48;
        FUZZ_CHECK(link_local(target) || v6_allowed(target, src_mac));
      }
    }
  }

  static inline const Port* input = nullptr;  // the port the frame came in on
  static inline uint16_t expected_vlan = 0;
  static inline const uint8_t* in_macs = nullptr;
  static inline const uint8_t* in_rest = nullptr;
  static inline uint32_t in_rest_size = 0;
  uint64_t got = 0;
  std::vector<uint8_t> log;  // every frame it got (log_frame())
};

// A port of the burst replay (see the top): it only logs.
class LogPort : public Port {
 public:
  void enqueue(const Frame& f) override { log_frame(log, f); }
  void flush() override {}
  std::string describe() const override { return "replay"; }
  std::vector<uint8_t> log;
};

// What a run leaves behind, to compare the two runs: each port's counters and the switch's,
// then the MAC table's entries.
std::vector<uint64_t> outcome(const L2Switch& sw, const Port* const* ports) {
  std::vector<uint64_t> out;
  for (int i = 0; i < kPorts; ++i) {
    ports[i]->counters().for_each([&](const char*, uint64_t v) { out.push_back(v); });
  }
  sw.counters().for_each([&](const char*, uint64_t v) { out.push_back(v); });
  std::vector<std::array<uint64_t, 3>> macs;
  sw.macs().for_each([&](const MacEntryView& e) {
    uint64_t m = 0;
    for (uint8_t b : e.mac.bytes) m = (m << 8) | b;
    macs.push_back({m, uint64_t{e.vlan} << 32 | e.port, e.pinned ? 1u : 0u});
  });
  std::sort(macs.begin(), macs.end());
  for (const auto& e : macs) out.insert(out.end(), e.begin(), e.end());
  return out;
}

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

// The ports' VLANs and the last port's security, as byte 0 says.
void set_up(L2Switch& sw, Port* const* ports, uint8_t byte0) {
  for (int i = 0; i < kPorts; ++i) {
    sw.set_vlans(*ports[i], membership(byte0 >> (2 * (i % 4))), 0);
    sw.attach(*ports[i]);
  }
  // The last port is secured (two MACs) when byte 0's low bit says so.
  if ((byte0 & 1) != 0) {
    PortSecurity s;
    s.enabled = true;
    s.max_macs = 2;
    s.ips = {*IpAddress::parse("10.0.9.9"), *IpAddress::parse("2001:db8::9")};
    sw.set_security(*ports[kPorts - 1], s);
    sw.addresses().serve(10, *IpAddress::parse("fec0::"), 64);
    sw.addresses().bind(10, MacAddress{{0x52, 0x54, 0, 0, 0, 1}}, *IpAddress::parse("10.0.2.15"));
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  SwitchConfig config;
  config.mac.max_entries = 64;
  config.mac.seed = 1;
  L2Switch sw(config);
  CheckingPort ports[kPorts];
  Port* port_list[kPorts];
  for (int i = 0; i < kPorts; ++i) port_list[i] = &ports[i];
  set_up(sw, port_list, data[0]);
  std::vector<uint8_t> wire(kPrefixSize + kMaxFrameSize);
  // Every frame as it went in (its port, its wire bytes), for the burst replay.
  std::vector<std::pair<int, std::vector<uint8_t>>> inputs;
  size_t pos = 1;
  // One time for every frame: the replay hands several frames over at one time, and the
  // duplicate-MAC reports' rate limit would otherwise tell the runs apart.
  const Millis now = 0;
  while (pos + 3 <= size) {
    const int in_index = data[pos] % kPorts;
    CheckingPort& in = ports[in_index];
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
    inputs.emplace_back(in_index,
                        std::vector<uint8_t>(wire.data(), wire.data() + kPrefixSize + len));
  }

  // The replay: the same frames into a second switch set up the same way, consecutive frames of
  // one port handed over as one burst (up to 32), as ports do. Bursts take paths frame-by-frame
  // calls never do (the burst memo, unicast groups, the same-head path: l2_switch.h); every
  // port must get the same frames in the same order, and every counter and the MAC table must
  // end the same.
  L2Switch sw2(config);
  LogPort replay[kPorts];
  Port* replay_list[kPorts];
  for (int i = 0; i < kPorts; ++i) replay_list[i] = &replay[i];
  set_up(sw2, replay_list, data[0]);
  std::vector<Frame> burst;
  for (size_t i = 0; i < inputs.size();) {
    const int in_index = inputs[i].first;
    burst.clear();
    for (; i < inputs.size() && inputs[i].first == in_index && burst.size() < 32; ++i) {
      const std::vector<uint8_t>& w = inputs[i].second;
      burst.push_back(
          Frame{w.data(), static_cast<uint32_t>(w.size() - kPrefixSize), 0, nullptr, {}});
    }
    sw2.receive(replay[in_index], burst, now);
    sw2.flush();
  }
  for (int i = 0; i < kPorts; ++i) FUZZ_CHECK(replay[i].log == ports[i].log);
  FUZZ_CHECK(outcome(sw2, replay_list) == outcome(sw, port_list));
  return 0;
}
