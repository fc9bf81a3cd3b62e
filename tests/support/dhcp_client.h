// tests/support/dhcp_client.h: a synthetic DHCP client's messages (RFC 2131/2132), built as
// Ethernet frames and decoded from the server's replies, plus one full DISCOVER -> OFFER ->
// REQUEST -> ACK exchange over a FrameClient.
//
// Theory of operation
// - make_dhcp_frame() builds what a guest sends before it has an address: Ethernet broadcast,
//   IPv4 0.0.0.0 -> 255.255.255.255, UDP 68 -> 67, a BOOTREQUEST with the magic cookie and
//   options 53 (type), 61 (client id), 50 (requested address), 54 (server id), 12 (host name,
//   when given), 55 (parameter request list), 255 (end). The broadcast flag is the caller's choice:
//   a server may answer either at L2 broadcast or unicast to chaddr.
// - parse_dhcp_reply() decodes any IPv4/UDP 67 -> 68 frame as a BOOTREPLY and its options; it
//   rejects (nullopt + reason) anything malformed rather than guessing. An option whose length
//   runs past the end, a missing cookie or a missing end option are errors.
// - Replies may be broadcast, so a client on a shared segment sees others' replies too:
//   run_dhcp_exchange() skips every frame that is not a reply for its own xid and chaddr
//   (counting them) and checks the one that is with check_dhcp_reply().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/frame_client.h"
#include "tests/support/ip_frames.h"
#include "tests/support/test_frames.h"

namespace qswitch::test_support {

enum class DhcpType : uint8_t {
  kDiscover = 1,
  kOffer = 2,
  kRequest = 3,
  kDecline = 4,
  kAck = 5,
  kNak = 6,
  kRelease = 7,
  kInform = 8,
};
const char* to_string(DhcpType type);

inline constexpr uint16_t kDhcpServerPort = 67;
inline constexpr uint16_t kDhcpClientPort = 68;

struct DhcpClientMessage {
  Mac mac{};
  uint32_t xid = 0;
  DhcpType type = DhcpType::kDiscover;
  bool broadcast_flag = false;
  uint32_t ciaddr = 0;
  std::optional<uint32_t> requested_ip;  // option 50
  std::optional<uint32_t> server_id;     // option 54
  std::string hostname;                  // option 12 when not empty (at most 255 bytes)
};

// The BOOTP payload (what goes after the UDP header), and the whole frame.
std::vector<uint8_t> make_dhcp_payload(const DhcpClientMessage& m);
std::vector<uint8_t> make_dhcp_frame(const DhcpClientMessage& m);

struct DhcpReply {
  Mac eth_dst{};
  Mac eth_src{};
  uint32_t ip_src = 0;
  uint32_t ip_dst = 0;
  uint8_t op = 0;
  uint8_t htype = 0;
  uint8_t hlen = 0;
  uint32_t xid = 0;
  uint16_t flags = 0;
  uint32_t ciaddr = 0;
  uint32_t yiaddr = 0;
  uint32_t siaddr = 0;
  Mac chaddr{};
  std::map<uint8_t, std::vector<uint8_t>> options;  // code -> value (last one wins)

  std::optional<DhcpType> type() const;                     // option 53
  std::optional<uint32_t> addr_option(uint8_t code) const;  // first 4 bytes of a 4n-byte option
  std::optional<uint32_t> u32_option(uint8_t code) const;   // a 4-byte number (51 lease time)
};

// A UDP 67 -> 68 frame decoded as a BOOTP/DHCP reply; nullopt and *why when it is something else
// or malformed.
std::optional<DhcpReply> parse_dhcp_reply(std::span<const uint8_t> frame, std::string* why);

// What a reply from the slirp port's DHCP server must look like.
struct DhcpExpect {
  Mac server_mac{};        // Ethernet source
  uint32_t server_id = 0;  // option 54, also the IPv4 source
  uint32_t router = 0;     // option 3
  uint32_t dns = 0;        // option 6
  uint32_t netmask = 0;    // option 1
};
// Empty when `reply` is a well-formed `type` for (mac, xid) as `expect` says; otherwise what is
// wrong with it.
std::string check_dhcp_reply(const DhcpReply& reply, DhcpType type, const Mac& mac, uint32_t xid,
                             const DhcpExpect& expect);

// Waits on `client` for the server's reply to (mac, xid) (any frame that is not one is skipped
// and counted in *skipped), until `timeout`. nullopt and *why on timeout, EOF, or a malformed
// frame that claims to be a reply to this xid.
std::optional<DhcpReply> wait_dhcp_reply(FrameClient& client, const Mac& mac, uint32_t xid,
                                         Millis timeout, std::string* why,
                                         size_t* skipped = nullptr);

struct DhcpExchange {
  DhcpReply offer;
  DhcpReply ack;
  uint32_t address() const { return ack.yiaddr; }
};
// DISCOVER, OFFER, REQUEST (for the offered address, naming the server), ACK, all checked with
// check_dhcp_reply(); the ACK must be for the offered address. nullopt and *why otherwise.
// `hostname`: sent as option 12 in both the DISCOVER and the REQUEST, as dhclient does.
std::optional<DhcpExchange> run_dhcp_exchange(FrameClient& client, const Mac& mac, uint32_t xid,
                                              bool broadcast_flag, const DhcpExpect& expect,
                                              Millis timeout, std::string* why,
                                              const std::string& hostname = "");

}  // namespace qswitch::test_support
