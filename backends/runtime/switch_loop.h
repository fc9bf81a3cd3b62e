// backends/runtime/switch_loop.h: the switch on a libuv loop.
//
// Theory of operation
// - One thread, one uv_loop. Ports do their reads in poll callbacks and hand each burst to the
//   L2Switch, which queues output on the destination ports. A uv_check handle runs after every
//   poll phase and flushes all ports that got frames in that turn: one writev per port per turn.
// - Closing is deferred: a port that closes (peer gone, protocol error) is detached from the
//   switch at once (its MACs are forgotten and nothing is queued to it again), and destroyed in
//   the check phase, after the turn's flush, so no callback ever runs on a freed port.
// - Reading that paused (every receive chunk held by output queues, or throttled by a congested
//   destination) is retried in the check phase, and every kPausedRecheckMs by a timer while any
//   port is paused, since a destination that stopped reading produces no events.
// - A timer ages the MAC table; SIGINT/SIGTERM stop the loop, SIGUSR1 prints the counters.
// - The port registry: SwitchLoop owns every live port in one table indexed by its sw::PortId
//   (ports_). That table is the source of truth for "which ports are there": port(id),
//   for_each_port() and snapshot() read it, and so do the control commands and the slirp port,
//   so no code turns an sw::Port back into a LoopPort. The switch's own Port* table
//   (L2Switch::port()) is its forwarding view of the same set: attach() in adopt() assigns the
//   id, detach() in LoopPort::close() frees it, and the registry follows at both points.
// - snapshot() is the one place that reads every port's counters (switch_snapshot.h); the stats
//   text, the `ports`/`stats` commands and /metrics all render what it returns.
// - The "port N up / first mac / down" lines share one io::LogBudget (a burst of 20, then 5 a
//   second): connection churn cannot flood the log; the age timer logs the "suppressed" summary.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/runtime/io/log.h"
#include "backends/runtime/io/uv_handle.h"
#include "backends/runtime/switch_snapshot.h"
#include "switch/counters.h"
#include "switch/frame.h"
#include "switch/l2_switch.h"

namespace qswitch::backends {

struct LoopConfig {
  sw::SwitchConfig fabric;
  size_t queue_size = 1 << 20;  // per-port output queue bound, bytes
};

class SwitchLoop;

// A switch port that lives on the loop. Subclasses do the I/O; this base does the bookkeeping
// every kind shares: attach, close once with a logged reason, first-MAC logging.
class LoopPort : public sw::Port {
 public:
  explicit LoopPort(SwitchLoop& loop) : loop_(loop) {}
  ~LoopPort() override = default;

  // Idempotent. Detaches from the switch, drops queued output (drop_port_closed), logs
  // "port N down: <peer> mac <first mac>: <reason>", runs the close hook, and retires the port.
  void close(const std::string& reason);
  bool closed() const { return closed_; }
  // Runs once when the port closes (the dialler uses it to redial).
  void set_close_hook(std::function<void(LoopPort&)> hook) { close_hook_ = std::move(hook); }
  // Called from the check phase while the port is on the paused list; return true to stay on it.
  virtual bool retry_paused_read() { return false; }
  const std::string& first_mac() const { return first_mac_; }
  // "stream", "dgram", "tap", "vxlan" or "slirp": what `ports` shows as the kind.
  virtual const char* kind() const = 0;
  // The endpoint that made this port ("listen-1", "connect-2"), empty for others.
  const std::string& endpoint_id() const { return endpoint_id_; }
  void set_endpoint_id(std::string id) { endpoint_id_ = std::move(id); }
  sw::Millis up_since() const { return up_since_; }
  // Tells this port from every other port the loop ever had: ids are reused once a port closes,
  // serials never are (1, 2, 3 ... in the order ports were adopted; 0: not adopted).
  uint64_t serial() const { return serial_; }
  // A queue whose peer took nothing for this long is stuck, not congested (see congested()).
  static constexpr sw::Millis kStuckMs = 100;
  // Congestion holds senders back for at most this long in a row (see output_congested()).
  static constexpr sw::Millis kCongestedMaxMs = 50;
  // Counters a kind of port keeps beyond sw::PortCounters (VXLAN's bad headers, ...): f(info,
  // value) for each, info being the counter's name and meaning, written once, here in the kind.
  // The stats text, `ports` and /metrics show them next to the common ones.
  using ExtraCounterFn = std::function<void(const sw::CounterInfo& info, uint64_t value)>;
  virtual void for_each_extra_counter(const ExtraCounterFn& /*f*/) const {}
  // This port's row of SwitchLoop::snapshot().
  PortSnapshot snapshot() const;
  // A MAC the port itself sends from (the slirp gateway's): adopt() pins it to the port, so no
  // other port can take it (sw::L2Switch::pin_mac()).
  virtual std::optional<sw::MacAddress> own_mac() const { return std::nullopt; }
  // Bytes of frames queued to this port that its peer has not taken yet (`ports`, /metrics).
  virtual size_t queued_bytes() const { return 0; }

