// backends/vhost_user/vhost_user_msg.h: the vhost-user control messages a front-end (QEMU) sends
// to qswitch as the back-end, decoded from the stream socket's bytes and fds, and the replies we
// send back. Pure: no system calls, no libuv; the port does recvmsg/sendmsg and closes fds.
//
// Theory of operation
// - Wire format (QEMU docs/interop/vhost-user.rst, "Message Specification"): a 12-byte header,
//   request u32, flags u32, size u32, then `size` bytes of payload, every number in the machine's
//   native byte order (we copy them with memcpy, so this is right on any host). Flags: bits 0-1
//   the version (must be 1), bit 2 REPLY (only on back-end replies: a request carrying it is an
//   error), bit 3 NEED_REPLY (the front-end wants a REPLY_ACK). Higher flag bits are undefined
//   by the spec and ignored, as libvhost-user does.
// - File descriptors travel as SCM_RIGHTS with the message: QEMU sends header and payload in one
//   sendmsg() with the fds attached, so they arrive with the message's first bytes (the kernel
//   hands out an skb's fds with the first read that touches it and never returns data of two
//   fd-carrying skbs in one read).
// - MessageReader reads one message at a time: write_space() is never more than what the
//   current message still lacks (its header, then exactly its payload), so a read never takes
//   bytes of the next message, and fds received by a read belong to the message under assembly
//   without doubt. The buffer is kMaxMessageSize bytes: the largest legal message, no more.
// - Checked as soon as the header is complete (before any payload is read): version, REPLY flag,
//   a request we accept, the payload size the request takes (exact, or a range for the memory
//   table and the config space) and kMaxPayloadSize. Checked on completion: the count of fds
//   the request takes (none; exactly one; one per memory region; one unless bit 8 of a
//   SET_VRING_KICK/CALL/ERR says "no fd"), the region count (1..kMaxMemoryRegions) against the
//   payload size, the config size against the payload size, reserved bits of the vring index.
//   That is all: what the regions mean (empty, wrapping past 2^64, overlapping) is checked in
//   one place, GuestMemory (guest_memory.h), when the table is mapped.
// - Accepted requests: GET/SET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER, RESET_OWNER,
//   SET_MEM_TABLE, SET_VRING_NUM/ADDR/BASE, GET_VRING_BASE, SET_VRING_KICK/CALL/ERR,
//   GET_QUEUE_NUM, SET_VRING_ENABLE, NET_SET_MTU, SET_BACKEND_REQ_FD (its fd is handed out like
//   any other: the port just closes it), GET/SET_CONFIG, GET_MAX_MEM_SLOTS, ADD/REM_MEM_REG.
//   Everything else, named requests we do not implement (SET_LOG_BASE and SET_LOG_FD among them:
//   we offer no live-migration logging, VHOST_F_LOG_ALL) included, is an error.
// - What QEMU 7.2 sends a virtio-net back-end (captured from Debian's 7.2 against a stub; the
//   unit test decodes the capture): GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_OWNER,
//   GET_FEATURES, SET_VRING_CALL and SET_VRING_ERR (with fds) for both queues, SET_VRING_ENABLE;
//   when the driver starts the device SET_FEATURES, SET_MEM_TABLE (NEED_REPLY), then per queue
//   SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ADDR, SET_VRING_KICK, SET_VRING_CALL; more
//   SET_MEM_TABLEs as the guest's memory map changes; on stop GET_VRING_BASE per queue and
//   SET_VRING_ENABLE. The vring index is not checked here (the session knows how many it has).
// - Ownership of fds: commit() takes every fd passed to it. A yielded Message owns its fds; from
//   then on the caller does (uses or closes them; REM_MEM_REG and SET_BACKEND_REQ_FD fds are to
//   be closed unused). An error hands back, in ReadResult::fds_to_close, every fd the reader held
//   plus those of the failing commit(): the caller closes them. take_pending_fds() hands back the
//   fds of a half-read message when the connection ends. The reader never closes anything.
// - Errors are final: the message stream cannot be resynchronised, so the caller closes the
//   port (the spec lets a back-end close the connection on errors). After an error commit()
//   returns the same error and write_space() is empty; nothing more is ever yielded.
// - No allocation per message: a Message is a fixed-size value (payload in a std::variant, fds
//   in an array); only an error allocates (its text and the fd list), once per connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace qswitch::backends::vhost_user {

// ---- Header ----------------------------------------------------------------------------------
inline constexpr uint32_t kHeaderSize = 12;
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kFlagReply = 0x4;
inline constexpr uint32_t kFlagNeedReply = 0x8;

