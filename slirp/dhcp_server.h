// slirp/dhcp_server.h: qswitch's own DHCP server for the slirp segment (RFC 2131, RFC 2132).
// Pure packet logic: frames in, frames out, an injected clock. No sockets, no libuv, no syscalls,
// so every rule below is unit-tested without a network.
//
// Theory of operation
// - Input is one Ethernet frame from a guest (untrusted). Every length is checked against the
//   frame before it is read: Ethernet, IPv4 (header checksum, total length, no fragments), UDP
//   length, the fixed BOOTP header, the magic cookie and every option. Anything that does not
//   parse returns 0 and counts `malformed`; nothing past `size` is ever read.
// - Leases are kept per MAC (chaddr, which must equal the Ethernet source) for the server's
//   lifetime, so a guest that reboots or asks again gets the address it had. Address choice for a
//   MAC: its pinned lease (lease=MAC:IP), else its current or previous address, else the lowest
//   never-used address from pool_first, else (pool exhausted) the address that has been free the
//   longest: released, declined and held long enough, an offer never requested, or an expired
//   lease. Pinned addresses never go to another MAC. Nothing free: no reply, `pool_exhausted`.
// - DISCOVER -> OFFER (the address is held for that MAC). REQUEST -> ACK when the requested
//   address (option 50 when selecting or in init-reboot, ciaddr when renewing or rebinding) is
//   this MAC's, else NAK; a REQUEST naming another server (option 54) withdraws our offer
//   silently. RELEASE frees the address but it stays tied to the MAC until another MAC needs it.
//   DECLINE parks the address for `decline_hold_s` and the MAC gets another one next time.
//   INFORM -> ACK with configuration only (no yiaddr, no lease time).
// - Replies (RFC 2131 section 4.1, no relays): NAK, and any reply to a client that set the
//   broadcast flag, go to ff:ff:ff:ff:ff:ff / 255.255.255.255; a client with ciaddr set gets
//   unicast to ciaddr; otherwise unicast to chaddr / yiaddr (what libslirp does too). The
//   reply fits the client's option 57 (never below 576, RFC 2132 section 9.10) and the slirp MTU;
//   optional options that do not fit are left out, the required ones always fit.
// - Ports (against DHCP starvation: one guest inventing MACs would otherwise bind the whole
//   pool). Every message comes with the switch port it arrived on (DhcpPort). An address is held
//   by the port it was last offered or ACKed through, and a port holds at most
//   `max_leases_per_port` addresses at once (offered or bound and not expired; 0: no cap): a
//   DISCOVER beyond that gets no OFFER, a REQUEST a NAK, and both count `over_port_cap`. The MAC's
//   own address, when that port holds it already, is always served (renewals, a guest asking
//   again). Pinned leases (lease=MAC:IP) are never counted nor refused: the configuration gave
//   them, and they never come out of the pool others draw from. A lease moves to another port by
//   being ACKed there (a guest that reconnects, a migrated VM), within that port's cap.
//   RELEASE, DECLINE and a REQUEST that withdraws our offer are obeyed only from the port that
//   holds the address; from another one they change nothing and count `not_owner`.
// - Ports closing: a closed port's leases stay bound (a rebooting guest keeps its address, and
//   takes the lease to its new port with its next REQUEST). Port ids are reused, so holders are
//   keyed by DhcpPort::key, which is never reused: a new port with an old id starts at zero and
//   the dead port's leases are counted against nobody alive.
// - Memory: one record per MAC that ever got an address, at most `max_leases` records (an address
//   is reclaimed before a record is added beyond that), so a guest inventing MACs cannot grow it
//   without bound; per port that holds something, the list of its counted holds (at most its
//   cap; with no cap, at most every record). New records and a port's first hold are the only
//   allocations in handle().
// - Bound leases, for port security (switch/address_book.h): the LeaseEvents the owner sets hear
//   bound() when a REQUEST is ACKed (static lease=MAC:IP leases too: they count once bound) and
//   ended() when that lease stops being the MAC's: RELEASE, DECLINE, a new offer after it
//   expired, the address going to another MAC, or expire() finding its time up. Expiry is lazy
//   in the server (a record's expires_s is compared when it is next looked at), so the owner
//   calls expire() by the time next_expiry_s() says. A renewal (another ACK for the same MAC and
//   address) is not a new bound().
// - Host names, for the slirp port's DNS names (slirp/dns_names.h): option 12 of every ACKed
//   REQUEST goes to LeaseEvents::hostname() as sent (bounded by the option's 255 bytes; trailing
//   NULs dropped; checked there, not here), before bound(); the latest one wins, so a guest
//   renamed at reboot is heard. The record keeps its first label when that is a valid host name
//   label (RFC 1123), in a fixed 63-byte field, for `ctl dhcp leases`.
// - Domain: replies carry option 15 (domainname=, else kDefaultDnsDomain) and option 119
//   (dnssearch=, else that domain), so a guest's resolver tries short names in the lab's domain.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slirp/slirp_options.h"
#include "switch/mac_address.h"
#include "switch/types.h"

