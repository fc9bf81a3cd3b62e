// tests/backends/vhost_user_msg_test.cc: the vhost-user control-message codec (QEMU
// docs/interop/vhost-user.rst): every accepted request from bytes, cut at every byte and in
// random chunks, fds on the right message, each error with its text, replies byte-exact. What a
// memory table means is GuestMemory's to check (guest_memory_test.cc); here only that the tables
// decoded from QEMU's messages pass those checks.
#include "backends/vhost_user/vhost_user_msg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backends/vhost_user/guest_memory.h"

namespace qswitch::backends::vhost_user {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the expected bytes below are written for a little-endian host");

// One message as the front-end sends it: bytes and the fds of its sendmsg().
struct Wire {
  std::vector<uint8_t> bytes;
  std::vector<int> fds;
};

void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// GuestMemory's verdict on a decoded table (its semantic checks), every region's host address a
// dummy byte: nothing is translated.
MemoryError check_table(const MemoryTable& t) {
  static uint8_t dummy;
  std::array<uint8_t*, kMaxMemoryRegions> hosts{};
  hosts.fill(&dummy);
  GuestMemory mem;
  return GuestMemory::over_buffers(t.view(), std::span(hosts.data(), t.count), mem);
}

Wire msg(uint32_t request, std::vector<uint8_t> payload, std::vector<int> fds = {},
         uint32_t flags = kVersion) {
  Wire w;
  put32(w.bytes, request);
  put32(w.bytes, flags);
  put32(w.bytes, static_cast<uint32_t>(payload.size()));
  w.bytes.insert(w.bytes.end(), payload.begin(), payload.end());
  w.fds = std::move(fds);
  return w;
}
Wire msg(Request r, std::vector<uint8_t> payload = {}, std::vector<int> fds = {},
         uint32_t flags = kVersion) {
  return msg(static_cast<uint32_t>(r), std::move(payload), std::move(fds), flags);
}

std::vector<uint8_t> u64(uint64_t v) {
  std::vector<uint8_t> b;
  put64(b, v);
  return b;
}
std::vector<uint8_t> state(uint32_t index, uint32_t num) {
  std::vector<uint8_t> b;
  put32(b, index);
  put32(b, num);
  return b;
}
std::vector<uint8_t> region_bytes(const MemoryRegion& r) {
  std::vector<uint8_t> b;
  put64(b, r.guest_phys_addr);
  put64(b, r.memory_size);
  put64(b, r.userspace_addr);
  put64(b, r.mmap_offset);
  return b;
}
std::vector<uint8_t> table(const std::vector<MemoryRegion>& regions, uint32_t count) {
  std::vector<uint8_t> b;
  put32(b, count);
  put32(b, 0);
  for (const MemoryRegion& r : regions) {
    const auto rb = region_bytes(r);
    b.insert(b.end(), rb.begin(), rb.end());
  }
  return b;
}
std::vector<uint8_t> config(uint32_t offset, uint32_t size, uint32_t flags,
                            std::vector<uint8_t> bytes) {
  std::vector<uint8_t> b;
  put32(b, offset);
  put32(b, size);
  put32(b, flags);
  b.insert(b.end(), bytes.begin(), bytes.end());
  return b;
}

// Feeds a stream of messages in reads of the given sizes (the last repeated), each capped at what
// write_space() asks for as a careful recvmsg() caller does; a message's fds go with the read
// that carries its first byte. Collects messages and at most one error.
struct Fed {
  std::vector<Message> messages;
  std::string error;
  std::vector<int> closed;  // fds handed back on error
  size_t results_after_error = 0;
};
Fed feed(MessageReader& reader, const std::vector<Wire>& wires, const std::vector<size_t>& cuts) {
  std::vector<uint8_t> stream;
  std::vector<std::pair<size_t, std::vector<int>>> fds_at;  // stream offset -> fds
  for (const Wire& w : wires) {
    fds_at.emplace_back(stream.size(), w.fds);
    stream.insert(stream.end(), w.bytes.begin(), w.bytes.end());
  }
  Fed out;
  size_t pos = 0;
  size_t next_fds = 0;
  size_t cut = 0;
  while (pos < stream.size()) {
    const std::span<uint8_t> space = reader.write_space();
    if (space.empty()) break;  // failed
    size_t n =
        std::min({cuts[std::min(cut++, cuts.size() - 1)], space.size(), stream.size() - pos});
    std::vector<int> fds;
    if (next_fds < fds_at.size() && fds_at[next_fds].first == pos) {
      fds = fds_at[next_fds++].second;
    }
    std::memcpy(space.data(), stream.data() + pos, n);
    pos += n;
    ReadResult r = reader.commit(n, fds);
    if (r.status == ReadResult::Status::kMessage) out.messages.push_back(r.message);
    if (r.status == ReadResult::Status::kError) {
      out.error = r.error;
      out.closed = r.fds_to_close;
      break;
    }
  }
  return out;
}
Fed feed_whole(const std::vector<Wire>& wires) {
  MessageReader reader;
  return feed(reader, wires, {1u << 20});
}

// Every accepted request, with the payload and fds it expects.
std::vector<Wire> every_accepted_request() {
  const MemoryRegion r0{0, 0xa0000, 0x7f0000000000, 0};
  const MemoryRegion r1{0x100000, 0x7ff00000, 0x7f0000100000, 0x100000};
  std::vector<uint8_t> addr;
  put32(addr, 1);
  put32(addr, 0);
  put64(addr, 0x1000);
  put64(addr, 0x3000);
  put64(addr, 0x2000);
  put64(addr, 0);
  std::vector<uint8_t> single(8, 0);
  const auto rb = region_bytes(r1);
  single.insert(single.end(), rb.begin(), rb.end());
  return {
      msg(Request::kGetFeatures),
      msg(Request::kGetProtocolFeatures),
      msg(Request::kSetProtocolFeatures, u64(protocol_feature::kReplyAck)),
      msg(Request::kGetQueueNum),
      msg(Request::kGetMaxMemSlots),
      msg(Request::kSetOwner),
      msg(Request::kResetOwner),
      msg(Request::kSetFeatures, u64(feature::kOffered)),
      msg(Request::kSetVringCall, u64(0), {100}),
      msg(Request::kSetMemTable, table({r0, r1}, 2), {101, 102}, kVersion | kFlagNeedReply),
      msg(Request::kSetVringNum, state(0, 256)),
      msg(Request::kSetVringBase, state(0, 0)),
      msg(Request::kSetVringAddr, addr),
      msg(Request::kSetVringKick, u64(1), {103}),
      msg(Request::kSetVringErr, u64(1 | kVringNoFd)),
      msg(Request::kSetVringEnable, state(1, 1)),
      msg(Request::kGetVringBase, state(1, 0)),
      msg(Request::kNetSetMtu, u64(1500), {}, kVersion | kFlagNeedReply),
      msg(Request::kSetBackendReqFd, {}, {104}),
      msg(Request::kGetConfig, config(0, 12, 0, std::vector<uint8_t>(12, 0))),
      msg(Request::kSetConfig, config(0, 6, 1, {0x52, 0x54, 0, 0x12, 0x34, 0x56})),
      msg(Request::kAddMemReg, single, {105}),
      msg(Request::kRemMemReg, single),
      msg(Request::kRemMemReg, single, {106}),
  };
}

void expect_every_accepted_request(const Fed& fed, const std::string& how) {
  ASSERT_EQ(fed.error, "") << how;
  ASSERT_EQ(fed.messages.size(), 24u) << how;
  const auto& m = fed.messages;
  EXPECT_EQ(m[0].request, Request::kGetFeatures);
  EXPECT_TRUE(std::holds_alternative<std::monostate>(m[0].payload));
  EXPECT_EQ(m[0].fds.count, 0u);
  EXPECT_EQ(m[1].request, Request::kGetProtocolFeatures);
  EXPECT_EQ(std::get<uint64_t>(m[2].payload), protocol_feature::kReplyAck);
  EXPECT_EQ(m[3].request, Request::kGetQueueNum);
  EXPECT_EQ(m[4].request, Request::kGetMaxMemSlots);
  EXPECT_EQ(m[5].request, Request::kSetOwner);
  EXPECT_EQ(m[6].request, Request::kResetOwner);
  EXPECT_EQ(std::get<uint64_t>(m[7].payload), feature::kOffered);
  EXPECT_FALSE(m[7].need_reply());

  EXPECT_EQ(m[8].request, Request::kSetVringCall);
  EXPECT_EQ(std::get<VringFile>(m[8].payload), (VringFile{0, false}));
  ASSERT_EQ(m[8].fds.count, 1u);
  EXPECT_EQ(m[8].fds.fd[0], 100);

  EXPECT_EQ(m[9].request, Request::kSetMemTable);
  EXPECT_TRUE(m[9].need_reply());
  EXPECT_EQ(m[9].size, 8u + 2 * 32u);
  const auto& t = std::get<MemoryTable>(m[9].payload);
  ASSERT_EQ(t.count, 2u);
  EXPECT_EQ(t.regions[0], (MemoryRegion{0, 0xa0000, 0x7f0000000000, 0}));
  EXPECT_EQ(t.regions[1], (MemoryRegion{0x100000, 0x7ff00000, 0x7f0000100000, 0x100000}));
  ASSERT_EQ(m[9].fds.count, 2u);
  EXPECT_EQ(m[9].fds.fd[0], 101);
  EXPECT_EQ(m[9].fds.fd[1], 102);

  EXPECT_EQ(std::get<VringState>(m[10].payload), (VringState{0, 256}));
  EXPECT_EQ(m[10].request, Request::kSetVringNum);
  EXPECT_EQ(std::get<VringState>(m[11].payload), (VringState{0, 0}));
  EXPECT_EQ(m[11].request, Request::kSetVringBase);
  EXPECT_EQ(std::get<VringAddr>(m[12].payload), (VringAddr{1, 0, 0x1000, 0x3000, 0x2000, 0}));

  EXPECT_EQ(m[13].request, Request::kSetVringKick);
  EXPECT_EQ(std::get<VringFile>(m[13].payload), (VringFile{1, false}));
  ASSERT_EQ(m[13].fds.count, 1u);
  EXPECT_EQ(m[13].fds.fd[0], 103);
  EXPECT_EQ(m[14].request, Request::kSetVringErr);
  EXPECT_EQ(std::get<VringFile>(m[14].payload), (VringFile{1, true}));
  EXPECT_EQ(m[14].fds.count, 0u);

  EXPECT_EQ(m[15].request, Request::kSetVringEnable);
  EXPECT_EQ(std::get<VringState>(m[15].payload), (VringState{1, 1}));
  EXPECT_EQ(m[16].request, Request::kGetVringBase);
  EXPECT_EQ(std::get<VringState>(m[16].payload), (VringState{1, 0}));
  EXPECT_EQ(m[17].request, Request::kNetSetMtu);
  EXPECT_EQ(std::get<uint64_t>(m[17].payload), 1500u);
  EXPECT_TRUE(m[17].need_reply());
  EXPECT_EQ(m[18].request, Request::kSetBackendReqFd);
  ASSERT_EQ(m[18].fds.count, 1u);
  EXPECT_EQ(m[18].fds.fd[0], 104);

  const auto& get = std::get<DeviceConfig>(m[19].payload);
  EXPECT_EQ(m[19].request, Request::kGetConfig);
  EXPECT_EQ(get.offset, 0u);
  EXPECT_EQ(get.size, 12u);
  EXPECT_EQ(get.flags, 0u);
  const auto& set = std::get<DeviceConfig>(m[20].payload);
  EXPECT_EQ(m[20].request, Request::kSetConfig);
  EXPECT_EQ(set.size, 6u);
  EXPECT_EQ(set.flags, 1u);
  EXPECT_EQ(set.bytes[0], 0x52);
  EXPECT_EQ(set.bytes[5], 0x56);

  const MemoryRegion r1{0x100000, 0x7ff00000, 0x7f0000100000, 0x100000};
  EXPECT_EQ(m[21].request, Request::kAddMemReg);
  EXPECT_EQ(std::get<MemoryRegion>(m[21].payload), r1);
  ASSERT_EQ(m[21].fds.count, 1u);
  EXPECT_EQ(m[21].fds.fd[0], 105);
  EXPECT_EQ(m[22].request, Request::kRemMemReg);
  EXPECT_EQ(std::get<MemoryRegion>(m[22].payload), r1);
  EXPECT_EQ(m[22].fds.count, 0u);
  ASSERT_EQ(m[23].fds.count, 1u);
  EXPECT_EQ(m[23].fds.fd[0], 106);
}

TEST(VhostUserMsgTest, EveryAcceptedRequestDecodesFromOneRead) {
  expect_every_accepted_request(feed_whole(every_accepted_request()), "whole");
}

TEST(VhostUserMsgTest, EveryAcceptedRequestDecodesFedOneByteAtATime) {
  MessageReader reader;
  expect_every_accepted_request(feed(reader, every_accepted_request(), {1}), "byte by byte");
}

TEST(VhostUserMsgTest, EveryAcceptedRequestDecodesCutAtEveryByteBoundary) {
  // The stream cut once at each offset: the first read ends there, then reads of whatever is
  // asked for.
  const std::vector<Wire> wires = every_accepted_request();
  size_t total = 0;
  for (const Wire& w : wires) total += w.bytes.size();
  for (size_t first = 1; first < total; ++first) {
    MessageReader reader;
    expect_every_accepted_request(feed(reader, wires, {first, 1u << 20}),
                                  "cut at " + std::to_string(first));
  }
}

TEST(VhostUserMsgTest, EveryAcceptedRequestDecodesInRandomChunks) {
  std::mt19937 rng(20261203);  // fixed seed: the same chunks every run
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> cuts;
    for (int i = 0; i < 2000; ++i)
      cuts.push_back(std::uniform_int_distribution<size_t>(1, 90)(rng));
    MessageReader reader;
    expect_every_accepted_request(feed(reader, every_accepted_request(), cuts),
                                  "round " + std::to_string(round));
  }
}

