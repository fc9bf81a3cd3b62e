// tests/backends/datagram_tx_test.cc: DatagramTx, the output queue of datagram-like ports
// (dgram sockets, tap, VXLAN): one frame per iovec pair, padding, and how copied frames leave.
//
// Theory of operation
// - Frames are laid out in chunks of real ChunkPools the way receiving ports leave them (4-byte
//   prefix, then the frame), with pattern bytes, so references are observed through
//   RxChunk::refs and pool counts. Memory around frames is non-zero, so padding read from memory
//   instead of zeros is caught.
// - What leaves is read back through iov(i): the Ethernet bytes of frame i, padded with zeros to
//   60. After unpin() the sender's chunk is overwritten (as a sender reusing its chunk would), so
//   a frame still read from its chunk instead of its copy shows up as wrong bytes.
// - The ring itself (byte bound, entry cap, growth and order, references, which frames unpin()
//   copies, the copy space) is sw::OutputRing's and is tested in tests/switch/output_ring_test.cc;
//   these tests check what DatagramTx adds: iov(i), data(i), size(i), and real sendmmsg() batches.
#include "backends/runtime/datagram_tx.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "tests/switch/queue_test_support.h"

namespace qswitch::backends {
namespace {

using sw::Frame;
using sw::kPadFrameSize;
using sw::kPrefixSize;

using sw::test::lay_out;
using sw::test::TestChunk;

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

// --- unpin() ------------------------------------------------------------------------------------
// Which frames unpin() copies, the references it drops and the copy space are OutputRing's
// (tests/switch/output_ring_test.cc); what DatagramTx adds is how a copy is described.

TEST(DatagramTxTest, CopiedFramesAreDescribedFromTheirCopyWithoutPrefixAndStillPadded) {
  TestChunk p;  // the sender that runs short
  TestChunk o;  // another sender
  const std::vector<Frame> fp = lay_out(p, {100, 20});
  const std::vector<Frame> fo = lay_out(o, {300, 400, 500, 600}, {}, 7);
  const std::vector<Frame> order = {fo[0], fp[0], fo[1], fp[1], fo[2], fo[3]};
  DatagramTx q(1 << 20);
  for (const Frame& f : order) ASSERT_TRUE(q.push(f));
  const auto want = datagrams_of(order);

  EXPECT_EQ(q.unpin(p.pool), 4u);
  std::memset(p.chunk->data, 0xcc, p.chunk->capacity);  // the sender reuses its chunk
  EXPECT_EQ(datagrams(q), want) << "unpin changed what leaves";
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(in_chunk(q.data(i), p)) << i;
    EXPECT_FALSE(in_chunk(q.data(i), o)) << i;
    EXPECT_EQ(q.size(i), order[i].size) << i;
    iovec out[2];
    ASSERT_EQ(q.iov(i, out), order[i].size < kPadFrameSize ? 2 : 1) << i;
    EXPECT_EQ(out[0].iov_base, q.data(i)) << "frame " << i << ": not the copy, or with its prefix";
    EXPECT_EQ(out[0].iov_len, order[i].size) << i;
  }
  int parts = 0;
  EXPECT_EQ(datagram_at(q, 3, &parts), want[3]);
  EXPECT_EQ(parts, 2) << "a copied short frame is still padded";
  EXPECT_EQ(q.data(4), fo[2].data()) << "a frame after the last one of the pool was copied";
  EXPECT_EQ(q.data(5), fo[3].data());

  EXPECT_EQ(q.unpin(o.pool), 2u);
  std::memset(o.chunk->data, 0xdd, o.chunk->capacity);
  EXPECT_EQ(datagrams(q), want);
  EXPECT_EQ(q.pop(order.size()).bytes, uint64_t{100 + 60 + 300 + 400 + 500 + 600});
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
