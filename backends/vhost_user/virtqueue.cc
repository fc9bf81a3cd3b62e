// backends/vhost_user/virtqueue.cc: the split virtqueue's device side (virtqueue.h).
#include "backends/vhost_user/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

namespace qswitch::backends::vhost_user {

namespace {

// Ring fields shared with the guest's driver are read and written with the compiler's atomic
// builtins: single, untorn accesses with the ordering virtio asks for (2.7.13.3, 2.7.14). The
// ring parts are aligned (setup() checks), so each field is naturally aligned.
uint16_t load16(const uint8_t* p, int order) {
  return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), order);
}
void store16(uint8_t* p, uint16_t v, int order) {
  __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, order);
}
void store32(uint8_t* p, uint32_t v) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(p), v, __ATOMIC_RELAXED);
}

// Offsets in the available and used rings (virtio 1.2 sections 2.7.6, 2.7.8).
constexpr size_t kRingFlags = 0;
constexpr size_t kRingIdx = 2;
constexpr size_t kRingEntries = 4;
constexpr size_t kAvailEntrySize = 2;
constexpr size_t kUsedEntrySize = 8;

size_t avail_bytes(uint32_t num) { return kRingEntries + kAvailEntrySize * num + 2; }
size_t used_bytes(uint32_t num) { return kRingEntries + kUsedEntrySize * num + 2; }

bool aligned(const void* p, uintptr_t to) {
  return (reinterpret_cast<uintptr_t>(p) & (to - 1)) == 0;
}

constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();

// The bytes put_rx_mergeable() copies: the header, then the frame's pieces.
class Source {
 public:
  Source(const uint8_t* hdr, std::span<const ConstPiece> pieces) : hdr_(hdr), pieces_(pieces) {}
  // The next contiguous run of bytes not yet taken (n 0 at the end).
  const uint8_t* run(size_t* n) {
    for (;;) {
      if (index_ == 0) {
        if (off_ < kNetHdrMrgSize) {
          *n = kNetHdrMrgSize - off_;
          return hdr_ + off_;
        }
      } else if (index_ <= pieces_.size()) {
        const ConstPiece& p = pieces_[index_ - 1];
        if (off_ < p.size) {
          *n = p.size - off_;
          return p.data + off_;
        }
      } else {
        *n = 0;
        return nullptr;
      }
      ++index_;
      off_ = 0;
    }
  }
  void take(size_t n) { off_ += static_cast<uint32_t>(n); }

 private:
  const uint8_t* hdr_;
  std::span<const ConstPiece> pieces_;
  size_t index_ = 0;  // 0: the header; k: pieces_[k - 1]
  uint32_t off_ = 0;
};

}  // namespace

const char* ring_error_text(RingError e) {
  switch (e) {
    case RingError::kNone:
      return "ok";
    case RingError::kNotSetUp:
      return "virtqueue not set up";
    case RingError::kBadQueueSize:
      return "queue size not a power of 2 in 1..32768";
    case RingError::kMisalignedRing:
      return "descriptor table, available or used ring misaligned";
    case RingError::kRingOutsideMemory:
      return "descriptor table, available or used ring not inside one memory region";
    case RingError::kAvailIdxTooFar:
      return "available index more than the queue size ahead of the last one seen";
    case RingError::kHeadOutOfRange:
      return "available ring names a descriptor past the table";
    case RingError::kNextOutOfRange:
      return "descriptor's next index past the table";
    case RingError::kChainTooLong:
      return "descriptor chain longer than the queue size (a loop?)";
    case RingError::kBufferOutsideMemory:
      return "descriptor's buffer outside guest memory";
    case RingError::kTooManyPieces:
      return "descriptor chain needs more pieces than the device accepts";
    case RingError::kReadableAfterWritable:
      return "device-readable descriptor after a device-writable one";
    case RingError::kLengthOverflow:
      return "descriptor chain longer than 2^32 - 1 bytes";
    case RingError::kIndirectWithNext:
      return "indirect descriptor with the NEXT flag";
    case RingError::kIndirectBadLength:
      return "indirect table length not a non-zero multiple of 16";
    case RingError::kIndirectTooLarge:
      return "indirect table with more entries than the queue size";
    case RingError::kIndirectOutsideMemory:
      return "indirect table not inside one memory region";
    case RingError::kNestedIndirect:
      return "indirect descriptor inside an indirect table";
    case RingError::kRxBufferTooSmall:
      return "receive buffer smaller than the 12-byte virtio-net header";
    case RingError::kTooManyInFlight:
      return "more chains available than the queue size while the device holds some";
  }
  return "unknown ring error";
}