// ---- Limits ----------------------------------------------------------------------------------
// SET_MEM_TABLE carries at most 8 regions (QEMU's VHOST_MEMORY_BASELINE_NREGIONS: what a
// front-end sends without the CONFIGURE_MEM_SLOTS protocol feature, which qswitch does not
// offer), one fd each; no request carries more fds than that. GuestMemory holds as many.
inline constexpr uint32_t kMaxMemoryRegions = 8;
inline constexpr uint32_t kMaxFds = kMaxMemoryRegions;
// ADD_MEM_REG's limit, answered to GET_MAX_MEM_SLOTS (QEMU's VHOST_USER_MAX_RAM_SLOTS is 512;
// the memory table code decides how many it keeps, this is what we announce).
inline constexpr uint64_t kMaxRamSlots = 32;
// VHOST_USER_MAX_CONFIG_SIZE in QEMU: the largest config-space access.
inline constexpr uint32_t kMaxConfigSize = 256;

inline constexpr uint32_t kU64Size = 8;
inline constexpr uint32_t kVringStateSize = 8;           // index u32, num u32
inline constexpr uint32_t kVringAddrSize = 40;           // index, flags u32; 4 x u64
inline constexpr uint32_t kMemoryRegionSize = 32;        // gpa, size, uaddr, mmap offset
inline constexpr uint32_t kMemoryTableHeaderSize = 8;    // count u32, padding u32
inline constexpr uint32_t kSingleMemoryRegionSize = 40;  // padding u64, region
inline constexpr uint32_t kConfigHeaderSize = 12;        // offset, size, flags u32
inline constexpr uint32_t kMaxPayloadSize = kConfigHeaderSize + kMaxConfigSize;  // 268
static_assert(kMaxPayloadSize >=
              kMemoryTableHeaderSize + kMaxMemoryRegions * kMemoryRegionSize);  // 264
inline constexpr uint32_t kMaxMessageSize = kHeaderSize + kMaxPayloadSize;

// ---- Requests (front-end to back-end; vhost-user.rst "Front-end message types") -------------
enum class Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
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
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,  // VHOST_USER_SET_SLAVE_REQ_FD in QEMU 7.2
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kCreateCryptoSession = 26,
  kCloseCryptoSession = 27,
  kPostcopyAdvise = 28,
  kPostcopyListen = 29,
  kPostcopyEnd = 30,
  kGetInflightFd = 31,
  kSetInflightFd = 32,
  kGpuSetSocket = 33,
  kResetDevice = 34,
  kVringKick = 35,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
  kSetStatus = 39,
  kGetStatus = 40,
};
// "VHOST_USER_SET_MEM_TABLE", or "unknown" for a number outside the list above.
const char* request_name(Request request);

// ---- Feature bits (virtio 1.x; Linux include/uapi/linux/virtio_{config,ring,net}.h) ----------
namespace feature {
inline constexpr uint64_t bit(unsigned n) { return uint64_t{1} << n; }
inline constexpr uint64_t kNetCsum = bit(0);       // VIRTIO_NET_F_CSUM: guest sends partial csum
inline constexpr uint64_t kNetGuestCsum = bit(1);  // VIRTIO_NET_F_GUEST_CSUM
inline constexpr uint64_t kNetMtu = bit(3);        // VIRTIO_NET_F_MTU (QEMU's host_mtu=)
inline constexpr uint64_t kNetMac = bit(5);        // VIRTIO_NET_F_MAC
inline constexpr uint64_t kNetGuestTso4 = bit(7);  // VIRTIO_NET_F_GUEST_TSO4
inline constexpr uint64_t kNetGuestTso6 = bit(8);  // VIRTIO_NET_F_GUEST_TSO6
inline constexpr uint64_t kNetGuestEcn = bit(9);   // VIRTIO_NET_F_GUEST_ECN
inline constexpr uint64_t kNetHostTso4 = bit(11);  // VIRTIO_NET_F_HOST_TSO4
inline constexpr uint64_t kNetHostTso6 = bit(12);  // VIRTIO_NET_F_HOST_TSO6
inline constexpr uint64_t kNetHostEcn = bit(13);   // VIRTIO_NET_F_HOST_ECN
inline constexpr uint64_t kNetMrgRxbuf = bit(15);  // VIRTIO_NET_F_MRG_RXBUF
inline constexpr uint64_t kNetStatus = bit(16);    // VIRTIO_NET_F_STATUS
inline constexpr uint64_t kNetMq = bit(22);        // VIRTIO_NET_F_MQ (not offered)
inline constexpr uint64_t kLogAll = bit(26);       // VHOST_F_LOG_ALL (not offered)
inline constexpr uint64_t kRingIndirectDesc = bit(28);  // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr uint64_t kRingEventIdx = bit(29);      // VIRTIO_RING_F_EVENT_IDX
inline constexpr uint64_t kProtocolFeatures = bit(30);  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr uint64_t kVersion1 = bit(32);          // VIRTIO_F_VERSION_1
inline constexpr uint64_t kAccessPlatform = bit(33);    // VIRTIO_F_ACCESS_PLATFORM (not offered)
inline constexpr uint64_t kRingPacked = bit(34);        // VIRTIO_F_RING_PACKED (not offered)

// What GET_FEATURES answers. QEMU's virtio-net takes from a vhost-user back-end only the bits in
// its user_feature_bits list (net/vhost-user.c): the ring and offload bits and MTU; MAC and
// STATUS come from QEMU's own device whatever we say, they are listed for the config space.
inline constexpr uint64_t kOffered = kVersion1 | kRingIndirectDesc | kRingEventIdx | kNetMrgRxbuf |
                                     kNetCsum | kNetGuestCsum | kNetHostTso4 | kNetHostTso6 |
                                     kNetGuestTso4 | kNetGuestTso6 | kNetHostEcn | kNetGuestEcn |
                                     kNetMac | kNetMtu | kProtocolFeatures;
}  // namespace feature