TEST(VhostUserMsgTest, WriteSpaceNeverReachesIntoTheNextMessage) {
  MessageReader reader;
  EXPECT_EQ(reader.write_space().size(), kHeaderSize);
  const Wire w = msg(Request::kSetVringNum, state(0, 256));
  std::memcpy(reader.write_space().data(), w.bytes.data(), kHeaderSize);
  EXPECT_EQ(reader.commit(kHeaderSize, {}).status, ReadResult::Status::kNeedMore);
  EXPECT_EQ(reader.write_space().size(), 8u);
  std::memcpy(reader.write_space().data(), w.bytes.data() + kHeaderSize, 8);
  EXPECT_EQ(reader.commit(8, {}).status, ReadResult::Status::kMessage);
  EXPECT_EQ(reader.write_space().size(), kHeaderSize);
}

TEST(VhostUserMsgTest, FdsArrivingInALaterReadOfTheSameMessageStillBelongToIt) {
  MessageReader reader;
  const Wire w = msg(Request::kSetVringKick, u64(0));
  std::memcpy(reader.write_space().data(), w.bytes.data(), 5);
  EXPECT_EQ(reader.commit(5, {}).status, ReadResult::Status::kNeedMore);
  std::memcpy(reader.write_space().data(), w.bytes.data() + 5, kHeaderSize - 5);
  EXPECT_EQ(reader.commit(kHeaderSize - 5, {}).status, ReadResult::Status::kNeedMore);
  ASSERT_EQ(reader.write_space().size(), 8u);
  std::memcpy(reader.write_space().data(), w.bytes.data() + kHeaderSize, 8);
  const int fd = 7;
  const ReadResult r = reader.commit(8, {&fd, 1});
  ASSERT_EQ(r.status, ReadResult::Status::kMessage);
  ASSERT_EQ(r.message.fds.count, 1u);
  EXPECT_EQ(r.message.fds.fd[0], 7);
}

