// tests/backends/vhost_user_frontend_test.cc: the test-side vhost-user front-end
// (tests/support/vhost_user_frontend.h) against a small back-end made here of the landed pieces
// (MessageReader, the reply encoders, GuestMemory::map, Virtqueue) over a socketpair. The two
// sides share no code, so each checks the other's reading of vhost-user.rst and virtio 1.2 2.7.
// The back-end serves messages on a thread while the front-end waits for replies; the rings
// are touched by one thread at a time (the serving thread is joined first). Every wait has a
// deadline; nothing sleeps.
#include "tests/support/vhost_user_frontend.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "backends/vhost_user/guest_memory.h"
#include "backends/vhost_user/vhost_user_msg.h"
#include "backends/vhost_user/virtqueue.h"
#include "tests/support/temp_dir.h"

namespace qswitch {
namespace {

namespace vh = backends::vhost_user;
namespace vu = test_support::vu;
using test_support::VhostUserFrontend;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

constexpr Millis kServeTimeout(5000);
// What handshake() and start() send (vhost_user_msg.h's QEMU 7.2 list).
constexpr size_t kHandshakeMessages = 11;  // with PROTOCOL_FEATURES
constexpr size_t kStartMessages = 12;      // SET_FEATURES, SET_MEM_TABLE, 2 x 5 vring messages

// ---- The back-end: the landed pieces, as the port will use them ----------------------------
class TestBackend {
 public:
  explicit TestBackend(int fd) : fd_(fd) {}
  ~TestBackend() {
    for (int fd : {fd_, kick[0], kick[1], call[0], call[1], err[0], err[1]})
      if (fd >= 0) ::close(fd);
  }
  TestBackend(const TestBackend&) = delete;
  TestBackend& operator=(const TestBackend&) = delete;

