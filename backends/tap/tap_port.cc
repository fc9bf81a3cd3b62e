// backends/tap/tap_port.cc: see the header.
#include "backends/tap/tap_port.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/runtime/datagram_rx.h"
#include "backends/runtime/datagram_tx.h"
#include "backends/runtime/io/fd.h"
#include "backends/runtime/io/log.h"
#include "backends/runtime/offload_intake.h"
#include "backends/runtime/polled_port.h"
#include "switch/offload.h"

namespace qswitch::backends {

namespace {

constexpr int kMaxWritesPerFlush = 1024;  // bounds one flush; the rest waits for the next turn

std::string errno_text(int err) { return std::strerror(err); }

// Errors that mean the device is gone or the fd is no longer a working tap.
bool device_gone(int err) {
  return err == EBADFD || err == ENODEV || err == ENXIO || err == EBADF || err == EPIPE;
}

class TapPort final : public PolledPort {
 public:
  // `vnet_hdr`: the bytes of virtio_net_hdr before each frame (0: none); `offloads`: the
  // kernel exchanges large TCP segments and partial checksums with us (TUNSETOFFLOAD).
  TapPort(SwitchLoop& loop, io::Fd fd, std::string name, uint32_t vnet_hdr, bool offloads)
      : PolledPort(loop, std::move(fd), FdKind::kOther),
        name_(std::move(name)),
        tx_(loop.config().queue_size),
        vnet_hdr_(vnet_hdr) {
    rx_.set_pressure(&loop.fabric());
    if (offloads) set_offload_caps(kTakesTso4 | kTakesTso6 | kTakesEcn);
    set_takes_split(true);  // written with writev (DatagramTx::iov)
  }

  void enqueue(const sw::Frame& frame) override {
    if (closed()) return;
    queue_output(tx_, frame);
  }

  void flush() override {
    if (closed()) return;
    for (int n = 0; n < kMaxWritesPerFlush && !tx_.empty(); ++n) {
      iovec iov[3];
      uint8_t hdr[sw::kVirtioNetHdrMrgSize];
      int count = 0;
      if (vnet_hdr_ != 0) {
        // Zero for an ordinary frame; a large segment's state (queued here only when the
        // kernel takes them: offload_caps()).
        sw::frame_offload_header(tx_.data(0), tx_.size(0), tx_.at(0).offload, hdr, vnet_hdr_);
        iov[count++] = iovec{hdr, vnet_hdr_};
      }
      count += tx_.iov(0, iov + count);
      const ssize_t written = ::writev(fd(), iov, count);
      if (written < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EINTR) break;
        if (err == EIO) {
          // The link is down (the kernel refuses frames until `ip link set NAME up`).
          link_down_ += 1;
          tx_.pop(1);
          if (link_down_log_.allow(loop_.now())) {
            io::log_line("port %u tap %s: link is down, dropping frames for it (%lu so far)", id(),
                         name_.c_str(), static_cast<unsigned long>(link_down_));
          }
          continue;
        }
        close(device_gone(err) ? "tap " + name_ + " is gone: " + errno_text(err)
                               : "tap " + name_ + " write error: " + errno_text(err));
        return;
      }
      output_progressed();
      const DatagramTx::Written w = tx_.pop(1);
      counters_.tx_frames += w.frames;
      counters_.tx_bytes += w.bytes;
    }
    set_want_write(!tx_.empty());
  }

  std::string describe() const override { return "tap:" + name_; }
  const char* kind() const override { return "tap"; }
  const std::string& name() const { return name_; }
  size_t queued_bytes() const override { return tx_.queued_bytes(); }

  bool congested(sw::Millis now) override { return output_congested(tx_, now); }
  void release_chunks(const sw::ChunkOwner& pool) override { release_output(tx_, pool); }

  void for_each_extra_counter(const ExtraCounterFn& f) const override {
    f({"tap_link_down", "Frames for the tap device dropped because its link was down."},
      link_down_);
    f({"tap_gso_frames",
       "Large TCP segments (TSO) read from the tap; the switch cuts them for ports that take only "
       "ordinary frames (gso_cut)."},
      intake_.gso_frames());
    f({"tap_csum_completed", "Checksums the kernel left to complete, completed here."},
      intake_.csum_completed());
    f({"tap_bad_offload",
       "Frames from the tap dropped for a virtio-net header Linux would refuse."},
      intake_.bad_offload());
  }

