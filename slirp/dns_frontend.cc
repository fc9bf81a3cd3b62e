// slirp/dns_frontend.cc: see the header for the theory of operation.
#include "slirp/dns_frontend.h"

#include <algorithm>
#include <cstring>

#include "switch/frame.h"
#include "switch/offload.h"

namespace qswitch::slirp {

namespace {

constexpr size_t kEth = 14;
constexpr size_t kIp4 = 20;
constexpr size_t kIp6 = 40;
constexpr size_t kUdp = 8;
constexpr size_t kTcp = 20;
constexpr uint16_t kDnsPort = 53;
constexpr size_t kDnsHeader = 12;

constexpr uint8_t kFin = 0x01;
constexpr uint8_t kSyn = 0x02;
constexpr uint8_t kRst = 0x04;
constexpr uint8_t kPsh = 0x08;
constexpr uint8_t kAck = 0x10;

// The pseudo-header (RFC 768, RFC 9293 section 3.1, RFC 8200 section 8.1).
uint64_t pseudo_sum(bool ipv6, const uint8_t* src, const uint8_t* dst, uint8_t proto,
                    size_t l4_size) {
  const size_t n = ipv6 ? 16 : 4;
  uint64_t sum = sw::checksum_add(0, src, n);
  sum = sw::checksum_add(sum, dst, n);
  sum += proto;
  sum += static_cast<uint32_t>(l4_size >> 16);
  sum += static_cast<uint32_t>(l4_size & 0xffffu);
  return sum;
}

bool seq_lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool seq_le(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }

// Where a DNS message's first question ends (header included), or 0 when it does not fit. The
// name is walked label by label; a compression pointer ends it (RFC 1035 section 4.1.4).
size_t question_end(const uint8_t* msg, size_t size) {
  size_t off = kDnsHeader;
  for (int labels = 0; labels < 128; ++labels) {
    if (off >= size) return 0;
    const uint8_t len = msg[off];
    if (len == 0) {
      off += 1;
      return off + 4 <= size ? off + 4 : 0;
    }
    if ((len & 0xc0u) == 0xc0u) {
      off += 2;
      return off + 4 <= size ? off + 4 : 0;
    }
    if ((len & 0xc0u) != 0) return 0;
    off += 1 + size_t{len};
  }
  return 0;
}

// A reply of `msg`'s header and first question only (no records), into `out` (at least `size`
// bytes): with `refused`, `msg` is a query answered REFUSED (RCODE 5, RA clear, RD kept);
// otherwise `msg` is a reply cut down with TC set. Returns the size written (12 when the
// question cannot be found: a header alone, QDCOUNT 0).
size_t header_and_question(const uint8_t* msg, size_t size, bool refused, uint8_t* out,
                           size_t room) {
  if (size < kDnsHeader || room < kDnsHeader) return 0;
  size_t end = question_end(msg, size);
  if (end > room || load_be16(msg + 4) == 0) end = 0;
  const size_t n = end == 0 ? kDnsHeader : end;
  std::memmove(out, msg, n);
  if (refused) {
    out[2] = static_cast<uint8_t>(0x80u | (msg[2] & 0x79u));  // QR, opcode and RD kept
    out[3] = 5;                                               // REFUSED
  } else {
    out[2] = static_cast<uint8_t>(out[2] | 0x02u);  // TC
  }
  sw::store_be16(out + 4, end == 0 ? 0 : 1);
  sw::store_be16(out + 6, 0);
  sw::store_be16(out + 8, 0);
  sw::store_be16(out + 10, 0);
  return n;
}

bool unicast(const uint8_t* mac) { return (mac[0] & 1u) == 0; }

}  // namespace

struct DnsFrontend::Segment {
  uint16_t src_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  uint16_t mss = 0;  // the MSS option; 0 when absent
  const uint8_t* data = nullptr;
  size_t size = 0;
  // Sequence space the segment takes: data, SYN and FIN.
  uint32_t length() const {
    return static_cast<uint32_t>(size) + ((flags & kSyn) != 0 ? 1 : 0) +
           ((flags & kFin) != 0 ? 1 : 0);
  }
};

DnsFrontend::DnsFrontend(const DnsFrontendConfig& config, DnsAnswerer& answerer, DnsFrameSink& sink)
    : config_(config), answerer_(answerer), sink_(sink) {
  config_.mtu = std::clamp<uint32_t>(config_.mtu, 68, 65520);
  conns_.resize(config_.max_connections);
  for (Conn& c : conns_) c.in.resize(kMaxTcpQuery);
  frame_.resize(kEth + config_.mtu);
}

bool DnsFrontend::is_candidate(const GuestPacket& p) const {
  if (!p.first_fragment || p.l4_size < 4) return false;
  if (p.proto != kIpProtoUdp && p.proto != kIpProtoTcp) return false;
  if (load_be16(p.l4 + 2) != kDnsPort) return false;
  if (p.ipv6) return config_.ipv6 && std::memcmp(p.dst, config_.dns6.data(), 16) == 0;
  return std::memcmp(p.dst, config_.dns4.data(), 4) == 0;
}

DnsFrontend::Result DnsFrontend::guest_frame(const uint8_t* frame, size_t size, int64_t now_ms) {
  const std::optional<GuestPacket> p = parse_guest_packet(frame, size);
  if (!p || !is_candidate(*p)) return Result::kPass;
  if (p->ipv6) {
    // parse_guest_packet() cuts the payload to the frame; a payload length past the frame is a
    // truncated packet, not ours to read.
    if (load_be16(frame + kEth + 4) != p->l4_size) {
      counters_.bad_frame += 1;
      return p->proto == kIpProtoUdp ? Result::kPass : Result::kConsumed;
    }
  } else if ((load_be16(frame + kEth + 6) & 0x3fffu) != 0) {
    return Result::kPass;  // MF or an offset: a fragment, libslirp reassembles it
  }
  if (p->proto == kIpProtoUdp) return udp(frame, *p, now_ms);
  return tcp(frame, *p, now_ms);
}

DnsFrontend::Result DnsFrontend::udp(const uint8_t* frame, const GuestPacket& p,
                                     int64_t /*now_ms*/) {
  const uint8_t* u = p.l4;
  if (p.l4_size < kUdp) {
    counters_.bad_frame += 1;
    return Result::kPass;
  }
  const size_t udp_size = load_be16(u + 4);
  const uint16_t csum = load_be16(u + 6);
  if (udp_size < kUdp || udp_size > p.l4_size || (p.ipv6 && csum == 0) ||
      (csum != 0 &&
       static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(
           pseudo_sum(p.ipv6, p.src, p.dst, kIpProtoUdp, udp_size), u, udp_size))) != 0) ||
      !unicast(frame)) {
    counters_.bad_frame += 1;
    return Result::kPass;
  }
  const DnsResponder::Verdict v =
      answerer_.answer(u + kUdp, udp_size - kUdp, DnsResponder::Transport::kUdp, reply_);
  if (v != DnsResponder::Verdict::kAnswered || reply_.size() < kDnsHeader) {
    counters_.udp_passed += 1;
    return Result::kPass;
  }
  const size_t ip = p.ipv6 ? kIp6 : kIp4;
  const size_t room = config_.mtu - ip - kUdp;
  uint8_t* l4 = l4_area(p.ipv6);
  uint8_t* payload = l4 + kUdp;
  size_t n = reply_.size();
  if (n <= room) {
    std::memcpy(payload, reply_.data(), n);
  } else {
    n = header_and_question(reply_.data(), reply_.size(), false, payload, room);
    counters_.udp_truncated += 1;
  }
  sw::store_be16(l4, kDnsPort);
  std::memcpy(l4 + 2, u, 2);  // the query's source port
  sw::store_be16(l4 + 4, static_cast<uint16_t>(kUdp + n));
  sw::store_be16(l4 + 6, 0);
  finish_frame(p.ipv6, frame + 6, our_mac(p.ipv6), p.dst, p.src, kIpProtoUdp, kUdp + n);
  counters_.udp_answered += 1;
  return Result::kConsumed;
}

