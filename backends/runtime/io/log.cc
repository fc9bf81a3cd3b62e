// backends/runtime/io/log.cc: formats the whole line first so one write() carries it (lines from
// one process never interleave).
#include "backends/runtime/io/log.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>

namespace qswitch::io {

void log_line(const char* fmt, ...) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "qswitch: ");
  va_list ap;
  va_start(ap, fmt);
  const int m = std::vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : m;
  if (n > static_cast<int>(sizeof buf) - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  ssize_t ignored = ::write(STDERR_FILENO, buf, n);
  (void)ignored;
}

}  // namespace qswitch::io
