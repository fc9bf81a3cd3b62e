// bench/vhost_user_gso/vhost_user_gso.cc: qswitch-vhost-user-gso, a generator of 64 KiB TCP
// segments (TSO) for qswitch's vhost-user ports, and their sink. bench/vhost-user-compare runs it
// for the 64 KiB row of its frames part (testpmd's txonly, which makes the 64 B and 1514 B rows,
// cannot send a TSO frame).
//
// Theory of operation
// - Two front-ends of tests/support/vhost_user_frontend.h (memfd guest memory; split rings of 256
//   entries, QEMU's default; the vhost-user messages in QEMU 7.2's order), or one and a stream
//   socket:
//     --tx PATH              the sender: connects to qswitch --vhost-user unix:PATH and
//                            negotiates CSUM and HOST_TSO4 (what a Linux guest with TSO takes).
//     --rx vhost-user:PATH   the sink is a second front-end that negotiates GUEST_CSUM and
//                            GUEST_TSO4 with MRG_RXBUF and 4 KiB receive buffers (a Linux guest's
//                            mergeable buffers are at most a page): a segment crosses whole, in
//                            about 16 buffers, with its virtio-net header kept.
//     --rx stream:PATH       the sink is a QEMU-framed stream peer of qswitch --listen unix:PATH
//                            (4-byte big-endian length, then the frame): qswitch cuts each segment
//                            into --payload / --mss frames.
// - The segment: Ethernet, IPv4, TCP (20-byte headers, tests/support/ip_frames.h's
//   make_tcp_frame) with --payload bytes (default 45 x 1448 = 65160: a 65214-byte frame, what
//   Linux's TCP sends with a 1448-byte MSS under its 64 KiB GSO limit) from the sender's MAC to the
//   sink's, its TCP checksum field the pseudo-header sum, as a guest leaves it for the device;
//   the header: NEEDS_CSUM, gso_type TCPV4, hdr_len 54, gso_size --mss, csum_start 34,
//   csum_offset 16 (virtio 1.2 section 5.1.6.2). With --plain the header is all zero (an
//   ordinary frame: --payload 1460 makes the 1514-byte frame of the zero-copy rows; its TCP
//   checksum field keeps the pseudo-header sum, which nothing on the way checks), and with
//   --seal the sender's memfd is sealed against shrinking, as QEMU's memory-backend-memfd's
//   is, so qswitch lends such frames out of it instead of copying them (vhost_tx_lent).
// - Start: the sender connects and starts its device, then the sink, which sends one broadcast
//   frame so qswitch learns its MAC (the segments are known unicast, never flooded); the sender
//   must receive that frame within 5 s, which shows the path works.
// - The loop, one thread (the caller pins it: taskset): queue as many segments as the TX ring
//   has free descriptors (queue_tx() reclaims what qswitch used), at most a burst, publish and
//   kick as the device asks (flush_tx()); take every frame the sink has (no wait); when neither
//   moved, wait up to 2 ms for the sink. So the sender is paced by its ring: qswitch hands a TX
//   head back only once every output is done with the frame. Stops after --time seconds, then
//   drains the sink until it has been quiet for 200 ms (at most 2 s more).
// - The sink checks what it counts: a vhost-user frame must be the segment's size with gso_type
//   TCPV4 (none with --plain); a stream frame must be 14..1514 bytes (with --plain: the frame's
//   size). Others are counted as bad.
// - Output: one line, JSON with --json, of what the generator saw (segments sent, frames and
//   bytes at the sink, seconds). The switch's view (its counters and CPU) is the caller's.
// - Every wait has a deadline; no address but unix sockets is used. Exit 0, or 1 with the reason
//   on stderr when a connection, the handshake or the learning frame fails or the sink got
//   nothing; 2 on bad usage.
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/frame_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/test_frames.h"
#include "tests/support/vhost_user_frontend.h"

