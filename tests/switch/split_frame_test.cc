// tests/switch/split_frame_test.cc: split frames (switch/frame.h: a head behind a length prefix
// in the lender's memory, the tail elsewhere) through the output queues and the switch: what a
// stream writes, what unpin() copies, and the one contiguous copy the switch makes for a port
// that does not take them.
#include <gtest/gtest.h>

#include <sys/uio.h>

#include <cstring>
#include <vector>

#include "switch/l2_switch.h"
#include "switch/output_ring.h"
#include "switch/port.h"
#include "switch/stream_tx_queue.h"

namespace qswitch::sw {
namespace {

// A lender of one split frame: its loan holds prefix and head, `tail` the rest; it records
// when the last reference goes.
class TestLender final : public ChunkOwner {
 public:
  TestLender(uint32_t size, uint8_t salt) : bytes(size) {
    for (uint32_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + salt);
    for (int i = 0; i < 6; ++i) bytes[i] = static_cast<uint8_t>(0x02 + i);  // dst 02:03:..
    const uint8_t src[6] = {0x02, 0, 0, 0, salt, 1};                        // a unicast source
    std::memcpy(bytes.data() + 6, src, 6);
    store_be32(loan_bytes, size);
    std::memcpy(loan_bytes + kPrefixSize, bytes.data(), kSplitHead);
    tail.assign(bytes.begin() + kSplitHead, bytes.end());
    loan.data = loan_bytes;
    loan.capacity = sizeof loan_bytes;
    loan.pool = this;
    loan.tail = tail.data();
    loan.refs = 1;  // the lender's own, dropped by the test
  }
  void recycle(RxChunk* c) override {
    EXPECT_EQ(c, &loan);
    ++returned;
  }
  Frame frame() {
    return Frame{loan_bytes, static_cast<uint32_t>(bytes.size()), kSplitHead, &loan, {}};
  }

