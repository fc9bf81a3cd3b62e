// switch/types.h: small vocabulary types shared by the switch core.
#pragma once

#include <cstdint>
#include <limits>

namespace qswitch::sw {

// Ports are numbered densely from 0; a closed port's id may be reused after its MACs are gone.
using PortId = uint32_t;
inline constexpr PortId kNoPort = std::numeric_limits<PortId>::max();

// Monotonic milliseconds. The core never reads a clock: callers pass `now`, tests inject it.
using Millis = int64_t;

}  // namespace qswitch::sw