RingError Virtqueue::setup(const GuestMemory& memory, const VringConfig& config) {
  error_ = RingError::kNotSetUp;
  memory_ = &memory;
  const uint32_t num = config.num;
  if (num == 0 || num > kMaxQueueSize || (num & (num - 1)) != 0) {
    return error_ = RingError::kBadQueueSize;
  }
  // Virtio 1.2 section 2.7, "Virtqueue Part Alignment": 16, 2 and 4 bytes.
  if (config.desc_addr % 16 != 0 || config.avail_addr % 2 != 0 || config.used_addr % 4 != 0) {
    return error_ = RingError::kMisalignedRing;
  }
  uint8_t* desc = memory.ua_to_host(config.desc_addr, uint64_t{kVirtqDescSize} * num);
  uint8_t* avail = memory.ua_to_host(config.avail_addr, avail_bytes(num));
  uint8_t* used = memory.ua_to_host(config.used_addr, used_bytes(num));
  if (desc == nullptr || avail == nullptr || used == nullptr) {
    return error_ = RingError::kRingOutsideMemory;
  }
  // A region's host address keeps the frontend's alignment only if mmap_offset does.
  if (!aligned(desc, 16) || !aligned(avail, 2) || !aligned(used, 4)) {
    return error_ = RingError::kMisalignedRing;
  }
  desc_ = desc;
  avail_ = avail;
  used_ = used;
  num_ = num;
  last_avail_idx_ = config.last_avail_idx;
  shadow_avail_idx_ = config.last_avail_idx;
  // Resume where the used ring says we (or a previous backend) stopped publishing.
  used_idx_ = load16(used_ + kRingIdx, __ATOMIC_ACQUIRE);
  signalled_used_ = used_idx_;
  signalled_used_valid_ = false;
  event_idx_ = config.event_idx;
  notify_disabled_ = false;
  in_flight_ = 0;
  return error_ = RingError::kNone;
}

bool Virtqueue::refresh_avail() {
  // Acquire: the ring entries and descriptors the driver wrote before this idx are visible to
  // the reads that follow (the smp_rmb of 2.7.13.3's pairing).
  const uint16_t idx = load16(avail_ + kRingIdx, __ATOMIC_ACQUIRE);
  if (static_cast<uint16_t>(idx - last_avail_idx_) > num_) {
    error_ = RingError::kAvailIdxTooFar;
    return false;
  }
  shadow_avail_idx_ = idx;
  return true;
}

uint16_t Virtqueue::available_count() {
  if (error_ != RingError::kNone || !refresh_avail()) return 0;
  return static_cast<uint16_t>(shadow_avail_idx_ - last_avail_idx_);
}

void Virtqueue::set_avail_event(uint16_t v) {
  store16(used_ + kRingEntries + kUsedEntrySize * num_, v, __ATOMIC_RELAXED);
}

Virtqueue::Pop Virtqueue::pop(Chain& chain) {
  if (error_ != RingError::kNone) return Pop::kError;
  if (last_avail_idx_ == shadow_avail_idx_) {
    if (!refresh_avail()) return Pop::kError;
    if (last_avail_idx_ == shadow_avail_idx_) return Pop::kEmpty;
  }
  if (in_flight_ >= num_) return fail(RingError::kTooManyInFlight);
  const size_t slot = last_avail_idx_ & (num_ - 1);
  const uint16_t head = load16(avail_ + kRingEntries + kAvailEntrySize * slot, __ATOMIC_RELAXED);
  if (head >= num_) return fail(RingError::kHeadOutOfRange);
  const RingError e = walk(head, chain);
  if (e != RingError::kNone) return fail(e);
  ++last_avail_idx_;
  ++in_flight_;
  // 2.7.10: no kick for buffers added while we are still behind them.
  if (event_idx_ && !notify_disabled_) set_avail_event(last_avail_idx_);
  return Pop::kChain;
}

