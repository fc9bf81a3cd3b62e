// tests/support/vhost_user_frontend.h: a vhost-user FRONT-END for tests: what QEMU plus a
// guest's virtio-net driver do to a vhost-user back-end (qswitch), without QEMU.
//
// Theory of operation
// - Independence: this file encodes vhost-user messages and drives split rings on its own
//   (QEMU docs/interop/vhost-user.rst; virtio 1.2 section 2.7), with no project header and no
//   project library, so a test that pairs it with backends/vhost_user cross-checks two readings
//   of the spec rather than one reading with itself. Every number on the wire is written in the
//   host's byte order (vhost-user) and every ring field little-endian (virtio 1.x), which is the
//   same on the hosts we build for (static_assert in the .cc).
// - Guest memory: one or two memfds (memfd_create, ftruncate, mmap MAP_SHARED) of
//   Options::memory_size bytes in all, at guest-physical addresses from Options::guest_phys_base.
//   kTwoRegionsOneFd describes one memfd as two regions (mmap_offset 0 and size/2); kTwoRegions
//   TwoFds uses a memfd per half. Either way the halves are adjacent in guest-physical space.
//   userspace_addr is this process's mapping address, as QEMU sends its own. A bump allocator
//   hands out guest memory for rings and buffers (never crossing a region boundary); nothing is
//   ever freed: a test's frontend lives as long as the test.
// - Rings: queue 0 is RX (the device writes frames to us), queue 1 is TX (we send). Each is a
//   split ring of Options::queue_size entries laid out with virtio 1.2 2.7's alignments (16, 2,
//   4) in guest memory. The driver side: descriptors and avail entries written first, then a
//   release store of avail->idx (2.7.13.3); used->idx read with acquire. With EVENT_IDX we
//   write used_event after consuming used entries and kick only when vring_need_event() on the
//   device's avail_event says so (after a full fence, as Linux's virtqueue_kick_prepare); without
//   it we kick unless the device set VRING_USED_F_NO_NOTIFY. Kicks and calls are eventfds.
// - TX: chain head h owns slot h of a TX buffer pool (Options::tx_slot_size bytes each: a
//   two-entry indirect table, then the net header, then the frame), so a chain never waits for
//   an allocator. Three layouts: one descriptor (header and frame together), two (header, then
//   frame) or one INDIRECT descriptor pointing at a two-entry table. Descriptors come from a free
//   list; reclaim_tx() takes back what the device used.
// - RX: Options::rx_buffer_count buffers of Options::rx_buffer_size bytes, one writable
//   descriptor each (descriptor i is buffer i), all posted at start(). receive() takes one used
//   entry or, with MRG_RXBUF, num_buffers of them, copies header and frame out and re-posts the
//   buffers.
// - Control: handshake() and start() send what QEMU 7.2 sends (the order in
//   backends/vhost_user/vhost_user_msg.h's header), stop() asks GET_VRING_BASE per queue. A
//   message is one sendmsg() with its fds as SCM_RIGHTS. Requests that take a reply wait for it
//   with Options::reply_timeout; with REPLY_ACK negotiated SET_MEM_TABLE carries NEED_REPLY
//   (every request does with Options::need_reply_all) and the ack is read and checked.
// - Errors: nothing here throws or aborts on what the back-end does. A missing, late, short or
//   malformed reply, a closed socket or a bad used entry is an error string (empty: success) or
//   a status; every wait is a poll() bounded by a deadline (only connect(), while the socket
//   does not exist yet or refuses, retries every 10 ms, as FrameClient does).
// - Hostile helpers let a test break the ring on purpose: break_tx() for the usual ways (a
//   buffer outside memory, a loop, a bad indirect table, avail idx too far ahead), and the
//   primitives it is made of (write_desc, push_avail, set_avail_idx, kick, write_guest, alloc);
//   they bypass the free list, so the queue they touch is not to be used normally afterwards.
//   send_message()/read_reply() send any request with any payload.
// - Counters (Counters): kicks written, kicks suppressed, call-eventfd reads that returned a
//   value (interrupts), frames sent and received, messages sent.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qswitch::test_support {

// ---- Wire numbers (vhost-user.rst, virtio 1.2), written out here on purpose ----------------
namespace vu {
using Millis = std::chrono::milliseconds;

inline constexpr uint32_t kHeaderSize = 12;  // request u32, flags u32, size u32
inline constexpr uint32_t kFlagVersion = 0x1;
inline constexpr uint32_t kFlagReply = 0x4;
inline constexpr uint32_t kFlagNeedReply = 0x8;
inline constexpr uint32_t kMaxReplyPayload = 4096;  // anything larger is refused as garbage

enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kNetSetMtu = 20,
};

