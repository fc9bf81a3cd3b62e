// tests/switch/stream_rx_buffer_test.cc: StreamRxBuffer framing, chunking and backpressure.
//
// Theory of operation
// - A reference stream is built from frames of the interesting sizes (minimum, around the 60-byte
//   pad size, a full MTU frame, a jumbo frame and the largest legal frame), each frame's bytes a
//   pattern derived from its index so a frame that is cut, shifted or swapped is detected.
// - feed() plays the role of a port's read loop: it reads into write_space(), never more than
//   write_space() offers and never across a chosen set of "read boundaries", so a test chooses
//   exactly where reads end (every split point, one byte at a time, random sizes with a fixed
//   seed). Every frame handed out by commit()/drain() is checked at once, before the next
//   write_space() invalidates it: size, big-endian prefix at `wire`, contents, order, that the
//   whole frame lies inside its chunk (contiguous), and that frames of one batch are adjacent.
// - Chunk lifetime tests hold chunk references like an output queue would, and are meant to run
//   under AddressSanitizer too (orphaned chunks must be readable, then freed by the last unref).
#include "switch/stream_rx_buffer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

namespace qswitch::sw {
namespace {

uint8_t pattern_byte(size_t frame_index, size_t offset) {
  return static_cast<uint8_t>(frame_index * 37 + offset * 7 + (offset >> 8) + 1);
}

struct Stream {
  std::vector<uint8_t> bytes;
  std::vector<std::vector<uint8_t>> frames;

  void add(uint32_t size) {
    std::vector<uint8_t> f(size);
    for (uint32_t i = 0; i < size; ++i) f[i] = pattern_byte(frames.size(), i);
    uint8_t prefix[4];
    store_be32(prefix, size);
    bytes.insert(bytes.end(), prefix, prefix + 4);
    bytes.insert(bytes.end(), f.begin(), f.end());
    frames.push_back(std::move(f));
  }
  // A length prefix with no valid frame behind it, plus some garbage.
  void add_bad_prefix(uint32_t length) {
    uint8_t prefix[4];
    store_be32(prefix, length);
    bytes.insert(bytes.end(), prefix, prefix + 4);
    for (int i = 0; i < 32; ++i) bytes.push_back(0x5a);
  }
};

Stream make_stream(std::initializer_list<uint32_t> sizes) {
  Stream s;
  for (uint32_t size : sizes) s.add(size);
  return s;
}

const std::initializer_list<uint32_t> kSizes = {14, 15, 59, 60, 61, 1514, 9014, 65549};

// Checks frames as they come out against the expected stream, in order.
class FrameChecker {
 public:
  explicit FrameChecker(const Stream& expected) : expected_(expected) {}

  testing::AssertionResult check_batch(const Frame* frames, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      const Frame& f = frames[i];
      if (next_ >= expected_.frames.size()) {
        return testing::AssertionFailure() << "unexpected extra frame of size " << f.size;
      }
      const std::vector<uint8_t>& want = expected_.frames[next_];
      if (f.size != want.size()) {
        return testing::AssertionFailure()
               << "frame " << next_ << ": size " << f.size << ", expected " << want.size();
      }
      if (f.wire == nullptr || f.chunk == nullptr || f.chunk->data == nullptr) {
        return testing::AssertionFailure() << "frame " << next_ << ": null wire or chunk";
      }
      const uint8_t* begin = f.chunk->data;
      const uint8_t* end = f.chunk->data + f.chunk->capacity;
      if (f.wire < begin || f.wire + kPrefixSize + f.size > end) {
        return testing::AssertionFailure()
               << "frame " << next_ << " is not inside its chunk (offset " << (f.wire - begin)
               << ", wire size " << kPrefixSize + f.size << ", chunk capacity " << f.chunk->capacity
               << ")";
      }
      if (load_be32(f.wire) != f.size) {
        return testing::AssertionFailure() << "frame " << next_ << ": prefix says "
                                           << load_be32(f.wire) << ", size is " << f.size;
      }
      if (std::memcmp(f.data(), want.data(), want.size()) != 0) {
        size_t at = 0;
        while (f.data()[at] == want[at]) ++at;
        return testing::AssertionFailure()
               << "frame " << next_ << " (size " << f.size << "): contents differ at byte " << at;
      }
      if (i > 0) {
        const Frame& prev = frames[i - 1];
        if (prev.chunk != f.chunk || prev.wire + kPrefixSize + prev.size != f.wire) {
          return testing::AssertionFailure()
                 << "frame " << next_ << " is not adjacent to the previous frame of its batch";
        }
      }
      ++next_;
    }
    return testing::AssertionSuccess();
  }

