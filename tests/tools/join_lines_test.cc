// tests/tools/join_lines_test.cc: the "join with:" lines qswitch prints, made from typed values.
#include "tools/qswitch/join_lines.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

#include "tools/qswitch/config/dgram_options.h"

namespace qswitch::tools {
namespace {

const sw::MacAddress kMac = sw::MacAddress::qemu_guest(0x12ab34);

backends::DgramConfig dgram(const std::string& text) {
  std::string error;
  auto c = parse_dgram_spec(text, error);
  EXPECT_TRUE(c) << error;
  return c.value_or(backends::DgramConfig{});
}

sockaddr_storage inet(const char* host, uint16_t port) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, host, &reinterpret_cast<sockaddr_in&>(ss).sin_addr) == 1) {
    reinterpret_cast<sockaddr_in&>(ss).sin_family = AF_INET;
    reinterpret_cast<sockaddr_in&>(ss).sin_port = htons(port);
  } else {
    inet_pton(AF_INET6, host, &reinterpret_cast<sockaddr_in6&>(ss).sin6_addr);
    reinterpret_cast<sockaddr_in6&>(ss).sin6_family = AF_INET6;
    reinterpret_cast<sockaddr_in6&>(ss).sin6_port = htons(port);
  }
  return ss;
}

TEST(JoinLinesTest, StreamGuestOfAListener) {
  io::SocketAddress unix_ep;
  unix_ep.kind = io::SocketAddress::Kind::kUnix;
  unix_ep.path = "/run/sw.sock";
  EXPECT_EQ(stream_netdev(unix_ep, false),
            "-netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/sw.sock");
  io::SocketAddress tcp;
  tcp.kind = io::SocketAddress::Kind::kTcp;
  tcp.host = "::1";
  tcp.port = 4000;
  EXPECT_EQ(stream_netdev(tcp, false),
            "-netdev stream,id=n0,server=off,addr.type=inet,addr.host=::1,addr.port=4000");
}

TEST(JoinLinesTest, UnixDgramGuestGetsItsOwnPathBesideOurs) {
  EXPECT_EQ(dgram_netdev(dgram("unix:/run/q/sw.dgram"), sockaddr_storage{}, kMac),
            "-netdev dgram,id=n0,local.type=unix,local.path=/run/q/guest-12-ab-34.dgram,"
            "remote.type=unix,remote.path=/run/q/sw.dgram");
}

TEST(JoinLinesTest, LearningUdpGuestSendsToTheBoundPort) {
  EXPECT_EQ(dgram_netdev(dgram("udp:127.0.0.1:0"), inet("127.0.0.1", 40112), kMac),
            "-netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=0,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=40112");
  EXPECT_EQ(dgram_netdev(dgram("udp:[::1]:0"), inet("::1", 40113), kMac),
            "-netdev dgram,id=n0,local.type=inet,local.host=::1,local.port=0,"
            "remote.type=inet,remote.host=::1,remote.port=40113");
}

TEST(JoinLinesTest, ConnectedUdpGuestBindsOurRemote) {
  EXPECT_EQ(dgram_netdev(dgram("udp:127.0.0.1:5000-127.0.0.2:5001"), inet("127.0.0.1", 5000), kMac),
            "-netdev dgram,id=n0,local.type=inet,local.host=127.0.0.2,local.port=5001,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=5000");
}

TEST(JoinLinesTest, VhostUserGuestSharesItsMemoryAndTurnsMsixOffForTcg) {
  io::SocketAddress ep;
  ep.kind = io::SocketAddress::Kind::kUnix;
  ep.path = "/run/vu.sock";
  EXPECT_EQ(join_line(vhost_user_netdev(ep), kMac, kVhostUserTcgDevice),
            "join with: -object memory-backend-memfd,id=qsmem,size=1G,share=on "
            "-machine memory-backend=qsmem -chardev socket,id=qsc0,path=/run/vu.sock "
            "-netdev vhost-user,id=n0,chardev=qsc0 "
            "-device virtio-net-pci,netdev=n0,mac=52:54:00:12:ab:34,vectors=0");
}

TEST(JoinLinesTest, MulticastGuestJoinsTheGroup) {
  EXPECT_EQ(dgram_netdev(dgram("mcast:230.0.0.1:1234"), sockaddr_storage{}, kMac),
            "-netdev socket,id=n0,mcast=230.0.0.1:1234");
  EXPECT_EQ(join_line("-netdev x", kMac),
            "join with: -netdev x -device virtio-net-pci,netdev=n0,mac=52:54:00:12:ab:34");
}

// A lab file's [[guest]] joins its named port with its own MAC (what --check writes under it).
TEST(JoinLinesTest, ALabGuestJoinsItsNamedPortWithItsMac) {
  const LabFileResult r = parse_lab_file(R"([[listen]]
name = "web"
address = "unix:/run/lab/web.sock"
[[listen]]
name = "t"
address = "tcp:127.0.0.1:5555"
[[dgram]]
name = "d"
address = "udp:127.0.0.1:6000"
[[vhost-user]]
name = "vu"
address = "unix:/run/lab/vu.sock"
[[guest]]
name = "a"
mac = "52:54:00:0a:00:01"
port = "web"
[[guest]]
name = "b"
mac = "52:54:00:0a:00:02"
port = "t"
[[guest]]
name = "c"
mac = "52:54:00:0a:00:03"
port = "d"
[[guest]]
name = "e"
mac = "52:54:00:0a:00:04"
port = "vu"
[[guest]]
name = "f"
mac = "52:54:00:0a:00:05"
)",
                                         "lab.toml");
  ASSERT_TRUE(r.lab) << r.error;
  const LabFile& lab = *r.lab;
  EXPECT_EQ(lab_guest_join_line(lab, lab.guests[0]),
            "join with: -netdev stream,id=n0,server=off,addr.type=unix,addr.path=/run/lab/web.sock "
            "-device virtio-net-pci,netdev=n0,mac=52:54:00:0a:00:01");
  EXPECT_EQ(lab_guest_join_line(lab, lab.guests[1]),
            "join with: -netdev stream,id=n0,server=off,addr.type=inet,addr.host=127.0.0.1,"
            "addr.port=5555 -device virtio-net-pci,netdev=n0,mac=52:54:00:0a:00:02");
  EXPECT_EQ(lab_guest_join_line(lab, lab.guests[2]),
            "join with: -netdev dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=0,"
            "remote.type=inet,remote.host=127.0.0.1,remote.port=6000 -device "
            "virtio-net-pci,netdev=n0,mac=52:54:00:0a:00:03");
  EXPECT_EQ(lab_guest_join_line(lab, lab.guests[3]),
            "join with: " + vhost_user_netdev(lab.options.vhost_user[0].address) +
                " -device virtio-net-pci,netdev=n0,mac=52:54:00:0a:00:04" + kVhostUserTcgDevice);
  EXPECT_EQ(lab_guest_join_line(lab, lab.guests[4]), "");  // no port
}

}  // namespace
}  // namespace qswitch::tools
