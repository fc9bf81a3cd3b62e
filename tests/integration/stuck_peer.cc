// tests/integration/stuck_peer.cc: see the header.
#include "tests/integration/stuck_peer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "tests/support/control_client.h"

namespace qswitch::integration::stuck {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using test_support::frame_dst;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::kTestEthertype;
using test_support::make_frame;
using test_support::RecvResult;

constexpr uint32_t kBroadcastSeqBase = 0x40000000;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

bool is_test_frame(std::span<const uint8_t> f) {
  return f.size() >= 14 && f[12] == (kTestEthertype >> 8) && f[13] == (kTestEthertype & 0xff);
}

}  // namespace

json ports(const std::string& control, std::string* error) {
  auto ctl = test_support::ControlClient::connect(control, error);
  if (!ctl) {
    *error = "control connect to \"" + control + "\": " + *error;
    return json();
  }
  const test_support::LineResult r = ctl->request(json{{"cmd", "ports"}}.dump());
  if (!r.ok()) {
    *error = std::string("no reply to ports: ") + to_string(r.status) + " " + r.error;
    return json();
  }
  json reply = json::parse(r.line, nullptr, false);
  if (!reply.is_object() || !reply.value("ok", false) || !reply["result"].is_array()) {
    *error = "ports failed: " + r.line;
    return json();
  }
  return std::move(reply["result"]);
}

json row_with_mac(const json& rows, const Mac& mac) {
  if (!rows.is_array()) return json();
  for (const json& row : rows) {
    for (const json& m : row["macs"]) {
      if (m == test_support::mac_to_string(mac)) return row;
    }
  }
  return json();
}

json row_of_kind(const json& rows, const std::string& kind) {
  if (!rows.is_array()) return json();
  for (const json& row : rows) {
    if (row.value("kind", "") == kind) return row;
  }
  return json();
}

std::optional<uint64_t> counter(const json& row, const std::string& name) {
  if (!row.is_object() || !row["counters"].is_object() || !row["counters"].contains(name)) {
    return std::nullopt;
  }
  return row["counters"][name].get<uint64_t>();
}

SendFrames stream_sender(FrameClient& client) {
  return
      [&client](std::span<const std::vector<uint8_t>> frames, Millis timeout, std::string* error) {
        std::vector<uint8_t> wire;
        for (const auto& f : frames) FrameClient::append_wire(&wire, f);
        if (client.send_raw(wire, timeout)) return true;
        *error = client.last_error();
        return false;
      };
}

SendFrames datagram_sender(int fd, std::vector<uint8_t> header, std::optional<sockaddr_storage> to,
                           socklen_t to_len) {
  return [fd, header = std::move(header), to, to_len](std::span<const std::vector<uint8_t>> frames,
                                                      Millis timeout, std::string* error) {
    const auto deadline = Clock::now() + timeout;
    std::vector<uint8_t> datagram;
    for (const auto& f : frames) {
      datagram.assign(header.begin(), header.end());
      datagram.insert(datagram.end(), f.begin(), f.end());
      // Bounded in time (the deadline) and in count (each failed try polls for up to 1 ms).
      for (int tries = 0;; ++tries) {
        const ssize_t n =
            to ? ::sendto(fd, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                          reinterpret_cast<const sockaddr*>(&*to), to_len)
               : ::send(fd, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(datagram.size())) break;
        const int err = n < 0 ? errno : EMSGSIZE;
        if (err != EAGAIN && err != ENOBUFS && err != EINTR) {
          *error = std::string("send: ") + std::strerror(err);
          return false;
        }
        if (Clock::now() >= deadline || tries > 1'000'000) {
          *error = "no room to send within " + std::to_string(timeout.count()) +
                   " ms (last error: " + std::strerror(err) + ")";
          return false;
        }
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, static_cast<int>(std::min<Millis>(time_left(deadline), Millis(1)).count()));
      }
    }
    return true;
  };
}

