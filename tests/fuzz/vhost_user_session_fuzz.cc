// tests/fuzz/vhost_user_session_fuzz.cc: a live vhost-user port session, the whole back-end
// (backends/vhost_user/vhost_user_port.cc as make_vhost_user_port() makes it) on a real
// SwitchLoop, driven by a scripted front-end in this process. vhost_user_msg_fuzz and
// virtqueue_fuzz cover the message reader and the ring walker alone; this one covers what the
// port does with them: the handshake, memory tables mapped from a real memfd, rings started,
// paused, stopped and restarted, kicks on eventfds, frames through the switch (forwarding,
// flooding, the switch's TCP segmentation and checksum completion) and into another guest's
// receive ring (one buffer per frame, or mergeable buffers).
//
// The world of one input (everything is made and closed within the run, nothing survives it):
//   - a SwitchLoop (its signal handlers saved and restored around it: libFuzzer keeps its own);
//   - two vhost-user sessions, A and B, each a port over a socketpair, with 512 KiB of guest
//     memory in a memfd that this process maps too, and eventfds for kicks and calls;
//   - a stream port over a socketpair (a sink that takes no offloads, so large segments toward
//     it are cut by the switch; it can also send frames to the guests).
// The input then scripts up to kMaxOps operations, each for session A or B:
//   handshake (QEMU's start-up messages), start (SET_FEATURES with a subset of what is offered,
//   SET_MEM_TABLE with the memfd, per queue SET_VRING_NUM/BASE/ADDR/KICK/CALL), stop
//   (GET_VRING_BASE per queue), SET_VRING_ENABLE, a frame on the transmit queue (virtio-net
//   header with GSO and checksum fields, TCP/UDP over IPv4/IPv6, VLAN, laid out as one
//   descriptor, header then frame, several pieces or an indirect table), receive buffers posted,
//   kicks, loop turns (uv_run NOWAIT), a frame from the sink, and the hostile ones: any single
//   message with fuzzed fields (and fds of the wrong kind), raw bytes with fds, bytes poked
//   anywhere into guest memory (rings included), the memfd shrunk under the port's mapping
//   (sigbus_guard.h turns the port's fault into a close), the connection closed (and, once
//   closed, made again: a new port for the same guest, as QEMU's reconnect). At the end each
//   live session stops its rings (GET_VRING_BASE) and closes its socket. Like QEMU, the
//   front-end waits for GET_VRING_BASE's answers (a few loop turns) before it touches stopped
//   rings, and for the old port to see its connection end before it reconnects.
// Numbers come from the back of the input, raw bytes from the front (FuzzedDataProvider, as
// make_corpus.py lays the seeds out).
//
// Checked besides the sanitizers:
//   - every reply is a whole message with version 1 and REPLY set, at most kMaxPayloadSize bytes
//     of payload, answering (in order) a request that takes a reply or asked for one; a reply
//     the front-end must get (GET_*, an ack of REPLY_ACK's NEED_REPLY) is not skipped, and in an
//     honest session (below) carries what it should (u64 replies 8 bytes, the ack 0, the vring
//     index asked);
//   - an honest session is never closed by the port. A session is honest while it did only what
//     a correct front-end and driver do: the macros above in order, frames and buffers from a
//     free list of descriptors (no more than num chains out), buffers of at least 12 bytes,
//     nothing poked, shrunk or sent raw, no fuzzed single message but GET_*;
//   - in an honest session the used rings hand back only chains that were out; on the receive
//     queue a used length fits its buffer, with MRG_RXBUF num_buffers >= 1, those entries all
//     published together and every buffer but the last filled; a frame is at least 14 bytes;
//     its virtio-net header carries GSO or NEEDS_CSUM only when the guest negotiated them;
//   - the sink's stream is well formed: 4-byte lengths of 14..kMaxFrameSize;
//   - no fd of the run is left open when the run ends.
//
// qswitch's log lines (io::log_line) are replaced here: a run logs a few lines per
// port and thousands of runs a second would bury libFuzzer's output. QSWITCH_FUZZ_LOG=1 prints
// them; QSWITCH_FUZZ_TRACE=1 prints each operation, the messages sent, the used entries seen and
// the switch's counters at the end (with both set, replaying an input tells its story).
#include <dirent.h>
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/runtime/io/log.h"
#include "backends/runtime/switch_loop.h"
#include "backends/stream/stream_port.h"
#include "backends/vhost_user/vhost_user_msg.h"
#include "backends/vhost_user/vhost_user_port.h"
#include "backends/vhost_user/virtqueue.h"
#include "switch/frame.h"
#include "tests/fuzz/fuzz_check.h"

