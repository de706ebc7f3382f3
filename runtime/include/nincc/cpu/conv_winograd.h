// Winograd convolution F(m x m, r x r) for stride-1 r x r convs (Lavin & Gray 2016), NCHW in and out:
// each m x m block of output pixels (a "tile") comes from an a x a input patch d, a = m + r - 1:
//   Y = A^T [ sum_c (G g_kc G^T) (.) (B^T d_c B) ] A
// so that per tile and channel pair the a*a products replace m*m*r*r multiply-adds: F(2,3) does
// 2.25x fewer, F(4,3) 4x, F(2,5) 2.78x. Three steps per block of tiles, 32 tiles to a block (the
// lanes of the GEMM micro-kernel's column panel):
//   1. input transform: each channel's patches gathered (masked: padding reads zero) and turned
//      into a*a rows V[xi][c][tile], which is the micro-kernel's column panel for each xi;
//   2. a*a GEMMs M[xi] = U[xi] V[xi] over the channels, U[xi] the transformed weights packed once
//      (at fold time) into the micro-kernel's row panels;
//   3. output transform of each row panel's M as soon as it is computed (it stays in L1/L2), then
//      bias, ReLU, and masked stores of whole output-row spans into y (F(2,r) on AVX-512; a masked
//      scatter otherwise).
// Blocks of tiles (and, when there are few, groups of output channels) are the parallel tasks.
// The transform matrices come from the Toom-Cook construction on the points 0, 1, -1, 2, -2 and
// infinity (computed in double at compile time), with B^T's rows scaled to small integers so the
// input transform is exact up to float rounding of its sums.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "conv_gemm.h"
#include "gemm_kernel.h"
#include "im2col.h"
#include "parallel.h"

namespace nincc {
namespace cpu {
namespace winograd_detail {

constexpr int kMaxAlpha = 6;

// A^T (m x a), G (a x r), B^T (a x a) for F(m, r).
struct Matrices {
  double at[kMaxAlpha][kMaxAlpha];
  double g[kMaxAlpha][kMaxAlpha];
  double bt[kMaxAlpha][kMaxAlpha];
};

constexpr double abs_of(double v) { return v < 0 ? -v : v; }

// Correlation y = A^T [(G g) (.) (B^T d)] is the transpose of Toom-Cook's linear convolution
// c = V^-1 [(E_m a) (.) (E_r g)]: A^T = E_m^T, G = E_r, B^T = V^-T, E and V being the
// evaluation matrices (row j: powers of point j; the last row, infinity, picks the top coefficient).
constexpr Matrices make_matrices(int m, int r) {
  const int a = m + r - 1;
  const double points[kMaxAlpha - 1] = {0.0, 1.0, -1.0, 2.0, -2.0};
  Matrices out{};
  auto eval = [&](int j, int k) {  // row j, power k of an evaluation matrix with `a` rows
    if (j == a - 1) return 0.0;
    double v = 1.0;
    for (int i = 0; i < k; ++i) v *= points[j];
    return v;
  };
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < a; ++j) out.at[i][j] = j == a - 1 ? (i == m - 1 ? 1.0 : 0.0) : eval(j, i);
  for (int j = 0; j < a; ++j)
    for (int k = 0; k < r; ++k) out.g[j][k] = j == a - 1 ? (k == r - 1 ? 1.0 : 0.0) : eval(j, k);
  // V^-1 by Gauss-Jordan with partial pivoting on [V | I].
  double w[kMaxAlpha][2 * kMaxAlpha] = {};
  for (int j = 0; j < a; ++j) {
    for (int k = 0; k < a; ++k) w[j][k] = j == a - 1 ? (k == a - 1 ? 1.0 : 0.0) : eval(j, k);
    w[j][a + j] = 1.0;
  }
  for (int col = 0; col < a; ++col) {
    int pivot = col;
    for (int row = col + 1; row < a; ++row)
      if (abs_of(w[row][col]) > abs_of(w[pivot][col])) pivot = row;
    for (int k = 0; k < 2 * a; ++k) {
      const double t = w[col][k];
      w[col][k] = w[pivot][k];
      w[pivot][k] = t;
    }
    const double p = w[col][col];
    for (int k = 0; k < 2 * a; ++k) w[col][k] /= p;
    for (int row = 0; row < a; ++row) {
      if (row == col) continue;
      const double f = w[row][col];
      for (int k = 0; k < 2 * a; ++k) w[row][k] -= f * w[col][k];
    }
  }
  for (int i = 0; i < a; ++i)
    for (int j = 0; j < a; ++j) out.bt[i][j] = w[j][a + i];  // B^T = (V^-1)^T
  // Scale row i of B^T by 1/s and row i of G by s (their product is unchanged), s = the row's last
  // nonzero entry: B^T becomes small integers, the fractions move to the weight transform.
  for (int i = 0; i < a; ++i) {
    double s = 1.0;
    for (int j = 0; j < a; ++j)
      if (abs_of(out.bt[i][j]) > 1e-12) s = out.bt[i][j];
    for (int j = 0; j < a; ++j) {
      // The entries are integers; snap off the elimination's rounding (4 - 4e-16).
      const double v = out.bt[i][j] / s;
      const double n = static_cast<double>(static_cast<long long>(v < 0 ? v - 0.5 : v + 0.5));
      out.bt[i][j] = abs_of(v - n) < 1e-9 ? n : v;
    }
    for (int k = 0; k < r; ++k) out.g[i][k] *= s;
  }
  return out;
}

template <int M, int R>
struct Transform {
  static constexpr int kM = M, kR = R, kAlpha = M + R - 1, kPoints = kAlpha * kAlpha;
  static_assert(kAlpha <= kMaxAlpha, "the construction has points for a <= 6");
  static constexpr Matrices kMat = make_matrices(M, R);
};

using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
constexpr int kPackRows = kConvPackRowMultiple;  // K is padded to this, so sizes do not depend on the ISA
static_assert(kTileCols <= 32, "tile lanes are kept in 32-bit masks");

// Packed U: xi-major, then row panel, then [c][kTileRows] (pack_a_panel's layout, depth = C).
template <class F>  // float or const float
inline F* u_panel(F* packed, int k_out, int c_in, int xi, int panel) {
  const std::int64_t padded = static_cast<std::int64_t>(ceil_div(k_out, kPackRows)) * kPackRows;
  return packed + (xi * padded + static_cast<std::int64_t>(panel) * kTileRows) * c_in;
}

// Per block of 32 tiles: each lane's tile position and which of its patch rows/columns and output
// rows/columns lie inside the image.
struct TileLanes {
  std::int32_t in_index[kTileCols];   // input element of the patch's top-left (may be outside), from image 0
  std::int32_t out_index[kTileCols];  // output element of the tile's top-left, from image 0 (images out_channels apart)
  std::uint32_t in_row[kMaxAlpha], in_col[kMaxAlpha];  // lanes whose patch row / column a is inside
  std::uint32_t out_row[kMaxAlpha], out_col[kMaxAlpha];
  // Runs of lanes whose tiles are side by side in one tile row of one image: lanes [lane, lane +
  // count), whose outputs fill `columns` consecutive floats of each output row (F(2,r)'s stores).
  struct Run {
    int lane, count, columns;
  } runs[kTileCols];
  int run_count = 0;