 protected:
  // Stop all I/O and release queued output; return how many frames were dropped.
  virtual uint64_t shutdown_io() = 0;

  // The output bookkeeping every kind shares, for its bounded queue (sw::StreamTxQueue,
  // DatagramTx): queue_output() queues the frame or, when the queue is full, drops it
  // (drop_queue_full) with a rate-limited log line; output_congested() is the congested() of the
  // port interface: over half full while the peer took something within kStuckMs, for at most
  // kCongestedMaxMs in a row (then congestion_timeouts counts one, and the port holds nobody back
  // until its queue has drained completely: frames for it are dropped when it is full, its senders
  // go on; a reader that keeps up drains far sooner, so only a slow one loses frames);
  // output_progressed() notes that the peer took something; release_output() is
  // release_chunks() of the port interface for that queue.
  template <typename Queue>
  void queue_output(Queue& queue, const sw::Frame& frame);
  // queue_output() for each of `frames`, in order, through Queue::push_burst().
  template <typename Queue>
  void queue_output_burst(Queue& queue, std::span<const sw::Frame> frames);
  template <typename Queue>
  bool output_congested(const Queue& queue, sw::Millis now) {
    return congested_for(queue.queued_bytes(), queue.max_bytes(), now);
  }
  template <typename Queue>
  void release_output(Queue& queue, const sw::ChunkOwner& pool) {
    counters_.tx_copied += queue.unpin(pool);
  }
  void output_progressed() { last_progress_ = now(); }
  // An empty queue takes a frame: it drained, so hold senders back again when it backs up.
  void output_restarts() {
    output_progressed();
    congestion_timed_out_ = false;
  }
  // For retry_paused_read() of a port that stopped reading because unicast destination `by` was
  // congested: true while it still is; otherwise resets `by` to kNoPort.
  bool still_throttled(sw::PortId& by) const;

  SwitchLoop& loop_;