  std::vector<uint8_t> bytes;  // the whole frame, for comparing
  std::vector<uint8_t> tail;   // where the frame's tail "is" (a guest's memory)
  uint8_t loan_bytes[kPrefixSize + kSplitHead] = {};
  RxChunk loan;
  int returned = 0;
};

// The bytes `iov[0..n)` describe, skipping nothing.
std::vector<uint8_t> gather(const iovec* iov, int n) {
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
    out.insert(out.end(), p, p + iov[i].iov_len);
  }
  return out;
}

std::vector<uint8_t> stream_bytes(const std::vector<uint8_t>& frame) {
  std::vector<uint8_t> out(kPrefixSize);
  store_be32(out.data(), static_cast<uint32_t>(frame.size()));
  out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

TEST(SplitFrameTest, AStreamQueueWritesPrefixAndHeadThenTheTail) {
  TestLender a(1514, 1);
  TestLender b(600, 2);
  StreamTxQueue q(1 << 20);
  ASSERT_TRUE(q.push(a.frame()));
  ASSERT_TRUE(q.push(b.frame()));
  chunk_unref(&a.loan);
  chunk_unref(&b.loan);
  EXPECT_EQ(a.returned, 0);  // the queue holds them
  iovec iov[8];
  const int n = q.fill_iov(iov, 8);
  ASSERT_EQ(n, 4);
  EXPECT_EQ(iov[0].iov_base, a.loan_bytes);
  EXPECT_EQ(iov[0].iov_len, kPrefixSize + kSplitHead);
  EXPECT_EQ(iov[1].iov_base, a.tail.data());
  std::vector<uint8_t> want = stream_bytes(a.bytes);
  const std::vector<uint8_t> more = stream_bytes(b.bytes);
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_EQ(gather(iov, n), want);
  // A write that ends inside a's tail: the rest of it, then b.
  const size_t first = kPrefixSize + kSplitHead + 100;
  EXPECT_EQ(q.consume(first).frames, 0u);
  const int m = q.fill_iov(iov, 8);
  EXPECT_EQ(gather(iov, m), std::vector<uint8_t>(want.begin() + first, want.end()));
  // And one that ends inside b's head.
  const size_t second = (kPrefixSize + 1514 - first) + 10;
  EXPECT_EQ(q.consume(second).frames, 1u);
  EXPECT_EQ(a.returned, 1);
  EXPECT_EQ(b.returned, 0);
  const int k = q.fill_iov(iov, 8);
  EXPECT_EQ(gather(iov, k), std::vector<uint8_t>(more.begin() + 10, more.end()));
  EXPECT_EQ(q.consume(more.size() - 10).frames, 1u);
  EXPECT_EQ(b.returned, 1);
  EXPECT_TRUE(q.empty());
}

TEST(SplitFrameTest, UnpinCopiesHeadAndTailTogetherAndLetsTheLoanGo) {
  TestLender a(2000, 3);
  TestLender other(900, 4);
  StreamTxQueue q(1 << 20);
  ASSERT_TRUE(q.push(a.frame()));
  ASSERT_TRUE(q.push(other.frame()));
  chunk_unref(&a.loan);
  chunk_unref(&other.loan);
  iovec iov[8];
  // Half of a's head already went out.
  EXPECT_EQ(q.consume(64).frames, 0u);
  EXPECT_EQ(q.unpin(a), 1u);
  EXPECT_EQ(a.returned, 1);  // the copy lets the loan go
  EXPECT_EQ(other.returned, 0);
  // The guest rewrites its tail now: the copy keeps what was there.
  std::memset(a.tail.data(), 0, a.tail.size());
  const int n = q.fill_iov(iov, 8);
  std::vector<uint8_t> want = stream_bytes(a.bytes);
  want.erase(want.begin(), want.begin() + 64);
  const std::vector<uint8_t> more = stream_bytes(other.bytes);
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_EQ(gather(iov, n), want);
  EXPECT_EQ(q.consume(want.size()).frames, 2u);
  EXPECT_EQ(other.returned, 1);
}

class SplitPort : public Port {
 public:
  explicit SplitPort(bool takes) { set_takes_split(takes); }
  void enqueue(const Frame& frame) override {
    chunk_ref(frame.chunk);
    got.push_back(frame);
  }
  void flush() override {}
  std::string describe() const override { return "split-port"; }
  void drop_all() {
    for (const Frame& f : got) chunk_unref(f.chunk);
    got.clear();
  }
  std::vector<Frame> got;
};

TEST(SplitFrameTest, TheSwitchCopiesOnceForPortsThatTakeOnlyWholeFrames) {
  L2Switch fabric(SwitchConfig{});
  SplitPort in(true), takes(true), whole1(false), whole2(false);
  fabric.attach(in);
  fabric.attach(takes);
  fabric.attach(whole1);
  fabric.attach(whole2);
  TestLender a(1514, 5);
  for (int i = 0; i < 6; ++i) {  // broadcast: every port gets it
    a.bytes[i] = 0xff;
    a.loan_bytes[kPrefixSize + i] = 0xff;
  }
  fabric.receive(in, a.frame(), 0);
  chunk_unref(&a.loan);
  ASSERT_EQ(takes.got.size(), 1u);
  EXPECT_EQ(takes.got[0].chunk, &a.loan);  // the loan itself
  EXPECT_TRUE(takes.got[0].split());
  ASSERT_EQ(whole1.got.size(), 1u);
  ASSERT_EQ(whole2.got.size(), 1u);
  EXPECT_FALSE(whole1.got[0].split());
  EXPECT_EQ(whole1.got[0].wire, whole2.got[0].wire);  // one copy for both
  const Frame& c = whole1.got[0];
  EXPECT_EQ(std::vector<uint8_t>(c.data(), c.data() + c.size), a.bytes);
  EXPECT_EQ(load_be32(c.wire), 1514u);
  EXPECT_EQ(fabric.counters().split_copies, 1u);
  EXPECT_EQ(fabric.counters().split_dropped, 0u);
  EXPECT_EQ(a.returned, 0);
  takes.drop_all();
  EXPECT_EQ(a.returned, 1);  // the copies do not hold the loan
  whole1.drop_all();
  whole2.drop_all();
  for (Port* p : {static_cast<Port*>(&in), static_cast<Port*>(&takes), static_cast<Port*>(&whole1),
                  static_cast<Port*>(&whole2)}) {
    fabric.detach(*p);
  }
}

}  // namespace
}  // namespace qswitch::sw
