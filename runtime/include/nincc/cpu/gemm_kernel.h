// The GEMM's inner pieces: packing operands into register-width panels and the register-blocked
// micro-kernel that multiplies one packed row panel by one packed column panel.
#pragma once

#include <cstdint>
#include <cstring>

#include "simd.h"

namespace nincc {
namespace cpu {
namespace gemm_detail {

using simd::Isa;
constexpr int kTileRows = simd::kGemmRows;                          // MR
constexpr int kTileCols = simd::kGemmRegsPerRow * Isa::kLanes;      // NR

// A strided view of a matrix operand: element (i, j) is at data[i*row_stride + j*col_stride].
// A transposed operand is the same view with the strides swapped, so packing handles all four
// transpose combinations without copies.
struct MatrixView {
  const float* data;
  std::int64_t row_stride;
  std::int64_t col_stride;
  const float* at(std::int64_t i, std::int64_t j) const { return data + i * row_stride + j * col_stride; }
};

// Packs rows [row0, row0+rows) x depth [k0, k0+depth) of A into kTileRows-row panels laid out
// depth-major ([k][kTileRows]), so the micro-kernel reads A with unit stride. Rows past the end of
// the matrix are zero so the kernel never needs a row count.
inline void pack_a_panel(const MatrixView& a, std::int64_t row0, int rows, std::int64_t k0, int depth,
                         float* packed) {
  if (a.row_stride == 1) {  // A^T stored: kTileRows consecutive rows are contiguous at each k
    for (int p = 0; p < depth; ++p) {
      const float* src = a.at(row0, k0 + p);
      float* dst = packed + p * kTileRows;
      int i = 0;
      for (; i < rows; ++i) dst[i] = src[i];
      for (; i < kTileRows; ++i) dst[i] = 0.f;
    }
    return;
  }
  for (int i = 0; i < kTileRows; ++i) {
    if (i < rows) {
      const float* src = a.at(row0 + i, k0);
      for (int p = 0; p < depth; ++p) packed[p * kTileRows + i] = src[p * a.col_stride];
    } else {
      for (int p = 0; p < depth; ++p) packed[p * kTileRows + i] = 0.f;
    }
  }
}

// Packs depth [k0, k0+depth) x columns [col0, col0+cols) of B into one kTileCols-wide panel laid
// out [k][kTileCols], zero beyond the last column.
inline void pack_b_panel(const MatrixView& b, std::int64_t k0, int depth, std::int64_t col0, int cols,
                         float* packed) {
  if (b.col_stride == 1) {  // B row-major: each k row of the panel is one contiguous copy
    for (int p = 0; p < depth; ++p) {
      float* dst = packed + p * kTileCols;
      std::memcpy(dst, b.at(k0 + p, col0), sizeof(float) * cols);
      for (int j = cols; j < kTileCols; ++j) dst[j] = 0.f;
    }
    return;
  }
  for (int j = 0; j < kTileCols; ++j) {
    if (j < cols) {
      const float* src = b.at(k0, col0 + j);
      for (int p = 0; p < depth; ++p) packed[p * kTileCols + j] = src[p * b.row_stride];
    } else {
      for (int p = 0; p < depth; ++p) packed[p * kTileCols + j] = 0.f;
    }
  }
}

// What the micro-kernel does with its finished tile. Bias and ReLU are applied only on the last
// pass over the depth (`finish`), after the whole dot product is in C.
struct TileOutput {
  bool accumulate;          // add the tile to C's contents instead of overwriting them
  bool finish;              // last depth block: apply the bias and ReLU below
  const float* row_bias;    // per-row bias (conv: one per output channel), or null
  const float* col_bias;    // per-column bias (linear: one per output feature), or null
  bool relu;
};

inline float finish_scalar(float v, int i, int j, const TileOutput& out) {
  if (!out.finish) return v;
  if (out.row_bias) v += out.row_bias[i];
  if (out.col_bias) v += out.col_bias[j];
  if (out.relu) v = v > 0.f ? v : 0.f;
  return v;
}

// The register tile of the micro-kernel: kTileRows x kTileCols accumulators.
struct TileAccumulators {
  Isa::Reg r[kTileRows][simd::kGemmRegsPerRow];
};

// acc = packed_a (kTileRows x depth) * B (depth x kTileCols), B's row p being the kTileCols floats at
// b_row(p): a packed panel (tile_product below) or, for the direct convs (conv_direct.h), x or a strip
// of it read in place. In registers for the whole depth loop (the caller's accumulators are only
// live values once this is inlined). `next_a`, when given, is the A panel the caller multiplies next:
// it is prefetched a line per step, so that weights streaming from memory arrive in time. Rows <
// kTileRows computes only the panel's first Rows rows (acc rows past them are left unset): the last
// panel of a layer whose channels are not a multiple of kTileRows (32 = 12 + 12 + 8) skips the
// multiply-adds of its zero padding rows. Regs < kGemmRegsPerRow likewise computes only the first Regs
// registers of each row (acc registers past them are left unset): a Winograd column tile of at most
// half kTileCols tiles (conv_winograd.h: NIN's 7x7 planes at batch 1 have 16) skips its empty half.
template <int Rows = kTileRows, int Regs = simd::kGemmRegsPerRow, class BRow>
__attribute__((always_inline)) inline void tile_product_of(int depth, const float* __restrict packed_a, BRow b_row,
                                                           TileAccumulators& acc, const float* next_a = nullptr) {
  static_assert(Rows > 0 && Rows <= kTileRows, "a panel has at most kTileRows rows");
  static_assert(Regs > 0 && Regs <= simd::kGemmRegsPerRow, "a row has at most kGemmRegsPerRow registers");
  constexpr int kRegs = Regs;
  constexpr int kLanes = Isa::kLanes;
#pragma GCC unroll 16
  for (int i = 0; i < Rows; ++i)
#pragma GCC unroll 4
    for (int r = 0; r < kRegs; ++r) acc.r[i][r] = Isa::zero();

  for (int p = 0; p < depth; ++p) {
    if (next_a) __builtin_prefetch(next_a + p * kTileRows, 0, 3);
    const float* row = b_row(p);
    Isa::Reg b[kRegs];
#pragma GCC unroll 4
    for (int r = 0; r < kRegs; ++r) b[r] = Isa::load(row + r * kLanes);
#pragma GCC unroll 16
    for (int i = 0; i < Rows; ++i) {
      Isa::Reg a = Isa::broadcast(packed_a + i);
#pragma GCC unroll 4
      for (int r = 0; r < kRegs; ++r) acc.r[i][r] = Isa::fma(a, b[r], acc.r[i][r]);
    }
    packed_a += kTileRows;
  }
}

// tile_product_of with B a packed panel (depth x kTileCols).
template <int Rows = kTileRows>
__attribute__((always_inline)) inline void tile_product(int depth, const float* __restrict packed_a,
                                                        const float* __restrict packed_b, TileAccumulators& acc,
                                                        const float* next_a = nullptr) {
  tile_product_of<Rows>(depth, packed_a, [packed_b](int p) { return packed_b + p * kTileCols; }, acc, next_a);
}

// tile_product_of of a panel whose first `rows` rows are real (the rest zero padding): a short last
// panel (32 channels: 12 + 12 + 8; 64: 5 x 12 + 4) multiplies a third or two thirds of the rows.
// acc rows from `rows` on are left unset.
static_assert(kTileRows % 3 == 0, "panels are cut in thirds");
template <int Regs = simd::kGemmRegsPerRow, class BRow>
__attribute__((always_inline)) inline void tile_product_rows_of(int rows, int depth, const float* __restrict packed_a, BRow b_row,
                                                                TileAccumulators& acc, const float* next_a = nullptr) {
  if (rows <= kTileRows / 3) tile_product_of<kTileRows / 3, Regs>(depth, packed_a, b_row, acc, next_a);
  else if (rows <= 2 * kTileRows / 3) tile_product_of<2 * kTileRows / 3, Regs>(depth, packed_a, b_row, acc, next_a);
  else tile_product_of<kTileRows, Regs>(depth, packed_a, b_row, acc, next_a);
}

// tile_product_rows_of with B a packed panel.
template <int Regs = simd::kGemmRegsPerRow>
__attribute__((always_inline)) inline void tile_product_rows(int rows, int depth, const float* __restrict packed_a,
                                                             const float* __restrict packed_b, TileAccumulators& acc,
                                                             const float* next_a = nullptr) {
  tile_product_rows_of<Regs>(rows, depth, packed_a, [packed_b](int p) { return packed_b + p * kTileCols; }, acc, next_a);
}

// The last few columns of a pixel tile (NIN's 7x7 plane at batch 1: 49 = 32 + 16 + 1 columns), with
// the weights in the vector lanes instead of the pixels: each depth step loads a packed panel's
// kTileRows weights into one register and multiplies it by each column's broadcast pixel, so a
// column costs one FMA a step, not a whole register of mostly empty lanes. kGroup panels at once
// keep kGroup x Cols independent FMA chains in flight. acc[g][j] lane i is row i of panel g, column
// j, summed in depth order from zero with one rounding a step, as tile_product_of sums it: the same
// bits. AVX-512 only (a panel's 12 rows fit one register); kNarrowMaxCols is 0 elsewhere.
#if defined(__AVX512F__)
constexpr int kNarrowMaxCols = 4;
template <int Cols>
constexpr int kNarrowGroup = Cols == 1 ? 8 : 4;
template <int Cols, int Group, class BRow>
__attribute__((always_inline)) inline void narrow_product_of(int depth, const float* __restrict panel0, std::int64_t panel_stride,
                                                             BRow b_row, __m512 (&acc)[Group][Cols]) {
  static_assert(kTileRows <= 16, "a panel's rows fit one register");
  constexpr __mmask16 kRowsMask = static_cast<__mmask16>((1u << kTileRows) - 1);
#pragma GCC unroll 8
  for (int g = 0; g < Group; ++g)
#pragma GCC unroll 4
    for (int j = 0; j < Cols; ++j) acc[g][j] = _mm512_setzero_ps();
  for (int p = 0; p < depth; ++p) {
    const float* row = b_row(p);
    __m512 x[Cols];
#pragma GCC unroll 4
    for (int j = 0; j < Cols; ++j) x[j] = _mm512_set1_ps(row[j]);
#pragma GCC unroll 8
    for (int g = 0; g < Group; ++g) {
      const __m512 w = _mm512_maskz_loadu_ps(kRowsMask, panel0 + g * panel_stride + p * kTileRows);
#pragma GCC unroll 4
      for (int j = 0; j < Cols; ++j) acc[g][j] = _mm512_fmadd_ps(w, x[j], acc[g][j]);
    }
  }
}
#else
constexpr int kNarrowMaxCols = 0;
#endif

// C[0:rows, 0:cols] (op)= packed_a (kTileRows x depth) * packed_b (depth x kTileCols). The
// accumulators live in registers for the whole depth loop; a partial edge tile is computed in
// full and only its valid part is written. row_bias/col_bias point at this tile's first entry.
inline void micro_kernel(int depth, const float* __restrict packed_a, const float* __restrict packed_b,
                         float* __restrict c, std::int64_t ldc, int rows, int cols, const TileOutput& out) {
  constexpr int kRegs = simd::kGemmRegsPerRow;
  constexpr int kLanes = Isa::kLanes;
  // C's rows are a row stride apart, a pattern the hardware prefetchers do not follow; asking
  // for them now lets them arrive from L3/memory while the depth loop runs instead of after it.
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; j += 16) __builtin_prefetch(c + i * ldc + j, 1);
  TileAccumulators tile_acc;
  tile_product(depth, packed_a, packed_b, tile_acc);
  auto& acc = tile_acc.r;

