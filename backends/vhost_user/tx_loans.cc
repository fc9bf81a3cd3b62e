// backends/vhost_user/tx_loans.cc: see the header.
#include "backends/vhost_user/tx_loans.h"

#include <fcntl.h>

#include <cstring>

namespace qswitch::backends::vhost_user {

TxLoans* TxLoans::create(uint32_t num, std::shared_ptr<const GuestMemory> memory, Lender* lender) {
  return new TxLoans(num, std::move(memory), lender);
}

TxLoans::TxLoans(uint32_t num, std::shared_ptr<const GuestMemory> memory, Lender* lender)
    : loans_(num),
      heads_(new uint8_t[size_t{num} * kLoanBytes]),  // untouched pages stay unmapped
      memory_(std::move(memory)),
      lender_(lender) {
  for (uint32_t i = 0; i < num; ++i) {
    sw::RxChunk& c = loans_[i];
    c.data = heads_.get() + size_t{i} * kLoanBytes;
    c.capacity = kLoanBytes;
    c.pool = this;
  }
}

bool TxLoans::lend(uint16_t head, const uint8_t* frame, uint32_t size, sw::Frame& out) {
  if (head >= loans_.size() || loans_[head].refs != 0) return false;
  sw::RxChunk& c = loans_[head];
  sw::store_be32(c.data, size);
  std::memcpy(c.data + sw::kPrefixSize, frame, sw::kSplitHead);
  c.tail = frame + sw::kSplitHead;
  c.refs = 1;
  ++outstanding_;
  out = sw::Frame{c.data, size, sw::kSplitHead, &c, {}};
  return true;
}

void TxLoans::recycle(sw::RxChunk* c) {
  c->tail = nullptr;
  --outstanding_;
  if (lender_ != nullptr) {
    lender_->returned(static_cast<uint16_t>(c - loans_.data()));
  } else if (outstanding_ == 0) {
    delete this;  // ended, and this was the last loan out
  }
}

void TxLoans::end() {
  lender_ = nullptr;
  if (outstanding_ == 0) delete this;
}

bool sealed_against_shrinking(int fd) {
  const int seals = ::fcntl(fd, F_GET_SEALS);
  return seals >= 0 && (seals & F_SEAL_SHRINK) != 0;
}

}  // namespace qswitch::backends::vhost_user
