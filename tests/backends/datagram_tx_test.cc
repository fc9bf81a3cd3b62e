// tests/backends/datagram_tx_test.cc: DatagramTx, the output queue of datagram-like ports
// (dgram sockets, tap, VXLAN): one frame per iovec pair, padding, bounds, and unpin().
//
// Theory of operation
// - Frames are laid out in chunks of real ChunkPools the way receiving ports leave them (4-byte
//   prefix, then the frame), with pattern bytes, so references are observed through
//   RxChunk::refs and pool counts. Memory around frames is non-zero, so padding read from memory
//   instead of zeros is caught.
// - What leaves is read back through iov(i): the Ethernet bytes of frame i, padded with zeros to
//   60. After unpin() the sender's chunk is overwritten (as a sender reusing its chunk would), so
//   a frame still read from its chunk instead of its copy shows up as wrong bytes.
// - A random test checks push/pop/clear/unpin against a deque model: unpin()'s count, chunk
//   references, and every queued frame's bytes after every step.
#include "backends/runtime/datagram_tx.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <vector>

namespace qswitch::backends {
namespace {

using sw::Frame;
using sw::kPadFrameSize;
using sw::kPrefixSize;

// A pool with one chunk held by the test (the receiving port's own reference).
struct TestChunk {
  explicit TestChunk(uint32_t size = 256 * 1024) : pool(size, 4), chunk(pool.acquire()) {}
  ~TestChunk() { sw::chunk_unref(chunk); }
  sw::ChunkPool pool;
  sw::RxChunk* chunk;
};

// Writes frames into the chunk (prefix + pattern bytes), gaps[i] bytes of 0xee before frame i.
std::vector<Frame> lay_out(TestChunk& c, const std::vector<uint32_t>& sizes,
                           const std::vector<uint32_t>& gaps = {}, uint32_t salt = 0) {
  uint8_t* mem = c.chunk->data;
  std::memset(mem, 0xa5, c.chunk->capacity);
  std::vector<Frame> frames;
  size_t at = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    at += i < gaps.size() ? gaps[i] : 0;
    EXPECT_LE(at + kPrefixSize + sizes[i], c.chunk->capacity) << "test layout too large";
    sw::store_be32(mem + at, sizes[i]);
    for (uint32_t j = 0; j < sizes[i]; ++j) {
      mem[at + kPrefixSize + j] = static_cast<uint8_t>(i * 41 + j * 3 + salt + 1);
    }
    frames.push_back(Frame{mem + at, sizes[i], c.chunk});
    at += kPrefixSize + sizes[i];
  }
  return frames;
}

// The datagram that must leave for a frame: its bytes, zero-padded to 60.
std::vector<uint8_t> datagram_of(const Frame& f) {
  std::vector<uint8_t> d(f.data(), f.data() + f.size);
  if (d.size() < kPadFrameSize) d.resize(kPadFrameSize, 0);
  return d;
}

// The datagram iov(i) describes.
std::vector<uint8_t> datagram_at(const DatagramTx& q, size_t i, int* parts = nullptr) {
  iovec out[2];
  const int n = q.iov(i, out);
  if (parts != nullptr) *parts = n;
  std::vector<uint8_t> d;
  for (int k = 0; k < n; ++k) {
    const uint8_t* p = static_cast<const uint8_t*>(out[k].iov_base);
    d.insert(d.end(), p, p + out[k].iov_len);
  }
  return d;
}

std::vector<std::vector<uint8_t>> datagrams(const DatagramTx& q) {
  std::vector<std::vector<uint8_t>> all;
  for (size_t i = 0; i < q.count(); ++i) all.push_back(datagram_at(q, i));
  return all;
}

std::vector<std::vector<uint8_t>> datagrams_of(const std::vector<Frame>& frames) {
  std::vector<std::vector<uint8_t>> all;
  for (const Frame& f : frames) all.push_back(datagram_of(f));
  return all;
}

bool in_chunk(const void* p, const TestChunk& c) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  return b >= c.chunk->data && b < c.chunk->data + c.chunk->capacity;
}

