// Addressing of the Q8/Q4 tile layout described in matrix.h.
#include <algorithm>
#include <cstring>

#include "r1/kernels/matrix.h"

namespace r1 {

void StoreQuantRow(DType dtype, int64_t cols, int64_t r, const uint8_t* codes,
                   const uint16_t* scales, uint8_t* dst) {
  Matrix m;
  m.dtype = dtype;
  m.data = dst;
  m.rows = r + 1;
  m.cols = cols;
  const int64_t bb = QuantBlockBytes(dtype);
  for (int64_t k = 0; k < m.qruns(); ++k) {
    const QuantRun run = m.Run(r, k);
    uint8_t* out = const_cast<uint8_t*>(run.codes);
    const int64_t b0 = run.c0 / kQuantBlock;
    // Q8 rows come unpadded; the last block keeps its zeros past `cols`.
    const int64_t have = dtype == DType::kU8 ? run.nb * bb : run.c1 - run.c0;
    for (int64_t b = 0; b < run.nb; ++b)
      for (int64_t j = 0; j < bb && b * bb + j < have; ++j)
        out[RunByte(run.nb, b, j)] = codes[b0 * bb + b * bb + j];
    std::memcpy(const_cast<uint16_t*>(run.scales), scales + b0, run.nb * 2);
  }
}

namespace {

// Block by block, its kWords words from nb words apart: a constant inner trip count that the
// compiler unrolls into one contiguous store per block.
template <int kWords>
void UninterleaveWords(const uint8_t* codes, int64_t nb, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    uint32_t block[kWords];
    for (int q = 0; q < kWords; ++q) std::memcpy(&block[q], codes + (q * nb + b) * 4, 4);
    std::memcpy(out + b * kWords * 4, block, sizeof block);
  }
}

}  // namespace

void UninterleaveRun(const QuantRun& run, DType dtype, uint8_t* out) {
  if (dtype == DType::kU8)
    UninterleaveWords<4>(run.codes, run.nb, out);
  else
    UninterleaveWords<8>(run.codes, run.nb, out);
}

}  // namespace r1