  template <class T>
  void set(const Conv2dShape& s, int out_channels, int tiles_h, int tiles_w, std::int64_t tiles, std::int64_t first) {
    const int oh_count = s.out_h(), ow_count = s.out_w();
    for (int a = 0; a < T::kAlpha; ++a) in_row[a] = in_col[a] = out_row[a] = out_col[a] = 0;
    const std::int64_t per_image = static_cast<std::int64_t>(tiles_h) * tiles_w;
    run_count = 0;
    for (int l = 0; l < kTileCols; ++l) {
      const std::int64_t t = first + l;
      if (t >= tiles) {
        in_index[l] = out_index[l] = 0;
        continue;
      }
      const int n = static_cast<int>(t / per_image), rest = static_cast<int>(t % per_image);
      const int oh0 = rest / tiles_w * T::kM, ow0 = rest % tiles_w * T::kM;
      if (run_count == 0 || rest % tiles_w == 0) runs[run_count++] = Run{l, 0, 0};
      Run& run = runs[run_count - 1];
      ++run.count;
      run.columns += std::min(T::kM, ow_count - ow0);
      const int ih0 = oh0 - s.pad_h, iw0 = ow0 - s.pad_w;
      in_index[l] = static_cast<std::int32_t>(static_cast<std::int64_t>(n) * s.in_channels * s.in_plane() +
                                              static_cast<std::int64_t>(ih0) * s.in_w + iw0);
      out_index[l] = static_cast<std::int32_t>(static_cast<std::int64_t>(n) * out_channels * s.out_plane() +
                                               static_cast<std::int64_t>(oh0) * ow_count + ow0);
      const std::uint32_t bit = 1u << l;
      for (int a = 0; a < T::kAlpha; ++a) {
        if (ih0 + a >= 0 && ih0 + a < s.in_h) in_row[a] |= bit;
        if (iw0 + a >= 0 && iw0 + a < s.in_w) in_col[a] |= bit;
      }
      for (int a = 0; a < T::kM; ++a) {
        if (oh0 + a < oh_count) out_row[a] |= bit;
        if (ow0 + a < ow_count) out_col[a] |= bit;
      }
    }
  }
};

// dst[l] = plane[index[l] + offset] on the lanes of `mask`, 0 elsewhere.
inline void gather_lanes(const float* plane, const std::int32_t* index, std::int32_t offset, std::uint32_t mask,
                         float* dst) {
#if defined(__AVX512F__)
  static_assert(kTileCols == 32, "two 16-lane gathers per row");
  const __m512i off = _mm512_set1_epi32(offset);
  for (int h = 0; h < 2; ++h) {
    const __mmask16 m = static_cast<__mmask16>(mask >> (16 * h));
    const __m512i idx = _mm512_add_epi32(_mm512_loadu_si512(index + 16 * h), off);
    _mm512_storeu_ps(dst + 16 * h, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, plane, 4));
  }
#else
  for (int l = 0; l < kTileCols; ++l) dst[l] = (mask >> l & 1u) ? plane[index[l] + offset] : 0.f;
#endif
}

// plane[index[l] + offset] = src[l] on the lanes of `mask`.
inline void scatter_lanes(float* plane, const std::int32_t* index, std::int32_t offset, std::uint32_t mask,
                          const float* src) {
#if defined(__AVX512F__)
  const __m512i off = _mm512_set1_epi32(offset);
  for (int h = 0; h < 2; ++h) {
    const __mmask16 m = static_cast<__mmask16>(mask >> (16 * h));
    if (!m) continue;
    const __m512i idx = _mm512_add_epi32(_mm512_loadu_si512(index + 16 * h), off);
    _mm512_mask_i32scatter_ps(plane, m, idx, _mm512_loadu_ps(src + 16 * h), 4);
  }
#else
  for (int l = 0; l < kTileCols; ++l)
    if (mask >> l & 1u) plane[index[l] + offset] = src[l];
#endif
}

// y_plane's outputs of the block's tiles: out[a][b][lane] is output (oh0 + a, ow0 + b) of the
// lane's tile. F(2,r) on AVX-512 interleaves the b = 0 and 1 registers, so each run of side-by-side
// tiles stores whole output-row spans (masked), instead of scattering element by element.
template <int M>
inline void store_tile_outputs(const TileLanes& tl, const float* out, float* y_plane, int ow_count) {
#if defined(__AVX512F__)
  if constexpr (M == 2) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    for (int a = 0; a < 2; ++a) {
      // row[f] for f in [0, 64): column f % 2 of the tile in lane f / 2.
      __m512 row[4];
      for (int h = 0; h < 2; ++h) {
        const __m512 b0 = _mm512_load_ps(out + (a * 2) * kTileCols + 16 * h);
        const __m512 b1 = _mm512_load_ps(out + (a * 2 + 1) * kTileCols + 16 * h);
        row[2 * h] = _mm512_permutex2var_ps(b0, lo, b1);
        row[2 * h + 1] = _mm512_permutex2var_ps(b0, hi, b1);
      }
      for (int r = 0; r < tl.run_count; ++r) {
        const TileLanes::Run& run = tl.runs[r];
        if (!(tl.out_row[a] >> run.lane & 1u)) continue;
        const int f0 = 2 * run.lane, f1 = f0 + run.columns;
        float* dst = y_plane + tl.out_index[run.lane] + a * ow_count - f0;  // + f: float f of `row`
        for (int v = f0 / 16; v * 16 < f1; ++v) {
          const int from = std::max(f0 - 16 * v, 0), to = std::min(f1 - 16 * v, 16);
          const __mmask16 mask = static_cast<__mmask16>(((1u << to) - 1u) & ~((1u << from) - 1u));
          _mm512_mask_storeu_ps(dst + 16 * v, mask, row[v]);
        }
      }
    }
    return;
  }
#endif
  for (int a = 0; a < M; ++a)
    for (int b = 0; b < M; ++b)
      scatter_lanes(y_plane, tl.out_index, a * ow_count + b, tl.out_row[a] & tl.out_col[b], out + (a * M + b) * kTileCols);
}