inline constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }
// Device feature bits (virtio 1.2 5.1.3, 6).
inline constexpr uint64_t kFCsum = bit(0);
inline constexpr uint64_t kFGuestCsum = bit(1);
inline constexpr uint64_t kFMtu = bit(3);
inline constexpr uint64_t kFMac = bit(5);
inline constexpr uint64_t kFGuestTso4 = bit(7);
inline constexpr uint64_t kFGuestTso6 = bit(8);
inline constexpr uint64_t kFGuestEcn = bit(9);
inline constexpr uint64_t kFHostTso4 = bit(11);
inline constexpr uint64_t kFHostTso6 = bit(12);
inline constexpr uint64_t kFHostEcn = bit(13);
inline constexpr uint64_t kFMrgRxbuf = bit(15);
inline constexpr uint64_t kFStatus = bit(16);
inline constexpr uint64_t kFIndirectDesc = bit(28);
inline constexpr uint64_t kFEventIdx = bit(29);
inline constexpr uint64_t kFProtocolFeatures = bit(30);  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr uint64_t kFVersion1 = bit(32);
// Protocol feature bits (vhost-user.rst "Protocol features").
inline constexpr uint64_t kPMq = bit(0);
inline constexpr uint64_t kPReplyAck = bit(3);
inline constexpr uint64_t kPNetMtu = bit(4);

// Ring flags (virtio 1.2 2.7.5, 2.7.7).
inline constexpr uint16_t kDescNext = 1;
inline constexpr uint16_t kDescWrite = 2;
inline constexpr uint16_t kDescIndirect = 4;
inline constexpr uint16_t kUsedNoNotify = 1;
inline constexpr uint16_t kAvailNoInterrupt = 1;

inline constexpr uint32_t kNetHdrSize = 12;  // virtio_net_hdr_mrg_rxbuf
inline constexpr uint32_t kRxQueue = 0;
inline constexpr uint32_t kTxQueue = 1;
}  // namespace vu

// A reply as read off the socket.
struct VuReply {
  uint32_t request = 0;
  uint32_t flags = 0;
  std::vector<uint8_t> payload;
  std::string error;  // non-empty: timeout, EOF, short read, bad header (payload not valid)
  bool ok() const { return error.empty(); }
  // The payload as one u64 (GET_FEATURES and friends, REPLY_ACK), or nullopt when not 8 bytes.
  std::optional<uint64_t> u64() const;
};

class VhostUserFrontend {
 public:
  enum class MemoryLayout { kOneRegion, kTwoRegionsOneFd, kTwoRegionsTwoFds };
  enum class TxLayout { kOneDescriptor, kHeaderThenFrame, kIndirect };

  struct Options {
    uint64_t memory_size = 4 << 20;  // bytes in all; split in halves for two regions
    MemoryLayout memory_layout = MemoryLayout::kOneRegion;
    uint64_t guest_phys_base = 0x100000;
    uint32_t queue_size = 256;  // a power of 2
    // Features we want: SET_FEATURES sends (offered & wanted), plus PROTOCOL_FEATURES when
    // offered (QEMU keeps that bit too). Likewise for the protocol features.
    uint64_t wanted_features = vu::kFVersion1 | vu::kFMrgRxbuf | vu::kFEventIdx |
                               vu::kFIndirectDesc | vu::kFProtocolFeatures;
    uint64_t wanted_protocol_features = vu::kPReplyAck | vu::kPNetMtu;
    uint32_t rx_buffer_size = 2048 + vu::kNetHdrSize;
    uint32_t rx_buffer_count = 0;  // 0: queue_size
    // Per TX chain (rounded up to 16): a 32-byte indirect table, the header, the frame.
    uint32_t tx_slot_size = 4096;
    bool need_reply_all = false;  // NEED_REPLY on every request that takes no reply
    // Seal each memfd against shrinking and growing, as QEMU's memory-backend-memfd does by
    // default (qswitch lends frames out of such memory only: zero copy).
    bool seal_memory = false;
    vu::Millis reply_timeout = vu::Millis(3000);
  };

  struct SendOptions {
    TxLayout layout = TxLayout::kOneDescriptor;
    std::array<uint8_t, vu::kNetHdrSize> header{};  // only the negotiated size is sent
  };

  struct Received {
    enum class Status { kFrame, kTimeout, kError };
    Status status = Status::kTimeout;
    std::array<uint8_t, vu::kNetHdrSize> header{};  // the first header_size() bytes are valid
    std::vector<uint8_t> frame;
    uint16_t buffers = 0;  // used entries the frame took
    std::string error;
    bool ok() const { return status == Status::kFrame; }
  };

