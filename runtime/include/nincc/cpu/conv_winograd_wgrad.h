// Convolution weight gradient as Winograd F(m x m, r x r), the transpose of conv_winograd.h's forward:
// each tile's y = A^T [sum_c U_kc (.) V_c] A with U = G g G^T, so
//   dU_kc = sum over tiles of (A dy_k A^T) (.) V_c,   dw_kc = G^T dU_kc G,
// and per tile and channel pair the a*a products replace m*m*r*r multiply-adds, as in the forward
// (F(2,3): 2.25x fewer, F(2,5): 2.78x). Per chunk of tiles: V (x's patches, B^T d B) and D (dy's
// tiles, A dy A^T) for every channel and tile, then the a*a GEMMs dU^T[xi] += V[xi]^T D[xi], whose
// depth is the chunk's tiles; at the end G^T dU G for every (k, c).
// Chunks are summed in order and every GEMM sums in a fixed order, so dw's bits do not depend on the
// thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv_winograd.h"
#include "gemm.h"
#include "parallel.h"

namespace nincc {
namespace cpu {
namespace winograd_wgrad_detail {

using gemm_detail::ceil_div;
using gemm_detail::kTileCols;
using gemm_detail::kTileRows;
using winograd_detail::kMaxAlpha;
using winograd_detail::Matrices;

// Tiles per chunk, the GEMMs' depth: NIN's 5x5 96->256 chunk (V 0.9 MB, D 2.4 MB) stays near L2.
// Measured at 1 thread, batch 16, on NIN's three layers, 64 was the fastest of 32, 64, 128, 256 and
// 512 (5x5: 0.43-0.46 of the implicit GEMM's time against 0.55-0.57 at 256;
// bench/logs/cpu-train-wgrad-winograd-chunk.out), the longer dU updates costing less than V and D
// falling out of L2.
constexpr int kChunkTiles = 64;

// A (a x m) and G^T (r x a): the transposes of the forward's A^T and G, as transform_lanes' left
// and right matrices of the dy and the final transforms.
struct Transposes {
  double a[kMaxAlpha][kMaxAlpha];
  double gt[kMaxAlpha][kMaxAlpha];
};

constexpr Transposes transposes_of(const Matrices& m) {
  Transposes t{};
  for (int i = 0; i < kMaxAlpha; ++i)
    for (int j = 0; j < kMaxAlpha; ++j) {
      t.a[i][j] = m.at[j][i];
      t.gt[i][j] = m.g[j][i];
    }
  return t;
}

// lanes[l] = l * plane: the gather indices of kTileCols consecutive channels' planes.
struct ChannelLanes {
  std::int32_t index[kTileCols];
  explicit ChannelLanes(std::int64_t plane) {
    for (int l = 0; l < kTileCols; ++l) index[l] = static_cast<std::int32_t>(l * plane);
  }
};

// The channels [c0, c0 + 32) of channels (lanes past the last one are off).
inline std::uint32_t channel_mask(int c0, int channels) {
  const int n = std::min(kTileCols, channels - c0);
  return n >= 32 ? ~0u : (1u << n) - 1u;
}

// dy is read where `place` says (ConvGradientPlace): its own tensor, or its channels of a concat's gradient.
template <class T>
void backward_weights(const Conv2dShape& s, const float* x, const float* dy, float* dw, const ConvGradientPlace& place) {
  constexpr int kXi = T::kPoints, kM = T::kM, kR = T::kR;
  static constexpr Transposes kT = transposes_of(T::kMat);
  const int c_in = s.in_channels, k_out = s.out_channels;
  const int tiles_h = ceil_div(s.out_h(), kM), tiles_w = ceil_div(s.out_w(), kM);
  const std::int64_t tiles = static_cast<std::int64_t>(s.batch) * tiles_h * tiles_w;
  if (tiles <= 0) {
    std::fill(dw, dw + static_cast<std::int64_t>(k_out) * c_in * kR * kR, 0.f);
    return;
  }
  const std::int64_t chunk = std::min<std::int64_t>(kChunkTiles, tiles);
  // V's rows and D's panels are whole lane blocks of channels (the lanes past the last channel are
  // zero); dU^T's rows are whole row panels of input channels (zero past the last one), so that every
  // micro-kernel tile is a full one.
  const int c_blocks = ceil_div(c_in, kTileCols), k_blocks = ceil_div(k_out, kTileCols), c_panels = ceil_div(c_in, kTileRows);
  const std::int64_t c_pad = static_cast<std::int64_t>(c_blocks) * kTileCols, k_pad = static_cast<std::int64_t>(k_blocks) * kTileCols;
  const std::int64_t c_rows = static_cast<std::int64_t>(c_panels) * kTileRows;
  const std::int64_t v_floats = kXi * chunk * c_pad, d_floats = kXi * chunk * k_pad;
  // The calling thread's scratch, shared with the team: the tasks below only use their own GEMM slots.
  float* const v = thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(v_floats + d_floats));
  float* const d = v + v_floats;
  float* const du = thread_scratch(ScratchSlot::kConvPackedWeights, static_cast<std::size_t>(kXi * c_rows * k_pad));
  const int threads = threads_for(static_cast<std::int64_t>(kXi) * k_out * c_in * tiles, gemm_detail::kParallelMinMacs);
  const std::int64_t in_plane = s.in_plane(), out_plane = s.out_plane();
  const int dy_channels = place.total > 0 ? place.total : k_out;
  dy += static_cast<std::int64_t>(place.offset) * out_plane;
  const ChannelLanes in_lanes(in_plane), out_lanes(out_plane);
  const std::int64_t per_image = static_cast<std::int64_t>(tiles_h) * tiles_w;
  constexpr int kTilesPerItem = 32;

