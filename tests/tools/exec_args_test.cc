// tests/tools/exec_args_test.cc: what `qswitch exec` appends to a QEMU command line, and how it
// reads the accelerator and the RAM size from it (--type vhost-user).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/qswitch/client/exec.h"

namespace qswitch::tools {
namespace {

using Args = std::vector<std::string>;

TEST(ExecArgsTest, KvmOnlyWhenTheCommandLineAsksForIt) {
  EXPECT_FALSE(program_uses_kvm({"qemu-system-x86_64", "-m", "256"}));
  EXPECT_TRUE(program_uses_kvm({"qemu-system-x86_64", "-enable-kvm"}));
  EXPECT_TRUE(program_uses_kvm({"qemu-system-x86_64", "-accel", "kvm"}));
  EXPECT_TRUE(program_uses_kvm({"qemu-system-x86_64", "--accel", "accel=kvm,thread=single"}));
  EXPECT_FALSE(program_uses_kvm({"qemu-system-x86_64", "-accel", "tcg"}));
  EXPECT_TRUE(program_uses_kvm({"qemu-system-x86_64", "-machine", "q35,accel=kvm:tcg"}));
  EXPECT_FALSE(program_uses_kvm({"qemu-system-x86_64", "-M", "pc,accel=tcg"}));
  // The last word wins, as in QEMU.
  EXPECT_FALSE(program_uses_kvm({"qemu-system-x86_64", "-enable-kvm", "-accel", "tcg"}));
}

TEST(ExecArgsTest, MemorySizeFollowsMinusM) {
  EXPECT_EQ(program_memory_size({"qemu-system-x86_64"}), "128M");
  EXPECT_EQ(program_memory_size({"qemu-system-x86_64", "-m", "256"}), "256M");
  EXPECT_EQ(program_memory_size({"qemu-system-x86_64", "-m", "1G"}), "1G");
  EXPECT_EQ(program_memory_size({"qemu-system-x86_64", "-m", "size=2G,slots=2,maxmem=8G"}), "2G");
  EXPECT_EQ(program_memory_size({"qemu-system-x86_64", "-m", "512", "-m", "768"}),
            "768M");  // the last
}

TEST(ExecArgsTest, VhostUserSharesTheGuestsMemoryAndTurnsMsixOffUnderTcg) {
  const Args tcg = {"qemu-system-x86_64", "-m", "256", "-accel", "tcg"};
  EXPECT_EQ(
      exec_vhost_user_args(tcg, "qs0", "/tmp/d/vhost-user.sock", "52:54:00:12:34:56"),
      (Args{"-object", "memory-backend-memfd,id=qs0mem,size=256M,share=on", "-machine",
            "memory-backend=qs0mem", "-chardev", "socket,id=qs0chr,path=/tmp/d/vhost-user.sock",
            "-netdev", "vhost-user,id=qs0,chardev=qs0chr", "-device",
            "virtio-net-pci,netdev=qs0,mac=52:54:00:12:34:56,vectors=0"}));
  // Under KVM MSI-X stays on; a guest that already has a memory backend keeps it.
  const Args kvm = {"qemu-system-x86_64", "-enable-kvm", "-machine", "q35,memory-backend=ram"};
  EXPECT_EQ(
      exec_vhost_user_args(kvm, "qs1", "/p", "52:54:00:00:00:01"),
      (Args{"-chardev", "socket,id=qs1chr,path=/p", "-netdev", "vhost-user,id=qs1,chardev=qs1chr",
            "-device", "virtio-net-pci,netdev=qs1,mac=52:54:00:00:00:01"}));
}

TEST(ExecArgsTest, TypeVhostUserIsParsedAndAttachedByName) {
  ExecOptions o;
  std::string error;
  const char* argv[] = {"exec", "--type", "vhost-user", "--", "qemu-system-x86_64"};
  ASSERT_TRUE(parse_exec_args(5, argv, o, error)) << error;
  EXPECT_EQ(o.type, ExecType::kVhostUser);
  EXPECT_EQ(attach_request_line(o.type, "qemu"),
            R"({"args":{"name":"qemu","type":"vhost-user"},"cmd":"port.attach"})");
  const char* bad[] = {"exec", "--type", "vhost", "--", "qemu-system-x86_64"};
  EXPECT_FALSE(parse_exec_args(5, bad, o, error));
  EXPECT_EQ(error, "--type 'vhost': expected dgram, stream or vhost-user");
}

TEST(ExecArgsTest, IpAddressesTurnPortSecurityOnAndGoAsAList) {
  ExecOptions o;
  std::string error;
  const char* argv[] = {"exec",          "--mac", "52:54:00:00:00:05", "--ip", "10.0.2.50",
                        "--ip=fec0::50", "--",    "qemu-system-x86_64"};
  ASSERT_TRUE(parse_exec_args(8, argv, o, error)) << error;
  EXPECT_EQ(attach_request_line(o.type, "", o.port_keys),
            R"({"args":{"ip":["10.0.2.50","fec0::50"],"mac":"52:54:00:00:00:05",)"
            R"("port-security":"on","type":"dgram"},"cmd":"port.attach"})");
  const char* bad[] = {"exec", "--ip", "10.0.2", "--", "qemu-system-x86_64"};
  EXPECT_FALSE(parse_exec_args(5, bad, o, error));
  EXPECT_EQ(error,
            "--ip: ip=10.0.2: expected a unicast IPv4 or IPv6 address like 10.0.2.15 or fec0::15");
}

}  // namespace
}  // namespace qswitch::tools
