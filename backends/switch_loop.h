// backends/switch_loop.h: the switch on a libuv loop.
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
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/io/log.h"
#include "backends/io/uv_handle.h"
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
  // Counters a kind of port keeps beyond sw::PortCounters (VXLAN's bad headers, ...), by name:
  // stats, `ports` and /metrics show them next to the common ones.
  virtual void for_each_extra_counter(
      const std::function<void(const char* name, uint64_t value)>& /*f*/) const {}
  // " name=value" for each of them (empty for most kinds).
  std::string extra_counter_text() const;

 protected:
  // Stop all I/O and release queued output; return how many frames were dropped.
  virtual uint64_t shutdown_io() = 0;
  SwitchLoop& loop_;

 private:
  friend class SwitchLoop;
  bool closed_ = false;
  std::string first_mac_;
  std::string endpoint_id_;
  sw::Millis up_since_ = 0;
  std::function<void(LoopPort&)> close_hook_;
};

class SwitchLoop : private sw::L2Switch::Events {
 public:
  explicit SwitchLoop(const LoopConfig& config);
  ~SwitchLoop() override;
  SwitchLoop(const SwitchLoop&) = delete;
  SwitchLoop& operator=(const SwitchLoop&) = delete;

  uv_loop_t* uv() { return &loop_; }
  sw::L2Switch& fabric() { return fabric_; }
  const LoopConfig& config() const { return config_; }
  sw::Millis now() { return static_cast<sw::Millis>(uv_now(&loop_)); }

  // Takes ownership, attaches to the switch, logs "port N up: <describe()>".
  LoopPort& adopt(std::unique_ptr<LoopPort> port);
  // Scratch space for one receive burst (any port's; used and released within a callback).
  std::span<sw::Frame> burst() { return burst_; }
  // The port stopped reading for lack of chunks: retry in the check phase.
  void pause_read(LoopPort& port);
  // Runs at the end of every loop turn, before the flush (ports that do their work per turn,
  // like the slirp port, hook in here). Returns an id for remove_turn_hook().
  size_t add_turn_hook(std::function<void()> hook);
  void remove_turn_hook(size_t id);

  // Runs until stop(); returns 0.
  int run();
  void stop();
  void print_stats();

 private:
  friend class LoopPort;
  void retire(LoopPort& port);
  void on_check();
  void on_first_mac(sw::Port& port, const sw::MacAddress& mac) override;
  void on_duplicate_mac(const sw::MacAddress& mac, sw::Port& was, sw::Port& now,
                        uint64_t count) override;

  LoopConfig config_;
  uv_loop_t loop_;
  sw::L2Switch fabric_;
  std::vector<std::unique_ptr<LoopPort>> ports_;
  std::vector<std::unique_ptr<LoopPort>> retired_;
  std::vector<LoopPort*> paused_;
  std::vector<std::function<void()>> turn_hooks_;  // empty function: removed
  std::vector<sw::Frame> burst_;
  // Final counters of the most recently closed ports, so stats still explain a port that was
  // closed for a protocol error.
  struct ClosedPort {
    sw::PortId id;
    std::string peer;
    sw::PortCounters counters;
    std::string extra;  // extra_counter_text() at close
  };
  std::deque<ClosedPort> closed_ports_;
  static constexpr size_t kClosedHistory = 64;
  io::UvHandle<uv_check_t> check_;
  io::UvHandle<uv_timer_t> age_timer_;
  io::UvHandle<uv_timer_t> paused_timer_;  // runs while ports are paused: a stuck peer wakes nobody
  io::UvHandle<uv_signal_t> sigint_;
  io::UvHandle<uv_signal_t> sigterm_;
  io::UvHandle<uv_signal_t> sigusr1_;
};

}  // namespace qswitch::backends
