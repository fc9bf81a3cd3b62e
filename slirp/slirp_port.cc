// slirp/slirp_port.cc: see the header for the theory of operation.
#include "slirp/slirp_port.h"

#include <arpa/inet.h>
#include <slirp/libslirp.h>

#include <sys/resource.h>
#include <algorithm>
#include <array>
#include <cstdlib>

#include <cstring>

#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "slirp/dhcp_server.h"
#include "slirp/dns_frontend.h"
#include "slirp/guest_packet.h"
#include "slirp/host_sockets.h"
#include "slirp/loopback_target.h"
#include "slirp/neighbours.h"
#include "switch/frame.h"

namespace qswitch::slirp {

namespace {

constexpr uint32_t kChunkSize = 256 * 1024;
constexpr uint32_t kMaxChunks = 16;
constexpr size_t kMaxPendingFrames = 4096;  // frames from guests waiting for slirp_input
constexpr size_t kMaxPendingBytes = 4u << 20;

// Only what libslirp asked for: it asks a still-connecting socket for OUT|ERR alone, and
// reporting IN there sends it down its read path, which resets the guest's connection when the
// host peer has already written and closed. Errors need no request: epoll reports them, and
// libuv delivers them as the events the handle was started with.
int to_uv_events(int slirp_events) {
  int ev = 0;
  if ((slirp_events & SLIRP_POLL_IN) != 0) ev |= UV_READABLE;
  if ((slirp_events & SLIRP_POLL_OUT) != 0) ev |= UV_WRITABLE;
  if ((slirp_events & SLIRP_POLL_PRI) != 0) ev |= UV_PRIORITIZED;
  return ev;
}

std::string ip_text(in_addr a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

int prefix_len(in_addr mask) { return __builtin_popcount(ntohl(mask.s_addr)); }

}  // namespace

// Everything that touches libslirp or libuv handles for it.
struct SlirpPort::Impl final : DhcpServer::LeaseEvents, DnsAnswerer, DnsFrameSink {
  struct PollFd {
    io::UvHandle<uv_poll_t> poll;
    int fd = -1;
    int uv_events = 0;     // what the handle is started with
    int revents = 0;       // SLIRP_POLL_* seen since the last slirp_pollfds_poll
    int slirp_events = 0;  // what libslirp asked for this turn
    uint64_t turn = 0;     // the last turn libslirp asked for this fd
    Impl* impl = nullptr;
  };
  struct Timer {
    io::UvHandle<uv_timer_t> timer;
    SlirpTimerId id;
    void* cb_opaque;
    Impl* impl;
  };

  SlirpPort& port;
  backends::SwitchLoop& loop;
  Slirp* slirp = nullptr;
  // Every step here is O(1) per fd libslirp names, so a turn costs O(sockets), as libslirp's own
  // slirp_pollfds_fill does: handles by fd number, and the turn stamp tells which of last
  // turn's fds libslirp no longer asks about.
  std::vector<std::unique_ptr<PollFd>> polls;  // by fd; null: no handle
  std::vector<int> wanted;                     // fd per slirp_pollfds_fill index, this turn
  std::vector<int> last_wanted;                // the same, last turn
  uint64_t turn = 0;
  // libslirp changes only through slirp_input, socket events, its timers and host forwards:
  // a turn with none of them (the other ports' traffic) skips it, whatever its socket count.
  bool wake = false;   // guest frames or socket events wait for service()
  bool refill = true;  // libslirp may want other fds or events: before_poll() asks again
  HostSocketBudget sockets;
  io::UvHandle<uv_prepare_t> prepare;
  io::UvHandle<uv_timer_t> timeout;
  // Port security's address book (switch/address_book.h): the DHCP server's bound leases, in
  // this port's VLAN; lease_timer runs expire() when the earliest one ends.
  io::UvHandle<uv_timer_t> lease_timer;
  int64_t lease_timer_s = INT64_MAX;  // when it fires (loop seconds); INT64_MAX: stopped
  bool serving = false;               // the VLAN is in the address book
  size_t hook_id = 0;
  bool hooked = false;

  // The DNS responder and its transport (slirp/dns_frontend.h); dns_timer runs the front
  // end's TCP retransmissions and time-outs at its next deadline.
  DnsResponder responder;
  std::unique_ptr<DnsFrontend> dns;
  io::UvHandle<uv_timer_t> dns_timer;
  int64_t dns_timer_ms = INT64_MAX;  // when it fires (loop ms); INT64_MAX: stopped

  // Frames from the switch waiting for slirp_input, each holding a chunk reference.
  struct Pending {
    sw::Frame frame;
    bool dhcp = false;  // DhcpServer::is_dhcp_request()
    bool dns = false;   // DnsFrontend::is_candidate()
    DhcpPort from;      // for DHCP and host socket requests: the port it came in on
    SocketRequest request;
  };
  std::vector<Pending> pending;
  size_t pending_bytes = 0;

  // Frames from slirp (and DHCP replies) to the switch: written into our own chunks.
  sw::ChunkPool pool{kChunkSize, kMaxChunks};
  sw::RxChunk* chunk = nullptr;
  uint32_t chunk_used = 0;

