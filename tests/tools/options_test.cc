// tests/tools/options_test.cc: the qswitch command line (parse_options over getopt_long): both
// value spellings, the optional --slirp value, and errors that name the bad argument without
// getopt's own messages.
#include "tools/qswitch/config/options.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qswitch::tools {
namespace {

ParseResult parse(std::vector<const char*> args) {
  args.insert(args.begin(), "qswitch");
  return parse_options(static_cast<int>(args.size()), args.data());
}

std::string error_of(std::vector<const char*> args) {
  const ParseResult r = parse(std::move(args));
  EXPECT_FALSE(r.options);
  return r.error;
}

TEST(OptionsTest, TakesValuesAfterEqualsOrAsTheNextArgument) {
  const ParseResult r = parse({"--listen=tcp:127.0.0.1:1", "--listen", "unix:/tmp/x.sock",
                               "--mac-age", "30", "--mac-max=32", "--guests", "0"});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->listen.size(), 2u);
  EXPECT_EQ(r.options->listen[1].path, "/tmp/x.sock");
  EXPECT_EQ(r.options->mac_age_s, 30u);
  EXPECT_EQ(r.options->mac_max, 32u);
  EXPECT_EQ(r.options->guests, 0u);
  ASSERT_TRUE(r.options->control);
  EXPECT_EQ(r.options->control->path, "/tmp/x.ctl");
  EXPECT_TRUE(r.options->slirp.empty());
}

TEST(OptionsTest, SlirpTakesTheNextArgumentUnlessItIsAnOption) {
  ParseResult r = parse({"--listen", "unix:/tmp/x.sock", "--slirp", "mtu=1400"});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->slirp.size(), 1u);
  EXPECT_EQ(r.options->slirp[0].mtu, 1400u);
  EXPECT_EQ(r.options->slirp[0].vlan, 1u);
  r = parse({"--slirp", "--listen", "unix:/tmp/x.sock"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->slirp.size(), 1u);
  EXPECT_EQ(r.options->listen.size(), 1u);
}

TEST(OptionsTest, SlirpRepeatsOncePerVlan) {
  ParseResult r =
      parse({"--listen", "unix:/tmp/x.sock,vlan=10", "--slirp", "vlan=10,net=10.0.10.0/24",
             "--slirp=net=10.0.20.0/24,vlan=20", "--slirp"});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->slirp.size(), 3u);
  EXPECT_EQ(r.options->slirp[0].vlan, 10u);
  EXPECT_EQ(r.options->slirp[1].vlan, 20u);
  EXPECT_EQ(r.options->slirp[2].vlan, 1u);
  // Each with its own net, and its addresses moved into it.
  EXPECT_EQ(r.options->slirp[0].dhcp_start.s_addr, htonl(0x0a000a0f));  // 10.0.10.15
  EXPECT_EQ(r.options->slirp[1].dhcp_start.s_addr, htonl(0x0a00140f));  // 10.0.20.15
  EXPECT_EQ(r.options->slirp[2].dhcp_start.s_addr, htonl(0x0a00020f));  // 10.0.2.15
  // The same net on two VLANs is fine: their frames never meet.
  EXPECT_TRUE(parse({"--slirp", "vlan=10", "--slirp", "vlan=20"}).options);
}

TEST(OptionsTest, TwoSlirpPortsForOneVlanAreAnErrorNamingBoth) {
  EXPECT_EQ(error_of({"--slirp", "vlan=10,net=10.0.10.0/24", "--slirp", "mtu=1400,vlan=10"}),
            "'--slirp vlan=10,net=10.0.10.0/24' and '--slirp mtu=1400,vlan=10' are both for VLAN "
            "10: one slirp port per VLAN (put every key of a VLAN's port in one --slirp, give "
            "another port its own vlan=N)");
  // No vlan= is VLAN 1.
  EXPECT_EQ(error_of({"--slirp", "--slirp", "vlan=1"}),
            "'--slirp' and '--slirp vlan=1' are both for VLAN 1: one slirp port per VLAN (put "
            "every key of a VLAN's port in one --slirp, give another port its own vlan=N)");
}

TEST(OptionsTest, BadSlirpVlansSayWhatIsAccepted) {
  for (const char* bad : {"0", "4095", "x", "-1", ""}) {
    const std::string text = "vlan=" + std::string(bad);
    const std::string e = error_of({"--slirp", text.c_str()});
    EXPECT_EQ(e.rfind("--slirp ", 0), 0u) << e;
    EXPECT_NE(e.find("1..4094"), std::string::npos) << bad << ": " << e;
  }
  EXPECT_EQ(error_of({"--slirp", "vlan=5000"}),
            "--slirp vlan=5000: \"5000\" is not a VLAN id (1..4094) (the VLAN this slirp port "
            "serves, e.g. vlan=10)");
  EXPECT_NE(error_of({"--slirp", "vlan=10,vlan=20"}).find("'vlan' given twice"), std::string::npos);
}