DnsFrontend::Result DnsFrontend::tcp(const uint8_t* frame, const GuestPacket& p, int64_t now_ms) {
  const uint8_t* t = p.l4;
  const size_t offset = p.l4_size >= kTcp ? static_cast<size_t>(t[12] >> 4) * 4 : 0;
  if (p.l4_size < kTcp || offset < kTcp || offset > p.l4_size || !unicast(frame) ||
      static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(
          pseudo_sum(p.ipv6, p.src, p.dst, kIpProtoTcp, p.l4_size), t, p.l4_size))) != 0) {
    counters_.bad_frame += 1;
    return Result::kConsumed;  // libslirp would drop it too
  }
  Segment s;
  s.src_port = load_be16(t);
  s.seq = load_be32(t + 4);
  s.ack = load_be32(t + 8);
  s.flags = t[13];
  s.window = load_be16(t + 14);
  s.data = t + offset;
  s.size = p.l4_size - offset;
  // Options (RFC 9293 section 3.1): only the MSS is read.
  for (size_t i = kTcp; i < offset;) {
    const uint8_t kind = t[i];
    if (kind == 0) break;
    if (kind == 1) {
      i += 1;
      continue;
    }
    if (i + 1 >= offset || t[i + 1] < 2 || i + t[i + 1] > offset) break;
    if (kind == 2 && t[i + 1] == 4) s.mss = load_be16(t + i + 2);
    i += t[i + 1];
  }

  Conn* c = find(p, s.src_port);
  if (c == nullptr) {
    if ((s.flags & kRst) != 0) return Result::kConsumed;
    if ((s.flags & (kSyn | kAck)) == kSyn) {
      open(frame, p, s, now_ms);
    } else {
      send_reset(frame, p, s);
    }
    return Result::kConsumed;
  }
  if ((s.flags & kRst) != 0) {
    // RFC 9293 section 3.10.7.4 (RFC 5961): only an RST inside the window ends the connection.
    if (seq_le(c->rcv_nxt, s.seq) && seq_lt(s.seq, c->rcv_nxt + kMaxTcpQuery)) drop(*c);
    return Result::kConsumed;
  }
  if ((s.flags & kSyn) != 0) {
    // A repeated SYN (our SYN-ACK was lost): send it again. Any other SYN gets an ACK of
    // where we are (a challenge ACK, RFC 5961 section 4).
    if (c->state == State::kSynReceived && s.seq + 1 == c->rcv_nxt) {
      send_segment(*c, c->iss, kSyn | kAck, nullptr, 0, true);
    } else {
      send_segment(*c, c->snd_nxt, kAck, nullptr, 0, false);
    }
    return Result::kConsumed;
  }
  if ((s.flags & kAck) == 0) return Result::kConsumed;  // RFC 9293: no ACK, dropped
  if (seq_lt(c->snd_max, s.ack) || seq_lt(s.ack, c->snd_una)) {
    send_segment(*c, c->snd_nxt, kAck, nullptr, 0, false);  // acknowledges what we never sent
    return Result::kConsumed;
  }
  c->peer_window = s.window;
  if (seq_lt(c->snd_una, s.ack)) {
    c->snd_una = s.ack;
    if (seq_lt(c->snd_nxt, s.ack)) c->snd_nxt = s.ack;
    c->tries = 0;
    c->deadline = INT64_MAX;
    if (c->state == State::kSynReceived) {
      c->state = State::kReceiving;
      c->deadline = now_ms + kIdleMs;
    }
  }
  if (c->state == State::kSending && c->snd_una == fin_seq(*c) + 1) {
    c->state = State::kFinWait;
    c->deadline = now_ms + kIdleMs;
  }
  if (c->state == State::kSynReceived) return Result::kConsumed;  // our SYN not yet acknowledged
  take_data(*c, s, now_ms);
  if (c->state == State::kFree) return Result::kConsumed;
  if ((s.flags & kFin) != 0 && s.seq + static_cast<uint32_t>(s.size) == c->rcv_nxt &&
      !c->guest_fin) {
    if (c->state == State::kReceiving) {
      // The guest closed before its query was complete.
      send_segment(*c, c->snd_nxt, kRst | kAck, nullptr, 0, false);
      counters_.tcp_reset += 1;
      drop(*c);
      return Result::kConsumed;
    }
    c->guest_fin = true;
    c->rcv_nxt += 1;
    send_segment(*c, c->snd_nxt, kAck, nullptr, 0, false);
  }
  if (c->state == State::kSending) {
    push(*c, false);
    arm_rto(*c, now_ms);
  }
  if (c->state == State::kFinWait && c->guest_fin) drop(*c);
  return Result::kConsumed;
}

