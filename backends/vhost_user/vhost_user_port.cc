// backends/vhost_user/vhost_user_port.cc: see the header.
#include "backends/vhost_user/vhost_user_port.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <memory>
#include <variant>

#include "backends/runtime/datagram_tx.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/offload_intake.h"
#include "backends/vhost_user/guest_memory.h"
#include "backends/vhost_user/tx_loans.h"
#include "backends/vhost_user/vhost_user_msg.h"
#include "backends/vhost_user/virtqueue.h"
#include "switch/offload.h"
#include "switch/packed_frames.h"

namespace qswitch::backends::vhost_user {

namespace {

// What GET_FEATURES answers: the ring features, mergeable buffers and the offloads both ways
// (the switch cuts large segments for ports that take only ordinary frames: switch/offload.h);
// no multiqueue.
constexpr uint64_t kPortFeatures =
    feature::kVersion1 | feature::kRingIndirectDesc | feature::kRingEventIdx |
    feature::kNetMrgRxbuf | feature::kNetMtu | feature::kNetMac | feature::kNetStatus |
    feature::kProtocolFeatures | feature::kNetCsum | feature::kNetHostTso4 | feature::kNetHostTso6 |
    feature::kNetHostEcn | feature::kNetGuestCsum | feature::kNetGuestTso4 |
    feature::kNetGuestTso6 | feature::kNetGuestEcn;
static_assert((kPortFeatures & ~feature::kOffered & ~feature::kNetStatus) == 0);

constexpr uint32_t kRxQueue = 0;  // the guest's receive queue: we write into it
constexpr uint32_t kTxQueue = 1;  // the guest's transmit queue: we read from it
constexpr uint32_t kQueues = 2;
constexpr uint32_t kChainsPerWake = 256;   // transmit chains taken per wake-up (then next turn)
constexpr uint32_t kMaxPieces = 256;       // iovec pieces of one chain (QEMU's limit is 1024)
constexpr uint32_t kMessagesPerWake = 64;  // control messages handled per wake-up
constexpr uint32_t kLegacyHdrSize = 10;    // struct virtio_net_hdr without num_buffers
constexpr uint64_t kLoanCheckMs = 100;     // how often lent frames are checked on (check_loans())
// Receive chunks (sw::PackedFrames, 256 KiB each): a fast guest's frames wait in output queues (up
// to
// --queue-size each) before their chunks come back; none is touched until used.
constexpr uint32_t kRxChunks = 64;

std::string errno_text(int err) { return std::strerror(err); }

// Kick and call fds are the front-end's (eventfds from QEMU): make sure that reading or writing
// one never blocks the loop, whatever a hostile front-end passed. false with `error`.
bool set_nonblocking(int fd, std::string& error) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    error = "an eventfd that cannot be made non-blocking: " + errno_text(errno);
    return false;
  }
  return true;
}

