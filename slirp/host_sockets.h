// slirp/host_sockets.h: caps on the host sockets guests make libslirp open through the slirp
// port, per switch and per switch port, so that a guest opening thousands of UDP flows or TCP
// connections meets a cap with a counter instead of the process's fd limit.
//
// Theory of operation
// - libslirp opens one host socket per guest UDP source (address and port: udp_input keys its
//   sockets so), one per TCP connection the guest opens (a SYN that tcp_input takes to
//   tcp_fconnect) and one per ICMP echo request to an address other than its own (icmp_send),
//   and tells its embedder of each through register_poll_fd / unregister_poll_fd. It has no way
//   to refuse one, so the caps are kept at the door: socket_request() reads a guest packet
//   before slirp_input and says whether it may open a socket, and for UDP and TCP under which
//   flow key.
// - HostSocketBudget counts the sockets registered while a guest packet was in slirp_input
//   (between begin() and end()), each under the switch port the packet came from (an owner: the
//   port's serial, never reused) and its flow key. admit() lets a packet through when it cannot
//   open a socket, when its flow already has one (a UDP flow's next datagram, a SYN sent
//   again), or when neither the switch's nor its port's count is at its cap. A refused packet
//   is dropped by the caller and counted; its flow is as if the network lost it.
// - Sockets libslirp opens by itself (host forwards' listeners, connections accepted on them)
//   are outside the budget: no guest asked for them.
// - Robustness: fds are slots in a table indexed by fd; a register for a slot still in use
//   (an unregister libslirp never sent) releases the old entry first, an unregister for a slot
//   not in use is ignored, so the counts cannot drift either way. Memory: one slot per fd
//   number up to the highest seen, one map entry per counted socket and per owner holding one.
// - Untrusted input: socket_request() reads the packet parse_guest_packet() checked, and reads
//   no byte past l4_size. No allocation there; admit() allocates nothing either (per frame).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "slirp/guest_packet.h"
#include "slirp/slirp_options.h"

namespace qswitch::slirp {

// A flow as libslirp keys its sockets: for UDP the guest's address and source port (dst is
// zero), for TCP both ends.
struct FlowKey {
  uint8_t proto = 0;
  bool ipv6 = false;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  std::array<uint8_t, 16> src{};
  std::array<uint8_t, 16> dst{};
  bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const;
};

struct SocketRequest {
  enum class Kind : uint8_t {
    kNone,      // opens no host socket
    kFlow,      // a UDP datagram or a TCP SYN: opens one unless its flow has one (key)
    kPing,      // an ICMP echo request to another address: opens one of its own
    kFragment,  // an IPv4 fragment after the first: completes a datagram admitted already
  };
  Kind kind = Kind::kNone;
  FlowKey key;  // kFlow only
};

SocketRequest socket_request(const GuestPacket& packet, const SlirpOptions& options);

class HostSocketBudget {
 public:
  enum class Verdict : uint8_t { kAdmit, kPortCap, kSwitchCap };

  // 0: no cap.
  HostSocketBudget(uint32_t max_total, uint32_t max_per_owner)
      : max_total_(max_total), max_per_owner_(max_per_owner) {}

  Verdict admit(uint64_t owner, const SocketRequest& request) const;

  // Sockets registered between begin() and end() belong to `owner` (and to the request's flow).
  void begin(uint64_t owner, const SocketRequest& request);
  void end() { in_input_ = false; }
  // libslirp's register_poll_fd / unregister_poll_fd.
  void registered(int fd);
  void unregistered(int fd);

  uint32_t total() const { return total_; }
  uint32_t held_by(uint64_t owner) const;
  uint32_t max_total() const { return max_total_; }
  uint32_t max_per_owner() const { return max_per_owner_; }
  // Every owner holding sockets, with its count.
  void for_each_owner(const std::function<void(uint64_t owner, uint32_t sockets)>& f) const;

 private:
  struct Slot {
    bool used = false;
    bool keyed = false;
    uint64_t owner = 0;
    FlowKey key;
  };
  void release(Slot& slot, int fd);

  uint32_t max_total_;
  uint32_t max_per_owner_;
  uint32_t total_ = 0;
  std::vector<Slot> fds_;
  std::unordered_map<uint64_t, uint32_t> per_owner_;
  std::unordered_map<FlowKey, int, FlowKeyHash> flows_;  // flow -> its socket's fd
  bool in_input_ = false;
  uint64_t owner_ = 0;
  SocketRequest request_;
};

}  // namespace qswitch::slirp
