// tests/switch/port_security_test.cc: port security in the switch core (switch/port_security.h):
// a secured port sends only from its own MACs (given, then first seen up to max_macs), those
// MACs are pinned so no other port takes them, ARP must name the frame's source, every drop is
// counted and reported, and what is not secured behaves as before. Then the IP half: sources,
// ARP sender IPs and neighbour advertisement targets against the address book (DHCP leases,
// SLAAC under the VLAN's prefix) and ip= addresses, behind tags, in short and split frames.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <string>
#include <vector>

#include "switch/address_book.h"
#include "switch/l2_switch.h"

namespace qswitch::sw {
namespace {

using Bytes = std::vector<uint8_t>;

class CountingPort : public Port {
 public:
  explicit CountingPort(std::string name) : name_(std::move(name)) {}
  void enqueue(const Frame& f) override { sources.push_back(MacAddress::from_wire(f.src())); }
  void flush() override {}
  std::string describe() const override { return name_; }
  std::vector<MacAddress> sources;

 private:
  std::string name_;
};

struct Report {
  PortId in;
  MacAddress mac;
  SecurityDrop why;
  IpAddress addr;
};

class Reports : public L2Switch::Events {
 public:
  void on_first_mac(Port&, const MacAddress&) override {}
  void on_duplicate_mac(const MacAddress&, Port&, Port&, uint64_t) override {}
  void on_mac_spoof(Port& in, const MacAddress& mac, Port& owner) override {
    pins.push_back({in.id(), mac, owner.id()});
  }
  void on_port_security(Port& in, const MacAddress& mac, SecurityDrop why,
                        const IpAddress& addr) override {
    drops.push_back({in.id(), mac, why, addr});
  }
  struct Pin {
    PortId in;
    MacAddress mac;
    PortId owner;
  };
  std::vector<Report> drops;
  std::vector<Pin> pins;
};

MacAddress mac(uint8_t last) { return MacAddress{{0x52, 0x54, 0, 0, 0, last}}; }
const MacAddress kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

Bytes frame_from(const MacAddress& src, const MacAddress& dst = kBroadcast) {
  Bytes b(64, 0);
  std::memcpy(b.data(), dst.bytes.data(), 6);
  std::memcpy(b.data() + 6, src.bytes.data(), 6);
  b[12] = 0x08;
  return b;
}

// An ARP request (or, tagged, with its 802.1Q tag) from `src` naming `sender` as its sender MAC.
Bytes arp_from(const MacAddress& src, const MacAddress& sender, bool tagged = false) {
  Bytes b(64, 0);
  std::memcpy(b.data(), kBroadcast.bytes.data(), 6);
  std::memcpy(b.data() + 6, src.bytes.data(), 6);
  size_t at = 12;
  if (tagged) {
    b[12] = 0x81;
    b[15] = 10;
    at = 16;
  }
  b[at] = 0x08;
  b[at + 1] = 0x06;
  const uint8_t head[8] = {0, 1, 8, 0, 6, 4, 0, 1};  // Ethernet, IPv4, request
  std::memcpy(b.data() + at + 2, head, 8);
  std::memcpy(b.data() + at + 10, sender.bytes.data(), 6);
  return b;
}

PortSecurity secured(uint32_t max_macs = 1, std::vector<MacAddress> given = {}) {
  PortSecurity s;
  s.enabled = true;
  s.max_macs = max_macs;
  s.macs = std::move(given);
  return s;
}

class PortSecurityTest : public testing::Test {
 protected:
  PortSecurityTest() {
    sw_.set_events(&reports_);
    for (CountingPort* p : {&a_, &b_, &c_}) sw_.attach(*p);
  }
  void send(Port& in, const Bytes& bytes) {
    Bytes& w = storage_.emplace_back(kPrefixSize + bytes.size());
    store_be32(w.data(), static_cast<uint32_t>(bytes.size()));
    std::memcpy(w.data() + kPrefixSize, bytes.data(), bytes.size());
    sw_.receive(in, Frame{w.data(), static_cast<uint32_t>(bytes.size()), 0, nullptr, {}}, now_);
  }