// The large segments a guest with these features takes whole (virtio 1.2 5.1.3.1: GUEST_TSO4/6
// and GUEST_ECN need GUEST_CSUM).
uint8_t offload_caps_for(uint64_t f) {
  if ((f & feature::kNetGuestCsum) == 0) return 0;
  uint8_t caps = 0;
  if ((f & feature::kNetGuestTso4) != 0) caps |= sw::Port::kTakesTso4;
  if ((f & feature::kNetGuestTso6) != 0) caps |= sw::Port::kTakesTso6;
  if ((f & feature::kNetGuestEcn) != 0) caps |= sw::Port::kTakesEcn;
  return caps;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

class VhostUserPort;

struct Queue {
  VringConfig config;
  Virtqueue vq;
  io::Fd kick;
  io::Fd call;
  io::UvHandle<uv_poll_t> kick_poll;
  bool enabled = false;
  bool running = false;
};

class VhostUserPort final : public LoopPort, private TxLoans::Lender {
 public:
  VhostUserPort(SwitchLoop& loop, io::Fd socket, std::string peer)
      : LoopPort(loop),
        socket_(std::move(socket)),
        peer_(std::move(peer)),
        rx_(kRxChunks),
        tx_(loop.config().queue_size) {
    rx_.set_pressure(&loop.fabric());
    uv_poll_init_socket(loop.uv(), socket_poll_.get(), socket_.get());
    socket_poll_.get()->data = this;
    uv_poll_start(socket_poll_.get(), UV_READABLE, [](uv_poll_t* h, int status, int) {
      if (h->data != nullptr) static_cast<VhostUserPort*>(h->data)->on_socket(status);
    });
    uv_idle_init(loop.uv(), more_.get());
    more_.get()->data = this;
    uv_idle_init(loop.uv(), publish_.get());
    publish_.get()->data = this;
    uv_timer_init(loop.uv(), loan_check_.get());
    loan_check_.get()->data = this;
    set_takes_split(true);  // put_one() copies a frame from its pieces
  }

  void enqueue(const sw::Frame& frame) override {
    if (closed()) return;
    if (!queues_[kRxQueue].running) {
      not_running_ += 1;
      return;
    }
    queue_output(tx_, frame);
  }

  void flush() override {
    if (closed()) return;
    Queue& q = queues_[kRxQueue];
    if (!q.running) return;
    bool wrote = false;
    for (;;) {
      if (tx_.empty()) break;
      const RxStatus s = put_one(q);
      if (s == RxStatus::kDone) {
        wrote = true;
        continue;
      }
      if (s == RxStatus::kError) {
        ring_error(q);
        return;
      }
      // No buffer: ask for a kick; buffers that came meanwhile are tried at once.
      if (q.vq.enable_notification()) continue;
      rx_no_room_ += 1;
      break;
    }
    if (memory_gone()) return;
    if (wrote) notify(q);
  }

  std::string describe() const override { return peer_; }
  const char* kind() const override { return "vhost-user"; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }
  bool congested(sw::Millis now) override { return output_congested(tx_, now); }
  void release_chunks(const sw::ChunkOwner& pool) override { release_output(tx_, pool); }

  void for_each_extra_counter(const ExtraCounterFn& f) const override {
    f({"vhost_kicks", "Kicks (eventfd notifications) received from the guest."}, kicks_);
    f({"vhost_interrupts", "Interrupts (call eventfd signals) sent to the guest."}, interrupts_);
    f({"vhost_descriptors", "Descriptors taken from the guest's rings."}, descriptors_);
    f({"vhost_tx_lent",
       "Frames from the guest lent to the switch out of its memory (zero copy), their buffers "
       "handed back once every output wrote them."},
      lent_);
    f({"vhost_rx_no_room", "Times frames for the guest waited for it to post receive buffers."},
      rx_no_room_);
    f({"vhost_rx_too_large",
       "Frames for the guest dropped because one receive buffer could not hold them (no "
       "mergeable buffers)."},
      rx_too_large_);
    f({"vhost_not_running",
       "Frames for the guest dropped while its receive queue did not run (or queued when its "
       "device restarted)."},
      not_running_);
    f({"vhost_gso_frames",
       "Large TCP segments (TSO) received from the guest; the switch cuts them for ports that "
       "take only ordinary frames (gso_cut)."},
      intake_.gso_frames());
    f({"vhost_csum_completed", "Checksums the guest left to complete (CSUM) completed here."},
      intake_.csum_completed());
    f({"vhost_bad_offload",
       "Frames from the guest dropped for a virtio-net header Linux would refuse too."},
      intake_.bad_offload());
    f({"vhost_ring_errors", "Malformed rings (the port was closed)."}, ring_errors_);
    f({"vhost_protocol_errors", "Malformed or refused vhost-user messages (the port was closed)."},
      protocol_errors_);
  }

  bool retry_paused_read() override {
    if (still_throttled(throttled_by_)) return true;
    if (need_chunk_) {
      if (!rx_.chunk_available() || !rx_.next_chunk()) return true;
      need_chunk_ = false;
    }
    paused_ = false;
    drain_tx();
    return false;
  }

 private:
  using RxStatus = Virtqueue::RxStatus;

  // ---- Shutdown -------------------------------------------------------------------------------
  uint64_t shutdown_io() override {
    socket_poll_.get()->data = nullptr;
    uv_poll_stop(socket_poll_.get());
    socket_poll_.close();
    more_.get()->data = nullptr;
    uv_idle_stop(more_.get());
    more_.close();
    for (Queue& q : queues_) stop_queue(q);
    publish_.get()->data = nullptr;
    uv_idle_stop(publish_.get());
    publish_.close();
    loan_check_.get()->data = nullptr;
    uv_timer_stop(loan_check_.get());
    loan_check_.close();
    const FdList pending = reader_.take_pending_fds();  // a message cut short: its fds
    for (int fd : pending.view()) ::close(fd);
    socket_.reset();
    return tx_.clear();
  }

  // ---- Control messages -----------------------------------------------------------------------
  void on_socket(int status) {
    if (status < 0) {
      close(std::string("vhost-user socket poll error: ") + uv_strerror(status));
      return;
    }
    for (uint32_t m = 0; m < kMessagesPerWake && !closed(); ++m) {
      const std::span<uint8_t> space = reader_.write_space();
      iovec iov{space.data(), space.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(socket_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        close("vhost-user socket read error: " + errno_text(errno));
        return;
      }
      FdList fds;
      bool too_many_fds = false;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int fd = -1;
          std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
          if (fds.count < kMaxFds) {
            fds.fd[fds.count++] = fd;
          } else {
            ::close(fd);
            too_many_fds = true;
          }
        }
      }
      if (n == 0) {
        for (int fd : fds.view()) ::close(fd);
        close("front-end closed the connection");
        return;
      }
      if (too_many_fds || (msg.msg_flags & MSG_CTRUNC) != 0) {
        for (int fd : fds.view()) ::close(fd);
        protocol_error("more file descriptors than any message carries (at most " +
                       std::to_string(kMaxFds) + ")");
        return;
      }
      ReadResult r = reader_.commit(static_cast<size_t>(n), fds.view());
      if (r.status == ReadResult::Status::kError) {
        for (int fd : r.fds_to_close) ::close(fd);
        protocol_error(r.error);
        return;
      }
      if (r.status == ReadResult::Status::kMessage) handle(r.message);
    }
  }

  void protocol_error(const std::string& why) {
    protocol_errors_ += 1;
    close("vhost-user protocol error: " + why);
  }

  bool send_reply(std::span<const uint8_t> bytes) {
    const ssize_t n =
        ::send(socket_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(bytes.size())) return true;
    protocol_error(n < 0 ? "reply not sent: " + errno_text(errno)
                         : "reply not sent whole (the front-end is not reading)");
    return false;
  }

  void reply_u64(Request request, uint64_t value) {
    std::array<uint8_t, kMaxReplySize> out{};
    send_reply({out.data(), encode_u64_reply(request, value, out)});
  }

  // Takes ownership of every fd in `m`, whatever happens.
  void handle(Message& m) {
    std::array<io::Fd, kMaxFds> fds;
    for (uint32_t i = 0; i < m.fds.count; ++i) fds[i] = io::Fd::adopt(m.fds.fd[i]);
    bool acked = false;  // the request has a reply of its own
    std::string error;
    switch (m.request) {
      case Request::kGetFeatures:
        reply_u64(m.request, kPortFeatures);
        acked = true;
        break;
      case Request::kSetFeatures: {
        const uint64_t f = std::get<uint64_t>(m.payload);
        if ((f & ~kPortFeatures) != 0) {
          error = "SET_FEATURES " + hex(f) + " asks for features not offered (" +
                  hex(f & ~kPortFeatures) + "; offered " + hex(kPortFeatures) + ")";
          break;
        }
        features_ = f;
        set_offload_caps(offload_caps_for(f));
        // A device (re)start: frames still queued from before were checked against the old
        // features (their offload state, their header size) and belong to the guest before
        // its reset.
        not_running_ += tx_.clear();
        if ((f & feature::kProtocolFeatures) == 0) {
          for (Queue& q : queues_) q.enabled = true;
        }
        for (Queue& q : queues_) start_if_ready(q);
        break;
      }
      case Request::kGetProtocolFeatures:
        reply_u64(m.request, protocol_feature::kOffered);
        acked = true;
        break;
      case Request::kSetProtocolFeatures: {
        const uint64_t f = std::get<uint64_t>(m.payload);
        if ((f & ~protocol_feature::kOffered) != 0) {
          error = "SET_PROTOCOL_FEATURES " + hex(f) + " asks for protocol features not offered (" +
                  hex(protocol_feature::kOffered) + ")";
          break;
        }
        protocol_features_ = f;
        break;
      }
      case Request::kSetOwner:
      case Request::kSetConfig:  // nothing in the config space is writable
      case Request::kNetSetMtu:  // the guest's MTU: frames are checked against kMaxFrameSize
        break;
      case Request::kResetOwner:
        for (Queue& q : queues_) stop_queue(q);
        features_ = 0;
        set_offload_caps(0);
        not_running_ += tx_.clear();
        break;
      case Request::kSetMemTable:
        error = set_mem_table(std::get<MemoryTable>(m.payload), fds);
        break;
      case Request::kSetVringNum:
      case Request::kSetVringBase:
      case Request::kSetVringEnable:
      case Request::kGetVringBase: {
        const VringState s = std::get<VringState>(m.payload);
        if (s.index >= kQueues) {
          error = std::string(request_name(m.request)) + " for queue " + std::to_string(s.index) +
                  " (there are " + std::to_string(kQueues) + ")";
          break;
        }
        Queue& q = queues_[s.index];
        if (m.request == Request::kSetVringNum) {
          q.config.num = s.num;
        } else if (m.request == Request::kSetVringBase) {
          q.config.last_avail_idx = static_cast<uint16_t>(s.num);
        } else if (m.request == Request::kSetVringEnable) {
          q.enabled = s.num != 0;
          if (q.enabled) {
            start_if_ready(q);
          } else {
            pause_queue(q);
          }
        } else {
          // GET_VRING_BASE stops the ring (vhost-user.rst) and says where it stopped.
          const uint16_t base = q.running ? q.vq.last_avail_idx() : q.config.last_avail_idx;
          stop_queue(q);
          q.config.last_avail_idx = base;
          std::array<uint8_t, kMaxReplySize> out{};
          send_reply({out.data(), encode_vring_state_reply(m.request, {s.index, base}, out)});
          acked = true;
        }
        break;
      }
      case Request::kSetVringAddr: {
        const VringAddr& a = std::get<VringAddr>(m.payload);
        if (a.index >= kQueues) {
          error = "SET_VRING_ADDR for queue " + std::to_string(a.index);
          break;
        }
        Queue& q = queues_[a.index];
        q.config.desc_addr = a.desc_user_addr;
        q.config.avail_addr = a.avail_user_addr;
        q.config.used_addr = a.used_user_addr;
        break;
      }
      case Request::kSetVringKick:
      case Request::kSetVringCall:
      case Request::kSetVringErr: {
        const VringFile& v = std::get<VringFile>(m.payload);
        if (v.index >= kQueues) {
          error = std::string(request_name(m.request)) + " for queue " + std::to_string(v.index);
          break;
        }
        Queue& q = queues_[v.index];
        if (m.request == Request::kSetVringKick) {
          if (v.no_fd) {
            error = "SET_VRING_KICK without an fd (polling mode) is not supported";
            break;
          }
          if (!set_nonblocking(fds[0].get(), error)) break;
          stop_queue(q);
          q.kick = std::move(fds[0]);
          start_if_ready(q);
        } else if (m.request == Request::kSetVringCall) {
          if (!v.no_fd && !set_nonblocking(fds[0].get(), error)) break;
          q.call = v.no_fd ? io::Fd() : std::move(fds[0]);
        }
        // SET_VRING_ERR: we never report ring errors that way (the port closes); its fd goes.
        break;
      }
      case Request::kGetQueueNum:
        reply_u64(m.request, 1);
        acked = true;
        break;
      case Request::kSetBackendReqFd:
        break;  // no back-end requests are made; the fd is closed
      case Request::kGetConfig: {
        NetConfig c;
        const auto space = encode_net_config(c);
        std::array<uint8_t, kMaxReplySize> out{};
        send_reply(
            {out.data(), encode_config_reply(std::get<DeviceConfig>(m.payload), space, out)});
        acked = true;
        break;
      }
      case Request::kGetMaxMemSlots:
        reply_u64(m.request, kMaxRamSlots);
        acked = true;
        break;
      default:
        error = std::string(request_name(m.request)) +
                " (its protocol feature was not negotiated: CONFIGURE_MEM_SLOTS is not offered)";
        break;
    }
    if (closed()) return;
    if (!error.empty()) {
      if (m.need_reply() && !acked) {
        std::array<uint8_t, kMaxReplySize> out{};
        const size_t n = encode_reply_ack(m.request, false, out);
        (void)::send(socket_.get(), out.data(), n, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      protocol_error(error);
      return;
    }
    if (m.need_reply() && !acked && (protocol_features_ & protocol_feature::kReplyAck) != 0) {
      std::array<uint8_t, kMaxReplySize> out{};
      send_reply({out.data(), encode_reply_ack(m.request, true, out)});
    }
  }

  std::string set_mem_table(const MemoryTable& table, std::array<io::Fd, kMaxFds>& fds) {
    std::array<int, kMaxFds> raw{};
    for (uint32_t i = 0; i < table.count; ++i) {
      const MemoryRegion& r = table.regions[i];
      struct stat st {};
      if (::fstat(fds[i].get(), &st) != 0) {
        return "memory region " + std::to_string(i) + ": fstat: " + errno_text(errno);
      }
      const uint64_t file_size = st.st_size < 0 ? 0 : static_cast<uint64_t>(st.st_size);
      if (r.mmap_offset > file_size || r.memory_size > file_size - r.mmap_offset) {
        return "memory region " + std::to_string(i) + " (offset " + hex(r.mmap_offset) + ", size " +
               hex(r.memory_size) + ") lies beyond its file (" + hex(file_size) + " bytes)";
      }
      raw[i] = fds[i].get();
    }
    bool sealed = true;
    for (uint32_t i = 0; i < table.count; ++i) sealed = sealed && sealed_against_shrinking(raw[i]);
    GuestMemory fresh;
    int map_errno = 0;
    const MemoryError e =
        GuestMemory::map(table.view(), {raw.data(), table.count}, fresh, &map_errno);
    if (e != MemoryError::kNone) {
      std::string why = std::string("memory table refused: ") + memory_error_text(e);
      if (e == MemoryError::kMmapFailed) why += ": " + errno_text(map_errno);
      return why;
    }
    // The running rings point into the old mapping: set them up again in the new one, from
    // where they are (the transmit queue's lent buffers handed back first).
    end_loans();
    for (Queue& q : queues_) {
      if (q.running) q.config.last_avail_idx = q.vq.last_avail_idx();
    }
    memory_ = std::make_shared<GuestMemory>(std::move(fresh));
    lendable_ = sealed;
    for (Queue& q : queues_) {
      if (!q.running) continue;
      q.running = false;
      start_if_ready(q);
      if (closed()) break;
    }
    return {};
  }

  // ---- Queues ---------------------------------------------------------------------------------
  void start_if_ready(Queue& q) {
    if (closed() || q.running || !q.kick.valid() || !q.enabled || memory_ == nullptr) return;
    q.config.event_idx = (features_ & feature::kRingEventIdx) != 0;
    const RingError e = q.vq.setup(*memory_, q.config);
    if (e != RingError::kNone) {
      ring_error(q);
      return;
    }
    q.kick_poll.renew();
    const int init = uv_poll_init(loop_.uv(), q.kick_poll.get(), q.kick.get());
    if (init != 0) {
      // Not an eventfd, pipe or socket (a regular file cannot be polled).
      protocol_error(std::string("the kick fd cannot be polled: ") + uv_strerror(init));
      return;
    }
    q.running = true;
    q.kick_poll.get()->data = this;
    auto cb = [](uv_poll_t* h, int status, int) {
      if (h->data == nullptr) return;
      auto* self = static_cast<VhostUserPort*>(h->data);
      self->on_kick(h, status);
    };
    uv_poll_start(q.kick_poll.get(), UV_READABLE, cb);
    if (&q == &queues_[kTxQueue] && lendable_) {
      loans_ = TxLoans::create(q.vq.num(), memory_, this);
    }
    // Buffers may be waiting already (a queue restarted, or a guest that never waits for us).
    if (&q == &queues_[kTxQueue]) {
      drain_tx();
    } else {
      flush();
    }
  }

  // Disabled (SET_VRING_ENABLE 0): stop reading the ring, keep its state.
  void pause_queue(Queue& q) {
    if (!q.running) return;
    if (&q == &queues_[kTxQueue]) end_loans();
    q.config.last_avail_idx = q.vq.last_avail_idx();
    q.running = false;
    q.kick_poll.close();
  }

  void stop_queue(Queue& q) {
    pause_queue(q);
    q.kick.reset();
  }

  void on_kick(uv_poll_t* h, int status) {
    Queue& q = h == queues_[kTxQueue].kick_poll.get() ? queues_[kTxQueue] : queues_[kRxQueue];
    if (status < 0) {
      close(std::string("vhost-user kick fd poll error: ") + uv_strerror(status));
      return;
    }
    // One read empties an eventfd (its counter); anything else the front-end passed as a kick fd
    // is non-blocking (SET_VRING_KICK), so a read never blocks the loop.
    uint64_t count = 0;
    if (::read(q.kick.get(), &count, sizeof count) > 0) kicks_ += 1;
    if (&q == &queues_[kTxQueue]) {
      drain_tx();
    } else {
      flush();
    }
    if (!closed()) memory_gone();
  }

  void notify(Queue& q) {
    if (!q.vq.need_notify() || !q.call.valid()) return;
    const uint64_t one = 1;
    if (::write(q.call.get(), &one, sizeof one) == static_cast<ssize_t>(sizeof one)) {
      interrupts_ += 1;
    }
  }

  // The front-end shrank a memory region's file under its mapping (sigbus_guard.h): what was
  // read from the vanished pages is zeros. Closes the port; true then.
  bool memory_gone() {
    if (memory_ == nullptr || !memory_->faulted()) return false;
    ring_errors_ += 1;
    close("vhost-user guest memory vanished: the front-end shrank a memory region's file");
    return true;
  }

  void ring_error(Queue& q) {
    ring_errors_ += 1;
    const uint32_t index = &q == &queues_[kTxQueue] ? kTxQueue : kRxQueue;
    close("vhost-user ring error on queue " + std::to_string(index) + ": " +
          ring_error_text(q.vq.error()));
  }

  // ---- Guest to switch ------------------------------------------------------------------------
  uint32_t header_size() const {
    return (features_ & (feature::kVersion1 | feature::kNetMrgRxbuf)) != 0 ? kNetHdrMrgSize
                                                                           : kLegacyHdrSize;
  }

  void drain_tx() {
    uv_idle_stop(more_.get());
    Queue& q = queues_[kTxQueue];
    if (closed() || !q.running || paused_) return;
    const uint32_t hdr = header_size();
    const std::span<sw::Frame> burst = loop_.burst();
    uint32_t budget = kChainsPerWake;
    uint32_t got = 0;  // frames in burst[]
    bool empty = false;
    q.vq.disable_notification();
    while (budget > 0) {
      Chain chain{iov_};
      const Virtqueue::Pop p = q.vq.pop(chain);
      if (p == Virtqueue::Pop::kError) {
        ring_error(q);
        return;
      }
      if (p == Virtqueue::Pop::kEmpty) {
        // Ask for a kick; chains that came meanwhile are taken now.
        if (q.vq.enable_notification()) {
          q.vq.disable_notification();
          continue;
        }
        empty = true;
        break;
      }
      const bool length_ok = frame_length_ok(chain, hdr);
      const uint32_t len = length_ok ? chain.readable_size - hdr : 0;
      const uint8_t* in_place = length_ok && loans_ != nullptr && len >= TxLoans::kMinLend
                                    ? ordinary_frame(chain, hdr)
                                    : nullptr;
      if (in_place != nullptr && loans_->lend(chain.head, in_place, len, burst[got])) {
        // Zero copy: the buffer goes back to the guest once every output wrote the frame
        // (returned()).
        ++got;
        ++lent_;
      } else if (length_ok) {
        uint8_t* dst = rx_.reserve(len);
        if (dst == nullptr) {
          // The chunk is full: what it holds goes to the switch, then a fresh chunk.
          q.vq.undo_pop();
          if (!forward(q, got)) return;
          got = 0;
          if (!rx_.next_chunk()) {
            need_chunk_ = true;
            counters_.rx_paused += 1;
            pause();
            return;
          }
          continue;
        }
        uint8_t header[kNetHdrMrgSize] = {};
        copy_chain(chain, hdr, header, dst);
        sw::FrameOffload offload;
        // A checksum left to do is completed in our copy; a large segment is checked and keeps
        // its state for the switch; a header Linux would refuse drops the frame.
        if (intake_.take(header, hdr, dst, len, offload, loop_.now(), id(), "", peer_)) {
          burst[got] = rx_.commit(len);
          burst[got++].offload = offload;
        }
        q.vq.fill(unpublished_++, chain.head, 0);
      } else {
        q.vq.fill(unpublished_++, chain.head, 0);
      }
      --budget;
      descriptors_ += chain.descriptor_count;
      // The burst is full, or every descriptor of a small ring is in flight.
      if (got == burst.size() || unpublished_ == q.vq.num()) {
        if (!forward(q, got)) return;
        got = 0;
      }
    }
    if (!forward(q, got)) return;
    if (loans_ != nullptr && loans_->outstanding() > 0 &&
        uv_is_active(reinterpret_cast<uv_handle_t*>(loan_check_.get())) == 0) {
      uv_timer_start(
          loan_check_.get(),
          [](uv_timer_t* h) {
            if (h->data != nullptr) static_cast<VhostUserPort*>(h->data)->check_loans();
          },
          kLoanCheckMs, 0);
    }
    // Out of budget with chains left: go on next turn (notifications stay off meanwhile).
    if (!empty) {
      uv_idle_start(more_.get(), [](uv_idle_t* h) {
        if (h->data != nullptr) static_cast<VhostUserPort*>(h->data)->drain_tx();
      });
    }
  }

  // Hands the `got` frames to the switch and the chains done with back to the guest; false
  // when that closed the port or a congested destination paused this one.
  bool forward(Queue& q, uint32_t got) {
    const std::span<sw::Frame> frames = loop_.burst().first(got);
    if (memory_gone()) {  // what was copied may be zeros: forward none of it
      drop_loans(frames);
      return false;
    }
    sw::PortId congested = sw::kNoPort;
    if (got > 0) congested = loop_.fabric().receive(*this, frames, loop_.now());
    drop_loans(frames);  // the outputs that queued a lent frame hold it now
    if (closed()) return false;
    publish(q);
    if (congested != sw::kNoPort && throttled_by_ == sw::kNoPort) {
      throttled_by_ = congested;
      counters_.rx_throttled += 1;
      pause();
      return false;
    }
    return true;
  }

  // Our references on the frames we lent (tx_loans.h); a frame no output kept comes back now.
  static void drop_loans(std::span<const sw::Frame> frames) {
    for (const sw::Frame& f : frames) {
      if (f.split()) sw::chunk_unref(f.chunk);
    }
  }

  // TxLoans::Lender: every output is done with the frame lent from chain `head`.
  void returned(uint16_t head) override {
    Queue& q = queues_[kTxQueue];
    if (!q.running) return;  // cannot happen: the loans end before the queue stops
    q.vq.fill(unpublished_++, head, 0);
    ++returns_;
    // Published on the next loop turn, with every other buffer that came back meanwhile (or
    // sooner by drain_tx()).
    uv_idle_start(publish_.get(), [](uv_idle_t* h) {
      uv_idle_stop(h);
      auto* self = static_cast<VhostUserPort*>(h->data);
      if (self != nullptr && self->queues_[kTxQueue].running)
        self->publish(self->queues_[kTxQueue]);
    });
  }

  // Publishes the transmit queue's used entries filled so far (buffers back to the guest).
  void publish(Queue& q) {
    if (unpublished_ == 0) return;
    q.vq.flush(unpublished_);
    unpublished_ = 0;
    notify(q);
  }

  // Every kLoanCheckMs while frames are lent: when none came back since the last look, or half
  // the ring is out, an output is sitting on the guest's buffers (a stuck peer, a paused guest):
  // the queues copy them out, so the guest can go on sending to everyone else.
  void check_loans() {
    if (closed() || loans_ == nullptr) return;
    const bool stalled = returns_ == returns_at_check_;
    returns_at_check_ = returns_;
    if (stalled || loans_->outstanding() >= queues_[kTxQueue].vq.num() / 2) {
      loop_.fabric().relieve(*loans_);
      publish(queues_[kTxQueue]);
    }
    if (loans_->outstanding() > 0) {
      uv_timer_start(
          loan_check_.get(),
          [](uv_timer_t* h) {
            if (h->data != nullptr) static_cast<VhostUserPort*>(h->data)->check_loans();
          },
          kLoanCheckMs, 0);
    }
  }

  // The transmit queue stops lending (it stops, or the memory table changes): the queues copy
  // what was lent out, which hands every buffer back while the ring is still ours, then the
  // loans are let go (tx_loans.h).
  void end_loans() {
    if (loans_ == nullptr) return;
    uv_timer_stop(loan_check_.get());
    if (loans_->outstanding() > 0) loop_.fabric().relieve(*loans_);
    if (queues_[kTxQueue].running) publish(queues_[kTxQueue]);
    loans_->end();
    loans_ = nullptr;
  }

  // Where the chain's frame lies in one piece of guest memory, when its virtio-net header asks
  // for nothing (no checksum to complete, no segment to cut: flags and gso_type zero, as
  // sw::take_frame_offload's fast path): a frame that can be lent as it is. Else nullptr.
  static const uint8_t* ordinary_frame(const Chain& chain, uint32_t hdr) {
    const std::span<iovec> r = chain.readable();
    if (r.empty() || r[0].iov_len < 2) return nullptr;
    const auto* h = static_cast<const uint8_t*>(r[0].iov_base);
    if (h[0] != 0 || h[1] != 0) return nullptr;
    size_t skip = hdr;
    size_t i = 0;
    while (i < r.size() && skip >= r[i].iov_len) {
      skip -= r[i].iov_len;
      ++i;
    }
    if (i + 1 != r.size()) return nullptr;  // the frame is in more than one piece
    return static_cast<const uint8_t*>(r[i].iov_base) + skip;
  }

  void pause() {
    paused_ = true;
    loop_.pause_read(*this);
  }

  bool frame_length_ok(const Chain& chain, uint32_t hdr) {
    const uint32_t total = chain.readable_size;
    if (total >= hdr + sw::kMinFrameSize && total - hdr <= sw::kMaxFrameSize) return true;
    counters_.drop_bad_length += 1;
    if (bad_length_log_.allow(loop_.now())) {
      io::log_line("port %u %s: dropped a %u-byte frame from the guest (frames are %u..%u bytes)",
                   id(), peer_.c_str(), total < hdr ? 0U : total - hdr, sw::kMinFrameSize,
                   sw::kMaxFrameSize);
    }
    return false;
  }

  // Copies the chain's readable bytes in one walk: the first `hdr` (the virtio-net header) to
  // `header`, the rest (the frame) to `out`. Guest memory is read once: what the switch checks
  // and forwards is this copy, whatever the guest writes meanwhile.
  static void copy_chain(const Chain& chain, uint32_t hdr, uint8_t* header, uint8_t* out) {
    uint32_t skip = hdr;
    for (const iovec& v : chain.readable()) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      size_t len = v.iov_len;
      if (skip > 0) {
        const size_t h = std::min<size_t>(skip, len);
        std::memcpy(header + (hdr - skip), p, h);
        skip -= static_cast<uint32_t>(h);
        p += h;
        len -= h;
      }
      std::memcpy(out, p, len);
      out += len;
    }
  }

  // ---- Switch to guest ------------------------------------------------------------------------
  RxStatus put_one(Queue& q) {
    const uint8_t* data = tx_.data(0);
    const uint32_t size = tx_.size(0);
    // Zero for an ordinary frame; a large segment's state (queued here only when the guest
    // takes it: offload_caps()).
    uint8_t header[kNetHdrMrgSize];
    sw::frame_offload_header(data, size, tx_.at(0).offload, header, kNetHdrMrgSize);
    // The frame's bytes: one piece, or a split frame's head and tail (switch/frame.h).
    const uint32_t head = tx_.head_size(0);
    const ConstPiece pieces[2] = {{data, head},
                                  {tx_.at(0).head != 0 ? tx_.at(0).tail() : nullptr, size - head}};
    const uint32_t piece_count = head == size ? 1 : 2;
    if ((features_ & feature::kNetMrgRxbuf) != 0) {
      Chain scratch{iov_};
      const Virtqueue::RxPut put = q.vq.put_rx_mergeable(header, {pieces, piece_count}, 0, scratch);
      if (put.status == RxStatus::kDone) {
        descriptors_ += put.buffers;
        q.vq.flush(put.buffers);
        sent(1, size);
      } else if (put.status == RxStatus::kTooLarge) {
        rx_too_large_ += 1;
        tx_.pop(1);
        return RxStatus::kDone;
      }
      return put.status;
    }
    // One buffer per frame: the header (num_buffers 1 for a virtio 1 driver) and the frame.
    Chain chain{iov_};
    const Virtqueue::Pop p = q.vq.pop(chain);
    if (p == Virtqueue::Pop::kError) return RxStatus::kError;
    if (p == Virtqueue::Pop::kEmpty) return RxStatus::kNoRoom;
    descriptors_ += chain.descriptor_count;
    const uint32_t hdr = header_size();
    if (chain.writable_size < hdr + size) {
      // Too small for the frame: the frame is dropped, the buffer stays the guest's.
      q.vq.undo_pop();
      rx_too_large_ += 1;
      tx_.pop(1);
      return RxStatus::kDone;
    }
    if (hdr == kNetHdrMrgSize) header[kNetHdrNumBuffersOffset] = 1;
    const uint8_t* src[3] = {header, pieces[0].data, pieces[1].data};
    const uint32_t len[3] = {hdr, pieces[0].size, pieces[1].size};
    const uint32_t parts = 1 + piece_count;
    uint32_t part = 0, done = 0;
    for (const iovec& v : chain.writable()) {
      auto* dst = static_cast<uint8_t*>(v.iov_base);
      size_t room = v.iov_len;
      while (room > 0 && part < parts) {
        const size_t n = std::min<size_t>(room, len[part] - done);
        std::memcpy(dst, src[part] + done, n);
        dst += n;
        room -= n;
        done += static_cast<uint32_t>(n);
        if (done == len[part]) {
          ++part;
          done = 0;
        }
      }
      if (part == parts) break;
    }
    q.vq.push_used(chain.head, hdr + size);
    sent(1, size);
    return RxStatus::kDone;
  }

  void sent(uint32_t frames, uint32_t bytes) {
    output_progressed();
    tx_.pop(frames);
    counters_.tx_frames += frames;
    counters_.tx_bytes += bytes;
  }

  io::Fd socket_;
  io::UvHandle<uv_poll_t> socket_poll_;
  io::UvHandle<uv_idle_t> more_;  // runs while the transmit queue has more than one wake's share
  std::string peer_;
  MessageReader reader_;
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  std::shared_ptr<GuestMemory> memory_;  // shared with the TxLoans that lend from it
  bool lendable_ = false;                // every region sealed against shrinking (tx_loans.h)
  TxLoans* loans_ = nullptr;             // while the transmit queue runs with lendable memory
  uint32_t unpublished_ = 0;         // used entries of the transmit queue filled, not yet published
  uint64_t returns_ = 0;             // lent buffers handed back (returned())
  uint64_t returns_at_check_ = 0;    // returns_ at the last check_loans()
  io::UvHandle<uv_idle_t> publish_;  // publishes buffers handed back outside drain_tx()
  io::UvHandle<uv_timer_t> loan_check_;  // runs while frames are lent (check_loans())
  std::array<Queue, kQueues> queues_;
  sw::PackedFrames rx_;  // frames from the guest, copied out of its memory
  DatagramTx tx_;
  bool paused_ = false;
  bool need_chunk_ = false;  // paused until a receive chunk is free
  sw::PortId throttled_by_ = sw::kNoPort;
  std::array<iovec, kMaxPieces> iov_{};
  uint64_t kicks_ = 0;
  uint64_t interrupts_ = 0;
  uint64_t descriptors_ = 0;
  uint64_t lent_ = 0;
  uint64_t rx_no_room_ = 0;
  uint64_t rx_too_large_ = 0;
  uint64_t not_running_ = 0;
  uint64_t ring_errors_ = 0;
  uint64_t protocol_errors_ = 0;
  OffloadIntake intake_;  // the guest's virtio-net headers
  io::RateLimit bad_length_log_{3, 10'000};
};

}  // namespace

std::unique_ptr<LoopPort> make_vhost_user_port(SwitchLoop& loop, io::Fd socket, std::string peer) {
  return std::make_unique<VhostUserPort>(loop, std::move(socket), std::move(peer));
}

}  // namespace qswitch::backends::vhost_user