uint64_t ethernet_bytes(const Frame& f) { return std::max(f.size, kPadFrameSize); }

TEST(DatagramTxTest, AnEmptyQueueHoldsNothing) {
  DatagramTx q(1 << 20);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.count(), 0u);
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_EQ(q.max_bytes(), size_t{1 << 20});
  const DatagramTx::Written w = q.pop(3);
  EXPECT_EQ(w.frames, 0u);
  EXPECT_EQ(q.clear(), 0u);
}

TEST(DatagramTxTest, DescribesEachFrameWithoutItsPrefixStraightFromItsChunk) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {1514, 60, 100});
  DatagramTx q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  EXPECT_EQ(c.chunk->refs, 4u) << "each queued frame holds a chunk reference";
  EXPECT_EQ(q.count(), 3u);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.queued_bytes(), size_t{1514 + 60 + 100});
  for (size_t i = 0; i < frames.size(); ++i) {
    iovec out[2];
    ASSERT_EQ(q.iov(i, out), 1) << i;
    EXPECT_EQ(out[0].iov_base, frames[i].data()) << "frame " << i << " was copied";
    EXPECT_EQ(out[0].iov_len, frames[i].size) << i;
    EXPECT_EQ(q.data(i), frames[i].data()) << i;
    EXPECT_EQ(q.size(i), frames[i].size) << i;
  }

  const DatagramTx::Written w = q.pop(2);
  EXPECT_EQ(w.frames, 2u);
  EXPECT_EQ(w.bytes, uint64_t{1514 + 60});
  EXPECT_EQ(c.chunk->refs, 2u) << "sent frames must release their chunk reference";
  EXPECT_EQ(q.count(), 1u);
  EXPECT_EQ(q.queued_bytes(), 100u);
  EXPECT_EQ(q.data(0), frames[2].data());
  // pop() beyond count() pops what there is.
  const DatagramTx::Written rest = q.pop(10);
  EXPECT_EQ(rest.frames, 1u);
  EXPECT_EQ(rest.bytes, 100u);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(DatagramTxTest, PadsFramesShorterThan60WithZeros) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {14, 59, 60, 61});
  DatagramTx q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  for (size_t i = 0; i < frames.size(); ++i) {
    int parts = 0;
    const std::vector<uint8_t> d = datagram_at(q, i, &parts);
    EXPECT_EQ(parts, frames[i].size < 60 ? 2 : 1) << i;
    EXPECT_EQ(d, datagram_of(frames[i])) << i;
    EXPECT_EQ(d.size(), std::max<size_t>(frames[i].size, 60)) << i;
  }
  iovec out[2];
  q.iov(0, out);
  EXPECT_EQ(out[1].iov_len, 46u);
  EXPECT_EQ(std::count(static_cast<const uint8_t*>(out[1].iov_base),
                       static_cast<const uint8_t*>(out[1].iov_base) + 46, 0),
            46);
  // tx_bytes counts the padded size; queued_bytes the frames' own.
  EXPECT_EQ(q.queued_bytes(), size_t{14 + 59 + 60 + 61});
  EXPECT_EQ(q.pop(4).bytes, uint64_t{60 + 60 + 60 + 61});
}

TEST(DatagramTxTest, RefusesFramesBeyondMaxBytesWithoutKeepingAReference) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {1000, 1000, 1000});
  DatagramTx q(2500);
  EXPECT_TRUE(q.push(frames[0]));
  EXPECT_TRUE(q.push(frames[1]));
  EXPECT_FALSE(q.push(frames[2]));
  EXPECT_EQ(c.chunk->refs, 3u) << "a refused frame must not keep a chunk reference";
  EXPECT_EQ(q.count(), 2u);
  EXPECT_LE(q.queued_bytes(), q.max_bytes());
  q.pop(1);
  EXPECT_TRUE(q.push(frames[2]));
  EXPECT_EQ(datagrams(q), datagrams_of({frames[1], frames[2]}));
  q.clear();
}

