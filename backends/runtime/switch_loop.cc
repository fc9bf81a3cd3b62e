// backends/runtime/switch_loop.cc: the switch on a libuv loop (see the header).
#include "backends/runtime/switch_loop.h"

#include <algorithm>
#include <csignal>
#include <string>

#include "switch/stream_tx_queue.h"

namespace qswitch::backends {

namespace {
constexpr size_t kBurstFrames = 256;
constexpr uint64_t kAgeIntervalMs = 1000;
constexpr uint64_t kPausedRecheckMs = 20;
// Rounds of retrying paused ports and flushing what they forwarded, per check phase.
constexpr int kResumeRounds = 4;
}  // namespace

void LoopPort::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  const sw::PortId id = this->id();
  loop_.fabric().detach(*this);
  counters_.drop_port_closed += shutdown_io();
  PortSnapshot last = snapshot();
  last.id = id;  // detach() took it
  loop_.closed_ports_.push_back(std::move(last));
  if (loop_.closed_ports_.size() > SwitchLoop::kClosedHistory) loop_.closed_ports_.pop_front();
  // Out of the registry before the hook runs: a dialler that redials at once may get this id.
  loop_.retire(id, *this);
  if (loop_.port_log_.allow(now())) {
    io::log_line("port %u down: %s%s%s: %s", id, describe().c_str(),
                 first_mac_.empty() ? "" : " mac ", first_mac_.c_str(), reason.c_str());
  }
  if (close_hook_) {
    auto hook = std::move(close_hook_);
    hook(*this);
  }
}

PortSnapshot LoopPort::snapshot() const {
  PortSnapshot s;
  s.id = id();
  s.serial = serial_;
  s.kind = kind();
  s.peer = describe();
  s.endpoint = endpoint_id_;
  s.first_mac = first_mac_;
  s.up_since = up_since_;
  s.queued_bytes = queued_bytes();
  s.vlans = vlans();
  s.secured = security().enabled;
  s.max_macs = security().max_macs;
  s.held_macs = held_macs();
  s.counters = counters_;
  for_each_extra_counter([&](const sw::CounterInfo& info, uint64_t value) {
    s.extra.push_back({info, value});
  });
  return s;
}

sw::Millis LoopPort::now() const { return loop_.now(); }

void LoopPort::log_queue_full(size_t queued) {
  if (!queue_full_log_.allow(now())) return;
  io::log_line(
      "port %u output queue full (%zu bytes queued, %s not taking frames fast enough): "
      "dropping frames for this port only",
      id(), queued, describe().c_str());
}

bool LoopPort::congested_for(size_t queued, size_t max, sw::Millis now) {
  if (queued <= max / 2) {
    congested_since_ = -1;
    return false;
  }
  if (now - last_progress_ >= kStuckMs || congestion_timed_out_) return false;
  if (congested_since_ < 0) congested_since_ = now;
  if (now - congested_since_ < kCongestedMaxMs) return true;
  congestion_timed_out_ = true;
  counters_.congestion_timeouts += 1;
  if (congestion_log_.allow(now)) {
    io::log_line(
        "port %u congested for over %lld ms (%s reads too slowly): its senders are no "
        "longer held back until its queue drains; frames for it are dropped while the "
        "queue is full",
        id(), static_cast<long long>(kCongestedMaxMs), describe().c_str());
  }
  return false;
}

bool LoopPort::still_throttled(sw::PortId& by) const {
  if (by == sw::kNoPort) return false;
  sw::Port* p = loop_.fabric().port(by);
  if (p != nullptr && p->congested(loop_.now())) return true;
  by = sw::kNoPort;
  return false;
}

SwitchLoop::SwitchLoop(const LoopConfig& config)
    : config_(config),
      fabric_(config.fabric),
      staging_(sw::StreamTxQueue::kStagingChunkSize, kStagingChunks) {
  uv_loop_init(&loop_);
  fabric_.set_events(this);
  burst_.resize(kBurstFrames);

  uv_check_init(&loop_, check_.get());
  check_.get()->data = this;
  uv_check_start(check_.get(),
                 [](uv_check_t* h) { static_cast<SwitchLoop*>(h->data)->on_check(); });

  uv_timer_init(&loop_, age_timer_.get());
  age_timer_.get()->data = this;
  uv_timer_start(
      age_timer_.get(),
      [](uv_timer_t* h) {
        auto* self = static_cast<SwitchLoop*>(h->data);
        self->fabric_.expire(self->now());
        self->port_log_.flush();
      },
      kAgeIntervalMs, kAgeIntervalMs);
  uv_unref(age_timer_.handle());
  uv_timer_init(&loop_, paused_timer_.get());
  paused_timer_.get()->data = this;
  uv_idle_init(&loop_, resume_idle_.get());
  resume_idle_.get()->data = this;

  auto on_stop = [](uv_signal_t* h, int) { static_cast<SwitchLoop*>(h->data)->stop(); };
  uv_signal_init(&loop_, sigint_.get());
  sigint_.get()->data = this;
  uv_signal_start(sigint_.get(), on_stop, SIGINT);
  uv_signal_init(&loop_, sigterm_.get());
  sigterm_.get()->data = this;
  uv_signal_start(sigterm_.get(), on_stop, SIGTERM);
  uv_signal_init(&loop_, sigusr1_.get());
  sigusr1_.get()->data = this;
  uv_signal_start(
      sigusr1_.get(), [](uv_signal_t* h, int) { static_cast<SwitchLoop*>(h->data)->print_stats(); },
      SIGUSR1);
}

