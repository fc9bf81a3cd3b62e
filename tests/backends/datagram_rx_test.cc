// tests/backends/datagram_rx_test.cc: the receive slots of datagram-like ports and the check that
// decides which datagrams become frames (no sockets: slots are filled by hand).
#include "backends/dgram/datagram_rx.h"

#include <gtest/gtest.h>

#include <cstring>

namespace qswitch::backends {
namespace {

TEST(DatagramRxTest, OnlyUntruncatedDatagramsOfAFrameSizeAreFrames) {
  EXPECT_EQ(classify_datagram(0, false), DatagramKind::kRunt);
  EXPECT_EQ(classify_datagram(sw::kMinFrameSize - 1, false), DatagramKind::kRunt);
  EXPECT_EQ(classify_datagram(sw::kMinFrameSize, false), DatagramKind::kFrame);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize, false), DatagramKind::kFrame);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize + 1, false), DatagramKind::kOversize);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize, true), DatagramKind::kOversize);
  EXPECT_EQ(classify_datagram(0, true), DatagramKind::kOversize);
}

TEST(DatagramRxTest, FramesPointIntoTheirSlotWithTheLengthPrefix) {
  DatagramRx rx(1);
  ASSERT_EQ(rx.available(), DatagramRx::kSlots);
  std::memset(rx.slot(1), 0xab, 60);
  const sw::Frame f = rx.frame(1, 60);
  EXPECT_EQ(f.size, 60u);
  EXPECT_EQ(sw::load_be32(f.wire), 60u);
  EXPECT_EQ(f.data(), rx.slot(1));
  EXPECT_EQ(f.data()[59], 0xab);
  rx.advance(DatagramRx::kSlots);
  // One chunk, still referenced by the frame's holder: nothing free until it lets go.
  sw::chunk_ref(f.chunk);
  EXPECT_EQ(rx.available(), 0u);
  sw::chunk_unref(f.chunk);
  EXPECT_EQ(rx.available(), DatagramRx::kSlots);
}

}  // namespace
}  // namespace qswitch::backends