TEST(DatagramTxTest, EntryCapBoundsTinyFrames) {
  TestChunk c;
  const size_t frames_count = 1050;
  const std::vector<Frame> frames = lay_out(c, std::vector<uint32_t>(frames_count, 14));
  const size_t max_bytes = frames_count * 14;
  DatagramTx q(max_bytes);
  size_t accepted = 0;
  while (accepted < frames_count && q.push(frames[accepted])) ++accepted;
  EXPECT_GE(accepted, max_bytes / 64);
  EXPECT_LT(accepted, frames_count) << "no entry cap: 14-byte frames filled max_bytes";
  q.pop(1);
  EXPECT_TRUE(q.push(frames[accepted]));
  EXPECT_FALSE(q.push(frames[accepted]));
  q.clear();
}

TEST(DatagramTxTest, GrowsAndWrapsKeepingOrder) {
  TestChunk c;
  std::vector<uint32_t> sizes;
  for (int i = 0; i < 300; ++i) sizes.push_back(14 + static_cast<uint32_t>(i % 90));
  const std::vector<Frame> frames = lay_out(c, sizes);
  DatagramTx q(1 << 20);
  std::deque<Frame> model;
  size_t next = 0;
  for (int round = 1; round <= 20; ++round) {
    for (int i = 0; i < round * 3; ++i) {
      ASSERT_TRUE(q.push(frames[next % frames.size()]));
      model.push_back(frames[next++ % frames.size()]);
    }
    const size_t n = model.size() / 2;
    q.pop(n);
    for (size_t i = 0; i < n; ++i) model.pop_front();
    ASSERT_EQ(datagrams(q), datagrams_of({model.begin(), model.end()})) << "round " << round;
  }
  EXPECT_EQ(q.clear(), model.size());
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(DatagramTxTest, ClearAndTheDestructorReleaseChunkReferences) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {100, 20, 1514});
  {
    DatagramTx q(1 << 20);
    for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
    EXPECT_EQ(q.clear(), 3u);
    EXPECT_EQ(c.chunk->refs, 1u);
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.queued_bytes(), 0u);
    for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
    EXPECT_EQ(c.chunk->refs, 4u);
  }
  EXPECT_EQ(c.chunk->refs, 1u);
}

// --- unpin() ------------------------------------------------------------------------------------

TEST(DatagramTxTest, UnpinCopiesTheFramesUpToTheLastOneInThePoolAndNoFurther) {
  TestChunk p;  // the sender that runs short
  TestChunk o;  // another sender
  const std::vector<Frame> fp = lay_out(p, {100, 20});
  const std::vector<Frame> fo = lay_out(o, {300, 400, 500, 600}, {}, 7);
  const std::vector<Frame> order = {fo[0], fp[0], fo[1], fp[1], fo[2], fo[3]};
  DatagramTx q(1 << 20);
  for (const Frame& f : order) ASSERT_TRUE(q.push(f));
  const auto want = datagrams_of(order);
  ASSERT_EQ(p.chunk->refs, 3u);
  ASSERT_EQ(o.chunk->refs, 5u);

  EXPECT_EQ(q.unpin(p.pool), 4u);
  EXPECT_EQ(p.chunk->refs, 1u) << "the queue still pins the sender's chunk";
  EXPECT_EQ(o.chunk->refs, 3u) << "fo[0] and fo[1] were copied, fo[2] and fo[3] were not";
  EXPECT_EQ(q.count(), order.size());
  EXPECT_EQ(q.queued_bytes(), size_t{100 + 20 + 300 + 400 + 500 + 600});
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);  // the sender reuses its chunk
  EXPECT_EQ(datagrams(q), want) << "unpin changed what leaves";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(in_chunk(q.data(i), p)) << i;
    EXPECT_FALSE(in_chunk(q.data(i), o)) << i;
    EXPECT_EQ(q.size(i), order[i].size) << i;
  }
  EXPECT_EQ(q.data(4), fo[2].data()) << "a frame after the last one of the pool was copied";
  EXPECT_EQ(q.data(5), fo[3].data());
  int parts = 0;
  datagram_at(q, 3, &parts);
  EXPECT_EQ(parts, 2) << "a copied short frame is still padded";

  EXPECT_EQ(q.unpin(p.pool), 0u);
  EXPECT_EQ(q.unpin(o.pool), 2u);
  EXPECT_EQ(o.chunk->refs, 1u);
  std::memset(o.chunk->data, 0xdd, o.chunk->capacity);
  EXPECT_EQ(datagrams(q), want);

  const DatagramTx::Written w = q.pop(order.size());
  EXPECT_EQ(w.frames, order.size());
  EXPECT_EQ(w.bytes, uint64_t{100 + 60 + 300 + 400 + 500 + 600});
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
}

