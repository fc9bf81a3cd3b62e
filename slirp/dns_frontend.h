// slirp/dns_frontend.h: the DNS transport of the slirp port: takes DNS queries out of the
// guests' UDP and TCP frames to the port's DNS addresses (dns=, ipv6-dns=), hands them to the
// message logic (slirp/dns_responder.h) and builds the reply frames. Pure frame logic: no
// sockets, no libuv; the clock comes in as milliseconds with every call.
//
// Theory of operation
// - guest_frame() is called for every guest frame whose IP destination is a DNS address and
//   whose transport is UDP or TCP to port 53 (is_candidate() is the cheap test enqueue() runs).
//   It returns kConsumed (the front end answered, or the frame belonged to one of its TCP
//   connections) or kPass (the caller hands the frame, unchanged, to slirp_input: libslirp's
//   forwarder to the host's resolvers, as before this front end existed).
// - UDP: an unfragmented datagram (IPv4: no MF, offset 0; a fragmented query is passed on, as
//   libslirp reassembles) to DNS:53 from a unicast Ethernet destination, with a UDP length
//   inside the IP payload and a valid checksum (IPv4: zero means none, RFC 768; IPv6: always
//   required, RFC 8200 section 8.1) is asked of the responder (Transport::kUdp). kAnswered:
//   one reply frame, source the DNS address port 53, destination the query's source address
//   and port, checksums computed (IPv4 header, UDP); Ethernet destination the query's source,
//   Ethernet source the MAC libslirp's own frames use (DnsFrontendConfig::mac4 / mac6). A
//   reply that would not fit the port's MTU is cut down to its header and question with TC
//   set (RFC 1035 section 4.2.1; RFC 7766 section 5: the client asks again over TCP).
//   kNotOurs / kMalformed and a datagram with a bad length or checksum: kPass (libslirp drops
//   what it finds bad).
// - TCP: libslirp cannot carry DNS over TCP for us (in restrict=on mode tcp_input resets every
//   connection that is not a host or guest forward; without it the query would go to the
//   host's resolver, never to the responder), so every TCP segment to DNS:53 is the front
//   end's (kConsumed, never kPass). A small one-shot responder per connection (RFC 7766
//   allows a server to close after its answer, section 6.2.3; a client must cope with it):
//   SYN -> SYN-ACK (ISN from a counter stepped by the clock, MSS option: ours is the MTU minus
//   headers; we send at most the guest's MSS, 536 without the option, RFC 9293 section
//   3.7.1; no window scaling, so the guest's window field is taken as is), in-order data
//   collected (the two-byte length then the message, RFC 1035 section 4.2.2, at most
//   kMaxTcpQuery bytes; an out-of-order or duplicate segment is answered with an ACK of what
//   we have), then the answer (Transport::kTcp) as [length][reply] in MSS-sized segments
//   within the guest's window, FIN on the last one. A query that is not ours is answered
//   REFUSED (header and question, RCODE 5), not relayed: with restrict=on libslirp forwards
//   nothing, and without it a relay over UDP (a synthesized datagram into slirp_input, its
//   reply caught in send_packet) would bring back the same truncated answer that sent the
//   client to TCP. A malformed message, or the guest's FIN before a complete query, resets the
//   connection. Data after the first message is acknowledged and dropped (no pipelining: the
//   connection closes after one answer).
// - Retransmission: the SYN-ACK and unacknowledged data/FIN are sent again (go-back-N from
//   the oldest unacknowledged byte) after kInitialRtoMs, doubling, at most kMaxTries times;
//   then the connection is dropped silently (tcp_timeouts). A connection that waits for the
//   query longer than kIdleMs, or for the guest's FIN after ours was acknowledged, is dropped
//   too (tcp_timeouts). The guest's FIN is acknowledged and ends the connection at once (no
//   TIME_WAIT: should our last ACK be lost, the guest's repeated FIN draws an RST).
// - RST: any segment (but an RST) for no known connection draws an RST (RFC 9293 section
//   3.10.7.1). An RST inside the window ends the connection. A SYN when max_connections are
//   open draws an RST (tcp_over_cap): the connections already open keep their slots.
// - Memory: the connection table (max_connections slots, each with its query buffer) and the
//   frame buffer are allocated once by the constructor; the only allocations later are the
//   responder's (its ldns parse, the reply vector, once per query; a slot's reply vector keeps
//   its capacity). next_deadline_ms() / on_timer() drive the retransmission timer.
// - Untrusted input: every length comes from the guest and is checked against the frame before
//   it is read; nothing here asserts on what a guest sends.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "slirp/dns_responder.h"
#include "slirp/guest_packet.h"