  // Reads and handles `count` messages (or fails: "" is success), within kServeTimeout.
  std::string serve(size_t count) {
    const auto deadline = Clock::now() + kServeTimeout;
    size_t handled = 0;
    while (handled < count) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
      if (left <= 0) return "timed out after " + std::to_string(handled) + " messages";
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      std::span<uint8_t> space = reader_.write_space();
      iovec iov{space.data(), space.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vh::kMaxFds)];
      msghdr mh{};
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = control;
      mh.msg_controllen = sizeof control;
      const ssize_t n = recvmsg(fd_, &mh, MSG_CMSG_CLOEXEC);
      if (n <= 0) return "connection closed or failed";
      std::vector<int> fds;
      for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; ++i) {
          int fd;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          fds.push_back(fd);
        }
      }
      vh::ReadResult r = reader_.commit(static_cast<size_t>(n), fds);
      if (r.status == vh::ReadResult::Status::kError) {
        for (int fd : r.fds_to_close) ::close(fd);
        return r.error;
      }
      if (r.status == vh::ReadResult::Status::kMessage) {
        std::string e = handle(r.message);
        if (!e.empty()) return e;
        ++handled;
      }
    }
    return "";
  }

  // Sets both queues up from what the front-end said (after start()).
  void setup_queues() {
    for (int q = 0; q < 2; ++q) {
      cfg[q].event_idx = (features & vh::feature::kRingEventIdx) != 0;
      EXPECT_EQ(vq[q].setup(mem, cfg[q]), vh::RingError::kNone) << "queue " << q;
    }
  }
  // Reads a kick eventfd: the count of kicks since the last read (0: none).
  uint64_t kicks(int q) {
    uint64_t v = 0;
    return read(kick[q], &v, sizeof v) == sizeof v ? v : 0;
  }
  void interrupt(int q) {
    const uint64_t one = 1;
    EXPECT_EQ(write(call[q], &one, sizeof one), 8);
  }
  // Pops one TX chain and gathers its readable bytes; empty optional when none or an error.
  std::optional<std::vector<uint8_t>> pop_tx() {
    iovec iov[8];
    vh::Chain chain;
    chain.iov = iov;
    if (vq[1].pop(chain) != vh::Virtqueue::Pop::kChain) return std::nullopt;
    std::vector<uint8_t> bytes;
    for (const iovec& v : chain.readable()) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      bytes.insert(bytes.end(), p, p + v.iov_len);
    }
    vq[1].push_used(chain.head, 0);
    return bytes;
  }
  // put_rx_mergeable + flush + interrupt when the driver wants one.
  vh::Virtqueue::RxPut put_rx(const std::vector<uint8_t>& frame, const uint8_t (&hdr)[12]) {
    iovec iov[8];
    vh::Chain scratch;
    scratch.iov = iov;
    const vh::ConstPiece piece{frame.data(), static_cast<uint32_t>(frame.size())};
    const vh::Virtqueue::RxPut put = vq[0].put_rx_mergeable(hdr, {&piece, 1}, 0, scratch);
    if (put.status == vh::Virtqueue::RxStatus::kDone) {
      vq[0].flush(put.buffers);
      if (vq[0].need_notify()) interrupt(0);
    }
    return put;
  }

  uint64_t offered = vh::feature::kOffered;
  uint64_t offered_protocol = vh::protocol_feature::kOffered;
  uint64_t features = 0;
  uint64_t protocol = 0;
  std::vector<vh::Request> requests;
  std::vector<uint32_t> flags;
  vh::MemoryTable table;
  vh::GuestMemory mem;
  vh::VringConfig cfg[2];
  vh::Virtqueue vq[2];
  int kick[2] = {-1, -1};
  int call[2] = {-1, -1};
  int err[2] = {-1, -1};

 private:
  void reply(std::span<const uint8_t> bytes) {
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void ack(vh::Request request, bool ok) {
    uint8_t out[vh::kMaxReplySize];
    reply({out, vh::encode_reply_ack(request, ok, out)});
  }
  static void take_fd(int* slot, const vh::Message& m) {
    if (*slot >= 0) ::close(*slot);
    *slot = m.fds.count > 0 ? m.fds.fd[0] : -1;
  }

  std::string handle(const vh::Message& m) {
    requests.push_back(m.request);
    flags.push_back(m.flags);
    uint8_t out[vh::kMaxReplySize];
    bool acked = false;  // a request that replies anyway, or whose ack is sent here
    switch (m.request) {
      case vh::Request::kGetFeatures:
        reply({out, vh::encode_u64_reply(m.request, offered, out)});
        acked = true;
        break;
      case vh::Request::kGetProtocolFeatures:
        reply({out, vh::encode_u64_reply(m.request, offered_protocol, out)});
        acked = true;
        break;
      case vh::Request::kSetProtocolFeatures:
        protocol = std::get<uint64_t>(m.payload);
        break;
      case vh::Request::kSetFeatures:
        features = std::get<uint64_t>(m.payload);
        break;
      case vh::Request::kSetMemTable: {
        table = std::get<vh::MemoryTable>(m.payload);
        int mmap_errno = 0;
        const vh::MemoryError e =
            vh::GuestMemory::map(table.view(), m.fds.view(), mem, &mmap_errno);
        for (int fd : m.fds.view()) ::close(fd);
        if (m.need_reply()) ack(m.request, e == vh::MemoryError::kNone);
        if (e != vh::MemoryError::kNone) return vh::memory_error_text(e);
        acked = true;
        break;
      }
      case vh::Request::kSetVringNum: {
        const auto s = std::get<vh::VringState>(m.payload);
        cfg[s.index & 1].num = s.num;
        break;
      }
      case vh::Request::kSetVringBase: {
        const auto s = std::get<vh::VringState>(m.payload);
        cfg[s.index & 1].last_avail_idx = static_cast<uint16_t>(s.num);
        break;
      }
      case vh::Request::kSetVringAddr: {
        const auto a = std::get<vh::VringAddr>(m.payload);
        cfg[a.index & 1].desc_addr = a.desc_user_addr;
        cfg[a.index & 1].avail_addr = a.avail_user_addr;
        cfg[a.index & 1].used_addr = a.used_user_addr;
        break;
      }
      case vh::Request::kGetVringBase: {
        const auto s = std::get<vh::VringState>(m.payload);
        const vh::VringState base{s.index, vq[s.index & 1].last_avail_idx()};
        reply({out, vh::encode_vring_state_reply(m.request, base, out)});
        acked = true;
        break;
      }
      case vh::Request::kSetVringKick:
        take_fd(&kick[std::get<vh::VringFile>(m.payload).index & 1], m);
        break;
      case vh::Request::kSetVringCall:
        take_fd(&call[std::get<vh::VringFile>(m.payload).index & 1], m);
        break;
      case vh::Request::kSetVringErr:
        take_fd(&err[std::get<vh::VringFile>(m.payload).index & 1], m);
        break;
      default:
        for (int fd : m.fds.view()) ::close(fd);
        break;
    }
    if (m.need_reply() && !acked) ack(m.request, true);
    return "";
  }

  int fd_;
  vh::MessageReader reader_;
};

// A front-end and a back-end on the two ends of a socketpair.
struct Pair {
  std::unique_ptr<VhostUserFrontend> fe;
  std::unique_ptr<TestBackend> be;

