// backends/vhost_user/tx_loans.h: frames a vhost-user port lends to the switch out of its
// guest's memory (zero copy: switch/frame.h "Split frames"), and the guest's transmit buffers
// they hold until every output is done with them.
//
// Theory of operation
// - One TxLoans per running period of a port's transmit queue (created when the queue starts,
//   ended when it stops or the memory table changes). It has one loan per descriptor head of the
//   ring (a head is in flight at most once), made once: nothing is allocated per frame.
// - lend(head, frame, size) makes the split frame for the chain whose head is `head`: the
//   frame's first kSplitHead bytes are copied into the loan behind a length prefix, the rest stays
//   where the guest wrote it (the loan's `tail`). The switch decides on the copied head, so a
//   guest that rewrites its buffer after sending changes only its own payload. The caller holds
//   the loan's first reference and drops it once the switch has the frame; output queues take
//   theirs. The last reference gone, recycle() tells the Lender the head is free: the port writes
//   it to the used ring (the guest's buffer is handed back only once every write is done).
// - The loans keep the guest's memory mapped (a shared GuestMemory), so a frame queued anywhere
//   stays readable whatever the port does meanwhile. end(): the port lets go. Before that it
//   has the switch relieve the loans (output queues copy the frames out, as for a pool that runs
//   short: switch/frame.h), which hands every head back while the ring is still the port's.
//   Loans still out after that (none, as long as every queue that takes split frames can be
//   relieved) are orphaned: their return reaches no port, and the last one deletes the TxLoans
//   and with it its hold on the memory.
// - Only memory the front-end cannot shrink is lent from (a memfd sealed with F_SEAL_SHRINK, as
//   QEMU's memory-backend-memfd does by default): a kernel write from a vanished page would fail
//   another port's socket. The port decides that (sealed_against_shrinking()).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/vhost_user/guest_memory.h"
#include "switch/frame.h"

namespace qswitch::backends::vhost_user {

class TxLoans final : public sw::ChunkOwner {
 public:
  // Who gets the heads back (the port).
  class Lender {
   public:
    virtual void returned(uint16_t head) = 0;

   protected:
    ~Lender() = default;
  };

  // Frames shorter than this are copied. Measured (docs/benchmarks.md, "Zero copy"): toward a
  // stream peer a lent 1514-byte frame cost 1.44 times the CPU of a copied one (two iovec
  // entries instead of a share of one, and a guest buffer held until the write), a 4096-byte one
  // 0.59 times, a 9014-byte one 0.40 times; toward a vhost-user guest 1514 bytes came out even.
  static constexpr uint32_t kMinLend = 2048;
  static_assert(kMinLend > sw::kSplitHead);

  // A TxLoans for a ring of `num` heads over `memory`; ended with end(), never deleted directly.
  static TxLoans* create(uint32_t num, std::shared_ptr<const GuestMemory> memory, Lender* lender);

  // The split frame for chain `head` (< num): `size` bytes (kMinLend..kMaxFrameSize) at `frame`
  // in guest memory. Holds one reference for the caller. false (nothing lent) when that head is
  // already out: a driver that made a head available twice.
  bool lend(uint16_t head, const uint8_t* frame, uint32_t size, sw::Frame& out);
  // Loans whose frames are still referenced.
  uint32_t outstanding() const { return outstanding_; }
  // The lender lets go (relieve first, see above); the object deletes itself now or with the
  // last loan still out.
  void end();

  void recycle(sw::RxChunk* c) override;

 private:
  TxLoans(uint32_t num, std::shared_ptr<const GuestMemory> memory, Lender* lender);
  ~TxLoans() = default;

  static constexpr uint32_t kLoanBytes = 8 * ((sw::kPrefixSize + sw::kSplitHead + 7) / 8);

  std::vector<sw::RxChunk> loans_;    // one per head
  std::unique_ptr<uint8_t[]> heads_;  // kLoanBytes per head: prefix, then the copied head
  std::shared_ptr<const GuestMemory> memory_;
  Lender* lender_;  // nullptr once ended
  uint32_t outstanding_ = 0;
};

// Whether `fd` is a file the front-end cannot shrink under our mapping (F_SEAL_SHRINK).
bool sealed_against_shrinking(int fd);

}  // namespace qswitch::backends::vhost_user
