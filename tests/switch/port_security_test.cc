// tests/switch/port_security_test.cc: port security in the switch core (switch/port_security.h):
// a secured port sends only from its own MACs (given, then first seen up to max_macs), those
// MACs are pinned so no other port takes them, ARP must name the frame's source, every drop is
// counted and reported, and what is not secured behaves as before.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>
#include <vector>

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
};

class Reports : public L2Switch::Events {
 public:
  void on_first_mac(Port&, const MacAddress&) override {}
  void on_duplicate_mac(const MacAddress&, Port&, Port&, uint64_t) override {}
  void on_mac_spoof(Port& in, const MacAddress& mac, Port& owner) override {
    pins.push_back({in.id(), mac, owner.id()});
  }
  void on_port_security(Port& in, const MacAddress& mac, SecurityDrop why) override {
    drops.push_back({in.id(), mac, why});
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

}  // namespace
}  // namespace qswitch::sw