  explicit Pair(const VhostUserFrontend::Options& options) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    std::string error;
    fe = VhostUserFrontend::create(options, &error);
    EXPECT_NE(fe, nullptr) << error;
    if (fe != nullptr) fe->adopt(sv[0]);
    be = std::make_unique<TestBackend>(sv[1]);
  }

  // Runs `frontend_side` while the back-end serves `count` messages on a thread.
  template <typename F>
  std::string with_backend(size_t count, F frontend_side) {
    std::string be_error;
    std::thread t([&] { be_error = be->serve(count); });
    std::string fe_error = frontend_side();
    t.join();
    if (!fe_error.empty()) return "front-end: " + fe_error;
    if (!be_error.empty()) return "back-end: " + be_error;
    return "";
  }

  // handshake() and start(), then the back-end's queues set up.
  std::string bring_up(size_t handshake_messages = kHandshakeMessages) {
    std::string e = with_backend(handshake_messages + kStartMessages, [&] {
      std::string h = fe->handshake();
      return h.empty() ? fe->start() : h;
    });
    if (e.empty()) be->setup_queues();
    return e;
  }
};

VhostUserFrontend::Options default_options() { return VhostUserFrontend::Options(); }

std::vector<uint8_t> test_frame(size_t size, uint8_t seed) {
  std::vector<uint8_t> f(size);
  for (size_t i = 0; i < size; ++i) f[i] = static_cast<uint8_t>(seed + i * 7);
  return f;
}

// ---- Control plane ---------------------------------------------------------------------------

TEST(VhostUserFrontendTest, HandshakeAndStartDecodeInQemusOrder) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  using R = vh::Request;
  const std::vector<R> want = {
      R::kGetFeatures,  R::kGetProtocolFeatures, R::kSetProtocolFeatures, R::kSetOwner,
      R::kGetFeatures,  R::kSetVringCall,        R::kSetVringErr,         R::kSetVringCall,
      R::kSetVringErr,  R::kSetVringEnable,      R::kSetVringEnable,      R::kSetFeatures,
      R::kSetMemTable,  R::kSetVringNum,         R::kSetVringBase,        R::kSetVringAddr,
      R::kSetVringKick, R::kSetVringCall,        R::kSetVringNum,         R::kSetVringBase,
      R::kSetVringAddr, R::kSetVringKick,        R::kSetVringCall,
  };
  EXPECT_EQ(p.be->requests, want);
  // REPLY_ACK negotiated: SET_MEM_TABLE (only) asked for an ack, and got it.
  for (size_t i = 0; i < p.be->requests.size(); ++i) {
    EXPECT_EQ((p.be->flags[i] & vh::kFlagNeedReply) != 0, p.be->requests[i] == R::kSetMemTable)
        << i;
  }
  const uint64_t want_features = vh::feature::kOffered & p.fe->options().wanted_features;
  EXPECT_EQ(p.fe->offered_features(), vh::feature::kOffered);
  EXPECT_EQ(p.fe->negotiated_features(), want_features);
  EXPECT_EQ(p.be->features, want_features);
  EXPECT_NE(want_features & vh::feature::kProtocolFeatures, 0u);
  EXPECT_EQ(p.fe->negotiated_protocol_features(),
            vh::protocol_feature::kReplyAck | vh::protocol_feature::kNetMtu);
  EXPECT_EQ(p.be->protocol, p.fe->negotiated_protocol_features());
  EXPECT_EQ(p.be->cfg[0].num, 256u);
  EXPECT_EQ(p.be->cfg[1].num, 256u);
  EXPECT_EQ(p.fe->counters().messages_sent, kHandshakeMessages + kStartMessages);
}

TEST(VhostUserFrontendTest, NeedReplyAllAsksForAnAckOnEveryRequestWithoutAReply) {
  VhostUserFrontend::Options o;
  o.need_reply_all = true;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  for (size_t i = 0; i < p.be->requests.size(); ++i) {
    const vh::Request r = p.be->requests[i];
    const bool has_reply = r == vh::Request::kGetFeatures ||
                           r == vh::Request::kGetProtocolFeatures ||
                           r == vh::Request::kSetProtocolFeatures;  // before REPLY_ACK is on
    EXPECT_EQ((p.be->flags[i] & vh::kFlagNeedReply) != 0, !has_reply) << vh::request_name(r);
  }
}