void SwitchLoop::on_sighup(std::function<void()> handler) {
  sighup_handler_ = std::move(handler);
  if (sighup_started_) return;
  uv_signal_init(&loop_, sighup_.get());
  sighup_.get()->data = this;
  uv_signal_start(
      sighup_.get(),
      [](uv_signal_t* h, int) {
        auto* self = static_cast<SwitchLoop*>(h->data);
        if (self->sighup_handler_) self->sighup_handler_();
      },
      SIGHUP);
  sighup_started_ = true;
}

SwitchLoop::~SwitchLoop() {
  // Ports first (they close their handles), then ours, then let libuv run the close callbacks.
  // close() retires the port (moves it out of its slot), so take them from the back.
  while (!ports_.empty()) {
    LoopPort* p = ports_.back().get();
    if (p == nullptr || p->closed()) {
      ports_.pop_back();
    } else {
      p->close("switch shutting down");
    }
  }
  retired_.clear();
  port_log_.flush();
  check_.close();
  age_timer_.close();
  paused_timer_.close();
  resume_idle_.close();
  sigint_.close();
  sigterm_.close();
  sigusr1_.close();
  sighup_.close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

LoopPort& SwitchLoop::adopt(std::unique_ptr<LoopPort> port, const sw::VlanMembership& vlans,
                            const sw::PortSecurity& security) {
  LoopPort& p = *port;
  p.up_since_ = now();
  p.serial_ = ++last_serial_;
  fabric_.set_vlans(p, vlans, now());
  fabric_.set_security(p, security);
  const sw::PortId id = fabric_.attach(p);
  if (ports_.size() <= id) ports_.resize(id + 1);
  ports_[id] = std::move(port);
  if (const auto mac = p.own_mac()) fabric_.pin_mac(p, *mac, now());
  if (port_log_.allow(now())) {
    std::string notes;
    if (!vlans.is_default()) notes = vlans.to_string();
    if (security.enabled) notes += std::string(notes.empty() ? "" : ", ") + "port security";
    if (notes.empty()) {
      io::log_line("port %u up: %s", p.id(), p.describe().c_str());
    } else {
      io::log_line("port %u up: %s (%s)", p.id(), p.describe().c_str(), notes.c_str());
    }
  }
  return p;
}

void SwitchLoop::retire(sw::PortId id, LoopPort& port) {
  paused_.erase(std::remove(paused_.begin(), paused_.end(), &port), paused_.end());
  if (id < ports_.size() && ports_[id].get() == &port) retired_.push_back(std::move(ports_[id]));
}

void SwitchLoop::pause_read(LoopPort& port) {
  if (std::find(paused_.begin(), paused_.end(), &port) == paused_.end()) paused_.push_back(&port);
  if (!uv_is_active(paused_timer_.handle())) {
    uv_timer_start(
        paused_timer_.get(), [](uv_timer_t* h) { static_cast<SwitchLoop*>(h->data)->on_check(); },
        kPausedRecheckMs, kPausedRecheckMs);
  }
}

size_t SwitchLoop::add_turn_hook(std::function<void()> hook) {
  turn_hooks_.push_back(std::move(hook));
  return turn_hooks_.size() - 1;
}

void SwitchLoop::remove_turn_hook(size_t id) {
  if (id < turn_hooks_.size()) turn_hooks_[id] = nullptr;
}

void SwitchLoop::on_check() {
  for (size_t i = 0; i < turn_hooks_.size(); ++i) {
    if (turn_hooks_[i]) turn_hooks_[i]();
  }
  fabric_.flush();
  // A port that resumes reads and forwards at once, and may pause again on a destination that
  // the flush after it then empties: nothing would wake it then (its peer's notifications are
  // off, the destination has nothing left to write) but the recheck timer. So retry again while
  // a round resumed someone, and when the rounds run out with ports still paused, let the loop
  // turn once more without blocking (resume_idle_).
  bool resumed = false;
  for (int round = 0; round < kResumeRounds && !paused_.empty(); ++round) {
    // retry_paused_read() may read and flush again; it may also close the port (which removes
    // it from paused_), so walk a copy.
    std::vector<LoopPort*> again;
    again.swap(paused_);
    resumed = false;
    for (LoopPort* p : again) {
      if (p->closed()) continue;
      if (p->retry_paused_read()) {
        pause_read(*p);
      } else {
        resumed = true;
      }
    }
    fabric_.flush();
    if (!resumed) break;
  }
  if (resumed && !paused_.empty()) {
    uv_idle_start(resume_idle_.get(), [](uv_idle_t* h) { uv_idle_stop(h); });
  }
  if (paused_.empty() && uv_is_active(paused_timer_.handle())) uv_timer_stop(paused_timer_.get());
  retired_.clear();
}

int SwitchLoop::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
  return 0;
}

