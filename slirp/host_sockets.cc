// slirp/host_sockets.cc: see the header.
#include "slirp/host_sockets.h"

#include <cstring>

namespace qswitch::slirp {

namespace {

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;
constexpr uint8_t kTcpUrg = 0x20;
constexpr uint8_t kIcmpEcho = 8;

}  // namespace

size_t FlowKeyHash::operator()(const FlowKey& k) const {
  // FNV-1a over the key's fields; flows are few (bounded by the caps) and set up rarely.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ull;
    }
  };
  const uint8_t head[6] = {k.proto,
                           static_cast<uint8_t>(k.ipv6 ? 1 : 0),
                           static_cast<uint8_t>(k.src_port >> 8),
                           static_cast<uint8_t>(k.src_port),
                           static_cast<uint8_t>(k.dst_port >> 8),
                           static_cast<uint8_t>(k.dst_port)};
  mix(head, sizeof head);
  mix(k.src.data(), k.src.size());
  mix(k.dst.data(), k.dst.size());
  return static_cast<size_t>(h);
}

SocketRequest socket_request(const GuestPacket& p, const SlirpOptions& options) {
  SocketRequest r;
  if (!p.first_fragment) {
    r.kind = SocketRequest::Kind::kFragment;
    return r;
  }
  const size_t addr_len = p.ipv6 ? 16 : 4;
  if (p.proto == kIpProtoUdp || p.proto == kIpProtoTcp) {
    if (p.l4_size < 4) return r;  // no ports: libslirp drops it
    r.key.proto = p.proto;
    r.key.ipv6 = p.ipv6;
    r.key.src_port = load_be16(p.l4);
    std::memcpy(r.key.src.data(), p.src, addr_len);
    if (p.proto == kIpProtoTcp) {
      // tcp_input opens a connection for a segment with SYN alone among these flags.
      if (p.l4_size < 14) return r;
      const uint8_t flags = p.l4[13];
      if ((flags & (kTcpSyn | kTcpFin | kTcpRst | kTcpUrg | kTcpAck)) != kTcpSyn) return r;
      r.key.dst_port = load_be16(p.l4 + 2);
      std::memcpy(r.key.dst.data(), p.dst, addr_len);
    }
    r.kind = SocketRequest::Kind::kFlow;
    return r;
  }
  if (!p.ipv6 && p.proto == kIpProtoIcmp && p.l4_size >= 1 && p.l4[0] == kIcmpEcho) {
    // libslirp answers an echo to its own address and to its DNS address itself.
    if (std::memcmp(p.dst, &options.host.s_addr, 4) == 0 ||
        std::memcmp(p.dst, &options.dns.s_addr, 4) == 0) {
      return r;
    }
    r.kind = SocketRequest::Kind::kPing;
  }
  // ICMPv6: libslirp (4.7) answers echo requests to its own address only, and opens nothing.
  return r;
}

HostSocketBudget::Verdict HostSocketBudget::admit(uint64_t owner,
                                                  const SocketRequest& request) const {
  using Kind = SocketRequest::Kind;
  if (request.kind == Kind::kNone || request.kind == Kind::kFragment) return Verdict::kAdmit;
  if (request.kind == Kind::kFlow && flows_.find(request.key) != flows_.end()) {
    return Verdict::kAdmit;
  }
  if (max_total_ != 0 && total_ >= max_total_) return Verdict::kSwitchCap;
  if (max_per_owner_ != 0 && held_by(owner) >= max_per_owner_) return Verdict::kPortCap;
  return Verdict::kAdmit;
}

void HostSocketBudget::begin(uint64_t owner, const SocketRequest& request) {
  in_input_ = true;
  owner_ = owner;
  request_ = request;
}

void HostSocketBudget::registered(int fd) {
  if (fd < 0) return;  // libslirp 4.7's tcp_connect registers a socket before it has an fd
  const size_t i = static_cast<size_t>(fd);
  if (i < fds_.size() && fds_[i].used) release(fds_[i], fd);  // its unregister never came
  if (!in_input_) return;  // not a guest's: a host forward's listener or accepted connection
  if (i >= fds_.size()) fds_.resize(i + 1);
  Slot& s = fds_[i];
  s.used = true;
  s.owner = owner_;
  s.keyed = false;
  total_ += 1;
  per_owner_[owner_] += 1;
  if (request_.kind == SocketRequest::Kind::kFlow && flows_.find(request_.key) == flows_.end()) {
    flows_.emplace(request_.key, fd);
    s.keyed = true;
    s.key = request_.key;
  }
}

void HostSocketBudget::unregistered(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= fds_.size()) return;
  Slot& s = fds_[static_cast<size_t>(fd)];
  if (s.used) release(s, fd);
}

void HostSocketBudget::release(Slot& s, int fd) {
  s.used = false;
  total_ -= 1;
  auto it = per_owner_.find(s.owner);
  if (it != per_owner_.end() && --it->second == 0) per_owner_.erase(it);
  if (s.keyed) {
    auto f = flows_.find(s.key);
    if (f != flows_.end() && f->second == fd) flows_.erase(f);
    s.keyed = false;
  }
}

uint32_t HostSocketBudget::held_by(uint64_t owner) const {
  auto it = per_owner_.find(owner);
  return it == per_owner_.end() ? 0 : it->second;
}

void HostSocketBudget::for_each_owner(
    const std::function<void(uint64_t owner, uint32_t sockets)>& f) const {
  for (const auto& [owner, n] : per_owner_) f(owner, n);
}

}  // namespace qswitch::slirp
