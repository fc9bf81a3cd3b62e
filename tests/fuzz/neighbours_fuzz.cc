// tests/fuzz/neighbours_fuzz.cc: the slirp port's table of guests' IPv6 addresses
// (slirp/neighbours.h), fed guest frames as enqueue() feeds it.
//
// Input (FuzzedDataProvider): max_macs (1..8), the expiry (1..100000 ms), then up to 256
// operations: a frame (an exact-size heap block, so ASan sees any read past it), optionally
// fixed up to look like IPv6 (EtherType, version, payload length), after a clock step; or an
// expire() after a clock step.
//
// Checked after every operation: at most max_macs MACs and kMaxPerMac addresses each, none
// empty; every address stored is IPv6 and not multicast, ::, ::1 or IPv4-mapped; a (MAC,
// address) pair that was not there before a frame has the frame's source MAC and an address
// that occurs in the frame's bytes; an operation that changed a MAC's set of addresses raised
// the generation and told the change callback that MAC; times ordered (first <= last <= now);
// after expire() nothing older than the expiry is left; addresses() agrees with entries().
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "slirp/neighbours.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using qswitch::slirp::Neighbours;
using qswitch::sw::IpAddress;
using qswitch::sw::MacAddress;
using Table = std::map<uint64_t, std::set<std::array<uint8_t, 16>>>;

Table snapshot(const Neighbours& n, int64_t now_ms) {
  Table t;
  for (const Neighbours::Entry& e : n.entries()) {
    FUZZ_CHECK(!e.addresses.empty() && e.addresses.size() <= Neighbours::kMaxPerMac);
    auto& set = t[e.mac.key()];
    const std::vector<IpAddress> listed = n.addresses(e.mac);
    FUZZ_CHECK(listed.size() == e.addresses.size());
    for (size_t i = 0; i < e.addresses.size(); ++i) {
      const Neighbours::Seen& s = e.addresses[i];
      const IpAddress& a = s.address;
      FUZZ_CHECK(a.is_v6() && !a.is_multicast() && !a.is_unspecified());
      static constexpr uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      FUZZ_CHECK(std::memcmp(a.bytes.data(), kLoopback, 16) != 0);
      FUZZ_CHECK(std::memcmp(a.bytes.data(), kMapped, 12) != 0);
      FUZZ_CHECK(s.first_seen_ms <= s.last_seen_ms && s.last_seen_ms <= now_ms);
      FUZZ_CHECK(listed[i] == a);
      FUZZ_CHECK(set.insert(a.bytes).second);  // no address twice under one MAC
    }
  }
  FUZZ_CHECK(t.size() == n.entries().size());
  return t;
}

bool occurs_in(const std::vector<uint8_t>& frame, const std::array<uint8_t, 16>& a) {
  return std::search(frame.begin(), frame.end(), a.begin(), a.end()) != frame.end();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  qswitch::slirp::NeighbourConfig config;
  config.max_macs = in.ConsumeIntegralInRange<size_t>(1, 8);
  config.expiry_ms = in.ConsumeIntegralInRange<int64_t>(1, 100'000);
  Neighbours n(config);
  std::set<uint64_t> heard;
  n.set_on_change([&](const MacAddress& mac) { heard.insert(mac.key()); });
  int64_t now = in.ConsumeIntegralInRange<int64_t>(0, 1'000'000);
  Table before = snapshot(n, now);

  for (int op = 0; op < 256 && in.remaining_bytes() > 0; ++op) {
    const bool is_frame = in.ConsumeIntegralInRange<int>(0, 7) != 0;
    now += in.ConsumeIntegralInRange<int64_t>(0, 20'000);
    heard.clear();
    const uint64_t generation = n.generation();
    std::vector<uint8_t> bytes;
    if (is_frame) {
      const bool fix_up = in.ConsumeBool();
      const size_t len = in.ConsumeIntegralInRange<size_t>(0, 400);
      bytes = in.ConsumeBytes<uint8_t>(len);
      if (fix_up && bytes.size() >= 54) {
        bytes[12] = 0x86;
        bytes[13] = 0xdd;
        bytes[14] = static_cast<uint8_t>(0x60 | (bytes[14] & 0x0f));
        const size_t payload = std::min<size_t>(bytes.size() - 54, 0xffff);
        bytes[18] = static_cast<uint8_t>(payload >> 8);
        bytes[19] = static_cast<uint8_t>(payload);
      }
      auto frame = std::make_unique<uint8_t[]>(bytes.size() + 1);
      if (!bytes.empty()) std::memcpy(frame.get(), bytes.data(), bytes.size());
      n.observe(frame.get(), bytes.size(), now);
    } else {
      n.expire(now);
    }
    const Table after = snapshot(n, now);
    FUZZ_CHECK(after.size() <= config.max_macs);
    if (!is_frame) {
      for (const Neighbours::Entry& e : n.entries()) {
        for (const Neighbours::Seen& s : e.addresses) {
          FUZZ_CHECK(s.last_seen_ms > now - config.expiry_ms);
        }
      }
    }
    // What is new came from this frame: its source MAC, an address in its bytes.
    for (const auto& [mac, set] : after) {
      const auto was = before.find(mac);
      for (const auto& a : set) {
        if (was != before.end() && was->second.count(a) != 0) continue;
        FUZZ_CHECK(is_frame && bytes.size() >= 14);
        FUZZ_CHECK(MacAddress::from_wire(bytes.data() + 6).key() == mac);
        FUZZ_CHECK(occurs_in(bytes, a));
      }
    }
    // A changed set was announced.
    std::set<uint64_t> macs;
    for (const auto& [mac, set] : before) macs.insert(mac);
    for (const auto& [mac, set] : after) macs.insert(mac);
    for (const uint64_t mac : macs) {
      const auto b = before.find(mac);
      const auto a = after.find(mac);
      const bool same = b != before.end() && a != after.end()
                            ? b->second == a->second
                            : (b == before.end()) == (a == after.end());
      if (same) continue;
      FUZZ_CHECK(n.generation() > generation);
      FUZZ_CHECK(heard.count(mac) != 0);
    }
    before = after;
  }
  return 0;
}