RingError Virtqueue::walk(uint16_t head, Chain& chain) {
  chain.head = head;
  chain.readable_count = 0;
  chain.writable_count = 0;
  chain.readable_size = 0;
  chain.writable_size = 0;
  chain.descriptor_count = 0;
  const size_t capacity = chain.iov.size();
  const uint8_t* table = desc_;
  uint32_t table_count = num_;
  bool indirect = false;
  bool seen_writable = false;
  uint32_t steps = 0;  // descriptors read from `table`: more than it holds is a loop
  uint32_t i = head;
  for (;;) {
    if (i >= table_count) return RingError::kNextOutOfRange;
    if (++steps > table_count) return RingError::kChainTooLong;
    // One read of the descriptor: what is checked below is what is used.
    Desc d;
    std::memcpy(&d, table + size_t{kVirtqDescSize} * i, sizeof d);
    if ((d.flags & kVirtqDescFIndirect) != 0) {
      if (indirect) return RingError::kNestedIndirect;
      if ((d.flags & kVirtqDescFNext) != 0) return RingError::kIndirectWithNext;
      if (d.len == 0 || d.len % kVirtqDescSize != 0) return RingError::kIndirectBadLength;
      if (d.len / kVirtqDescSize > num_) return RingError::kIndirectTooLarge;
      // Read in place: the whole table inside one region (descriptors are copied out with
      // memcpy, so the table need not be aligned).
      const uint8_t* t = memory_->gpa_to_host(d.addr, d.len);
      if (t == nullptr) return RingError::kIndirectOutsideMemory;
      table = t;
      table_count = d.len / kVirtqDescSize;
      indirect = true;
      steps = 0;
      i = 0;
      continue;
    }
    if (++chain.descriptor_count > num_) return RingError::kChainTooLong;
    const bool writable = (d.flags & kVirtqDescFWrite) != 0;
    if (!writable && seen_writable) return RingError::kReadableAfterWritable;
    seen_writable = seen_writable || writable;
    if (d.len > 0) {
      uint32_t& size = writable ? chain.writable_size : chain.readable_size;
      if (uint64_t{size} + d.len > kU32Max) return RingError::kLengthOverflow;
      const size_t used = size_t{chain.readable_count} + chain.writable_count;
      uint32_t pieces = 0;
      const TranslateError te = memory_->translate(
          d.addr, d.len, chain.iov.data() + used,
          static_cast<uint32_t>(std::min<size_t>(capacity - used, kU32Max)), &pieces);
      if (te == TranslateError::kOutsideMemory) return RingError::kBufferOutsideMemory;
      if (te == TranslateError::kTooManyPieces) return RingError::kTooManyPieces;
      size += d.len;
      (writable ? chain.writable_count : chain.readable_count) += pieces;
    }
    if ((d.flags & kVirtqDescFNext) == 0) return RingError::kNone;
    i = d.next;
  }
}

void Virtqueue::fill(uint32_t i, uint16_t head, uint32_t len) {
  if (error_ != RingError::kNone) return;
  const size_t slot = (used_idx_ + i) & (num_ - 1);
  uint8_t* e = used_ + kRingEntries + kUsedEntrySize * slot;
  store32(e, head);  // le32 id
  store32(e + 4, len);
}

void Virtqueue::flush(uint32_t n) {
  if (error_ != RingError::kNone) return;
  used_idx_ = static_cast<uint16_t>(used_idx_ + n);
  in_flight_ -= std::min(n, in_flight_);
  // Release: the entries are visible before the idx that publishes them (2.7.14's wmb).
  store16(used_ + kRingIdx, used_idx_, __ATOMIC_RELEASE);
}

