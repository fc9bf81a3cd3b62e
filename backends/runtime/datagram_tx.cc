// backends/runtime/datagram_tx.cc: see the header.
#include "backends/runtime/datagram_tx.h"

namespace qswitch::backends {

namespace {
constexpr uint8_t kZeros[sw::kPadFrameSize] = {};
}  // namespace

int DatagramTx::iov(size_t i, iovec out[2]) const {
  const Entry& e = at(i);
  if (e.head != 0) {
    out[0] = iovec{const_cast<uint8_t*>(e.data()), e.head};
    out[1] = iovec{const_cast<uint8_t*>(e.tail()), e.size - e.head};
    return 2;
  }
  out[0] = iovec{const_cast<uint8_t*>(e.data()), e.size};
  if (e.size >= sw::kPadFrameSize) return 1;
  out[1] = iovec{const_cast<uint8_t*>(kZeros), sw::kPadFrameSize - e.size};
  return 2;
}

}  // namespace qswitch::backends