// ---- Protocol feature bits (vhost-user.rst "Protocol features") ------------------------------
namespace protocol_feature {
inline constexpr uint64_t kMq = feature::bit(0);
inline constexpr uint64_t kLogShmfd = feature::bit(1);
inline constexpr uint64_t kRarp = feature::bit(2);
inline constexpr uint64_t kReplyAck = feature::bit(3);
inline constexpr uint64_t kNetMtu = feature::bit(4);  // NET_SET_MTU
inline constexpr uint64_t kBackendReq = feature::bit(5);
inline constexpr uint64_t kConfig = feature::bit(9);
inline constexpr uint64_t kResetDevice = feature::bit(13);
inline constexpr uint64_t kInbandNotifications = feature::bit(14);
inline constexpr uint64_t kConfigureMemSlots = feature::bit(15);
inline constexpr uint64_t kStatus = feature::bit(16);

// What GET_PROTOCOL_FEATURES answers: REPLY_ACK (QEMU then asks for an ack on SET_MEM_TABLE
// and others) and NET_MTU (QEMU sends NET_SET_MTU, with NEED_REPLY, when host_mtu= is set).
// Not CONFIG: QEMU 7.2's virtio-net has no use for GET/SET_CONFIG, drops the bit and warns
// "vhost-user backend supports VHOST_USER_PROTOCOL_F_CONFIG but QEMU does not" on every start
// (seen here); the reader still decodes GET/SET_CONFIG for front-ends that send them.
// Not MQ: one queue pair. Not CONFIGURE_MEM_SLOTS: SET_MEM_TABLE is the one way regions come.
inline constexpr uint64_t kOffered = kReplyAck | kNetMtu;
}  // namespace protocol_feature

// ---- Payloads ------------------------------------------------------------------------------
struct VringState {  // SET_VRING_NUM/BASE, GET_VRING_BASE, SET_VRING_ENABLE; GET_VRING_BASE reply
  uint32_t index = 0;
  uint32_t num = 0;
  bool operator==(const VringState&) const = default;
};

struct VringAddr {  // SET_VRING_ADDR (struct vhost_vring_addr)
  uint32_t index = 0;
  uint32_t flags = 0;  // bit 0: VHOST_VRING_F_LOG
  uint64_t desc_user_addr = 0;
  uint64_t used_user_addr = 0;
  uint64_t avail_user_addr = 0;
  uint64_t log_guest_addr = 0;
  bool operator==(const VringAddr&) const = default;
};

// One region of SET_MEM_TABLE, ADD_MEM_REG, REM_MEM_REG; also what GuestMemory takes.
struct MemoryRegion {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;     // bytes
  uint64_t userspace_addr = 0;  // the front-end's address; vring addresses are given in these
  uint64_t mmap_offset = 0;     // where the region starts in its fd
  bool operator==(const MemoryRegion&) const = default;
};

struct MemoryTable {  // SET_MEM_TABLE: count regions, fds[i] maps regions[i]
  uint32_t count = 0;
  std::array<MemoryRegion, kMaxMemoryRegions> regions{};
  std::span<const MemoryRegion> view() const { return {regions.data(), count}; }
};

// SET_VRING_KICK/CALL/ERR: u64 with the vring index in bits 0-7 and bit 8 "no fd" (poll).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 0x100;
struct VringFile {
  uint32_t index = 0;
  bool no_fd = false;  // true: no fd came (polling); false: fds.fd[0] is the eventfd
  bool operator==(const VringFile&) const = default;
};