  size_t next() const { return next_; }

 private:
  const Stream& expected_;
  size_t next_ = 0;
};

constexpr size_t kOutCapacity = 16;

// Feeds bytes[from, to) into `rx` as a port's read loop would. `boundary(pos)` gives the next
// position > pos where a read must end. Every frame handed out goes through `checker`.
testing::AssertionResult feed(StreamRxBuffer& rx, const std::vector<uint8_t>& bytes, size_t from,
                              size_t to, const std::function<size_t(size_t)>& boundary,
                              FrameChecker& checker) {
  size_t pos = from;
  size_t reads = 0;
  while (pos < to) {
    if (++reads > 4 * bytes.size() + 16) {
      return testing::AssertionFailure() << "no progress at byte " << pos;
    }
    std::span<uint8_t> space = rx.write_space();
    if (space.empty()) {
      return testing::AssertionFailure()
             << "write_space() empty at byte " << pos << " with no chunk references held";
    }
    const size_t n = std::min({space.size(), boundary(pos) - pos, to - pos});
    std::memcpy(space.data(), bytes.data() + pos, n);
    pos += n;
    std::array<Frame, kOutCapacity> out;
    size_t count = 0;
    StreamRxBuffer::Status st = rx.commit(n, out, count);
    if (st != StreamRxBuffer::Status::kOk) {
      return testing::AssertionFailure() << "commit returned kBadLength (bad_length "
                                         << rx.bad_length() << ") after byte " << pos;
    }
    if (count > out.size()) return testing::AssertionFailure() << "count beyond out span";
    testing::AssertionResult r = checker.check_batch(out.data(), count);
    if (!r) return r << " (read ending at byte " << pos << ")";
    for (int drains = 0; count == out.size(); ++drains) {
      if (drains > 100000) return testing::AssertionFailure() << "drain() never runs dry";
      count = 0;
      st = rx.drain(out, count);
      if (st != StreamRxBuffer::Status::kOk) {
        return testing::AssertionFailure() << "drain returned kBadLength after byte " << pos;
      }
      r = checker.check_batch(out.data(), count);
      if (!r) return r << " (drained after read ending at byte " << pos << ")";
    }
  }
  return testing::AssertionSuccess();
}

testing::AssertionResult feed_all(StreamRxBuffer& rx, const Stream& s,
                                  const std::function<size_t(size_t)>& boundary) {
  FrameChecker checker(s);
  testing::AssertionResult r = feed(rx, s.bytes, 0, s.bytes.size(), boundary, checker);
  if (!r) return r;
  if (checker.next() != s.frames.size()) {
    return testing::AssertionFailure()
           << "only " << checker.next() << " of " << s.frames.size() << " frames came out";
  }
  if (rx.pending_size() != 0) {
    return testing::AssertionFailure() << "pending_size() " << rx.pending_size() << " at the end";
  }
  return testing::AssertionSuccess();
}

size_t no_boundary(size_t) { return SIZE_MAX; }

TEST(StreamRxBufferTest, DeliversEveryFrameIntactForEverySplitPoint) {
  const Stream s = make_stream(kSizes);
  for (uint32_t main_size : {StreamRxBuffer::kDefaultMainSize, uint32_t{4096}}) {
    // One buffer for every split (a fresh one each time is slow under ASan): the stream ends on
    // a frame boundary, and chunk changes land at a different offset of the stream each time.
    StreamRxBuffer rx(main_size);
    for (size_t split = 1; split < s.bytes.size(); ++split) {
      auto boundary = [split](size_t pos) { return pos < split ? split : SIZE_MAX; };
      ASSERT_TRUE(feed_all(rx, s, boundary)) << "main_size " << main_size << ", split at " << split;
    }
  }
}

TEST(StreamRxBufferTest, DeliversEveryFrameIntactOneByteAtATime) {
  const Stream s = make_stream(kSizes);
  for (uint32_t main_size : {StreamRxBuffer::kDefaultMainSize, uint32_t{4096}, uint32_t{100}}) {
    StreamRxBuffer rx(main_size);
    ASSERT_TRUE(feed_all(rx, s, [](size_t pos) { return pos + 1; })) << "main_size " << main_size;
  }
}

TEST(StreamRxBufferTest, DeliversEveryFrameIntactWithRandomReadSizes) {
  Stream s;
  std::mt19937 rng(20240601);
  // The reference sizes several times over, then a run of random sizes.
  for (int round = 0; round < 3; ++round) {
    for (uint32_t size : kSizes) s.add(size);
  }
  std::uniform_int_distribution<uint32_t> frame_size(kMinFrameSize, 2000);
  for (int i = 0; i < 200; ++i) s.add(frame_size(rng));
  for (uint32_t main_size : {StreamRxBuffer::kDefaultMainSize, uint32_t{4096}, uint32_t{1000}}) {
    for (uint32_t max_read : {7u, 100u, 1500u, 70000u}) {
      std::uniform_int_distribution<size_t> read_size(1, max_read);
      std::vector<size_t> ends;
      for (size_t pos = 0; pos < s.bytes.size();) {
        pos += read_size(rng);
        ends.push_back(pos);
      }
      auto boundary = [&ends](size_t pos) {
        return *std::upper_bound(ends.begin(), ends.end(), pos);
      };
      StreamRxBuffer rx(main_size);
      ASSERT_TRUE(feed_all(rx, s, boundary))
          << "main_size " << main_size << ", reads of 1.." << max_read;
    }
  }
}

TEST(StreamRxBufferTest, HandsOutManyFramesFromOneRead) {
  Stream s;
  for (uint32_t i = 0; i < 1000; ++i) s.add(kMinFrameSize + i % 90);
  ASSERT_LT(s.bytes.size(), StreamRxBuffer::kDefaultMainSize);
  StreamRxBuffer rx;
  std::span<uint8_t> space = rx.write_space();
  ASSERT_GE(space.size(), s.bytes.size());
  std::memcpy(space.data(), s.bytes.data(), s.bytes.size());
  std::vector<Frame> out(1000);
  size_t count = 0;
  ASSERT_EQ(rx.commit(s.bytes.size(), out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 1000u);
  FrameChecker checker(s);
  EXPECT_TRUE(checker.check_batch(out.data(), count));
  EXPECT_EQ(rx.pending_size(), 0u);
}

TEST(StreamRxBufferTest, AppendsAfterFramesAlreadyInOutSpan) {
  const Stream s = make_stream({20, 30});
  StreamRxBuffer rx;
  std::span<uint8_t> space = rx.write_space();
  ASSERT_GE(space.size(), s.bytes.size());
  std::memcpy(space.data(), s.bytes.data(), s.bytes.size());
  std::array<Frame, 4> out;
  static const uint8_t kOther[4 + 14] = {0, 0, 0, 14};
  out[0] = Frame{kOther, 14, 0, nullptr, {}};
  size_t count = 1;
  ASSERT_EQ(rx.commit(s.bytes.size(), out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 3u);
  EXPECT_EQ(out[0].wire, kOther);
  FrameChecker checker(s);
  EXPECT_TRUE(checker.check_batch(out.data() + 1, 2));
}

TEST(StreamRxBufferTest, WaitsForHeaderSplitAcrossReads) {
  const Stream s = make_stream({100, 60});
  StreamRxBuffer rx;
  FrameChecker checker(s);
  std::array<Frame, 4> out;
  // Two bytes of the first header, then two more, then the rest of the first frame and two bytes
  // of the second header, then everything else.
  const size_t cuts[] = {2, 4, 104 + 2, s.bytes.size()};
  const size_t want_count[] = {0, 0, 1, 1};
  const size_t want_pending[] = {2, 4, 2, 0};
  size_t pos = 0;
  for (size_t i = 0; i < 4; ++i) {
    std::span<uint8_t> space = rx.write_space();
    const size_t n = cuts[i] - pos;
    ASSERT_GE(space.size(), n);
    std::memcpy(space.data(), s.bytes.data() + pos, n);
    pos += n;
    size_t count = 0;
    ASSERT_EQ(rx.commit(n, out, count), StreamRxBuffer::Status::kOk) << "read " << i;
    EXPECT_EQ(count, want_count[i]) << "read " << i;
    EXPECT_EQ(rx.pending_size(), want_pending[i]) << "read " << i;
    EXPECT_TRUE(checker.check_batch(out.data(), count)) << "read " << i;
  }
  EXPECT_EQ(checker.next(), 2u);
}

TEST(StreamRxBufferTest, RejectsBadLengthAfterHandingOutGoodFrames) {
  for (uint32_t bad : {0u, 13u, kMaxFrameSize + 1, 0xffffffffu}) {
    Stream s = make_stream({60, 100, 14});
    const size_t good_end = s.bytes.size();
    s.add_bad_prefix(bad);
    SCOPED_TRACE(testing::Message() << "bad length " << bad);

    {  // Everything in one read: the good frames, then kBadLength.
      StreamRxBuffer rx;
      std::span<uint8_t> space = rx.write_space();
      ASSERT_GE(space.size(), s.bytes.size());
      std::memcpy(space.data(), s.bytes.data(), s.bytes.size());
      std::array<Frame, 8> out;
      size_t count = 0;
      EXPECT_EQ(rx.commit(s.bytes.size(), out, count), StreamRxBuffer::Status::kBadLength);
      EXPECT_EQ(rx.bad_length(), bad);
      ASSERT_EQ(count, 3u);
      FrameChecker checker(s);
      EXPECT_TRUE(checker.check_batch(out.data(), count));
    }
    {  // One byte at a time: kBadLength only once the good frames are out, and by the end of
       // the bad prefix at the latest.
      StreamRxBuffer rx;
      FrameChecker checker(s);
      ASSERT_TRUE(feed(
          rx, s.bytes, 0, good_end, [](size_t p) { return p + 1; }, checker));
      ASSERT_EQ(checker.next(), 3u);
      bool rejected = false;
      for (size_t pos = good_end; pos < good_end + kPrefixSize && !rejected; ++pos) {
        std::span<uint8_t> space = rx.write_space();
        ASSERT_FALSE(space.empty());
        space[0] = s.bytes[pos];
        std::array<Frame, 8> out;
        size_t count = 0;
        rejected = rx.commit(1, out, count) == StreamRxBuffer::Status::kBadLength;
        EXPECT_EQ(count, 0u);
      }
      EXPECT_TRUE(rejected) << "the whole bad prefix was committed without kBadLength";
      EXPECT_EQ(rx.bad_length(), bad);
    }
  }
}

TEST(StreamRxBufferTest, SmallOutSpanLeavesFramesForDrain) {
  Stream s = make_stream({14, 1514, 60, 61, 200});
  StreamRxBuffer rx;
  std::span<uint8_t> space = rx.write_space();
  ASSERT_GE(space.size(), s.bytes.size());
  std::memcpy(space.data(), s.bytes.data(), s.bytes.size());
  std::array<Frame, 1> out;
  size_t count = 0;
  ASSERT_EQ(rx.commit(s.bytes.size(), out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 1u);
  FrameChecker checker(s);
  EXPECT_TRUE(checker.check_batch(out.data(), count));
  for (int i = 1; i < 5; ++i) {
    count = 0;
    ASSERT_EQ(rx.drain(out, count), StreamRxBuffer::Status::kOk);
    ASSERT_EQ(count, 1u) << "drain " << i;
    EXPECT_TRUE(checker.check_batch(out.data(), count)) << "drain " << i;
  }
  count = 0;
  EXPECT_EQ(rx.drain(out, count), StreamRxBuffer::Status::kOk);
  EXPECT_EQ(count, 0u) << "drain() handed out a frame that was never written";
  EXPECT_EQ(rx.pending_size(), 0u);

  // A full out span takes nothing more.
  Stream more = make_stream({30});
  space = rx.write_space();
  ASSERT_GE(space.size(), more.bytes.size());
  std::memcpy(space.data(), more.bytes.data(), more.bytes.size());
  count = 1;
  ASSERT_EQ(rx.commit(more.bytes.size(), out, count), StreamRxBuffer::Status::kOk);
  EXPECT_EQ(count, 1u);
  count = 0;
  ASSERT_EQ(rx.drain(out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 1u);
  FrameChecker more_checker(more);
  EXPECT_TRUE(more_checker.check_batch(out.data(), count));
}

TEST(StreamRxBufferTest, DrainHandsOutGoodFramesBeforeReportingBadLength) {
  Stream s = make_stream({14, 100, 61});
  s.add_bad_prefix(5);
  StreamRxBuffer rx;
  std::span<uint8_t> space = rx.write_space();
  ASSERT_GE(space.size(), s.bytes.size());
  std::memcpy(space.data(), s.bytes.data(), s.bytes.size());
  std::array<Frame, 1> out;
  FrameChecker checker(s);
  size_t count = 0;
  StreamRxBuffer::Status st = rx.commit(s.bytes.size(), out, count);
  EXPECT_TRUE(checker.check_batch(out.data(), count));
  for (int i = 0; i < 10 && st == StreamRxBuffer::Status::kOk; ++i) {
    count = 0;
    st = rx.drain(out, count);
    EXPECT_TRUE(checker.check_batch(out.data(), count));
  }
  EXPECT_EQ(st, StreamRxBuffer::Status::kBadLength);
  EXPECT_EQ(checker.next(), 3u) << "kBadLength before every good frame was handed out";
  EXPECT_EQ(rx.bad_length(), 5u);
}

TEST(StreamRxBufferTest, KeepsFramingWhenReadingAgainBeforeDraining) {
  // A reader that takes one frame per commit and drains only when it must (a port that caps its
  // work per wake-up). The header allows reading again with frames still buffered: they are
  // handed out by later commits. write_space() must stay inside the chunk throughout; when the
  // main part is full of complete, undrained frames it is empty until they are drained.
  Stream s;
  for (int i = 0; i < 40; ++i) s.add(1000 + i);
  StreamRxBuffer rx(4096);
  FrameChecker checker(s);
  size_t pos = 0;
  int forced_drains = 0;
  for (int reads = 0; reads < 1000 && pos < s.bytes.size(); ++reads) {
    std::span<uint8_t> space = rx.write_space();
    for (int d = 0; d < 100 && space.empty(); ++d) {
      ++forced_drains;
      std::array<Frame, 1> out;
      size_t count = 0;
      ASSERT_EQ(rx.drain(out, count), StreamRxBuffer::Status::kOk);
      ASSERT_EQ(count, 1u) << "write_space() empty at byte " << pos << " with nothing to drain";
      ASSERT_TRUE(checker.check_batch(out.data(), count));
      space = rx.write_space();
    }
    ASSERT_FALSE(space.empty()) << "write_space() empty at byte " << pos << " after draining";
    // A chunk is main_size + kMaxWireSize bytes: no read can be larger.
    ASSERT_LE(space.size(), size_t{4096} + kMaxWireSize)
        << "write_space() of " << space.size() << " bytes at stream byte " << pos;
    const size_t n = std::min(space.size(), s.bytes.size() - pos);
    std::memcpy(space.data(), s.bytes.data() + pos, n);
    pos += n;
    std::array<Frame, 1> out;
    size_t count = 0;
    ASSERT_EQ(rx.commit(n, out, count), StreamRxBuffer::Status::kOk);
    ASSERT_TRUE(checker.check_batch(out.data(), count)) << "read ending at byte " << pos;
  }
  ASSERT_EQ(pos, s.bytes.size());
  for (int drains = 0; drains < 100 && checker.next() < s.frames.size(); ++drains) {
    std::array<Frame, 1> out;
    size_t count = 0;
    ASSERT_EQ(rx.drain(out, count), StreamRxBuffer::Status::kOk);
    ASSERT_TRUE(checker.check_batch(out.data(), count));
  }
  EXPECT_EQ(checker.next(), s.frames.size());
  EXPECT_EQ(rx.pending_size(), 0u);
  EXPECT_GT(forced_drains, 0) << "the main part never filled behind undrained frames";
}

TEST(StreamRxBufferTest, FinishesFrameStraddlingMainEndInSlack) {
  // Two 1514-byte frames (3036 bytes on the wire), then one whose prefix and first 1056 bytes
  // fill the 4096-byte main part: it must be completed in the slack with a read of exactly 458.
  const Stream s = make_stream({1514, 1514, 1514, 100});
  StreamRxBuffer rx(4096);
  FrameChecker checker(s);
  std::span<uint8_t> space = rx.write_space();
  ASSERT_EQ(space.size(), 4096u) << "a fresh buffer's reads should fill the main part";
  std::memcpy(space.data(), s.bytes.data(), 4096);
  std::array<Frame, 8> out;
  size_t count = 0;
  ASSERT_EQ(rx.commit(4096, out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 2u);
  ASSERT_TRUE(checker.check_batch(out.data(), count));
  RxChunk* first_chunk = out[0].chunk;
  const uint8_t* first_wire = out[0].wire;
  chunk_ref(first_chunk);  // hold it, as an output queue would

  space = rx.write_space();
  ASSERT_EQ(space.size(), 1518u * 3 - 4096) << "slack reads are sized to what the frame needs";
  std::memcpy(space.data(), s.bytes.data() + 4096, space.size());
  count = 0;
  ASSERT_EQ(rx.commit(space.size(), out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 1u);
  ASSERT_TRUE(checker.check_batch(out.data(), count));
  EXPECT_EQ(out[0].chunk, first_chunk);
  EXPECT_EQ(out[0].wire, first_wire + 2 * 1518) << "the straddling frame moved";
  EXPECT_EQ(rx.pending_size(), 0u);

  // Nothing partial is left, so the next frame goes into a fresh chunk.
  space = rx.write_space();
  ASSERT_GE(space.size(), 104u);
  std::memcpy(space.data(), s.bytes.data() + 3 * 1518, 104);
  count = 0;
  ASSERT_EQ(rx.commit(104, out, count), StreamRxBuffer::Status::kOk);
  ASSERT_EQ(count, 1u);
  ASSERT_TRUE(checker.check_batch(out.data(), count));
  EXPECT_NE(out[0].chunk, first_chunk) << "a frame went into the slack of a full chunk";
  chunk_unref(first_chunk);
}

TEST(StreamRxBufferTest, PausesWhenEveryChunkIsHeldAndResumesWhenReleased) {
  constexpr uint32_t kMaxChunks = 4;
  Stream s;
  for (int i = 0; i < 200; ++i) s.add(1000 + i);
  StreamRxBuffer rx(4096, kMaxChunks);
  FrameChecker checker(s);
  std::vector<Frame> held;
  size_t pos = 0;
  bool paused = false;
  for (int reads = 0; reads < 1000 && pos < s.bytes.size(); ++reads) {
    std::span<uint8_t> space = rx.write_space();
    if (space.empty()) {
      paused = true;
      break;
    }
    const size_t n = std::min(space.size(), s.bytes.size() - pos);
    std::memcpy(space.data(), s.bytes.data() + pos, n);
    pos += n;
    std::array<Frame, 16> out;
    size_t count = 0;
    ASSERT_EQ(rx.commit(n, out, count), StreamRxBuffer::Status::kOk);
    ASSERT_TRUE(checker.check_batch(out.data(), count));
    for (size_t i = 0; i < count; ++i) {
      chunk_ref(out[i].chunk);
      held.push_back(out[i]);
    }
  }
  ASSERT_TRUE(paused) << "write_space() never ran dry while every frame was held";
  ASSERT_LT(pos, s.bytes.size());
  EXPECT_EQ(rx.pool().allocated_count(), kMaxChunks);
  EXPECT_EQ(rx.pool().free_count(), 0u);
  EXPECT_TRUE(rx.write_space().empty()) << "write_space() must stay empty while chunks are held";

  // Held frames are still intact.
  FrameChecker recheck(s);
  for (const Frame& f : held) ASSERT_TRUE(recheck.check_batch(&f, 1));

  for (const Frame& f : held) chunk_unref(f.chunk);
  held.clear();
  EXPECT_FALSE(rx.write_space().empty()) << "write_space() still empty after every release";

  // The stream carries on intact where it stopped.
  ASSERT_TRUE(feed(rx, s.bytes, pos, s.bytes.size(), no_boundary, checker));
  EXPECT_EQ(checker.next(), s.frames.size());
  EXPECT_LE(rx.pool().allocated_count(), kMaxChunks);
}

// Found by tests/fuzz/stream_framing_fuzz: once its chunk was all handed out, the buffer asked
// the pool for a fresh one while still holding the current one itself, so with every other chunk
// held by outputs (or with a one-chunk pool) write_space() stayed empty although the current
// chunk was free to reuse: the input paused for nothing, or for good.
TEST(StreamRxBufferTest, ReusesItsOwnChunkWhenNothingElseHoldsIt) {
  // 46-byte frames are 50 bytes on the wire: two fill a 100-byte main part exactly.
  const Stream s = make_stream({46, 46, 46, 46, 46, 46});
  StreamRxBuffer one(100, 1);
  EXPECT_TRUE(feed_all(one, s, no_boundary));
  EXPECT_EQ(one.pool().allocated_count(), 1u);

  // Two chunks, the first held by an output: the second is reused over and over.
  StreamRxBuffer two(100, 2);
  FrameChecker checker(s);
  std::span<uint8_t> space = two.write_space();
  ASSERT_EQ(space.size(), 100u);
  std::memcpy(space.data(), s.bytes.data(), 100);
  std::array<Frame, kOutCapacity> out;
  size_t count = 0;
  ASSERT_EQ(two.commit(100, out, count), StreamRxBuffer::Status::kOk);
  ASSERT_TRUE(checker.check_batch(out.data(), count));
  RxChunk* held = out[0].chunk;
  chunk_ref(held);
  EXPECT_TRUE(feed(two, s.bytes, 100, s.bytes.size(), no_boundary, checker));
  EXPECT_EQ(checker.next(), s.frames.size());
  EXPECT_EQ(two.pool().allocated_count(), 2u);
  chunk_unref(held);
}

TEST(StreamRxBufferTest, FrameOutlivesBufferWhileReferenced) {
  const Stream s = make_stream({1514, 61, 9014});
  std::vector<Frame> held;
  {
    StreamRxBuffer rx(4096, 4);
    FrameChecker checker(s);
    size_t pos = 0;
    for (int reads = 0; reads < 100 && pos < s.bytes.size(); ++reads) {
      std::span<uint8_t> space = rx.write_space();
      ASSERT_FALSE(space.empty());
      const size_t n = std::min(space.size(), s.bytes.size() - pos);
      std::memcpy(space.data(), s.bytes.data() + pos, n);
      pos += n;
      std::array<Frame, 16> out;
      size_t count = 0;
      ASSERT_EQ(rx.commit(n, out, count), StreamRxBuffer::Status::kOk);
      ASSERT_TRUE(checker.check_batch(out.data(), count));
      for (size_t i = 0; i < count; ++i) {
        chunk_ref(out[i].chunk);
        held.push_back(out[i]);
      }
    }
    ASSERT_EQ(held.size(), 3u);
  }
  // The buffer and its pool are gone: the held chunks are orphans, still readable.
  FrameChecker checker(s);
  for (const Frame& f : held) {
    EXPECT_EQ(f.chunk->pool, nullptr);
    EXPECT_GE(f.chunk->refs, 1u);
    ASSERT_TRUE(checker.check_batch(&f, 1));
  }
  // The last unref frees each chunk (LeakSanitizer reports it otherwise; ASan reports a double
  // free or use after free if a chunk was freed early).
  for (const Frame& f : held) chunk_unref(f.chunk);
}

}  // namespace
}  // namespace qswitch::sw