  Millis now_ = 1'000;
  Reports reports_;
  L2Switch sw_{SwitchConfig{}};
  std::deque<Bytes> storage_;
  CountingPort a_{"a"}, b_{"b"}, c_{"c"};
};

TEST_F(PortSecurityTest, ASecuredPortSendsFromItsFirstMacOnly) {
  sw_.set_security(a_, secured());
  send(a_, frame_from(mac(1)));
  send(a_, frame_from(mac(2)));  // a second MAC: max_macs is 1
  send(a_, frame_from(mac(1)));
  EXPECT_EQ(b_.sources, (std::vector<MacAddress>{mac(1), mac(1)}));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  EXPECT_EQ(sw_.counters().mac_spoofs, 1u);
  ASSERT_EQ(reports_.drops.size(), 1u);
  EXPECT_EQ(reports_.drops[0].in, a_.id());
  EXPECT_EQ(reports_.drops[0].mac, mac(2));
  EXPECT_EQ(reports_.drops[0].why, SecurityDrop::kNotItsMac);
  EXPECT_EQ(a_.held_macs(), std::vector<MacAddress>{mac(1)});
  EXPECT_EQ(sw_.macs().lookup(mac(2), kDefaultVlan, now_), kNoPort);  // never learned
}

TEST_F(PortSecurityTest, AGivenMacIsTheOnlyOneEvenBeforeTheGuestSpeaks) {
  sw_.set_security(a_, secured(1, {mac(7)}));
  send(a_, frame_from(mac(1)));
  EXPECT_EQ(b_.sources.size(), 0u);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  send(a_, frame_from(mac(7)));
  EXPECT_EQ(b_.sources, std::vector<MacAddress>{mac(7)});
}

TEST_F(PortSecurityTest, MaxMacsAllowsThatManyFirstSeenMacs) {
  sw_.set_security(a_, secured(3));
  for (uint8_t m : {1, 2, 3, 4, 2, 5, 1}) send(a_, frame_from(mac(m)));
  EXPECT_EQ(b_.sources, (std::vector<MacAddress>{mac(1), mac(2), mac(3), mac(2), mac(1)}));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 2u);
}

TEST_F(PortSecurityTest, ASecuredPortsMacCannotBeTakenByAnotherPort) {
  sw_.set_security(a_, secured());
  send(a_, frame_from(mac(1)));
  send(b_, frame_from(mac(1)));  // b claims a's MAC: dropped, a keeps it
  EXPECT_EQ(b_.counters().drop_mac_spoof, 1u);
  ASSERT_EQ(reports_.pins.size(), 1u);
  EXPECT_EQ(reports_.pins[0].owner, a_.id());
  EXPECT_EQ(sw_.macs().lookup(mac(1), kDefaultVlan, now_), a_.id());
  // And it never ages while the port is up.
  EXPECT_EQ(sw_.macs().lookup(mac(1), kDefaultVlan, now_ + 10 * 300'000), a_.id());
  // Unicast to it still reaches a.
  send(c_, frame_from(mac(3), mac(1)));
  EXPECT_EQ(a_.sources, std::vector<MacAddress>{mac(3)});
}

TEST_F(PortSecurityTest, ASecuredPortTakesItsMacFromAnUnsecuredPortThatHadIt) {
  send(b_, frame_from(mac(1)));  // b used mac 1 first (learned, not pinned)
  sw_.set_security(a_, secured(1, {mac(1)}));
  send(a_, frame_from(mac(1)));
  EXPECT_EQ(sw_.macs().lookup(mac(1), kDefaultVlan, now_), a_.id());
  send(b_, frame_from(mac(1)));
  EXPECT_EQ(b_.counters().drop_mac_spoof, 1u);
}

TEST_F(PortSecurityTest, AMacPinnedByTheSwitchsOwnPortIsNeverASecuredPortsOwn) {
  sw_.pin_mac(c_, mac(0x22), now_);  // the slirp gateway's
  sw_.set_security(a_, secured(2));
  send(a_, frame_from(mac(0x22)));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  EXPECT_TRUE(a_.held_macs().empty());  // it did not use up a place
  send(a_, frame_from(mac(1)));
  send(a_, frame_from(mac(2)));
  EXPECT_EQ(a_.held_macs(), (std::vector<MacAddress>{mac(1), mac(2)}));
}

TEST_F(PortSecurityTest, ArpMustNameTheFramesSourceAsItsSender) {
  sw_.set_security(a_, secured());
  send(a_, arp_from(mac(1), mac(1)));
  send(a_, arp_from(mac(1), mac(9)));  // claims another station's MAC
  EXPECT_EQ(b_.sources.size(), 1u);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  ASSERT_EQ(reports_.drops.size(), 1u);
  EXPECT_EQ(reports_.drops[0].why, SecurityDrop::kArpSenderMac);
  // An ARP packet cut short before its sender MAC: dropped too.
  Bytes cut = arp_from(mac(1), mac(1));
  cut.resize(14 + 13);
  send(a_, cut);
  EXPECT_EQ(a_.counters().drop_mac_spoof, 2u);
  EXPECT_EQ(b_.sources.size(), 1u);
  // On an unsecured port the same ARP crosses.
  send(c_, arp_from(mac(3), mac(9)));
  EXPECT_EQ(b_.sources.size(), 2u);
}

TEST_F(PortSecurityTest, ArpIsFoundBehindAVlanTagOnATrunk) {
  VlanSet ten;
  ten.add(10);
  sw_.set_vlans(a_, VlanMembership::make_trunk(ten), now_);
  sw_.set_vlans(b_, VlanMembership::access(10), now_);
  sw_.set_security(a_, secured());
  send(a_, arp_from(mac(1), mac(9), true));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 1u);
  send(a_, arp_from(mac(1), mac(1), true));
  EXPECT_EQ(b_.sources, std::vector<MacAddress>{mac(1)});
  EXPECT_EQ(sw_.macs().lookup(mac(1), 10, now_), a_.id());
}

TEST_F(PortSecurityTest, TurningSecurityOffOrChangingItStartsAfresh) {
  sw_.set_security(a_, secured());
  send(a_, frame_from(mac(1)));
  sw_.set_security(a_, secured());  // again: it learns its MAC anew
  EXPECT_TRUE(a_.held_macs().empty());
  EXPECT_EQ(sw_.macs().lookup(mac(1), kDefaultVlan, now_), kNoPort);
  send(a_, frame_from(mac(2)));
  EXPECT_EQ(a_.held_macs(), std::vector<MacAddress>{mac(2)});
  sw_.set_security(a_, PortSecurity{});
  send(a_, frame_from(mac(3)));
  send(a_, frame_from(mac(4)));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 0u);
  EXPECT_EQ(b_.sources.size(), 4u);  // mac 1, mac 2, then 3 and 4 unsecured
}

// --- The IP half -------------------------------------------------------------------------------

using Ip4 = std::array<uint8_t, 4>;
using Ip6 = std::array<uint8_t, 16>;

IpAddress ip(const char* text) { return *IpAddress::parse(text); }
Ip6 ip6(const char* text) { return ip(text).bytes; }
Ip4 ip4(const char* text) {
  const IpAddress a = ip(text);
  return {a.bytes[0], a.bytes[1], a.bytes[2], a.bytes[3]};
}

// Ethernet (with an 802.1Q tag for `vlan` when non-zero) and `ethertype`, then `l3`.
Bytes ether(const MacAddress& src, uint16_t ethertype, const Bytes& l3, uint16_t vlan = 0,
            const MacAddress& dst = kBroadcast) {
  Bytes b(12);
  std::memcpy(b.data(), dst.bytes.data(), 6);
  std::memcpy(b.data() + 6, src.bytes.data(), 6);
  if (vlan != 0) {
    b.insert(b.end(), {0x81, 0x00, static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan)});
  }
  b.push_back(static_cast<uint8_t>(ethertype >> 8));
  b.push_back(static_cast<uint8_t>(ethertype));
  b.insert(b.end(), l3.begin(), l3.end());
  if (b.size() < 60) b.resize(60, 0);
  return b;
}