// out[i][j][lane] = sum_p sum_q left[i][p] in[p][q][lane] right[j][q]: Rows x Cols of out (a row of
// kTileCols lanes each, out_stride apart), A x A of in (in_stride apart). The loops over the constant
// matrices are unrolled, so zero coefficients cost nothing; explicit vectors, since the compiler's
// own vectorisation of such loops picks 256-bit registers on AVX-512 machines.
template <int Rows, int Cols, int A>
__attribute__((always_inline)) inline void transform_lanes(const double (&left)[kMaxAlpha][kMaxAlpha],
                                                           const double (&right)[kMaxAlpha][kMaxAlpha], const float* in,
                                                           std::int64_t in_stride, float* out, std::int64_t out_stride) {
  using simd::Isa;
  constexpr int kLanes = Isa::kLanes;
#pragma GCC unroll 4
  for (int r = 0; r < kTileCols / kLanes; ++r) {
    Isa::Reg half[A][Cols];  // in transformed on the right
#pragma GCC unroll 8
    for (int p = 0; p < A; ++p) {
      Isa::Reg row[A];
#pragma GCC unroll 8
      for (int q = 0; q < A; ++q) row[q] = Isa::load(in + (p * A + q) * in_stride + r * kLanes);
#pragma GCC unroll 8
      for (int j = 0; j < Cols; ++j) {
        Isa::Reg acc = Isa::zero();
#pragma GCC unroll 8
        for (int q = 0; q < A; ++q) {
          const float c = static_cast<float>(right[j][q]);
          if (c != 0.f) acc = Isa::fma(Isa::broadcast(&c), row[q], acc);
        }
        half[p][j] = acc;
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < Rows; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < Cols; ++j) {
        Isa::Reg acc = Isa::zero();
#pragma GCC unroll 8
        for (int p = 0; p < A; ++p) {
          const float c = static_cast<float>(left[i][p]);
          if (c != 0.f) acc = Isa::fma(Isa::broadcast(&c), half[p][j], acc);
        }
        Isa::store(out + (i * Cols + j) * out_stride + r * kLanes, acc);
      }
  }
}

// Tiles per block and the split of the output channels, for tasks of (block x channel group). A block
// holds up to kMaxBlockTiles column tiles while their V fits 1 MiB (L2), so each transformed weight
// panel, streamed from L3, serves several tiles (measured on NIN's layers: 2 MiB blocks are slower).
constexpr int kMaxBlockTiles = 4;
// Past this, a block's V (one column tile, so many input channels that it does not fit: the training data
// gradient of NIN's 3x3 1024->384 on 7x7, 2 MiB; its 5x5 256->96 and inference's F(4x4,3x3) of NIN's
// 256->384, 1.2 MiB) would be read again from L3 by every row panel; the products then run a*a matrix by a*a
// matrix instead (forward, xi_outer), each V[xi] swept by all of the task's U panels, and M holds all of the
// task's rows. The same products in the same order, so the same bits. Measured at 1 thread, batch 16: the 3x3
// data gradient 36-40 -> 28-30 ms, the F(4x4,3x3) forward 14.0-15.3 -> 12.3-13.5 ms, the 5x5 data gradient
// unchanged (bench/logs/i19k-winograd-xi-outer.out); a 512 KiB threshold also moved NIN's 3x3 forwards, no
// faster.
constexpr std::int64_t kVInL2Bytes = std::int64_t{1} << 20;
struct Split {
  int block_tiles;  // column tiles of 32 tiles per block: their V stays in L2
  int groups;       // of the row panels; each group transforms its block's input again
};

inline Split split_tasks(int alpha, int c_in, int panels, std::int64_t col_tiles, int threads) {
  const std::int64_t v_bytes = static_cast<std::int64_t>(alpha) * alpha * c_in * kTileCols * sizeof(float);
  const int by_cache = static_cast<int>(std::max<std::int64_t>(1, kVInL2Bytes / v_bytes));
  Split s{static_cast<int>(std::min<std::int64_t>({kMaxBlockTiles, by_cache, col_tiles})), 1};
  const std::int64_t want = 2 * static_cast<std::int64_t>(threads);
  if (threads <= 1 || ceil_div(col_tiles, s.block_tiles) >= want) return s;
  // Too few blocks for the threads: smaller blocks first, then groups of the row panels, since each
  // group transforms its block's input again. At 2 threads, batch 16, this took nin-fashion's F(4x4)
  // layers from 2 blocks x 2 groups (k11) and 1 block x 4 groups (k21) to 4 x 1 and 2 x 2: CPU time
  // 0.76-0.92x and 0.73-0.89x on the loaded VM (bench/logs/i19l-winograd-split.out). The same sums in
  // the same order, so the same bits.
  s.block_tiles = static_cast<int>(std::max<std::int64_t>(1, col_tiles / want));
  const std::int64_t blocks = ceil_div(col_tiles, s.block_tiles);
  if (blocks < want) s.groups = static_cast<int>(std::min<std::int64_t>(panels, ceil_div(want, blocks)));
  return s;
}

// A column tile of this many Winograd tiles or fewer fills only its first kHalfRegs registers of lanes.
constexpr int kHalfRegs = simd::kGemmRegsPerRow / 2;
constexpr int kHalfTileCols = kHalfRegs * simd::Isa::kLanes;

template <class T>
void forward(const Conv2dShape& s, const float* x, const float* packed_u, const float* bias, float* y, bool relu,
             const float* residual, int image_channels, bool half_tiles) {
  constexpr int kA = T::kAlpha, kXi = T::kPoints, kM = T::kM;
  const int c_in = s.in_channels, k_out = s.out_channels;
  const int tiles_h = ceil_div(s.out_h(), kM), tiles_w = ceil_div(s.out_w(), kM);
  const std::int64_t tiles = static_cast<std::int64_t>(s.batch) * tiles_h * tiles_w;
  const std::int64_t col_tiles = (tiles + kTileCols - 1) / kTileCols;
  const int panels = ceil_div(k_out, kTileRows);
  const std::int64_t macs = static_cast<std::int64_t>(kXi) * k_out * c_in * tiles;
  const int threads = threads_for(macs, gemm_detail::kParallelMinMacs);
  const Split split = split_tasks(kA, c_in, panels, col_tiles, threads);
  const std::int64_t blocks = (col_tiles + split.block_tiles - 1) / split.block_tiles;
  const std::int64_t in_plane = s.in_plane(), out_plane = s.out_plane();
  const std::size_t v_floats = static_cast<std::size_t>(split.block_tiles) * kXi * c_in * kTileCols;
  const bool xi_outer = v_floats * sizeof(float) > kVInL2Bytes;

  parallel_for_dynamic(blocks * split.groups, threads, [&](std::int64_t task) {
    const std::int64_t block = task / split.groups;
    const gemm_detail::Slice rows = gemm_detail::slice_of(panels, split.groups, static_cast<int>(task % split.groups));
    if (rows.begin >= rows.end) return;
    const std::int64_t q0 = block * split.block_tiles;
    const int nt = static_cast<int>(std::min<std::int64_t>(split.block_tiles, col_tiles - q0));
    float* v = thread_scratch(ScratchSlot::kGemmPackedB, v_floats);
    // M[t][xi][row][lane] for rows_held rows: one panel's at a time, or all of the task's (xi_outer).
    const int rows_held = xi_outer ? (rows.end - rows.begin) * kTileRows : kTileRows;
    float* mbuf = thread_scratch(ScratchSlot::kGemmPackedA, static_cast<std::size_t>(nt) * kXi * rows_held * kTileCols);
    TileLanes lanes[kMaxBlockTiles];
    alignas(64) float patch[kXi * kTileCols];
    // 1. V[t][xi][c][lane] for the block's tiles.
    for (int t = 0; t < nt; ++t) {
      TileLanes& tl = lanes[t];
      tl.set<T>(s, image_channels, tiles_h, tiles_w, tiles, (q0 + t) * kTileCols);
      float* vt = v + static_cast<std::size_t>(t) * kXi * c_in * kTileCols;
      for (int c = 0; c < c_in; ++c) {
        const float* plane = x + c * in_plane;
        for (int a = 0; a < kA; ++a)
          for (int b = 0; b < kA; ++b)
            gather_lanes(plane, tl.in_index, a * s.in_w + b, tl.in_row[a] & tl.in_col[b], patch + (a * kA + b) * kTileCols);
        transform_lanes<kA, kA, kA>(T::kMat.bt, T::kMat.bt, patch, kTileCols, vt + c * kTileCols,
                                    static_cast<std::int64_t>(c_in) * kTileCols);
      }
    }
    // 2. M = U V, a row panel's a*a products for each tile; 3. y = A^T M A, the output transform of a panel.
    auto product = [&](int p, int xi, const float* next) {
      const int panel_rows = std::min(kTileRows, k_out - p * kTileRows);
      const int held_row0 = xi_outer ? (p - rows.begin) * kTileRows : 0;
      const float* u = u_panel(packed_u, k_out, c_in, xi, p);
      for (int t = 0; t < nt; ++t) {
        gemm_detail::TileAccumulators acc;
        const float* vt = v + (static_cast<std::size_t>(t) * kXi + xi) * c_in * kTileCols;
        const float* prefetch = t + 1 == nt ? next : nullptr;
        // A column tile of at most kHalfTileCols tiles (the last of a call, or NIN's 7x7 planes at batch
        // 1: 16 tiles) multiplies its first register of lanes only; the rest of M's lanes are zeroed,
        // and no output is stored from them. The same sums in the same order: the same bits.
        const bool half = half_tiles && tiles - (q0 + t) * kTileCols <= kHalfTileCols;
        if (half) {
          gemm_detail::tile_product_rows<kHalfRegs>(panel_rows, c_in, u, vt, acc, prefetch);
#pragma GCC unroll 16
          for (int i = 0; i < kTileRows; ++i)
            for (int r = kHalfRegs; r < simd::kGemmRegsPerRow; ++r) acc.r[i][r] = simd::Isa::zero();
        } else {
          gemm_detail::tile_product_rows(panel_rows, c_in, u, vt, acc, prefetch);
        }
        float* dst = mbuf + ((static_cast<std::size_t>(t) * kXi + xi) * rows_held + held_row0) * kTileCols;
        // Only the panel's real rows: the output transform below reads no others.
#pragma GCC unroll 16
        for (int i = 0; i < panel_rows; ++i)
#pragma GCC unroll 4
          for (int r = 0; r < simd::kGemmRegsPerRow; ++r)
            simd::Isa::store(dst + i * kTileCols + r * simd::Isa::kLanes, acc.r[i][r]);
      }
    };
    auto finish_panel = [&](int p) {
      const int first_row = p * kTileRows, panel_rows = std::min(kTileRows, k_out - first_row);
      const int held_row0 = xi_outer ? (p - rows.begin) * kTileRows : 0;
      for (int t = 0; t < nt; ++t) {
        const TileLanes& tl = lanes[t];
        for (int i = 0; i < panel_rows; ++i) {
          const int k = first_row + i;
          const float* src = mbuf + (static_cast<std::size_t>(t) * kXi * rows_held + held_row0 + i) * kTileCols;
          alignas(64) float out[kM * kM * kTileCols];
          transform_lanes<kM, kM, kA>(T::kMat.at, T::kMat.at, src, static_cast<std::int64_t>(rows_held) * kTileCols, out, kTileCols);
          if (residual) {
            // The shortcut at each lane's outputs (0 outside the image, where nothing is stored).
            alignas(64) float r[kTileCols];
            for (int a = 0; a < kM; ++a)
              for (int b = 0; b < kM; ++b) {
                gather_lanes(residual + k * out_plane, tl.out_index, a * s.out_w() + b, tl.out_row[a] & tl.out_col[b], r);
                float* o = out + (a * kM + b) * kTileCols;
                for (int l = 0; l < kTileCols; ++l) o[l] += r[l];
              }
          }
          const float b = bias ? bias[k] : 0.f;
          const simd::Isa::Reg bv = simd::Isa::broadcast(&b), zero = simd::Isa::zero();
          for (int e = 0; e < kM * kM * kTileCols; e += simd::Isa::kLanes) {
            simd::Isa::Reg v = simd::Isa::add(simd::Isa::load(out + e), bv);
            if (relu) v = simd::Isa::max(v, zero);  // max(NaN, 0) is 0, as in the GEMM epilogue
            simd::Isa::store(out + e, v);
          }
          store_tile_outputs<kM>(tl, out, y + k * out_plane, s.out_w());
        }
      }
    };
    if (xi_outer) {
      // V is past L2: each of its a*a matrices is swept by every row panel of U while it stays in cache.
      for (int xi = 0; xi < kXi; ++xi)
        for (int p = rows.begin; p < rows.end; ++p)
          product(p, xi, p + 1 < rows.end ? u_panel(packed_u, k_out, c_in, xi, p + 1)
                                          : (xi + 1 < kXi ? u_panel(packed_u, k_out, c_in, xi + 1, rows.begin) : nullptr));
      for (int p = rows.begin; p < rows.end; ++p) finish_panel(p);
      return;
    }
    // V in L2: row panel by row panel, each panel's M then its outputs.
    for (int p = rows.begin; p < rows.end; ++p) {
      for (int xi = 0; xi < kXi; ++xi)
        product(p, xi, xi + 1 < kXi ? u_panel(packed_u, k_out, c_in, xi + 1, p)
                                    : (p + 1 < rows.end ? u_panel(packed_u, k_out, c_in, 0, p + 1) : nullptr));
      finish_panel(p);
    }
  });
}

// `flipped`: w holds the weights of the conv whose backward-data s is (conv.h backward_data_conv_shape:
// s.in_channels x s.out_channels x r x r), s's kernel (k, c) being w's (c, k) turned by 180 degrees.
// Row panel by row panel, so that each of the a*a matrices is written in order (one pass over them,
// not one per row: 4x less time for NIN's 3x3 384->1024 transposed).
// How many input channels ahead the flipped packing prefetches its weights (any of 2-8 would do: one
// channel's transforms take about 200 ns).
constexpr int kFlippedPrefetchAhead = 4;

template <class T>
void pack_weights(const Conv2dShape& s, const float* w, float* packed, bool flipped = false) {
  constexpr int kA = T::kAlpha, kR = T::kR;
  const int c_in = s.in_channels, k_out = s.out_channels;
  const int panels = ceil_div(k_out, kPackRows) * kPackRows / kTileRows;
  // U[xi][k][c] = (G g G^T)[xi]; written straight into its panel slot, zero in padding rows.
  parallel_for(panels, static_cast<std::int64_t>(panels) * kTileRows * c_in * kA * kA * kR, [&](std::int64_t pp) {
    const int panel = static_cast<int>(pp), rows = std::min(kTileRows, k_out - panel * kTileRows);
    for (int c = 0; c < c_in; ++c) {
      if (flipped && c + kFlippedPrefetchAhead < c_in) {
        // The panel's flipped weights at c are one run of rows * r * r floats, the next c's a whole row of
        // w (k_out * r * r floats) later: a stride across pages that the hardware prefetchers do not follow.
        const float* ahead = w + (static_cast<std::int64_t>(c + kFlippedPrefetchAhead) * k_out + panel * kTileRows) * kR * kR;
        for (int f = 0; f < rows * kR * kR; f += 16) __builtin_prefetch(ahead + f);
      }
      // The panel's rows side by side (the innermost index), so that each step is one vector operation.
      double g[kR * kR][kTileRows] = {}, half[kA][kR][kTileRows] = {}, u[kA * kA][kTileRows] = {};
      for (int row = 0; row < rows; ++row) {
        const int k = panel * kTileRows + row;
        if (flipped) {
          const float* from = w + (static_cast<std::int64_t>(c) * k_out + k) * kR * kR;
          for (int t = 0; t < kR * kR; ++t) g[t][row] = from[kR * kR - 1 - t];
        } else {
          const float* from = w + (static_cast<std::int64_t>(k) * c_in + c) * kR * kR;
          for (int t = 0; t < kR * kR; ++t) g[t][row] = from[t];
        }
      }
      for (int i = 0; i < kA; ++i)
        for (int b = 0; b < kR; ++b)
          for (int a = 0; a < kR; ++a)
            for (int row = 0; row < kTileRows; ++row) half[i][b][row] += T::kMat.g[i][a] * g[a * kR + b][row];
      for (int i = 0; i < kA; ++i)
        for (int j = 0; j < kA; ++j)
          for (int b = 0; b < kR; ++b)
            for (int row = 0; row < kTileRows; ++row) u[i * kA + j][row] += half[i][b][row] * T::kMat.g[j][b];
      for (int xi = 0; xi < kA * kA; ++xi) {
        float* to = u_panel(packed, k_out, c_in, xi, panel) + c * kTileRows;
        for (int row = 0; row < kTileRows; ++row) to[row] = static_cast<float>(u[xi][row]);
      }
    }
  });
}

// Largest batch whose element indices fit the 32-bit gather/scatter indices.
constexpr int max_batch_per_call(const Conv2dShape& s, int image_channels) {
  const std::int64_t per_image = std::max<std::int64_t>(static_cast<std::int64_t>(s.in_channels) * s.in_plane(),
                                                        static_cast<std::int64_t>(image_channels) * s.out_plane());
  return static_cast<int>(std::max<std::int64_t>(1, (std::int64_t{1} << 31) / (per_image + 64) - 1));
}

}  // namespace winograd_detail