  struct Counters {
    uint64_t kicks = 0;             // eventfd writes on a kick fd
    uint64_t kicks_suppressed = 0;  // avail->idx published with no kick (device said no)
    uint64_t interrupts = 0;        // reads of a call eventfd that returned a value
    uint64_t frames_sent = 0;
    uint64_t frames_received = 0;
    uint64_t tx_reclaimed = 0;  // TX chains the device handed back
    uint64_t messages_sent = 0;
  };

  // The guest memory, eventfds and ring layout; nullptr (with *error) when a system call fails.
  static std::unique_ptr<VhostUserFrontend> create(const Options& options, std::string* error);
  ~VhostUserFrontend();
  VhostUserFrontend(const VhostUserFrontend&) = delete;
  VhostUserFrontend& operator=(const VhostUserFrontend&) = delete;

  // ---- Connection (each returns "" on success, else why) ----
  // Connects to a unix socket, retrying while it does not exist or refuses, until `timeout`.
  std::string connect(const std::string& path, vu::Millis timeout);
  // Takes a connected stream socket (a socketpair end, say); closes any previous one.
  void adopt(int fd);
  // The reverse direction (the back-end dials us): listen on `path` (a stale file is removed),
  // then accept one connection within `timeout`.
  std::string listen(const std::string& path);
  std::string accept(vu::Millis timeout);
  // Closes the socket abruptly (no more messages); the guest memory stays.
  void close();
  int socket_fd() const { return sock_; }

  // ---- Control plane ----
  // Start-up: GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER, GET_FEATURES, SET_VRING_CALL
  // and SET_VRING_ERR for both queues, SET_VRING_ENABLE for both.
  std::string handshake();
  // Device start: SET_FEATURES, SET_MEM_TABLE (acked with REPLY_ACK), then per queue
  // SET_VRING_NUM, _BASE (0), _ADDR, _KICK, _CALL. The rings are laid out afresh (zeroed, base
  // 0: a restart is a driver reset) and the RX buffers posted (and kicked if the device wants).
  std::string start();
  // GET_VRING_BASE for RX then TX; the replies' values in *bases when non-null.
  std::string stop(std::array<uint32_t, 2>* bases = nullptr);

  uint64_t offered_features() const { return offered_features_; }
  uint64_t negotiated_features() const { return features_; }
  uint64_t offered_protocol_features() const { return offered_protocol_; }
  uint64_t negotiated_protocol_features() const { return protocol_; }
  bool has(uint64_t feature) const { return (features_ & feature) != 0; }
  // The net header the device and we exchange: 12 bytes with VERSION_1 or MRG_RXBUF, else 10.
  uint32_t header_size() const;

  // Any request: one sendmsg() of header (version 1 | extra_flags) and payload, with fds.
  std::string send_message(uint32_t request, std::span<const uint8_t> payload,
                           std::span<const int> fds = {}, uint32_t extra_flags = 0);
  // The next reply (no check of which request it answers), within `timeout`.
  VuReply read_reply(vu::Millis timeout);

  // ---- Data plane ----
  // Queues one frame on TX (descriptors and avail entry, not yet published): "" or why not
  // (no free descriptor or slot even after reclaiming, frame too big for a slot, not started).
  std::string queue_tx(std::span<const uint8_t> frame, const SendOptions& options);
  std::string queue_tx(std::span<const uint8_t> frame) { return queue_tx(frame, SendOptions()); }
  // Publishes what queue_tx() added (release store of avail->idx) and kicks if the device
  // wants it. Returns whether it kicked.
  bool flush_tx();
  // queue_tx() then flush_tx().
  std::string send(std::span<const uint8_t> frame, const SendOptions& options);
  std::string send(std::span<const uint8_t> frame) { return send(frame, SendOptions()); }
  // Takes back the TX chains the device used; returns how many.
  uint32_t reclaim_tx();
  // TX chains queued and not yet reclaimed.
  uint32_t tx_in_flight() const { return tx_in_flight_; }

  // The next frame the device wrote into RX, waiting up to `timeout` (poll on the RX call
  // eventfd, rechecking the used ring). The buffers it used are re-posted.
  Received receive(vu::Millis timeout);
  // Used RX entries published and not yet consumed.
  uint16_t rx_pending() const;

  // Reads both call eventfds (counted as interrupts); returns how many reads returned a value.
  uint32_t drain_calls();
  // Whether the device signalled queue q's error eventfd since the last look.
  bool vring_error_signalled(uint32_t q);