// IPv4 (20-byte header) from `from`, protocol `proto`, then ports sport -> dport.
Bytes ipv4_from(const MacAddress& src, Ip4 from, uint8_t proto = 17, uint16_t sport = 1000,
                uint16_t dport = 2000, uint16_t vlan = 0, uint16_t frag = 0) {
  Bytes l3(28, 0);
  l3[0] = 0x45;
  l3[3] = 28;
  l3[6] = static_cast<uint8_t>(frag >> 8);
  l3[7] = static_cast<uint8_t>(frag);
  l3[8] = 64;
  l3[9] = proto;
  std::memcpy(l3.data() + 12, from.data(), 4);
  l3[16] = 10;
  l3[19] = 2;
  l3[20] = static_cast<uint8_t>(sport >> 8);
  l3[21] = static_cast<uint8_t>(sport);
  l3[22] = static_cast<uint8_t>(dport >> 8);
  l3[23] = static_cast<uint8_t>(dport);
  return ether(src, 0x0800, l3, vlan);
}

// An Ethernet/IPv4 ARP request from `src` (also its sender MAC) claiming `sender`.
Bytes arp_claiming(const MacAddress& src, Ip4 sender, uint16_t vlan = 0) {
  Bytes l3 = {0, 1, 8, 0, 6, 4, 0, 1};
  l3.insert(l3.end(), src.bytes.begin(), src.bytes.end());
  l3.insert(l3.end(), sender.begin(), sender.end());
  l3.insert(l3.end(), 6, 0);
  l3.insert(l3.end(), {10, 0, 2, 2});
  return ether(src, 0x0806, l3, vlan);
}

// IPv6 from `from`, its next header `next`, then `rest` (extension headers, ICMPv6 ...).
Bytes ipv6_from(const MacAddress& src, Ip6 from, uint8_t next = 17, const Bytes& rest = Bytes(8, 0),
                uint16_t vlan = 0) {
  Bytes l3(40, 0);
  l3[0] = 0x60;
  l3[4] = static_cast<uint8_t>(rest.size() >> 8);
  l3[5] = static_cast<uint8_t>(rest.size());
  l3[6] = next;
  l3[7] = 255;
  std::memcpy(l3.data() + 8, from.data(), 16);
  const Ip6 all_nodes = ip6("ff02::1");
  std::memcpy(l3.data() + 24, all_nodes.data(), 16);
  l3.insert(l3.end(), rest.begin(), rest.end());
  return ether(src, 0x86dd, l3, vlan);
}