// Two slirp ports' host forwards on one host socket would fail the second bind at start:
// refused before anything starts, naming both.
TEST(OptionsTest, SlirpPortsMayNotForwardTheSameHostSocket) {
  EXPECT_EQ(error_of({"--slirp", "vlan=10,hostfwd=tcp::8080-:80", "--slirp",
                      "vlan=20,hostfwd=tcp:127.0.0.1:8080-:22"}),
            "--slirp vlan=10 hostfwd 'tcp:127.0.0.1:8080-:80' and --slirp vlan=20 hostfwd "
            "'tcp:127.0.0.1:8080-:22' both bind tcp port 8080 on the host; give one of them "
            "another host port");
  // 0.0.0.0 takes the port on every address, the loopback's too.
  EXPECT_NE(error_of({"--slirp", "vlan=10,hostfwd=tcp:0.0.0.0:8080-:80", "--slirp",
                      "vlan=20,hostfwd=tcp::8080-:80"})
                .find("both bind tcp port 8080"),
            std::string::npos);
  // Another protocol, another port or two specific addresses: no clash.
  EXPECT_TRUE(parse({"--slirp", "vlan=10,hostfwd=tcp::8080-:80", "--slirp",
                     "vlan=20,hostfwd=udp::8080-:80,hostfwd=tcp::8081-:80"})
                  .options);
  EXPECT_TRUE(parse({"--slirp", "vlan=10,hostfwd=tcp:127.0.0.1:8080-:80", "--slirp",
                     "vlan=20,hostfwd=tcp:127.0.0.2:8080-:80"})
                  .options);
}

// IPv6 host sides: the same rules within the family; an IPv6 socket never clashes with an
// IPv4 one (IPv6 forwards bind IPv6 only).
TEST(OptionsTest, SlirpPortsIpv6ForwardsClashWithinTheirFamilyOnly) {
  EXPECT_EQ(error_of({"--slirp", "vlan=10,hostfwd=tcp:[::1]:8080-[fec0::15]:80", "--slirp",
                      "vlan=20,hostfwd=tcp::8080-[fec0::16]:22"}),
            "--slirp vlan=10 hostfwd 'tcp:[::1]:8080-[fec0::15]:80' and --slirp vlan=20 hostfwd "
            "'tcp:[::1]:8080-[fec0::16]:22' both bind tcp port 8080 on the host; give one of them "
            "another host port");
  EXPECT_NE(error_of({"--slirp", "vlan=10,hostfwd=udp:[::]:53-[fec0::15]:53", "--slirp",
                      "vlan=20,hostfwd=udp:[::1]:53-[fec0::16]:53"})
                .find("both bind udp port 53"),
            std::string::npos);
  EXPECT_TRUE(parse({"--slirp", "vlan=10,hostfwd=tcp:[::]:8080-[fec0::15]:80", "--slirp",
                     "vlan=20,hostfwd=tcp:0.0.0.0:8080-:80"})
                  .options);
  EXPECT_TRUE(parse({"--slirp", "vlan=10,hostfwd=tcp:[::1]:8080-[fec0::15]:80", "--slirp",
                     "vlan=20,hostfwd=tcp:[fd00::1]:8080-[fec0::15]:80"})
                  .options);
}

TEST(OptionsTest, ZeroConfigurationListensOnTheDefaultSocketWithSlirp) {
  const ParseResult r = parse({});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->listen.size(), 1u);
  EXPECT_EQ(r.options->listen[0].path, default_socket_path());
  ASSERT_EQ(r.options->slirp.size(), 1u);
  EXPECT_EQ(r.options->slirp[0].vlan, 1u);
  EXPECT_TRUE(parse({"--no-slirp"}).options->slirp.empty());
}

TEST(OptionsTest, UnknownArgumentsAreNamed) {
  for (const char* bad : {"--bogus", "--bogus=1", "--lis", "-x", "foo", "--", "-"}) {
    const std::string e = error_of({bad});
    EXPECT_EQ(e, "unknown option '" + std::string(bad) + "' (see qswitch --help)") << bad;
  }
}