  // ---- Hostile helpers (bypass the free lists) ----
  enum class HostileTx {
    kOutsideMemory,      // one descriptor whose 64 bytes start at the end of guest memory
    kLoop,               // two zero-length descriptors chained to each other
    kIndirectBadLength,  // an INDIRECT descriptor of 17 bytes (not a multiple of 16)
    kAvailIdxTooFar,     // avail->idx published queue_size + 1 past the current one
  };
  // Breaks the TX ring as `kind` says, then kicks whatever the device asked. The device should
  // refuse the ring (qswitch: close the port, count ring_errors).
  void break_tx(HostileTx kind);
  void write_desc(uint32_t q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next);
  // Writes ring[avail_idx % size] = head and publishes avail_idx + 1 (release).
  void push_avail(uint32_t q, uint16_t head);
  // Stores avail->idx as given (release).
  void set_avail_idx(uint32_t q, uint16_t idx);
  uint16_t avail_idx(uint32_t q) const;
  // Writes queue q's kick eventfd, whatever the device asked.
  void kick(uint32_t q);
  // Truncates every memfd behind guest memory to 0 bytes (a hostile front-end shrinking what
  // the back-end mapped). The guest memory is gone for this process too: touch nothing of it
  // afterwards (no send, receive or ring helper), only kick() and close().
  bool shrink_memory();
  // Guest memory: a fresh block of `size` bytes aligned to `align` (0 when none is left), and
  // copies in and out by guest-physical address (false when outside memory; may span regions).
  uint64_t alloc(uint64_t size, uint64_t align);
  bool write_guest(uint64_t gpa, std::span<const uint8_t> bytes);
  bool read_guest(uint64_t gpa, std::span<uint8_t> out) const;
  uint64_t guest_phys_base() const { return options_.guest_phys_base; }
  // Where the frame of the last queue_tx() lies (guest-physical).
  uint64_t last_tx_frame_gpa() const { return last_tx_frame_gpa_; }
  uint64_t guest_memory_size() const { return options_.memory_size; }
  // Ring addresses (guest-physical) of queue q, for tests that look at them.
  uint64_t desc_gpa(uint32_t q) const { return rings_[q].desc; }
  uint64_t avail_gpa(uint32_t q) const { return rings_[q].avail; }
  uint64_t used_gpa(uint32_t q) const { return rings_[q].used; }

  const Counters& counters() const { return counters_; }
  const Options& options() const { return options_; }

 private:
  struct Region {
    uint64_t gpa = 0;
    uint64_t size = 0;
    uint8_t* host = nullptr;
    int fd = -1;  // not owned: one of memfds_
    uint64_t mmap_offset = 0;
  };
  struct Ring {
    uint64_t desc = 0, avail = 0, used = 0;  // guest-physical
    uint8_t* desc_host = nullptr;
    uint8_t* avail_host = nullptr;
    uint8_t* used_host = nullptr;
    uint16_t avail_idx = 0;      // ours, published or not
    uint16_t published_idx = 0;  // avail->idx as last stored
    uint16_t last_used = 0;      // used entries consumed
    int kick = -1, call = -1, err = -1;
  };

  explicit VhostUserFrontend(const Options& options);
  std::string init();
  uint8_t* host(uint64_t gpa, uint64_t len) const;
  void lay_out_rings();
  std::string request_u64(uint32_t request, uint64_t* value);
  std::string send_u64(uint32_t request, uint64_t value, std::span<const int> fds = {});
  std::string send_state(uint32_t request, uint32_t index, uint32_t num);
  std::string send_acked(uint32_t request, std::span<const uint8_t> payload,
                         std::span<const int> fds, bool need_reply);
  bool publish(uint32_t q);  // release-stores avail idx, kicks if needed; true if kicked
  uint16_t used_idx(uint32_t q) const;
  void set_used_event(uint32_t q);
  void post_rx(uint16_t buffer);
  bool read_eventfd(int fd);

  Options options_;
  std::vector<int> memfds_;
  std::vector<std::pair<void*, size_t>> mappings_;
  std::vector<Region> regions_;
  uint64_t bump_ = 0;  // next free guest-physical address
  Ring rings_[2];
  uint64_t tx_pool_ = 0;  // guest-physical: queue_size slots of tx_slot_size
  uint64_t last_tx_frame_gpa_ = 0;
  uint64_t rx_pool_ = 0;  // rx_buffer_count buffers of rx_buffer_size
  uint32_t rx_count_ = 0;
  std::vector<uint16_t> tx_free_;       // free TX descriptor indices
  std::vector<uint8_t> tx_desc_count_;  // per head: descriptors its chain holds
  std::vector<uint16_t> tx_second_;     // per head: the chain's second descriptor
  std::vector<uint8_t> rx_posted_;      // per RX buffer: in the avail ring, not yet used
  uint32_t tx_in_flight_ = 0;
  bool started_ = false;
  int sock_ = -1;
  int listen_fd_ = -1;
  std::string listen_path_;
  uint64_t offered_features_ = 0, features_ = 0, offered_protocol_ = 0, protocol_ = 0;
  Counters counters_;
};

}  // namespace qswitch::test_support