// An ICMPv6 neighbour advertisement (RFC 4861 section 4.4) for `target`.
Bytes na_for(Ip6 target) {
  Bytes icmp = {136, 0, 0, 0, 0x20, 0, 0, 0};
  icmp.insert(icmp.end(), target.begin(), target.end());
  return icmp;
}

// An extension header of 8 bytes saying `next` comes after it.
Bytes ext8(uint8_t next) { return {next, 0, 1, 4, 0, 0, 0, 0}; }

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class PortIpSecurityTest : public PortSecurityTest {
 protected:
  // VLAN 1 served by a slirp port with fec0::/64; mac(1) leased 10.0.2.15 there.
  void serve_vlan(uint16_t vlan = kDefaultVlan) { sw_.addresses().serve(vlan, ip("fec0::"), 64); }
  size_t crossed() const { return b_.sources.size(); }
  uint64_t ip_drops() const { return a_.counters().drop_ip_spoof; }
  // Sends `bytes` from a_; true when it reached b_ (and counted nothing), false when it was
  // dropped and counted as an IP drop for `why`.
  ::testing::AssertionResult crosses(const Bytes& bytes) {
    const size_t before = crossed();
    const uint64_t drops = ip_drops();
    send(a_, bytes);
    if (crossed() == before + 1 && ip_drops() == drops) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "dropped (drop_ip_spoof " << drops << " -> " << ip_drops() << ")";
  }
  ::testing::AssertionResult dropped(const Bytes& bytes, SecurityDrop why,
                                     const IpAddress& addr = {}) {
    const size_t before = crossed();
    const uint64_t drops = ip_drops();
    const size_t reports = reports_.drops.size();
    send(a_, bytes);
    if (crossed() != before) return ::testing::AssertionFailure() << "it crossed";
    if (ip_drops() != drops + 1)
      return ::testing::AssertionFailure() << "drop_ip_spoof not counted";
    if (reports_.drops.size() != reports + 1) return ::testing::AssertionFailure() << "no report";
    const Report& r = reports_.drops.back();
    if (r.why != why || r.addr != addr || r.in != a_.id()) {
      return ::testing::AssertionFailure()
             << "reported " << security_drop_text(r.why) << " for '" << r.addr.to_string() << "'";
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(PortIpSecurityTest, WithoutAnAddressSourceOnlyMacsAreChecked) {
  sw_.set_security(a_, secured());
  EXPECT_FALSE(sw_.checks_ip(a_));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("192.0.2.99"))));
  EXPECT_TRUE(crosses(arp_claiming(mac(1), ip4("192.0.2.98"))));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("2001:db8::1"))));
  // A slirp port in another VLAN changes nothing here.
  serve_vlan(10);
  EXPECT_FALSE(sw_.checks_ip(a_));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("192.0.2.99"))));
}

TEST_F(PortIpSecurityTest, IPv4FromItsLeaseCrossesAndFromAnyOtherAddressIsDropped) {
  serve_vlan();
  sw_.set_security(a_, secured());
  EXPECT_TRUE(sw_.checks_ip(a_));
  // Before any lease: no IPv4 source at all.
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.2.15")), SecurityDrop::kIpSource, ip("10.0.2.15")));
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.2.15"))));
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.2.16")), SecurityDrop::kIpSource, ip("10.0.2.16")));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 0u);
  EXPECT_EQ(sw_.counters().ip_spoofs, 2u);
  EXPECT_EQ(sw_.counters().mac_spoofs, 0u);
  // Unbound (released, expired): dropped again. Unbinding another address changes nothing.
  sw_.addresses().unbind(kDefaultVlan, mac(1), ip("10.0.2.99"));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.2.15"))));
  sw_.addresses().unbind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.2.15")), SecurityDrop::kIpSource, ip("10.0.2.15")));
  // The slirp port goes: nothing to check against, only MACs are checked.
  sw_.addresses().withdraw(kDefaultVlan);
  EXPECT_FALSE(sw_.checks_ip(a_));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.2.15"))));
}