namespace {

using qswitch::test_support::FrameClient;
using qswitch::test_support::Mac;
using qswitch::test_support::TcpSegment;
using qswitch::test_support::VhostUserFrontend;
namespace vu = qswitch::test_support::vu;
namespace ts = qswitch::test_support;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr uint32_t kQueueSize = 256;      // QEMU's default rx/tx_queue_size
constexpr uint32_t kRxBufferSize = 4096;  // a page, as a Linux guest's mergeable buffers
constexpr uint32_t kBurst = 32;           // segments queued per publish at most
constexpr uint32_t kHeadersSize = 14 + 20 + 20;
constexpr uint32_t kMaxStreamFrame = 1514;  // what a cut segment may be on the stream side
// The loop's wait when nothing moved: 2 ms, since receive() rounds its time left down to whole
// milliseconds (1 ms would not wait at all).
constexpr Millis kSinkWait(2);
constexpr Millis kDrainQuiet(200);
constexpr Millis kDrainMax(2000);
const Mac kSenderMac = ts::test_mac(0x6b01);
const Mac kSinkMac = ts::test_mac(0x6b02);

struct Options {
  std::string tx_path;
  enum class Sink { kNone, kVhostUser, kStream } sink = Sink::kNone;
  std::string rx_path;
  double seconds = 5;
  uint32_t payload = 45 * 1448;
  uint32_t mss = 1448;
  bool plain = false;  // an ordinary frame: no offload asked in its virtio-net header
  bool seal = false;   // the sender's memfd sealed against shrinking (qswitch lends from it)
  bool json = false;
};

const char kUsage[] =
    "usage: qswitch-vhost-user-gso --tx PATH --rx vhost-user:PATH|stream:PATH [--time S]\n"
    "                              [--payload BYTES] [--mss BYTES] [--plain] [--seal] [--json]\n"
    "  --tx PATH       qswitch's --vhost-user unix socket for the sender (CSUM, HOST_TSO4)\n"
    "  --rx KIND:PATH  the sink: a second vhost-user front-end (GUEST_CSUM, GUEST_TSO4,\n"
    "                  MRG_RXBUF) or a stream peer of qswitch --listen unix:PATH\n"
    "  --time S        seconds of sending, 0.1..120 (default 5)\n"
    "  --payload B     TCP payload per segment, 1..65481 (default 65160 = 45 x 1448)\n"
    "  --mss B         gso_size, 536..9000 (default 1448)\n"
    "  --plain         send the frame as an ordinary one (virtio-net header all zero: no\n"
    "                  checksum or segmentation left to qswitch); --payload 1460 makes 1514 B\n"
    "  --seal          seal the sender's memory against shrinking, as QEMU's memfd backend\n"
    "                  does: qswitch lends ordinary frames of 512 B or more out of it (zero copy)\n"
    "  --json          one JSON line instead of text\n";

std::optional<Options> parse_args(int argc, char** argv, std::string* error) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (name == "--json" || name == "--plain" || name == "--seal") {
      (name == "--json" ? o.json : name == "--plain" ? o.plain : o.seal) = true;
      continue;
    }
    if (i + 1 >= argc) {
      *error = "missing value after " + name;
      return std::nullopt;
    }
    const std::string v = argv[++i];
    char* end = nullptr;
    if (name == "--tx") {
      o.tx_path = v;
    } else if (name == "--rx") {
      if (v.rfind("vhost-user:", 0) == 0) {
        o.sink = Options::Sink::kVhostUser;
        o.rx_path = v.substr(11);
      } else if (v.rfind("stream:", 0) == 0) {
        o.sink = Options::Sink::kStream;
        o.rx_path = v.substr(7);
      } else {
        *error = "bad --rx '" + v + "': expected vhost-user:PATH or stream:PATH";
        return std::nullopt;
      }
    } else if (name == "--time") {
      o.seconds = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end != '\0' || !(o.seconds >= 0.1 && o.seconds <= 120)) {
        *error = "bad --time '" + v + "': expected seconds 0.1..120";
        return std::nullopt;
      }
    } else if (name == "--payload" || name == "--mss") {
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      const bool payload = name == "--payload";
      const unsigned long lo = payload ? 1 : 536;
      const unsigned long hi = payload ? 65535 - 40 - 14 : 9000;
      if (end == v.c_str() || *end != '\0' || n < lo || n > hi) {
        *error = "bad " + name + " '" + v + "': expected bytes " + std::to_string(lo) + ".." +
                 std::to_string(hi);
        return std::nullopt;
      }
      (payload ? o.payload : o.mss) = static_cast<uint32_t>(n);
    } else {
      *error = "unknown option " + name;
      return std::nullopt;
    }
  }
  if (o.tx_path.empty() || o.sink == Options::Sink::kNone) {
    *error = "--tx and --rx are required";
    return std::nullopt;
  }
  return o;
}