TEST(VhostUserFrontendTest, WithoutProtocolFeaturesTheHandshakeIsShorter) {
  Pair p(default_options());
  p.be->offered &= ~vh::feature::kProtocolFeatures;
  ASSERT_EQ(p.bring_up(/*handshake_messages=*/6), "");
  EXPECT_EQ(p.fe->negotiated_protocol_features(), 0u);
  EXPECT_EQ(p.be->features & vh::feature::kProtocolFeatures, 0u);
  // No REPLY_ACK: the memory table went without NEED_REPLY.
  EXPECT_EQ(p.be->flags[6 + 1] & vh::kFlagNeedReply, 0u);
}

TEST(VhostUserFrontendTest, MemoryTableMapsOneAndTwoRegions) {
  using L = VhostUserFrontend::MemoryLayout;
  for (L layout : {L::kOneRegion, L::kTwoRegionsOneFd, L::kTwoRegionsTwoFds}) {
    SCOPED_TRACE(static_cast<int>(layout));
    VhostUserFrontend::Options o;
    o.memory_layout = layout;
    Pair p(o);
    ASSERT_EQ(p.bring_up(), "");
    const uint32_t regions = layout == L::kOneRegion ? 1 : 2;
    ASSERT_EQ(p.be->mem.region_count(), regions);
    EXPECT_EQ(p.be->mem.region(0).guest_phys_addr, o.guest_phys_base);
    uint64_t total = 0;
    for (uint32_t i = 0; i < regions; ++i) total += p.be->mem.region(i).memory_size;
    EXPECT_EQ(total, o.memory_size);
    if (regions == 2) {
      EXPECT_EQ(p.be->mem.region(1).guest_phys_addr, o.guest_phys_base + o.memory_size / 2);
      EXPECT_EQ(p.be->mem.region(1).mmap_offset,
                layout == L::kTwoRegionsOneFd ? o.memory_size / 2 : 0u);
    }
    // Bytes the front-end writes by guest-physical address are the back-end's, across the
    // boundary between the regions too.
    const std::vector<uint8_t> probe = test_frame(64, 9);
    const uint64_t at = o.guest_phys_base + o.memory_size / 2 - 32;
    ASSERT_TRUE(p.fe->write_guest(at, probe));
    iovec pieces[2];
    uint32_t count = 0;
    ASSERT_EQ(p.be->mem.translate(at, probe.size(), pieces, 2, &count), vh::TranslateError::kNone);
    std::vector<uint8_t> seen;
    for (uint32_t i = 0; i < count; ++i) {
      const auto* b = static_cast<const uint8_t*>(pieces[i].iov_base);
      seen.insert(seen.end(), b, b + pieces[i].iov_len);
    }
    EXPECT_EQ(seen, probe);
  }
}

TEST(VhostUserFrontendTest, GetVringBaseReturnsTheBackendsLastAvailIdx) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.fe->send(test_frame(60, static_cast<uint8_t>(i))), "");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.be->pop_tx().has_value());
  const uint8_t hdr[12] = {};
  ASSERT_EQ(p.be->put_rx(test_frame(60, 1), hdr).status, vh::Virtqueue::RxStatus::kDone);
  std::array<uint32_t, 2> bases{};
  ASSERT_EQ(p.with_backend(2, [&] { return p.fe->stop(&bases); }), "");
  EXPECT_EQ(bases[0], 1u);
  EXPECT_EQ(bases[1], 3u);
  EXPECT_EQ(bases[0], p.be->vq[0].last_avail_idx());
  EXPECT_EQ(bases[1], p.be->vq[1].last_avail_idx());
}

TEST(VhostUserFrontendTest, AMissingReplyIsAnErrorNotAHang) {
  VhostUserFrontend::Options o;
  o.reply_timeout = Millis(100);
  Pair p(o);  // the back-end never reads
  const std::string e = p.fe->handshake();
  EXPECT_NE(e.find("timed out"), std::string::npos) << e;
}

TEST(VhostUserFrontendTest, AWrongOrShortReplyOrAClosedPeerIsAnError) {
  VhostUserFrontend::Options o;
  o.reply_timeout = Millis(2000);
  {  // a reply to another request (written before the request: it is read as the answer)
    std::string error;
    auto fe = VhostUserFrontend::create(o, &error);
    ASSERT_NE(fe, nullptr) << error;
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fe->adopt(sv[0]);
    uint8_t out[vh::kMaxReplySize];
    const size_t n = vh::encode_u64_reply(vh::Request::kGetQueueNum, 1, out);
    ASSERT_EQ(write(sv[1], out, n), static_cast<ssize_t>(n));
    const std::string e = fe->handshake();
    EXPECT_NE(e.find("reply is for request 17"), std::string::npos) << e;
    ::close(sv[1]);
  }
  {  // a GET_FEATURES reply with 4 payload bytes
    std::string error;
    auto fe = VhostUserFrontend::create(o, &error);
    ASSERT_NE(fe, nullptr) << error;
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fe->adopt(sv[0]);
    const uint32_t bad[] = {1, vh::kReplyFlags, 4, 0};
    ASSERT_EQ(write(sv[1], bad, sizeof bad), static_cast<ssize_t>(sizeof bad));
    const std::string e = fe->handshake();
    EXPECT_NE(e.find("want 8"), std::string::npos) << e;
    ::close(sv[1]);
  }
  {  // the peer goes away
    std::string error;
    auto fe = VhostUserFrontend::create(o, &error);
    ASSERT_NE(fe, nullptr) << error;
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fe->adopt(sv[0]);
    ::close(sv[1]);
    EXPECT_NE(fe->handshake(), "");
    EXPECT_NE(fe->send_message(vu::kGetFeatures, {}), "");
  }
}