// A secured port's frames are each checked, even in one burst with the same addresses (they never
// take the switch's same-head path, l2_switch.h): the IP source is past the head.
TEST_F(PortIpSecurityTest, EveryFrameOfABurstIsCheckedEvenWithTheSameAddresses) {
  serve_vlan();
  sw_.set_security(a_, secured());
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  send(b_, frame_from(mac(2)));  // b_ learned: a_'s frames to mac(2) are known unicast
  const size_t before = crossed();
  auto to_b = [&](Bytes b) {
    std::memcpy(b.data(), mac(2).bytes.data(), 6);
    Bytes& w = storage_.emplace_back(kPrefixSize + b.size());
    store_be32(w.data(), static_cast<uint32_t>(b.size()));
    std::memcpy(w.data() + kPrefixSize, b.data(), b.size());
    return Frame{w.data(), static_cast<uint32_t>(b.size()), 0, nullptr, {}};
  };
  const std::vector<Frame> burst = {
      to_b(ipv4_from(mac(1), ip4("10.0.2.15"))), to_b(ipv4_from(mac(1), ip4("10.0.2.15"))),
      to_b(ipv4_from(mac(1), ip4("10.0.2.16"))), to_b(ipv4_from(mac(1), ip4("10.0.2.15")))};
  sw_.receive(a_, burst, now_);
  EXPECT_EQ(crossed() - before, 3u);
  EXPECT_EQ(ip_drops(), 1u);
  ASSERT_EQ(reports_.drops.size(), 1u);
  EXPECT_EQ(reports_.drops[0].addr, ip("10.0.2.16"));
}

TEST_F(PortIpSecurityTest, TheUnspecifiedSourceIsForDhcpOnly) {
  serve_vlan();
  sw_.set_security(a_, secured());
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("0.0.0.0"), 17, 68, 67)));
  EXPECT_TRUE(dropped(ipv4_from(mac(1), ip4("0.0.0.0"), 17, 68, 53), SecurityDrop::kIpSource,
                      ip("0.0.0.0")));
  EXPECT_TRUE(dropped(ipv4_from(mac(1), ip4("0.0.0.0"), 6, 68, 67), SecurityDrop::kIpSource,
                      ip("0.0.0.0")));
  // A later fragment has no UDP header to say it is DHCP.
  EXPECT_TRUE(dropped(ipv4_from(mac(1), ip4("0.0.0.0"), 17, 68, 67, 0, 0x0010),
                      SecurityDrop::kIpSource, ip("0.0.0.0")));
}

TEST_F(PortIpSecurityTest, ASlirpPortThatReplacedAnotherKeepsTheVlanServed) {
  int old_port = 0, new_port = 0;
  sw_.addresses().serve(kDefaultVlan, ip("fec0::"), 64, &old_port);
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  sw_.addresses().serve(kDefaultVlan, ip("fec1::"), 64, &new_port);  // a reload made a new one
  sw_.addresses().withdraw(kDefaultVlan, &old_port);                 // then the old one went
  EXPECT_TRUE(sw_.addresses().serves(kDefaultVlan));
  EXPECT_EQ(sw_.addresses().slaac(kDefaultVlan, mac(1)), IpAddress::eui64(ip6("fec1::"), mac(1)));
  sw_.set_security(a_, secured());
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.2.15"))));
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.2.16")), SecurityDrop::kIpSource, ip("10.0.2.16")));
  sw_.addresses().withdraw(kDefaultVlan, &new_port);
  EXPECT_FALSE(sw_.addresses().serves(kDefaultVlan));
  EXPECT_FALSE(sw_.addresses().lease(kDefaultVlan, mac(1)).has_value());
}

TEST_F(PortIpSecurityTest, ALeaseBelongsToItsMacAndVlan) {
  serve_vlan();
  serve_vlan(10);
  sw_.set_security(a_, secured(2));
  sw_.addresses().bind(kDefaultVlan, mac(2), ip("10.0.2.16"));
  sw_.addresses().bind(10, mac(1), ip("10.0.10.15"));
  // mac(1) may not use mac(2)'s lease, though both are the port's MACs.
  EXPECT_TRUE(crosses(ipv4_from(mac(2), ip4("10.0.2.16"))));
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.2.16")), SecurityDrop::kIpSource, ip("10.0.2.16")));
  // nor its VLAN 10 lease in VLAN 1.
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("10.0.10.15")), SecurityDrop::kIpSource, ip("10.0.10.15")));
}

TEST_F(PortIpSecurityTest, GivenAddressesAreAllowedAndTurnTheCheckOnInAnyVlan) {
  PortSecurity s = secured();
  s.ips = {ip("192.0.2.7"), ip("2001:db8::7")};
  sw_.set_security(a_, s);
  EXPECT_TRUE(sw_.checks_ip(a_));  // no slirp port anywhere: ip= alone
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("192.0.2.7"))));
  EXPECT_TRUE(crosses(arp_claiming(mac(1), ip4("192.0.2.7"))));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("2001:db8::7"))));
  EXPECT_TRUE(
      dropped(ipv4_from(mac(1), ip4("192.0.2.8")), SecurityDrop::kIpSource, ip("192.0.2.8")));
  EXPECT_TRUE(
      dropped(ipv6_from(mac(1), ip6("2001:db8::8")), SecurityDrop::kIpSource, ip("2001:db8::8")));
  // And with a lease besides.
  serve_vlan();
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.2.15"))));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("192.0.2.7"))));
}