// The target's io::log_line (see the theory above): the library's log.cc is not linked in.
namespace qswitch::io {
void log_line(const char* fmt, ...) {
  static const bool print = std::getenv("QSWITCH_FUZZ_LOG") != nullptr;
  if (!print) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("qswitch: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}
}  // namespace qswitch::io

namespace {

using namespace qswitch;

// QSWITCH_FUZZ_TRACE=1: one line per operation (replaying an input).
bool tracing() {
  static const bool on = std::getenv("QSWITCH_FUZZ_TRACE") != nullptr;
  return on;
}
#define TRACE(...)                                    \
  do {                                                \
    if (tracing()) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)
namespace vh = backends::vhost_user;
namespace feat = vh::feature;
namespace pfeat = vh::protocol_feature;

constexpr int kMaxOps = 128;
constexpr uint64_t kMemSize = 0x80000;   // each guest's memfd
constexpr uint64_t kQueueArea = 0x2000;  // queue q's rings at q * kQueueArea
constexpr uint64_t kAvailOff = 0x1000;   // within a queue's area; the descriptor table first
constexpr uint64_t kUsedOff = 0x1400;
constexpr uint64_t kDataStart = 2 * kQueueArea;  // buffers from here to kMemSize
constexpr uint32_t kMaxNum = 256;                // what the ring areas hold
constexpr uint32_t kRx = 0, kTx = 1;
constexpr uint64_t kUaBase[2] = {0x7f1000000000, 0x7f2000000000};  // the front-end's addresses
constexpr uint64_t kGpaBases[4] = {0x100000, 0, 0x40000000, 0xfffffffffff00000};
constexpr uint64_t kHoleSize = 0x10000;
constexpr uint16_t kRingPieces = 8;  // descriptors of a direct chain at most
constexpr uint8_t kHdrFNeedsCsum = 1;
constexpr uint8_t kGsoTcpV4 = 1, kGsoTcpV6 = 4, kGsoEcn = 0x80;

// What a front-end may ask for, in the order start()'s mask bits pick them.
constexpr uint64_t kFeatureList[] = {
    feat::kVersion1,     feat::kRingIndirectDesc, feat::kRingEventIdx,    feat::kNetMrgRxbuf,
    feat::kNetCsum,      feat::kNetGuestCsum,     feat::kNetHostTso4,     feat::kNetHostTso6,
    feat::kNetGuestTso4, feat::kNetGuestTso6,     feat::kNetHostEcn,      feat::kNetGuestEcn,
    feat::kNetMac,       feat::kNetMtu,           feat::kProtocolFeatures};

using Mac = std::array<uint8_t, 6>;
constexpr Mac kMacs[3] = {{0x52, 0x54, 0, 0, 0, 0x0a},
                          {0x52, 0x54, 0, 0, 0, 0x0b},
                          {0x52, 0x54, 0, 0, 0, 0x0c}};  // A, B, the sink

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
void push16be(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void push_u64(std::vector<uint8_t>& v, uint64_t x) {
  uint8_t b[8];
  put64(b, x);
  v.insert(v.end(), b, b + 8);
}
void push_u32(std::vector<uint8_t>& v, uint32_t x) {
  uint8_t b[4];
  put32(b, x);
  v.insert(v.end(), b, b + 4);
}

uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}
uint32_t csum_add(uint32_t sum, const uint8_t* p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n % 2 != 0) sum += static_cast<uint32_t>(p[n - 1] << 8);
  return sum;
}

// An Ethernet frame from the input: addresses, an optional VLAN tag, then raw bytes or
// TCP/IPv4, TCP/IPv6, UDP/IPv4 with a payload of up to 64 KiB (IP lengths right). `l4` is the
// transport header's offset, `l4_size` its size (0: raw).
struct BuiltFrame {
  std::vector<uint8_t> bytes;
  uint32_t l4 = 0, l4_size = 0;
  int kind = 0;  // 0 raw, 1 TCPv4, 2 TCPv6, 3 UDPv4
};

BuiltFrame build_frame(FuzzedDataProvider& in, int self) {
  BuiltFrame f;
  std::vector<uint8_t>& b = f.bytes;
  const int dst = in.ConsumeIntegralInRange<int>(0, 4);
  Mac d{};
  if (dst == 0) d.fill(0xff);
  if (dst == 1) d = kMacs[self == 2 ? 0 : 1 - self];
  if (dst == 2) d = kMacs[2];
  if (dst == 3) d = kMacs[self == 2 ? 1 : self];
  if (dst == 4) {
    const uint64_t r = in.ConsumeIntegral<uint64_t>();
    std::memcpy(d.data(), &r, 6);
  }
  Mac s = kMacs[self];
  if (in.ConsumeBool()) {
    const uint64_t r = in.ConsumeIntegral<uint64_t>();
    std::memcpy(s.data(), &r, 6);
  }
  b.insert(b.end(), d.begin(), d.end());
  b.insert(b.end(), s.begin(), s.end());
  if (in.ConsumeBool()) {
    push16be(b, 0x8100);
    push16be(b, in.ConsumeIntegral<uint16_t>());
  }
  f.kind = in.ConsumeIntegralInRange<int>(0, 3);
  if (f.kind == 0) {
    const size_t len = in.ConsumeIntegralInRange<size_t>(0, 1600);
    push16be(b, in.ConsumeIntegral<uint16_t>());
    const std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(len);
    b.insert(b.end(), raw.begin(), raw.end());
    return f;
  }
  const bool big = in.ConsumeBool();
  size_t payload = big ? in.ConsumeIntegralInRange<size_t>(0, 65535)
                       : in.ConsumeIntegralInRange<size_t>(0, 1600);
  const uint8_t tcp_flags = f.kind == 3 ? 0 : in.ConsumeIntegral<uint8_t>();
  const bool options = in.ConsumeBool();
  const bool v6 = f.kind == 2;
  const uint32_t ip_size = v6 ? 40 : (options ? 24 : 20);
  f.l4_size = f.kind == 3 ? 8 : (options ? 32 : 20);
  const size_t max_payload = 65535 - f.l4_size - (v6 ? 0 : ip_size);
  if (payload > max_payload) payload = max_payload;
  push16be(b, v6 ? 0x86dd : 0x0800);
  const size_t ip = b.size();
  b.resize(ip + ip_size + f.l4_size + payload);
  uint8_t* p = b.data() + ip;
  const uint8_t proto = f.kind == 3 ? 17 : 6;
  const uint32_t l4_len = f.l4_size + static_cast<uint32_t>(payload);
  uint32_t pseudo = 0;
  if (v6) {
    p[0] = 0x60;
    p[4] = static_cast<uint8_t>(l4_len >> 8);
    p[5] = static_cast<uint8_t>(l4_len);
    p[6] = proto;
    p[7] = 64;
    for (int i = 0; i < 32; ++i) p[8 + i] = static_cast<uint8_t>(0x20 + i);
    pseudo = csum_add(0, p + 8, 32);
  } else {
    const uint32_t total = ip_size + l4_len;
    p[0] = static_cast<uint8_t>(0x40 | ip_size / 4);
    p[2] = static_cast<uint8_t>(total >> 8);
    p[3] = static_cast<uint8_t>(total);
    p[4] = 0x12;
    p[6] = 0x40;  // DF
    p[8] = 64;
    p[9] = proto;
    const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(p + 12, addrs, 8);
    if (options) p[20] = p[21] = p[22] = p[23] = 1;  // NOPs
    const uint16_t c = static_cast<uint16_t>(~csum_fold(csum_add(0, p, ip_size)));
    p[10] = static_cast<uint8_t>(c >> 8);
    p[11] = static_cast<uint8_t>(c);
    pseudo = csum_add(0, p + 12, 8);
  }
  pseudo += proto + l4_len;
  f.l4 = static_cast<uint32_t>(ip + ip_size);
  uint8_t* t = b.data() + f.l4;
  t[0] = 0x10;
  t[1] = 0x00;
  t[2] = 0x00;
  t[3] = 0x50;
  if (f.kind == 3) {
    t[4] = static_cast<uint8_t>(l4_len >> 8);
    t[5] = static_cast<uint8_t>(l4_len);
  } else {
    put32(t + 4, 0x01020304);
    t[12] = static_cast<uint8_t>((f.l4_size / 4) << 4);
    t[13] = tcp_flags;
    t[14] = 0x20;
    if (options) {
      const uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
      std::memcpy(t + 20, ts, 12);
    }
  }
  for (size_t i = 0; i < payload; ++i) t[f.l4_size + i] = static_cast<uint8_t>(i * 7 + 3);
  // The checksum field holds the pseudo-header sum, as a guest leaving the rest to us does.
  const uint16_t seed = csum_fold(pseudo);
  const size_t at = f.kind == 3 ? 6 : 16;
  t[at] = static_cast<uint8_t>(seed >> 8);
  t[at + 1] = static_cast<uint8_t>(seed);
  return f;
}

// ---- One guest: its memory, rings and connection, from the front-end's side ------------------

struct QueueModel {
  uint32_t num = 0;  // 0: not started
  uint16_t avail = 0;
  uint16_t last_used = 0;
  std::vector<uint16_t> free;                 // descriptors not in a chain that is out
  std::vector<std::vector<uint16_t>> chains;  // per head: its descriptors, empty when not out
  std::vector<uint32_t> cap;                  // per head: writable bytes (receive buffers)
  std::vector<uint64_t> first;                // per head: memory offset of its first byte
  uint32_t out = 0;                           // chains out
  int kick = -1, call = -1;                   // eventfds: ours; the port gets copies

  void reset(uint32_t n) {
    num = n;
    avail = last_used = 0;
    out = 0;
    free.clear();
    for (uint32_t i = n; i > 0; --i) free.push_back(static_cast<uint16_t>(i - 1));
    chains.assign(n, {});
    cap.assign(n, 0);
    first.assign(n, 0);
  }
};

struct Expect {
  uint32_t request;
  bool must;       // the front-end must get it (an honest session's GET_* or ack)
  uint32_t index;  // GET_VRING_BASE: the queue asked
};

class World;

class Session {
 public:
  Session(World& world, int self) : world_(world), self_(self) {}
  ~Session() { release(); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  bool create(FuzzedDataProvider& in);
  void release();

  // ---- Control ----
  void handshake(uint8_t protocol_mask);
  void start(uint16_t feature_mask, uint32_t num);
  void stop();
  void enable(uint32_t q, bool on);
  void fuzzed_message(FuzzedDataProvider& in);
  void raw_message(FuzzedDataProvider& in);
  void close_socket() {
    if (sock_ >= 0) ::close(sock_);
    sock_ = -1;
  }
  // A new connection (and port) for the same guest, as QEMU's reconnect: the session starts
  // over, honest again unless its memory was shrunk.
  void connect();
  // ---- Guest ----
  void send_frame(FuzzedDataProvider& in);
  void post_rx(FuzzedDataProvider& in);
  void kick(uint32_t q) {
    const uint64_t one = 1;
    if (queues_[q].kick >= 0) (void)!::write(queues_[q].kick, &one, sizeof one);
  }
  void poke(FuzzedDataProvider& in);
  void shrink(uint64_t size);
  // After loop turns: replies, calls, used rings.
  void drain();

  bool connected() const { return sock_ >= 0; }

 private:
  uint64_t gpa(uint64_t off) const { return off < split_ ? gpa0_ + off : gpa1_ + (off - split_); }
  uint64_t ua(uint64_t off) const { return off < split_ ? ua0_ + off : ua1_ + (off - split_); }
  uint64_t desc_off(uint32_t q) const { return q * kQueueArea; }
  uint64_t avail_off(uint32_t q) const { return q * kQueueArea + kAvailOff; }
  uint64_t used_off(uint32_t q) const { return q * kQueueArea + kUsedOff; }
  uint32_t header_size() const {
    return (features_ & (feat::kVersion1 | feat::kNetMrgRxbuf)) != 0 ? 12 : 10;
  }
  // Memory for `size` bytes (16-aligned), not crossing into a hole.
  uint64_t alloc(uint64_t size);
  void write_mem(uint64_t off, const uint8_t* p, size_t n) {
    if (mem_ok_ && n > 0 && off < kMemSize && n <= kMemSize - off) std::memcpy(mem_ + off, p, n);
  }
  void write_desc(uint32_t q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next);
  void publish(uint32_t q, uint16_t head);
  // What the guest did may change the answer to requests still in flight: none is owed now.
  void dishonest() {
    honest_ = false;
    for (Expect& e : expected_) e.must = false;
  }
  bool send(uint32_t request, uint32_t flags, std::span<const uint8_t> payload,
            std::span<const int> fds = {});
  void send_u64(uint32_t request, uint64_t v, uint32_t flags = vh::kVersion) {
    std::vector<uint8_t> p;
    push_u64(p, v);
    send(request, flags, p);
  }
  void send_state(uint32_t request, uint32_t index, uint32_t num) {
    std::vector<uint8_t> p;
    push_u32(p, index);
    push_u32(p, num);
    send(request, vh::kVersion, p);
  }
  void expect(uint32_t request, bool must, uint32_t index = 0) {
    expected_.push_back({request, must && honest_, index});
  }
  std::vector<uint8_t> mem_table(int count) const;
  void check_reply(uint32_t request, uint32_t flags, std::span<const uint8_t> payload);
  void reap(uint32_t q);
  void reap_rx_frame(QueueModel& q, uint16_t n_published);
  void give_back(QueueModel& q, uint32_t id);

  World& world_;
  int self_;
  int sock_ = -1;
  int memfd_ = -1;
  uint8_t* mem_ = nullptr;
  bool mem_ok_ = false;  // ours to touch (not shrunk)
  uint64_t split_ = kMemSize;
  uint64_t gpa0_ = 0, gpa1_ = 0, ua0_ = 0, ua1_ = 0;
  bool hole_ = false;
  uint64_t bump_ = kDataStart;
  uint64_t features_ = 0;
  uint64_t protocol_ = 0;
  bool started_ = false;
  bool honest_ = true;
  std::array<QueueModel, 2> queues_;
  std::vector<uint8_t> replies_;
  std::deque<Expect> expected_;
  bool raw_sent_ = false;  // replies to raw bytes cannot be matched to requests
};

// The sink: a stream port's peer.
struct Sink {
  int fd = -1;
  std::vector<uint8_t> in;
};

class World {
 public:
  World() {
    // libuv takes SIGINT/SIGTERM/SIGUSR1 for the switch loop and gives them back to SIG_DFL
    // when it lets go; libFuzzer keeps its own.
    save_signals();
    loop = std::make_unique<backends::SwitchLoop>(backends::LoopConfig{});
    restore_signals();
  }
  ~World() { close_loop(); }
  // Closes every port, then the loop.
  void close_loop() {
    save_signals();
    loop.reset();
    restore_signals();
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  void turns(int n) {
    for (int i = 0; i < n; ++i) uv_run(loop->uv(), UV_RUN_NOWAIT);
  }
  void drain_sink();
  void drain_all() {
    for (auto& s : sessions) s->drain();
    drain_sink();
  }
  void sink_frame(FuzzedDataProvider& in);

  std::unique_ptr<backends::SwitchLoop> loop;
  Sink sink;
  std::vector<std::unique_ptr<Session>> sessions;

 private:
  void save_signals() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSigs[i], nullptr, &saved_[i]);
  }
  void restore_signals() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSigs[i], &saved_[i], nullptr);
  }
  static constexpr int kSigs[3] = {SIGINT, SIGTERM, SIGUSR1};
  struct sigaction saved_[3]{};
};