TEST(VhostUserMsgTest, PendingFdsOfAHalfReadMessageGoBackToTheCaller) {
  MessageReader reader;
  const Wire w = msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 1), {9});
  std::memcpy(reader.write_space().data(), w.bytes.data(), kHeaderSize);
  const int fd = 9;
  EXPECT_EQ(reader.commit(kHeaderSize, {&fd, 1}).status, ReadResult::Status::kNeedMore);
  std::memcpy(reader.write_space().data(), w.bytes.data() + kHeaderSize, 8);
  EXPECT_EQ(reader.commit(8, {}).status, ReadResult::Status::kNeedMore);
  const FdList pending = reader.take_pending_fds();
  ASSERT_EQ(pending.count, 1u);
  EXPECT_EQ(pending.fd[0], 9);
  EXPECT_EQ(reader.take_pending_fds().count, 0u);
}

TEST(VhostUserMsgTest, EightRegionsIsTheLargestMemoryTable) {
  std::vector<MemoryRegion> regions;
  std::vector<int> fds;
  for (uint32_t i = 0; i < 8; ++i) {
    regions.push_back({uint64_t{i} << 30, 1u << 20, 0x7f0000000000 + (uint64_t{i} << 30), 0});
    fds.push_back(static_cast<int>(20 + i));
  }
  const Fed fed = feed_whole({msg(Request::kSetMemTable, table(regions, 8), fds)});
  ASSERT_EQ(fed.error, "");
  ASSERT_EQ(fed.messages.size(), 1u);
  const auto& t = std::get<MemoryTable>(fed.messages[0].payload);
  ASSERT_EQ(t.count, 8u);
  EXPECT_EQ(t.regions[7], regions[7]);
  EXPECT_EQ(fed.messages[0].fds.count, 8u);
  EXPECT_EQ(fed.messages[0].fds.fd[7], 27);
  EXPECT_EQ(check_table(t), MemoryError::kNone);
}

