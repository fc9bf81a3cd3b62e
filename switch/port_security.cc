// switch/port_security.cc: see the header.
#include "switch/port_security.h"

namespace qswitch::sw {

const char* security_drop_text(SecurityDrop why) {
  switch (why) {
    case SecurityDrop::kNotItsMac:
      return "a source MAC that is not one of the secured port's own";
    case SecurityDrop::kArpSenderMac:
      return "an ARP packet whose sender MAC is not the frame's source (or is cut short)";
  }
  return "?";
}

}  // namespace qswitch::sw
