// tests/fuzz/dns_frontend_fuzz.cc: the slirp port's DNS transport (slirp/dns_frontend.h): UDP
// queries and the TCP responder's state machine, driven by a sequence of guest frames and an
// advancing clock. The answerer is a stand-in whose verdict and reply size the input chooses
// (the message logic, slirp/dns_responder.h, has its own target): this one fuzzes the frames.
//
// Input (FuzzedDataProvider): the MTU (one of 68, 576, 1500, 9000), the connection cap (1..8),
// whether IPv6 counts; then up to 256 operations: raw frame bytes; a UDP datagram to DNS:53
// (either family, optionally a corrupt checksum or length); a TCP segment from one of four
// guest ports (either family; flags; sequence and acknowledgement numbers either the ones the
// guest would send next, as tracked from the front end's own segments, near them, or any;
// window; MSS option; payload, optionally with its two-byte DNS length prefix); the answerer's
// next verdict and reply size (0..70000); the clock advanced (0..20 s) and on_timer() run.
//
// Checked: every frame the front end sends is well formed by the tests' own parser
// (tests/support/l4_frames.h: lengths, IPv4 header checksum, UDP/TCP checksums), at most 14 + MTU
// bytes, from the DNS address port 53 and the port's own MAC to the guest's address and MAC; a
// SYN from us carries the MSS option; the open connections never exceed the cap; with none open
// there is no deadline; a deadline is never in the past after on_timer(); the counters never go
// down.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "slirp/dns_frontend.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/support/l4_frames.h"