TEST_F(PortIpSecurityTest, ArpMayClaimOnlyItsAddressesOrProbe) {
  serve_vlan();
  sw_.set_security(a_, secured());
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  EXPECT_TRUE(crosses(arp_claiming(mac(1), ip4("10.0.2.15"))));
  EXPECT_TRUE(crosses(arp_claiming(mac(1), ip4("0.0.0.0"))));  // RFC 5227 probe
  EXPECT_TRUE(
      dropped(arp_claiming(mac(1), ip4("10.0.2.2")), SecurityDrop::kArpSenderIp, ip("10.0.2.2")));
  // Not Ethernet/IPv4 (protocol length 16), or cut before the sender IP: unreadable.
  Bytes odd = arp_claiming(mac(1), ip4("10.0.2.15"));
  odd[14 + 5] = 16;
  EXPECT_TRUE(dropped(odd, SecurityDrop::kIpUnreadable));
  Bytes cut = arp_claiming(mac(1), ip4("10.0.2.15"));
  cut.resize(14 + 27);
  EXPECT_TRUE(dropped(cut, SecurityDrop::kIpUnreadable));
  EXPECT_EQ(a_.counters().drop_mac_spoof, 0u);
}

TEST_F(PortIpSecurityTest, ShortIpv4HeadersAreDropped) {
  serve_vlan();
  sw_.set_security(a_, secured());
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  Bytes ok = ipv4_from(mac(1), ip4("10.0.2.15"));
  ok.resize(14 + 20);
  EXPECT_TRUE(crosses(ok));
  Bytes cut = ok;
  cut.resize(14 + 19);
  EXPECT_TRUE(dropped(cut, SecurityDrop::kIpUnreadable));
  // A DHCP-looking 0.0.0.0 packet cut before its ports.
  Bytes dhcp = ipv4_from(mac(1), ip4("0.0.0.0"), 17, 68, 67);
  dhcp.resize(14 + 22);
  EXPECT_TRUE(dropped(dhcp, SecurityDrop::kIpSource, ip("0.0.0.0")));
}

TEST_F(PortIpSecurityTest, IPv6LinkLocalUnspecifiedSlaacAndNothingElse) {
  serve_vlan();
  sw_.set_security(a_, secured());
  const IpAddress slaac = IpAddress::eui64(ip6("fec0::"), mac(1));
  EXPECT_EQ(slaac, ip("fec0::5054:ff:fe00:1"));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("fe80::5054:ff:fe00:1"))));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("fe80::1234"))));  // any link-local
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("::"))));          // DAD
  EXPECT_TRUE(crosses(ipv6_from(mac(1), slaac.bytes)));
  // Another MAC's SLAAC address, another prefix, a privacy address: dropped.
  const IpAddress other = IpAddress::eui64(ip6("fec0::"), mac(2));
  EXPECT_TRUE(dropped(ipv6_from(mac(1), other.bytes), SecurityDrop::kIpSource, other));
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ip6("fec1::5054:ff:fe00:1")), SecurityDrop::kIpSource,
                      ip("fec1::5054:ff:fe00:1")));
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ip6("fec0::1:2:3:4")), SecurityDrop::kIpSource,
                      ip("fec0::1:2:3:4")));
  // Cut short before the source's end.
  Bytes cut = ipv6_from(mac(1), slaac.bytes);
  cut.resize(14 + 39);
  EXPECT_TRUE(dropped(cut, SecurityDrop::kIpUnreadable));
}

TEST_F(PortIpSecurityTest, APrefixThatIsNotASlash64GivesNoSlaacAddress) {
  sw_.addresses().serve(kDefaultVlan, ip("fec0::"), 48);
  sw_.set_security(a_, secured());
  const IpAddress slaac = IpAddress::eui64(ip6("fec0::"), mac(1));
  EXPECT_TRUE(dropped(ipv6_from(mac(1), slaac.bytes), SecurityDrop::kIpSource, slaac));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("fe80::1"))));
  // IPv6 off in the slirp port: the VLAN is served, IPv6 only link-local.
  sw_.addresses().serve(kDefaultVlan, IpAddress{}, 0);
  EXPECT_TRUE(dropped(ipv6_from(mac(1), slaac.bytes), SecurityDrop::kIpSource, slaac));
}