struct DeviceConfig {  // GET_CONFIG, SET_CONFIG (and the GET_CONFIG reply)
  uint32_t offset = 0;
  uint32_t size = 0;   // bytes of config space in `bytes`
  uint32_t flags = 0;  // 0: writable fields, 1: live migration
  std::array<uint8_t, kMaxConfigSize> bytes{};
};

// monostate: no payload; uint64_t: features, protocol features, NET_SET_MTU.
using Payload = std::variant<std::monostate, uint64_t, VringState, VringAddr, MemoryTable,
                             MemoryRegion, VringFile, DeviceConfig>;

struct FdList {
  std::array<int, kMaxFds> fd{};
  uint32_t count = 0;
  std::span<const int> view() const { return {fd.data(), count}; }
};

struct Message {
  Request request = Request::kGetFeatures;
  uint32_t flags = 0;
  uint32_t size = 0;  // payload bytes, as the header said
  Payload payload;
  FdList fds;  // the caller's once the message is yielded
  bool need_reply() const { return (flags & kFlagNeedReply) != 0; }
};

struct ReadResult {
  enum class Status {
    kNeedMore,  // keep reading into write_space()
    kMessage,   // `message` is complete; its fds are now the caller's
    kError,     // `error` says why; close fds_to_close and the port
  };
  Status status = Status::kNeedMore;
  Message message;
  std::string error;
  std::vector<int> fds_to_close;
};

class MessageReader {
 public:
  MessageReader() = default;
  MessageReader(const MessageReader&) = delete;
  MessageReader& operator=(const MessageReader&) = delete;

  // Where the next read goes: exactly the bytes the current message still lacks (the rest of
  // its header, or the rest of its payload). Empty after an error.
  std::span<uint8_t> write_space();
  // `n` bytes (n <= write_space().size()) were read into write_space(), and `fds` came with them
  // (SCM_RIGHTS of the same recvmsg). Takes ownership of every fd in `fds`. Yields at most one
  // message, since a read never crosses a message's end.
  ReadResult commit(size_t n, std::span<const int> fds);
  // The fds of a message not yet complete (the connection is ending): the caller's to close.
  FdList take_pending_fds();

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }

 private:
  ReadResult fail(std::string error, std::span<const int> extra_fds);
  ReadResult check_header();
  ReadResult finish();

  std::array<uint8_t, kMaxMessageSize> buf_{};
  uint32_t have_ = 0;            // bytes of the current message in buf_
  uint32_t need_ = kHeaderSize;  // bytes the current message has in all (header, then + size)
  FdList fds_;
  bool failed_ = false;
  std::string error_;
};

// ---- Replies (back-end to front-end) ---------------------------------------------------------
// Each writes a whole reply (header with version 1 and REPLY, then payload) to `out` and returns
// its size, or 0 when `out` is too small. kMaxReplySize is enough for any of them.
inline constexpr uint32_t kReplyFlags = kVersion | kFlagReply;
inline constexpr uint32_t kMaxReplySize = kHeaderSize + kConfigHeaderSize + kMaxConfigSize;

// GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS.
size_t encode_u64_reply(Request request, uint64_t value, std::span<uint8_t> out);
// GET_VRING_BASE: the vring's index and its next available index.
size_t encode_vring_state_reply(Request request, VringState state, std::span<uint8_t> out);
// REPLY_ACK (vhost-user.rst "REPLY_ACK"): u64 0 for success, 1 for failure, to a request that
// had NEED_REPLY (and takes no other reply).
size_t encode_reply_ack(Request request, bool success, std::span<uint8_t> out);
// GET_CONFIG: the bytes [offset, offset + size) of `config_space` with the request's offset,
// size and flags. A range outside config_space (or past kMaxConfigSize) is answered with an
// empty payload, the spec's way of saying error.
size_t encode_config_reply(const DeviceConfig& request, std::span<const uint8_t> config_space,
                           std::span<uint8_t> out);

// The virtio-net config space (struct virtio_net_config, little endian as virtio 1.x says):
// mac[6], status le16, max_virtqueue_pairs le16, mtu le16.
struct NetConfig {
  std::array<uint8_t, 6> mac{};
  uint16_t status = 1;  // VIRTIO_NET_S_LINK_UP
  uint16_t max_virtqueue_pairs = 1;
  uint16_t mtu = 1500;
};
inline constexpr uint32_t kNetConfigSize = 12;
inline constexpr uint16_t kNetStatusLinkUp = 1;
std::array<uint8_t, kNetConfigSize> encode_net_config(const NetConfig& config);

}  // namespace qswitch::backends::vhost_user
