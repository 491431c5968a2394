// A weight matrix [rows, cols] in its stored type, used by every Linear layer. Weights are never
// expanded to float32 copies: kernels convert them on the fly (BF16/F16 widening, FP8 codes times
// their 128x128 block scale, Q8/Q4 codes times their per-32 scale).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

#include "r1/core/dtype.h"

namespace r1 {

// Elements per scale of the Q8 and Q4 formats (r1cpp's own, docs/quantization.md): each run of
// 32 elements of a row shares one F16 scale; the last block of a row is zero-padded.
inline constexpr int kQuantBlock = 32;

// Q8/Q4 matrices are stored in tiles, so that a matrix-vector product reads one sequential
// stream per thread instead of eight (the decode kernel walks 4 rows at once, each with a code
// and a scale stream); in a synthetic loop on this machine's Zen 5 that took DRAM reads from
// 0.70-0.78 to 0.90-0.93 of a plain read loop, in whole-model decode Q4 by a median 10% and Q8
// within the noise (docs/performance.md).
// Rows come in groups of kTileRows (the last padded with zero rows); each group is a sequence of
// tiles, one per run of kTileBlocks blocks (the last run may be shorter, nb blocks): the nb
// blocks of codes of the group's row 0, then of row 1, 2, 3, then kTileRows x kTileBlocks F16
// scales (row i's at slot i * kTileBlocks; unused slots zero). Every tile is a whole number of
// 64-byte lines when the row length is a multiple of 64.
// Within a row's run the codes are interleaved by 4-byte words: word q of block b (the block's
// bytes 4q .. 4q+3 as the encoder writes them) is word q * nb + b of the run. So one 64-byte
// load holds one word of each of 16 blocks, and the decode kernel's `vpdpbusd` sums each block
// in its own int32 lane: one conversion and one scale multiply per row per 512 elements instead
// of three vector operations per 64 bytes. Decode steps of the Qwen-1.5B shape took 8-11% less
// time in Q4 and 0-10% less in Q8 (docs/performance.md).
inline constexpr int kTileRows = 4;
inline constexpr int kTileBlocks = 16;
inline constexpr int64_t kTileScaleBytes = kTileRows * kTileBlocks * 2;

// Bytes of one block of codes: 32 (Q8, one int8 per element) or 16 (Q4, two per byte).
inline int64_t QuantBlockBytes(DType dtype) { return dtype == DType::kU8 ? 16 : 32; }
// Bytes of one group of kTileRows rows of a Q8/Q4 matrix with `cols` columns, scales included.
inline int64_t QuantGroupBytes(DType dtype, int64_t cols) {
  const int64_t blocks = (cols + kQuantBlock - 1) / kQuantBlock;
  const int64_t runs = (blocks + kTileBlocks - 1) / kTileBlocks;
  return blocks * kTileRows * QuantBlockBytes(dtype) + runs * kTileScaleBytes;
}
inline int64_t QuantGroups(int64_t rows) { return (rows + kTileRows - 1) / kTileRows; }

// Row r's part of one tile: blocks [k * kTileBlocks, + nb) of codes and their scales.
struct QuantRun {
  const uint8_t* codes = nullptr;    // nb blocks, word-interleaved (RunByte)
  const uint16_t* scales = nullptr;  // nb scales, contiguous
  int64_t nb = 0;
  int64_t code_stride = 0;           // bytes from this row's codes to the next row's in the tile
  int64_t c0 = 0, c1 = 0;            // the row's elements it holds (c1 <= cols)
};

struct Matrix {
  std::string name;
  // kF32/kF16/kBF16: plain values. kF8E4M3: codes x block scale. kI8: Q8, one int8 code per
  // element. kU8: Q4, two 4-bit codes per byte; within each block of 32 elements, byte j holds
  // element j in its low nibble and element j+16 in its high one, code = value + 8. Q8 and Q4
  // codes and scales are both in `data`, in the tile layout above.
  DType dtype = DType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  // FP8 only: one float multiplier per block_rows x block_cols block, [ceil(rows/br), ceil(cols/bc)].
  const float* scale = nullptr;
  int block_rows = 128, block_cols = 128;