TEST(VhostUserMsgTest, TheLargestConfigAccessIsAccepted) {
  const Fed fed =
      feed_whole({msg(Request::kSetConfig, config(0, 256, 0, std::vector<uint8_t>(256, 0xab)))});
  ASSERT_EQ(fed.error, "");
  ASSERT_EQ(fed.messages.size(), 1u);
  EXPECT_EQ(std::get<DeviceConfig>(fed.messages[0].payload).bytes[255], 0xab);
}

// What QEMU 7.2 (Debian 1:7.2+dfsg-7+deb12u18) sent to a logging stub back-end that offered
// feature::kOffered and protocol features REPLY_ACK | NET_MTU, for `-netdev vhost-user` with
// `-device virtio-net-pci,vectors=0`: start-up, then the device started (a legacy driver poked
// through qtest: features, two queues, DRIVER_OK, `cont`) and stopped (`stop`). Request, flags,
// fd count, payload in hex as it came off the socket (x86-64, little endian).
struct Captured {
  uint32_t request;
  uint32_t flags;
  int fds;
  const char* payload_hex;
};
constexpr Captured kQemu72Startup[] = {
    {1, 0x1, 0, ""},
    {15, 0x1, 0, ""},
    {16, 0x1, 0, "1800000000000000"},
    {3, 0x1, 0, ""},
    {1, 0x1, 0, ""},
    {13, 0x1, 1, "0000000000000000"},
    {14, 0x1, 1, "0000000000000000"},
    {13, 0x1, 1, "0100000000000000"},
    {14, 0x1, 1, "0100000000000000"},
    {18, 0x1, 0, "0000000001000000"},
    {18, 0x1, 0, "0100000001000000"},
    {2, 0x1, 0, "0388007000000000"},
    {5, 0x9, 2,
     "0200000000000000000000000000000000000c000000000000f0ffcf657f0000"
     "000000000000000000001000000000000000f0070000000000f00fd0657f0000"
     "0000100000000000"},
    {8, 0x1, 0, "0000000000010000"},
    {10, 0x1, 0, "0000000000000000"},
    {9, 0x1, 0,
     "000000000000000000f00fd0657f0000001010d0657f0000000010d0657f0000"
     "0020100000000000"},
    {12, 0x1, 1, "0000000000000000"},
    {13, 0x1, 1, "0000000000000000"},
    {8, 0x1, 0, "0100000000010000"},
    {10, 0x1, 0, "0100000000000000"},
    {9, 0x1, 0,
     "010000000000000000f010d0657f0000001011d0657f0000000011d0657f0000"
     "0020110000000000"},
    {12, 0x1, 1, "0100000000000000"},
    {13, 0x1, 1, "0100000000000000"},
    {5, 0x9, 2,
     "0200000000000000000000000000000000000d000000000000f0ffcf657f0000"
     "000000000000000000000f00000000000000f1070000000000f00ed0657f0000"
     "00000f0000000000"},
    {5, 0x9, 1,
     "01000000000000000000000000000000000000080000000000f0ffcf657f0000"
     "0000000000000000"},
    {11, 0x1, 0, "0000000000000000"},
    {11, 0x1, 0, "0100000000000000"},
    {18, 0x1, 0, "0000000001000000"},
    {18, 0x1, 0, "0100000001000000"},
};

