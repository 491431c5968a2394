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
  for (int64_t k = 0; k < m.qruns(); ++k) {
    const QuantRun run = m.Run(r, k);
    uint8_t* out = const_cast<uint8_t*>(run.codes);
    if (dtype == DType::kU8) {
      std::memcpy(out, codes + (run.c0 / kQuantBlock) * 16, run.nb * 16);
    } else {
      // Q8 rows come unpadded; the tile's last block keeps its zeros past `cols`.
      std::memcpy(out, codes + run.c0, run.c1 - run.c0);
    }
    std::memcpy(const_cast<uint16_t*>(run.scales), scales + run.c0 / kQuantBlock, run.nb * 2);
  }
}

}  // namespace r1
