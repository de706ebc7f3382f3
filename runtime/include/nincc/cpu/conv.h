// 2-D convolution (Torch7 SpatialConvolution, NCHW, cross-correlation, zero padding) forward,
// backward-data and backward-weights, as im2col + GEMM; 1x1 stride-1 unpadded convs skip im2col.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "gemm.h"
#include "im2col.h"
#include "parallel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {
namespace conv_detail {

// Runs per_image(n) for every image of the batch. With enough images each thread takes whole
// images and the GEMMs inside run serially (no synchronisation per GEMM); with a batch too small
// to share out evenly the images go one by one and each GEMM spreads over the team instead.
// Both give the same bits: every output element is computed in the same order either way.
template <class PerImage>
void for_each_image(int batch, std::int64_t macs_per_image, PerImage per_image) {
  const int threads = threads_for(macs_per_image * batch, gemm_detail::kParallelMinMacs);
  const bool by_image = threads > 1 && (batch % threads == 0 || batch >= 2 * threads);
  parallel_for_dynamic(batch, by_image ? threads : 1, per_image);
}

}  // namespace conv_detail

// y[n][k] = bias[k] + sum_{c,r,s} w[k][c][r][s] * x[n][c][oh*sh-ph+r][ow*sw-pw+s], optionally
// followed by ReLU (fused into the GEMM's store). `bias` may be null (Torch's noBias()).
// x: batch x in_channels x in_h x in_w; w: out_channels x in_channels x kernel_h x kernel_w;
// y: batch x out_channels x out_h x out_w (overwritten).
// Scratch: one im2col buffer (patch_size x out_plane floats) per thread, thread_local.
inline void conv2d_forward(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                           float* y, bool relu = false) {
  const int depth = shape.patch_size();
  const int pixels = static_cast<int>(shape.out_plane());
  const GemmEpilogue epilogue{bias, nullptr, relu};
  conv_detail::for_each_image(
      shape.batch, static_cast<std::int64_t>(shape.out_channels) * pixels * depth, [&](std::int64_t n) {
        const float* image = x + n * shape.in_channels * shape.in_plane();
        const float* columns = image;
        if (!shape.is_pointwise()) {
          float* buffer = thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(depth) * pixels);
          im2col(shape, image, buffer);
          columns = buffer;
        }
        gemm(Transpose::kNo, Transpose::kNo, shape.out_channels, pixels, depth, w, depth, columns, pixels,
             y + n * shape.out_channels * shape.out_plane(), pixels, false, epilogue);
      });
}

// dx = the gradient of the loss with respect to x, given dy (same layout as y). Overwrites dx.
// Per image: columns = W^T * dy (patch_size x out_plane), then col2im folds them into dx.
inline void conv2d_backward_data(const Conv2dShape& shape, const float* dy, const float* w, float* dx) {
  const int depth = shape.patch_size();
  const int pixels = static_cast<int>(shape.out_plane());
  conv_detail::for_each_image(
      shape.batch, static_cast<std::int64_t>(shape.out_channels) * pixels * depth, [&](std::int64_t n) {
        const float* dy_image = dy + n * shape.out_channels * shape.out_plane();
        float* dx_image = dx + n * shape.in_channels * shape.in_plane();
        if (shape.is_pointwise()) {
          gemm(Transpose::kYes, Transpose::kNo, depth, pixels, shape.out_channels, w, depth, dy_image, pixels,
               dx_image, pixels);
          return;
        }
        float* columns = thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(depth) * pixels);
        gemm(Transpose::kYes, Transpose::kNo, depth, pixels, shape.out_channels, w, depth, dy_image, pixels,
             columns, pixels);
        col2im(shape, columns, dx_image);
      });
}

// dw[k][c][r][s] = sum over the batch of dy[n][k] . unfolded x[n]; db[k] = sum of dy[n][k][.].
// Both are overwritten (not accumulated), and `db` may be null.
// Parallel over slices of dw's columns (patch rows): each slice unfolds only its own rows of each
// image and runs its GEMMs serially, image after image, accumulating in batch order. So there is
// one parallel region for the whole batch, no unfolding is repeated, and every dw element sums
// in the same order for any thread count. db sums in double in a fixed order (reduce.h).
inline void conv2d_backward_weights(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                    float* db) {
  const int depth = shape.patch_size();
  const int pixels = static_cast<int>(shape.out_plane());
  const std::int64_t dy_image_size = shape.out_channels * shape.out_plane();
  if (shape.batch == 0) std::memset(dw, 0, sizeof(float) * shape.out_channels * depth);
  const std::int64_t macs = static_cast<std::int64_t>(shape.out_channels) * depth * pixels * shape.batch;
  const int threads = threads_for(macs, gemm_detail::kParallelMinMacs);
  // Whole GEMM tiles per slice where there are enough of them, a few slices per thread.
  const int tile = gemm_detail::kTileCols;
  const int tiles = gemm_detail::ceil_div(depth, tile);
  const int slices = threads <= 1 ? 1 : std::min(std::max(tiles, threads), threads * gemm_detail::kSlicesPerThread);
  parallel_for_dynamic(slices, threads, [&](std::int64_t t) {
    const gemm_detail::Slice tile_range = gemm_detail::slice_of(tiles, slices, static_cast<int>(t));
    gemm_detail::Slice rows{tile_range.begin * tile, std::min(depth, tile_range.end * tile)};
    if (tiles < slices) rows = gemm_detail::slice_of(depth, slices, static_cast<int>(t));  // narrow dw
    if (rows.begin >= rows.end) return;
    const int width = rows.end - rows.begin;
    float* unfolded = shape.is_pointwise()
                          ? nullptr
                          : thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(width) * pixels);
    for (int n = 0; n < shape.batch; ++n) {
      const float* image = x + n * shape.in_channels * shape.in_plane();
      const float* columns = image + static_cast<std::int64_t>(rows.begin) * pixels;  // pointwise: x's own rows
      if (unfolded) {
        im2col_rows(shape, image, rows.begin, rows.end, unfolded);
        columns = unfolded;
      }
      gemm_serial(Transpose::kNo, Transpose::kYes, shape.out_channels, width, pixels, dy + n * dy_image_size, pixels,
                  columns, pixels, dw + rows.begin, depth, /*accumulate=*/n > 0);
    }
  });
  if (db == nullptr) return;
  parallel_for(shape.out_channels, dy_image_size * shape.batch, [&](std::int64_t k) {
    double sum = 0.0;
    for (int n = 0; n < shape.batch; ++n)
      sum += sum_of(dy + n * dy_image_size + k * shape.out_plane(), shape.out_plane());
    db[k] = static_cast<float>(sum);
  });
}

}  // namespace cpu
}  // namespace nincc