 private:
  friend class SwitchLoop;
  bool closed_ = false;
  std::string first_mac_;
  std::string endpoint_id_;
  sw::Millis up_since_ = 0;
  uint64_t serial_ = 0;
  std::function<void(LoopPort&)> close_hook_;
  sw::Millis last_progress_ = 0;     // the peer last took output (or the queue started filling)
  sw::Millis congested_since_ = -1;  // -1: the queue is at most half full
  bool congestion_timed_out_ = false;
  io::RateLimit queue_full_log_{1, 10'000};
  io::RateLimit congestion_log_{1, 10'000};
  sw::Millis now() const;
  void log_queue_full(size_t queued);
  bool congested_for(size_t queued, size_t max, sw::Millis now);
};

class SwitchLoop : private sw::L2Switch::Events {
 public:
  explicit SwitchLoop(const LoopConfig& config);
  ~SwitchLoop() override;
  SwitchLoop(const SwitchLoop&) = delete;
  SwitchLoop& operator=(const SwitchLoop&) = delete;

  uv_loop_t* uv() { return &loop_; }
  sw::L2Switch& fabric() { return fabric_; }
  // The staging chunks the stream ports' queues copy short lone frames into
  // (switch/stream_tx_queue.h): kStagingChunks of them at most, 4 MiB, shared, so an idle port
  // holds none and a few warm ones serve the busy ports.
  sw::ChunkPool& staging() { return staging_; }
  static constexpr uint32_t kStagingChunks = 128;
  const LoopConfig& config() const { return config_; }
  sw::Millis now() { return static_cast<sw::Millis>(uv_now(&loop_)); }

  // Takes ownership, puts the port on `vlans` (switch/vlan.h; default: access VLAN 1) with
  // `security` (switch/port_security.h; default: off), attaches it to the switch, logs "port N
  // up: <describe()>".
  LoopPort& adopt(std::unique_ptr<LoopPort> port, const sw::VlanMembership& vlans = {},
                  const sw::PortSecurity& security = {});
  // The registry (see the theory above): the live port with this id, or nullptr.
  LoopPort* port(sw::PortId id) const { return id < ports_.size() ? ports_[id].get() : nullptr; }
  // f(LoopPort&) for every live port, by id.
  template <typename F>
  void for_each_port(F&& f) const {
    for (const auto& p : ports_) {
      if (p) f(*p);
    }
  }
  // Every port (by id), the last closed ones and the switch's counters (switch_snapshot.h).
  SwitchSnapshot snapshot();
  // Scratch space for one receive burst (any port's; used and released within a callback).
  std::span<sw::Frame> burst() { return burst_; }
  // The port stopped reading for lack of chunks: retry in the check phase.
  void pause_read(LoopPort& port);
  // Runs at the end of every loop turn, before the flush (ports that do their work per turn,
  // like the slirp port, hook in here). Returns an id for remove_turn_hook().
  size_t add_turn_hook(std::function<void()> hook);
  void remove_turn_hook(size_t id);

  // SIGHUP runs `handler` on the loop (qswitch reloads its lab file); until this is called,
  // SIGHUP keeps its default action.
  void on_sighup(std::function<void()> handler);

  // Runs until stop(); returns 0.
  int run();
  void stop();
  // Logs stats_text(snapshot()).
  void print_stats();

 private:
  friend class LoopPort;
  // Moves a port that closed (now detached; `id` was its id) out of the registry, to be
  // destroyed after this turn.
  void retire(sw::PortId id, LoopPort& port);
  void on_check();
  void on_first_mac(sw::Port& port, const sw::MacAddress& mac) override;
  void on_duplicate_mac(const sw::MacAddress& mac, sw::Port& was, sw::Port& now,
                        uint64_t count) override;
  void on_mac_spoof(sw::Port& in, const sw::MacAddress& mac, sw::Port& owner) override;
  void on_port_security(sw::Port& in, const sw::MacAddress& mac, sw::SecurityDrop why,
                        const sw::IpAddress& addr) override;

  LoopConfig config_;
  uv_loop_t loop_;
  sw::L2Switch fabric_;
  sw::ChunkPool staging_;  // before ports_: their queues give its chunks back as they go
  std::vector<std::unique_ptr<LoopPort>> ports_;  // the registry: indexed by id, null: free
  std::vector<std::unique_ptr<LoopPort>> retired_;
  std::vector<LoopPort*> paused_;
  std::vector<std::function<void()>> turn_hooks_;  // empty function: removed
  std::vector<sw::Frame> burst_;
  io::RateLimit spoof_log_{1, 10'000};
  uint64_t last_serial_ = 0;  // LoopPort::serial() of the port adopted last
  // Final counters of the most recently closed ports, so stats still explain a port that was
  // closed for a protocol error.
  std::deque<PortSnapshot> closed_ports_;
  static constexpr size_t kClosedHistory = 64;
  io::LogBudget port_log_{"port up/down/first mac lines", 20, 5};
  io::UvHandle<uv_check_t> check_;
  io::UvHandle<uv_timer_t> age_timer_;
  io::UvHandle<uv_timer_t> paused_timer_;  // runs while ports are paused: a stuck peer wakes nobody
  io::UvHandle<uv_idle_t> resume_idle_;    // one more turn without blocking (on_check())
  io::UvHandle<uv_signal_t> sigint_;
  io::UvHandle<uv_signal_t> sigterm_;
  io::UvHandle<uv_signal_t> sigusr1_;
  io::UvHandle<uv_signal_t> sighup_;  // started by on_sighup()
  bool sighup_started_ = false;
  std::function<void()> sighup_handler_;
};

template <typename Queue>
void LoopPort::queue_output(Queue& queue, const sw::Frame& frame) {
  if (queue.empty()) output_restarts();
  if (queue.push(frame)) return;
  counters_.drop_queue_full += 1;
  log_queue_full(queue.queued_bytes());
}

template <typename Queue>
void LoopPort::queue_output_burst(Queue& queue, std::span<const sw::Frame> frames) {
  if (frames.empty()) return;
  if (queue.empty()) output_restarts();
  const size_t taken = queue.push_burst(frames);
  // The rest one by one: a smaller frame after a refused one may still fit.
  for (size_t i = taken; i < frames.size(); ++i) queue_output(queue, frames[i]);
}

}  // namespace qswitch::backends
