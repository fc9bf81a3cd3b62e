// slirp/slirp_port.h: the libslirp port: NAT, DNS, TFTP and host forwarding for one VLAN's
// segment, plus qswitch's own DHCP server. It is one more switch Port: forwarding has no special
// case for it (gvisor-tap-vsock and QEMU's hub do the same).
//
// Theory of operation
// - One port per VLAN: the daemon adopts each as an access port of SlirpOptions::vlan, so its
//   gateway MAC is pinned in that VLAN only and it sees only that VLAN's frames. Each port is
//   its own libslirp instance (Slirp*) with its own DhcpServer, host forwards, host socket
//   budget, poll handles and chunks: nothing here is global. What libslirp itself shares
//   between instances is harmless: its clock (curtime, a global it refreshes from
//   clock_get_ns, which is uv_hrtime() for every instance) and its cache of the host's DNS
//   servers. Two instances may even serve the same net: their frames never meet (VLANs), and
//   the same gateway MAC in two VLANs is two MAC table entries. What two instances cannot share
//   is a host socket: a host forward binds a host port for its instance alone.
// - Guest -> slirp: enqueue() gets frames the switch sends here. DHCP client messages go to
//   DhcpServer (libslirp's own server has 16 fixed slots and no per-MAC leases, so it is
//   disabled with SlirpConfig.disable_dhcp); UDP and TCP to the DNS addresses' port 53 go to
//   the DNS front end (slirp/dns_frontend.h), which answers the lab's names itself (a
//   DnsResponder) and hands every other UDP query back; everything else is slirp_input().
// - DNS: the front end's replies leave like DHCP replies; its TCP retransmission runs on a
//   uv_timer (dns_timer) set to the front end's next deadline after each call into it. A
//   query the front end hands back takes the path it took before (own-socket drop in
//   enqueue(), the host socket caps, libslirp's forwarder).
// - DHCP needs the switch port a message came in on (its per-port cap, and RELEASE / DECLINE
//   only from the port that holds the lease; dhcp_server.h, "Ports"). The switch learns a
//   frame's source MAC on its input port right before it hands the frame here, so enqueue()
//   looks that MAC up in the MAC table, in this port's VLAN (the frame's: an access port gets
//   only its VLAN's frames), and keeps the port's serial (never reused, unlike its
//   id) with the frame. Only DHCP frames pay for the lookup.
// - Slirp -> guests: libslirp calls send_packet; the frame is written, with its stream prefix,
//   into a chunk this port owns and handed to the switch like any received frame. DHCP replies
//   take the same path.
// - The loop: libslirp's sockets and timers run on the switch's libuv loop, no second thread,
//   no busy polling. Before each poll (uv_prepare) slirp_pollfds_fill() names the fds and events
//   it wants; each fd gets a uv_poll handle (kept across turns, restarted only when the events
//   change); the poll timeout becomes a uv_timer. After the poll (uv_check) slirp_pollfds_poll()
//   gets the events libuv saw. libslirp's own timers (timer_new_opaque) are uv_timers.
//   An error on a socket (EPOLLERR: libuv reports UV_EBADF and stops the handle) is handed to
//   libslirp as SLIRP_POLL_ERR and the handle is started again on the next turn if libslirp
//   still asks for the socket: it keeps a UDP flow whose datagram drew an ICMP error.
// - Host forwards can be added and removed while guests run (slirp_add_hostfwd /
//   slirp_remove_hostfwd); the port keeps the list for `hostfwd list`.
// - qswitch's own sockets: with restrict=off a guest reaches the host's loopback through NAT
//   (slirp/loopback_target.h), so also the daemon's own listeners, --dgram/--vxlan sockets and
//   metrics server there. enqueue() drops a guest's TCP or UDP packet whose destination port is
//   one of those (io::OwnSockets, kept by the daemon as endpoints come and go), counts it
//   (drop_own_endpoint) and logs the guest's MAC and the port at a limited rate. Host forwards
//   are not in that set: through one a guest reaches only a guest, as it could directly.
// - Host sockets: every UDP flow, TCP connection and ping a guest starts through NAT is a socket
//   of this process. enqueue() reads what a guest packet may open (slirp/host_sockets.h) and,
//   for those that may, which port it came in on (the MAC table lookup DHCP uses); service()
//   drops it when the switch (max-host-sockets) or that port (max-host-sockets-per-port) is at
//   its cap, counted (drop_host_socket_cap) and logged at a limited rate; libslirp's
//   register/unregister_poll_fd keep the counts. host_sockets() reports them.
// - Neighbours (slirp/neighbours.h): with ipv6=on, enqueue() shows every guest frame to the
//   port's table of the IPv6 addresses guests use (an EtherType compare for all but IPv6), for
//   `ctl neighbours`, `dhcp leases` and the DNS names; its change callback is the owner's.
// - Cost: libslirp's own fill and poll walk every socket, so a turn that runs them is
//   O(sockets); the port's bookkeeping is no worse (poll handles kept by fd number, stamped
//   with the turn libslirp last asked for them). They run only on turns where libslirp can
//   have changed: a guest frame for it, an event on one of its sockets, one of its timers or a
//   host forward added or removed. The other ports' traffic does not pay for its sockets.
// - DNS names (slirp/dns_names.h): the port owns a DnsNames built from its options (domain,
//   host names, lease=..:NAME, dns-record=) and fed by its DHCP server (host names, bound and
//   ended leases), the daemon (lab [[guest]] names, set_guest_names; exec port names, asked
//   through the port namer for the port a DHCP REQUEST came in on), `ctl dns add|remove`
//   (add_dns_record) and the IPv6 neighbour table (set_ipv6_addresses). Whenever the table
//   changes, publish_dns() hands it to the DNS responder; dns_table() is the current one.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/runtime/io/log.h"
#include "backends/runtime/io/own_sockets.h"
#include "backends/runtime/switch_loop.h"
#include "slirp/dns_names.h"
#include "slirp/dns_responder.h"
#include "slirp/slirp_options.h"