void SwitchLoop::stop() { uv_stop(&loop_); }

void SwitchLoop::on_first_mac(sw::Port& p, const sw::MacAddress& mac) {
  const std::string text = mac.to_string();
  if (LoopPort* lp = port(p.id()); lp != nullptr) lp->first_mac_ = text;
  if (port_log_.allow(now())) io::log_line("port %u first mac %s", p.id(), text.c_str());
}

void SwitchLoop::on_duplicate_mac(const sw::MacAddress& mac, sw::Port& was, sw::Port& now,
                                  uint64_t count) {
  io::log_line(
      "warning: mac %s keeps moving between port %u (%s) and port %u (%s) (%llu times since the "
      "last warning): two guests use the same MAC. Give each guest its own with "
      "-device virtio-net-pci,...,mac=52:54:00:xx:xx:xx",
      mac.to_string().c_str(), was.id(), was.describe().c_str(), now.id(), now.describe().c_str(),
      static_cast<unsigned long long>(count));
}

void SwitchLoop::on_mac_spoof(sw::Port& in, const sw::MacAddress& mac, sw::Port& owner) {
  if (!spoof_log_.allow(now())) return;
  const uint64_t suppressed = spoof_log_.take_suppressed();
  io::log_line(
      "warning: port %u (%s) sent from mac %s, which belongs to port %u (%s): frame "
      "dropped (drop_mac_spoof; %llu similar lines suppressed)",
      in.id(), in.describe().c_str(), mac.to_string().c_str(), owner.id(), owner.describe().c_str(),
      static_cast<unsigned long long>(suppressed));
}

void SwitchLoop::on_port_security(sw::Port& in, const sw::MacAddress& mac, sw::SecurityDrop why,
                                  const sw::IpAddress& addr) {
  if (!spoof_log_.allow(now())) return;
  const uint64_t suppressed = spoof_log_.take_suppressed();
  const std::string claimed =
      addr.family == sw::IpAddress::Family::kNone ? std::string() : ", address " + addr.to_string();
  io::log_line(
      "warning: port %u (%s, port security) sent %s (mac %s%s): frame dropped (%s; %llu similar "
      "lines suppressed)",
      in.id(), in.describe().c_str(), sw::security_drop_text(why), mac.to_string().c_str(),
      claimed.c_str(), sw::security_drop_counter(why), static_cast<unsigned long long>(suppressed));
}

SwitchSnapshot SwitchLoop::snapshot() {
  SwitchSnapshot s;
  s.now = now();
  s.ports.reserve(fabric_.port_count());
  for_each_port([&](const LoopPort& p) { s.ports.push_back(p.snapshot()); });
  s.closed_ports.assign(closed_ports_.begin(), closed_ports_.end());
  s.counters = fabric_.counters();
  s.mac_entries = fabric_.macs().size();
  for (const PortSnapshot& p : s.ports) {
    if (p.vlans.untagged != 0) ++s.vlans[p.vlans.untagged].ports;
    if (p.vlans.trunk) p.vlans.tagged.for_each([&](uint16_t v) { ++s.vlans[v].ports; });
  }
  fabric_.macs().for_each([&](const sw::MacEntryView& e) {
    if (fabric_.macs().lookup(e.mac, e.vlan, s.now) == e.port) ++s.vlans[e.vlan].macs;
  });
  s.mac_capacity = fabric_.macs().capacity();
  return s;
}

void SwitchLoop::print_stats() {
  for (const std::string& line : stats_text(snapshot())) io::log_line("%s", line.c_str());
}

}  // namespace qswitch::backends