// The segment and its virtio-net header (see the theory of operation).
struct Segment {
  std::vector<uint8_t> frame;
  VhostUserFrontend::SendOptions send;
};

Segment make_segment(const Options& o) {
  TcpSegment s;
  s.eth_dst = kSinkMac;
  s.eth_src = kSenderMac;
  s.ip_src = ts::ipv4(10, 0, 0, 1);
  s.ip_dst = ts::ipv4(10, 0, 0, 2);
  s.src_port = 40000;
  s.dst_port = 5201;
  s.flags = ts::kTcpAck | ts::kTcpPsh;
  s.seq = 0x10000000;
  s.ack = 1;
  s.window = 65535;
  s.payload.resize(o.payload);
  for (uint32_t i = 0; i < o.payload; ++i) s.payload[i] = static_cast<uint8_t>(i * 13 + i / 251);
  Segment seg;
  seg.frame = ts::make_tcp_frame(s);
  // The checksum field: the pseudo-header sum, folded, not inverted (RFC 793 section 3.1).
  const uint32_t tcp_size = 20 + o.payload;
  const uint32_t pseudo = (s.ip_src >> 16) + (s.ip_src & 0xffff) + (s.ip_dst >> 16) +
                          (s.ip_dst & 0xffff) + ts::kIpProtoTcp + tcp_size;
  const auto partial = static_cast<uint16_t>(~ts::internet_checksum({}, pseudo));
  seg.frame[34 + 16] = static_cast<uint8_t>(partial >> 8);
  seg.frame[34 + 17] = static_cast<uint8_t>(partial);
  if (o.plain) return seg;  // an all-zero header: nothing left to do
  // virtio_net_hdr (little-endian): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
  auto& h = seg.send.header;
  h[0] = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
  h[1] = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
  const uint16_t fields[4] = {static_cast<uint16_t>(kHeadersSize), static_cast<uint16_t>(o.mss), 34,
                              16};
  for (int i = 0; i < 4; ++i) {
    h[2 + 2 * i] = static_cast<uint8_t>(fields[i]);
    h[3 + 2 * i] = static_cast<uint8_t>(fields[i] >> 8);
  }
  return seg;
}

// A started front-end on `path` with `features` wanted on top of the defaults (nullptr, *error).
std::unique_ptr<VhostUserFrontend> start_frontend(const std::string& path, uint64_t features,
                                                  uint64_t memory_size, uint32_t tx_slot_size,
                                                  bool seal, std::string* error) {
  VhostUserFrontend::Options options;
  options.seal_memory = seal;
  options.memory_size = memory_size;
  options.queue_size = kQueueSize;
  options.rx_buffer_size = kRxBufferSize;
  options.tx_slot_size = tx_slot_size;
  options.wanted_features |= features;
  auto f = VhostUserFrontend::create(options, error);
  if (!f) return nullptr;
  std::string e = f->connect(path, Millis(5000));
  if (e.empty()) e = f->handshake();
  if (e.empty()) e = f->start();
  if (!e.empty()) {
    *error = path + ": " + e;
    return nullptr;
  }
  if ((f->negotiated_features() & features) != features) {
    char text[96];
    std::snprintf(text, sizeof text, "features 0x%llx wanted, 0x%llx negotiated",
                  static_cast<unsigned long long>(features),
                  static_cast<unsigned long long>(f->negotiated_features() & features));
    *error = path + ": " + text;
    return nullptr;
  }
  return f;
}

struct SinkCount {
  uint64_t frames = 0;
  uint64_t bytes = 0;  // Ethernet frame bytes
  uint64_t bad = 0;    // not what the theory of operation says arrives
};

// The sink: a vhost-user front-end or a stream socket; take() counts what is there now.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string learn() = 0;  // sends the broadcast that teaches qswitch the sink's MAC
  // Counts every frame that has arrived (waits up to `wait` for the first): frames taken, or -1
  // (with *error) when the sink broke.
  virtual int64_t take(Millis wait, SinkCount* count, std::string* error) = 0;
};