  bool empty() const { return data == nullptr; }
  bool quantized() const { return dtype == DType::kI8 || dtype == DType::kU8; }
  size_t bytes() const;  // stored bytes, scales included
  int64_t scale_cols() const { return (cols + block_cols - 1) / block_cols; }
  int64_t qblocks() const { return (cols + kQuantBlock - 1) / kQuantBlock; }
  // Unquantized types: bytes from one row to the next.
  int64_t row_bytes() const;
  // Q8/Q4: runs of kTileBlocks blocks per row, and row r's run k.
  int64_t qruns() const { return (qblocks() + kTileBlocks - 1) / kTileBlocks; }
  QuantRun Run(int64_t r, int64_t k) const;

  // out[0 .. c1-c0) = W[r][c0 .. c1) in float32, computed exactly as the reference does
  // (FP8, Q8, Q4: code value x scale, one float32 rounding).
  void DequantRow(int64_t r, int64_t c0, int64_t c1, float* out) const;
  // out[c - c0] += a * W[r][c] for c in [c0, c1).
  void AxpyRow(int64_t r, int64_t c0, int64_t c1, float a, float* out) const;
  // out[c] += sum of a[r - r0] * W[r][c] over r in [r0, r1), for every c: W^T a over a few
  // rows, as AxpyRow row after row (same order; fused multiply-adds may round the last bit
  // differently), with out kept in registers for Q8/Q4.
  void AxpyRows(int64_t r0, int64_t r1, const float* a, float* out) const;
};

// Inline: the decode kernel asks for each tile's address, once per 2 KiB of Q8 it reads.
inline QuantRun Matrix::Run(int64_t r, int64_t k) const {
  const int64_t bb = QuantBlockBytes(dtype), blocks = qblocks();
  const int64_t b0 = k * kTileBlocks;
  QuantRun run;
  run.nb = std::min<int64_t>(kTileBlocks, blocks - b0);
  run.code_stride = run.nb * bb;
  // Every run before k is a full tile.
  const uint8_t* tile = data + (r / kTileRows) * QuantGroupBytes(dtype, cols) +
                        k * (kTileRows * kTileBlocks * bb + kTileScaleBytes);
  const int64_t i = r % kTileRows;
  run.codes = tile + i * run.code_stride;
  run.scales = reinterpret_cast<const uint16_t*>(tile + kTileRows * run.code_stride) +
               i * kTileBlocks;
  run.c0 = b0 * kQuantBlock;
  run.c1 = std::min<int64_t>(cols, (b0 + run.nb) * kQuantBlock);
  return run;
}

// Offset in a run of nb blocks of byte j (in the encoder's order) of block b.
inline int64_t RunByte(int64_t nb, int64_t b, int64_t j) { return ((j / 4) * nb + b) * 4 + j % 4; }

// The run's codes in the encoder's order (nb blocks one after another) into out, for the
// kernels that walk a row element by element.
void UninterleaveRun(const QuantRun& run, DType dtype, uint8_t* out);

// One row of Q4 codes without the tiles (what QuantizeRowQ4 writes): ceil(cols / 32) * 16 bytes.
inline int64_t Q4RowBytes(int64_t cols) {
  return (cols + kQuantBlock - 1) / kQuantBlock * (kQuantBlock / 2);
}

// Writes row r of a Q8/Q4 matrix into its tiles at `dst` (the whole matrix, QuantGroups(rows) x
// QuantGroupBytes bytes, zeroed beforehand so padding stays zero). `codes` holds the row as
// QuantizeRowQ8 (cols int8) or QuantizeRowQ4 (Q4RowBytes(cols) bytes) writes it, `scales` its
// ceil(cols / 32) F16 scales.
void StoreQuantRow(DType dtype, int64_t cols, int64_t r, const uint8_t* codes,
                   const uint16_t* scales, uint8_t* dst);

}  // namespace r1
