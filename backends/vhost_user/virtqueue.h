// backends/vhost_user/virtqueue.h: a split virtqueue as the device (qswitch) sees it: take the
// chains the guest's driver made available, hand them back through the used ring, decide when
// the guest wants an interrupt and when it should kick us.
//
// Theory of operation (virtio 1.2, section 2.7 "Split Virtqueues"; the layout in 2.7.5-2.7.8)
// - The three parts live in guest memory at the frontend's addresses (VHOST_USER_SET_VRING_ADDR),
//   translated once by setup() through the GuestMemory, which must outlive the queue (a new
//   memory table means a new setup()). setup() checks the queue size (a power of 2, at most
//   32768: 2.7), each part's alignment (16, 2, 4: 2.7 table "Virtqueue Part
//   Alignment") and that each part, its event field included, lies inside one region:
//     descriptor table  num * {le64 addr, le32 len, le16 flags, le16 next}
//     available ring    le16 flags, le16 idx, le16 ring[num], le16 used_event
//     used ring         le16 flags, le16 idx, {le32 id, le32 len} ring[num], le16 avail_event
//   Virtio 1.x rings are little-endian; so is every host qswitch builds for (static_assert).
// - pop() (2.7.13 from the device's side): reads avail->idx with acquire semantics (the
//   driver's write barrier pairs with it: 2.7.13.3), then the head at last_avail_idx, then walks
//   the chain into the caller's iovec array: readable (driver->device) pieces first, then
//   writable ones. Each descriptor is read once into a local copy before it is checked, so a
//   guest rewriting it meanwhile cannot make a checked value differ from the used one.
// - Everything in guest memory is untrusted. A chain is refused (RingError, below) when: avail
//   idx is more than num ahead of last_avail_idx; a head or next index is >= the table size; it
//   visits more than num descriptors (a loop; in an indirect table, more than the table holds);
//   a buffer has a byte outside guest memory (a buffer crossing into an adjacent region becomes
//   two iovec pieces; one crossing a hole is refused); it needs more pieces than the caller's
//   array holds (QEMU refuses past its VIRTQUEUE_MAX_SIZE the same way); a readable descriptor
//   follows a writable one (2.7.4.2); its readable or writable bytes overflow 32 bits (a used
//   length is 32 bits, and 2.7.5.2 bounds a chain to 2^32 bytes). Indirect tables (2.7.5.3):
//   the last descriptor of a chain (zero or more direct ones may come first: 2.7.5.3.2), so NEXT
//   is not set with INDIRECT (2.7.5.3.1); length a non-zero multiple of 16, at most num entries
//   (as DPDK's vhost does), the whole table inside one region, no INDIRECT inside it; the WRITE
//   flag of the descriptor pointing at it is ignored (2.7.5.3.2). A chain holds at most num
//   buffer descriptors in all (2.7.5.3.1: "no chain longer than the Queue Size"; the one pointing
//   at a table does not count). Zero-length descriptors are accepted and yield no piece.
// - At most num chains are in flight (popped, not yet flushed back): a driver has num
//   descriptors, so a further chain means it made a head available twice (kTooManyInFlight,
//   as libvhost-user's "Virtqueue size exceeded"). That also bounds the used entries a batch
//   fills to num, so fill() never overwrites an entry of its own batch.
// - An error is final: the queue stops (every later call reports it) and the caller closes the
//   port and counts ring_errors. No attempt to resynchronise with a guest that broke the ring.
// - Used ring (2.7.8, 2.7.14): fill(i, head, len) writes the i-th entry past used_idx without
//   publishing it; flush(n) publishes n entries with a release store of used->idx (the write
//   barrier 2.7.14 asks for). push_used() is both for one entry.
// - Interrupts (2.7.7, 2.7.10): need_notify() after a flush: with VIRTIO_RING_F_EVENT_IDX, a full
//   fence then vring_need_event(used_event, used_idx, used_idx at the last notification); without,
//   unless the driver set VRING_AVAIL_F_NO_INTERRUPT. Kicks: with EVENT_IDX each pop() writes
//   avail_event = last_avail_idx, so a driver adding buffers we have not reached yet does not
//   kick (and disable_notification() stops that update); without, disable_notification() sets
//   VRING_USED_F_NO_NOTIFY. enable_notification() asks for a kick on the next new buffer
//   (avail_event = the avail idx last read, or NO_NOTIFY cleared), then fences and reads avail->idx
//   again: true when buffers arrived meanwhile, which the caller must process (or it misses them:
//   no kick comes for them).
// - Mergeable receive buffers (VIRTIO_NET_F_MRG_RXBUF; virtio 1.2 5.1.6.3 "Setting Up Receive
//   Buffers" and 5.1.6.4 "Processing of Incoming Packets"): put_rx_mergeable() copies a 12-byte
//   virtio_net_hdr_mrg_rxbuf and a frame given as pieces into as many writable chains as it
//   takes (one copy), sets num_buffers in the header, and fills one used entry per chain; every
//   chain but the last is filled to its end (5.1.6.3.2). When the available chains do not hold
//   it all, it consumes none of them (last_avail_idx goes back; bytes written into them are
//   harmless, the driver reads a buffer only once it is used) and says kNoRoom: the caller
//   drops and counts, or waits for a kick (enable_notification()). A chain with fewer than 12
//   writable bytes is a ring error (5.1.6.3.1: every buffer holds at least the header).
// - Plain C++ on memory it is given: no allocation, no system call, no lock. The caller owns the
//   iovec arrays. Nothing is counted here; the caller counts what it sees (descriptors from
//   Chain::descriptor_count, ring errors, interrupts when need_notify() said yes).
#pragma once

