// tests/backends/datagram_kind_test.cc: classify_datagram, the check that decides which received
// datagrams become frames.
#include "backends/runtime/datagram_rx.h"

#include <gtest/gtest.h>

namespace qswitch::backends {
namespace {

TEST(DatagramKindTest, OnlyUntruncatedDatagramsOfAFrameSizeAreFrames) {
  EXPECT_EQ(classify_datagram(0, false), DatagramKind::kRunt);
  EXPECT_EQ(classify_datagram(sw::kMinFrameSize - 1, false), DatagramKind::kRunt);
  EXPECT_EQ(classify_datagram(sw::kMinFrameSize, false), DatagramKind::kFrame);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize, false), DatagramKind::kFrame);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize + 1, false), DatagramKind::kOversize);
  EXPECT_EQ(classify_datagram(sw::kMaxFrameSize, true), DatagramKind::kOversize);
  EXPECT_EQ(classify_datagram(0, true), DatagramKind::kOversize);
}

}  // namespace
}  // namespace qswitch::backends
