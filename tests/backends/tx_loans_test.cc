// tests/backends/tx_loans_test.cc: a vhost-user port's loans (backends/vhost_user/tx_loans.h):
// the split frame a loan makes, heads handed back when the last reference goes, a head lent
// twice refused, orphaned loans after end(), the memory kept mapped meanwhile, and what
// DatagramTx makes of a split frame.
#include "backends/vhost_user/tx_loans.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "backends/runtime/datagram_tx.h"

namespace qswitch::backends::vhost_user {
namespace {

class RecordingLender final : public TxLoans::Lender {
 public:
  void returned(uint16_t head) override { heads.push_back(head); }
  std::vector<uint16_t> heads;
};

std::vector<uint8_t> pattern(uint32_t size) {
  std::vector<uint8_t> v(size);
  for (uint32_t i = 0; i < size; ++i) v[i] = static_cast<uint8_t>(i * 11 + 3);
  return v;
}

TEST(TxLoansTest, ALoanIsASplitFrameWhoseHeadIsACopy) {
  RecordingLender lender;
  TxLoans* loans = TxLoans::create(8, std::make_shared<GuestMemory>(), &lender);
  std::vector<uint8_t> guest = pattern(1514);
  sw::Frame f;
  ASSERT_TRUE(loans->lend(3, guest.data(), 1514, f));
  EXPECT_TRUE(f.split());
  EXPECT_EQ(f.size, 1514u);
  EXPECT_EQ(f.head, sw::kSplitHead);
  EXPECT_EQ(sw::load_be32(f.wire), 1514u);
  EXPECT_EQ(f.tail(), guest.data() + sw::kSplitHead);
  EXPECT_NE(f.data(), guest.data());
  EXPECT_EQ(std::memcmp(f.data(), guest.data(), sw::kSplitHead), 0);
  // The guest rewrites its buffer: the head the switch reads stays.
  const std::vector<uint8_t> before(f.data(), f.data() + sw::kSplitHead);
  std::memset(guest.data(), 0, guest.size());
  EXPECT_EQ(std::vector<uint8_t>(f.data(), f.data() + sw::kSplitHead), before);
  // A head that is out cannot be lent again (a driver that made it available twice).
  sw::Frame again;
  EXPECT_FALSE(loans->lend(3, guest.data(), 1514, again));
  EXPECT_FALSE(loans->lend(8, guest.data(), 1514, again));  // beyond the ring
  EXPECT_EQ(loans->outstanding(), 1u);
  // The last reference hands the head back.
  sw::chunk_ref(f.chunk);  // an output queue's
  sw::chunk_unref(f.chunk);
  EXPECT_TRUE(lender.heads.empty());
  sw::chunk_unref(f.chunk);
  EXPECT_EQ(lender.heads, std::vector<uint16_t>{3});
  EXPECT_EQ(loans->outstanding(), 0u);
  // And it can be lent again.
  EXPECT_TRUE(loans->lend(3, guest.data(), 600, f));
  sw::chunk_unref(f.chunk);
  loans->end();
}

TEST(TxLoansTest, LoansOutAfterEndKeepTheMemoryUntilTheLastGoes) {
  RecordingLender lender;
  auto memory = std::make_shared<GuestMemory>();
  const std::weak_ptr<GuestMemory> watch = memory;
  TxLoans* loans = TxLoans::create(4, std::move(memory), &lender);
  std::vector<uint8_t> guest = pattern(4000);
  sw::Frame a, b;
  ASSERT_TRUE(loans->lend(0, guest.data(), 2000, a));
  ASSERT_TRUE(loans->lend(1, guest.data() + 2000, 2000, b));
  loans->end();  // the port let go; two frames are still queued somewhere
  EXPECT_FALSE(watch.expired());
  sw::chunk_unref(a.chunk);
  EXPECT_FALSE(watch.expired());
  EXPECT_TRUE(lender.heads.empty());  // an ended lender hears nothing
  sw::chunk_unref(b.chunk);
  EXPECT_TRUE(watch.expired());  // the last loan deleted the loans and let go of the memory
}

TEST(TxLoansTest, DatagramTxSendsASplitFrameAsHeadAndTail) {
  RecordingLender lender;
  TxLoans* loans = TxLoans::create(4, std::make_shared<GuestMemory>(), &lender);
  std::vector<uint8_t> guest = pattern(1000);
  sw::Frame f;
  ASSERT_TRUE(loans->lend(2, guest.data(), 1000, f));
  DatagramTx tx(1 << 20);
  ASSERT_TRUE(tx.push(f));
  sw::chunk_unref(f.chunk);
  iovec iov[2];
  ASSERT_EQ(tx.iov(0, iov), 2);
  EXPECT_EQ(iov[0].iov_len, sw::kSplitHead);
  EXPECT_EQ(iov[1].iov_base, guest.data() + sw::kSplitHead);
  EXPECT_EQ(iov[0].iov_len + iov[1].iov_len, 1000u);
  EXPECT_EQ(std::memcmp(iov[0].iov_base, guest.data(), sw::kSplitHead), 0);
  EXPECT_EQ(tx.head_size(0), sw::kSplitHead);
  EXPECT_EQ(tx.data(0)[0], guest[0]);
  EXPECT_TRUE(lender.heads.empty());
  tx.pop(1);
  EXPECT_EQ(lender.heads, std::vector<uint16_t>{2});
  loans->end();
}

TEST(TxLoansTest, OnlyAFileSealedAgainstShrinkingIsLentFrom) {
  const int plain = memfd_create("tx-loans-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(plain, 0);
  const int sealed = memfd_create("tx-loans-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(sealed, 0);
  ASSERT_EQ(fcntl(sealed, F_ADD_SEALS, F_SEAL_SHRINK), 0);
  const int grow_only = memfd_create("tx-loans-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(grow_only, 0);
  ASSERT_EQ(fcntl(grow_only, F_ADD_SEALS, F_SEAL_GROW), 0);
  EXPECT_FALSE(sealed_against_shrinking(plain));
  EXPECT_TRUE(sealed_against_shrinking(sealed));
  EXPECT_FALSE(sealed_against_shrinking(grow_only));
  EXPECT_FALSE(sealed_against_shrinking(-1));
  ::close(plain);
  ::close(sealed);
  ::close(grow_only);
}

}  // namespace
}  // namespace qswitch::backends::vhost_user