TEST(OptionsTest, MissingAndBadValuesSayWhatIsAccepted) {
  EXPECT_EQ(error_of({"--listen"}), "--listen needs a value: unix:PATH or tcp:HOST:PORT");
  EXPECT_EQ(error_of({"--mac-age"}), "--mac-age needs a value in seconds");
  EXPECT_EQ(error_of({"--mac-age=0"}), "--mac-age '0': expected whole seconds from 1 to 1000000");
  EXPECT_EQ(error_of({"--guests", "-1"}), "--guests '-1': expected a number from 0 to 64");
  EXPECT_EQ(error_of({"--pcap="}), "--pcap needs a file name");
  EXPECT_EQ(error_of({"--control", "tcp:1.2.3.4:5"}),
            "--control 'tcp:1.2.3.4:5': expected unix:PATH or none");
  EXPECT_EQ(error_of({"--slirp", "--no-slirp"}), "--slirp and --no-slirp contradict each other");
  // The tap and vxlan parsers name the option themselves: once, not twice.
  EXPECT_EQ(error_of({"--tap", "fd=x"}),
            "--tap fd=x: fd must be a number >= 0 (fd=N, an inherited tap fd)");
  EXPECT_EQ(error_of({"--vxlan", "vni=x"}),
            "--vxlan vni=x: the VNI is a number in 0..16777215 (24 bits)");
}

TEST(OptionsTest, VhostUserTakesUnixSocketsOnlyAndIsAPortOption) {
  ParseResult r = parse({"--vhost-user", "unix:/tmp/vu.sock", "--vhost-user=unix:/tmp/vu2.sock"});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->vhost_user.size(), 2u);
  EXPECT_EQ(r.options->vhost_user[1].address.path, "/tmp/vu2.sock");
  EXPECT_FALSE(r.options->vhost_user[1].dial);
  // A port option: no default listener, no zero-configuration slirp port.
  EXPECT_TRUE(r.options->listen.empty());
  EXPECT_TRUE(r.options->slirp.empty());
  // With no other unix socket, the control socket goes beside the first vhost-user one.
  ASSERT_TRUE(r.options->control);
  EXPECT_EQ(r.options->control->path, "/tmp/vu.ctl");
  r = parse({"--vhost-user", "connect:/tmp/qemu-vu.sock", "--listen", "unix:/tmp/x.sock"});
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->vhost_user.size(), 1u);
  EXPECT_TRUE(r.options->vhost_user[0].dial);
  EXPECT_EQ(r.options->vhost_user[0].address.path, "/tmp/qemu-vu.sock");
  EXPECT_EQ(error_of({"--vhost-user"}), "--vhost-user needs a value: unix:PATH or connect:PATH");
  const std::string accepted =
      "expected unix:PATH (qswitch listens) or connect:PATH (qswitch dials a QEMU chardev with "
      "server=on); vhost-user passes file descriptors, which only unix sockets carry";
  EXPECT_EQ(error_of({"--vhost-user", "tcp:127.0.0.1:5000"}),
            "--vhost-user 'tcp:127.0.0.1:5000': " + accepted);
  EXPECT_EQ(error_of({"--vhost-user", "connect:"}),
            "--vhost-user 'connect:': empty path; " + accepted);
}

// What a lab file said (lab_file.h), then the command line on top of it.
TEST(OptionsTest, ACommandLineOnTopOfABaseAddsPortsAndReplacesValues) {
  Options base;
  ASSERT_EQ(apply_option_value(base, "listen", "unix:/tmp/base.sock"), "");
  ASSERT_EQ(apply_option_value(base, "mac-age", "60"), "");
  ASSERT_EQ(apply_option_value(base, "slirp", "mtu=1400"), "");
  ASSERT_EQ(apply_option_value(base, "control", "none"), "");
  EXPECT_EQ(apply_option_value(base, "mac-max", "1"),
            "--mac-max '1': expected a number of entries from 16 to 1000000");
  std::vector<const char*> args = {"qswitch",   "--listen",  "unix:/tmp/argv.sock",
                                   "--mac-age", "90",        "--slirp",
                                   "mtu=1500",  "--control", "unix:/tmp/argv.ctl"};
  ParseResult r = parse_options(static_cast<int>(args.size()), args.data(), base);
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->listen.size(), 2u);
  EXPECT_EQ(r.options->listen[0].path, "/tmp/base.sock");
  EXPECT_EQ(r.options->mac_age_s, 90u);
  ASSERT_EQ(r.options->slirp.size(), 1u);
  EXPECT_EQ(r.options->slirp[0].mtu, 1500u);
  EXPECT_FALSE(r.options->control_disabled);
  EXPECT_EQ(r.options->control->path, "/tmp/argv.ctl");
  // --no-slirp removes the base's slirp port; --control none its control socket.
  args = {"qswitch", "--no-slirp", "--control", "none"};
  base.control_disabled = false;
  ASSERT_EQ(apply_option_value(base, "control", "unix:/tmp/base.ctl"), "");
  r = parse_options(static_cast<int>(args.size()), args.data(), base);
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_TRUE(r.options->slirp.empty());
  EXPECT_TRUE(r.options->control_disabled);
  EXPECT_FALSE(r.options->control);
  // A base without slirp (`slirp = false`) and --slirp: the command line wins.
  Options no_slirp;
  no_slirp.no_slirp = true;
  args = {"qswitch", "--slirp"};
  r = parse_options(static_cast<int>(args.size()), args.data(), no_slirp);
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->slirp.size(), 1u);
}