TEST(VhostUserFrontendTest, ConnectsToAListenerAndAcceptsADialler) {
  test_support::TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string error;
  auto fe = VhostUserFrontend::create(default_options(), &error);
  ASSERT_NE(fe, nullptr) << error;
  // Nobody listens: connect gives up at its deadline.
  EXPECT_NE(fe->connect(dir.file("none.sock"), Millis(50)), "");
  // We listen, a back-end dials.
  ASSERT_EQ(fe->listen(dir.file("fe.sock")), "");
  const int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  const std::string path = dir.file("fe.sock");
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(::connect(c, reinterpret_cast<const sockaddr*>(&sun), sizeof sun), 0);
  ASSERT_EQ(fe->accept(Millis(2000)), "");
  ASSERT_EQ(fe->send_message(vu::kSetOwner, {}), "");
  uint8_t head[12];
  ASSERT_EQ(read(c, head, sizeof head), 12);
  uint32_t request;
  std::memcpy(&request, head, 4);
  EXPECT_EQ(request, static_cast<uint32_t>(vh::Request::kSetOwner));
  ::close(c);
  // A back-end listens, we dial.
  const int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const std::string lpath = dir.file("be.sock");
  std::memcpy(sun.sun_path, lpath.c_str(), lpath.size() + 1);
  ASSERT_EQ(bind(l, reinterpret_cast<const sockaddr*>(&sun), sizeof sun), 0);
  ASSERT_EQ(::listen(l, 1), 0);
  ASSERT_EQ(fe->connect(lpath, Millis(2000)), "");
  ::close(l);
}

// ---- Data plane ------------------------------------------------------------------------------

TEST(VhostUserFrontendTest, SentFramesPopOutOfTheBackendsTxQueueByteExact) {
  using L = VhostUserFrontend::MemoryLayout;
  using T = VhostUserFrontend::TxLayout;
  for (L mem : {L::kOneRegion, L::kTwoRegionsOneFd, L::kTwoRegionsTwoFds}) {
    VhostUserFrontend::Options o;
    o.memory_layout = mem;
    Pair p(o);
    ASSERT_EQ(p.bring_up(), "");
    uint8_t seed = 0;
    for (T layout : {T::kOneDescriptor, T::kHeaderThenFrame, T::kIndirect}) {
      SCOPED_TRACE(testing::Message()
                   << "memory " << static_cast<int>(mem) << " layout " << static_cast<int>(layout));
      VhostUserFrontend::SendOptions so;
      so.layout = layout;
      for (size_t i = 0; i < so.header.size(); ++i) so.header[i] = static_cast<uint8_t>(0xa0 + i);
      const std::vector<uint8_t> frame = test_frame(1514, ++seed);
      ASSERT_EQ(p.fe->send(frame, so), "");
      const auto got = p.be->pop_tx();
      ASSERT_TRUE(got.has_value()) << vh::ring_error_text(p.be->vq[1].error());
      std::vector<uint8_t> want(so.header.begin(), so.header.end());
      want.insert(want.end(), frame.begin(), frame.end());
      EXPECT_EQ(*got, want);
      EXPECT_EQ(p.fe->reclaim_tx(), 1u);
    }
    EXPECT_EQ(p.fe->counters().frames_sent, 3u);
    EXPECT_EQ(p.fe->counters().tx_reclaimed, 3u);
    EXPECT_EQ(p.fe->tx_in_flight(), 0u);
  }
}