std::vector<Wire> qemu72_startup() {
  std::vector<Wire> wires;
  int next_fd = 200;
  for (const Captured& c : kQemu72Startup) {
    std::vector<uint8_t> payload;
    const std::string hex = c.payload_hex;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      payload.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    }
    std::vector<int> fds;
    for (int i = 0; i < c.fds; ++i) fds.push_back(next_fd++);
    wires.push_back(msg(c.request, payload, fds, c.flags));
  }
  return wires;
}

TEST(VhostUserMsgTest, WhatQemu72SendsAtStartAndStopDecodes) {
  const std::vector<Wire> wires = qemu72_startup();
  std::mt19937 rng(72);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> cuts;
    for (int i = 0; i < 2000; ++i)
      cuts.push_back(std::uniform_int_distribution<size_t>(1, 50)(rng));
    MessageReader reader;
    const Fed fed = feed(reader, wires, round == 0 ? std::vector<size_t>{1u << 20} : cuts);
    ASSERT_EQ(fed.error, "") << "round " << round;
    ASSERT_EQ(fed.messages.size(), std::size(kQemu72Startup));
    for (size_t i = 0; i < fed.messages.size(); ++i) {
      EXPECT_EQ(static_cast<uint32_t>(fed.messages[i].request), kQemu72Startup[i].request);
      EXPECT_EQ(fed.messages[i].fds.count, static_cast<uint32_t>(kQemu72Startup[i].fds));
    }
  }
  // The memory table QEMU sent passes GuestMemory's checks; SET_MEM_TABLE asked for an ack.
  MessageReader reader;
  const Fed fed = feed(reader, wires, {1u << 20});
  const Message& table = fed.messages[12];
  ASSERT_EQ(table.request, Request::kSetMemTable);
  EXPECT_TRUE(table.need_reply());
  const auto& t = std::get<MemoryTable>(table.payload);
  EXPECT_EQ(t.count, 2u);
  EXPECT_EQ(check_table(t), MemoryError::kNone);
  EXPECT_EQ(std::get<uint64_t>(fed.messages[2].payload),
            protocol_feature::kReplyAck | protocol_feature::kNetMtu);
}

// ---- Errors ----------------------------------------------------------------------------------

std::string error_of(const Wire& w) { return feed_whole({w}).error; }

TEST(VhostUserMsgTest, UnknownRequestIsAnErrorNamingItsNumber) {
  EXPECT_EQ(error_of(msg(99, {})), "unknown request 99");
  EXPECT_EQ(error_of(msg(0, {})), "unknown request 0");
  EXPECT_EQ(error_of(msg(0xffffffffu, {})), "unknown request 4294967295");
}

TEST(VhostUserMsgTest, RequestsWeDoNotOfferAreErrors) {
  EXPECT_EQ(error_of(msg(Request::kSetLogBase, std::vector<uint8_t>(16, 0), {5})),
            "VHOST_USER_SET_LOG_BASE (6) is not supported: not offered in our features or "
            "protocol features");
  EXPECT_EQ(error_of(msg(Request::kSetLogFd, {}, {5})),
            "VHOST_USER_SET_LOG_FD (7) is not supported: not offered in our features or protocol "
            "features");
  EXPECT_EQ(error_of(msg(Request::kIotlbMsg, std::vector<uint8_t>(24, 0))),
            "VHOST_USER_IOTLB_MSG (22) is not supported: not offered in our features or protocol "
            "features");
}