  for (std::int64_t t0 = 0; t0 < tiles; t0 += chunk) {
    const int nt = static_cast<int>(std::min<std::int64_t>(chunk, tiles - t0));
    const int tile_groups = ceil_div(nt, kTilesPerItem);
    // 1. V[xi][tile][c] = B^T d_c B of x's patches, and D = A dy_k A^T of dy's tiles (outputs past the
    //    image are not outputs: their dy is zero) as the micro-kernel's column panels,
    //    D[xi][k block][tile][k lane]: 32 channels to a vector, so neither needs a transpose.
    parallel_for_dynamic(static_cast<std::int64_t>(c_blocks + k_blocks) * tile_groups, threads, [&](std::int64_t item) {
      const int block = static_cast<int>(item / tile_groups), group = static_cast<int>(item % tile_groups);
      alignas(64) float patch[T::kPoints * kTileCols];
      const bool is_input = block < c_blocks;
      const int c0 = (is_input ? block : block - c_blocks) * kTileCols;
      const std::uint32_t lanes = channel_mask(c0, is_input ? c_in : k_out);
      for (int i = group * kTilesPerItem; i < std::min(nt, (group + 1) * kTilesPerItem); ++i) {
        const std::int64_t t = t0 + i;
        const std::int64_t n = t / per_image;
        const int rest = static_cast<int>(t % per_image);
        const int oh0 = rest / tiles_w * T::kM, ow0 = rest % tiles_w * T::kM;
        if (is_input) {
          const int ih0 = oh0 - s.pad_h, iw0 = ow0 - s.pad_w;
          const std::int64_t base = (n * c_in + c0) * in_plane;
          for (int a = 0; a < T::kAlpha; ++a)
            for (int b = 0; b < T::kAlpha; ++b) {
              const bool inside = ih0 + a >= 0 && ih0 + a < s.in_h && iw0 + b >= 0 && iw0 + b < s.in_w;
              winograd_detail::gather_lanes(x + base, in_lanes.index, inside ? (ih0 + a) * s.in_w + iw0 + b : 0,
                                            inside ? lanes : 0u, patch + (a * T::kAlpha + b) * kTileCols);
            }
          winograd_detail::transform_lanes<T::kAlpha, T::kAlpha, T::kAlpha>(T::kMat.bt, T::kMat.bt, patch, kTileCols,
                                                                            v + i * c_pad + c0, chunk * c_pad);
        } else {
          const std::int64_t base = (n * dy_channels + c0) * out_plane;
          for (int a = 0; a < T::kM; ++a)
            for (int b = 0; b < T::kM; ++b) {
              const bool inside = oh0 + a < s.out_h() && ow0 + b < s.out_w();
              winograd_detail::gather_lanes(dy + base, out_lanes.index, inside ? (oh0 + a) * s.out_w() + ow0 + b : 0,
                                            inside ? lanes : 0u, patch + (a * T::kM + b) * kTileCols);
            }
          winograd_detail::transform_lanes<T::kAlpha, T::kAlpha, T::kM>(kT.a, kT.a, patch, kTileCols,
                                                                        d + (c0 * chunk + i * kTileCols), chunk * k_pad);
        }
      }
    });
    // 2. dU^T[xi] (c_rows x k_pad) += V[xi]^T D[xi] over the chunk's tiles: V's row panels packed (a
    //    copy of 12 floats per tile), D's column panels read as they are.
    parallel_for_dynamic(kXi, threads, [&](std::int64_t xi) {
      float* packed = thread_scratch(ScratchSlot::kGemmPackedA, static_cast<std::size_t>(kTileRows) * nt);
      const gemm_detail::MatrixView vt{v + xi * chunk * c_pad, 1, c_pad};
      const gemm_detail::TileOutput out{t0 > 0, false, nullptr, nullptr, false};
      for (int p = 0; p < c_panels; ++p) {
        gemm_detail::pack_a_panel(vt, p * kTileRows, std::min(kTileRows, c_in - p * kTileRows), 0, nt, packed);
        for (int q = 0; q < k_blocks; ++q)
          gemm_detail::micro_kernel(nt, packed, d + xi * chunk * k_pad + q * chunk * kTileCols,
                                    du + (xi * c_rows + p * kTileRows) * k_pad + q * kTileCols, k_pad, kTileRows, kTileCols, out);
      }
    });
  }
  // 3. dw[k][c] = G^T dU^T[.][c][k] G, 32 output channels at a time.
  parallel_for(c_in, static_cast<std::int64_t>(kXi) * c_in * k_pad, [&](std::int64_t c) {
    alignas(64) float out[T::kR * T::kR * kTileCols];
    for (int k0 = 0; k0 < k_out; k0 += kTileCols) {
      winograd_detail::transform_lanes<T::kR, T::kR, T::kAlpha>(kT.gt, kT.gt, du + c * k_pad + k0, c_rows * k_pad, out, kTileCols);
      const int lanes_used = std::min(kTileCols, k_out - k0);
      for (int l = 0; l < lanes_used; ++l) {
        float* to = dw + ((static_cast<std::int64_t>(k0) + l) * c_in + c) * T::kR * T::kR;
        for (int e = 0; e < T::kR * T::kR; ++e) to[e] = out[e * kTileCols + l];
      }
    }
  });
}

}  // namespace winograd_wgrad_detail

// dw = the weight gradient of a stride-1 r x r conv (winograd_applies(kind, shape)), given its input x
// and dy (read where `place` says: its own tensor, or its channels of a concat's gradient, in place); overwrites
// dw (out_channels x in_channels x r x r). Scratch: V, D and dU in the calling thread's column and packed-weight slots.
// The kind as a template argument instantiates that variant alone (conv_winograd.h WinogradTransform).
template <WinogradKind K>
inline void conv2d_backward_weights_winograd(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                             const ConvGradientPlace& place = {}) {
  winograd_wgrad_detail::backward_weights<WinogradTransform<K>>(shape, x, dy, dw, place);
}
inline void conv2d_backward_weights_winograd(WinogradKind kind, const Conv2dShape& shape, const float* x, const float* dy,
                                             float* dw, const ConvGradientPlace& place = {}) {
  with_winograd_kind(kind, [&](auto k) { conv2d_backward_weights_winograd<decltype(k)::value>(shape, x, dy, dw, place); });
}

}  // namespace cpu
}  // namespace nincc