TEST(VhostUserFrontendTest, ABatchIsPublishedOnceAndKickedOnce) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  const uint64_t kicks = p.fe->counters().kicks;
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(p.fe->queue_tx(test_frame(64, static_cast<uint8_t>(i))), "");
  EXPECT_EQ(p.be->vq[1].available_count(), 0u);  // nothing published yet
  EXPECT_TRUE(p.fe->flush_tx());
  EXPECT_EQ(p.fe->counters().kicks, kicks + 1);
  EXPECT_EQ(p.be->kicks(1), 1u);
  EXPECT_EQ(p.be->vq[1].available_count(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto got = p.be->pop_tx();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->size(), 12u + 64u);
  }
  EXPECT_EQ(p.fe->reclaim_tx(), 10u);
}

TEST(VhostUserFrontendTest, TxDescriptorsAreReusedAfterReclaim) {
  VhostUserFrontend::Options o;
  o.queue_size = 8;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  VhostUserFrontend::SendOptions so;
  so.layout = VhostUserFrontend::TxLayout::kHeaderThenFrame;  // two descriptors a frame
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 4; ++i) ASSERT_EQ(p.fe->queue_tx(test_frame(100, 1), so), "") << round;
    EXPECT_NE(p.fe->queue_tx(test_frame(100, 1), so), "");  // all 8 descriptors in flight
    p.fe->flush_tx();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(p.be->pop_tx().has_value()) << round;
  }
  p.fe->reclaim_tx();
  EXPECT_EQ(p.fe->tx_in_flight(), 0u);
}

TEST(VhostUserFrontendTest, FramesPutIntoRxAreReceivedByteExact) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  uint8_t hdr[12] = {1, 0, 0x22, 0, 0x36, 0, 0x0e, 0, 0x10, 0, 0, 0};
  for (size_t size : {60u, 1514u, 2048u}) {
    const std::vector<uint8_t> frame = test_frame(size, static_cast<uint8_t>(size));
    const auto put = p.be->put_rx(frame, hdr);
    ASSERT_EQ(put.status, vh::Virtqueue::RxStatus::kDone);
    ASSERT_EQ(put.buffers, 1u);
    const auto got = p.fe->receive(Millis(2000));
    ASSERT_TRUE(got.ok()) << got.error;
    EXPECT_EQ(got.frame, frame);
    EXPECT_EQ(got.buffers, 1u);
    EXPECT_EQ(std::memcmp(got.header.data(), hdr, 10), 0);
    EXPECT_EQ(got.header[10], 1u);  // num_buffers
    EXPECT_EQ(got.header[11], 0u);
  }
  EXPECT_EQ(p.fe->counters().frames_received, 3u);
  EXPECT_GE(p.fe->counters().interrupts, 1u);
  // Buffers were re-posted: the device can take as many again.
  EXPECT_EQ(p.be->vq[0].available_count(), 256u);
  // Nothing more: a timeout, not an error.
  const auto none = p.fe->receive(Millis(20));
  EXPECT_EQ(none.status, VhostUserFrontend::Received::Status::kTimeout);
}

TEST(VhostUserFrontendTest, AFrameSpanningSeveralMergeableBuffersIsReassembled) {
  VhostUserFrontend::Options o;
  o.rx_buffer_size = 256 + 12;
  o.rx_buffer_count = 16;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  ASSERT_TRUE(p.fe->has(vu::kFMrgRxbuf));
  const uint8_t hdr[12] = {};
  const std::vector<uint8_t> frame = test_frame(1000, 3);
  const auto put = p.be->put_rx(frame, hdr);
  ASSERT_EQ(put.status, vh::Virtqueue::RxStatus::kDone);
  EXPECT_EQ(put.buffers, 4u);  // 12 + 1000 bytes in 268-byte buffers
  const auto got = p.fe->receive(Millis(2000));
  ASSERT_TRUE(got.ok()) << got.error;
  EXPECT_EQ(got.buffers, 4u);
  EXPECT_EQ(got.header[10], 4u);
  EXPECT_EQ(got.frame, frame);
  // Many more frames than buffers: the re-posted buffers keep the ring going.
  for (int i = 0; i < 20; ++i) {
    const std::vector<uint8_t> f = test_frame(300 + i, static_cast<uint8_t>(i));
    ASSERT_EQ(p.be->put_rx(f, hdr).status, vh::Virtqueue::RxStatus::kDone) << i;
    const auto r = p.fe->receive(Millis(2000));
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.frame, f);
    EXPECT_EQ(r.buffers, 2u);
  }
}