#include <sys/uio.h>

#include <bit>
#include <cstdint>
#include <span>

#include "backends/vhost_user/guest_memory.h"

namespace qswitch::backends::vhost_user {

static_assert(std::endian::native == std::endian::little,
              "virtio 1.x rings are little-endian and read here in host order");

inline constexpr uint32_t kMaxQueueSize = 32768;  // virtio 1.2 section 2.7
inline constexpr uint16_t kVirtqDescFNext = 1;
inline constexpr uint16_t kVirtqDescFWrite = 2;
inline constexpr uint16_t kVirtqDescFIndirect = 4;
inline constexpr uint16_t kVirtqAvailFNoInterrupt = 1;
inline constexpr uint16_t kVirtqUsedFNoNotify = 1;
inline constexpr uint32_t kVirtqDescSize = 16;
// struct virtio_net_hdr_mrg_rxbuf (with MRG_RXBUF, or VERSION_1): num_buffers at offset 10.
inline constexpr uint32_t kNetHdrMrgSize = 12;
inline constexpr uint32_t kNetHdrNumBuffersOffset = 10;

// Virtio 1.2 section 2.7.10: true when a driver (or device) that last saw `old_idx` and now has
// `new_idx` must notify, the other side having asked at `event_idx`. All modulo 2^16.
inline bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

enum class RingError : uint8_t {
  kNone,
  kNotSetUp,
  kBadQueueSize,
  kMisalignedRing,
  kRingOutsideMemory,
  kAvailIdxTooFar,
  kHeadOutOfRange,
  kNextOutOfRange,
  kChainTooLong,
  kBufferOutsideMemory,
  kTooManyPieces,
  kReadableAfterWritable,
  kLengthOverflow,
  kIndirectWithNext,
  kIndirectBadLength,
  kIndirectTooLarge,
  kIndirectOutsideMemory,
  kNestedIndirect,
  kRxBufferTooSmall,
  kTooManyInFlight,
};
const char* ring_error_text(RingError e);

struct VringConfig {
  uint32_t num = 0;        // VHOST_USER_SET_VRING_NUM
  uint64_t desc_addr = 0;  // VHOST_USER_SET_VRING_ADDR: the frontend's (user) addresses
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
  uint16_t last_avail_idx = 0;  // VHOST_USER_SET_VRING_BASE
  bool event_idx = false;       // VIRTIO_RING_F_EVENT_IDX negotiated
};

// One popped descriptor chain. The caller points `iov` at its own array before pop(); pop()
// fills iov[0, readable_count) with the readable pieces, then the writable ones.
struct Chain {
  std::span<iovec> iov;
  uint16_t head = 0;  // what push_used()/fill() hand back
  uint32_t readable_count = 0;
  uint32_t writable_count = 0;
  uint32_t readable_size = 0;     // bytes
  uint32_t writable_size = 0;     // bytes
  uint32_t descriptor_count = 0;  // buffer descriptors (not one pointing at a table); <= num