TEST(VhostUserMsgTest, PayloadSizeNotMatchingTheRequestIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kSetVringNum, {1, 2, 3, 4})),
            "VHOST_USER_SET_VRING_NUM: payload size 4, expected 8");
  EXPECT_EQ(error_of(msg(Request::kGetFeatures, u64(0))),
            "VHOST_USER_GET_FEATURES: payload size 8, expected 0");
  EXPECT_EQ(error_of(msg(Request::kSetVringAddr, std::vector<uint8_t>(48, 0))),
            "VHOST_USER_SET_VRING_ADDR: payload size 48, expected 40");
  EXPECT_EQ(error_of(msg(Request::kSetMemTable, std::vector<uint8_t>(8 + 31, 0))),
            "VHOST_USER_SET_MEM_TABLE: payload size 39, expected 8 + 32 per region, 1..8 regions");
  EXPECT_EQ(error_of(msg(Request::kGetConfig, std::vector<uint8_t>(11, 0))),
            "VHOST_USER_GET_CONFIG: payload size 11, expected 12..268");
}

TEST(VhostUserMsgTest, PayloadLargerThanAnyRequestsIsAnErrorBeforeItIsRead) {
  MessageReader reader;
  std::vector<uint8_t> h;
  put32(h, static_cast<uint32_t>(Request::kSetMemTable));
  put32(h, kVersion);
  put32(h, 1u << 30);
  std::memcpy(reader.write_space().data(), h.data(), h.size());
  const ReadResult r = reader.commit(h.size(), {});
  ASSERT_EQ(r.status, ReadResult::Status::kError);
  EXPECT_EQ(r.error,
            "VHOST_USER_SET_MEM_TABLE: payload size 1073741824 larger than any request's "
            "(268)");
}

TEST(VhostUserMsgTest, WrongVersionOrReplyFlagIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kGetFeatures, {}, {}, 0)),
            "VHOST_USER_GET_FEATURES: flags 0x0: version 0, expected 1");
  EXPECT_EQ(error_of(msg(Request::kGetFeatures, {}, {}, 2 | kFlagNeedReply)),
            "VHOST_USER_GET_FEATURES: flags 0xa: version 2, expected 1");
  EXPECT_EQ(error_of(msg(Request::kGetFeatures, {}, {}, kVersion | kFlagReply)),
            "VHOST_USER_GET_FEATURES: flags 0x5: REPLY set on a front-end request");
  EXPECT_EQ(error_of(msg(77, {}, {}, 3)), "request 77: flags 0x3: version 3, expected 1");
}

TEST(VhostUserMsgTest, UndefinedHighFlagBitsAreIgnored) {
  const Fed fed = feed_whole({msg(Request::kGetFeatures, {}, {}, kVersion | 0x100)});
  ASSERT_EQ(fed.error, "");
  ASSERT_EQ(fed.messages.size(), 1u);
  EXPECT_EQ(fed.messages[0].flags, kVersion | 0x100);
}

TEST(VhostUserMsgTest, TooManyFdsIsAnErrorAndEveryFdGoesBack) {
  MessageReader reader;
  const Wire w = msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 1));
  std::memcpy(reader.write_space().data(), w.bytes.data(), 4);
  const std::vector<int> first = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(reader.commit(4, first).status, ReadResult::Status::kNeedMore);
  std::memcpy(reader.write_space().data(), w.bytes.data() + 4, 4);
  const std::vector<int> second = {7, 8, 9};
  const ReadResult r = reader.commit(4, second);
  ASSERT_EQ(r.status, ReadResult::Status::kError);
  EXPECT_EQ(r.error, "VHOST_USER_SET_MEM_TABLE: 9 fds, at most 8");
  EXPECT_EQ(r.fds_to_close, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(reader.take_pending_fds().count, 0u);
}

TEST(VhostUserMsgTest, TooManyFdsBeforeTheRequestIsKnownSaysAMessage) {
  MessageReader reader;
  const std::vector<int> fds = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const ReadResult r = reader.commit(0, fds);
  ASSERT_EQ(r.status, ReadResult::Status::kError);
  EXPECT_EQ(r.error, "a message: 9 fds, at most 8");
  EXPECT_EQ(r.fds_to_close, fds);
}

