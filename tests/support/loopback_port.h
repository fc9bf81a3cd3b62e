// tests/support/loopback_port.h: a TCP port on 127.0.0.1 for a test to use, found the way the
// kernel hands out one (bind to port 0, read it back, close).
#pragma once

#include <cstdint>

namespace qswitch::test_support {

// A TCP port on 127.0.0.1 that was free a moment ago; 0 when none could be had.
uint16_t free_loopback_tcp_port();

}  // namespace qswitch::test_support
