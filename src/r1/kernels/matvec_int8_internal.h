// Shared between the int8-activation decode kernels of matvec_int8.cc (AVX512-VNNI) and
// matvec_int8_avx2.cc (AVX2 and AVX-VNNI): the activation buffers' sizing and lane layout, and
// the AVX2 entry points.
#pragma once

#include <cstdint>

#include "r1/kernels/matvec_int8.h"

namespace r1::int8_detail {

// Activation bytes of one run of kTileBlocks blocks, in each lane layout.
inline constexpr int64_t kRunBytes = kTileBlocks * kQuantBlock;

// Software prefetch distance along the weights. A group's tiles are contiguous, so this runs
// ahead of the hardware prefetchers, which stop at 4 KiB pages: without it two threads read
// DRAM at 0.72-0.85 of a plain read loop, with it 0.90-1.1 (2-8 KiB measured; 16 KiB, right
// for the earlier block-order kernel, was lower).
inline constexpr int64_t kPrefetchBytes = 4096;

// Sizes the buffers (the padding lanes zero); returns the number of runs.
int64_t PrepareActivations(int64_t cols, Int8Activations& out);

// Copies block b's 32 codes (natural order, already in out.code) into both lane layouts and
// sets its biases from their sum.
void SpreadBlock(int64_t b, int code_sum, Int8Activations& out);

// AVX2 (`vpmaddubsw`) or, where the CPU has it, AVX-VNNI (`vpdpbusd` on 256 bits).
void QuantizeActivationsAvx2(const float* x, int64_t cols, Int8Activations& out);
void Int8RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                  float* y, int64_t y_stride, const float* bias);

}  // namespace r1::int8_detail