TEST(VhostUserMsgTest, FdsOnARequestThatTakesNoneIsAnErrorAndTheyGoBack) {
  const Fed fed = feed_whole({msg(Request::kGetFeatures, {}, {42})});
  EXPECT_EQ(fed.error, "VHOST_USER_GET_FEATURES: 1 fd on a request that takes none");
  EXPECT_EQ(fed.closed, (std::vector<int>{42}));
  EXPECT_EQ(error_of(msg(Request::kSetVringNum, state(0, 256), {4, 5})),
            "VHOST_USER_SET_VRING_NUM: 2 fds on a request that takes none");
}

TEST(VhostUserMsgTest, MissingOrExtraFdIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kSetVringKick, u64(0))),
            "VHOST_USER_SET_VRING_KICK: 0 fds without the no-fd flag (bit 8), expected 1");
  EXPECT_EQ(error_of(msg(Request::kSetVringCall, u64(kVringNoFd), {3})),
            "VHOST_USER_SET_VRING_CALL: 1 fd with the no-fd flag (bit 8) set");
  EXPECT_EQ(
      error_of(msg(Request::kSetMemTable, table({{0, 4096, 0, 0}, {8192, 4096, 0, 0}}, 2), {3})),
      "VHOST_USER_SET_MEM_TABLE: 1 fd, expected 2 (one per region)");
  EXPECT_EQ(error_of(msg(Request::kSetBackendReqFd)),
            "VHOST_USER_SET_BACKEND_REQ_FD: 0 fds, expected 1");
  std::vector<uint8_t> single(40, 0);
  EXPECT_EQ(error_of(msg(Request::kAddMemReg, single)),
            "VHOST_USER_ADD_MEM_REG: 0 fds, expected 1");
  EXPECT_EQ(error_of(msg(Request::kRemMemReg, single, {1, 2})),
            "VHOST_USER_REM_MEM_REG: 2 fds, expected at most 1");
}

TEST(VhostUserMsgTest, VringFileWithBitsAboveEightIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kSetVringErr, u64(0x200), {3})),
            "VHOST_USER_SET_VRING_ERR: payload 0x200 has bits set above bit 8");
}

TEST(VhostUserMsgTest, RegionCountOutsideOneToEightIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 0), {3})),
            "VHOST_USER_SET_MEM_TABLE: region count 0, expected 1..8");
  EXPECT_EQ(error_of(msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 9), {3})),
            "VHOST_USER_SET_MEM_TABLE: region count 9, expected 1..8");
  EXPECT_EQ(error_of(msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 2), {3, 4})),
            "VHOST_USER_SET_MEM_TABLE: region count 2 but the payload holds 1");
  // Nine regions do not fit the size any request may have.
  EXPECT_EQ(error_of(msg(Request::kSetMemTable, std::vector<uint8_t>(8 + 9 * 32, 0))),
            "VHOST_USER_SET_MEM_TABLE: payload size 296 larger than any request's (268)");
}

TEST(VhostUserMsgTest, ConfigSizeNotMatchingThePayloadIsAnError) {
  EXPECT_EQ(error_of(msg(Request::kGetConfig, config(0, 12, 0, std::vector<uint8_t>(6, 0)))),
            "VHOST_USER_GET_CONFIG: config size 12 but the payload holds 6");
}

TEST(VhostUserMsgTest, AnErrorIsFinal) {
  MessageReader reader;
  const Fed fed = feed(reader, {msg(99, {}), msg(Request::kGetFeatures)}, {1u << 20});
  EXPECT_EQ(fed.error, "unknown request 99");
  EXPECT_TRUE(fed.messages.empty());
  EXPECT_TRUE(reader.failed());
  EXPECT_TRUE(reader.write_space().empty());
  const int fd = 11;
  const ReadResult again = reader.commit(0, {&fd, 1});
  EXPECT_EQ(again.status, ReadResult::Status::kError);
  EXPECT_EQ(again.error, "unknown request 99");
  EXPECT_EQ(again.fds_to_close, (std::vector<int>{11}));
}

TEST(VhostUserMsgTest, AnErrorHandsBackTheFdsOfTheFailingMessage) {
  const Fed fed = feed_whole({msg(Request::kSetVringKick, u64(0), {5}),
                              msg(Request::kSetMemTable, table({{0, 4096, 0, 0}}, 2), {6, 7})});
  ASSERT_EQ(fed.messages.size(), 1u);
  EXPECT_EQ(fed.messages[0].fds.fd[0], 5);
  EXPECT_EQ(fed.error, "VHOST_USER_SET_MEM_TABLE: region count 2 but the payload holds 1");
  EXPECT_EQ(fed.closed, (std::vector<int>{6, 7}));
}

TEST(VhostUserMsgTest, RequestNamesCoverTheSpecsList) {
  EXPECT_STREQ(request_name(Request::kGetFeatures), "VHOST_USER_GET_FEATURES");
  EXPECT_STREQ(request_name(Request::kSetBackendReqFd), "VHOST_USER_SET_BACKEND_REQ_FD");
  EXPECT_STREQ(request_name(Request::kGetStatus), "VHOST_USER_GET_STATUS");
  EXPECT_STREQ(request_name(static_cast<Request>(41)), "unknown");
}