bool Virtqueue::need_notify() {
  if (error_ != RingError::kNone) return false;
  // The used idx we published must be visible before we read what the driver asked for, or
  // both sides may wait for each other (the smp_mb of virtio's vring_need_event users).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    return (load16(avail_ + kRingFlags, __ATOMIC_RELAXED) & kVirtqAvailFNoInterrupt) == 0;
  }
  const uint16_t used_event =
      load16(avail_ + kRingEntries + kAvailEntrySize * num_, __ATOMIC_RELAXED);
  const bool valid = signalled_used_valid_;
  const uint16_t old_idx = signalled_used_;
  signalled_used_ = used_idx_;
  signalled_used_valid_ = true;
  return !valid || vring_need_event(used_event, used_idx_, old_idx);
}

void Virtqueue::disable_notification() {
  if (error_ != RingError::kNone) return;
  notify_disabled_ = true;
  if (!event_idx_) store16(used_ + kRingFlags, kVirtqUsedFNoNotify, __ATOMIC_RELAXED);
}

bool Virtqueue::enable_notification() {
  if (error_ != RingError::kNone) return false;
  notify_disabled_ = false;
  if (event_idx_) {
    // Kick when the entry after the last one we saw is made available.
    set_avail_event(shadow_avail_idx_);
  } else {
    store16(used_ + kRingFlags, 0, __ATOMIC_RELAXED);
  }
  // Our request must be visible before we look again; a buffer added before the driver could see
  // it brought no kick, so the caller handles it now.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return load16(avail_ + kRingIdx, __ATOMIC_ACQUIRE) != shadow_avail_idx_;
}

Virtqueue::RxPut Virtqueue::put_rx_mergeable(const uint8_t (&hdr)[kNetHdrMrgSize],
                                             std::span<const ConstPiece> frame, uint32_t first_fill,
                                             Chain& scratch) {
  if (error_ != RingError::kNone) return {RxStatus::kError, 0};
  uint64_t total = kNetHdrMrgSize;
  for (const ConstPiece& p : frame) total += p.size;
  if (total > kU32Max) return {RxStatus::kTooLarge, 0};
  const uint16_t saved_last_avail = last_avail_idx_;
  Source src(hdr, frame);
  uint64_t done = 0;
  uint16_t buffers = 0;
  uint8_t* num_buffers_at[2] = {nullptr, nullptr};  // where header bytes 10 and 11 landed
  while (done < total) {
    const Pop p = pop(scratch);
    if (p == Pop::kError) return {RxStatus::kError, 0};
    if (p == Pop::kEmpty) {
      // Nothing consumed; the entries filled stay unpublished.
      last_avail_idx_ = saved_last_avail;
      in_flight_ -= buffers;
      return {RxStatus::kNoRoom, 0};
    }
    if (scratch.writable_size < kNetHdrMrgSize) {
      error_ = RingError::kRxBufferTooSmall;
      return {RxStatus::kError, 0};
    }
    uint32_t put = 0;
    for (const iovec& v : scratch.writable()) {
      auto* dst = static_cast<uint8_t*>(v.iov_base);
      size_t room = v.iov_len;
      while (room > 0 && done < total) {
        size_t n = 0;
        const uint8_t* from = src.run(&n);
        n = std::min(n, room);
        for (uint64_t k = kNetHdrNumBuffersOffset; k < kNetHdrMrgSize; ++k) {
          if (done <= k && k < done + n)
            num_buffers_at[k - kNetHdrNumBuffersOffset] = dst + (k - done);
        }
        std::memcpy(dst, from, n);
        src.take(n);
        dst += n;
        room -= n;
        done += n;
        put += static_cast<uint32_t>(n);
      }
      if (done == total) break;
    }
    fill(first_fill + buffers, scratch.head, put);
    ++buffers;
  }
  // le16 num_buffers; both bytes are in the first chain (it holds at least the header, and
  // total >= 12), so both pointers are set: the test only keeps the analyzer sure of it.
  if (num_buffers_at[0] != nullptr && num_buffers_at[1] != nullptr) {
    num_buffers_at[0][0] = static_cast<uint8_t>(buffers);
    num_buffers_at[1][0] = static_cast<uint8_t>(buffers >> 8);
  }
  return {RxStatus::kDone, buffers};
}

}  // namespace qswitch::backends::vhost_user