  if (rows == kTileRows && cols == kTileCols) {
    const Isa::Reg zero = Isa::zero();
#pragma GCC unroll 16
    for (int i = 0; i < kTileRows; ++i) {
#pragma GCC unroll 4
      for (int r = 0; r < kRegs; ++r) {
        float* dst = c + i * ldc + r * kLanes;
        Isa::Reg v = out.accumulate ? Isa::add(Isa::load(dst), acc[i][r]) : acc[i][r];
        if (out.finish) {
          if (out.row_bias) v = Isa::add(v, Isa::broadcast(out.row_bias + i));
          if (out.col_bias) v = Isa::add(v, Isa::load(out.col_bias + r * kLanes));
          if (out.relu) v = Isa::max(v, zero);  // max(NaN, 0) is 0, as is Torch's x > 0 ? x : 0
        }
        Isa::store(dst, v);
      }
    }
    return;
  }

  alignas(64) float tile[kTileRows][kTileCols];
  for (int i = 0; i < kTileRows; ++i)
    for (int r = 0; r < kRegs; ++r) Isa::store(&tile[i][r * kLanes], acc[i][r]);
  for (int i = 0; i < rows; ++i) {
    float* dst = c + i * ldc;
    for (int j = 0; j < cols; ++j) {
      float v = out.accumulate ? dst[j] + tile[i][j] : tile[i][j];
      dst[j] = finish_scalar(v, i, j, out);
    }
  }
}

}  // namespace gemm_detail
}  // namespace cpu
}  // namespace nincc
