// tests/fuzz/slirp_guest_fuzz.cc: what the slirp port reads from every guest frame before
// slirp_input: parse_guest_packet(), loopback_target() and socket_request(), and the
// HostSocketBudget they feed, driven as libslirp drives it.
//
// Input (FuzzedDataProvider): the two caps (0..16, 0..8), then up to 512 operations: a guest
// frame (exact-size heap block, so ASan sees any read past it) from one of four ports, which
// libslirp, when the budget admits it, may answer by opening a host socket (only for a request
// that says it opens one, and not for a flow already open, as libslirp does); libslirp closing
// one of the open sockets; a socket opened outside any guest packet (a host forward's).
//
// Checked: every pointer parse_guest_packet() returns lies inside the frame, and it parses
// exactly the IPv4/IPv6 frames whose headers fit; a request of kind kFlow has ports inside the
// frame; after every operation the budget's total equals the sockets the model has open for
// guests and the sum over owners, no owner and not the total went past its cap, and an open
// flow is always admitted.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "slirp/guest_packet.h"
#include "slirp/host_sockets.h"
#include "slirp/loopback_target.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using qswitch::slirp::FlowKey;
using qswitch::slirp::GuestPacket;
using qswitch::slirp::HostSocketBudget;
using qswitch::slirp::SocketRequest;

constexpr int kMaxFds = 64;

struct Model {
  std::map<int, uint64_t> guest_fds;  // fd -> owner
  std::map<int, FlowKey> keyed;       // fd -> its flow
  std::set<int> host_fds;             // opened outside a guest packet
  int lowest_free() const {
    for (int fd = 0; fd < kMaxFds; ++fd) {
      if (guest_fds.count(fd) == 0 && host_fds.count(fd) == 0) return fd;
    }
    return -1;
  }
  bool flow_open(const FlowKey& k) const {
    for (const auto& [fd, key] : keyed) {
      if (key == k) return true;
    }
    return false;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint32_t max_total = in.ConsumeIntegralInRange<uint32_t>(0, 16);
  const uint32_t max_per_owner = in.ConsumeIntegralInRange<uint32_t>(0, 8);
  HostSocketBudget budget(max_total, max_per_owner);
  const qswitch::slirp::SlirpOptions options = qswitch::slirp::default_slirp_options();
  Model model;

  for (int op = 0; op < 512 && in.remaining_bytes() > 0; ++op) {
    const int kind = in.ConsumeIntegralInRange<int>(0, 3);
    if (kind <= 1) {
      const uint64_t owner = in.ConsumeIntegralInRange<uint64_t>(0, 3);
      const bool opens = in.ConsumeBool();
      const size_t len = in.ConsumeIntegralInRange<size_t>(0, 300);
      const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(len);
      auto frame = std::make_unique<uint8_t[]>(bytes.size() + 1);
      if (!bytes.empty()) std::memcpy(frame.get(), bytes.data(), bytes.size());
      const uint8_t* begin = frame.get();
      const uint8_t* end = begin + bytes.size();
      const std::optional<GuestPacket> p = qswitch::slirp::parse_guest_packet(begin, bytes.size());
      SocketRequest r;
      if (p) {
        FUZZ_CHECK(bytes.size() >= 14 + (p->ipv6 ? 40u : 20u));
        FUZZ_CHECK(p->src >= begin && p->src + (p->ipv6 ? 16 : 4) <= end);
        FUZZ_CHECK(p->dst >= begin && p->dst + (p->ipv6 ? 16 : 4) <= end);
        FUZZ_CHECK(p->l4 >= begin && p->l4 <= end &&
                   p->l4_size <= static_cast<size_t>(end - p->l4));
        (void)qswitch::slirp::loopback_target(*p, options);
        r = qswitch::slirp::socket_request(*p, options);
        if (r.kind == SocketRequest::Kind::kFlow) FUZZ_CHECK(p->l4_size >= 4);
      } else {
        FUZZ_CHECK(qswitch::slirp::loopback_target(begin, bytes.size(), options) == std::nullopt);
      }
      const bool existing = r.kind == SocketRequest::Kind::kFlow && model.flow_open(r.key);
      const HostSocketBudget::Verdict v = budget.admit(owner, r);
      if (existing) FUZZ_CHECK(v == HostSocketBudget::Verdict::kAdmit);
      if (v != HostSocketBudget::Verdict::kAdmit) continue;
      budget.begin(owner, r);
      const bool new_socket = (r.kind == SocketRequest::Kind::kFlow && !existing) ||
                              r.kind == SocketRequest::Kind::kPing;
      if (opens && new_socket) {
        const int fd = model.lowest_free();
        if (fd >= 0) {
          budget.registered(fd);
          model.guest_fds[fd] = owner;
          if (r.kind == SocketRequest::Kind::kFlow) model.keyed[fd] = r.key;
        }
      }
      budget.end();
    } else if (kind == 2) {
      // libslirp closes a socket: a guest's or a host forward's, or an fd it never registered.
      const int fd = in.ConsumeIntegralInRange<int>(-1, kMaxFds);
      budget.unregistered(fd);
      model.guest_fds.erase(fd);
      model.keyed.erase(fd);
      model.host_fds.erase(fd);
    } else {
      const int fd = model.lowest_free();
      if (fd >= 0) {
        budget.registered(fd);
        model.host_fds.insert(fd);
      }
    }
    FUZZ_CHECK(budget.total() == model.guest_fds.size());
    uint64_t sum = 0;
    budget.for_each_owner([&](uint64_t owner, uint32_t n) {
      FUZZ_CHECK(n > 0);
      if (max_per_owner != 0) FUZZ_CHECK(n <= max_per_owner);
      uint32_t expect = 0;
      for (const auto& [fd, o] : model.guest_fds) expect += o == owner ? 1 : 0;
      FUZZ_CHECK(n == expect);
      sum += n;
    });
    FUZZ_CHECK(sum == budget.total());
    if (max_total != 0) FUZZ_CHECK(budget.total() <= max_total);
  }
  return 0;
}
