// tests/switch/stream_tx_queue_test.cc: StreamTxQueue framing, coalescing, partial writes, and
// how frames copied out by unpin() leave.
//
// Theory of operation
// - Frames are laid out in memory the way a receive chunk holds them (4-byte big-endian prefix,
//   then the frame), back to back when a test wants them adjacent and with a gap of 0xee bytes
//   when not. Unused memory is filled with non-zero bytes, so padding that is read from memory
//   instead of written as zeros is caught.
// - The byte stream fill_iov() describes is gathered and compared with the expected QEMU stream
//   framing: prefix + frame, and for a frame shorter than 60 bytes a prefix saying 60 and zero
//   padding. consume(n) is checked at every byte offset against the same expected stream.
// - Chunk references are observed through RxChunk::refs on chunks from a real ChunkPool.
// - unpin(): frames come from chunks of two or three real pools. After unpin() the chunk memory
//   of the copied frames is overwritten (as a sender reusing its chunk would), so a frame still
//   read from its chunk instead of its copy shows up as wrong bytes; the bytes fill_iov()
//   describes must be the same before and after, and the chunk references drop by exactly the
//   frames copied. A random test checks unpin(), consume() and clear() against a deque model.
// - The ring the frames wait in (byte bound, entry cap, growth and order, references, which frames
//   unpin() copies, the copy space) is OutputRing's, tested in output_ring_test.cc; the tests
//   here check what StreamTxQueue adds: the stream, its iovecs, partial writes and their head.
#include "switch/stream_tx_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "tests/switch/queue_test_support.h"
namespace qswitch::sw {
namespace {

// The shared layout (queue_test_support.h), in this file's argument order.
std::vector<Frame> lay_out(uint8_t* mem, size_t mem_size, const std::vector<uint32_t>& sizes,
                           const std::vector<uint32_t>& gaps, RxChunk* chunk) {
  return test::lay_out(mem, mem_size, chunk, sizes, gaps);
}

// The stream of bytes a stream peer must receive for `frames`.
std::vector<uint8_t> expected_stream(const std::vector<Frame>& frames) {
  std::vector<uint8_t> out;
  for (const Frame& f : frames) {
    const uint32_t sent = std::max(f.size, kPadFrameSize);
    uint8_t prefix[4];
    store_be32(prefix, sent);
    out.insert(out.end(), prefix, prefix + 4);
    out.insert(out.end(), f.data(), f.data() + f.size);
    out.insert(out.end(), sent - f.size, 0);
  }
  return out;
}

uint64_t ethernet_bytes(const Frame& f) { return std::max(f.size, kPadFrameSize); }

constexpr int kMaxIov = 1024;

// Everything fill_iov() describes, gathered into one buffer.
std::vector<uint8_t> gather(StreamTxQueue& q, int* iov_count = nullptr) {
  std::vector<iovec> iov(kMaxIov);
  const int n = q.fill_iov(iov.data(), kMaxIov);
  if (iov_count != nullptr) *iov_count = n;
  std::vector<uint8_t> out;
  for (int i = 0; i < n; ++i) {
    const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
    out.insert(out.end(), p, p + iov[i].iov_len);
  }
  return out;
}

// Everything queued, written out as fill_iov() describes it (the queue is empty after).
std::vector<uint8_t> write_all(StreamTxQueue& q) {
  std::vector<uint8_t> out;
  std::vector<iovec> iov(kMaxIov);
  for (int calls = 0; !q.empty() && calls < 10000; ++calls) {
    size_t bytes = 0;
    const int n = q.fill_iov(iov.data(), kMaxIov, bytes);
    for (int i = 0; i < n; ++i) {
      const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
      out.insert(out.end(), p, p + iov[i].iov_len);
    }
    q.consume(bytes);
  }
  return out;
}

class StreamTxQueueTest : public testing::Test {
 protected:
  // Memory standing in for a receive chunk; frames laid here carry no chunk reference.
  std::vector<uint8_t> mem_ = std::vector<uint8_t>(256 * 1024);
};

TEST_F(StreamTxQueueTest, EmptyQueueDescribesNothing) {
  StreamTxQueue q(1 << 20);
  iovec iov[4];
  EXPECT_EQ(q.fill_iov(iov, 4), 0);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.count(), 0u);
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_EQ(q.max_bytes(), size_t{1 << 20});
}

TEST_F(StreamTxQueueTest, DescribesFramesInStreamFramingWithShortFramesPaddedTo60) {
  const std::vector<uint32_t> sizes = {14, 59, 60, 61, 1514, 20, 65549};
  // Mix adjacent and separated frames.
  const std::vector<Frame> frames =
      lay_out(mem_.data(), mem_.size(), sizes, {0, 0, 3, 0, 0, 17, 0}, nullptr);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  EXPECT_EQ(q.count(), frames.size());
  EXPECT_FALSE(q.empty());
  const std::vector<uint8_t> got = gather(q);
  const std::vector<uint8_t> want = expected_stream(frames);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "the described bytes differ from the expected stream";
  // Spot-check the padded frame explicitly: prefix 60, 14 data bytes, 46 zero bytes.
  EXPECT_EQ(load_be32(got.data()), 60u);
  EXPECT_EQ(std::count(got.begin() + 4 + 14, got.begin() + 4 + 60, 0), 46);
  // fill_iov() does not consume: a second call describes the same bytes.
  EXPECT_TRUE(gather(q) == want);
}

TEST_F(StreamTxQueueTest, CoalescesAdjacentFramesIntoOneIovec) {
  const std::vector<Frame> frames =
      lay_out(mem_.data(), mem_.size(), {300, 400, 1514, 261}, {}, nullptr);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  iovec iov[8];
  ASSERT_EQ(q.fill_iov(iov, 8), 1);
  EXPECT_EQ(iov[0].iov_base, frames[0].wire);
  EXPECT_EQ(iov[0].iov_len, size_t{304 + 404 + 1518 + 265});
  // Still one iovec after part of the first frame was written.
  q.consume(10);
  ASSERT_EQ(q.fill_iov(iov, 8), 1);
  EXPECT_EQ(iov[0].iov_base, frames[0].wire + 10);
  EXPECT_EQ(iov[0].iov_len, size_t{304 + 404 + 1518 + 265 - 10});
}

TEST_F(StreamTxQueueTest, DescribesAtMostKMaxDescribeBytesAndGoesOnWhereItStopped) {
  // 2 MiB of back-to-back 1514-byte frames: four times what one call may describe.
  std::vector<uint8_t> mem(2 << 20);
  const std::vector<uint32_t> sizes((mem.size() - 4096) / (kPrefixSize + 1514), 1514);
  const std::vector<Frame> frames = lay_out(mem.data(), mem.size(), sizes, {}, nullptr);
  StreamTxQueue q(4 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  std::vector<uint8_t> got;
  iovec iov[kMaxIov];
  int calls = 0;
  while (!q.empty() && calls < 100) {
    ++calls;
    size_t bytes = 0;
    const int n = q.fill_iov(iov, kMaxIov, bytes);
    ASSERT_GT(n, 0);
    size_t sum = 0;
    for (int i = 0; i < n; ++i) {
      const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
      got.insert(got.end(), p, p + iov[i].iov_len);
      sum += iov[i].iov_len;
    }
    EXPECT_EQ(bytes, sum);
    // Whole frames, and no more than one frame beyond the limit.
    EXPECT_LT(bytes, StreamTxQueue::kMaxDescribe + kPrefixSize + 1514);
    EXPECT_EQ(bytes % (kPrefixSize + 1514), 0u);
    q.consume(bytes);
  }
  EXPECT_GE(calls, 4);
  EXPECT_TRUE(got == expected_stream(frames))
      << "the bytes of successive calls differ from the stream";
}

TEST_F(StreamTxQueueTest, KeepsNonAdjacentFramesInSeparateIovecs) {
  const std::vector<Frame> frames =
      lay_out(mem_.data(), mem_.size(), {300, 400, 500}, {0, 1, 8}, nullptr);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  iovec iov[8];
  ASSERT_EQ(q.fill_iov(iov, 8), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(iov[i].iov_base, frames[i].wire) << i;
    EXPECT_EQ(iov[i].iov_len, kPrefixSize + frames[i].size) << i;
  }
  // With room for only two, the first two frames are described exactly.
  ASSERT_EQ(q.fill_iov(iov, 2), 2);
  EXPECT_EQ(iov[1].iov_base, frames[1].wire);
  EXPECT_EQ(iov[1].iov_len, size_t{404});
}

TEST_F(StreamTxQueueTest, SameFramePushedTwiceIsNotTreatedAsAdjacentToItself) {
  const std::vector<Frame> frames = lay_out(mem_.data(), mem_.size(), {100}, {}, nullptr);
  StreamTxQueue q(1 << 20);
  ASSERT_TRUE(q.push(frames[0]));
  ASSERT_TRUE(q.push(frames[0]));
  const std::vector<Frame> twice = {frames[0], frames[0]};
  EXPECT_TRUE(gather(q) == expected_stream(twice));
}

TEST_F(StreamTxQueueTest, PartialWriteAtEveryOffsetLeavesExactlyTheRemainingBytes) {
  const std::vector<Frame> frames =
      lay_out(mem_.data(), mem_.size(), {14, 59, 60, 61, 100, 1514, 20, 300},
              {0, 0, 0, 5, 0, 0, 0, 0}, nullptr);
  const std::vector<uint8_t> want = expected_stream(frames);
  // Where each frame ends in the stream, and its Ethernet bytes.
  std::vector<size_t> ends;
  size_t at = 0;
  for (const Frame& f : frames) {
    at += kPrefixSize + ethernet_bytes(f);
    ends.push_back(at);
  }
  for (size_t n = 0; n <= want.size(); ++n) {
    StreamTxQueue q(1 << 20);
    for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
    const StreamTxQueue::Written w = q.consume(n);
    uint64_t want_frames = 0;
    uint64_t want_bytes = 0;
    for (size_t i = 0; i < frames.size() && ends[i] <= n; ++i) {
      ++want_frames;
      want_bytes += ethernet_bytes(frames[i]);
    }
    ASSERT_EQ(w.frames, want_frames) << "after writing " << n << " bytes";
    ASSERT_EQ(w.bytes, want_bytes) << "after writing " << n << " bytes";
    ASSERT_EQ(q.count(), frames.size() - want_frames) << "after writing " << n << " bytes";
    const std::vector<uint8_t> rest = gather(q);
    ASSERT_TRUE(rest == std::vector<uint8_t>(want.begin() + static_cast<ptrdiff_t>(n), want.end()))
        << "remaining bytes wrong after writing " << n << " of " << want.size();
    // Writing the rest completes every remaining frame.
    const StreamTxQueue::Written w2 = q.consume(rest.size());
    ASSERT_EQ(w.frames + w2.frames, frames.size()) << "after writing " << n << " bytes";
    ASSERT_TRUE(q.empty());
    ASSERT_EQ(q.queued_bytes(), 0u);
  }
}

TEST_F(StreamTxQueueTest, RandomPartialWritesReproduceTheStream) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> size_dist(kMinFrameSize, 300);
  std::uniform_int_distribution<uint32_t> gap_dist(0, 2);
  std::vector<uint32_t> sizes, gaps;
  for (int i = 0; i < 300; ++i) {
    sizes.push_back(size_dist(rng));
    gaps.push_back(gap_dist(rng) == 0 ? 9 : 0);
  }
  const std::vector<Frame> frames = lay_out(mem_.data(), mem_.size(), sizes, gaps, nullptr);
  const std::vector<uint8_t> want = expected_stream(frames);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  std::vector<uint8_t> sent;
  uint64_t frames_done = 0;
  uint64_t bytes_done = 0;
  std::uniform_int_distribution<size_t> write_dist(1, 700);
  for (int writes = 0; writes < 100000 && !q.empty(); ++writes) {
    std::vector<iovec> iov(16);
    const int n = q.fill_iov(iov.data(), 16);  // fewer iovecs than frames: a bounded writev
    ASSERT_GT(n, 0);
    size_t budget = write_dist(rng);
    size_t written = 0;
    for (int i = 0; i < n && budget > 0; ++i) {
      const size_t take = std::min(budget, iov[i].iov_len);
      const uint8_t* p = static_cast<const uint8_t*>(iov[i].iov_base);
      sent.insert(sent.end(), p, p + take);
      budget -= take;
      written += take;
    }
    const StreamTxQueue::Written w = q.consume(written);
    frames_done += w.frames;
    bytes_done += w.bytes;
  }
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(sent == want) << "the bytes written differ from the expected stream";
  EXPECT_EQ(frames_done, frames.size());
  uint64_t want_bytes = 0;
  for (const Frame& f : frames) want_bytes += ethernet_bytes(f);
  EXPECT_EQ(bytes_done, want_bytes);
}

TEST_F(StreamTxQueueTest, RefusesFramesBeyondMaxBytesAndAcceptsAgainAfterConsume) {
  ChunkPool pool(16 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  const std::vector<Frame> frames =
      lay_out(chunk->data, chunk->capacity, {1000, 1000, 1000, 1000}, {0, 1, 1, 1}, chunk);
  // 2500 holds two 1000-byte frames however the prefix is accounted, never three. (Gaps keep
  // each frame an entry of its own, with its own chunk reference: no runs here.)
  StreamTxQueue q(2500);
  EXPECT_TRUE(q.push(frames[0]));
  EXPECT_TRUE(q.push(frames[1]));
  EXPECT_EQ(chunk->refs, 3u);
  EXPECT_FALSE(q.push(frames[2]));
  EXPECT_EQ(chunk->refs, 3u) << "a refused frame must not keep a chunk reference";
  EXPECT_EQ(q.count(), 2u);
  EXPECT_LE(q.queued_bytes(), q.max_bytes());
  // The refused frame is not in the stream.
  EXPECT_TRUE(gather(q) == expected_stream({frames[0], frames[1]}));

  const StreamTxQueue::Written w = q.consume(1004);
  EXPECT_EQ(w.frames, 1u);
  EXPECT_EQ(w.bytes, 1000u);
  EXPECT_EQ(chunk->refs, 2u) << "a written frame must release its chunk reference";
  EXPECT_TRUE(q.push(frames[2]));
  EXPECT_FALSE(q.push(frames[3]));
  EXPECT_TRUE(gather(q) == expected_stream({frames[1], frames[2]}));
  q.consume(2008);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_EQ(chunk->refs, 1u);
  chunk_unref(chunk);
  EXPECT_EQ(pool.free_count(), 1u);
}

TEST_F(StreamTxQueueTest, ClearDropsEverythingAndReleasesChunkReferences) {
  ChunkPool pool(16 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  const std::vector<Frame> frames =
      lay_out(chunk->data, chunk->capacity, {300, 20, 1514, 260}, {0, 1, 1, 1}, chunk);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  EXPECT_EQ(chunk->refs, 5u);
  q.consume(50);  // the first frame is half written
  EXPECT_EQ(chunk->refs, 5u);
  EXPECT_EQ(q.clear(), 4u);
  EXPECT_EQ(chunk->refs, 1u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.count(), 0u);
  EXPECT_EQ(q.queued_bytes(), 0u);
  iovec iov[4];
  EXPECT_EQ(q.fill_iov(iov, 4), 0);
  EXPECT_EQ(q.clear(), 0u);

  // The queue is usable again, and starts at a frame boundary.
  ASSERT_TRUE(q.push(frames[1]));
  EXPECT_TRUE(gather(q) == expected_stream({frames[1]}));
  q.clear();
  EXPECT_EQ(chunk->refs, 1u);
  chunk_unref(chunk);
  EXPECT_EQ(pool.free_count(), 1u);
}

TEST_F(StreamTxQueueTest, GrowsWhileWrappedWithPartialHead) {
  std::vector<uint32_t> sizes;
  for (int i = 0; i < 600; ++i) sizes.push_back(60 + i % 11);
  const std::vector<Frame> frames =
      lay_out(mem_.data(), mem_.size(), sizes, std::vector<uint32_t>(600, 1), nullptr);
  StreamTxQueue q(1 << 20);
  std::vector<Frame> pushed;
  size_t next = 0;
  size_t written = 0;  // bytes of expected_stream(pushed) already consumed
  // Repeatedly push a growing batch and consume part of it, so growth happens at varied heads.
  for (int round = 1; round <= 25 && next < frames.size(); ++round) {
    for (int i = 0; i < round && next < frames.size(); ++i) {
      ASSERT_TRUE(q.push(frames[next]));
      pushed.push_back(frames[next++]);
    }
    const std::vector<uint8_t> want = expected_stream(pushed);
    const std::vector<uint8_t> got = gather(q);
    ASSERT_TRUE(got ==
                std::vector<uint8_t>(want.begin() + static_cast<ptrdiff_t>(written), want.end()))
        << "round " << round;
    const size_t n = got.size() / 3 + 1;
    q.consume(n);
    written += n;
  }
}

// --- unpin(): how frames copied out of a sender's chunks leave -----------------------------------

// A pool with one chunk held by the test (the receiving port's own reference).
struct TestChunk {
  explicit TestChunk(uint32_t size = 256 * 1024) : pool(size, 4), chunk(pool.acquire()) {}
  ~TestChunk() { chunk_unref(chunk); }
  ChunkPool pool;
  RxChunk* chunk;
};

std::vector<iovec> iovs(StreamTxQueue& q) {
  std::vector<iovec> iov(kMaxIov);
  iov.resize(static_cast<size_t>(q.fill_iov(iov.data(), kMaxIov)));
  return iov;
}

// `n` frames of `size` bytes in `c`'s chunk, each one byte apart from the one before: lone
// frames, none continuing another's run.
std::vector<Frame> lone_frames(TestChunk& c, size_t n, uint32_t size) {
  return lay_out(c.chunk->data, c.chunk->capacity, std::vector<uint32_t>(n, size),
                 std::vector<uint32_t>(n, 1), c.chunk);
}

TEST_F(StreamTxQueueTest, UnpinCoalescesCopiesOfFramesThatWereApartInTheirChunk) {
  TestChunk p;
  const std::vector<Frame> fp =
      lay_out(p.chunk->data, p.chunk->capacity, {260, 1514, 300, 261}, {0, 9, 3, 1}, p.chunk);
  StreamTxQueue q(1 << 20);
  for (const Frame& f : fp) ASSERT_TRUE(q.push(f));
  const std::vector<uint8_t> want = expected_stream(fp);
  EXPECT_EQ(iovs(q).size(), 4u);
  EXPECT_EQ(q.unpin(p.pool), 4u);
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
  const std::vector<iovec> iov = iovs(q);
  ASSERT_EQ(iov.size(), 1u);
  EXPECT_EQ(iov[0].iov_len, size_t{264 + 1518 + 304 + 265});
  EXPECT_TRUE(gather(q) == want);
}

TEST_F(StreamTxQueueTest, UnpinKeepsTheStreamExactAtEveryPartialWriteOffset) {
  // Padded short frames and frames of every size class, the pool's frames followed by one of
  // another pool (which stays zero copy). For every offset n: write n bytes, unpin, overwrite
  // the sender's chunk, and the rest of the stream must still come out exactly.
  const std::vector<uint32_t> sizes = {14, 59, 60, 61, 1514, 20, 300};
  TestChunk o;
  const std::vector<Frame> fo = lay_out(o.chunk->data, o.chunk->capacity, {40}, {}, o.chunk);
  std::vector<uint8_t> want;
  std::vector<Frame> all;
  {
    TestChunk probe;
    all = lay_out(probe.chunk->data, probe.chunk->capacity, sizes, {0, 0, 3, 0, 0, 1, 0},
                  probe.chunk);
    all.push_back(fo[0]);
    want = expected_stream(all);
  }  // only the sizes of `all` are used below
  std::vector<size_t> ends;
  size_t at = 0;
  for (const Frame& f : all) {
    at += kPrefixSize + ethernet_bytes(f);
    ends.push_back(at);
  }
  for (size_t n = 0; n <= want.size(); ++n) {
    TestChunk p;
    std::vector<Frame> frames =
        lay_out(p.chunk->data, p.chunk->capacity, sizes, {0, 0, 3, 0, 0, 1, 0}, p.chunk);
    frames.push_back(fo[0]);
    StreamTxQueue q(1 << 20);
    for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
    const StreamTxQueue::Written w1 = q.consume(n);
    size_t done = 0;
    while (done < ends.size() && ends[done] <= n) ++done;
    ASSERT_EQ(w1.frames, done) << "n=" << n;
    const size_t pool_left = sizes.size() - std::min(done, sizes.size());  // still queued
    ASSERT_EQ(q.unpin(p.pool), pool_left) << "n=" << n;
    ASSERT_EQ(p.chunk->refs, 1u) << "n=" << n;
    std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
    const std::vector<uint8_t> rest = gather(q);
    ASSERT_TRUE(rest == std::vector<uint8_t>(want.begin() + static_cast<ptrdiff_t>(n), want.end()))
        << "remaining bytes wrong after writing " << n << " of " << want.size() << " and unpin";
    // Write the rest in two steps so a copied head frame is also left partially written.
    const size_t half = rest.size() / 2;
    const StreamTxQueue::Written w2 = q.consume(half);
    ASSERT_TRUE(gather(q) ==
                std::vector<uint8_t>(want.begin() + static_cast<ptrdiff_t>(n + half), want.end()))
        << "n=" << n;
    const StreamTxQueue::Written w3 = q.consume(rest.size() - half);
    ASSERT_EQ(w1.frames + w2.frames + w3.frames, frames.size()) << "n=" << n;
    uint64_t bytes = 0;
    for (const Frame& f : frames) bytes += ethernet_bytes(f);
    ASSERT_EQ(w1.bytes + w2.bytes + w3.bytes, bytes) << "n=" << n;
    ASSERT_TRUE(q.empty());
    ASSERT_EQ(q.queued_bytes(), 0u);
  }
  EXPECT_EQ(o.chunk->refs, 1u);
}

TEST_F(StreamTxQueueTest, AdjacentFramesOfOneChunkShareAnEntryAndLeaveOneByOne) {
  ChunkPool pool(16 * 1024, 1);
  RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  // 0..2 adjacent (one run), 3 after a gap, 4 short (padded: never in a run), 5 adjacent to 4.
  // Pushed as a burst: adjacent frames of one input to one output are never copied.
  const std::vector<Frame> frames =
      lay_out(chunk->data, chunk->capacity, {64, 100, 1514, 64, 20, 64}, {0, 0, 0, 8, 0, 0}, chunk);
  StreamTxQueue q(1 << 20);
  ASSERT_EQ(q.push_burst(frames), frames.size());
  EXPECT_EQ(q.count(), frames.size());
  // Entries {0,1,2}, {3}, {4}, {5} (the short frame 4 joins nothing, and 5 cannot join it):
  // four references.
  EXPECT_EQ(chunk->refs, 1u + 4u);
  iovec iov[16];
  size_t bytes = 0;
  const int n = q.fill_iov(iov, 16, bytes);
  EXPECT_EQ(iov[0].iov_base, frames[0].wire);
  EXPECT_EQ(iov[0].iov_len, size_t{68 + 104 + 1518}) << "the run leaves in one iovec";
  EXPECT_EQ(n, 6);  // the run, frame 3, frame 4 (prefix, bytes, padding), frame 5
  const std::vector<uint8_t> stream = expected_stream(frames);
  EXPECT_TRUE(gather(q) == stream);
  // Written in pieces: frames are counted as each one completes, inside the run too.
  StreamTxQueue::Written w = q.consume(68 + 50);  // frame 0, half of frame 1
  EXPECT_EQ(w.frames, 1u);
  EXPECT_EQ(w.bytes, 64u);
  EXPECT_EQ(q.count(), frames.size() - 1);
  EXPECT_EQ(chunk->refs, 1u + 4u) << "the run keeps its reference while frames of it are queued";
  EXPECT_TRUE(gather(q) == std::vector<uint8_t>(stream.begin() + 68 + 50, stream.end()));
  w = q.consume(54 + 1518);  // the rest of frame 1 and all of frame 2: the run is done
  EXPECT_EQ(w.frames, 2u);
  EXPECT_EQ(w.bytes, 100u + 1514u);
  EXPECT_EQ(chunk->refs, 1u + 3u);
  EXPECT_EQ(q.clear(), 3u);
  EXPECT_EQ(chunk->refs, 1u);
  chunk_unref(chunk);
}

// --- copies of short lone frames (staging)
// ---------------------------------------------------------

TEST_F(StreamTxQueueTest, LoneShortFramesAreCopiedIntoOneRunThatPinsNoSenderChunk) {
  // Frames of 60..256 bytes from two senders' chunks, each apart from the one before, as an
  // output gets them when several ports send to several others in turn.
  TestChunk a;
  TestChunk b;
  const std::vector<Frame> fa =
      lay_out(a.chunk->data, a.chunk->capacity, {60, 64, 256}, {3, 9, 1}, a.chunk);
  const std::vector<Frame> fb =
      lay_out(b.chunk->data, b.chunk->capacity, {128, 61, 200}, {5, 2, 7}, b.chunk);
  const std::vector<Frame> order = {fa[0], fb[0], fa[1], fb[1], fa[2], fb[2]};
  const std::vector<uint8_t> want = expected_stream(order);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  StreamTxQueue q(1 << 20, &staging);
  for (const Frame& f : order) ASSERT_TRUE(q.push(f));
  EXPECT_EQ(q.count(), order.size());
  EXPECT_EQ(a.chunk->refs, 1u) << "a copied frame does not pin its sender's chunk";
  EXPECT_EQ(b.chunk->refs, 1u);
  EXPECT_EQ(q.staging_chunks(), 1u);
  // The senders reuse their chunks: what leaves is the copies.
  std::memset(a.chunk->data, 0xcc, a.chunk->capacity);
  std::memset(b.chunk->data, 0xdd, b.chunk->capacity);
  const std::vector<iovec> iov = iovs(q);
  ASSERT_EQ(iov.size(), 1u) << "consecutive copies are one run";
  EXPECT_EQ(iov[0].iov_len, want.size());
  EXPECT_TRUE(gather(q) == want);
  // Written in pieces, each frame is counted as it completes.
  StreamTxQueue::Written w = q.consume(64 + 132 + 10);
  EXPECT_EQ(w.frames, 2u);
  EXPECT_EQ(w.bytes, 60u + 128u);
  EXPECT_TRUE(gather(q) == std::vector<uint8_t>(want.begin() + 64 + 132 + 10, want.end()));
  w = q.consume(want.size() - (64 + 132 + 10));
  EXPECT_EQ(w.frames, 4u);
  EXPECT_EQ(w.bytes, 64u + 61u + 256u + 200u);
  EXPECT_TRUE(q.empty());
}

TEST_F(StreamTxQueueTest, FramesOutsideTheCopyRangeAndFramesThatContinueARunAreNotCopied) {
  TestChunk p;
  // 0: short (padded), 1: one byte over the copy range, 2 and 3: adjacent, 60 bytes each.
  const std::vector<Frame> f =
      lay_out(p.chunk->data, p.chunk->capacity, {59, StreamTxQueue::kCopyMaxSize + 1, 60, 60},
              {1, 1, 1, 0}, p.chunk);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  StreamTxQueue q(1 << 20, &staging);
  ASSERT_TRUE(q.push(f[0]));
  ASSERT_TRUE(q.push(f[1]));
  EXPECT_EQ(p.chunk->refs, 1u + 2u);
  EXPECT_EQ(q.staging_chunks(), 0u);
  // 2 and 3 reach the queue as a burst (one input's adjacent frames to one output): a run in
  // their chunk. A frame pushed on its own after them that continues that run joins it too.
  ASSERT_EQ(q.push_burst(std::span<const Frame>(f).subspan(2, 1)), 1u);
  ASSERT_TRUE(q.push(f[3]));
  EXPECT_EQ(p.chunk->refs, 1u + 3u);
  EXPECT_EQ(q.staging_chunks(), 0u);
  const std::vector<iovec> iov = iovs(q);
  ASSERT_EQ(iov.size(), 5u);  // prefix 60, frame 0, its padding; frame 1; the run 2-3
  EXPECT_EQ(iov[3].iov_base, f[1].wire);
  EXPECT_EQ(iov[4].iov_base, f[2].wire);
  EXPECT_EQ(iov[4].iov_len, size_t{64 + 64});
  EXPECT_TRUE(gather(q) == expected_stream(f));
  q.clear();
  EXPECT_EQ(p.chunk->refs, 1u);
}

TEST_F(StreamTxQueueTest, ACopyAfterFramesQueuedFromTheirChunkStartsAnEntryOfItsOwn) {
  // Copies continue the run of copies before them, but not once something else was queued
  // after it: a burst (a run in its chunk), or a frame too large to copy.
  TestChunk p;
  // 0, 3 and 5: short lone frames (copied); 1-2: a run, pushed as a burst; 4: too large.
  const std::vector<Frame> f = lay_out(p.chunk->data, p.chunk->capacity,
                                       {64, 100, 100, 80, 1000, 70}, {0, 8, 0, 8, 8, 8}, p.chunk);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  StreamTxQueue q(1 << 20, &staging);
  ASSERT_TRUE(q.push(f[0]));
  ASSERT_EQ(q.push_burst(std::span<const Frame>(f).subspan(1, 2)), 2u);
  ASSERT_TRUE(q.push(f[3]));
  ASSERT_TRUE(q.push(f[4]));
  ASSERT_TRUE(q.push(f[5]));
  EXPECT_EQ(p.chunk->refs, 1u + 2u) << "the run 1-2 and frame 4 pin the chunk";
  EXPECT_TRUE(gather(q) == expected_stream(f));
  // Copy, run, copy, large frame, copy: five iovecs (the copies are adjacent in the staging
  // chunk but separate entries).
  EXPECT_EQ(iovs(q).size(), 5u);
  size_t left = expected_stream(f).size();
  const StreamTxQueue::Written w = q.consume(left);
  EXPECT_EQ(w.frames, f.size());
  EXPECT_TRUE(q.empty());
}

TEST_F(StreamTxQueueTest, StagingHoldsAQueueOfCopiesAndGivesItsChunksBackWhenItDrains) {
  // 64 KiB of 64-byte frames, each apart from the one before: every one is copied (three
  // staging chunks), until the queue's byte bound refuses one.
  TestChunk p(512 * 1024);
  const std::vector<Frame> f = lone_frames(p, 2000, 64);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  constexpr size_t kMaxBytes = 64 * 1024;
  StreamTxQueue q(kMaxBytes, &staging);
  size_t pushed = 0;
  while (pushed < f.size() && q.push(f[pushed])) ++pushed;
  EXPECT_EQ(pushed, kMaxBytes / 64);
  EXPECT_EQ(p.chunk->refs, 1u) << "every frame was copied";
  EXPECT_EQ(q.staging_chunks(), 3u);
  EXPECT_EQ(staging.available_count(), 8u - 3u);
  const std::vector<uint8_t> want =
      expected_stream(std::vector<Frame>(f.begin(), f.begin() + static_cast<ptrdiff_t>(pushed)));
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
  EXPECT_TRUE(gather(q) == want);
  EXPECT_EQ(iovs(q).size(), 3u) << "a run per staging chunk";
  // Drained in writes of a few frames: each chunk goes back to the pool once its last copy
  // is written, the one being filled when the queue is empty.
  size_t left = want.size();
  while (left > 0) {
    const size_t n = std::min<size_t>(left, 1000);
    q.consume(n);
    left -= n;
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.staging_chunks(), 0u);
  EXPECT_EQ(staging.free_count(), staging.allocated_count()) << "an empty queue holds none";
  // And copies start again in a chunk from the pool, at its front.
  const std::vector<Frame> again =
      lay_out(p.chunk->data, p.chunk->capacity, {100, 100}, {1, 1}, p.chunk);
  ASSERT_TRUE(q.push(again[0]));
  ASSERT_TRUE(q.push(again[1]));
  EXPECT_TRUE(gather(q) == expected_stream(again));
  EXPECT_EQ(iovs(q).size(), 1u);
  EXPECT_EQ(p.chunk->refs, 1u);
}

TEST_F(StreamTxQueueTest, AQueueThatNeverEmptiesReusesTheStagingChunksItHolds) {
  // Lone 64-byte frames, written as they come but for the last one's final byte: the queue is
  // never empty, yet every frame is copied, into the chunks it already holds.
  TestChunk p(64 * 1024);
  const std::vector<Frame> f = lone_frames(p, 800, 64);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  StreamTxQueue q(1 << 20, &staging);
  std::vector<uint8_t> written;
  std::vector<Frame> all;
  for (int round = 0; round < 10; ++round) {
    for (const Frame& frame : f) {
      ASSERT_TRUE(q.push(frame));
      all.push_back(frame);
    }
    ASSERT_EQ(p.chunk->refs, 1u) << "round " << round;
    // Everything queued is described at once (a few runs); all of it but one byte is written.
    std::vector<iovec> iov(kMaxIov);
    size_t bytes = 0;
    const int n = q.fill_iov(iov.data(), kMaxIov, bytes);
    const size_t before = written.size();
    for (int i = 0; i < n; ++i) {
      const uint8_t* b = static_cast<const uint8_t*>(iov[i].iov_base);
      written.insert(written.end(), b, b + iov[i].iov_len);
    }
    ASSERT_GT(bytes, 1u);
    written.resize(before + bytes - 1);
    q.consume(bytes - 1);
    ASSERT_FALSE(q.empty());
    // 1.7 chunks of copies a round: the one still holding the unwritten byte, and two that
    // take turns; never more, round after round.
    EXPECT_LE(q.staging_chunks(), 3u) << "round " << round;
  }
  const std::vector<uint8_t> want = expected_stream(all);
  ASSERT_EQ(written.size(), want.size() - 1);
  EXPECT_TRUE(std::equal(written.begin(), written.end(), want.begin()));
}

TEST_F(StreamTxQueueTest, BeyondItsShareOfStagingOrAnEmptyPoolAFrameIsQueuedFromItsChunk) {
  // A queue that never empties takes at most kMaxStagingChunks; then, and when the shared
  // pool has none left, frames are queued from their chunks (zero copy, as without staging).
  TestChunk p(2 * 1024 * 1024);
  const size_t kFrames = 12000;  // 6000 a queue: more than kMaxStagingChunks hold
  const std::vector<Frame> f = lone_frames(p, kFrames, 100);
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, StreamTxQueue::kMaxStagingChunks + 1);
  StreamTxQueue a(1 << 20, &staging);
  for (size_t i = 0; i < kFrames / 2; ++i) ASSERT_TRUE(a.push(f[i]));
  EXPECT_EQ(a.staging_chunks(), StreamTxQueue::kMaxStagingChunks);
  // 104 bytes a copy: 315 in a 32 KiB chunk.
  static_assert(StreamTxQueue::kMaxStagingChunks * (StreamTxQueue::kStagingChunkSize / 104) < 6000);
  const size_t copied = StreamTxQueue::kMaxStagingChunks * (StreamTxQueue::kStagingChunkSize / 104);
  EXPECT_EQ(p.chunk->refs, 1u + (kFrames / 2 - copied)) << "one reference per frame not copied";
  // Another queue gets the one chunk left, then none.
  StreamTxQueue b(1 << 20, &staging);
  for (size_t i = kFrames / 2; i < kFrames; ++i) ASSERT_TRUE(b.push(f[i]));
  EXPECT_EQ(b.staging_chunks(), 1u);
  EXPECT_EQ(staging.available_count(), 0u);
  const size_t refs_b = kFrames / 2 - StreamTxQueue::kStagingChunkSize / 104;
  EXPECT_EQ(p.chunk->refs, 1u + (kFrames / 2 - copied) + refs_b);
  const std::vector<uint8_t> want_a =
      expected_stream(std::vector<Frame>(f.begin(), f.begin() + kFrames / 2));
  const std::vector<uint8_t> want_b =
      expected_stream(std::vector<Frame>(f.begin() + kFrames / 2, f.end()));
  EXPECT_TRUE(write_all(a) == want_a);
  EXPECT_TRUE(write_all(b) == want_b);
  EXPECT_EQ(p.chunk->refs, 1u);
  EXPECT_EQ(staging.free_count(), staging.allocated_count());
}

TEST_F(StreamTxQueueTest, RandomPushUnpinConsumeAndClearMatchADequeModel) {
  constexpr size_t kPools = 3;
  constexpr size_t kFramesPerPool = 48;
  std::mt19937 rng(99);
  std::vector<std::unique_ptr<TestChunk>> chunks;
  std::vector<Frame> frames;
  std::vector<size_t> frame_pool;
  for (size_t k = 0; k < kPools; ++k) {
    chunks.push_back(std::make_unique<TestChunk>());
    std::vector<uint32_t> sizes, gaps;
    std::uniform_int_distribution<uint32_t> size_dist(kMinFrameSize, 1514);
    // Short (padded), within the copy range (push() stages them) and any size.
    std::uniform_int_distribution<uint32_t> small_dist(kPadFrameSize, StreamTxQueue::kCopyMaxSize);
    for (size_t i = 0; i < kFramesPerPool; ++i) {
      sizes.push_back(i % 5 == 0   ? kMinFrameSize + static_cast<uint32_t>(i % 46)
                      : i % 5 == 2 ? small_dist(rng)
                                   : size_dist(rng));
      gaps.push_back(i % 7 == 0 ? 5 : 0);
    }
    RxChunk* c = chunks.back()->chunk;
    for (const Frame& f : lay_out(c->data, c->capacity, sizes, gaps, c)) {
      frames.push_back(f);
      frame_pool.push_back(k);
    }
  }
  // Frames are pushed repeatedly, so chunks are never overwritten here: the deterministic tests
  // above check that copies do not read their chunk. This one checks order, counts and refs.
  ChunkPool staging(StreamTxQueue::kStagingChunkSize, 8);
  StreamTxQueue q(24 * 1024, &staging);  // entry cap 512
  std::deque<test::QueuedModel> model;
  // The ring entry of each model frame: frames adjacent in one chunk (both at least 60 bytes,
  // the last not copied, the run within kMaxWireSize) share one, and one chunk reference.
  std::deque<size_t> entry_of;
  size_t next_entry = 0;
  uint64_t runs_seen = 0;   // pushes that joined the last entry
  size_t run_wire = 0;      // wire bytes of the last entry
  size_t head_written = 0;  // bytes of the model's first frame already written
  auto wire_of = [&](size_t frame) { return kPrefixSize + ethernet_bytes(frames[frame]); };
  auto expected = [&] {
    std::vector<Frame> fs;
    for (const test::QueuedModel& m : model) fs.push_back(frames[m.frame]);
    std::vector<uint8_t> s = expected_stream(fs);
    s.erase(s.begin(), s.begin() + static_cast<ptrdiff_t>(head_written));
    return s;
  };
  uint64_t copied_total = 0;
  uint64_t staged_total = 0;
  uint64_t refused = 0;
  std::uniform_int_distribution<int> op(0, 99);
  for (int step = 0; step < 6000; ++step) {
    // Phases of filling (mostly pushes) and draining (mostly writes), so the queue both runs
    // full and empties.
    const bool filling = (step / 300) % 2 == 0;
    int o = op(rng);
    if (!filling && o < 55) o = 70 + o % 27;
    if (filling && o >= 70 && o < 97 && o % 3 != 0) o = o % 55;
    if (o < 55) {
      // Mostly the frame after the last one pushed, so runs form (and are cut, copied and
      // written in parts); sometimes any frame.
      size_t i = std::uniform_int_distribution<size_t>(0, frames.size() - 1)(rng);
      if (!model.empty() && model.back().frame + 1 < frames.size() && o % 4 != 0) {
        i = model.back().frame + 1;
      }
      size_t queued = 0;
      for (const test::QueuedModel& m : model) queued += frames[m.frame].size;
      const Frame& f = frames[i];
      // A staged frame (copied by push(), see the header) is modelled as one of pool kPools:
      // it pins none of the test's chunks, and a frame from a chunk never joins its entry.
      const bool joins =
          !model.empty() && !model.back().copied && model.back().pool != kPools &&
          frames[model.back().frame].chunk == f.chunk &&
          frames[model.back().frame].wire + kPrefixSize + frames[model.back().frame].size ==
              f.wire &&
          frames[model.back().frame].size >= kPadFrameSize && f.size >= kPadFrameSize &&
          run_wire + kPrefixSize + f.size <= kMaxWireSize;
      const bool staged =
          !joins && f.size >= kPadFrameSize && f.size <= StreamTxQueue::kCopyMaxSize;
      if (q.push(f)) {
        model.push_back({i, staged ? kPools : frame_pool[i], false});
        staged_total += staged ? 1 : 0;
        if (joins) {
          ++runs_seen;
          run_wire += kPrefixSize + f.size;
        } else {
          ++next_entry;
          run_wire = kPrefixSize + f.size;
        }
        entry_of.push_back(next_entry);
      } else {
        ++refused;
        ASSERT_TRUE(queued + frames[i].size > q.max_bytes() || model.size() == 512)
            << "step " << step;
      }
    } else if (o < 70) {
      const size_t k = std::uniform_int_distribution<size_t>(0, kPools - 1)(rng);
      const size_t want = test::unpin_model(model, k);
      ASSERT_EQ(q.unpin(chunks[k]->pool), want) << "step " << step;
      copied_total += want;
    } else if (o < 97) {
      const std::vector<uint8_t> rest = expected();
      const size_t n =
          std::uniform_int_distribution<size_t>(0, std::min<size_t>(rest.size(), 6000))(rng);
      const StreamTxQueue::Written w = q.consume(n);
      uint64_t want_frames = 0;
      uint64_t want_bytes = 0;
      size_t left = n + head_written;
      while (!model.empty() && left >= wire_of(model.front().frame)) {
        left -= wire_of(model.front().frame);
        ++want_frames;
        want_bytes += ethernet_bytes(frames[model.front().frame]);
        model.pop_front();
        entry_of.pop_front();
      }
      head_written = model.empty() ? 0 : left;
      ASSERT_EQ(w.frames, want_frames) << "step " << step;
      ASSERT_EQ(w.bytes, want_bytes) << "step " << step;
    } else {
      ASSERT_EQ(q.clear(), model.size()) << "step " << step;
      model.clear();
      entry_of.clear();
      head_written = 0;
    }
    ASSERT_EQ(q.count(), model.size()) << "step " << step;
    for (size_t k = 0; k < kPools; ++k) {
      uint32_t pins = 0;  // one per entry
      for (size_t j = 0; j < model.size(); ++j) {
        const test::QueuedModel& m = model[j];
        const bool first_of_entry = j == 0 || entry_of[j] != entry_of[j - 1];
        pins += (m.pool == k && !m.copied && first_of_entry) ? 1 : 0;
      }
      ASSERT_EQ(chunks[k]->chunk->refs, 1 + pins) << "pool " << k << ", step " << step;
    }
    ASSERT_TRUE(gather(q) == expected()) << "step " << step;
  }
  EXPECT_GT(runs_seen, 100u) << "the model never made runs";
  EXPECT_GT(staged_total, 300u) << "the model never staged frames";
  EXPECT_GT(copied_total, 1000u);
  EXPECT_GT(refused, 0u) << "the queue never filled";
  q.clear();
  for (const auto& c : chunks) EXPECT_EQ(c->chunk->refs, 1u);
  EXPECT_EQ(q.staging_chunks(), 0u);
  EXPECT_EQ(staging.free_count(), staging.allocated_count());
}

}  // namespace
}  // namespace qswitch::sw