TEST_F(PortIpSecurityTest, NeighbourAdvertisementsOnlyForItsOwnTargets) {
  serve_vlan();
  sw_.set_security(a_, secured());
  const Ip6 ll = ip6("fe80::5054:ff:fe00:1");
  const IpAddress slaac = IpAddress::eui64(ip6("fec0::"), mac(1));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ll, 58, na_for(ll))));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ll, 58, na_for(slaac.bytes))));
  // From its own link-local address, for the gateway's address: stolen traffic. Dropped.
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ll, 58, na_for(ip6("fec0::2"))), SecurityDrop::kNaTarget,
                      ip("fec0::2")));
  // A neighbour solicitation (135) names a target it asks about: not a claim.
  Bytes ns = na_for(ip6("fec0::2"));
  ns[0] = 135;
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ip6("::"), 58, ns)));
  // An advertisement cut before its target.
  Bytes cut = ipv6_from(mac(1), ll, 58, na_for(ip6("fec0::2")));
  cut.resize(14 + 40 + 23);
  EXPECT_TRUE(dropped(cut, SecurityDrop::kIpUnreadable));
}

TEST_F(PortIpSecurityTest, AnAdvertisementBehindExtensionHeadersIsStillFound) {
  serve_vlan();
  sw_.set_security(a_, secured());
  const Ip6 ll = ip6("fe80::5054:ff:fe00:1");
  const Bytes bad = na_for(ip6("fec0::2"));
  // hop-by-hop -> destination options -> routing -> ICMPv6.
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ll, 0, cat({ext8(60), ext8(43), ext8(58), bad})),
                      SecurityDrop::kNaTarget, ip("fec0::2")));
  // A first fragment (offset 0) is walked through; a later one has no ICMPv6 header.
  const Bytes first = {58, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ll, 44, cat({first, bad})), SecurityDrop::kNaTarget,
                      ip("fec0::2")));
  const Bytes later = {58, 0, 0, 0x18, 0, 0, 0, 1};
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ll, 44, cat({later, bad}))));
  // AH (RFC 4302: length in 4-byte units, minus 2): 12 bytes here.
  const Bytes ah = {58, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_TRUE(
      dropped(ipv6_from(mac(1), ll, 51, cat({ah, bad})), SecurityDrop::kNaTarget, ip("fec0::2")));
  // kMaxIpv6Headers extension headers are walked; one more is unreadable.
  Bytes chain;
  for (uint32_t i = 0; i + 1 < kMaxIpv6Headers; ++i) chain = cat({chain, ext8(60)});
  EXPECT_TRUE(crosses(ipv6_from(mac(1), ll, 60, cat({chain, ext8(17), Bytes(8, 0)}))));
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ll, 60, cat({chain, ext8(60), ext8(58), bad})),
                      SecurityDrop::kIpUnreadable));
  // A header whose length runs past the frame.
  const Bytes long_hop = {58, 200, 0, 0, 0, 0, 0, 0};
  EXPECT_TRUE(dropped(ipv6_from(mac(1), ll, 0, cat({long_hop, bad})), SecurityDrop::kIpUnreadable));
}

TEST_F(PortIpSecurityTest, TaggedFramesAreCheckedAfterTheTagInTheirVlan) {
  VlanSet vlans;
  vlans.add(10);
  vlans.add(20);
  sw_.set_vlans(a_, VlanMembership::make_trunk(vlans), now_);
  sw_.set_vlans(b_, VlanMembership::make_trunk(vlans), now_);
  serve_vlan(10);  // VLAN 20 has no slirp port
  sw_.set_security(a_, secured());
  sw_.addresses().bind(10, mac(1), ip("10.0.10.15"));
  EXPECT_TRUE(sw_.checks_ip(a_));
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("10.0.10.15"), 17, 1, 2, 10)));
  EXPECT_TRUE(crosses(arp_claiming(mac(1), ip4("10.0.10.15"), 10)));
  EXPECT_TRUE(dropped(ipv4_from(mac(1), ip4("10.0.10.16"), 17, 1, 2, 10), SecurityDrop::kIpSource,
                      ip("10.0.10.16")));
  EXPECT_TRUE(dropped(arp_claiming(mac(1), ip4("10.0.10.2"), 10), SecurityDrop::kArpSenderIp,
                      ip("10.0.10.2")));
  const IpAddress slaac = IpAddress::eui64(ip6("fec0::"), mac(1));
  EXPECT_TRUE(crosses(ipv6_from(mac(1), slaac.bytes, 17, Bytes(8, 0), 10)));
  // VLAN 20: nothing to check against.
  EXPECT_TRUE(crosses(ipv4_from(mac(1), ip4("192.0.2.1"), 17, 1, 2, 20)));
}

TEST_F(PortIpSecurityTest, OtherEtherTypesAndUnsecuredPortsPassAsBefore) {
  serve_vlan();
  sw_.set_security(a_, secured());
  Bytes lldp = ether(mac(1), 0x88cc, Bytes(40, 1));
  EXPECT_TRUE(crosses(lldp));
  // c is not secured: any source.
  const size_t before = crossed();
  send(c_, ipv4_from(mac(3), ip4("10.0.2.200")));
  EXPECT_EQ(crossed(), before + 1);
  EXPECT_EQ(c_.counters().drop_ip_spoof, 0u);
}

