// tests/integration/stuck_peer.h: what the stuck-peer tests of every port kind share.
//
// The property (issue 9): a receiver S that never reads (a paused VM, a guest still in its
// firmware) while A sends unicast to B plus periodic broadcasts must not hold anyone back: B
// keeps receiving for the whole run, and S's port counts what it could not take. Every frame
// queued to S pins the receive memory of the port it came from, so each kind that lends receive
// memory (stream, dgram, tap, VXLAN, slirp) is tested as A, and each kind that can be a receiver
// that never reads (stream, unix and UDP dgram) as S.
//
// Theory of operation
// - run_windowed(): A sends `window` unicast frames to B (a broadcast after every
//   `broadcast_every` of them) through a SendFrames of its kind, then B must receive all of
//   them, intact and in order, within `window_timeout` before the next window goes. The window
//   keeps a datagram sender (UDP, tap, VXLAN: the kernel drops silently when the switch reads
//   slower than it sends) within what the kernel queues, so a missing frame means the switch
//   stopped reading A, never that A outran it. Frames at B that A did not send (the kernels'
//   IPv6 noise on tap, others' broadcasts) are skipped and counted.
// - A SendFrames sends every frame in order or reports why not within its timeout: a stream
//   client writes the framed bytes; a datagram socket waits for room (poll) on EAGAIN/ENOBUFS.
// - State is read through the control API's `ports` command: the row of the port that learned a
//   MAC, or the first port of a kind, and its counters.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/frame_client.h"
#include "tests/support/test_frames.h"

namespace qswitch::integration::stuck {

using test_support::FrameClient;
using test_support::Mac;
using test_support::Millis;

// The `ports` reply's rows (an array), or a null json with *error set.
nlohmann::json ports(const std::string& control, std::string* error);
// The row whose learned MACs include `mac` / the first row of kind `kind` (`ports`' "kind"), or a
// null json.
nlohmann::json row_with_mac(const nlohmann::json& rows, const Mac& mac);
nlohmann::json row_of_kind(const nlohmann::json& rows, const std::string& kind);
// Counter `name` of a `ports` row, or nullopt when the row has none.
std::optional<uint64_t> counter(const nlohmann::json& row, const std::string& name);

struct Traffic {
  uint32_t unicast = 30000;  // A -> B frames
  size_t unicast_size = 200;
  uint32_t broadcast_every = 20;  // one broadcast after this many unicast frames
  size_t broadcast_size = 1500;   // S's 1 MiB queue overflows within the run
  uint32_t window = 60;           // unicast frames in flight before B must have them all
  Millis window_timeout{5000};
  Millis send_timeout{2000};
};

struct Outcome {
  uint32_t sent_unicast = 0;
  uint32_t sent_broadcast = 0;
  uint32_t received_unicast = 0;
  uint32_t received_broadcast = 0;
  uint32_t out_of_order = 0;
  uint32_t corrupt = 0;
  uint32_t skipped = 0;  // frames at B that A did not send
  std::string send_error;
  std::string recv_error;
};

// Sends `frames` in order; false with *error when they could not all go within `timeout`.
using SendFrames = std::function<bool(std::span<const std::vector<uint8_t>> frames, Millis timeout,
                                      std::string* error)>;

// A stream client's sender: the frames in QEMU's framing, one write.
SendFrames stream_sender(FrameClient& client);
// A datagram socket's sender: one datagram per frame, `header` in front of each (VXLAN's), sent to
// `to` (or, when `to` is empty, on a connected socket). On EAGAIN/ENOBUFS it polls for room; a
// connected unix socket's poll waits for room at the peer.
SendFrames datagram_sender(int fd, std::vector<uint8_t> header = {},
                           std::optional<sockaddr_storage> to = std::nullopt, socklen_t to_len = 0);

// See the theory above. B's reader is `b`; mac_a/mac_b are the frames' source/destination.
Outcome run_windowed(const SendFrames& send_a, FrameClient& b, const Mac& mac_a, const Mac& mac_b,
                     const Traffic& t);
// Every unicast and broadcast A sent reached B, intact and in order, and A could always send.
void expect_everything_arrived(const Outcome& o, const Traffic& t);

// Runs `fn` on a thread that has entered network namespace `netns` (its name under
// /var/run/netns) and returns its result: a socket made there stays in that namespace. -1 and
// *error when the namespace could not be entered.
int in_netns_thread(const std::string& netns, const std::function<int(std::string*)>& fn,
                    std::string* error);

}  // namespace qswitch::integration::stuck
