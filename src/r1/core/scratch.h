// Scratch buffers reused from call to call.
#pragma once

#include <cstddef>
#include <vector>

namespace r1 {

// v's storage with room for n elements, grown but never shrunk. std::vector::resize zero-fills
// whatever it grows by, so a buffer resized down for a small product and back up for a large one
// was re-zeroed every time: in a prefill that alternates 1536- and 8960-column products, several
// MB per layer on the calling thread while the other one waited. Callers overwrite what they read.
template <class T>
T* GrowScratch(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

}  // namespace r1