 private:
  uint64_t drop_output() override { return tx_.clear(); }
  bool can_read() override { return rx_.available() != 0; }

  void on_poll_error(int status) override {
    // epoll reports a deleted device as an error on the fd; a read names the cause (EBADFD).
    if (!read_paused()) read_some();
    if (!closed()) close("tap " + name_ + " poll error: " + uv_strerror(status));
  }

  void read_some() override {
    const uint32_t n = rx_.available();
    if (n == 0) {
      // Every receive chunk is still queued on some output: stop reading until they drain
      // (the kernel drops on its side when the tap's queue fills, as it would for a slow NIC).
      out_of_chunks();
      return;
    }
    uint32_t got = 0;  // valid frames, in slots 0..got-1
    uint8_t hdr[sw::kVirtioNetHdrMrgSize] = {};
    for (uint32_t i = 0; i < n; ++i) {
      iovec iov[2] = {{hdr, vnet_hdr_}, {rx_.slot(got), DatagramRx::slot_capacity()}};
      const ssize_t got_bytes =
          vnet_hdr_ != 0 ? ::readv(fd(), iov, 2) : ::read(fd(), rx_.slot(got), iov[1].iov_len);
      if (got_bytes < 0) {
        const int err = errno;
        if (err == EAGAIN || err == EINTR) break;
        forward(got);
        close(device_gone(err) ? "tap " + name_ + " is gone: " + errno_text(err)
                               : "tap " + name_ + " read error: " + errno_text(err));
        return;
      }
      // Without its header (a read shorter than the header is no frame either).
      const ssize_t len = got_bytes - static_cast<ssize_t>(vnet_hdr_);
      if (len < static_cast<ssize_t>(sw::kMinFrameSize)) {
        // The slot is reused for the next read.
        counters_.drop_bad_length += 1;
        if (bad_length_log_.allow(loop_.now())) {
          io::log_line("port %u tap %s: dropped a %zd-byte read (shorter than an Ethernet header)",
                       id(), name_.c_str(), len);
        }
        continue;
      }
      // The kernel's virtio_net_hdr: a checksum left to do is completed in the slot, a large
      // segment keeps its state for the switch, a bad header drops the frame.
      sw::FrameOffload offload;
      if (vnet_hdr_ != 0 && !intake_.take(hdr, vnet_hdr_, rx_.slot(got), static_cast<uint32_t>(len),
                                          offload, loop_.now(), id(), "tap ", name_)) {
        continue;  // the slot is reused for the next read
      }
      loop_.burst()[got] = rx_.frame(got, static_cast<uint32_t>(len));
      loop_.burst()[got].offload = offload;
      ++got;
    }
    forward(got);
  }

  void forward(uint32_t count) {
    if (count == 0) return;
    rx_.advance(count);
    const sw::PortId congested =
        loop_.fabric().receive(*this, loop_.burst().first(count), loop_.now());
    if (congested != sw::kNoPort && throttled_by() == sw::kNoPort && !closed()) {
      throttle(congested);
    }
  }

  std::string name_;
  DatagramRx rx_;
  DatagramTx tx_;
  uint32_t vnet_hdr_ = 0;
  OffloadIntake intake_;  // the kernel's virtio-net headers (vnet_hdr_ != 0)
  uint64_t link_down_ = 0;
  io::RateLimit link_down_log_{1, 10'000};
  io::RateLimit bad_length_log_{3, 10'000};
};

// Sets IFF_UP on a link qswitch itself created.
bool set_link_up(const std::string& name, std::string& error) {
  io::Fd sock = io::Fd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    error = "socket: " + errno_text(errno);
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) < 0) {
    error = "SIOCGIFFLAGS: " + errno_text(errno);
    return false;
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) < 0) {
    error = "SIOCSIFFLAGS: " + errno_text(errno);
    return false;
  }
  return true;
}

