// backends/runtime/offload_intake.h: what a port that reads a virtio_net_hdr with each frame (a
// vhost-user guest's, a tap's with IFF_VNET_HDR) does with it, and counts.
//
// take() runs sw::take_frame_offload() (switch/offload.h) on the frame in the port's own memory:
// a checksum left to do is completed there, a large TCP segment keeps its state for the switch,
// and a header or frame Linux would refuse makes the port drop the frame, with a rate-limited
// log line naming the port. The port shows the three counters under its own kind's names.
#pragma once

#include <cstdint>
#include <string>

#include "backends/runtime/io/log.h"
#include "switch/frame.h"
#include "switch/types.h"

namespace qswitch::backends {

class OffloadIntake {
 public:
  // false: drop the frame (counted in bad_offload, logged as "port PORT WHO NAME: ...").
  bool take(const uint8_t* hdr, uint32_t hdr_size, uint8_t* frame, uint32_t len,
            sw::FrameOffload& offload, sw::Millis now, uint32_t port, const char* who,
            const std::string& name);

  uint64_t gso_frames() const { return gso_frames_; }          // large segments taken
  uint64_t csum_completed() const { return csum_completed_; }  // checksums completed here
  uint64_t bad_offload() const { return bad_offload_; }        // frames dropped

 private:
  uint64_t gso_frames_ = 0;
  uint64_t csum_completed_ = 0;
  uint64_t bad_offload_ = 0;
  io::RateLimit log_{3, 10'000};
};

}  // namespace qswitch::backends
