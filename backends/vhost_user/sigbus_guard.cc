// backends/vhost_user/sigbus_guard.cc: see the header.
#include "backends/vhost_user/sigbus_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace qswitch::backends::vhost_user {

namespace {

struct Slot {
  std::atomic<uintptr_t> start{0};  // 0: free
  std::atomic<uintptr_t> end{0};
  std::atomic<bool> faulted{false};
};

Slot g_slots[kMaxGuarded];
std::atomic<int> g_high{0};  // slots [0, g_high) may be in use
uintptr_t g_page = 4096;
struct sigaction g_previous {};
bool g_installed = false;

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  const int high = g_high.load(std::memory_order_acquire);
  for (int i = 0; i < high; ++i) {
    Slot& s = g_slots[i];
    const uintptr_t start = s.start.load(std::memory_order_acquire);
    if (start == 0 || addr < start || addr >= s.end.load(std::memory_order_relaxed)) continue;
    void* page = reinterpret_cast<void*>(addr & ~(g_page - 1));
    if (::mmap(page, g_page, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
               0) != MAP_FAILED) {
      s.faulted.store(true, std::memory_order_release);
      return;  // the access resumes on the zero page
    }
    break;
  }
  // Not a guest mapping of ours: whoever handled SIGBUS before, or the default action (the
  // faulting access runs again and ends the process, as it would have without us).
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN &&
      g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
    return;
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGBUS, &dfl, nullptr);
}

void install() {
  if (g_installed) return;
  g_installed = true;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) g_page = static_cast<uintptr_t>(page);
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

int guard_mapping(void* base, size_t size) {
  install();
  const auto start = reinterpret_cast<uintptr_t>(base);
  const uintptr_t end = start + ((size + g_page - 1) & ~(g_page - 1));
  for (int i = 0; i < kMaxGuarded; ++i) {
    Slot& s = g_slots[i];
    if (s.start.load(std::memory_order_relaxed) != 0) continue;
    s.faulted.store(false, std::memory_order_relaxed);
    s.end.store(end, std::memory_order_relaxed);
    s.start.store(start, std::memory_order_release);
    if (i + 1 > g_high.load(std::memory_order_relaxed)) {
      g_high.store(i + 1, std::memory_order_release);
    }
    return i;
  }
  return -1;
}

void unguard_mapping(int slot) {
  if (slot < 0 || slot >= kMaxGuarded) return;
  g_slots[slot].start.store(0, std::memory_order_release);
  g_slots[slot].faulted.store(false, std::memory_order_relaxed);
}

bool mapping_faulted(int slot) {
  return slot >= 0 && slot < kMaxGuarded && g_slots[slot].faulted.load(std::memory_order_acquire);
}

}  // namespace qswitch::backends::vhost_user
