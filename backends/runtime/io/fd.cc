// backends/runtime/io/fd.cc
#include "backends/runtime/io/fd.h"

#include <unistd.h>

namespace qswitch::io {

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace qswitch::io