void DnsFrontend::open(const uint8_t* frame, const GuestPacket& p, const Segment& s,
                       int64_t now_ms) {
  Conn* c = nullptr;
  for (Conn& k : conns_) {
    if (k.state == State::kFree) {
      c = &k;
      break;
    }
  }
  if (c == nullptr) {
    counters_.tcp_over_cap += 1;
    send_reset(frame, p, s);
    return;
  }
  c->state = State::kSynReceived;
  c->ipv6 = p.ipv6;
  std::memcpy(c->guest_mac.data(), frame + 6, 6);
  c->guest_ip.fill(0);
  std::memcpy(c->guest_ip.data(), p.src, p.ipv6 ? 16 : 4);
  c->guest_port = s.src_port;
  c->rcv_nxt = s.seq + 1;
  // ISNs: a counter stepped by the clock (RFC 9293 section 3.4.1's timer, coarsely) and by
  // each connection, so that a new connection from the same port does not reuse old numbers.
  isn_counter_ += static_cast<uint32_t>(now_ms) * 250u + 64'000u;
  c->iss = isn_counter_;
  c->snd_una = c->iss;
  c->snd_nxt = c->iss + 1;
  c->snd_max = c->snd_nxt;
  c->guest_fin = false;
  c->peer_window = s.window;
  c->mss = std::min<uint16_t>(s.mss != 0 ? s.mss : kDefaultMss, our_mss(p.ipv6));
  if (c->mss == 0) c->mss = 1;
  c->in_size = 0;
  c->reply.clear();
  c->out.clear();
  c->started = now_ms;
  send_segment(*c, c->iss, kSyn | kAck, nullptr, 0, true);
  c->tries = 1;
  c->deadline = now_ms + kInitialRtoMs;
}