namespace qswitch::slirp {

// Who answers the queries (the slirp port's DnsResponder; a fake in tests).
class DnsAnswerer {
 public:
  virtual ~DnsAnswerer() = default;
  virtual DnsResponder::Verdict answer(const uint8_t* query, size_t size,
                                       DnsResponder::Transport transport,
                                       std::vector<uint8_t>& reply) = 0;
};

// Where the reply frames go (the slirp port: out to the guests like its DHCP replies).
class DnsFrameSink {
 public:
  virtual ~DnsFrameSink() = default;
  virtual void send_frame(const uint8_t* frame, size_t size) = 0;
};

struct DnsFrontendConfig {
  std::array<uint8_t, 4> dns4{10, 0, 2, 3};
  bool ipv6 = false;  // the IPv6 address counts only when the port has IPv6
  std::array<uint8_t, 16> dns6{0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3};
  // The replies' Ethernet source, as libslirp's own frames have it (slirp.c if_encap): IPv4
  // from the gateway's MAC (52:55 then the host address), IPv6 from 52:56 then the last four
  // bytes of the source address (in6_compute_ethaddr). Never the query's destination MAC: a
  // guest could name any MAC there and have the slirp port send from it.
  std::array<uint8_t, 6> mac4{0x52, 0x55, 10, 0, 2, 2};
  std::array<uint8_t, 6> mac6{0x52, 0x56, 0, 0, 0, 3};
  uint32_t mtu = 1500;  // IP packet size the guests take (slirp's if_mtu), 68..65520
  size_t max_connections = 32;
};

class DnsFrontend {
 public:
  enum class Result : uint8_t { kConsumed, kPass };
  struct Counters {
    uint64_t udp_answered = 0;   // UDP queries answered here
    uint64_t udp_truncated = 0;  // of those, cut to fit the MTU (TC set here)
    uint64_t udp_passed = 0;     // UDP queries handed on to libslirp (not ours, malformed)
    uint64_t tcp_answered = 0;   // TCP queries answered (REFUSED ones included)
    uint64_t tcp_refused = 0;    // TCP queries not ours: answered REFUSED
    uint64_t tcp_reset = 0;      // RSTs sent: unknown connection, malformed or oversized query
    uint64_t tcp_over_cap = 0;   // SYNs refused (RST): max_connections were open
    uint64_t tcp_timeouts = 0;   // connections dropped: retries exhausted or idle
    uint64_t bad_frame = 0;      // frames to DNS:53 with a bad length or checksum
  };
  static constexpr uint32_t kInitialRtoMs = 200;
  static constexpr uint32_t kMaxTries = 6;
  static constexpr uint32_t kIdleMs = 10'000;
  static constexpr size_t kMaxTcpQuery = 4096;  // length prefix included
  static constexpr uint16_t kDefaultMss = 536;  // RFC 9293 section 3.7.1

  DnsFrontend(const DnsFrontendConfig& config, DnsAnswerer& answerer, DnsFrameSink& sink);

  // Cheap: is this parsed guest packet UDP or TCP to a DNS address, port 53?
  bool is_candidate(const GuestPacket& packet) const;

  // One guest frame (a candidate or not: anything else is kPass).
  Result guest_frame(const uint8_t* frame, size_t size, int64_t now_ms);

  // The earliest time on_timer() has work; INT64_MAX when no connection waits for anything.
  int64_t next_deadline_ms() const;
  void on_timer(int64_t now_ms);

  size_t open_connections() const;
  const Counters& counters() const { return counters_; }
  const DnsFrontendConfig& config() const { return config_; }

 private:
  enum class State : uint8_t { kFree, kSynReceived, kReceiving, kSending, kFinWait };
  struct Conn {
    State state = State::kFree;
    bool ipv6 = false;
    std::array<uint8_t, 6> guest_mac{};
    std::array<uint8_t, 16> guest_ip{};
    uint16_t guest_port = 0;
    uint32_t rcv_nxt = 0;  // next byte we expect from the guest
    uint32_t iss = 0;      // our ISN
    uint32_t snd_una = 0;  // oldest byte (or FIN) the guest has not acknowledged
    uint32_t snd_nxt = 0;  // next byte we send
    uint32_t snd_max = 0;  // highest snd_nxt so far (a retransmission goes back to snd_una)
    bool guest_fin = false;
    uint32_t peer_window = 0;
    uint16_t mss = kDefaultMss;
    uint32_t tries = 0;  // sends of what snd_una starts (retransmission count + 1)
    int64_t deadline = INT64_MAX;
    int64_t started = 0;
    std::vector<uint8_t> in;  // kMaxTcpQuery bytes, allocated once
    size_t in_size = 0;
    std::vector<uint8_t> reply;  // the responder's reply; capacity kept
    std::vector<uint8_t> out;    // [length][reply]; capacity kept
  };
  struct Segment;

  Result udp(const uint8_t* frame, const GuestPacket& p, int64_t now_ms);
  Result tcp(const uint8_t* frame, const GuestPacket& p, int64_t now_ms);
  void open(const uint8_t* frame, const GuestPacket& p, const Segment& s, int64_t now_ms);
  void take_data(Conn& c, const Segment& s, int64_t now_ms);
  void respond(Conn& c, int64_t now_ms);
  // Sends what the window allows from snd_nxt (data, then FIN).
  void push(Conn& c, bool probe);
  void send_segment(Conn& c, uint32_t seq, uint8_t flags, const uint8_t* data, size_t size,
                    bool mss_option);
  void send_reset(const uint8_t* frame, const GuestPacket& p, const Segment& s);
  void arm_rto(Conn& c, int64_t now_ms);
  void drop(Conn& c);
  Conn* find(const GuestPacket& p, uint16_t guest_port);
  uint32_t fin_seq(const Conn& c) const;
  uint16_t our_mss(bool ipv6) const;

  // Ethernet + IP (+ transport header and payload already written at l4) in frame_, checksums.
  void finish_frame(bool ipv6, const uint8_t* eth_dst, const uint8_t* eth_src,
                    const uint8_t* ip_src, const uint8_t* ip_dst, uint8_t proto, size_t l4_size);
  uint8_t* l4_area(bool ipv6);
  const uint8_t* our_mac(bool ipv6) const {
    return ipv6 ? config_.mac6.data() : config_.mac4.data();
  }

  DnsFrontendConfig config_;
  DnsAnswerer& answerer_;
  DnsFrameSink& sink_;
  Counters counters_;
  std::vector<Conn> conns_;
  std::vector<uint8_t> frame_;  // one outgoing frame: 14 + mtu bytes
  std::vector<uint8_t> reply_;  // UDP replies; capacity kept
  uint32_t isn_counter_ = 0x5a17c0de;
  uint16_t ip_id_ = 1;
};

}  // namespace qswitch::slirp