// A base's slirp ports (a lab file's [[slirp]] tables) and the command line's: a --slirp
// replaces the base's port of its VLAN and adds one for a VLAN the base has none on.
TEST(OptionsTest, ACommandLineSlirpReplacesTheBasesPortOfItsVlan) {
  Options base;
  ASSERT_EQ(apply_option_value(base, "listen", "unix:/tmp/base.sock"), "");
  ASSERT_EQ(apply_option_value(base, "slirp", "vlan=10,mtu=1400"), "");
  ASSERT_EQ(apply_option_value(base, "slirp", "vlan=20,mtu=1400"), "");
  ASSERT_EQ(base.slirp.size(), 2u);
  std::vector<const char*> args = {"qswitch", "--slirp", "vlan=20,mtu=9000", "--slirp", "vlan=30"};
  ParseResult r = parse_options(static_cast<int>(args.size()), args.data(), base);
  ASSERT_TRUE(r.options) << r.error;
  ASSERT_EQ(r.options->slirp.size(), 3u);
  EXPECT_EQ(r.options->slirp[0].vlan, 10u);
  EXPECT_EQ(r.options->slirp[0].mtu, 1400u);
  EXPECT_EQ(r.options->slirp[1].vlan, 20u);
  EXPECT_EQ(r.options->slirp[1].mtu, 9000u);
  EXPECT_EQ(r.options->slirp[2].vlan, 30u);
  // A forward of the command line's port that clashes with one of the base's.
  ASSERT_EQ(apply_option_value(base, "slirp", "vlan=40,hostfwd=tcp::8080-:80"), "");
  args = {"qswitch", "--slirp", "vlan=50,hostfwd=tcp::8080-:22"};
  r = parse_options(static_cast<int>(args.size()), args.data(), base);
  EXPECT_NE(r.error.find("--slirp vlan=40 hostfwd 'tcp:127.0.0.1:8080-:80' and --slirp vlan=50"),
            std::string::npos)
      << r.error;
}

TEST(OptionsTest, ConfigAndCheck) {
  const ParseResult r = parse({"--config", "lab.toml", "--check"});
  ASSERT_TRUE(r.options) << r.error;
  EXPECT_EQ(r.options->config, std::optional<std::string>("lab.toml"));
  EXPECT_TRUE(r.options->check);
  EXPECT_EQ(error_of({"--config", "a", "--config=b"}),
            "--config given twice: one lab file at a time");
  EXPECT_EQ(error_of({"--config"}), "--config needs a lab file name (TOML, see docs/lab-file.md)");
  EXPECT_EQ(error_of({"--check=x"}), "unknown option '--check=x' (see qswitch --help)");
}

TEST(OptionsTest, EveryPortOptionTakesVlanKeys) {
  const ParseResult r =
      parse({"--listen", "unix:/tmp/a.sock,vlan=10", "--connect", "tcp:127.0.0.1:5000,trunk=10,20",
             "--dgram", "mcast:239.0.0.1:7000,vlan=30,localaddr=127.0.0.1", "--vhost-user",
             "unix:/tmp/vu.sock,trunk=5-7,native=1", "--tap", "qs0,vlan=40", "--vxlan",
             "vni=42,vlan=50,local=127.0.0.1:0,remote=127.0.0.2", "--listen", "unix:/tmp/b.sock"});
  ASSERT_TRUE(r.options) << r.error;
  const Options& o = *r.options;
  EXPECT_EQ(o.listen[0].path, "/tmp/a.sock");
  EXPECT_EQ(o.listen[0].vlans, sw::VlanMembership::access(10));
  EXPECT_EQ(o.listen[1].vlans, sw::VlanMembership::access(1));
  EXPECT_EQ(o.connect[0].port, 5000);
  EXPECT_EQ(o.connect[0].vlans.to_string(), "trunk 10,20");
  EXPECT_EQ(o.dgram[0].vlans, sw::VlanMembership::access(30));
  EXPECT_EQ(o.dgram[0].mode, backends::DgramConfig::Mode::kMulticast);
  EXPECT_EQ(o.vhost_user[0].vlans.to_string(), "trunk 5-7 native 1");
  EXPECT_EQ(o.taps[0].name, "qs0");
  EXPECT_EQ(o.taps[0].vlans, sw::VlanMembership::access(40));
  EXPECT_EQ(o.vxlans[0].vlans, sw::VlanMembership::access(50));
  // The control socket still goes beside the first unix listener, keys or not.
  ASSERT_TRUE(o.control);
  EXPECT_EQ(o.control->path, "/tmp/a.ctl");
}