namespace qswitch::slirp {

struct DhcpConfig {
  sw::MacAddress server_mac;  // source MAC of replies (libslirp's gateway MAC 52:55:0a:00:02:02)
  in_addr server{};           // server identifier (option 54) and router (option 3): 10.0.2.2
  in_addr netmask{};          // option 1: 255.255.255.0
  in_addr dns{};              // option 6: 10.0.2.3
  in_addr pool_first{};       // dhcpstart, 10.0.2.15
  in_addr pool_last{};        // last address handed out: the net's last usable one, 10.0.2.254
  uint32_t lease_time_s = 86400;  // option 51 (libslirp's LEASE_TIME is one day too)
  uint32_t offer_hold_s = 60;     // an unrequested offer keeps its address this long
  uint32_t decline_hold_s = 600;  // a declined address is not handed out again for this long
  size_t max_leases = 65536;      // records kept at most (one per MAC)
  uint32_t max_leases_per_port = kDefaultMaxLeasesPerPort;  // addresses one port holds; 0: no cap
  uint16_t mtu = 0;                    // option 26 when non-zero (slirp's mtu when it is not 1500)
  std::string hostname;                // option 12, empty: omitted
  std::string domainname;              // option 15 (from(): the DNS domain, see from())
  std::string bootfile;                // option 67 and the BOOTP file field
  std::vector<std::string> dnssearch;  // option 119 (RFC 3397, with name compression)
  bool tftp = false;                   // siaddr and option 66 name the server
  std::vector<slirp::Lease> pinned;    // lease=MAC:IP; the options parser rejects bad ones

  // Everything derived from the slirp options: server = host, the pool runs from dhcp_start to
  // the address before the net's broadcast address (never the host or dns address). The domain
  // (15) is domainname=, else kDefaultDnsDomain (the domain the slirp port's DNS answers for),
  // and the search list (119) dnssearch=, else that domain: guests resolve short names.
  static DhcpConfig from(const SlirpOptions& options, const sw::MacAddress& server_mac);
};

// The switch port a client message came in on. Port ids are reused once a port closes; `key` is
// not (backends::LoopPort::serial()), so it is what holds leases. `id` is for display only.
// Messages whose port is unknown (key 0) share one cap, as if they came from one port.
struct DhcpPort {
  uint64_t key = 0;
  sw::PortId id = sw::kNoPort;
};

class DhcpServer {
 public:
  // Hears which leases are bound (see the theory above). Called from handle() and expire().
  class LeaseEvents {
   public:
    virtual ~LeaseEvents() = default;
    virtual void bound(const sw::MacAddress& mac, in_addr addr) = 0;
    virtual void ended(const sw::MacAddress& mac, in_addr addr) = 0;
    // Every ACKed REQUEST: the host name it carried (option 12, trailing NULs dropped, at most
    // 255 bytes of anything: untrusted), "" when it had none. Called before bound().
    virtual void hostname(const sw::MacAddress& mac, std::string_view sent) {
      (void)mac;
      (void)sent;
    }
  };

  explicit DhcpServer(const DhcpConfig& config);

  // nullptr: nobody listens. Leases bound before are not replayed.
  void set_lease_events(LeaseEvents* events) { events_ = events; }
  // Ends (telling the LeaseEvents) every bound lease whose time is up at `now_s`; O(records).
  void expire(int64_t now_s);
  // When the earliest bound lease the LeaseEvents heard of ends (INT64_MAX: none); it may be
  // earlier than that (a lease renewed since), never later.
  int64_t next_expiry_s() const { return next_expiry_s_; }

  // Is this Ethernet frame (no length prefix) a DHCP client message for us: IPv4, UDP, first
  // fragment, destination port 67, any destination IP? Reads at most 14 + 60 + 4 bytes; called
  // for every frame the slirp port gets. A true result does not mean it is well formed.
  static bool is_dhcp_request(const uint8_t* frame, size_t size);

  // Handles one client message. Writes the complete reply Ethernet frame (Ethernet, IPv4 with its
  // header checksum, UDP with its checksum, BOOTP) to `reply` and returns its size, or returns 0
  // when there is no reply: malformed (counted), not a DHCP client message, RELEASE / DECLINE,
  // a REQUEST for another server, pool exhausted (counted), a DISCOVER over the port's cap
  // (counted), or `reply_capacity` too small.
  // `now_s` is a monotonic second count; `from` the port it came in on (the header's "Ports").
  size_t handle(const uint8_t* frame, size_t size, int64_t now_s, uint8_t* reply,
                size_t reply_capacity, const DhcpPort& from = {});