// The Winograd variants the library has: output tile m x m for an r x r kernel.
enum class WinogradKind { F2x3, F4x3, F2x5 };

// Floats of packed transformed weights (pack_winograd_weights): a*a matrices of
// out_channels (rounded up to 12) x in_channels.
constexpr std::int64_t winograd_weights_size(WinogradKind kind, int out_channels, int in_channels) {
  const int a = kind == WinogradKind::F2x3 ? 4 : 6;
  return static_cast<std::int64_t>(a) * a * ((out_channels + kConvPackRowMultiple - 1) / kConvPackRowMultiple) *
         kConvPackRowMultiple * in_channels;
}

// Whether `kind` computes this conv: stride 1 and a square kernel of its size.
inline bool winograd_applies(WinogradKind kind, const Conv2dShape& s) {
  const int r = kind == WinogradKind::F2x5 ? 5 : 3;
  return s.kernel_h == r && s.kernel_w == r && s.stride_h == 1 && s.stride_w == 1;
}

// The Transform of a kind known when the generated code is compiled. A call that names its kind as a template
// argument (compiler/backends/cpu/render.ts) instantiates that variant alone; one that passes the kind at run time
// goes through with_winograd_kind's switch, which instantiates all three in every library that calls it.
template <WinogradKind K>
using WinogradTransform = std::conditional_t<K == WinogradKind::F2x3, winograd_detail::Transform<2, 3>,
                                             std::conditional_t<K == WinogradKind::F4x3, winograd_detail::Transform<4, 3>, winograd_detail::Transform<2, 5>>>;

