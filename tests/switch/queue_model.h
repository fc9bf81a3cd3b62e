// tests/switch/queue_model.h: the model of an output queue that the random tests of OutputRing
// and StreamTxQueue check the real one against: which frames are queued, from which pool, and
// which of them unpin() has copied (always a prefix of the queue, output_ring.h).
#pragma once

#include <cstddef>
#include <deque>

namespace qswitch::sw::test {

// A model entry: which frame, from which pool (a test's pool count: static storage), and
// whether the queue holds it as a copy.
struct QueuedModel {
  size_t frame;
  size_t pool;
  bool copied;
};

// What unpin(pool k) must copy: from the first frame not yet copied up to the last one of pool
// k, none if no uncopied frame is from k. Marks them copied and returns how many.
inline size_t unpin_model(std::deque<QueuedModel>& model, size_t k) {
  size_t first = 0;
  while (first < model.size() && model[first].copied) ++first;
  size_t want = 0;
  for (size_t j = model.size(); j > first; --j) {
    if (model[j - 1].pool == k) {
      want = j - first;
      break;
    }
  }
  for (size_t j = first; j < first + want; ++j) model[j].copied = true;
  return want;
}

}  // namespace qswitch::sw::test
