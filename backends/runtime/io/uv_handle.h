// backends/runtime/io/uv_handle.h: ownership of libuv handles.
// A libuv handle's memory must live until its close callback runs (libuv docs, uv_close), which
// can be after its owner is gone. UvHandle allocates the handle on the heap and, when destroyed,
// closes it with a callback that frees it. Used for every handle in qswitch.
#pragma once

#include <uv.h>

namespace qswitch::io {

template <typename T>
class UvHandle {
 public:
  UvHandle() : h_(new T{}) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;

  // Closes the current handle and starts over with a fresh, uninitialised one (a new fd needs
  // a new poll handle).
  void renew() {
    close();
    h_ = new T{};
  }

  T* get() const { return h_; }
  uv_handle_t* handle() const { return reinterpret_cast<uv_handle_t*>(h_); }
  // Closes now; the memory goes in the close callback. Safe to call twice, and on a handle that
  // was never initialised (its loop pointer is still null: freed at once).
  void close() {
    if (h_ == nullptr) return;
    uv_handle_t* h = handle();
    h->data = nullptr;
    if (h->loop == nullptr) {
      delete h_;
    } else if (!uv_is_closing(h)) {
      uv_close(h, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
    }
    h_ = nullptr;
  }

 private:
  T* h_;
};

// Makes `poll` watch exactly `events` (UV_READABLE | UV_WRITABLE | ...; 0 stops it). `current`
// is what it watches now and is updated; nothing is done when nothing changes, since every
// restart is an epoll_ctl.
inline void set_poll_events(uv_poll_t* poll, int& current, int events, uv_poll_cb cb) {
  if (events == current) return;
  current = events;
  if (events == 0) {
    uv_poll_stop(poll);
    return;
  }
  uv_poll_start(poll, events, cb);
}

}  // namespace qswitch::io