TEST(DatagramTxTest, UnpinOfAPoolWithNoQueuedFramesCopiesNothing) {
  TestChunk p;
  TestChunk o;
  DatagramTx q(1 << 20);
  EXPECT_EQ(q.unpin(p.pool), 0u) << "empty queue";
  const std::vector<Frame> fo = lay_out(o, {300, 20});
  for (const Frame& f : fo) ASSERT_TRUE(q.push(f));
  EXPECT_EQ(q.unpin(p.pool), 0u);
  EXPECT_EQ(o.chunk->refs, 3u);
  EXPECT_EQ(q.data(0), fo[0].data());
  EXPECT_EQ(q.data(1), fo[1].data());
  q.clear();
}

TEST(DatagramTxTest, UnpinLetsTheChunkGoBackToItsPool) {
  sw::ChunkPool pool(64 * 1024, 1);
  sw::RxChunk* chunk = pool.acquire();
  ASSERT_NE(chunk, nullptr);
  std::memset(chunk->data, 0xa5, chunk->capacity);
  sw::store_be32(chunk->data, 1000);
  sw::store_be32(chunk->data + 1004, 30);
  const std::vector<Frame> frames = {Frame{chunk->data, 1000, chunk},
                                     Frame{chunk->data + 1004, 30, chunk}};
  const auto want = datagrams_of(frames);
  DatagramTx q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  sw::chunk_unref(chunk);  // the receiving port moved on; only the queue holds the chunk
  EXPECT_EQ(pool.acquire(), nullptr);
  EXPECT_EQ(q.unpin(pool), 2u);
  EXPECT_EQ(pool.free_count(), 1u) << "the chunk did not return to its pool";
  sw::RxChunk* again = pool.acquire();
  ASSERT_EQ(again, chunk);
  std::memset(again->data, 0xcc, again->capacity);
  EXPECT_EQ(datagrams(q), want);
  q.pop(2);
  EXPECT_EQ(again->refs, 1u);
  sw::chunk_unref(again);
}

TEST(DatagramTxTest, PopAndClearAfterUnpinGiveTheCopySpaceBack) {
  // Each round fills the queue to its bound, copies everything out, then sends or drops it. If
  // sent or dropped copies kept their space, the copy ring (one full queue plus one frame)
  // would refuse copies by the second round.
  TestChunk p;
  constexpr size_t kFrames = 40;
  const size_t max_bytes = kFrames * 1514;
  DatagramTx q(max_bytes);
  for (int round = 0; round < 50; ++round) {
    const std::vector<Frame> frames =
        lay_out(p, std::vector<uint32_t>(kFrames, 1514), {}, static_cast<uint32_t>(round));
    const size_t leftover = q.count();
    for (size_t i = leftover; i < kFrames; ++i) ASSERT_TRUE(q.push(frames[i])) << "round " << round;
    ASSERT_EQ(q.unpin(p.pool), kFrames - leftover) << "round " << round << ": copy refused";
    ASSERT_EQ(p.chunk->refs, 1u);
    std::memset(p.chunk->data, 0xcc, p.chunk->capacity);
    switch (round % 3) {
      case 0:
        ASSERT_EQ(q.pop(kFrames).frames, kFrames);
        break;
      case 1:
        q.pop(kFrames / 3);
        q.clear();
        break;
      default:
        q.pop(kFrames - 1);  // one copy stays into the next round
        ASSERT_EQ(q.count(), 1u);
        break;
    }
  }
  q.clear();
}