class VhostUserSink final : public Sink {
 public:
  VhostUserSink(std::unique_ptr<VhostUserFrontend> f, size_t segment_size, uint8_t gso_type)
      : f_(std::move(f)), segment_size_(segment_size), gso_type_(gso_type) {}
  std::string learn() override {
    return f_->send(ts::make_frame(ts::kBroadcastMac, kSinkMac, 60, 1));
  }
  int64_t take(Millis wait, SinkCount* count, std::string* error) override {
    int64_t n = 0;
    for (Millis w = wait;; w = Millis(0)) {
      if (w.count() == 0 && f_->rx_pending() == 0) return n;
      VhostUserFrontend::Received r = f_->receive(w);
      if (r.status == VhostUserFrontend::Received::Status::kTimeout) return n;
      if (!r.ok()) {
        *error = "sink: " + r.error;
        return -1;
      }
      ++n;
      ++count->frames;
      count->bytes += r.frame.size();
      if (r.frame.size() != segment_size_ || r.header[1] != gso_type_) ++count->bad;
    }
  }

 private:
  std::unique_ptr<VhostUserFrontend> f_;
  size_t segment_size_;
  uint8_t gso_type_;  // what every frame's header must say: TCPV4 (1), or none (0) with --plain
};

class StreamSink final : public Sink {
 public:
  // `expect`: every frame's size, or 0 for cut segments (14..kMaxStreamFrame bytes).
  StreamSink(FrameClient client, uint32_t expect)
      : client_(std::move(client)), buffer_(1 << 20), expect_(expect) {}
  std::string learn() override {
    return client_.send_frame(ts::make_frame(ts::kBroadcastMac, kSinkMac, 60, 1))
               ? ""
               : "sink: " + client_.last_error();
  }
  int64_t take(Millis wait, SinkCount* count, std::string* error) override {
    if (wait.count() > 0) {
      pollfd p{client_.fd(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return 0;
    }
    int64_t n = 0;
    // At most a few buffers' worth per call, so the sender gets its turn.
    for (int rounds = 0; rounds < 4; ++rounds) {
      const ssize_t got =
          ::recv(client_.fd(), buffer_.data() + have_, buffer_.size() - have_, MSG_DONTWAIT);
      if (got == 0) {
        *error = "sink: qswitch closed the stream connection";
        return -1;
      }
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return n;
        *error = std::string("sink: recv: ") + std::strerror(errno);
        return -1;
      }
      have_ += static_cast<size_t>(got);
      size_t at = 0;
      while (have_ - at >= 4) {
        const uint8_t* p = buffer_.data() + at;
        const uint32_t len =
            uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
        if (len < ts::kEthHeaderSize || len > ts::kMaxFrameSize) {
          *error = "sink: a frame length of " + std::to_string(len) + " on the stream";
          return -1;
        }
        if (have_ - at < 4 + size_t{len}) break;
        ++n;
        ++count->frames;
        count->bytes += len;
        if (expect_ != 0 ? len != expect_ : len > kMaxStreamFrame) ++count->bad;
        at += 4 + size_t{len};
      }
      std::memmove(buffer_.data(), buffer_.data() + at, have_ - at);
      have_ -= at;
    }
    return n;
  }

 private:
  FrameClient client_;
  std::vector<uint8_t> buffer_;
  size_t have_ = 0;
  uint32_t expect_;
};

std::unique_ptr<Sink> open_sink(const Options& o, size_t segment_size, std::string* error) {
  if (o.sink == Options::Sink::kVhostUser) {
    auto f = start_frontend(o.rx_path, vu::kFGuestCsum | vu::kFGuestTso4 | vu::kFMrgRxbuf, 8 << 20,
                            4096, false, error);
    if (!f) return nullptr;
    return std::make_unique<VhostUserSink>(std::move(f), segment_size, o.plain ? 0 : 1);
  }
  std::optional<FrameClient> c = FrameClient::connect("unix:" + o.rx_path, error, Millis(5000));
  if (!c) return nullptr;
  return std::make_unique<StreamSink>(std::move(*c),
                                      o.plain ? static_cast<uint32_t>(segment_size) : 0);
}

int fail(const std::string& why) {
  std::fprintf(stderr, "qswitch-vhost-user-gso: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  const std::optional<Options> parsed = parse_args(argc, argv, &error);
  if (!parsed) {
    std::fprintf(stderr, "qswitch-vhost-user-gso: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  const Options& o = *parsed;
  const Segment seg = make_segment(o);

  // A TX slot: the 32-byte indirect table, the header, the segment (rounded up to 16).
  const auto slot = static_cast<uint32_t>((32 + vu::kNetHdrSize + seg.frame.size() + 15) / 16 * 16);
  const uint64_t memory = uint64_t{kQueueSize} * (slot + kRxBufferSize) + (4 << 20);
  auto tx = start_frontend(o.tx_path, vu::kFCsum | vu::kFHostTso4, memory, slot, o.seal, &error);
  if (!tx) return fail("sender: " + error);
  std::unique_ptr<Sink> sink = open_sink(o, seg.frame.size(), &error);
  if (!sink) return fail(error);
  error = sink->learn();
  if (!error.empty()) return fail(error);
  const VhostUserFrontend::Received learnt = tx->receive(Millis(5000));
  if (!learnt.ok() || ts::frame_src(learnt.frame) != kSinkMac)
    return fail("the sink's broadcast did not reach the sender within 5 s: " + learnt.error);

  SinkCount count;
  uint64_t sent = 0;
  const auto start = Clock::now();
  const auto stop_at =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  while (Clock::now() < stop_at) {
    uint32_t queued = 0;
    while (queued < kBurst && tx->queue_tx(seg.frame, seg.send).empty()) ++queued;
    if (queued > 0) tx->flush_tx();
    sent += queued;
    const int64_t got = sink->take(Millis(queued > 0 ? 0 : kSinkWait.count()), &count, &error);
    if (got < 0) return fail(error);
  }
  const auto sent_end = Clock::now();
  // Drain: until the sink has been quiet for kDrainQuiet, at most kDrainMax.
  const auto drain_end = sent_end + kDrainMax;
  auto quiet_since = Clock::now();
  while (Clock::now() < drain_end && Clock::now() - quiet_since < kDrainQuiet) {
    const int64_t got = sink->take(Millis(10), &count, &error);
    if (got < 0) return fail(error);
    if (got > 0) quiet_since = Clock::now();
  }
  tx->reclaim_tx();
  if (count.frames == 0) return fail("the sink received nothing");

  const double secs = std::chrono::duration<double>(sent_end - start).count();
  const double payload_bits = 8.0 * o.payload;
  const VhostUserFrontend::Counters& c = tx->counters();
  if (o.json) {
    std::printf(
        "{\"sink\":\"%s\",\"seconds\":%.3f,\"segment_size\":%zu,\"payload\":%u,\"mss\":%u,"
        "\"segments_sent\":%llu,\"segments_in_flight\":%u,\"sink_frames\":%llu,"
        "\"sink_bytes\":%llu,\"sink_bad\":%llu,\"segments_per_s\":%.0f,\"payload_gbps\":%.3f,"
        "\"tx_kicks\":%llu,\"tx_kicks_suppressed\":%llu}\n",
        o.sink == Options::Sink::kVhostUser ? "vhost-user" : "stream", secs, seg.frame.size(),
        o.payload, o.mss, static_cast<unsigned long long>(sent), tx->tx_in_flight(),
        static_cast<unsigned long long>(count.frames), static_cast<unsigned long long>(count.bytes),
        static_cast<unsigned long long>(count.bad), static_cast<double>(sent) / secs,
        static_cast<double>(sent) * payload_bits / secs / 1e9,
        static_cast<unsigned long long>(c.kicks),
        static_cast<unsigned long long>(c.kicks_suppressed));
  } else {
    std::printf(
        "%llu segments of %zu bytes (%u payload, gso_size %u) in %.2f s: %.0f segments/s, %.2f "
        "Gbit/s of payload; the sink took %llu frames (%llu bad)\n",
        static_cast<unsigned long long>(sent), seg.frame.size(), o.payload, o.mss, secs,
        static_cast<double>(sent) / secs, static_cast<double>(sent) * payload_bits / secs / 1e9,
        static_cast<unsigned long long>(count.frames), static_cast<unsigned long long>(count.bad));
  }
  return count.bad == 0 ? 0 : fail("the sink received frames it did not expect");
}
