// tests/switch/packed_frames_test.cc: PackedFrames packs frames into chunks, prefix first.
#include "switch/packed_frames.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace qswitch::sw {
namespace {

TEST(PackedFramesTest, PacksFramesWithTheirPrefixOneAfterAnother) {
  PackedFrames rx(2);
  EXPECT_EQ(rx.reserve(60), nullptr);  // no chunk yet
  ASSERT_TRUE(rx.next_chunk());
  uint8_t* a = rx.reserve(60);
  ASSERT_NE(a, nullptr);
  std::memset(a, 0xaa, 60);
  const Frame fa = rx.commit(60);
  uint8_t* b = rx.reserve(14);
  ASSERT_NE(b, nullptr);
  std::memset(b, 0xbb, 14);
  const Frame fb = rx.commit(14);
  EXPECT_EQ(fa.chunk, fb.chunk);
  EXPECT_EQ(load_be32(fa.wire), 60u);
  EXPECT_EQ(fa.data(), a);
  EXPECT_EQ(fa.size, 60u);
  EXPECT_EQ(load_be32(fb.wire), 14u);
  // 4 + 60 rounded up to 8: the next prefix starts 64 bytes after the first.
  EXPECT_EQ(fb.wire, fa.wire + 64);
  EXPECT_EQ(fa.data()[59], 0xaa);
  EXPECT_EQ(fb.data()[0], 0xbb);
}

TEST(PackedFramesTest, AFullChunkRefusesAndTheNextOneTakesOver) {
  PackedFrames rx(2);
  ASSERT_TRUE(rx.next_chunk());
  uint32_t frames = 0;
  RxChunk* first = nullptr;
  while (uint8_t* p = rx.reserve(kMaxFrameSize)) {
    (void)p;
    first = rx.commit(kMaxFrameSize).chunk;
    ++frames;
    ASSERT_LE(frames, 10u);
  }
  EXPECT_EQ(frames, PackedFrames::kChunkSize / ((kMaxWireSize + 7) / 8 * 8));
  // A small frame still fits in what is left.
  EXPECT_NE(rx.reserve(64), nullptr);
  chunk_ref(first);  // an output queue holds a frame of the first chunk
  ASSERT_TRUE(rx.next_chunk());
  const Frame f = rx.commit(100);
  EXPECT_NE(f.chunk, first);
  // Both chunks are held (the queue's reference, the receiver's): none is free.
  EXPECT_FALSE(rx.chunk_available());
  chunk_ref(f.chunk);
  EXPECT_FALSE(rx.next_chunk());
  // The queue lets go of the first chunk: it is free again.
  chunk_unref(first);
  EXPECT_TRUE(rx.chunk_available());
  EXPECT_TRUE(rx.next_chunk());
  chunk_unref(f.chunk);
}

}  // namespace
}  // namespace qswitch::sw