TEST(VhostUserFrontendTest, WithoutMrgRxbufEachFrameTakesOneBuffer) {
  VhostUserFrontend::Options o;
  o.wanted_features &= ~vu::kFMrgRxbuf;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  EXPECT_FALSE(p.fe->has(vu::kFMrgRxbuf));
  EXPECT_EQ(p.be->features & vh::feature::kNetMrgRxbuf, 0u);
  EXPECT_EQ(p.fe->header_size(), 12u);  // VERSION_1: the 12-byte header all the same
  const uint8_t hdr[12] = {};
  for (int i = 0; i < 3; ++i) {
    const std::vector<uint8_t> frame = test_frame(1500 + i, static_cast<uint8_t>(i));
    ASSERT_EQ(p.be->put_rx(frame, hdr).status, vh::Virtqueue::RxStatus::kDone);
  }
  for (int i = 0; i < 3; ++i) {
    const auto got = p.fe->receive(Millis(2000));
    ASSERT_TRUE(got.ok()) << got.error;
    EXPECT_EQ(got.buffers, 1u);
    EXPECT_EQ(got.frame, test_frame(1500 + i, static_cast<uint8_t>(i)));
  }
}

// ---- Notifications ---------------------------------------------------------------------------

TEST(VhostUserFrontendTest, EventIdxSuppressesKicksWhileTheBackendHasNotificationsOff) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  ASSERT_TRUE(p.fe->has(vu::kFEventIdx));
  p.be->kicks(1);
  const auto kicks = [&] { return p.fe->counters().kicks; };
  uint64_t k = kicks();
  ASSERT_EQ(p.fe->send(test_frame(60, 1)), "");  // A: avail_event 0 says kick
  EXPECT_EQ(kicks(), ++k);
  ASSERT_TRUE(p.be->pop_tx().has_value());       // avail_event = 1
  p.be->vq[1].disable_notification();            // avail_event stays at 1 from now on
  ASSERT_EQ(p.fe->send(test_frame(60, 2)), "");  // B: idx 1 -> 2 crosses 1: kick
  EXPECT_EQ(kicks(), ++k);
  ASSERT_TRUE(p.be->pop_tx().has_value());
  ASSERT_EQ(p.fe->send(test_frame(60, 3)), "");  // C: idx 2 -> 3: suppressed
  EXPECT_EQ(kicks(), k);
  EXPECT_EQ(p.fe->counters().kicks_suppressed, 1u);
  ASSERT_TRUE(p.be->pop_tx().has_value());
  EXPECT_FALSE(p.be->vq[1].enable_notification());  // avail_event = 3; nothing new
  ASSERT_EQ(p.fe->send(test_frame(60, 4)), "");     // D: kick again
  EXPECT_EQ(kicks(), ++k);
  EXPECT_EQ(p.be->kicks(1), 3u);  // A, B and D reached the eventfd
}

TEST(VhostUserFrontendTest, WithoutEventIdxNoNotifySuppressesKicks) {
  VhostUserFrontend::Options o;
  o.wanted_features &= ~vu::kFEventIdx;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  ASSERT_FALSE(p.fe->has(vu::kFEventIdx));
  p.be->kicks(1);
  p.be->vq[1].disable_notification();  // VRING_USED_F_NO_NOTIFY
  ASSERT_EQ(p.fe->send(test_frame(60, 1)), "");
  ASSERT_EQ(p.fe->send(test_frame(60, 2)), "");
  EXPECT_EQ(p.fe->counters().kicks_suppressed, 2u);
  EXPECT_EQ(p.be->kicks(1), 0u);
  EXPECT_TRUE(p.be->vq[1].enable_notification());  // two arrived meanwhile
  ASSERT_EQ(p.fe->send(test_frame(60, 3)), "");
  EXPECT_EQ(p.be->kicks(1), 1u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.be->pop_tx().has_value());
}

TEST(VhostUserFrontendTest, UsedEventWrittenAfterConsumingLetsTheBackendSkipInterrupts) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  const uint8_t hdr[12] = {};
  ASSERT_EQ(p.be->put_rx(test_frame(60, 1), hdr).status, vh::Virtqueue::RxStatus::kDone);
  ASSERT_TRUE(p.fe->receive(Millis(2000)).ok());  // used_event = 1
  const uint64_t interrupts = p.fe->counters().interrupts;
  iovec iov[8];
  vh::Chain scratch;
  scratch.iov = iov;
  const vh::ConstPiece piece{hdr, sizeof hdr};
  // Frame 2 crosses used_event: interrupt. Frame 3, with the driver not caught up: none.
  for (bool want : {true, false}) {
    ASSERT_EQ(p.be->vq[0].put_rx_mergeable(hdr, {&piece, 1}, 0, scratch).status,
              vh::Virtqueue::RxStatus::kDone);
    p.be->vq[0].flush(1);
    EXPECT_EQ(p.be->vq[0].need_notify(), want);
    if (want) p.be->interrupt(0);
  }
  ASSERT_TRUE(p.fe->receive(Millis(2000)).ok());
  ASSERT_TRUE(p.fe->receive(Millis(2000)).ok());
  EXPECT_EQ(p.fe->counters().interrupts, interrupts + 1);
  EXPECT_EQ(p.fe->counters().frames_received, 3u);
}