  enum class LeaseState : uint8_t {
    reserved,  // pinned, never asked for yet
    offered,   // OFFER sent, no REQUEST yet
    bound,     // ACK sent; expires_s says until when
    released,  // RELEASE received; still this MAC's until another MAC needs it
  };
  struct Lease {
    sw::MacAddress mac;
    in_addr addr{};
    bool pinned = false;
    std::string hostname;  // option 12 of the last ACKed REQUEST, when a valid label; else ""
    LeaseState state = LeaseState::offered;
    int64_t expires_s = 0;  // bound: lease end; offered: offer end; otherwise 0
    bool held = false;      // offered or bound through `port` (which may have closed since)
    DhcpPort port;          // valid when `held`
  };
  // Every MAC's address, ordered by address (for `qswitch ctl dhcp leases`; allocates).
  std::vector<Lease> leases() const;

  struct Counters {
    uint64_t discover = 0, offer = 0, request = 0, ack = 0, nak = 0, release = 0, decline = 0,
             inform = 0, malformed = 0, pool_exhausted = 0;
    // DISCOVERs not offered and REQUESTs NAKed because the port holds max_leases_per_port.
    uint64_t over_port_cap = 0;
    // RELEASE / DECLINE / offer withdrawals for an address another port holds: ignored.
    uint64_t not_owner = 0;
    uint64_t ignored = 0;  // well formed, but a message type a server does not answer
    // Each message is counted once: discover + request + release + decline + inform + ignored +
    // malformed = the messages is_dhcp_request() claimed that reached handle().
  };
  const Counters& counters() const { return counters_; }
  const DhcpConfig& config() const { return config_; }

 private:
  enum class State : uint8_t { reserved, offered, bound, released, declined };
  struct Record {
    sw::MacAddress mac;  // meaningless when declined (then no MAC owns it)
    uint32_t addr = 0;   // host byte order, like every address below
    bool pinned = false;
    State state = State::offered;
    int64_t expires_s = 0;   // offered / bound / declined: end of the hold
    int64_t freed_s = 0;     // released: when
    bool held = false;       // offered or bound through `holder` (Lease::held)
    bool counted = false;    // in holdings_[holder.key]: counts against that port's cap
    bool announced = false;  // LeaseEvents::bound() said so, ended() not yet
    DhcpPort holder;
    std::array<char, 63> hostname{};  // Lease::hostname, fixed size: no allocation per message
    uint8_t hostname_size = 0;
  };
  struct Request;  // a parsed client message (dhcp_server.cc)
  // Everything after is_dhcp_request() said yes; false: malformed.
  static bool parse_request(const uint8_t* frame, size_t size, Request& req);

  Record* find_by_mac(const sw::MacAddress& mac);
  Record* choose_for(const sw::MacAddress& mac, int64_t now_s);
  bool fresh_address_ok(uint32_t addr) const;
  Record* add_record(const sw::MacAddress& mac, uint32_t addr);
  // Since when `r` could go to another MAC, or INT64_MAX when it cannot.
  int64_t free_since(const Record& r, int64_t now_s) const;
  // The per-port cap (header, "Ports"). held_by(): how many addresses port `key` holds now;
  // forgets the holds that ended. over_cap(): may `from` not take `r` (nullptr: a new address)?
  // hold_for(): `r` is now offered or bound through `from`. unhold(): held by nobody.
  size_t held_by(uint64_t key, int64_t now_s);
  bool over_cap(const Record* r, const DhcpPort& from, int64_t now_s);
  void hold_for(Record& r, const DhcpPort& from);
  void unhold(Record& r);
  // RELEASE / DECLINE / withdrawal of `r` from `from`: true when `from` holds it; false (counted
  // not_owner when another port does) otherwise.
  bool may_free(const Record& r, const DhcpPort& from);
  // LeaseEvents: `r` is bound now (ACK) / is no longer its MAC's lease.
  void announce(Record& r);
  // An ACKed REQUEST's option 12: kept in `r` (when valid), told to the LeaseEvents.
  void set_hostname(Record& r, std::string_view sent);
  void retract(Record& r);

  size_t answer(const Request& req, const DhcpPort& from, int64_t now_s, uint8_t* reply,
                size_t reply_capacity);
  size_t build_reply(const Request& req, uint8_t type, uint32_t yiaddr, uint8_t* reply,
                     size_t reply_capacity) const;

  DhcpConfig config_;
  uint32_t server_ = 0, netmask_ = 0, dns_ = 0, pool_first_ = 0, pool_last_ = 0;
  uint64_t next_fresh_ = 0;  // no never-used pool address below this (uint64: may pass 2^32-1)
  std::vector<uint8_t> dnssearch_wire_;           // option 119's value, encoded once
  std::vector<Record> records_;                   // never shrinks; a reclaimed record changes MAC
  std::unordered_map<uint64_t, size_t> by_mac_;   // MacAddress::key() -> records_ index
  std::unordered_map<uint32_t, size_t> by_addr_;  // address -> records_ index
  // DhcpPort::key -> records_ indexes of the holds that count against it; no empty lists.
  std::unordered_map<uint64_t, std::vector<size_t>> holdings_;
  Counters counters_;
  LeaseEvents* events_ = nullptr;
  int64_t next_expiry_s_ = INT64_MAX;
};

}  // namespace qswitch::slirp
