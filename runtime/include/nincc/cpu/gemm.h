// Single-precision GEMM for the convolutions and linear layers:
//   C[m x n] = op(A)[m x k] * op(B)[k x n]  (+ C when accumulating), then optional bias and ReLU.
// Row-major storage; op(X) is X or X^T. Packed panels, cache blocking, OpenMP over slices of C.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gemm_kernel.h"
#include "parallel.h"

namespace nincc {
namespace cpu {

enum class Transpose { kNo, kYes };

// Applied to every element of C once its dot product is complete.
struct GemmEpilogue {
  const float* row_bias = nullptr;  // m entries, added to row i (conv: output channel bias)
  const float* col_bias = nullptr;  // n entries, added to column j (linear: output feature bias)
  bool relu = false;                // then max(0, .)
};

namespace gemm_detail {

// Cache blocking, in elements (BLIS's loop order). A depth block of one B panel
// (kDepthBlock x kTileCols) plus one A panel stays in L1 across a row block (simd.h sizes it per
// instruction set); a row block of packed A (kRowBlock x kDepthBlock, <= 240 KiB) stays in L2
// while the column panels stream past; the packed column block of B (kDepthBlock x kColBlock,
// <= 2 MiB) comes from L2/L3. Other sizes tried (depth 192-512, rows 120-480, columns 2048-4096)
// were within the timing noise of the shared 2-core AVX-512 VM this was tuned on.
constexpr int kDepthBlock = simd::kGemmDepthBlock;
constexpr int kRowBlock = 240 / kTileRows * kTileRows;
constexpr int kColBlock = 2048;
// Below this many multiply-adds the team wake-up costs more than it saves.
constexpr std::int64_t kParallelMinMacs = 1 << 20;
// How a parallel GEMM cuts C (see gemm()).
constexpr int kSlicesPerThread = 4;
constexpr int kMinSliceTiles = 4;

constexpr int ceil_div(std::int64_t a, std::int64_t b) { return static_cast<int>((a + b - 1) / b); }

// A block size of at most max_block, a multiple of `unit`, that cuts `total` into nearly equal
// blocks: 256 rows go as 2 x 132, not 240 + 16 (a block of mostly empty edge tiles).
inline int balanced_block(int total, int max_block, int unit) {
  const int blocks = ceil_div(total, max_block);
  return std::min(max_block, ceil_div(ceil_div(total, blocks), unit) * unit);
}

// k == 0: the product is empty, C is 0 (or unchanged when accumulating) plus the epilogue.
inline void gemm_empty_depth(int m, int n, float* c, std::int64_t ldc, bool accumulate,
                             const GemmEpilogue& epilogue) {
  TileOutput out{accumulate, true, epilogue.row_bias, epilogue.col_bias, epilogue.relu};
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      float v = accumulate ? c[i * ldc + j] : 0.f;
      c[i * ldc + j] = finish_scalar(v, i, j, out);
    }
}

// The whole blocked GEMM on the calling thread, with its own packing buffers. Every element of
// C is summed in the same order (depth blocks in order, each in order) however C was sliced.
inline void gemm_on_this_thread(const MatrixView& a, const MatrixView& b, int m, int n, int k, float* c,
                                std::int64_t ldc, bool accumulate, const GemmEpilogue& epilogue) {
  const int depth_block = std::min(k, kDepthBlock);
  const int row_block = balanced_block(m, kRowBlock, kTileRows);
  const int col_block = balanced_block(n, kColBlock, kTileCols);
  float* packed_a = thread_scratch(ScratchSlot::kGemmPackedA, static_cast<std::size_t>(row_block) * depth_block);
  float* packed_b = thread_scratch(ScratchSlot::kGemmPackedB, static_cast<std::size_t>(col_block) * depth_block);
  for (int j0 = 0; j0 < n; j0 += col_block) {
    const int cols = std::min(col_block, n - j0);
    for (int k0 = 0; k0 < k; k0 += kDepthBlock) {
      const int depth = std::min(kDepthBlock, k - k0);
      for (int q = 0; q * kTileCols < cols; ++q)
        pack_b_panel(b, k0, depth, j0 + q * kTileCols, std::min(kTileCols, cols - q * kTileCols),
                     packed_b + static_cast<std::size_t>(q) * kTileCols * depth);
      for (int i0 = 0; i0 < m; i0 += row_block) {
        const int rows = std::min(row_block, m - i0);
        for (int p = 0; p * kTileRows < rows; ++p)
          pack_a_panel(a, i0 + p * kTileRows, std::min(kTileRows, rows - p * kTileRows), k0, depth,
                       packed_a + static_cast<std::size_t>(p) * kTileRows * depth);
        for (int q = 0; q * kTileCols < cols; ++q) {
          const int col = j0 + q * kTileCols;
          for (int p = 0; p * kTileRows < rows; ++p) {
            const int row = i0 + p * kTileRows;
            const TileOutput out{accumulate || k0 > 0, k0 + depth == k,
                                 epilogue.row_bias ? epilogue.row_bias + row : nullptr,
                                 epilogue.col_bias ? epilogue.col_bias + col : nullptr, epilogue.relu};
            micro_kernel(depth, packed_a + static_cast<std::size_t>(p) * kTileRows * depth,
                         packed_b + static_cast<std::size_t>(q) * kTileCols * depth, c + row * ldc + col, ldc,
                         std::min(kTileRows, m - row), std::min(kTileCols, n - col), out);
          }
        }
      }
    }
  }
}

// The rows [begin, end) of slice `index` when `count` units are cut into `slices` nearly equal runs.
struct Slice {
  int begin, end;
};
inline Slice slice_of(int count, int slices, int index) {
  return {static_cast<int>(static_cast<std::int64_t>(count) * index / slices),
          static_cast<int>(static_cast<std::int64_t>(count) * (index + 1) / slices)};
}

}  // namespace gemm_detail

// C = op(A) * op(B) (+ C if `accumulate`), then the epilogue. Leading dimensions are the row
// strides of the matrices as stored: A is m x k (lda >= k) or, transposed, k x m (lda >= m); B is
// k x n (ldb >= n) or n x k (ldb >= k); C is m x n (ldc >= n). C must not overlap A or B.
//
// Parallel: C is cut into slices of whole micro-tiles, by columns when it is wide enough and by
// rows otherwise, a few per thread, handed out dynamically; each slice is a whole blocked GEMM
// with its own packed panels. There is no barrier inside (only the join at the end), so a thread
// the OS deschedules on a shared machine stalls one slice, not every depth block of the GEMM;
// the price is that each slice packs the operand the slices share (A for column slices).
// Determinism: every element of C is summed in the same order whatever the thread count, so
// results are bitwise reproducible, even across thread counts. Runs serially when called inside
// a parallel region. Scratch: the packed panels live in each thread's scratch buffers (parallel.h).
inline void gemm(Transpose trans_a, Transpose trans_b, int m, int n, int k, const float* a,
                 std::int64_t lda, const float* b, std::int64_t ldb, float* c, std::int64_t ldc,
                 bool accumulate = false, const GemmEpilogue& epilogue = {}) {
  using namespace gemm_detail;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return gemm_empty_depth(m, n, c, ldc, accumulate, epilogue);

  const MatrixView av = trans_a == Transpose::kNo ? MatrixView{a, lda, 1} : MatrixView{a, 1, lda};
  const MatrixView bv = trans_b == Transpose::kNo ? MatrixView{b, ldb, 1} : MatrixView{b, 1, ldb};
  const int row_tiles = ceil_div(m, kTileRows), col_tiles = ceil_div(n, kTileCols);
  const int threads = std::min(threads_for(static_cast<std::int64_t>(m) * n * k, kParallelMinMacs),
                               std::max(row_tiles, col_tiles));
  if (threads <= 1) return gemm_on_this_thread(av, bv, m, n, k, c, ldc, accumulate, epilogue);

  // Column slices when there are enough columns (A is then repacked per slice, cheap next to the
  // product), else row slices; both cut on tile boundaries so no slice writes another's tile.
  // Up to kSlicesPerThread slices per thread, each at least kMinSliceTiles tiles wide.
  const bool by_columns = col_tiles >= kMinSliceTiles * threads || col_tiles >= row_tiles;
  const int tiles = by_columns ? col_tiles : row_tiles;
  const int slices = std::max(threads, std::min(threads * kSlicesPerThread, tiles / kMinSliceTiles));
  parallel_for_dynamic(slices, threads, [&](std::int64_t t) {
    if (by_columns) {
      const Slice s = slice_of(col_tiles, slices, static_cast<int>(t));
      const int j0 = s.begin * kTileCols, j1 = std::min(n, s.end * kTileCols);
      if (j0 >= j1) return;
      GemmEpilogue part = epilogue;
      if (part.col_bias) part.col_bias += j0;
      gemm_on_this_thread(av, MatrixView{bv.at(0, j0), bv.row_stride, bv.col_stride}, m, j1 - j0, k, c + j0, ldc,
                          accumulate, part);
    } else {
      const Slice s = slice_of(row_tiles, slices, static_cast<int>(t));
      const int i0 = s.begin * kTileRows, i1 = std::min(m, s.end * kTileRows);
      if (i0 >= i1) return;
      GemmEpilogue part = epilogue;
      if (part.row_bias) part.row_bias += i0;
      gemm_on_this_thread(MatrixView{av.at(i0, 0), av.row_stride, av.col_stride}, bv, i1 - i0, n, k, c + i0 * ldc,
                          ldc, accumulate, part);
    }
  });
}

// gemm() on the calling thread only, for kernels that run their own parallel loop around it.
inline void gemm_serial(Transpose trans_a, Transpose trans_b, int m, int n, int k, const float* a, std::int64_t lda,
                        const float* b, std::int64_t ldb, float* c, std::int64_t ldc, bool accumulate = false,
                        const GemmEpilogue& epilogue = {}) {
  using namespace gemm_detail;
  if (m <= 0 || n <= 0) return;
  if (k <= 0) return gemm_empty_depth(m, n, c, ldc, accumulate, epilogue);
  const MatrixView av = trans_a == Transpose::kNo ? MatrixView{a, lda, 1} : MatrixView{a, 1, lda};
  const MatrixView bv = trans_b == Transpose::kNo ? MatrixView{b, ldb, 1} : MatrixView{b, 1, ldb};
  gemm_on_this_thread(av, bv, m, n, k, c, ldc, accumulate, epilogue);
}

// The instruction set the micro-kernel was compiled for ("avx512", "avx2" or "portable").
inline const char* gemm_isa_name() { return simd::Isa::kName; }

}  // namespace cpu
}  // namespace nincc