Outcome run_windowed(const SendFrames& send_a, FrameClient& b, const Mac& mac_a, const Mac& mac_b,
                     const Traffic& t) {
  Outcome out;
  uint32_t seq = 0;
  uint32_t bseq = kBroadcastSeqBase;
  std::vector<std::vector<uint8_t>> frames;
  uint32_t window_index = 0;
  while (seq < t.unicast) {
    frames.clear();
    const uint32_t first = seq;
    uint32_t broadcasts = 0;
    for (uint32_t i = 0; i < t.window && seq < t.unicast; ++i) {
      frames.push_back(make_frame(mac_b, mac_a, t.unicast_size, seq++));
      if (seq % t.broadcast_every == 0) {
        frames.push_back(make_frame(kBroadcastMac, mac_a, t.broadcast_size, bseq++));
        ++broadcasts;
      }
    }
    std::string error;
    if (!send_a(frames, t.send_timeout, &error)) {
      out.send_error = "A could not send window " + std::to_string(window_index) + " (after " +
                       std::to_string(out.sent_unicast) + " unicast frames went): " + error;
      break;
    }
    out.sent_unicast = seq;
    out.sent_broadcast += broadcasts;

    // B must have the whole window before the next one goes.
    const auto deadline = Clock::now() + t.window_timeout;
    uint32_t want_unicast = seq - first;
    uint32_t want_broadcast = broadcasts;
    int64_t last_seq = static_cast<int64_t>(first) - 1;
    while (want_unicast + want_broadcast > 0) {
      RecvResult r = b.recv_frame(time_left(deadline));
      if (!r.ok()) {
        out.recv_error = "B: " + std::string(to_string(r.status)) + " " + r.error +
                         " waiting for window " + std::to_string(window_index) + ": still " +
                         std::to_string(want_unicast) + " unicast and " +
                         std::to_string(want_broadcast) + " broadcast frames missing after " +
                         std::to_string(t.window_timeout.count()) + " ms (" +
                         std::to_string(out.received_unicast) + " of " +
                         std::to_string(out.sent_unicast) + " unicast frames arrived)";
        return out;
      }
      if (frame_src(r.frame) != mac_a || !is_test_frame(r.frame)) {
        ++out.skipped;
        continue;
      }
      if (frame_dst(r.frame) == kBroadcastMac) {
        if (r.frame.size() != t.broadcast_size || !frame_is_intact(r.frame, t.broadcast_size)) {
          ++out.corrupt;
        }
        ++out.received_broadcast;
        if (want_broadcast > 0) --want_broadcast;
        continue;
      }
      const int64_t s = frame_seq(r.frame).value_or(-1);
      if (s != last_seq + 1) ++out.out_of_order;
      last_seq = s;
      if (frame_dst(r.frame) != mac_b || r.frame.size() != t.unicast_size ||
          !frame_is_intact(r.frame, t.unicast_size)) {
        ++out.corrupt;
      }
      ++out.received_unicast;
      if (want_unicast > 0) --want_unicast;
    }
    ++window_index;
  }
  return out;
}

void expect_everything_arrived(const Outcome& o, const Traffic& t) {
  EXPECT_TRUE(o.send_error.empty()) << o.send_error;
  EXPECT_TRUE(o.recv_error.empty()) << o.recv_error;
  EXPECT_EQ(o.sent_unicast, t.unicast);
  EXPECT_EQ(o.received_unicast, o.sent_unicast)
      << "B received " << o.received_unicast << " of " << o.sent_unicast << " unicast frames";
  EXPECT_EQ(o.received_broadcast, o.sent_broadcast)
      << "B received " << o.received_broadcast << " of " << o.sent_broadcast << " broadcasts";
  EXPECT_EQ(o.out_of_order, 0u);
  EXPECT_EQ(o.corrupt, 0u);
}

int in_netns_thread(const std::string& netns, const std::function<int(std::string*)>& fn,
                    std::string* error) {
  int result = -1;
  std::thread t([&] {
    const std::string path = "/var/run/netns/" + netns;
    const int ns = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
      *error = "entering " + path + ": " + std::strerror(errno);
      if (ns >= 0) ::close(ns);
      return;
    }
    ::close(ns);
    // This thread alone is in the namespace now; it ends right after fn.
    result = fn(error);
  });
  t.join();
  return result;
}

}  // namespace qswitch::integration::stuck