// fn(std::integral_constant<WinogradKind, kind>{}): the run-time kind as a template argument.
template <class Fn>
inline void with_winograd_kind(WinogradKind kind, Fn&& fn) {
  switch (kind) {
    case WinogradKind::F2x3: fn(std::integral_constant<WinogradKind, WinogradKind::F2x3>{}); break;
    case WinogradKind::F4x3: fn(std::integral_constant<WinogradKind, WinogradKind::F4x3>{}); break;
    case WinogradKind::F2x5: fn(std::integral_constant<WinogradKind, WinogradKind::F2x5>{}); break;
  }
}

// Packs w (out_channels x in_channels x r x r) as U = G g G^T, in double, for conv2d_forward_winograd.
template <WinogradKind K>
inline void pack_winograd_weights(const Conv2dShape& shape, const float* w, float* packed) {
  winograd_detail::pack_weights<WinogradTransform<K>>(shape, w, packed);
}
inline void pack_winograd_weights(WinogradKind kind, const Conv2dShape& shape, const float* w, float* packed) {
  with_winograd_kind(kind, [&](auto k) { pack_winograd_weights<decltype(k)::value>(shape, w, packed); });
}

// The same for `shape` a backward-data conv (conv.h backward_data_conv_shape) and w the weights of the
// conv it is the backward-data of, flipped and transposed as they are packed.
template <WinogradKind K>
inline void pack_winograd_weights_flipped(const Conv2dShape& shape, const float* w, float* packed) {
  winograd_detail::pack_weights<WinogradTransform<K>>(shape, w, packed, true);
}
inline void pack_winograd_weights_flipped(WinogradKind kind, const Conv2dShape& shape, const float* w, float* packed) {
  with_winograd_kind(kind, [&](auto k) { pack_winograd_weights_flipped<decltype(k)::value>(shape, w, packed); });
}

