// backends/runtime/offload_intake.cc: see the header.
#include "backends/runtime/offload_intake.h"

#include "switch/offload.h"

namespace qswitch::backends {

bool OffloadIntake::take(const uint8_t* hdr, uint32_t hdr_size, uint8_t* frame, uint32_t len,
                         sw::FrameOffload& offload, sw::Millis now, uint32_t port, const char* who,
                         const std::string& name) {
  bool completed = false;
  const sw::OffloadError e =
      sw::take_frame_offload(hdr, hdr_size, frame, len, &offload, &completed);
  if (offload.any()) gso_frames_ += 1;
  if (completed) csum_completed_ += 1;
  if (e == sw::OffloadError::kOk) return true;
  bad_offload_ += 1;
  if (log_.allow(now)) {
    io::log_line("port %u %s%s: dropped a %u-byte frame with a bad virtio-net header: %s", port,
                 who, name.c_str(), len, sw::offload_error_text(e));
  }
  return false;
}

}  // namespace qswitch::backends