namespace {

using qswitch::slirp::DnsAnswerer;
using qswitch::slirp::DnsFrameSink;
using qswitch::slirp::DnsFrontend;
using qswitch::slirp::DnsFrontendConfig;
using qswitch::slirp::DnsResponder;
using qswitch::test_support::build_l4;
using qswitch::test_support::L4Packet;
using qswitch::test_support::parse_l4;
using qswitch::test_support::slirp_dns::kDns4;
using qswitch::test_support::slirp_dns::kDns6;
using qswitch::test_support::slirp_dns::kGuest4;
using qswitch::test_support::slirp_dns::kGuest6;
using qswitch::test_support::slirp_dns::kGuestMac;
using qswitch::test_support::slirp_dns::kReplyMac4;
using qswitch::test_support::slirp_dns::kReplyMac6;
using qswitch::test_support::slirp_dns::query_packet;

class Answerer : public DnsAnswerer {
 public:
  DnsResponder::Verdict verdict = DnsResponder::Verdict::kAnswered;
  size_t size = 40;
  DnsResponder::Verdict answer(const uint8_t* query, size_t n, DnsResponder::Transport,
                               std::vector<uint8_t>& reply) override {
    reply.clear();
    if (verdict != DnsResponder::Verdict::kAnswered) return verdict;
    reply.assign(query, query + std::min(n, size));
    reply.resize(size, 0xab);
    return verdict;
  }
};

// What the guest would send next on each connection, learnt from the front end's segments.
struct Track {
  uint32_t our_next = 0;   // the guest's next sequence number (the front end's last ACK)
  uint32_t their_end = 0;  // the front end's last sequence number + length
};

class Sink : public DnsFrameSink {
 public:
  uint32_t mtu = 1500;
  std::map<std::pair<bool, uint16_t>, Track>* track = nullptr;
  void send_frame(const uint8_t* frame, size_t size) override {
    FUZZ_CHECK(size <= 14 + size_t{mtu});
    std::string why;
    const auto p = parse_l4(frame, size, &why);
    if (!p) std::fprintf(stderr, "bad frame: %s\n", why.c_str());
    FUZZ_CHECK(p.has_value());
    FUZZ_CHECK(p->src_port == 53);
    FUZZ_CHECK(p->eth_dst == kGuestMac && p->eth_src == (p->ipv6 ? kReplyMac6 : kReplyMac4));
    FUZZ_CHECK(p->src == (p->ipv6 ? kDns6 : kDns4));
    FUZZ_CHECK(p->dst == (p->ipv6 ? kGuest6 : kGuest4));
    if (p->proto == 6) {
      if ((p->flags & 0x02) != 0) FUZZ_CHECK(p->options.size() == 4 && p->options[0] == 2);
      Track& t = (*track)[{p->ipv6, p->dst_port}];
      t.our_next = p->ack;
      t.their_end = p->seq + static_cast<uint32_t>(p->payload.size()) + ((p->flags & 0x02) != 0) +
                    ((p->flags & 0x01) != 0);
    }
  }
};

uint64_t counter_sum(const DnsFrontend::Counters& c) {
  return c.udp_answered + c.udp_truncated + c.udp_passed + c.tcp_answered + c.tcp_refused +
         c.tcp_reset + c.tcp_over_cap + c.tcp_timeouts + c.bad_frame;
}

uint32_t pick_number(FuzzedDataProvider& in, uint32_t expected) {
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:
      return expected;
    case 1:
      return expected + static_cast<uint32_t>(in.ConsumeIntegralInRange<int32_t>(-3000, 3000));
    default:
      return in.ConsumeIntegral<uint32_t>();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static constexpr uint32_t kMtus[] = {68, 576, 1500, 9000};
  DnsFrontendConfig config;
  config.mtu = in.PickValueInArray(kMtus);
  config.max_connections = in.ConsumeIntegralInRange<size_t>(1, 8);
  config.ipv6 = in.ConsumeBool();
  Answerer answerer;
  std::map<std::pair<bool, uint16_t>, Track> track;
  Sink sink;
  sink.mtu = config.mtu;
  sink.track = &track;
  DnsFrontend fe(config, answerer, sink);
  int64_t now = 1000;
  uint64_t sum = 0;

  for (int op = 0; op < 256 && in.remaining_bytes() > 0; ++op) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
      case 0: {
        const std::vector<uint8_t> raw =
            in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 1600));
        fe.guest_frame(raw.data(), raw.size(), now);
        break;
      }
      case 1: {
        const bool v6 = in.ConsumeBool();
        L4Packet p = query_packet(v6, 17, in.ConsumeIntegral<uint16_t>());
        p.payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 600));
        std::vector<uint8_t> f = build_l4(p);
        const int corrupt = in.ConsumeIntegralInRange(0, 3);
        if (corrupt == 1) f[f.size() - 1] ^= 1;
        if (corrupt == 2) f[14 + (p.ipv6 ? 40 : 20) + 5] ^= 4;
        fe.guest_frame(f.data(), f.size(), now);
        break;
      }
      case 2: {
        const bool v6 = in.ConsumeBool();
        const uint16_t sport = static_cast<uint16_t>(41000 + in.ConsumeIntegralInRange(0, 3));
        L4Packet p = query_packet(v6, 6, sport);
        const Track t = track[{v6, sport}];
        p.flags = in.ConsumeIntegral<uint8_t>();
        p.seq = pick_number(in, t.our_next);
        p.ack = pick_number(in, t.their_end);
        p.window = in.ConsumeIntegral<uint16_t>();
        if (in.ConsumeBool()) p.options = {2, 4, 0, in.ConsumeIntegral<uint8_t>()};
        std::vector<uint8_t> body = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange(0, 300));
        if (in.ConsumeBool()) {
          p.payload = {static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
        }
        p.payload.insert(p.payload.end(), body.begin(), body.end());
        const std::vector<uint8_t> f = build_l4(p);
        fe.guest_frame(f.data(), f.size(), now);
        break;
      }
      case 3:
        answerer.verdict = static_cast<DnsResponder::Verdict>(in.ConsumeIntegralInRange(0, 2));
        answerer.size = in.ConsumeIntegralInRange<size_t>(0, 70000);
        break;
      default:
        now += in.ConsumeIntegralInRange(0, 20000);
        fe.on_timer(now);
        FUZZ_CHECK(fe.next_deadline_ms() > now);
        break;
    }
    FUZZ_CHECK(fe.open_connections() <= config.max_connections);
    if (fe.open_connections() == 0) FUZZ_CHECK(fe.next_deadline_ms() == INT64_MAX);
    const uint64_t s = counter_sum(fe.counters());
    FUZZ_CHECK(s >= sum);
    sum = s;
  }
  return 0;
}