// y = conv(x, W) + bias (+ residual), optional ReLU, with W packed by pack_winograd_weights, y placed
// as `o` says (im2col.h ConvOutput). Same contract as conv2d_forward_packed; winograd_applies(K, shape) must hold. Every output element is computed
// by one task in a fixed order, so the bits do not depend on the thread count. `half_tiles` false (the
// winogradHalfTiles ablation, compiler/ablations.ts): every column tile multiplies all kTileCols lanes.
template <WinogradKind K>
inline void conv2d_forward_winograd(const Conv2dShape& shape, const float* x, const float* packed_u, const float* bias, float* y,
                                    bool relu = false, const ConvOutput& o = {}, bool half_tiles = true) {
  if (shape.out_channels <= 0 || shape.batch <= 0 || shape.out_h() <= 0 || shape.out_w() <= 0) return;
  const int channels = o.channels_of(shape);
  const int step = winograd_detail::max_batch_per_call(shape, channels);
  for (int n0 = 0; n0 < shape.batch; n0 += step) {
    Conv2dShape part = shape;
    part.batch = std::min(step, shape.batch - n0);
    const float* xp = x + static_cast<std::int64_t>(n0) * shape.in_channels * shape.in_plane();
    const std::int64_t skip = (static_cast<std::int64_t>(n0) * channels + o.channel_offset) * shape.out_plane();
    const float* rp = o.residual ? o.residual + skip : nullptr;
    winograd_detail::forward<WinogradTransform<K>>(part, xp, packed_u, bias, y + skip, relu, rp, channels, half_tiles);
  }
}
inline void conv2d_forward_winograd(WinogradKind kind, const Conv2dShape& shape, const float* x, const float* packed_u,
                                    const float* bias, float* y, bool relu = false, const ConvOutput& o = {},
                                    bool half_tiles = true) {
  with_winograd_kind(kind, [&](auto k) { conv2d_forward_winograd<decltype(k)::value>(shape, x, packed_u, bias, y, relu, o, half_tiles); });
}

}  // namespace cpu
}  // namespace nincc
