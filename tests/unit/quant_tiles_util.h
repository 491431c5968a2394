// Tests build Q8/Q4 matrices from rows as QuantizeRowQ8/Q4 write them (codes row after row,
// scales [rows, blocks]) and keep those for their references, so the kernels' reading of the
// tile layout is checked against an independent addressing.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "r1/kernels/matrix.h"
#include "r1/kernels/quantize_rows.h"

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

// n tokens of `cols` standard-normal activations (seeded by n * seed_scale + cols) with one
// outlier of 30 at index `outlier`, as hidden states have.
inline std::vector<float> RandomActivations(int64_t n, int64_t cols, uint32_t seed_scale,
                                            int64_t outlier) {
  std::mt19937 rng(static_cast<uint32_t>(n * seed_scale + cols));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * cols);
  for (float& v : x) v = nd(rng);
  x[outlier] = 30.0f;
  return x;
}

// A Q8/Q4 matrix of normally distributed weights (standard deviation 0.05), quantized row by row
// and packed into the tile layout; m.data points into `tiles`.
struct RandomQuantMatrix {
  std::vector<uint8_t> tiles;
  Matrix m;
};
inline RandomQuantMatrix MakeRandomQuantMatrix(DType dtype, int64_t rows, int64_t cols,
                                               uint32_t seed) {
  RandomQuantMatrix q;
  q.m.dtype = dtype;
  q.m.rows = rows;
  q.m.cols = cols;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t blocks = cols / kQuantBlock, rb = PlainRowBytes(dtype, cols);
  std::vector<uint8_t> codes(rows * rb);
  std::vector<uint16_t> scales(rows * blocks);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    if (dtype == DType::kI8)
      QuantizeRowQ8(row.data(), cols, reinterpret_cast<int8_t*>(codes.data()) + r * cols,
                    scales.data() + r * blocks);
    else
      QuantizeRowQ4(row.data(), cols, codes.data() + r * rb, scales.data() + r * blocks);
  }
  PackTiles(q.m, codes, scales, q.tiles);
  return q;
}

}  // namespace r1