struct QueuedModel {
  size_t frame;
  size_t pool;
  bool copied;
};

TEST(DatagramTxTest, RandomPushUnpinPopAndClearMatchADequeModel) {
  constexpr size_t kPools = 3;
  constexpr size_t kFramesPerPool = 48;
  std::mt19937 rng(123);
  std::vector<std::unique_ptr<TestChunk>> chunks;
  std::vector<Frame> frames;
  std::vector<size_t> frame_pool;
  std::vector<std::vector<uint8_t>> want_of;  // datagram per frame, taken at lay-out time
  for (size_t k = 0; k < kPools; ++k) {
    chunks.push_back(std::make_unique<TestChunk>());
    std::vector<uint32_t> sizes, gaps;
    std::uniform_int_distribution<uint32_t> size_dist(sw::kMinFrameSize, 1514);
    for (size_t i = 0; i < kFramesPerPool; ++i) {
      sizes.push_back(i % 5 == 0 ? sw::kMinFrameSize + static_cast<uint32_t>(i % 46)
                                 : size_dist(rng));
      gaps.push_back(i % 7 == 0 ? 5 : 0);
    }
    for (const Frame& f : lay_out(*chunks.back(), sizes, gaps, static_cast<uint32_t>(k * 13))) {
      frames.push_back(f);
      frame_pool.push_back(k);
      want_of.push_back(datagram_of(f));
    }
  }
  DatagramTx q(24 * 1024);  // entry cap 512
  std::deque<QueuedModel> model;
  uint64_t copied_total = 0;
  uint64_t refused = 0;
  std::uniform_int_distribution<int> op(0, 99);
  for (int step = 0; step < 6000; ++step) {
    const bool filling = (step / 300) % 2 == 0;
    int o = op(rng);
    if (!filling && o < 55) o = 70 + o % 27;
    if (filling && o >= 70 && o < 97 && o % 3 != 0) o = o % 55;
    if (o < 55) {
      const size_t i = std::uniform_int_distribution<size_t>(0, frames.size() - 1)(rng);
      size_t queued = 0;
      for (const QueuedModel& m : model) queued += frames[m.frame].size;
      if (q.push(frames[i])) {
        model.push_back({i, frame_pool[i], false});
      } else {
        ++refused;
        ASSERT_TRUE(queued + frames[i].size > q.max_bytes() || model.size() == 512)
            << "step " << step;
      }
    } else if (o < 70) {
      const size_t k = std::uniform_int_distribution<size_t>(0, kPools - 1)(rng);
      size_t first = 0;
      while (first < model.size() && model[first].copied) ++first;
      size_t want = 0;
      for (size_t j = model.size(); j > first; --j) {
        if (model[j - 1].pool == k) {
          want = j - first;
          break;
        }
      }
      ASSERT_EQ(q.unpin(chunks[k]->pool), want) << "step " << step;
      for (size_t j = first; j < first + want; ++j) model[j].copied = true;
      copied_total += want;
    } else if (o < 97) {
      const size_t n = std::uniform_int_distribution<size_t>(0, 8)(rng);
      const DatagramTx::Written w = q.pop(n);
      uint64_t want_frames = 0;
      uint64_t want_bytes = 0;
      while (want_frames < n && !model.empty()) {
        ++want_frames;
        want_bytes += ethernet_bytes(frames[model.front().frame]);
        model.pop_front();
      }
      ASSERT_EQ(w.frames, want_frames) << "step " << step;
      ASSERT_EQ(w.bytes, want_bytes) << "step " << step;
    } else {
      ASSERT_EQ(q.clear(), model.size()) << "step " << step;
      model.clear();
    }
    ASSERT_EQ(q.count(), model.size()) << "step " << step;
    for (size_t k = 0; k < kPools; ++k) {
      uint32_t pins = 0;
      for (const QueuedModel& m : model) pins += (m.pool == k && !m.copied) ? 1 : 0;
      ASSERT_EQ(chunks[k]->chunk->refs, 1 + pins) << "pool " << k << ", step " << step;
    }
    for (size_t i = 0; i < model.size(); ++i) {
      ASSERT_EQ(datagram_at(q, i), want_of[model[i].frame]) << "entry " << i << ", step " << step;
      ASSERT_EQ(q.data(i) == frames[model[i].frame].data(), !model[i].copied)
          << "entry " << i << ", step " << step;
    }
  }
  EXPECT_GT(copied_total, 500u);
  EXPECT_GT(refused, 0u) << "the queue never filled";
  q.clear();
  for (const auto& c : chunks) EXPECT_EQ(c->chunk->refs, 1u);
}