void DnsFrontend::take_data(Conn& c, const Segment& s, int64_t now_ms) {
  if (s.size == 0) return;
  const uint32_t end = s.seq + static_cast<uint32_t>(s.size);
  if (!seq_le(s.seq, c.rcv_nxt) || !seq_lt(c.rcv_nxt, end)) {
    // Out of order, or all of it seen: tell the guest what we have.
    send_segment(c, c.snd_nxt, kAck, nullptr, 0, false);
    return;
  }
  const size_t skip = c.rcv_nxt - s.seq;
  const uint8_t* data = s.data + skip;
  const size_t len = s.size - skip;
  if (c.state != State::kReceiving) {
    // After the one query: read and dropped (the connection closes after its answer).
    c.rcv_nxt += static_cast<uint32_t>(len);
    send_segment(c, c.snd_nxt, kAck, nullptr, 0, false);
    return;
  }
  const size_t take = std::min(len, kMaxTcpQuery - c.in_size);
  std::memcpy(c.in.data() + c.in_size, data, take);
  c.in_size += take;
  if (c.in_size >= 2) {
    const size_t need = 2 + size_t{load_be16(c.in.data())};
    if (need > kMaxTcpQuery) {
      send_segment(c, c.snd_nxt, kRst | kAck, nullptr, 0, false);
      counters_.tcp_reset += 1;
      drop(c);
      return;
    }
    if (c.in_size >= need) {
      c.rcv_nxt += static_cast<uint32_t>(len);
      respond(c, now_ms);
      return;
    }
  }
  c.rcv_nxt += static_cast<uint32_t>(take);
  c.deadline = now_ms + kIdleMs;
  send_segment(c, c.snd_nxt, kAck, nullptr, 0, false);
}

void DnsFrontend::respond(Conn& c, int64_t now_ms) {
  const size_t size = load_be16(c.in.data());
  const DnsResponder::Verdict v =
      answerer_.answer(c.in.data() + 2, size, DnsResponder::Transport::kTcp, c.reply);
  if (v == DnsResponder::Verdict::kMalformed ||
      (v == DnsResponder::Verdict::kAnswered && c.reply.size() < kDnsHeader) || size < kDnsHeader) {
    send_segment(c, c.snd_nxt, kRst | kAck, nullptr, 0, false);
    counters_.tcp_reset += 1;
    drop(c);
    return;
  }
  if (v == DnsResponder::Verdict::kNotOurs) {
    c.reply.resize(size);
    const size_t n = header_and_question(c.in.data() + 2, size, true, c.reply.data(), size);
    c.reply.resize(n);
    counters_.tcp_refused += 1;
  }
  const size_t n = std::min<size_t>(c.reply.size(), 65535);
  c.out.resize(2 + n);
  sw::store_be16(c.out.data(), static_cast<uint16_t>(n));
  std::memcpy(c.out.data() + 2, c.reply.data(), n);
  counters_.tcp_answered += 1;
  c.state = State::kSending;
  c.tries = 0;
  c.deadline = INT64_MAX;
  push(c, false);
  arm_rto(c, now_ms);
}