std::unique_ptr<TapPort> adopt_fd(SwitchLoop& loop, int raw, std::string& error) {
  ifreq ifr{};
  if (::ioctl(raw, TUNGETIFF, &ifr) < 0) {
    error = "tap fd=" + std::to_string(raw) +
            " is not a tun/tap device (TUNGETIFF: " + errno_text(errno) +
            "); pass a /dev/net/tun fd attached with IFF_TAP|IFF_NO_PI";
    return nullptr;
  }
  const std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if ((ifr.ifr_flags & IFF_TAP) == 0) {
    error = "tap fd=" + std::to_string(raw) + " is the tun device " + name +
            " (layer 3); a tap (IFF_TAP) is needed";
    return nullptr;
  }
  if ((ifr.ifr_flags & IFF_NO_PI) == 0 || (ifr.ifr_flags & IFF_VNET_HDR) != 0) {
    error = "tap fd=" + std::to_string(raw) + " (" + name +
            ") carries a packet-information or vnet header; attach it with IFF_TAP|IFF_NO_PI only";
    return nullptr;
  }
  const int flags = ::fcntl(raw, F_GETFL);
  if (flags < 0 || ::fcntl(raw, F_SETFL, flags | O_NONBLOCK) < 0 ||
      ::fcntl(raw, F_SETFD, FD_CLOEXEC) < 0) {
    error = "tap fd=" + std::to_string(raw) + ": fcntl: " + errno_text(errno);
    return nullptr;
  }
  return std::make_unique<TapPort>(loop, io::Fd::adopt(raw), name, 0, false);
}

std::unique_ptr<TapPort> open_by_name(SwitchLoop& loop, const TapSpec& spec, std::string& error) {
  if (spec.name.empty() || spec.name.size() >= IFNAMSIZ) {
    error = "tap name '" + spec.name + "' must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes";
    return nullptr;
  }
  io::Fd fd = io::Fd::adopt(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    error = "cannot open /dev/net/tun for tap " + spec.name + ": " + errno_text(errno);
    return nullptr;
  }
  // First try to create it exclusively, so we know whether the device is ours to set up.
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, spec.name.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = static_cast<short>(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL);
  bool created = ::ioctl(fd.get(), TUNSETIFF, &ifr) == 0;
  if (!created) {
    const int excl_err = errno;
    ifr = ifreq{};
    std::strncpy(ifr.ifr_name, spec.name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
      const int err = errno;
      std::string hint;
      if (err == EPERM || excl_err == EPERM) {
        hint = " (to use it without root, create it once as root: ip tuntap add " + spec.name +
               " mode tap user $USER)";
      } else if (err == EBUSY) {
        hint = " (another process has it open, or it is a tun, or a multi-queue tap)";
      } else if (err == EINVAL) {
        hint = " (is it a tun device, a multi-queue tap, or another kind of link?)";
      }
      error = "cannot attach tap " + spec.name + ": " + errno_text(err) + hint;
      return nullptr;
    }
  }
  const std::string name(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  if (created) {
    std::string up_error;
    if (!set_link_up(name, up_error)) {
      error = "created tap " + name + " but could not set it up: " + up_error;
      return nullptr;
    }
  }
  // Each frame comes and goes with a 12-byte virtio_net_hdr, and the kernel may hand us (and
  // take from us) TCP segments up to 64 KiB with their checksum left to do, as it does with
  // QEMU's tap backend: large segments cross to vhost-user guests whole.
  int hdr_size = static_cast<int>(sw::kVirtioNetHdrMrgSize);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr_size) < 0) {
    error = "tap " + name + ": TUNSETVNETHDRSZ: " + errno_text(errno);
    return nullptr;
  }
  const unsigned offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
  const bool offloaded = ::ioctl(fd.get(), TUNSETOFFLOAD, offloads) == 0;
  return std::make_unique<TapPort>(loop, std::move(fd), name, sw::kVirtioNetHdrMrgSize, offloaded);
}

}  // namespace

std::unique_ptr<LoopPort> open_tap_port(SwitchLoop& loop, const TapSpec& spec, std::string& error,
                                        std::string* name) {
  std::unique_ptr<TapPort> port =
      spec.fd >= 0 ? adopt_fd(loop, spec.fd, error) : open_by_name(loop, spec, error);
  if (port && name) *name = port->name();
  return port;
  // clang-tidy 14's analyzer loses the TapPort when unique_ptr<TapPort> becomes the returned
  // unique_ptr<LoopPort> (a false "potential leak" on the brace below; ASan's leak check runs
  // this path in tap_test).
}  // NOLINT(clang-analyzer-cplusplus.NewDeleteLeaks)

}  // namespace qswitch::backends