TEST(DatagramTxTest, TheByteBoundIsExactAndRefusalsKeepTheQueueAsItWas) {
  TestChunk c;
  const std::vector<Frame> frames = lay_out(c, {1000, 1000, 1001, 1000, 14});
  DatagramTx q(3000);
  EXPECT_TRUE(q.push(frames[0]));
  EXPECT_TRUE(q.push(frames[1]));
  EXPECT_FALSE(q.push(frames[2])) << "3001 bytes queued would pass the bound";
  EXPECT_TRUE(q.push(frames[3])) << "exactly max_bytes fits";
  EXPECT_EQ(q.queued_bytes(), 3000u);
  EXPECT_FALSE(q.push(frames[4])) << "a full queue refuses even the smallest frame";
  EXPECT_EQ(q.count(), 3u);
  EXPECT_EQ(c.chunk->refs, 4u) << "refused frames keep no reference";
  EXPECT_EQ(datagrams(q), datagrams_of({frames[0], frames[1], frames[3]}));
  // pop(0): a send that took nothing releases nothing.
  const DatagramTx::Written none = q.pop(0);
  EXPECT_EQ(none.frames, 0u);
  EXPECT_EQ(none.bytes, 0u);
  EXPECT_EQ(q.count(), 3u);
  // clear() drops what is queued and says how many (drop_port_closed).
  EXPECT_EQ(q.clear(), 3u);
  EXPECT_EQ(c.chunk->refs, 1u);
  EXPECT_EQ(q.queued_bytes(), 0u);
  EXPECT_TRUE(q.push(frames[2]));
  q.clear();
}

// --- A real datagram socket: sendmmsg() of iov(i), as the dgram port writes ----------------------

// A unix datagram socket pair, non-blocking; the sender's buffer small, so sendmmsg() stops part
// way through a batch (EAGAIN for the rest) until the receiver reads.
struct SmallDgramPair {
  SmallDgramPair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    tx = fds[0];
    rx = fds[1];
    const int size = 4096;  // the kernel doubles it, and has a floor: a few frames at a time
    ::setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  ~SmallDgramPair() {
    ::close(tx);
    ::close(rx);
  }
  SmallDgramPair(const SmallDgramPair&) = delete;
  SmallDgramPair& operator=(const SmallDgramPair&) = delete;
  // Every datagram waiting at the receiver, in order.
  std::vector<std::vector<uint8_t>> drain() const {
    std::vector<std::vector<uint8_t>> out;
    std::vector<uint8_t> buf(70000);
    for (;;) {
      const ssize_t n = ::recv(rx, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0) break;
      out.emplace_back(buf.begin(), buf.begin() + n);
    }
    return out;
  }
  int tx = -1;
  int rx = -1;
};

// One sendmmsg() of up to `batch` queued frames, then pop() of what left; the frames sent.
size_t send_batch(DatagramTx& q, int fd, size_t batch, DatagramTx::Written* written) {
  const size_t n = std::min(batch, q.count());
  std::vector<iovec> iov(2 * n);
  std::vector<mmsghdr> msgs(n);
  for (size_t i = 0; i < n; ++i) {
    msgs[i] = mmsghdr{};
    msgs[i].msg_hdr.msg_iov = &iov[2 * i];
    msgs[i].msg_hdr.msg_iovlen = static_cast<size_t>(q.iov(i, &iov[2 * i]));
  }
  const int sent = n == 0 ? 0 : ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
  if (sent < 0) {
    EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
    *written = DatagramTx::Written{};
    return 0;
  }
  for (int i = 0; i < sent; ++i) {
    size_t len = 0;
    for (size_t k = 0; k < msgs[i].msg_hdr.msg_iovlen; ++k)
      len += msgs[i].msg_hdr.msg_iov[k].iov_len;
    EXPECT_EQ(msgs[i].msg_len, len) << "a datagram leaves whole or not at all";
  }
  *written = q.pop(static_cast<size_t>(sent));
  return static_cast<size_t>(sent);
}