TEST_F(PortIpSecurityTest, OnlyTheHeadOfASplitFrameIsRead) {
  serve_vlan();
  sw_.set_security(a_, secured());
  const Ip6 ll = ip6("fe80::5054:ff:fe00:1");
  // One destination options header of 128 bytes, then an advertisement for its own link-local
  // address. Whole, the switch reads it all and lets it cross.
  Bytes opts(128, 0);
  opts[0] = 58;
  opts[1] = 15;  // (15 + 1) * 8 = 128 bytes
  const Bytes frame = ipv6_from(mac(1), ll, 60, cat({opts, na_for(ll)}));
  EXPECT_TRUE(crosses(frame));
  // Split with a kSplitHead-byte head: the advertisement lies in the guest's memory, past what
  // the switch may read. Dropped, not parsed from there.
  Bytes& w = storage_.emplace_back(kPrefixSize + kSplitHead);
  store_be32(w.data(), static_cast<uint32_t>(frame.size()));
  std::memcpy(w.data() + kPrefixSize, frame.data(), kSplitHead);
  RxChunk loan;
  loan.refs = 1;
  loan.tail = frame.data() + kSplitHead;
  const uint64_t drops = ip_drops();
  sw_.receive(a_, Frame{w.data(), static_cast<uint32_t>(frame.size()), kSplitHead, &loan, {}},
              now_);
  EXPECT_EQ(ip_drops(), drops + 1);
  EXPECT_EQ(reports_.drops.back().why, SecurityDrop::kIpUnreadable);
  // A split frame whose headers fit the head crosses (joined for b, which takes no split frames).
  const IpAddress slaac = IpAddress::eui64(ip6("fec0::"), mac(1));
  const Bytes plain = ipv6_from(mac(1), slaac.bytes, 17, Bytes(400, 7));
  Bytes& w2 = storage_.emplace_back(kPrefixSize + kSplitHead);
  store_be32(w2.data(), static_cast<uint32_t>(plain.size()));
  std::memcpy(w2.data() + kPrefixSize, plain.data(), kSplitHead);
  RxChunk loan2;
  loan2.refs = 1;
  loan2.tail = plain.data() + kSplitHead;
  const size_t before = crossed();
  sw_.receive(a_, Frame{w2.data(), static_cast<uint32_t>(plain.size()), kSplitHead, &loan2, {}},
              now_);
  EXPECT_EQ(crossed(), before + 1);
  EXPECT_EQ(ip_drops(), drops + 1);
}

TEST_F(PortIpSecurityTest, AllowedAddressesListGivenLeasedAndSlaac) {
  serve_vlan();
  PortSecurity s = secured(1, {mac(1)});
  s.ips = {ip("192.0.2.7")};
  sw_.set_security(a_, s);
  sw_.addresses().bind(kDefaultVlan, mac(1), ip("10.0.2.15"));
  const std::vector<L2Switch::AllowedAddress> all = sw_.allowed_addresses(a_);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].addr, ip("192.0.2.7"));
  EXPECT_EQ(all[0].source, L2Switch::AllowedAddress::Source::kGiven);
  EXPECT_EQ(all[1].addr, ip("10.0.2.15"));
  EXPECT_EQ(all[1].source, L2Switch::AllowedAddress::Source::kLease);
  EXPECT_EQ(all[1].vlan, kDefaultVlan);
  EXPECT_EQ(all[2].addr, ip("fec0::5054:ff:fe00:1"));
  EXPECT_EQ(all[2].source, L2Switch::AllowedAddress::Source::kSlaac);
  EXPECT_TRUE(sw_.allowed_addresses(b_).empty());
  EXPECT_FALSE(sw_.checks_ip(b_));
}

TEST(IpAddressTest, ParsesAndPrintsBothFamilies) {
  EXPECT_EQ(IpAddress::parse("10.0.2.15")->to_string(), "10.0.2.15");
  EXPECT_TRUE(IpAddress::parse("10.0.2.15")->is_v4());
  EXPECT_EQ(IpAddress::parse("FEC0:0::5054:ff:fe12:3456")->to_string(), "fec0::5054:ff:fe12:3456");
  EXPECT_TRUE(IpAddress::parse("fe80::1")->is_v6_link_local());
  EXPECT_FALSE(IpAddress::parse("fec0::1")->is_v6_link_local());
  EXPECT_TRUE(IpAddress::parse("::")->is_unspecified());
  EXPECT_TRUE(IpAddress::parse("0.0.0.0")->is_unspecified());
  for (const char* bad : {"", "10.0.2", "10.0.2.256", "fec0:::1", "10.0.2.15/24", "host"}) {
    EXPECT_FALSE(IpAddress::parse(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace qswitch::sw