namespace qswitch::slirp {

class DhcpServer;
class Neighbours;
struct DhcpPort;
struct GuestPacket;

// The host sockets guests have libslirp hold open (slirp/host_sockets.h).
struct HostSocketCounts {
  struct Holder {
    uint64_t serial = 0;            // the switch port's (LoopPort::serial()); 0: not known
    sw::PortId port = sw::kNoPort;  // its id while it is up; kNoPort once it has closed
    uint32_t sockets = 0;
  };
  uint32_t open = 0;
  uint32_t max = 0;           // 0: no cap
  uint32_t max_per_port = 0;  // 0: no cap
  std::vector<Holder> by_port;
};

class SlirpPort final : public backends::LoopPort {
 public:
  // nullptr and `error` set when libslirp refuses the configuration or a hostfwd cannot bind
  // (nothing is left half-applied).
  // `own`: the daemon's own sockets that guests must not reach through NAT (may be null: no
  // check); it must outlive the port.
  static std::unique_ptr<SlirpPort> create(backends::SwitchLoop& loop, const SlirpOptions& options,
                                           std::string& error, const io::OwnSockets* own = nullptr);
  ~SlirpPort() override;

  void enqueue(const sw::Frame& frame) override;
  void flush() override {}
  std::string describe() const override;
  const char* kind() const override { return "slirp"; }
  // Guest frames waiting for slirp_input (they drain every loop turn).
  size_t queued_bytes() const override;
  // The gateway's MAC (libslirp's 52:55:<host address>): pinned to this port.
  std::optional<sw::MacAddress> own_mac() const override { return gateway_mac_; }
  // dhcp_over_port_cap, dhcp_not_owner (DhcpServer::Counters), dns_bad_hostname,
  // dns_name_conflicts (DnsNames::Counters), drop_own_endpoint, drop_host_socket_cap, and the
  // DNS front end's and responder's dns_* counters.
  void for_each_extra_counter(const ExtraCounterFn& f) const override;