// ---- Replies, against the bytes the spec's layout gives ---------------------------------------

TEST(VhostUserMsgTest, U64ReplyIsByteExact) {
  std::array<uint8_t, kMaxReplySize> out{};
  ASSERT_EQ(encode_u64_reply(Request::kGetFeatures, 0x0000000170006fabull, out), 20u);
  const uint8_t want[20] = {1, 0, 0,    0,    5,    0,    0,    0,    8,    0,
                            0, 0, 0xab, 0x6f, 0x00, 0x70, 0x01, 0x00, 0x00, 0x00};
  EXPECT_TRUE(std::equal(std::begin(want), std::end(want), out.begin()));
  ASSERT_EQ(encode_u64_reply(Request::kGetMaxMemSlots, kMaxRamSlots, out), 20u);
  const uint8_t slots[20] = {36, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(std::equal(std::begin(slots), std::end(slots), out.begin()));
}

TEST(VhostUserMsgTest, VringStateReplyIsByteExact) {
  std::array<uint8_t, kMaxReplySize> out{};
  ASSERT_EQ(encode_vring_state_reply(Request::kGetVringBase, {1, 0x1234}, out), 20u);
  const uint8_t want[20] = {11, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x34, 0x12, 0, 0};
  EXPECT_TRUE(std::equal(std::begin(want), std::end(want), out.begin()));
}

TEST(VhostUserMsgTest, ReplyAckIsZeroForSuccessAndOneForFailure) {
  std::array<uint8_t, kMaxReplySize> out{};
  ASSERT_EQ(encode_reply_ack(Request::kSetMemTable, true, out), 20u);
  const uint8_t ok[20] = {5, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(std::equal(std::begin(ok), std::end(ok), out.begin()));
  ASSERT_EQ(encode_reply_ack(Request::kNetSetMtu, false, out), 20u);
  const uint8_t fail[20] = {20, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(std::equal(std::begin(fail), std::end(fail), out.begin()));
}

TEST(VhostUserMsgTest, ConfigReplyCarriesTheAskedRangeOfTheNetConfig) {
  const auto space = encode_net_config({{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}, 1, 1, 1500});
  const uint8_t want_space[12] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1, 0, 1, 0, 0xdc, 0x05};
  EXPECT_TRUE(std::equal(std::begin(want_space), std::end(want_space), space.begin()));

  DeviceConfig ask;
  ask.offset = 6;
  ask.size = 6;
  std::array<uint8_t, kMaxReplySize> out{};
  ASSERT_EQ(encode_config_reply(ask, space, out), 30u);
  const uint8_t want[30] = {24, 0, 0, 0, 5,    0,   0, 0, 18, 0, 0, 0,  // header: size 12 + 6
                            6,  0, 0, 0, 6,    0,   0, 0, 0,  0, 0, 0,  // offset, size, flags
                            1,  0, 1, 0, 0xdc, 0x05};                   // status, pairs, mtu
  EXPECT_TRUE(std::equal(std::begin(want), std::end(want), out.begin()));
}

TEST(VhostUserMsgTest, ConfigReplyOutsideTheSpaceHasAnEmptyPayload) {
  const auto space = encode_net_config({});
  DeviceConfig ask;
  ask.offset = 8;
  ask.size = 8;
  std::array<uint8_t, kMaxReplySize> out{};
  ASSERT_EQ(encode_config_reply(ask, space, out), 12u);
  const uint8_t want[12] = {24, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(std::equal(std::begin(want), std::end(want), out.begin()));
  ask.offset = 0xfffffff0;
  ask.size = 0x20;
  EXPECT_EQ(encode_config_reply(ask, space, out), 12u);
}

TEST(VhostUserMsgTest, EncodersWriteNothingIntoTooSmallABuffer) {
  std::array<uint8_t, 19> small{};
  EXPECT_EQ(encode_u64_reply(Request::kGetFeatures, 1, small), 0u);
  EXPECT_EQ(encode_vring_state_reply(Request::kGetVringBase, {}, small), 0u);
  EXPECT_EQ(encode_reply_ack(Request::kSetOwner, true, small), 0u);
  EXPECT_TRUE(std::all_of(small.begin(), small.end(), [](uint8_t b) { return b == 0; }));
  DeviceConfig ask;
  ask.size = 12;
  EXPECT_EQ(encode_config_reply(ask, encode_net_config({}), small), 0u);
}

TEST(VhostUserMsgTest, OfferedFeaturesAreTheOnesTheIssueNames) {
  using namespace feature;
  EXPECT_EQ(kOffered, 0x000000017000bbabull);
  EXPECT_EQ(kOffered & (kNetMq | kLogAll | kAccessPlatform | kRingPacked), 0u);
  EXPECT_EQ(protocol_feature::kOffered, 0x18u);
}

}  // namespace
}  // namespace qswitch::backends::vhost_user