// ---- Session: set-up and tear-down ----------------------------------------------------------

bool Session::create(FuzzedDataProvider& in) {
  const int layout = in.ConsumeIntegralInRange<int>(0, 2);  // one region, two adjacent, a hole
  if (layout > 0) split_ = 0x8000 + 0x4000 * in.ConsumeIntegralInRange<uint64_t>(0, 15);
  hole_ = layout == 2;
  const int base = in.ConsumeIntegralInRange<int>(0, 3);
  gpa0_ = kGpaBases[base];
  // Session A's memory is sealed against shrinking for odd bases, as QEMU's memfd is: the port
  // then lends its ordinary frames of 512 bytes and more (zero copy: tx_loans.h). Derived from a
  // value the input has anyway, so the committed inputs keep their meaning.
  const bool seal = self_ == 0 && base % 2 == 1;
  gpa1_ = gpa0_ + split_ + (hole_ ? kHoleSize : 0);
  ua0_ = kUaBase[self_];
  ua1_ = ua0_ + split_ + (hole_ ? kHoleSize : 0);

  memfd_ = ::memfd_create("qswitch-fuzz-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  FUZZ_CHECK(memfd_ >= 0);
  FUZZ_CHECK(::ftruncate(memfd_, kMemSize) == 0);
  if (seal) FUZZ_CHECK(::fcntl(memfd_, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
  void* m = ::mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  FUZZ_CHECK(m != MAP_FAILED);
  mem_ = static_cast<uint8_t*>(m);
  mem_ok_ = true;
  for (QueueModel& q : queues_) {
    q.kick = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q.call = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    FUZZ_CHECK(q.kick >= 0 && q.call >= 0);
  }
  connect();
  return true;
}

void Session::connect() {
  if (sock_ >= 0 || started_) {
    // The old port must see its connection end before a new one takes the rings (it reads EOF
    // on its next turn).
    close_socket();
    world_.turns(1);
    world_.drain_all();
  }
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  sock_ = sv[0];
  world_.loop->adopt(vh::make_vhost_user_port(*world_.loop, io::Fd::adopt(sv[1]),
                                              self_ == 0 ? "vhost-user:a" : "vhost-user:b"));
  features_ = protocol_ = 0;
  started_ = false;
  honest_ = mem_ok_;
  raw_sent_ = false;
  expected_.clear();
  replies_.clear();
}

void Session::release() {
  close_socket();
  for (QueueModel& q : queues_) {
    if (q.kick >= 0) ::close(q.kick);
    if (q.call >= 0) ::close(q.call);
    q.kick = q.call = -1;
  }
  if (mem_ != nullptr) ::munmap(mem_, kMemSize);
  mem_ = nullptr;
  if (memfd_ >= 0) ::close(memfd_);
  memfd_ = -1;
}

// ---- Session: control messages --------------------------------------------------------------

bool Session::send(uint32_t request, uint32_t flags, std::span<const uint8_t> payload,
                   std::span<const int> fds) {
  if (sock_ < 0) return false;
  TRACE("  %c sends %s (flags %#x, %zu bytes, %zu fds)\n", 'A' + self_,
        vh::request_name(static_cast<vh::Request>(request)), flags, payload.size(), fds.size());
  uint8_t header[vh::kHeaderSize];
  put32(header, request);
  put32(header + 4, flags);
  put32(header + 8, static_cast<uint32_t>(payload.size()));
  iovec iov[2] = {{header, sizeof header}, {const_cast<uint8_t*>(payload.data()), payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const size_t total = sizeof header + payload.size();
  // The port reads on its turn: when the socket is full, let it (bounded).
  for (int attempt = 0; attempt < 8; ++attempt) {
    const ssize_t n = ::sendmsg(sock_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(total)) return true;
    if (n >= 0) {
      // A partial message (only with a full socket): the rest in order, the fds went already.
      dishonest();
      return false;
    }
    if (errno != EAGAIN) return false;
    world_.turns(1);
    world_.drain_all();
    if (sock_ < 0) return false;
  }
  return false;
}

void Session::handshake(uint8_t protocol_mask) {
  // QEMU 7.2's start-up (vhost_user_msg.h).
  send(static_cast<uint32_t>(vh::Request::kGetFeatures), vh::kVersion, {});
  expect(static_cast<uint32_t>(vh::Request::kGetFeatures), true);
  send(static_cast<uint32_t>(vh::Request::kGetProtocolFeatures), vh::kVersion, {});
  expect(static_cast<uint32_t>(vh::Request::kGetProtocolFeatures), true);
  protocol_ = ((protocol_mask & 1) != 0 ? pfeat::kReplyAck : 0) |
              ((protocol_mask & 2) != 0 ? pfeat::kNetMtu : 0);
  send_u64(static_cast<uint32_t>(vh::Request::kSetProtocolFeatures), protocol_);
  send(static_cast<uint32_t>(vh::Request::kSetOwner), vh::kVersion, {});
  for (uint32_t q = 0; q < 2; ++q) {
    std::vector<uint8_t> p;
    push_u64(p, q);
    send(static_cast<uint32_t>(vh::Request::kSetVringCall), vh::kVersion, p, {&queues_[q].call, 1});
  }
  for (uint32_t q = 0; q < 2; ++q) enable(q, true);
}

std::vector<uint8_t> Session::mem_table(int count) const {
  std::vector<uint8_t> p;
  push_u32(p, static_cast<uint32_t>(count));
  push_u32(p, 0);
  for (int i = 0; i < count; ++i) {
    const bool second = i % 2 == 1;
    push_u64(p, second ? gpa1_ : gpa0_);
    push_u64(p, second ? kMemSize - split_ : split_);
    push_u64(p, second ? ua1_ : ua0_);
    push_u64(p, second ? split_ : 0);
  }
  return p;
}

void Session::start(uint16_t feature_mask, uint32_t num) {
  if (started_) stop();
  features_ = 0;
  for (size_t i = 0; i < std::size(kFeatureList); ++i) {
    if ((feature_mask >> i & 1) != 0) features_ |= kFeatureList[i];
  }
  // A restarted device's rings are new: zeroed, base 0 (as QEMU after a driver reset).
  for (uint32_t q = 0; q < 2; ++q) {
    if (mem_ok_) std::memset(mem_ + desc_off(q), 0, kQueueArea);
    queues_[q].reset(num);
  }
  TRACE("  %c: features %#llx, queue size %u\n", 'A' + self_,
        static_cast<unsigned long long>(features_), num);
  send_u64(static_cast<uint32_t>(vh::Request::kSetFeatures), features_);
  const bool ack = (protocol_ & pfeat::kReplyAck) != 0;
  const uint32_t need = vh::kVersion | (ack ? vh::kFlagNeedReply : 0);
  const int fds[2] = {memfd_, memfd_};
  const int regions = split_ < kMemSize ? 2 : 1;
  send(static_cast<uint32_t>(vh::Request::kSetMemTable), need, mem_table(regions),
       {fds, static_cast<size_t>(regions)});
  if (ack) expect(static_cast<uint32_t>(vh::Request::kSetMemTable), true);
  if ((protocol_ & pfeat::kNetMtu) != 0) {
    send_u64(static_cast<uint32_t>(vh::Request::kNetSetMtu), 1500, need);
    if (ack) expect(static_cast<uint32_t>(vh::Request::kNetSetMtu), true);
  }
  for (uint32_t q = 0; q < 2; ++q) {
    send_state(static_cast<uint32_t>(vh::Request::kSetVringNum), q, num);
    send_state(static_cast<uint32_t>(vh::Request::kSetVringBase), q, 0);
    std::vector<uint8_t> a;
    push_u32(a, q);
    push_u32(a, 0);
    push_u64(a, ua(desc_off(q)));
    push_u64(a, ua(used_off(q)));
    push_u64(a, ua(avail_off(q)));
    push_u64(a, 0);
    send(static_cast<uint32_t>(vh::Request::kSetVringAddr), vh::kVersion, a);
    std::vector<uint8_t> p;
    push_u64(p, q);
    send(static_cast<uint32_t>(vh::Request::kSetVringKick), vh::kVersion, p, {&queues_[q].kick, 1});
    send(static_cast<uint32_t>(vh::Request::kSetVringCall), vh::kVersion, p, {&queues_[q].call, 1});
  }
  started_ = true;
}

void Session::stop() {
  for (uint32_t q = 0; q < 2; ++q) {
    send_state(static_cast<uint32_t>(vh::Request::kGetVringBase), q, 0);
    expect(static_cast<uint32_t>(vh::Request::kGetVringBase), true, q);
  }
  // As QEMU: the rings are the back-end's until it has answered (a few loop turns at most).
  for (int i = 0; i < 16 && sock_ >= 0 && !expected_.empty(); ++i) {
    world_.turns(1);
    world_.drain_all();
  }
  started_ = false;
}

void Session::enable(uint32_t q, bool on) {
  send_state(static_cast<uint32_t>(vh::Request::kSetVringEnable), q, on ? 1 : 0);
}

void Session::fuzzed_message(FuzzedDataProvider& in) {
  using R = vh::Request;
  static constexpr R kRequests[] = {
      R::kGetFeatures,         R::kSetFeatures,         R::kSetOwner,     R::kResetOwner,
      R::kSetMemTable,         R::kSetVringNum,         R::kSetVringAddr, R::kSetVringBase,
      R::kGetVringBase,        R::kSetVringKick,        R::kSetVringCall, R::kSetVringErr,
      R::kGetProtocolFeatures, R::kSetProtocolFeatures, R::kGetQueueNum,  R::kSetVringEnable,
      R::kNetSetMtu,           R::kSetBackendReqFd,     R::kGetConfig,    R::kSetConfig,
      R::kGetMaxMemSlots,      R::kAddMemReg,           R::kSetLogBase,   R::kResetDevice};
  const R r = in.PickValueInArray(kRequests);
  const bool need_reply = in.ConsumeBool();
  const uint32_t flags = vh::kVersion | (need_reply ? vh::kFlagNeedReply : 0);
  const auto req = static_cast<uint32_t>(r);
  std::vector<uint8_t> p;
  std::vector<int> fds;
  uint32_t vring = 0;  // GET_VRING_BASE: the queue asked
  bool replies = false;
  bool harmless = false;  // asks, changes nothing
  auto index = [&in]() -> uint32_t {
    const int k = in.ConsumeIntegralInRange<int>(0, 3);
    return k < 3 ? static_cast<uint32_t>(k) : in.ConsumeIntegral<uint32_t>();
  };
  switch (r) {
    case R::kGetFeatures:
    case R::kGetProtocolFeatures:
    case R::kGetQueueNum:
    case R::kGetMaxMemSlots:
      replies = harmless = true;
      break;
    case R::kSetFeatures:
    case R::kSetProtocolFeatures:
    case R::kNetSetMtu:
    case R::kSetLogBase: {
      const bool raw = in.ConsumeBool();
      const uint64_t v = in.ConsumeIntegral<uint64_t>();
      const uint64_t offered = r == R::kSetProtocolFeatures ? pfeat::kOffered : feat::kOffered;
      push_u64(p, raw ? v : (v & offered));
      if (r == R::kSetFeatures && !raw) features_ = v & offered;
      if (r == R::kSetProtocolFeatures && !raw) protocol_ = v & offered;
      break;
    }
    case R::kSetVringNum:
    case R::kSetVringBase:
    case R::kGetVringBase:
    case R::kSetVringEnable: {
      const uint32_t i = index();
      uint32_t n = 0;
      if (in.ConsumeBool()) {
        n = in.ConsumeIntegral<uint32_t>();
      } else if (r == R::kSetVringNum) {
        n = 1U << in.ConsumeIntegralInRange<int>(0, 9);
      } else if (r == R::kSetVringBase) {
        n = in.ConsumeIntegral<uint16_t>();
      } else if (r == R::kSetVringEnable) {
        n = in.ConsumeBool() ? 1 : 0;
      }
      push_u32(p, i);
      push_u32(p, n);
      vring = i;
      replies = r == R::kGetVringBase;
      break;
    }
    case R::kSetVringAddr: {
      const uint32_t i = index();
      push_u32(p, i);
      push_u32(p, in.ConsumeIntegral<uint8_t>() & 1);
      const uint32_t q = i & 1;
      const uint64_t at[3] = {desc_off(q), used_off(q), avail_off(q)};
      for (uint64_t off : at) {
        const int mode = in.ConsumeIntegralInRange<int>(0, 2);
        if (mode == 0) push_u64(p, ua(off));
        if (mode == 1) push_u64(p, ua(off) + static_cast<uint64_t>(in.ConsumeIntegral<int16_t>()));
        if (mode == 2) push_u64(p, in.ConsumeIntegral<uint64_t>());
      }
      push_u64(p, 0);
      break;
    }
    case R::kSetVringKick:
    case R::kSetVringCall:
    case R::kSetVringErr: {
      const uint32_t i = index();
      const int kind = in.ConsumeIntegralInRange<int>(0, 2);  // eventfd, no fd, a memfd
      push_u64(p, (i & 0xff) | (kind == 1 ? vh::kVringNoFd : 0));
      if (kind == 0)
        fds.push_back(r == R::kSetVringKick ? queues_[i & 1].kick : queues_[i & 1].call);
      if (kind == 2) fds.push_back(memfd_);
      break;
    }
    case R::kSetMemTable: {
      const int count = in.ConsumeIntegralInRange<int>(1, 8);
      p = mem_table(count);
      for (int r2 = 0; r2 < count; ++r2) {
        uint8_t* region = p.data() + 8 + 32 * static_cast<size_t>(r2);
        switch (in.ConsumeIntegralInRange<int>(0, 4)) {
          case 1:
            put64(region, in.ConsumeIntegral<uint64_t>());
            break;
          case 2:
            put64(region + 8, in.ConsumeIntegralInRange<uint64_t>(0, kMemSize + 0x1000));
            break;
          case 3:
            put64(region + 16, in.ConsumeIntegral<uint64_t>());
            break;
          case 4:
            put64(region + 24, in.ConsumeIntegralInRange<uint64_t>(0, kMemSize + 0x1000));
            break;
          default:
            break;
        }
      }
      const int fd_mode = in.ConsumeIntegralInRange<int>(0, 2);  // memfds, one short, eventfds
      for (int k = 0; k < count - (fd_mode == 1 ? 1 : 0); ++k) {
        fds.push_back(fd_mode == 2 ? queues_[0].kick : memfd_);
      }
      break;
    }
    case R::kAddMemReg:
      push_u64(p, 0);
      p.resize(8 + 32);
      std::memcpy(p.data() + 8, mem_table(1).data() + 8, 32);
      fds.push_back(memfd_);
      break;
    case R::kSetBackendReqFd:
      fds.push_back(queues_[1].call);
      break;
    case R::kGetConfig:
    case R::kSetConfig: {
      const uint32_t size = in.ConsumeIntegralInRange<uint32_t>(0, vh::kMaxConfigSize);
      push_u32(p, in.ConsumeIntegralInRange<uint32_t>(0, 300));
      push_u32(p, size);
      push_u32(p, in.ConsumeIntegral<uint8_t>());
      p.resize(p.size() + size);
      replies = harmless = r == R::kGetConfig;
      break;
    }
    default:  // RESET_OWNER, SET_OWNER, RESET_DEVICE: no payload
      break;
  }
  if (!harmless) dishonest();
  send(req, flags, p, fds);
  if (replies) {
    expect(req, true, vring);
  } else if (need_reply) {
    expect(req, false);
  }
}

void Session::raw_message(FuzzedDataProvider& in) {
  dishonest();
  const size_t len = in.ConsumeIntegralInRange<size_t>(0, 300);
  const int nfds = in.ConsumeIntegralInRange<int>(0, 3);
  const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(len);
  if (sock_ < 0 || bytes.empty()) return;
  const int fd_choice[3] = {memfd_, queues_[0].kick, queues_[1].call};
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 3)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fd_choice, sizeof(int) * nfds);
  }
  (void)::sendmsg(sock_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  // Replies to raw bytes cannot be matched: from now on any reply goes.
  expected_.clear();
  raw_sent_ = true;
}

// ---- Session: the guest's side of the rings ---------------------------------------------------

uint64_t Session::alloc(uint64_t size) {
  size = (size + 15) & ~uint64_t{15};
  if (size > kMemSize - kDataStart) return kDataStart;
  uint64_t at = bump_;
  if (at + size > kMemSize) at = kDataStart;
  if (hole_ && at < split_ && at + size > split_) at = split_;
  if (at + size > kMemSize) at = kDataStart;
  bump_ = at + size;
  return at;
}

void Session::write_desc(uint32_t q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                         uint16_t next) {
  uint8_t d[16];
  put64(d, addr);
  put32(d + 8, len);
  put16(d + 12, flags);
  put16(d + 14, next);
  write_mem(desc_off(q) + 16ULL * i, d, 16);
}

void Session::publish(uint32_t q, uint16_t head) {
  QueueModel& m = queues_[q];
  if (!mem_ok_) return;
  put16(mem_ + avail_off(q) + 4 + 2 * size_t{m.avail % m.num}, head);
  ++m.avail;
  __atomic_store_n(reinterpret_cast<uint16_t*>(mem_ + avail_off(q) + 2), m.avail, __ATOMIC_RELEASE);
}

void Session::send_frame(FuzzedDataProvider& in) {
  const BuiltFrame f = build_frame(in, self_);
  // The virtio-net header: zero, a consistent GSO request for the frame, checksum only, or raw.
  uint8_t h[12] = {};
  const int mode = in.ConsumeIntegralInRange<int>(0, 3);
  if (mode == 1 || mode == 2) {
    h[0] = kHdrFNeedsCsum;
    if (mode == 1 && (f.kind == 1 || f.kind == 2)) {
      h[1] = f.kind == 1 ? kGsoTcpV4 : kGsoTcpV6;
      if (in.ConsumeBool()) h[1] |= kGsoEcn;
      put16(h + 2, static_cast<uint16_t>(f.l4 + f.l4_size));
      put16(h + 4, in.ConsumeIntegralInRange<uint16_t>(0, 9000));
    }
    if (f.l4_size > 0) {
      put16(h + 6, static_cast<uint16_t>(f.l4));
      put16(h + 8, f.kind == 3 ? 6 : 16);
    } else {
      h[0] = 0;
    }
  } else if (mode == 3) {
    h[0] = in.ConsumeIntegral<uint8_t>();
    h[1] = in.ConsumeIntegral<uint8_t>();
    for (int i = 2; i < 10; i += 2) put16(h + i, in.ConsumeIntegral<uint16_t>());
  }
  const int layout = in.ConsumeIntegralInRange<int>(0, 3);  // one, header+frame, pieces, indirect
  int pieces = layout == 0 ? 1 : 2;
  if (layout == 2) pieces = in.ConsumeIntegralInRange<int>(2, kRingPieces - 1);
  if (layout == 3) pieces = in.ConsumeIntegralInRange<int>(1, 4);
  const bool writable_tail = in.ConsumeBool();
  const bool do_kick = in.ConsumeBool();

  QueueModel& q = queues_[kTx];
  if (!started_ || !mem_ok_ || q.num == 0) return;
  // The chain's bytes: header (the size the features say) and frame, cut into pieces.
  std::vector<uint8_t> bytes(h, h + header_size());
  bytes.insert(bytes.end(), f.bytes.begin(), f.bytes.end());
  std::vector<std::pair<uint64_t, uint32_t>> parts;  // memory offset, length
  const size_t total = bytes.size();
  size_t done = 0;
  for (int k = 0; k < pieces; ++k) {
    size_t len = (total - done) / static_cast<size_t>(pieces - k);
    if (layout == 1) len = k == 0 ? std::min<size_t>(header_size(), total) : total - done;
    if (k == pieces - 1) len = total - done;
    const uint64_t at = alloc(len);
    write_mem(at, bytes.data() + done, len);
    parts.emplace_back(at, static_cast<uint32_t>(len));
    done += len;
  }
  if (writable_tail) parts.emplace_back(alloc(64), 64);
  const bool indirect = layout == 3;
  const size_t descs = indirect ? 1 : parts.size();
  if (q.free.size() < descs) return;  // every descriptor is out: a driver waits
  // Not negotiated, or longer than the queue (virtio 1.2 2.7.5.3.1): a driver must not.
  if (indirect && ((features_ & feat::kRingIndirectDesc) == 0 || parts.size() > q.num)) {
    dishonest();
  }
  std::vector<uint16_t> chain;
  for (size_t k = 0; k < descs; ++k) {
    chain.push_back(q.free.back());
    q.free.pop_back();
  }
  auto flags_of = [&](size_t k) {
    uint16_t fl = k + 1 < parts.size() ? vh::kVirtqDescFNext : 0;
    if (writable_tail && k + 1 == parts.size()) fl |= vh::kVirtqDescFWrite;
    return fl;
  };
  if (indirect) {
    const uint64_t table = alloc(16 * parts.size());
    for (size_t k = 0; k < parts.size(); ++k) {
      uint8_t d[16];
      put64(d, gpa(parts[k].first));
      put32(d + 8, parts[k].second);
      put16(d + 12, flags_of(k));
      put16(d + 14, static_cast<uint16_t>(k + 1));
      write_mem(table + 16 * k, d, 16);
    }
    write_desc(kTx, chain[0], gpa(table), static_cast<uint32_t>(16 * parts.size()),
               vh::kVirtqDescFIndirect, 0);
  } else {
    for (size_t k = 0; k < parts.size(); ++k) {
      write_desc(kTx, chain[k], gpa(parts[k].first), parts[k].second, flags_of(k),
                 k + 1 < chain.size() ? chain[k + 1] : 0);
    }
  }
  const uint16_t head = chain[0];
  TRACE("  %c: tx head %u, %zu-byte frame, header %02x %02x, layout %d, pieces %zu\n", 'A' + self_,
        head, f.bytes.size(), h[0], h[1], layout, parts.size());
  q.chains[head] = std::move(chain);
  q.out += 1;
  publish(kTx, head);
  if (do_kick) kick(kTx);
}

void Session::post_rx(FuzzedDataProvider& in) {
  const int count = in.ConsumeIntegralInRange<int>(1, 16);
  QueueModel& q = queues_[kRx];
  for (int i = 0; i < count; ++i) {
    static constexpr uint32_t kSizes[] = {0, 1526, 2048, 4096, 65562};
    const int c = in.ConsumeIntegralInRange<int>(0, 4);
    const uint32_t cap = c == 0 ? 12 + in.ConsumeIntegralInRange<uint32_t>(0, 200) : kSizes[c];
    const bool two = in.ConsumeBool();
    if (!started_ || !mem_ok_ || q.num == 0) continue;
    const size_t descs = two ? 2 : 1;
    if (q.free.size() < descs) continue;  // every descriptor is out
    const uint64_t at = alloc(cap);
    std::vector<uint16_t> chain;
    for (size_t k = 0; k < descs; ++k) {
      chain.push_back(q.free.back());
      q.free.pop_back();
    }
    // Two pieces: the first holds the header (12 bytes, what virtio asks of every buffer).
    const uint32_t first = two ? std::max<uint32_t>(12, cap / 2) : cap;
    write_desc(kRx, chain[0], gpa(at), first,
               vh::kVirtqDescFWrite | (two ? vh::kVirtqDescFNext : 0), two ? chain[1] : 0);
    if (two) write_desc(kRx, chain[1], gpa(at + first), cap - first, vh::kVirtqDescFWrite, 0);
    const uint16_t head = chain[0];
    q.chains[head] = std::move(chain);
    q.cap[head] = cap;
    q.first[head] = at;
    q.out += 1;
    publish(kRx, head);
  }
  if (in.ConsumeBool()) kick(kRx);
}

void Session::poke(FuzzedDataProvider& in) {
  dishonest();
  const uint64_t off = in.ConsumeIntegralInRange<uint64_t>(0, kMemSize - 1);
  const size_t len = in.ConsumeIntegralInRange<size_t>(0, 64);
  const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(len);
  write_mem(off, bytes.data(), bytes.size());
}

void Session::shrink(uint64_t size) {
  dishonest();
  if (memfd_ < 0 || !mem_ok_) return;
  // From here on our own mapping faults past the new end: we touch it no more. (A sealed memfd
  // refuses: the memory stays, and we still touch it no more.)
  mem_ok_ = false;
  (void)::ftruncate(memfd_, static_cast<off_t>(size & ~uint64_t{0xfff}));
}

// ---- Session: what comes back ---------------------------------------------------------------

void Session::check_reply(uint32_t request, uint32_t flags, std::span<const uint8_t> payload) {
  FUZZ_CHECK(flags == (vh::kVersion | vh::kFlagReply));
  FUZZ_CHECK(payload.size() <= vh::kMaxPayloadSize);
  if (raw_sent_) return;
  // In order: replies the front-end may do without (an ack it asked for without REPLY_ACK) may
  // be skipped, the others not.
  while (!expected_.empty() && expected_.front().request != request) {
    FUZZ_CHECK(!expected_.front().must);
    expected_.pop_front();
  }
  FUZZ_CHECK(!expected_.empty());
  const Expect e = expected_.front();
  expected_.pop_front();
  if (!e.must) return;
  using R = vh::Request;
  switch (static_cast<R>(request)) {
    case R::kGetFeatures:
      FUZZ_CHECK(payload.size() == 8 &&
                 (get64(payload.data()) & ~(feat::kOffered | feat::kNetStatus)) == 0);
      break;
    case R::kGetProtocolFeatures:
      FUZZ_CHECK(payload.size() == 8 && (get64(payload.data()) & ~pfeat::kOffered) == 0);
      break;
    case R::kGetQueueNum:
    case R::kGetMaxMemSlots:
      FUZZ_CHECK(payload.size() == 8);
      break;
    case R::kGetVringBase:
      FUZZ_CHECK(payload.size() == 8 && get32(payload.data()) == e.index);
      break;
    case R::kGetConfig:
      // The header and the bytes asked for, or empty: "error" (vhost_user_msg.h).
      FUZZ_CHECK(payload.empty() || payload.size() >= vh::kConfigHeaderSize);
      break;
    default:  // REPLY_ACK: success
      FUZZ_CHECK(payload.size() == 8 && get64(payload.data()) == 0);
      break;
  }
}

void Session::give_back(QueueModel& q, uint32_t id) {
  if (id >= q.num || q.chains[id].empty()) {
    FUZZ_CHECK(!honest_);  // a used entry for a chain that was not out
    return;
  }
  for (uint16_t d : q.chains[id]) q.free.push_back(d);
  q.chains[id].clear();
  q.out -= 1;
}

void Session::reap_rx_frame(QueueModel& q, uint16_t published) {
  const uint8_t* used = mem_ + used_off(kRx) + 4;
  const uint32_t id = get32(used + 8 * size_t{q.last_used % q.num});
  uint16_t buffers = 1;
  if (honest_) {
    FUZZ_CHECK(id < q.num && !q.chains[id].empty());
    const uint8_t* hdr = mem_ + q.first[id];
    const bool mrg = (features_ & feat::kNetMrgRxbuf) != 0;
    const uint32_t hsize = header_size();
    if (hsize == 12) buffers = get16(hdr + 10);
    if (!mrg) FUZZ_CHECK(hsize == 10 || buffers == 1);
    FUZZ_CHECK(buffers >= 1 && buffers <= published);
    // Offloads only as negotiated (virtio 1.2 5.1.6.4): GSO needs GUEST_TSO4/6, NEEDS_CSUM
    // GUEST_CSUM.
    const uint8_t gso = hdr[1] & static_cast<uint8_t>(~kGsoEcn);
    FUZZ_CHECK(gso == 0 || gso == kGsoTcpV4 || gso == kGsoTcpV6);
    if (gso == kGsoTcpV4) FUZZ_CHECK((features_ & feat::kNetGuestTso4) != 0);
    if (gso == kGsoTcpV6) FUZZ_CHECK((features_ & feat::kNetGuestTso6) != 0);
    if ((hdr[1] & kGsoEcn) != 0) FUZZ_CHECK((features_ & feat::kNetGuestEcn) != 0);
    if ((hdr[0] & kHdrFNeedsCsum) != 0) FUZZ_CHECK((features_ & feat::kNetGuestCsum) != 0);
    uint64_t total = 0;
    for (uint16_t k = 0; k < buffers; ++k) {
      const uint8_t* e = used + 8 * size_t{(q.last_used + k) % q.num};
      const uint32_t bid = get32(e);
      const uint32_t blen = get32(e + 4);
      TRACE("  %c: rx used entry %u: id %u len %u (buffer %u bytes), frame of %u buffers\n",
            'A' + self_, static_cast<uint16_t>(q.last_used + k), bid, blen,
            bid < q.num ? q.cap[bid] : 0, buffers);
      FUZZ_CHECK(bid < q.num && !q.chains[bid].empty());
      FUZZ_CHECK(blen <= q.cap[bid]);
      if (k + 1 < buffers) FUZZ_CHECK(blen == q.cap[bid]);  // filled but for the last
      total += blen;
    }
    FUZZ_CHECK(total >= hsize + sw::kMinFrameSize && total <= hsize + sw::kMaxFrameSize);
  }
  for (uint16_t k = 0; k < buffers; ++k) {
    give_back(q, get32(used + 8 * size_t{q.last_used % q.num}));
    ++q.last_used;
  }
}

void Session::reap(uint32_t qi) {
  QueueModel& q = queues_[qi];
  if (!mem_ok_ || q.num == 0 || q.num > kMaxNum) return;
  const uint16_t idx =
      __atomic_load_n(reinterpret_cast<const uint16_t*>(mem_ + used_off(qi) + 2), __ATOMIC_ACQUIRE);
  uint16_t n = static_cast<uint16_t>(idx - q.last_used);
  if (n > 0) TRACE("  %c: queue %u used idx %u (%u new, %u out)\n", 'A' + self_, qi, idx, n, q.out);
  if (honest_) FUZZ_CHECK(n <= q.out);
  if (n > q.num) {
    q.last_used = idx;
    return;
  }
  while (n > 0) {
    if (qi == kRx) {
      const uint16_t before = q.last_used;
      reap_rx_frame(q, n);
      n = static_cast<uint16_t>(n - static_cast<uint16_t>(q.last_used - before));
    } else {
      give_back(q, get32(mem_ + used_off(qi) + 4 + 8 * size_t{q.last_used % q.num}));
      ++q.last_used;
      --n;
    }
  }
}

void Session::drain() {
  if (sock_ >= 0) {
    uint8_t buf[4096];
    for (;;) {
      const ssize_t n = ::recv(sock_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        replies_.insert(replies_.end(), buf, buf + n);
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        // The port closed the connection: a protocol or ring error. Never for an honest guest.
        TRACE("  %c: the port closed the connection (%s)\n", 'A' + self_,
              honest_ ? "honest" : "not honest");
        if (honest_) {
          std::fprintf(stderr, "session %c: an honest session was closed by the port\n",
                       'A' + self_);
        }
        FUZZ_CHECK(!honest_);
        close_socket();
      }
      break;
    }
    size_t at = 0;
    while (replies_.size() - at >= vh::kHeaderSize) {
      const uint32_t size = get32(replies_.data() + at + 8);
      FUZZ_CHECK(size <= vh::kMaxPayloadSize);
      if (replies_.size() - at - vh::kHeaderSize < size) break;
      check_reply(get32(replies_.data() + at), get32(replies_.data() + at + 4),
                  {replies_.data() + at + vh::kHeaderSize, size});
      at += vh::kHeaderSize + size;
    }
    replies_.erase(replies_.begin(), replies_.begin() + static_cast<ptrdiff_t>(at));
  }
  for (QueueModel& q : queues_) {
    uint64_t v;
    (void)!::read(q.call, &v, sizeof v);
  }
  if (started_) {
    reap(kRx);
    reap(kTx);
  }
}

// ---- The sink -------------------------------------------------------------------------------

void World::drain_sink() {
  uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::recv(sink.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    sink.in.insert(sink.in.end(), buf, buf + n);
  }
  size_t at = 0;
  while (sink.in.size() - at >= 4) {
    const uint32_t len = static_cast<uint32_t>(sink.in[at]) << 24 | sink.in[at + 1] << 16 |
                         sink.in[at + 2] << 8 | sink.in[at + 3];
    FUZZ_CHECK(len >= sw::kMinFrameSize && len <= sw::kMaxFrameSize);
    if (sink.in.size() - at - 4 < len) break;
    at += 4 + len;
  }
  sink.in.erase(sink.in.begin(), sink.in.begin() + static_cast<ptrdiff_t>(at));
}

void World::sink_frame(FuzzedDataProvider& in) {
  const BuiltFrame f = build_frame(in, 2);
  std::vector<uint8_t> wire;
  const auto len = static_cast<uint32_t>(f.bytes.size());
  wire.push_back(static_cast<uint8_t>(len >> 24));
  wire.push_back(static_cast<uint8_t>(len >> 16));
  wire.push_back(static_cast<uint8_t>(len >> 8));
  wire.push_back(static_cast<uint8_t>(len));
  wire.insert(wire.end(), f.bytes.begin(), f.bytes.end());
  if (len < sw::kMinFrameSize || len > sw::kMaxFrameSize) return;  // the stream port would close
  (void)::send(sink.fd, wire.data(), wire.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// ---- fds: none of a run's is left open ------------------------------------------------------

int count_open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  FUZZ_CHECK(d != nullptr);
  int n = 0;
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

constexpr const char* kOpNames[16] = {
    "handshake", "start",      "frame", "frame",       "post rx",
    "kick",      "turns",      "turns", "message",     "stop",
    "enable",    "sink frame", "poke",  "raw message", "close or reconnect",
    "shrink"};

void run(FuzzedDataProvider& in) {
  World w;
  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  w.sink.fd = sv[0];
  w.loop->adopt(std::make_unique<backends::StreamPort>(*w.loop, io::Fd::adopt(sv[1]), "sink"));
  for (int s = 0; s < 2; ++s) {
    w.sessions.push_back(std::make_unique<Session>(w, s));
    w.sessions.back()->create(in);
  }
  for (int op = 0; op < kMaxOps && in.remaining_bytes() > 0; ++op) {
    const int who = in.ConsumeBool() ? 1 : 0;
    Session& s = *w.sessions[who];
    const int code = in.ConsumeIntegralInRange<int>(0, 15);
    TRACE("op %d: session %c, %s\n", op, 'A' + who, kOpNames[code]);
    switch (code) {
      case 0:
        s.handshake(in.ConsumeIntegral<uint8_t>());
        break;
      case 1: {
        const auto mask = in.ConsumeIntegral<uint16_t>();
        s.start(mask, 1U << in.ConsumeIntegralInRange<int>(0, 8));
        break;
      }
      case 2:
      case 3:
        s.send_frame(in);
        break;
      case 4:
        s.post_rx(in);
        break;
      case 5:
        s.kick(in.ConsumeBool() ? kTx : kRx);
        break;
      case 6:
      case 7:
        w.turns(in.ConsumeIntegralInRange<int>(1, 4));
        w.drain_all();
        break;
      case 8:
        s.fuzzed_message(in);
        break;
      case 9:
        s.stop();
        break;
      case 10: {
        const uint32_t q = in.ConsumeBool() ? kTx : kRx;
        s.enable(q, in.ConsumeBool());
        break;
      }
      case 11:
        w.sink_frame(in);
        break;
      case 12:
        s.poke(in);
        break;
      case 13:
        s.raw_message(in);
        break;
      case 14:
        if (s.connected()) {
          s.close_socket();
        } else {
          s.connect();
        }
        break;
      default:
        s.shrink(in.ConsumeIntegralInRange<uint64_t>(0, kMemSize));
        break;
    }
  }
  if (tracing()) w.loop->print_stats();  // (through log_line: with QSWITCH_FUZZ_LOG=1)
  // The end of the session: the rings stop, the connections close.
  for (auto& s : w.sessions) {
    if (s->connected()) s->stop();
  }
  for (int i = 0; i < 3; ++i) {
    w.turns(1);
    w.drain_all();
  }
  for (auto& s : w.sessions) s->close_socket();
  w.turns(2);
  w.close_loop();
  w.sessions.clear();
  ::close(w.sink.fd);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // libuv opens its process-wide signal pipe with the first loop, and keeps it.
  World w;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Counted per run: between runs libFuzzer may start a symbolizer (two pipes it keeps).
  const int baseline_fds = count_open_fds();
  FuzzedDataProvider in(data, size);
  run(in);
  const int now = count_open_fds();
  if (now != baseline_fds) {
    std::fprintf(stderr, "open fds: %d, before the run %d\n", now, baseline_fds);
    DIR* d = ::opendir("/proc/self/fd");
    while (const dirent* e = ::readdir(d)) {
      char link[256] = {};
      const std::string path = std::string("/proc/self/fd/") + e->d_name;
      (void)!::readlink(path.c_str(), link, sizeof link - 1);
      std::fprintf(stderr, "  fd %s -> %s\n", e->d_name, link);
    }
    ::closedir(d);
  }
  FUZZ_CHECK(now == baseline_fds);
  return 0;
}