uint32_t DnsFrontend::fin_seq(const Conn& c) const {
  return c.iss + 1 + static_cast<uint32_t>(c.out.size());
}

void DnsFrontend::push(Conn& c, bool probe) {
  const uint32_t end = fin_seq(c);
  uint32_t limit = c.snd_una + c.peer_window;
  if (probe && c.peer_window == 0) limit = c.snd_una + 1;
  while (seq_lt(c.snd_nxt, end)) {
    const uint32_t allowed = seq_lt(c.snd_nxt, limit) ? limit - c.snd_nxt : 0;
    const uint32_t n = std::min({uint32_t{c.mss}, end - c.snd_nxt, allowed});
    if (n == 0) break;
    const bool last = c.snd_nxt + n == end;
    const size_t at = c.snd_nxt - (c.iss + 1);
    send_segment(c, c.snd_nxt, static_cast<uint8_t>(kAck | kPsh | (last ? kFin : 0)),
                 c.out.data() + at, n, false);
    c.snd_nxt += n + (last ? 1 : 0);
  }
  if (c.snd_nxt == end) {  // every byte out, the FIN not yet (it takes no window)
    send_segment(c, c.snd_nxt, kAck | kFin, nullptr, 0, false);
    c.snd_nxt += 1;
  }
  if (seq_lt(c.snd_max, c.snd_nxt)) c.snd_max = c.snd_nxt;
}

void DnsFrontend::arm_rto(Conn& c, int64_t now_ms) {
  if (c.state != State::kSending || c.deadline != INT64_MAX) return;
  c.tries = 1;
  c.deadline = now_ms + kInitialRtoMs;
}

int64_t DnsFrontend::next_deadline_ms() const {
  int64_t next = INT64_MAX;
  for (const Conn& c : conns_) {
    if (c.state != State::kFree) next = std::min(next, c.deadline);
  }
  return next;
}

void DnsFrontend::on_timer(int64_t now_ms) {
  for (Conn& c : conns_) {
    if (c.state == State::kFree || c.deadline > now_ms) continue;
    if (c.state == State::kReceiving || c.state == State::kFinWait || c.tries >= kMaxTries) {
      counters_.tcp_timeouts += 1;
      drop(c);
      continue;
    }
    if (c.state == State::kSynReceived) {
      send_segment(c, c.iss, kSyn | kAck, nullptr, 0, true);
    } else {
      c.snd_nxt = c.snd_una;  // go back N
      push(c, true);
    }
    c.deadline = now_ms + (int64_t{kInitialRtoMs} << c.tries);
    c.tries += 1;
  }
}

size_t DnsFrontend::open_connections() const {
  return static_cast<size_t>(std::count_if(conns_.begin(), conns_.end(),
                                           [](const Conn& c) { return c.state != State::kFree; }));
}

void DnsFrontend::drop(Conn& c) {
  c.state = State::kFree;
  c.deadline = INT64_MAX;
  c.in_size = 0;
}

DnsFrontend::Conn* DnsFrontend::find(const GuestPacket& p, uint16_t guest_port) {
  const size_t n = p.ipv6 ? 16 : 4;
  for (Conn& c : conns_) {
    if (c.state != State::kFree && c.ipv6 == p.ipv6 && c.guest_port == guest_port &&
        std::memcmp(c.guest_ip.data(), p.src, n) == 0) {
      return &c;
    }
  }
  return nullptr;
}

uint16_t DnsFrontend::our_mss(bool ipv6) const {
  const uint32_t mss = config_.mtu - (ipv6 ? kIp6 : kIp4) - kTcp;
  return static_cast<uint16_t>(std::min<uint32_t>(mss, 65535));
}

uint8_t* DnsFrontend::l4_area(bool ipv6) { return frame_.data() + kEth + (ipv6 ? kIp6 : kIp4); }