  // false and `error` set when the forward cannot be added (port in use, duplicate, a guest by
  // MAC or name without an address yet) or is not there to remove. A guest by MAC
  // (HostForward::by_mac) or by DNS name (guest_name: the name's address of the forward's
  // family in the DNS table) is resolved once, here: the forward keeps that address if the
  // guest's changes later.
  bool add_hostfwd(const HostForward& fwd, std::string& error);
  bool remove_hostfwd(const HostForward& fwd, std::string& error);
  const std::vector<HostForward>& hostfwds() const { return hostfwds_; }
  // libslirp's connection table (QEMU's "info usernet").
  std::string connection_info() const;
  const DhcpServer& dhcp() const { return *dhcp_; }
  // The id of the port a lease is held by while that port is up; kNoPort once it has closed.
  sw::PortId live_port(const DhcpPort& holder) const;
  const SlirpOptions& options() const { return options_; }
  HostSocketCounts host_sockets() const;
  // The names the port's DNS responder answers for: publish_dns() sets names_'s table
  // (slirp/dns_names.h) whenever it changes; dns_table() is the one the responder holds.
  void set_dns_table(DnsTable table);
  const DnsTable& dns_table() const;

  // DNS names (see the theory above). add/remove: false with `error` naming the value (bad
  // name or address, a built-in name, a duplicate, no such record); nothing changes then.
  const DnsNames& dns_names() const { return *names_; }
  bool add_dns_record(std::string_view name, const sw::IpAddress& addr, std::string& error);
  bool remove_dns_record(std::string_view name, const std::optional<sw::IpAddress>& addr,
                         std::string& error);
  // The lab file's [[guest]] names (replacing the previous list).
  void set_guest_names(const std::vector<DnsNames::Guest>& guests);
  // The name of the switch port with this serial (LoopPort::serial()) that `qswitch exec
  // --name` gave it, "" for none; asked for each ACKed DHCP REQUEST. Null: no exec names.
  using PortNamer = std::function<std::string(uint64_t serial)>;
  void set_port_namer(PortNamer namer) { port_namer_ = std::move(namer); }
  // The IPv6 addresses the port saw `mac` use (its neighbour table); only global ones inside
  // ipv6-net become names' addresses.
  void set_ipv6_addresses(const sw::MacAddress& mac, const std::vector<sw::IpAddress>& addresses);
  // The IPv6 addresses guests were seen using, per MAC (empty with ipv6=off).
  const Neighbours& neighbours() const { return *neighbours_; }
  // Drops what has been unseen too long now (the table does it itself only as frames come).
  void expire_neighbours();
  // The switch port `mac` is on now in this port's VLAN (the MAC table); kNoPort: not known.
  sw::PortId port_of(const sw::MacAddress& mac) const;

 private:
  struct Impl;
  explicit SlirpPort(backends::SwitchLoop& loop, const SlirpOptions& options);
  uint64_t shutdown_io() override;

  // Hands the current DnsTable to the DNS responder when it changed since the last time.
  void publish_dns();
  bool resolve_guest(HostForward& fwd, std::string& error) const;
  bool resolve_guest_name(HostForward& fwd, std::string& error) const;
  // True (counted, logged) when `frame` is for one of the daemon's own loopback sockets.
  bool to_own_socket(const sw::Frame& frame, const GuestPacket& packet);

  SlirpOptions options_;
  sw::MacAddress gateway_mac_;
  const io::OwnSockets* own_ = nullptr;
  uint64_t drop_own_endpoint_ = 0;
  uint64_t drop_host_socket_cap_ = 0;
  io::RateLimit own_log_{1, 10'000};
  std::vector<HostForward> hostfwds_;
  std::unique_ptr<DhcpServer> dhcp_;
  std::unique_ptr<DnsNames> names_;
  uint64_t published_generation_ = 0;  // of names_ at the last publish_dns()
  PortNamer port_namer_;
  std::unique_ptr<Neighbours> neighbours_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qswitch::slirp
