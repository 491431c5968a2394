// Tests build Q8/Q4 matrices from rows as QuantizeRowQ8/Q4 write them (codes row after row,
// scales [rows, blocks]) and keep those for their references, so the kernels' reading of the
// tile layout is checked against an independent addressing.
#pragma once

#include <cstdint>
#include <vector>

#include "r1/kernels/matrix.h"

namespace r1 {

// Bytes of one row of codes as the row quantizers write it.
inline int64_t PlainRowBytes(DType dtype, int64_t cols) {
  return dtype == DType::kU8 ? Q4RowBytes(cols) : cols;
}

// Fills `tiles` from the plain rows and points m.data at it (m's dtype, rows, cols set).
inline void PackTiles(Matrix& m, const std::vector<uint8_t>& codes,
                      const std::vector<uint16_t>& scales, std::vector<uint8_t>& tiles) {
  const int64_t rb = PlainRowBytes(m.dtype, m.cols), blocks = m.qblocks();
  tiles.assign(QuantGroups(m.rows) * QuantGroupBytes(m.dtype, m.cols), 0);
  for (int64_t r = 0; r < m.rows; ++r)
    StoreQuantRow(m.dtype, m.cols, r, codes.data() + r * rb, scales.data() + r * blocks,
                  tiles.data());
  m.data = tiles.data();
}

}  // namespace r1