TEST(VhostUserFrontendTest, TheBackendsErrorEventfdIsSeen) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  EXPECT_FALSE(p.fe->vring_error_signalled(1));
  const uint64_t one = 1;
  ASSERT_EQ(write(p.be->err[1], &one, sizeof one), 8);
  EXPECT_FALSE(p.fe->vring_error_signalled(0));
  EXPECT_TRUE(p.fe->vring_error_signalled(1));
  EXPECT_FALSE(p.fe->vring_error_signalled(1));
}

// ---- Hostile rings ---------------------------------------------------------------------------

TEST(VhostUserFrontendTest, HostileTxRingsMakeTheBackendReportTheRingError) {
  using H = VhostUserFrontend::HostileTx;
  const std::pair<H, vh::RingError> cases[] = {
      {H::kOutsideMemory, vh::RingError::kBufferOutsideMemory},
      {H::kLoop, vh::RingError::kChainTooLong},
      {H::kIndirectBadLength, vh::RingError::kIndirectBadLength},
      {H::kAvailIdxTooFar, vh::RingError::kAvailIdxTooFar},
  };
  for (const auto& [kind, want] : cases) {
    SCOPED_TRACE(static_cast<int>(kind));
    Pair p(default_options());
    ASSERT_EQ(p.bring_up(), "");
    // A good frame first, still in flight: the hostile chain must not disturb it.
    ASSERT_EQ(p.fe->send(test_frame(60, 1)), "");
    ASSERT_TRUE(p.be->pop_tx().has_value());
    p.be->kicks(1);
    p.fe->break_tx(kind);
    EXPECT_EQ(p.be->kicks(1), 1u);
    iovec iov[8];
    vh::Chain chain;
    chain.iov = iov;
    EXPECT_EQ(p.be->vq[1].pop(chain), vh::Virtqueue::Pop::kError);
    EXPECT_EQ(p.be->vq[1].error(), want) << vh::ring_error_text(p.be->vq[1].error());
  }
}

TEST(VhostUserFrontendTest, RawDescriptorsReachTheBackendAsWritten) {
  // The primitives break_tx() is made of: a descriptor crossing from the first region into the
  // second is two pieces for the back-end; one ending past guest memory is refused.
  VhostUserFrontend::Options o;
  o.memory_layout = VhostUserFrontend::MemoryLayout::kTwoRegionsTwoFds;
  Pair p(o);
  ASSERT_EQ(p.bring_up(), "");
  const uint64_t boundary = o.guest_phys_base + o.memory_size / 2;
  const std::vector<uint8_t> bytes = test_frame(100, 5);
  ASSERT_TRUE(p.fe->write_guest(boundary - 40, bytes));
  p.fe->write_desc(1, 7, boundary - 40, 100, 0, 0);
  p.fe->push_avail(1, 7);
  iovec iov[8];
  vh::Chain chain;
  chain.iov = iov;
  ASSERT_EQ(p.be->vq[1].pop(chain), vh::Virtqueue::Pop::kChain);
  EXPECT_EQ(chain.head, 7u);
  ASSERT_EQ(chain.readable_count, 2u);
  std::vector<uint8_t> seen;
  for (const iovec& v : chain.readable()) {
    const auto* b = static_cast<const uint8_t*>(v.iov_base);
    seen.insert(seen.end(), b, b + v.iov_len);
  }
  EXPECT_EQ(seen, bytes);
  p.fe->write_desc(1, 8, o.guest_phys_base + o.memory_size - 10, 11, 0, 0);
  p.fe->push_avail(1, 8);
  EXPECT_EQ(p.be->vq[1].pop(chain), vh::Virtqueue::Pop::kError);
  EXPECT_EQ(p.be->vq[1].error(), vh::RingError::kBufferOutsideMemory);
}

TEST(VhostUserFrontendTest, ABadUsedEntryIsAReceiveErrorNotACrash) {
  Pair p(default_options());
  ASSERT_EQ(p.bring_up(), "");
  // The device hands back an RX buffer with a length shorter than the net header.
  p.be->vq[0].push_used(44, 0);  // buffer 44 is posted, but length 0 is below the header
  const auto got = p.fe->receive(Millis(500));
  EXPECT_EQ(got.status, VhostUserFrontend::Received::Status::kError);
  EXPECT_NE(got.error, "");
}

}  // namespace
}  // namespace qswitch