void DnsFrontend::send_segment(Conn& c, uint32_t seq, uint8_t flags, const uint8_t* data,
                               size_t size, bool mss_option) {
  uint8_t* t = l4_area(c.ipv6);
  const size_t header = kTcp + (mss_option ? 4 : 0);
  sw::store_be16(t, kDnsPort);
  sw::store_be16(t + 2, c.guest_port);
  sw::store_be32(t + 4, seq);
  sw::store_be32(t + 8, (flags & kRst) != 0 && (flags & kAck) == 0 ? 0 : c.rcv_nxt);
  t[12] = static_cast<uint8_t>((header / 4) << 4);
  t[13] = flags;
  const size_t window = c.state == State::kReceiving || c.state == State::kSynReceived
                            ? kMaxTcpQuery - c.in_size
                            : kMaxTcpQuery;
  sw::store_be16(t + 14, static_cast<uint16_t>(window));
  sw::store_be16(t + 16, 0);
  sw::store_be16(t + 18, 0);
  if (mss_option) {
    t[20] = 2;
    t[21] = 4;
    sw::store_be16(t + 22, our_mss(c.ipv6));
  }
  if (size != 0) std::memcpy(t + header, data, size);
  const uint8_t* dns = c.ipv6 ? config_.dns6.data() : config_.dns4.data();
  finish_frame(c.ipv6, c.guest_mac.data(), our_mac(c.ipv6), dns, c.guest_ip.data(), kIpProtoTcp,
               header + size);
}

void DnsFrontend::send_reset(const uint8_t* frame, const GuestPacket& p, const Segment& s) {
  // RFC 9293 section 3.10.7.1: with an ACK, <SEQ=SEG.ACK><CTL=RST>; without,
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
  uint8_t* t = l4_area(p.ipv6);
  const bool has_ack = (s.flags & kAck) != 0;
  sw::store_be16(t, kDnsPort);
  sw::store_be16(t + 2, s.src_port);
  sw::store_be32(t + 4, has_ack ? s.ack : 0);
  sw::store_be32(t + 8, has_ack ? 0 : s.seq + s.length());
  t[12] = static_cast<uint8_t>((kTcp / 4) << 4);
  t[13] = has_ack ? kRst : static_cast<uint8_t>(kRst | kAck);
  sw::store_be16(t + 14, 0);
  sw::store_be16(t + 16, 0);
  sw::store_be16(t + 18, 0);
  counters_.tcp_reset += 1;
  finish_frame(p.ipv6, frame + 6, our_mac(p.ipv6), p.dst, p.src, kIpProtoTcp, kTcp);
}

void DnsFrontend::finish_frame(bool ipv6, const uint8_t* eth_dst, const uint8_t* eth_src,
                               const uint8_t* ip_src, const uint8_t* ip_dst, uint8_t proto,
                               size_t l4_size) {
  uint8_t* f = frame_.data();
  std::memmove(f, eth_dst, 6);
  std::memmove(f + 6, eth_src, 6);
  uint8_t* ip = f + kEth;
  uint8_t* l4 = l4_area(ipv6);
  if (ipv6) {
    sw::store_be16(f + 12, 0x86dd);
    sw::store_be32(ip, 0x60000000u);
    sw::store_be16(ip + 4, static_cast<uint16_t>(l4_size));
    ip[6] = proto;
    ip[7] = 64;
    std::memcpy(ip + 8, ip_src, 16);
    std::memcpy(ip + 24, ip_dst, 16);
  } else {
    sw::store_be16(f + 12, 0x0800);
    ip[0] = 0x45;
    ip[1] = 0;
    sw::store_be16(ip + 2, static_cast<uint16_t>(kIp4 + l4_size));
    sw::store_be16(ip + 4, ip_id_++);
    sw::store_be16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = proto;
    sw::store_be16(ip + 10, 0);
    std::memcpy(ip + 12, ip_src, 4);
    std::memcpy(ip + 16, ip_dst, 4);
    sw::store_be16(ip + 10,
                   static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(0, ip, kIp4))));
  }
  const size_t csum_at = proto == kIpProtoUdp ? 6 : 16;
  sw::store_be16(l4 + csum_at, 0);
  uint16_t csum = static_cast<uint16_t>(~sw::checksum_fold(sw::checksum_add(
      pseudo_sum(ipv6, ip + (ipv6 ? 8 : 12), ip + (ipv6 ? 24 : 16), proto, l4_size), l4, l4_size)));
  if (proto == kIpProtoUdp && csum == 0) csum = 0xffff;  // RFC 768: 0 means no checksum
  sw::store_be16(l4 + csum_at, csum);
  sink_.send_frame(f, kEth + (ipv6 ? kIp6 : kIp4) + l4_size);
}

}  // namespace qswitch::slirp