TEST(OptionsTest, BadVlanKeysNameTheOptionTheKeyAndTheRange) {
  EXPECT_EQ(error_of({"--listen", "unix:/tmp/a.sock,vlan=0"}),
            "--listen 'unix:/tmp/a.sock,vlan=0': vlan=0: \"0\" is not a VLAN id (1..4094)");
  EXPECT_NE(error_of({"--tap", "qs0,vlan=1,trunk=2"}).find("exclude each other"),
            std::string::npos);
  EXPECT_NE(
      error_of({"--dgram", "unix:/tmp/d,native=2"}).find("native=2: a native VLAN is a trunk's"),
      std::string::npos);
}

TEST(OptionsTest, EveryPortOptionTakesPortSecurityKeys) {
  const ParseResult r = parse({"--listen", "unix:/tmp/a.sock,port-security=on,vlan=10", "--dgram",
                               "unix:/tmp/d.sock,mac=52:54:00:00:00:07", "--tap", "qs0,max-macs=3",
                               "--listen", "unix:/tmp/b.sock"});
  ASSERT_TRUE(r.options) << r.error;
  const Options& o = *r.options;
  EXPECT_EQ(o.listen[0].path, "/tmp/a.sock");
  EXPECT_TRUE(o.listen[0].security.enabled);
  EXPECT_EQ(o.listen[0].security.max_macs, 1u);
  EXPECT_EQ(o.listen[0].vlans, sw::VlanMembership::access(10));
  EXPECT_FALSE(o.listen[1].security.enabled);
  EXPECT_EQ(o.dgram[0].security.macs,
            std::vector<sw::MacAddress>{*sw::MacAddress::parse("52:54:00:00:00:07")});
  EXPECT_EQ(o.taps[0].security.max_macs, 3u);
  EXPECT_NE(error_of({"--listen", "unix:/tmp/a.sock,max-macs=0"})
                .find("--listen 'unix:/tmp/a.sock,max-macs=0': max-macs=0: expected a number"),
            std::string::npos);
}

TEST(OptionsTest, EveryPortOptionTakesIpAddresses) {
  const ParseResult r =
      parse({"--listen", "unix:/tmp/a.sock,ip=10.0.2.50,ip=fec0::50", "--dgram",
             "unix:/tmp/d.sock,ip=192.0.2.1", "--tap", "qs0,ip=192.0.2.2", "--vhost-user",
             "unix:/tmp/vu.sock,ip=192.0.2.3", "--connect", "unix:/tmp/c.sock,ip=192.0.2.4"});
  ASSERT_TRUE(r.options) << r.error;
  const Options& o = *r.options;
  EXPECT_TRUE(o.listen[0].security.enabled);
  EXPECT_EQ(o.listen[0].security.ips,
            (std::vector<sw::IpAddress>{*sw::IpAddress::parse("10.0.2.50"),
                                        *sw::IpAddress::parse("fec0::50")}));
  EXPECT_EQ(o.dgram[0].security.ips.at(0).to_string(), "192.0.2.1");
  EXPECT_EQ(o.taps[0].security.ips.at(0).to_string(), "192.0.2.2");
  EXPECT_EQ(o.vhost_user[0].security.ips.at(0).to_string(), "192.0.2.3");
  EXPECT_EQ(o.connect[0].security.ips.at(0).to_string(), "192.0.2.4");
  EXPECT_NE(error_of({"--listen", "unix:/tmp/a.sock,ip=10.0.2.300"})
                .find("--listen 'unix:/tmp/a.sock,ip=10.0.2.300': ip=10.0.2.300: expected a "
                      "unicast IPv4 or IPv6 address"),
            std::string::npos);
}

TEST(OptionsTest, HelpAndVersionIgnoreAValue) {
  EXPECT_TRUE(parse({"-h"}).options->help);
  EXPECT_TRUE(parse({"--help=x"}).options->help);
  EXPECT_TRUE(parse({"--version"}).options->version);
}

}  // namespace
}  // namespace qswitch::tools