  std::span<iovec> readable() const { return iov.subspan(0, readable_count); }
  std::span<iovec> writable() const { return iov.subspan(readable_count, writable_count); }
};

// A piece of a frame to copy into a guest (put_rx_mergeable's source).
struct ConstPiece {
  const uint8_t* data = nullptr;
  uint32_t size = 0;
};

class Virtqueue {
 public:
  enum class Pop : uint8_t { kChain, kEmpty, kError };
  enum class RxStatus : uint8_t { kDone, kNoRoom, kTooLarge, kError };
  struct RxPut {
    RxStatus status = RxStatus::kError;
    uint16_t buffers = 0;  // chains used (num_buffers), filled at first_fill, first_fill + 1, ...
  };

  Virtqueue() = default;
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;

  // Checks and translates the rings (see above). On an error the queue is not usable and the
  // error is also what error() reports. `memory` must outlive the queue's use.
  RingError setup(const GuestMemory& memory, const VringConfig& config);
  bool ready() const { return error_ == RingError::kNone; }
  RingError error() const { return error_; }

  // Takes the next available chain into `chain` (see above). kEmpty when the driver has made
  // none available; kError when the ring is broken (error() says why; final).
  Pop pop(Chain& chain);
  // Gives back the chain the last pop() took (nothing filled for it yet): the next pop() takes
  // it again. For a caller that finds the chain unusable for what it holds now (a frame larger
  // than one receive buffer) and drops that instead of the guest's buffer.
  void undo_pop() {
    --last_avail_idx_;
    --in_flight_;
  }
  // Chains available and not yet popped (reads avail->idx); 0 after an error.
  uint16_t available_count();

  // Writes used entry used_idx + i = {head, len} without publishing it.
  void fill(uint32_t i, uint16_t head, uint32_t len);
  // Publishes n filled entries (release store of used->idx).
  void flush(uint32_t n);
  void push_used(uint16_t head, uint32_t len) {
    fill(0, head, len);
    flush(1);
  }
  // Whether the driver wants an interrupt for what was flushed since the last time this said
  // yes (call it after flush; the caller then signals the call eventfd).
  bool need_notify();

  // Asks the driver to stop kicking for now (see above).
  void disable_notification();
  // Asks for a kick on the next buffer; true when buffers arrived meanwhile (process them).
  bool enable_notification();

  // Copies hdr (num_buffers overwritten) then the frame into writable chains (see above), filling
  // used entries from first_fill on; the caller flushes. `scratch` is a Chain whose iov array
  // pop() may use. kTooLarge: header plus frame beyond 32 bits (nothing consumed).
  RxPut put_rx_mergeable(const uint8_t (&hdr)[kNetHdrMrgSize], std::span<const ConstPiece> frame,
                         uint32_t first_fill, Chain& scratch);

  uint32_t num() const { return num_; }
  uint16_t last_avail_idx() const { return last_avail_idx_; }  // VHOST_USER_GET_VRING_BASE
  uint16_t used_idx() const { return used_idx_; }

 private:
  struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
  };
  static_assert(sizeof(Desc) == kVirtqDescSize);

  Pop fail(RingError e) {
    error_ = e;
    return Pop::kError;
  }
  // Re-reads avail->idx (acquire) into shadow_avail_idx_; false (and the error set) when it is
  // more than num ahead of last_avail_idx_.
  bool refresh_avail();
  RingError walk(uint16_t head, Chain& chain);
  void set_avail_event(uint16_t v);

  const GuestMemory* memory_ = nullptr;
  uint8_t* desc_ = nullptr;
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
  uint32_t num_ = 0;
  uint16_t last_avail_idx_ = 0;
  uint16_t shadow_avail_idx_ = 0;  // avail->idx as last read
  uint16_t used_idx_ = 0;
  uint32_t in_flight_ = 0;       // chains popped and not yet flushed back
  uint16_t signalled_used_ = 0;  // used_idx_ at the last interrupt need_notify() asked for
  bool signalled_used_valid_ = false;
  bool event_idx_ = false;
  bool notify_disabled_ = false;
  RingError error_ = RingError::kNotSetUp;
};

}  // namespace qswitch::backends::vhost_user