TEST(DatagramTxTest, APartialSendmmsgPopsOnlyWhatLeftAndTheRestFollowsInOrder) {
  SmallDgramPair p;
  TestChunk c;
  std::vector<uint32_t> sizes;
  for (uint32_t i = 0; i < 60; ++i) sizes.push_back(i % 3 == 0 ? 14 + i : 600 + 13 * i);
  const std::vector<Frame> frames = lay_out(c, sizes);
  DatagramTx q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  const auto want = datagrams_of(frames);

  std::vector<std::vector<uint8_t>> got;
  bool partial = false;
  uint64_t frames_written = 0, bytes_written = 0;
  for (int round = 0; round < 1000 && !q.empty(); ++round) {
    const size_t before = q.count();
    DatagramTx::Written w;
    const size_t sent = send_batch(q, p.tx, 32, &w);
    EXPECT_EQ(w.frames, sent);
    EXPECT_EQ(q.count(), before - sent);
    partial = partial || (sent < std::min<size_t>(32, before));
    frames_written += w.frames;
    bytes_written += w.bytes;
    // What is left still starts with the first frame not sent.
    if (!q.empty()) {
      EXPECT_EQ(datagram_at(q, 0), want[frames.size() - q.count()]);
    }
    for (auto& d : p.drain()) got.push_back(std::move(d));
  }
  for (auto& d : p.drain()) got.push_back(std::move(d));
  EXPECT_TRUE(partial) << "the small send buffer never cut a batch short: the test proves nothing";
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(got, want) << "every frame leaves once, in order, padded to 60, never empty";
  EXPECT_EQ(frames_written, frames.size());
  uint64_t want_bytes = 0;
  for (const Frame& f : frames) want_bytes += ethernet_bytes(f);
  EXPECT_EQ(bytes_written, want_bytes);
  EXPECT_EQ(c.chunk->refs, 1u);
}

TEST(DatagramTxTest, FramesCopiedOutByUnpinLeaveWithTheirOwnBytes) {
  // Half the queue is sent, the sender's chunk is unpinned and overwritten (it is reused), the
  // rest leaves from the copies: the receiver must see the original bytes.
  SmallDgramPair p;
  TestChunk c;
  std::vector<uint32_t> sizes;
  for (uint32_t i = 0; i < 40; ++i) sizes.push_back(i % 4 == 0 ? 20 : 300 + 7 * i);
  const std::vector<Frame> frames = lay_out(c, sizes);
  const auto want = datagrams_of(frames);
  DatagramTx q(1 << 20);
  for (const Frame& f : frames) ASSERT_TRUE(q.push(f));
  std::vector<std::vector<uint8_t>> got;
  DatagramTx::Written w;
  for (int round = 0; round < 1000 && q.count() > 20; ++round) {
    send_batch(q, p.tx, q.count() - 20, &w);
    for (auto& d : p.drain()) got.push_back(std::move(d));
  }
  ASSERT_EQ(q.count(), 20u);
  EXPECT_EQ(q.unpin(c.pool), 20u);
  EXPECT_EQ(c.chunk->refs, 1u) << "the copies must not pin the chunk";
  std::memset(c.chunk->data, 0x5a, c.chunk->capacity);
  for (int round = 0; round < 1000 && !q.empty(); ++round) {
    send_batch(q, p.tx, 32, &w);
    for (auto& d : p.drain()) got.push_back(std::move(d));
  }
  for (auto& d : p.drain()) got.push_back(std::move(d));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace qswitch::backends
