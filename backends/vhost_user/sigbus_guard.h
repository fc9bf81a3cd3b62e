// backends/vhost_user/sigbus_guard.h: surviving a front-end that shrinks the file behind guest
// memory qswitch has mapped.
//
// Theory of operation
// - GuestMemory maps the front-end's fds MAP_SHARED. If the front-end then truncates such a
//   file (a hostile peer can; QEMU's sealed memfds cannot be shrunk, but a memory-backend-file
//   on /dev/shm or hugetlbfs can), touching the vanished pages raises SIGBUS, which would kill
//   the whole switch for one peer's doing.
// - So every guest mapping is registered here. A process-wide SIGBUS handler (installed on the
//   first registration, SA_SIGINFO) looks the faulting address up; when it is inside a guarded
//   mapping it maps a private zero page over the faulting page (MAP_FIXED: the access resumes and
//   reads zeros, writes go nowhere) and marks that mapping faulted. The port sees faulted()
//   after the access and closes with the reason; nothing else notices. A fault anywhere else is
//   handed to the handler that was there before (a sanitizer's) or, with none, to the default
//   action, exactly as without this module.
// - The table is a fixed array of kMaxGuarded slots of atomics: registration and the handler
//   never allocate or lock, and the handler only reads it and calls mmap().
#pragma once

#include <cstddef>

namespace qswitch::backends::vhost_user {

inline constexpr int kMaxGuarded = 4096;  // 8 regions for each of 512 guests

// Guards [base, base + size) (size rounded up to pages); the slot, or -1 when the table is full.
int guard_mapping(void* base, size_t size);
// Forgets the slot (call before munmap).
void unguard_mapping(int slot);
// Whether a fault in the slot's mapping was absorbed since it was guarded.
bool mapping_faulted(int slot);

}  // namespace qswitch::backends::vhost_user
