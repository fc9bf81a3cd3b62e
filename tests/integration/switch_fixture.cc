// tests/integration/switch_fixture.cc: see switch_fixture.h.
#include "tests/integration/switch_fixture.h"

#include "tests/integration/control_json.h"

#include <iostream>
#include <map>
#include <thread>

namespace qswitch::integration {
namespace {

using Clock = std::chrono::steady_clock;
using test_support::frame_is_intact;
using test_support::frame_seq;
using test_support::frame_src;
using test_support::kBroadcastMac;
using test_support::mac_to_string;
using test_support::make_frame;

constexpr uint32_t kAnnounceSeqBase = 0x10000000;
constexpr size_t kAnnounceSize = 64;

Millis time_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
  return left.count() < 0 ? Millis(0) : left;
}

}  // namespace

const char* qswitch_binary() { return QSWITCH_BINARY; }

void SwitchFixture::TearDown() {
  if (sw_.pid() > 0) {
    // In a QSWITCH_SANITIZE build a sanitizer report in qswitch's stderr fails the test even when
    // the frames all arrived.
    const std::string err = sw_.stderr_text();
    EXPECT_EQ(err.find("Sanitizer"), std::string::npos) << "qswitch reported:\n" << err;
    EXPECT_EQ(err.find("runtime error:"), std::string::npos) << "qswitch reported:\n" << err;
  }
  if (HasFailure() && sw_.pid() > 0) {
    std::string err = sw_.stderr_text();
    constexpr size_t kTail = 6000;
    if (err.size() > kTail) err = "...\n" + err.substr(err.size() - kTail);
    std::cerr << "--- qswitch stdout ---\n"
              << sw_.stdout_text() << "--- qswitch stderr (tail) ---\n"
              << err << "---\n";
  }
  sw_.kill_now();
}

LaunchOptions SwitchFixture::launch_options(std::vector<std::string> args) const {
  LaunchOptions o;
  o.binary = qswitch_binary();
  o.args = std::move(args);
  o.stderr_path = tmp_.file("qswitch.stderr");
  return o;
}