  io::RateLimit guest_error_log{3, 10'000};
  io::RateLimit drop_log{1, 10'000};
  io::RateLimit dhcp_log{3, 10'000};
  io::RateLimit cap_log{1, 10'000};
  io::RateLimit dns_log{1, 10'000};

  Impl(SlirpPort& p, backends::SwitchLoop& l, uint32_t max_sockets, uint32_t max_per_port)
      : port(p), loop(l), sockets(max_sockets, max_per_port) {
    pool.set_pressure(&l.fabric());
  }
  static const SlirpCb kCallbacks;

  sw::Millis now() { return loop.now(); }

  static sw::IpAddress ipv4(in_addr a) {
    return sw::IpAddress::v4(reinterpret_cast<const uint8_t*>(&a.s_addr));
  }
  void bound(const sw::MacAddress& mac, in_addr addr) override {
    loop.fabric().addresses().bind(port.options_.vlan, mac, ipv4(addr));
    port.names_->lease_bound(mac, ipv4(addr));
  }
  void ended(const sw::MacAddress& mac, in_addr addr) override {
    loop.fabric().addresses().unbind(port.options_.vlan, mac, ipv4(addr));
    port.names_->lease_ended(mac, ipv4(addr));
  }
  void hostname(const sw::MacAddress& mac, std::string_view sent) override {
    port.names_->set_dhcp_hostname(mac, sent);
    // The port it came in on may be one `qswitch exec --name` made: that name is the MAC's.
    if (port.port_namer_ && dhcp_from.key != 0) {
      const std::string name = port.port_namer_(dhcp_from.key);
      if (!name.empty()) port.names_->set_exec_name(mac, name);
    }
  }
  DhcpPort dhcp_from;  // the port of the message handle() is answering
  // The timer for the DHCP server's next lease end, if that is earlier than the one set.
  void arm_lease_timer() {
    const int64_t next = port.dhcp_->next_expiry_s();
    if (next == INT64_MAX || next >= lease_timer_s) return;
    lease_timer_s = next;
    const int64_t now_s = now() / 1000;
    const auto delay_ms = static_cast<uint64_t>(next > now_s ? (next - now_s) * 1000 : 0);
    uv_timer_start(
        lease_timer.get(),
        [](uv_timer_t* h) {
          auto* self = static_cast<Impl*>(h->data);
          if (self == nullptr) return;
          self->lease_timer_s = INT64_MAX;
          self->port.dhcp_->expire(self->now() / 1000);
          self->arm_lease_timer();
          self->port.publish_dns();
        },
        delay_ms + 1000, 0);  // a second late: the server's clock counts whole seconds
  }

  DnsResponder::Verdict answer(const uint8_t* query, size_t size, DnsResponder::Transport transport,
                               std::vector<uint8_t>& reply) override {
    return responder.answer(query, size, transport, reply);
  }
  void send_frame(const uint8_t* frame, size_t size) override { send_to_guests(frame, size); }

  // The timer for the DNS front end's next deadline (started, moved or stopped).
  void arm_dns_timer() {
    const int64_t next = dns->next_deadline_ms();
    if (next == dns_timer_ms) return;
    dns_timer_ms = next;
    if (next == INT64_MAX) {
      uv_timer_stop(dns_timer.get());
      return;
    }
    const int64_t now_ms = now();
    uv_timer_start(
        dns_timer.get(),
        [](uv_timer_t* h) {
          auto* self = static_cast<Impl*>(h->data);
          if (self == nullptr || !self->dns) return;
          self->dns_timer_ms = INT64_MAX;
          self->dns->on_timer(self->now());
          self->arm_dns_timer();
          self->loop.fabric().flush();
        },
        static_cast<uint64_t>(next > now_ms ? next - now_ms : 0), 0);
  }

  // Space for one outgoing frame of up to `size` bytes, prefix included; nullptr when every
  // chunk is still queued on some output (the frame is dropped: TCP retransmits, as libslirp's
  // send_packet contract allows).
  uint8_t* reserve(uint32_t size) {
    const uint32_t need = sw::kPrefixSize + size;
    if (chunk == nullptr || chunk_used + need > kChunkSize) {
      sw::RxChunk* next = pool.acquire();
      if (next == nullptr) return nullptr;
      sw::chunk_unref(chunk);
      chunk = next;
      chunk_used = 0;
    }
    return chunk->data + chunk_used;
  }

  // Hands a frame written at `wire` (prefix then `size` bytes) to the switch.
  void emit(uint8_t* wire, uint32_t size) {
    sw::store_be32(wire, size);
    chunk_used += sw::kPrefixSize + size;
    const sw::Frame f{wire, size, 0, chunk, {}};
    loop.fabric().receive(port, f, now());
  }

  // A frame for the guests is dropped: every chunk is still queued on some output.
  void no_room() {
    port.counters_.rx_paused += 1;
    if (drop_log.allow(now())) {
      io::log_line("port %u (slirp): all buffers queued on slow ports, dropping a frame",
                   port.id());
    }
  }

  void send_to_guests(const uint8_t* data, size_t size) {
    if (size < sw::kMinFrameSize || size > sw::kMaxFrameSize) {
      port.counters_.drop_bad_length += 1;
      return;
    }
    uint8_t* wire = reserve(static_cast<uint32_t>(size));
    if (wire == nullptr) {
      no_room();
      return;
    }
    std::memcpy(wire + sw::kPrefixSize, data, size);
    emit(wire, static_cast<uint32_t>(size));
  }

  // Guest frames to slirp (or to the DHCP server), then libslirp's socket events.
  void service() {
    if (slirp == nullptr || !wake) return;
    wake = false;
    refill = true;
    if (!pending.empty()) {
      // libslirp reads its clock only in slirp_pollfds_poll, and stamps what slirp_input opens
      // with it (a UDP flow expires 4 minutes after that stamp). Turns without slirp work do
      // not run the poll, so the clock may be old (or 0 at start: a flow opened then would
      // expire at once): a poll with select_error set updates it (and runs due TCP timers)
      // without touching the sockets.
      slirp_pollfds_poll(
          slirp, 1, [](int, void*) -> int { return 0; }, nullptr);
    }
    bool dns_used = false;
    for (const Pending& p : pending) {
      const sw::Frame& f = p.frame;
      port.counters_.tx_frames += 1;
      port.counters_.tx_bytes += f.size;
      if (p.dns) dns_used = true;
      if (p.dns && dns_frame(f)) {
        // answered, or one of the front end's TCP connections
      } else if (p.dhcp) {
        answer_dhcp(f, p.from);
      } else if (const HostSocketBudget::Verdict v = sockets.admit(p.from.key, p.request);
                 v != HostSocketBudget::Verdict::kAdmit) {
        refuse(p, v);
      } else {
        sockets.begin(p.from.key, p.request);
        slirp_input(slirp, f.data(), static_cast<int>(f.size));
        sockets.end();
      }
      sw::chunk_unref(f.chunk);
    }
    pending.clear();
    pending_bytes = 0;
    if (dns_used) arm_dns_timer();
    slirp_pollfds_poll(
        slirp, 0,
        [](int idx, void* opaque) -> int {
          auto* self = static_cast<Impl*>(opaque);
          if (idx < 0 || static_cast<size_t>(idx) >= self->wanted.size()) return 0;
          PollFd* p = self->slot(self->wanted[static_cast<size_t>(idx)]);
          if (p == nullptr) return 0;
          const int r = p->revents & (p->slirp_events | SLIRP_POLL_ERR | SLIRP_POLL_HUP);
          p->revents = 0;
          return r;
        },
        this);
  }

  // The DNS front end's turn at a guest frame: true when it took it. A SYN over the front end's
  // connection cap is logged at a limited rate.
  bool dns_frame(const sw::Frame& f) {
    const uint64_t over_cap = dns->counters().tcp_over_cap;
    const bool taken = dns->guest_frame(f.data(), f.size, now()) == DnsFrontend::Result::kConsumed;
    if (dns->counters().tcp_over_cap != over_cap && dns_log.allow(now())) {
      const uint64_t suppressed = dns_log.take_suppressed();
      const std::string more =
          suppressed == 0 ? "" : " (" + std::to_string(suppressed) + " more suppressed)";
      io::log_line(
          "port %u (slirp): DNS over TCP from guest %s refused: %zu connections open, the "
          "cap%s",
          port.id(), sw::MacAddress::from_wire(f.src()).to_string().c_str(),
          dns->open_connections(), more.c_str());
    }
    return taken;
  }

  PollFd* slot(int fd) {
    if (fd < 0 || static_cast<size_t>(fd) >= polls.size()) return nullptr;
    return polls[static_cast<size_t>(fd)].get();
  }

  // A guest packet that would open one more host socket than a cap allows is dropped.
  void refuse(const Pending& p, HostSocketBudget::Verdict v) {
    port.drop_host_socket_cap_ += 1;
    if (!cap_log.allow(now())) return;
    const uint64_t suppressed = cap_log.take_suppressed();
    const std::string more =
        suppressed == 0 ? "" : " (" + std::to_string(suppressed) + " more suppressed)";
    const std::string mac = sw::MacAddress::from_wire(p.frame.src()).to_string();
    if (v == HostSocketBudget::Verdict::kPortCap) {
      io::log_line(
          "port %u (slirp): guest %s on port %u holds max-host-sockets-per-port=%u host "
          "sockets; dropping its packets that would open more%s",
          port.id(), mac.c_str(), p.from.id, sockets.max_per_owner(), more.c_str());
    } else {
      io::log_line(
          "port %u (slirp): max-host-sockets=%u host sockets are open; dropping a packet "
          "from guest %s on port %u that would open another%s",
          port.id(), sockets.max_total(), mac.c_str(), p.from.id, more.c_str());
    }
  }

  // The switch port `f` came in on: the one its source MAC was learned on just now.
  DhcpPort origin_of(const sw::Frame& f) {
    const sw::PortId id = loop.fabric().macs().lookup(sw::MacAddress::from_wire(f.src()),
                                                      port.vlans().untagged, now());
    const backends::LoopPort* p = loop.port(id);
    if (p == nullptr) return DhcpPort{};
    return DhcpPort{p->serial(), id};
  }

  void answer_dhcp(const sw::Frame& f, const DhcpPort& from) {
    uint8_t* wire = reserve(1500);
    if (wire == nullptr) {
      no_room();  // the reply is lost; the guest asks again
      return;
    }
    const uint64_t over_cap = port.dhcp_->counters().over_port_cap;
    const uint64_t not_owner = port.dhcp_->counters().not_owner;
    dhcp_from = from;
    const size_t n =
        port.dhcp_->handle(f.data(), f.size, now() / 1000, wire + sw::kPrefixSize, 1500, from);
    dhcp_from = DhcpPort{};
    arm_lease_timer();
    port.publish_dns();
    if (n >= sw::kMinFrameSize) emit(wire, static_cast<uint32_t>(n));
    const bool refused = port.dhcp_->counters().over_port_cap != over_cap;
    if ((refused || port.dhcp_->counters().not_owner != not_owner) && dhcp_log.allow(now())) {
      const uint64_t suppressed = dhcp_log.take_suppressed();
      const std::string more =
          suppressed == 0 ? "" : " (" + std::to_string(suppressed) + " more suppressed)";
      const std::string mac = sw::MacAddress::from_wire(f.src()).to_string();
      if (refused) {
        io::log_line(
            "port %u (slirp): DHCP from port %u, mac %s: no address, that port holds "
            "max-leases-per-port=%u already%s",
            port.id(), from.id, mac.c_str(), port.dhcp_->config().max_leases_per_port,
            more.c_str());
      } else {
        io::log_line(
            "port %u (slirp): DHCP from port %u, mac %s: RELEASE or DECLINE ignored, "
            "another port holds that lease%s",
            port.id(), from.id, mac.c_str(), more.c_str());
      }
    }
  }

  // Before the poll: ask libslirp what it wants and mirror that in uv_poll handles.
  void before_poll() {
    if (slirp == nullptr || !refill) return;
    refill = false;
    wanted.swap(last_wanted);
    wanted.clear();
    for (int fd : last_wanted) {
      if (PollFd* p = slot(fd)) p->revents = 0;
    }
    turn += 1;
    uint32_t timeout_ms = UINT32_MAX;
    slirp_pollfds_fill(
        slirp, &timeout_ms,
        [](int fd, int events, void* opaque) -> int {
          auto* self = static_cast<Impl*>(opaque);
          self->want(fd, events);
          return static_cast<int>(self->wanted.size()) - 1;
        },
        this);
    // Handles for fds slirp no longer asks about this turn are stopped (not closed: it may ask
    // again; unregister_poll_fd closes them for good).
    for (int fd : last_wanted) {
      PollFd* p = slot(fd);
      if (p != nullptr && p->turn != turn) {
        io::set_poll_events(p->poll.get(), p->uv_events, 0, nullptr);
      }
    }
    if (timeout_ms != UINT32_MAX) {
      uv_timer_start(
          timeout.get(),
          [](uv_timer_t* h) {
            auto* self = static_cast<Impl*>(h->data);
            if (self == nullptr) return;
            // A timer callback is followed by the poll phase, not the check phase: do the turn's
            // work and flush here so nothing waits for the next event.
            self->wake = true;
            self->service();
            self->loop.fabric().flush();
          },
          timeout_ms, 0);
    } else {
      uv_timer_stop(timeout.get());
    }
  }

  void want(int fd, int slirp_events) {
    if (fd < 0) return;
    wanted.push_back(fd);
    if (static_cast<size_t>(fd) >= polls.size()) polls.resize(static_cast<size_t>(fd) + 1);
    auto& slot = polls[static_cast<size_t>(fd)];
    if (!slot) {
      slot = std::make_unique<PollFd>();
      slot->fd = fd;
      slot->impl = this;
      uv_poll_init(loop.uv(), slot->poll.get(), fd);
      slot->poll.get()->data = slot.get();
    }
    slot->slirp_events = slirp_events;
    slot->turn = turn;
    io::set_poll_events(slot->poll.get(), slot->uv_events, to_uv_events(slirp_events),
                        [](uv_poll_t* h, int status, int events) {
                          auto* p = static_cast<PollFd*>(h->data);
                          if (p == nullptr) return;
                          int r = 0;
                          if (status < 0) {
                            // EPOLLERR: libuv has stopped this handle (src/unix/poll.c). libslirp
                            // handles the error and may well keep the socket (a UDP flow's ICMP
                            // error), so the next want() must start the handle again even when the
                            // events it asks for are the same.
                            p->uv_events = 0;
                            r |= SLIRP_POLL_ERR;
                          }
                          if ((events & UV_READABLE) != 0) r |= SLIRP_POLL_IN;
                          if ((events & UV_WRITABLE) != 0) r |= SLIRP_POLL_OUT;
                          if ((events & UV_PRIORITIZED) != 0) r |= SLIRP_POLL_PRI;
                          if ((events & UV_DISCONNECT) != 0) r |= SLIRP_POLL_HUP;
                          p->revents |= r;
                          p->impl->wake = true;
                        });
  }

  void forget_fd(int fd) {
    PollFd* p = slot(fd);
    if (p == nullptr) return;
    p->poll.get()->data = nullptr;
    if (p->uv_events != 0) uv_poll_stop(p->poll.get());
    polls[static_cast<size_t>(fd)].reset();  // UvHandle closes the handle
  }

  void shutdown() {
    if (hooked) loop.remove_turn_hook(hook_id);
    hooked = false;
    if (serving) loop.fabric().addresses().withdraw(port.options_.vlan, &port);
    serving = false;
    if (port.dhcp_) port.dhcp_->set_lease_events(nullptr);
    lease_timer.close();
    dns_timer.close();
    for (auto& p : polls) {
      if (!p) continue;
      p->poll.get()->data = nullptr;
      if (p->uv_events != 0) uv_poll_stop(p->poll.get());
    }
    polls.clear();
    if (slirp != nullptr) {
      Slirp* s = slirp;
      slirp = nullptr;
      slirp_cleanup(s);
    }
    for (const Pending& p : pending) sw::chunk_unref(p.frame.chunk);
    pending.clear();
    sw::chunk_unref(chunk);
    chunk = nullptr;
    prepare.close();
    timeout.close();
  }
};

const SlirpCb SlirpPort::Impl::kCallbacks = {
    /*send_packet=*/[](const void* buf, size_t len, void* opaque) -> ssize_t {
      static_cast<Impl*>(opaque)->send_to_guests(static_cast<const uint8_t*>(buf), len);
      return static_cast<ssize_t>(len);
    },
    /*guest_error=*/
    [](const char* msg, void* opaque) {
      auto* self = static_cast<Impl*>(opaque);
      if (self->guest_error_log.allow(self->now())) {
        io::log_line("port %u (slirp): guest error: %s", self->port.id(), msg);
      }
    },
    /*clock_get_ns=*/[](void*) -> int64_t { return static_cast<int64_t>(uv_hrtime()); },
    /*timer_new=*/nullptr,
    /*timer_free=*/
    [](void* timer, void*) { delete static_cast<Timer*>(timer); },
    /*timer_mod=*/
    [](void* timer, int64_t expire_ms, void*) {
      auto* t = static_cast<Timer*>(timer);
      const int64_t now_ms = static_cast<int64_t>(uv_hrtime() / 1'000'000);
      const int64_t delay = expire_ms > now_ms ? expire_ms - now_ms : 0;
      uv_timer_start(
          t->timer.get(),
          [](uv_timer_t* h) {
            auto* tt = static_cast<Timer*>(h->data);
            if (tt == nullptr || tt->impl->slirp == nullptr) return;
            slirp_handle_timer(tt->impl->slirp, tt->id, tt->cb_opaque);
            tt->impl->refill = true;
            tt->impl->loop.fabric().flush();
          },
          static_cast<uint64_t>(delay), 0);
    },
    /*register_poll_fd=*/
    [](int fd, void* opaque) { static_cast<Impl*>(opaque)->sockets.registered(fd); },
    /*unregister_poll_fd=*/
    [](int fd, void* opaque) {
      auto* self = static_cast<Impl*>(opaque);
      self->sockets.unregistered(fd);
      self->forget_fd(fd);
    },
    /*notify=*/[](void*) {},
    /*init_completed=*/nullptr,
    /*timer_new_opaque=*/
    [](SlirpTimerId id, void* cb_opaque, void* opaque) -> void* {
      auto* self = static_cast<Impl*>(opaque);
      auto* t = new Timer{{}, id, cb_opaque, self};
      uv_timer_init(self->loop.uv(), t->timer.get());
      t->timer.get()->data = t;
      return t;
    },
};

SlirpPort::SlirpPort(backends::SwitchLoop& loop, const SlirpOptions& options)
    : LoopPort(loop), options_(options), neighbours_(std::make_unique<Neighbours>()) {}

SlirpPort::~SlirpPort() {
  if (impl_) impl_->shutdown();
}

std::unique_ptr<SlirpPort> SlirpPort::create(backends::SwitchLoop& loop,
                                             const SlirpOptions& options, std::string& error,
                                             const io::OwnSockets* own) {
  std::unique_ptr<SlirpPort> port(new SlirpPort(loop, options));
  port->own_ = own;
  rlimit nofile{};
  const uint64_t fd_limit =
      ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
          ? nofile.rlim_cur
          : uint64_t{1} << 20;
  port->impl_ = std::make_unique<Impl>(*port, loop, effective_max_host_sockets(options, fd_limit),
                                       options.max_host_sockets_per_port);
  Impl& impl = *port->impl_;

  // libslirp's own address: 52:55 then the host address (libslirp's special_ethaddr).
  sw::MacAddress gateway_mac;
  gateway_mac.bytes = {0x52, 0x55, 0, 0, 0, 0};
  std::memcpy(gateway_mac.bytes.data() + 2, &options.host.s_addr, 4);
  port->gateway_mac_ = gateway_mac;
  port->dhcp_ = std::make_unique<DhcpServer>(DhcpConfig::from(options, gateway_mac));
  port->names_ = std::make_unique<DnsNames>(options);
  // A MAC's IPv6 addresses changed: its DNS name's AAAA records follow.
  port->neighbours_->set_on_change([p = port.get()](const sw::MacAddress& mac) {
    p->set_ipv6_addresses(mac, p->neighbours_->addresses(mac));
  });

  std::vector<const char*> dnssearch;
  for (const std::string& d : options.dnssearch) dnssearch.push_back(d.c_str());
  dnssearch.push_back(nullptr);

  SlirpConfig cfg{};
  cfg.version = 4;
  cfg.restricted = options.restrict ? 1 : 0;
  cfg.in_enabled = true;
  cfg.vnetwork = options.net;
  cfg.vnetmask = options.netmask;
  cfg.vhost = options.host;
  cfg.in6_enabled = options.ipv6;
  cfg.vprefix_addr6 = options.ipv6_prefix;
  cfg.vprefix_len = options.ipv6_prefix_len;
  cfg.vhost6 = options.ipv6_host;
  cfg.vhostname = options.hostname.empty() ? nullptr : options.hostname.c_str();
  cfg.tftp_server_name = nullptr;
  cfg.tftp_path = options.tftp.empty() ? nullptr : options.tftp.c_str();
  cfg.bootfile = options.bootfile.empty() ? nullptr : options.bootfile.c_str();
  cfg.vdhcp_start = options.dhcp_start;
  cfg.vnameserver = options.dns;
  cfg.vnameserver6 = options.ipv6_dns;
  cfg.vdnssearch = options.dnssearch.empty() ? nullptr : dnssearch.data();
  cfg.vdomainname = options.domainname.empty() ? nullptr : options.domainname.c_str();
  cfg.if_mtu = options.mtu;
  cfg.if_mru = options.mtu;
  cfg.disable_host_loopback = false;
  cfg.enable_emu = false;
  cfg.disable_dns = false;
  cfg.disable_dhcp = true;  // qswitch's DhcpServer answers instead (per-MAC leases, > 16 guests)

  impl.slirp = slirp_new(&cfg, &Impl::kCallbacks, &impl);
  if (impl.slirp == nullptr) {
    error = "libslirp refused the configuration";
    return nullptr;
  }
  for (const HostForward& fwd : options.hostfwd) {
    if (!port->add_hostfwd(fwd, error))
      return nullptr;  // destructor cleans up: nothing half-applied
  }

  uv_prepare_init(loop.uv(), impl.prepare.get());
  impl.prepare.get()->data = &impl;
  uv_prepare_start(impl.prepare.get(), [](uv_prepare_t* h) {
    if (h->data != nullptr) static_cast<Impl*>(h->data)->before_poll();
  });
  uv_timer_init(loop.uv(), impl.timeout.get());
  impl.timeout.get()->data = &impl;
  impl.hook_id = loop.add_turn_hook([&impl] { impl.service(); });
  impl.hooked = true;
  // Port security: this VLAN's addresses are the ones its DHCP server and prefix give.
  uv_timer_init(loop.uv(), impl.lease_timer.get());
  impl.lease_timer.get()->data = &impl;
  port->dhcp_->set_lease_events(&impl);
  // DNS: the front end at dns= (and ipv6-dns= with IPv6); its table comes from publish_dns()
  // below.
  DnsFrontendConfig dns_config;
  std::memcpy(dns_config.dns4.data(), &options.dns.s_addr, 4);
  dns_config.ipv6 = options.ipv6;
  std::memcpy(dns_config.dns6.data(), options.ipv6_dns.s6_addr, 16);
  dns_config.mtu = options.mtu;
  dns_config.mac4 = gateway_mac.bytes;
  dns_config.mac6 = {0x52, 0x56};  // libslirp's in6_compute_ethaddr()
  std::memcpy(dns_config.mac6.data() + 2, options.ipv6_dns.s6_addr + 12, 4);
  impl.dns = std::make_unique<DnsFrontend>(dns_config, impl, impl);
  uv_timer_init(loop.uv(), impl.dns_timer.get());
  impl.dns_timer.get()->data = &impl;
  sw::IpAddress prefix6;
  if (options.ipv6) prefix6 = sw::IpAddress::v6(options.ipv6_prefix.s6_addr);
  loop.fabric().addresses().serve(options.vlan, prefix6, options.ipv6_prefix_len, port.get());
  impl.serving = true;
  port->publish_dns();
  return port;
}

void SlirpPort::publish_dns() {
  if (!names_ || names_->generation() == published_generation_) return;
  published_generation_ = names_->generation();
  set_dns_table(names_->table());
}

bool SlirpPort::add_dns_record(std::string_view name, const sw::IpAddress& addr,
                               std::string& error) {
  if (!names_->add_static(name, addr, error)) return false;
  publish_dns();
  return true;
}

bool SlirpPort::remove_dns_record(std::string_view name, const std::optional<sw::IpAddress>& addr,
                                  std::string& error) {
  if (!names_->remove_static(name, addr, error)) return false;
  publish_dns();
  return true;
}

void SlirpPort::set_guest_names(const std::vector<DnsNames::Guest>& guests) {
  names_->set_guests(NameSource::kLab, guests);
  publish_dns();
}

void SlirpPort::set_ipv6_addresses(const sw::MacAddress& mac,
                                   const std::vector<sw::IpAddress>& addresses) {
  names_->set_ipv6(mac, addresses);
  publish_dns();
}

std::string SlirpPort::describe() const {
  return "slirp net=" + ip_text(options_.net) + "/" + std::to_string(prefix_len(options_.netmask)) +
         " host=" + ip_text(options_.host) + (options_.restrict ? " restrict=on" : "");
}

void SlirpPort::enqueue(const sw::Frame& frame) {
  if (closed() || !impl_ || impl_->slirp == nullptr) return;
  if (options_.ipv6) neighbours_->observe(frame.data(), frame.size, loop_.now());
  const std::optional<GuestPacket> packet = parse_guest_packet(frame.data(), frame.size);
  if (packet && own_ != nullptr && to_own_socket(frame, *packet)) return;
  if (impl_->pending.size() >= kMaxPendingFrames ||
      impl_->pending_bytes + frame.size > kMaxPendingBytes) {
    counters_.drop_queue_full += 1;
    return;
  }
  if (impl_->pending.capacity() == 0) impl_->pending.reserve(kMaxPendingFrames);
  sw::chunk_ref(frame.chunk);
  Impl::Pending p{frame, DhcpServer::is_dhcp_request(frame.data(), frame.size),
                  packet && impl_->dns->is_candidate(*packet), DhcpPort{}, SocketRequest{}};
  // TCP to the DNS address is always the DNS front end's (no host socket, no origin lookup).
  if (packet && !p.dhcp && !(p.dns && packet->proto == kIpProtoTcp)) {
    p.request = socket_request(*packet, options_);
  }
  if (p.dhcp || p.request.kind != SocketRequest::Kind::kNone) p.from = impl_->origin_of(frame);
  impl_->pending.push_back(p);
  impl_->wake = true;
  impl_->pending_bytes += frame.size;
}

bool SlirpPort::to_own_socket(const sw::Frame& frame, const GuestPacket& packet) {
  const std::optional<LoopbackTarget> t = loopback_target(packet, options_);
  if (!t) return false;
  const char* what = nullptr;
  if (t->too_short) {
    counters_.drop_bad_length += 1;  // its ports cannot be checked
    what = "a first fragment too short to hold its ports";
  } else if (own_->reaches_loopback(t->transport, t->ipv6, t->port)) {
    // DHCP goes to our own server, not through NAT.
    if (DhcpServer::is_dhcp_request(frame.data(), frame.size)) return false;
    drop_own_endpoint_ += 1;
    what = "qswitch's own socket on the host's loopback";
  } else {
    return false;
  }
  if (own_log_.allow(loop_.now())) {
    const uint64_t suppressed = own_log_.take_suppressed();
    const std::string more =
        suppressed == 0 ? "" : " (" + std::to_string(suppressed) + " more suppressed)";
    io::log_line(
        "port %u (slirp): dropped %s %s from guest %s to port %u: %s (restrict=on closes "
        "the host's loopback to guests)%s",
        id(), t->ipv6 ? "IPv6" : "IPv4", t->transport == io::Transport::kTcp ? "TCP" : "UDP",
        sw::MacAddress::from_wire(frame.data() + 6).to_string().c_str(), t->port, what,
        more.c_str());
  }
  return true;
}

namespace {

// "tcp:127.0.0.1:8080", "udp:[::1]:5353": the host socket of a forward, for messages.
std::string host_socket_text(const HostForward& f) {
  const std::string addr = f.host_addr_text();
  return std::string(f.udp ? "udp:" : "tcp:") + (f.ipv6 ? "[" + addr + "]" : addr) + ":" +
         std::to_string(f.host_port);
}

// libslirp's hostxfwd takes socket addresses. An IPv6 host side is IPv6 only (V6ONLY): "[::]"
// does not also take the IPv4 port, which "0.0.0.0" forwards may hold.
int hostfwd_flags(const HostForward& f) {
  return (f.udp ? SLIRP_HOSTFWD_UDP : 0) | (f.ipv6 ? SLIRP_HOSTFWD_V6ONLY : 0);
}

sockaddr_in6 sockaddr6(const in6_addr& addr, uint16_t port) {
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_addr = addr;
  sa.sin6_port = htons(port);
  return sa;
}

}  // namespace

// A forward to a guest by MAC gets that guest's address now: its DHCP lease (IPv4; a pinned
// one too, so that a forward given at start resolves), or the address in ipv6-net it was seen
// using (IPv6; its SLAAC address when seen, else the first seen). False with `error` when it
// has none yet.
bool SlirpPort::resolve_guest(HostForward& fwd, std::string& error) const {
  if (!fwd.guest_name.empty()) return resolve_guest_name(fwd, error);
  const std::string mac = fwd.guest_mac.to_string();
  if (!fwd.ipv6) {
    for (const DhcpServer::Lease& l : dhcp_->leases()) {
      if (l.mac == fwd.guest_mac) {
        fwd.guest_addr = l.addr;
        return true;
      }
    }
    error = "cannot forward " + fwd.to_string() + ": guest " + mac +
            " has no DHCP address yet (it gets one when it asks; lease=" + mac + ":IP pins one)";
    return false;
  }
  std::array<uint8_t, 16> prefix{};
  std::memcpy(prefix.data(), options_.ipv6_prefix.s6_addr, 16);
  const sw::IpAddress slaac = sw::IpAddress::eui64(prefix, fwd.guest_mac);
  const auto in_net = [&](const sw::IpAddress& a) {
    const int bits = options_.ipv6_prefix_len;
    for (int i = 0; i < bits; ++i) {
      const auto bit = [i](const uint8_t* b) { return (b[i / 8] >> (7 - i % 8)) & 1; };
      if (bit(a.bytes.data()) != bit(prefix.data())) return false;
    }
    return true;
  };
  std::optional<sw::IpAddress> pick;
  for (const sw::IpAddress& a : neighbours_->addresses(fwd.guest_mac)) {
    if (!in_net(a)) continue;
    if (a == slaac || !pick) pick = a;
    if (a == slaac) break;
  }
  if (!pick) {
    error = "cannot forward " + fwd.to_string() + ": guest " + mac +
            " has not been seen using an address in ipv6-net yet (see ctl neighbours)";
    return false;
  }
  std::memcpy(fwd.guest_addr6.s6_addr, pick->bytes.data(), 16);
  return true;
}

bool SlirpPort::resolve_guest_name(HostForward& fwd, std::string& error) const {
  // The name as the DNS answers it: its addresses in the table names_ publishes (a guest's
  // lease and the IPv6 addresses it was seen using in ipv6-net, a static record's, ...).
  const std::string full = names_->qualify(fwd.guest_name);
  const DnsTable& table = names_->table();
  const auto it = std::find_if(table.names.begin(), table.names.end(),
                               [&](const DnsName& n) { return n.name == full; });
  if (it != table.names.end()) {
    for (const sw::IpAddress& a : it->addresses) {
      if (fwd.ipv6 && a.is_v6()) {
        std::memcpy(fwd.guest_addr6.s6_addr, a.bytes.data(), 16);
        return true;
      }
      if (!fwd.ipv6 && a.is_v4()) {
        std::memcpy(&fwd.guest_addr.s_addr, a.bytes.data(), 4);
        return true;
      }
    }
  }
  error = "cannot forward " + fwd.to_string() + ": the name " + full +
          (it == table.names.end()
               ? " is not one the slirp port's DNS answers"
               : std::string(" has no ") + (fwd.ipv6 ? "IPv6" : "IPv4") + " address") +
          " (yet: see ctl dns list)";
  return false;
}

bool SlirpPort::add_hostfwd(const HostForward& requested, std::string& error) {
  HostForward fwd = requested;
  if (!fwd.ipv6 && fwd.guest_addr.s_addr == 0) fwd.guest_addr = options_.dhcp_start;  // QEMU's
  if (fwd.host_port == 0) {
    // libslirp would pick a port but has no call that tells which, so the forward could be
    // neither listed truthfully nor removed: refuse it.
    error = "cannot forward " + fwd.to_string() + ": host port 0 is not supported, give a port";
    return false;
  }
  if (fwd.ipv6 && !options_.ipv6) {
    error = "cannot forward " + fwd.to_string() + ": this slirp port has ipv6=off";
    return false;
  }
  if ((fwd.by_mac || !fwd.guest_name.empty()) && !resolve_guest(fwd, error)) return false;
  for (const HostForward& h : hostfwds_) {
    if (h.same_host_socket(fwd)) {
      error = "a forward from " + host_socket_text(fwd) + " exists already (" + h.to_string() + ")";
      return false;
    }
  }
  int rc = 0;
  if (fwd.ipv6) {
    const sockaddr_in6 host = sockaddr6(fwd.host_addr6, fwd.host_port);
    const sockaddr_in6 guest = sockaddr6(fwd.guest_addr6, fwd.guest_port);
    rc = slirp_add_hostxfwd(impl_->slirp, reinterpret_cast<const sockaddr*>(&host), sizeof host,
                            reinterpret_cast<const sockaddr*>(&guest), sizeof guest,
                            hostfwd_flags(fwd));
  } else {
    rc = slirp_add_hostfwd(impl_->slirp, fwd.udp ? 1 : 0, fwd.host_addr, fwd.host_port,
                           fwd.guest_addr, fwd.guest_port);
  }
  if (rc < 0) {
    const int err = errno;
    error = "cannot forward " + fwd.to_string() + ": binding " + host_socket_text(fwd) + " failed" +
            (err != 0 ? std::string(" (") + std::strerror(err) + ")" : std::string()) +
            "; is the port in use?";
    return false;
  }
  hostfwds_.push_back(fwd);
  impl_->refill = true;
  return true;
}

bool SlirpPort::remove_hostfwd(const HostForward& key, std::string& error) {
  for (size_t i = 0; i < hostfwds_.size(); ++i) {
    const HostForward& h = hostfwds_[i];
    if (h.same_host_socket(key)) {
      if (h.ipv6) {
        const sockaddr_in6 host = sockaddr6(h.host_addr6, h.host_port);
        slirp_remove_hostxfwd(impl_->slirp, reinterpret_cast<const sockaddr*>(&host), sizeof host,
                              hostfwd_flags(h));
      } else {
        slirp_remove_hostfwd(impl_->slirp, h.udp ? 1 : 0, h.host_addr, h.host_port);
      }
      hostfwds_.erase(hostfwds_.begin() + static_cast<std::ptrdiff_t>(i));
      impl_->refill = true;
      return true;
    }
  }
  error = "no forward from " + host_socket_text(key) + " (see hostfwd list)";
  return false;
}

void SlirpPort::for_each_extra_counter(const ExtraCounterFn& f) const {
  f({"dhcp_over_port_cap",
     "DHCP DISCOVERs not offered and REQUESTs NAKed: the guest's port holds its lease cap."},
    dhcp_->counters().over_port_cap);
  f({"dhcp_not_owner",
     "DHCP RELEASEs, DECLINEs and offer withdrawals ignored: another port holds the address."},
    dhcp_->counters().not_owner);
  f({"dns_bad_hostname",
     "DHCP host names (option 12) ignored for DNS: not a host name label (RFC 1123)."},
    names_->counters().invalid_hostnames);
  f({"dns_name_conflicts",
     "DNS names claimed by a guest that another source or guest holds (`ctl dns list`)."},
    names_->counters().conflicts);
  f({"drop_own_endpoint", "Guest packets dropped: they went to qswitch's own host sockets."},
    drop_own_endpoint_);
  f({"drop_host_socket_cap",
     "Guest packets dropped: they would open a host socket over max-host-sockets(-per-port)."},
    drop_host_socket_cap_);
  if (!impl_ || !impl_->dns) return;
  const DnsFrontend::Counters& d = impl_->dns->counters();
  const DnsResponder::Counters& r = impl_->responder.counters();
  f({"dns_udp_answered", "DNS queries over UDP answered by the port's own DNS responder."},
    d.udp_answered);
  f({"dns_udp_truncated",
     "DNS replies over UDP cut to the header and question (TC) to fit the MTU."},
    d.udp_truncated);
  f({"dns_udp_passed", "DNS queries over UDP handed on to libslirp's forwarder (not ours)."},
    d.udp_passed);
  f({"dns_tcp_answered", "DNS queries over TCP answered (REFUSED ones included)."}, d.tcp_answered);
  f({"dns_tcp_refused", "DNS queries over TCP for names not ours, answered REFUSED."},
    d.tcp_refused);
  f({"dns_tcp_reset", "TCP resets the DNS responder sent (unknown connection, bad query)."},
    d.tcp_reset);
  f({"dns_tcp_over_cap", "DNS TCP connections refused: the responder's connection table was full."},
    d.tcp_over_cap);
  f({"dns_tcp_timeouts", "DNS TCP connections dropped: retransmissions exhausted or idle."},
    d.tcp_timeouts);
  f({"dns_bad_frame", "Frames to the DNS address port 53 with a bad length or checksum."},
    d.bad_frame);
  f({"dns_nxdomain", "DNS answers NXDOMAIN: a name in the lab's domain that does not exist."},
    r.nxdomain);
  f({"dns_malformed", "DNS queries to the port's DNS address that could not be parsed."},
    r.malformed);
}

void SlirpPort::set_dns_table(DnsTable table) { impl_->responder.set_table(std::move(table)); }

const DnsTable& SlirpPort::dns_table() const { return impl_->responder.table(); }

size_t SlirpPort::queued_bytes() const { return impl_ ? impl_->pending_bytes : 0; }

HostSocketCounts SlirpPort::host_sockets() const {
  HostSocketCounts c;
  if (!impl_) return c;
  const HostSocketBudget& b = impl_->sockets;
  c.open = b.total();
  c.max = b.max_total();
  c.max_per_port = b.max_per_owner();
  b.for_each_owner([&](uint64_t serial, uint32_t n) {
    c.by_port.push_back({serial, sw::kNoPort, n});
  });
  loop_.for_each_port([&](const backends::LoopPort& p) {
    for (HostSocketCounts::Holder& h : c.by_port) {
      if (h.serial == p.serial()) h.port = p.id();
    }
  });
  std::sort(c.by_port.begin(), c.by_port.end(),
            [](const HostSocketCounts::Holder& a, const HostSocketCounts::Holder& b) {
              return a.serial < b.serial;
            });
  return c;
}

sw::PortId SlirpPort::live_port(const DhcpPort& holder) const {
  const backends::LoopPort* p = loop_.port(holder.id);
  if (p == nullptr || p->serial() != holder.key) return sw::kNoPort;
  return holder.id;
}

std::string SlirpPort::connection_info() const {
  if (!impl_ || impl_->slirp == nullptr) return "";
  char* text = slirp_connection_info(impl_->slirp);
  std::string s = text != nullptr ? text : "";
  std::free(text);
  return s;
}

void SlirpPort::expire_neighbours() { neighbours_->expire(loop_.now()); }

sw::PortId SlirpPort::port_of(const sw::MacAddress& mac) const {
  return loop_.fabric().macs().lookup(mac, vlans().untagged, loop_.now());
}

uint64_t SlirpPort::shutdown_io() {
  const uint64_t dropped = impl_ ? impl_->pending.size() : 0;
  if (impl_) impl_->shutdown();
  return dropped;
}

}  // namespace qswitch::slirp