::testing::AssertionResult SwitchFixture::start_switch(std::vector<std::string> extra_args,
                                                       bool listen_default) {
  if (tmp_.path().empty()) return ::testing::AssertionFailure() << "could not create a temp dir";
  std::vector<std::string> args;
  if (listen_default) {
    address_ = "unix:" + tmp_.file("sw.sock");
    args = {"--listen", address_};
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  if (!sw_.start(launch_options(args))) {
    return ::testing::AssertionFailure() << "starting " << qswitch_binary() << ": " << sw_.error();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SwitchFixture::connect_clients(size_t count,
                                                          std::vector<FrameClient>* out,
                                                          const std::string& address) {
  const std::string& ep = address.empty() ? address_ : address;
  for (size_t i = 0; i < count; ++i) {
    std::string error;
    auto c = FrameClient::connect(ep, &error);
    if (!c) return ::testing::AssertionFailure() << "client " << i << ": " << error;
    out->push_back(std::move(*c));
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SwitchFixture::announce(std::vector<FrameClient>& clients,
                                                   const std::vector<Mac>& macs, Millis timeout) {
  const size_t n = clients.size();
  if (n == 0 || macs.size() != n) return ::testing::AssertionFailure() << "announce: bad sizes";
  const auto deadline = Clock::now() + timeout;
  std::map<Mac, size_t> index_of;
  for (size_t i = 0; i < n; ++i) index_of[macs[i]] = i;

  // 1. The last client's broadcast reaches every other client.
  const size_t last = n - 1;
  if (!clients[last].send_frame(
          make_frame(kBroadcastMac, macs[last], kAnnounceSize, kAnnounceSeqBase + last))) {
    return ::testing::AssertionFailure()
           << "client " << last << " send: " << clients[last].last_error();
  }
  for (size_t j = 0; j < last; ++j) {
    RecvResult r = clients[j].recv_frame(time_left(deadline));
    if (!r.ok()) {
      return ::testing::AssertionFailure()
             << "client " << j << " did not receive the broadcast of client " << last << " ("
             << mac_to_string(macs[last]) << "): " << to_string(r.status) << " " << r.error;
    }
    if (frame_src(r.frame) != macs[last] || !frame_is_intact(r.frame, kAnnounceSize)) {
      return ::testing::AssertionFailure()
             << "client " << j << " received an unexpected frame from "
             << mac_to_string(frame_src(r.frame)) << " size " << r.frame.size();
    }
  }
  if (n == 1) return ::testing::AssertionSuccess();

  // 2. Everyone else broadcasts at once; each client sees each other one exactly once.
  for (size_t i = 0; i < last; ++i) {
    if (!clients[i].send_frame(
            make_frame(kBroadcastMac, macs[i], kAnnounceSize, kAnnounceSeqBase + i))) {
      return ::testing::AssertionFailure()
             << "client " << i << " send: " << clients[i].last_error();
    }
  }
  for (size_t j = 0; j < n; ++j) {
    std::vector<bool> seen(n, false);
    seen[j] = true;
    seen[last] = true;
    size_t missing = j == last ? n - 1 : n - 2;
    while (missing > 0) {
      RecvResult r = clients[j].recv_frame(time_left(deadline));
      if (!r.ok()) {
        std::string which;
        for (size_t i = 0; i < n && which.size() < 200; ++i) {
          if (!seen[i]) which += " " + std::to_string(i);
        }
        return ::testing::AssertionFailure()
               << "client " << j << " is missing " << missing << " broadcasts (from clients"
               << which << "): " << to_string(r.status) << " " << r.error;
      }
      auto it = index_of.find(frame_src(r.frame));
      if (it == index_of.end() || !frame_is_intact(r.frame, kAnnounceSize) ||
          frame_seq(r.frame) != kAnnounceSeqBase + it->second) {
        return ::testing::AssertionFailure()
               << "client " << j << " received an unexpected or corrupt frame from "
               << mac_to_string(frame_src(r.frame)) << " size " << r.frame.size();
      }
      if (it->second == j) {
        return ::testing::AssertionFailure() << "client " << j << " received its own broadcast";
      }
      if (seen[it->second]) {
        return ::testing::AssertionFailure()
               << "client " << j << " received the broadcast of client " << it->second << " twice";
      }
      seen[it->second] = true;
      --missing;
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SwitchFixture::start_with_clients(size_t count,
                                                             std::vector<FrameClient>* clients,
                                                             std::vector<Mac>* macs,
                                                             std::vector<std::string> extra_args) {
  if (auto r = start_switch(std::move(extra_args)); !r) return r;
  if (auto r = connect_clients(count, clients); !r) return r;
  for (size_t i = 0; i < count; ++i) {
    macs->push_back(test_support::test_mac(static_cast<uint32_t>(i + 1)));
  }
  return announce(*clients, *macs);
}

::testing::AssertionResult SwitchFixture::send_and_expect(FrameClient& from, FrameClient& to,
                                                          const Mac& dst, const Mac& src,
                                                          size_t size, uint32_t seq,
                                                          Millis timeout) {
  const std::vector<uint8_t> frame = make_frame(dst, src, size, seq);
  if (!from.send_frame(frame)) {
    return ::testing::AssertionFailure() << "send: " << from.last_error();
  }
  RecvResult r = to.recv_frame(timeout);
  if (!r.ok()) {
    return ::testing::AssertionFailure()
           << "frame " << mac_to_string(src) << " -> " << mac_to_string(dst) << " seq " << seq
           << " not received: " << to_string(r.status) << " " << r.error;
  }
  const size_t expect_size = std::max(size, test_support::kMinPaddedSize);
  if (r.frame.size() != expect_size || !frame_is_intact(r.frame, size) ||
      frame_src(r.frame) != src || frame_seq(r.frame) != frame_seq(frame)) {
    return ::testing::AssertionFailure()
           << "received a different frame: size " << r.frame.size() << " (want " << expect_size
           << ") from " << mac_to_string(frame_src(r.frame)) << " seq "
           << frame_seq(r.frame).value_or(0) << " (want " << seq << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SwitchFixture::expect_silence(FrameClient& client,
                                                         const std::string& who, Millis window) {
  RecvResult r = client.recv_frame(window);
  if (r.status == RecvResult::Status::kTimeout) return ::testing::AssertionSuccess();
  auto f = ::testing::AssertionFailure()
           << who << " should have received nothing but got " << to_string(r.status);
  if (r.ok()) {
    f << " (frame from " << mac_to_string(frame_src(r.frame)) << " to "
      << mac_to_string(test_support::frame_dst(r.frame)) << ", size " << r.frame.size() << ")";
  }
  return f;
}

::testing::AssertionResult SwitchFixture::port_id(const Mac& mac, uint32_t* id) {
  auto found = sw_.port_id_for_mac(mac_to_string(mac));
  if (!found) return ::testing::AssertionFailure() << sw_.error();
  *id = *found;
  return ::testing::AssertionSuccess();
}

namespace {

// Polls `ports` (through sw.stats()) until `done` holds for the snapshot, or `timeout`.
template <typename Done>
::testing::AssertionResult poll_ports(QswitchProcess& sw, Millis timeout, Done done,
                                      const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  for (;;) {
    auto snap = sw.stats();
    if (!snap) return ::testing::AssertionFailure() << "reading ports: " << sw.error();
    if (done(*snap)) return ::testing::AssertionSuccess();
    last = snap->text;
    if (std::chrono::steady_clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << what << " within " << timeout.count() << " ms; last:\n"
             << last;
    }
    std::this_thread::sleep_for(10ms);  // polling the control API, bounded by the deadline
  }
}

}  // namespace

::testing::AssertionResult SwitchFixture::wait_port_closed(uint32_t id, Millis timeout) {
  return poll_ports(
      sw_, timeout, [id](const StatsSnapshot& s) { return s.port(id) == nullptr; },
      "port " + std::to_string(id) + " did not close");
}

::testing::AssertionResult SwitchFixture::wait_port_count(size_t count, Millis timeout) {
  return poll_ports(
      sw_, timeout, [count](const StatsSnapshot& s) { return s.ports.size() == count; },
      "`ports` did not list " + std::to_string(count) + " ports");
}

::testing::AssertionResult SwitchFixture::wait_port_counter(uint32_t id, const std::string& name,
                                                            uint64_t value) {
  uint64_t seen = 0;
  for (int i = 0; i < 100; ++i) {
    const auto s = sw_.stats();
    if (s && s->port(id) != nullptr && (seen = s->port(id)->get(name)) >= value) {
      return ::testing::AssertionSuccess();
    }
    (void)control_result(sw_, {{"cmd", "version"}});  // one round trip, then look again
  }
  return ::testing::AssertionFailure()
         << "port " << id << " " << name << " stayed " << seen << " (want " << value << ")";
}

}  // namespace qswitch::integration
