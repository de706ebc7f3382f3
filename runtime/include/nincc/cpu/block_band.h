// An inference block (a k×k conv, two 1x1 convs, a max pool or none; each conv with its folded BN and ReLU) as one region in
// bands of output rows (issue #19; compiler/schedule/cpu-block-bands.ts chooses it). Below as many images as threads,
// each thread takes a band of the pool's output rows of an image and runs the whole block on it: the conv rows its
// pool windows read (the one or two rows a window shares with the next band computed by both), from the input rows
// those read. So the block's activations stay in the core that made them, where layer by layer each kernel splits
// its work its own way and about half of them cross between the cores at every boundary (bench/RESULTS.md i19J).
// From as many images as threads up, the four layers run one after the other on the whole batch, their middle
// activations in the calling thread's scratch: the kernels and bits of the four separate calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "im2col.h"
#include "parallel.h"
#include "pool.h"

namespace nincc {
namespace cpu {

namespace block_band_detail {

// Rows [begin, end) of a plane.
struct Rows {
  int begin, end;
  constexpr int count() const { return end - begin; }
};

// The input rows (padding included: they may lie outside [0, in)) that output rows [out.begin, out.end) of a window
// (kernel, stride, pad) read.
constexpr Rows rows_read(Rows out, int kernel, int stride, int pad) {
  return {out.begin * stride - pad, (out.end - 1) * stride - pad + kernel};
}
constexpr Rows clip(Rows r, int size) { return {std::max(r.begin, 0), std::min(r.end, size)}; }
// The rows widened to whole tiles of `tile` rows from row 0 (Winograd's output tiles), then clipped to the plane.
constexpr Rows whole_tiles(Rows r, int tile, int size) {
  const int begin = r.begin < 0 ? 0 : r.begin / tile * tile;
  return clip({begin, (r.end + tile - 1) / tile * tile}, size);
}

// Band b of `bands` of `rows` output rows: an even share, the first bands the longer (their windows reach into the
// top padding, so they read fewer conv rows: nin-fashion's 7 pool rows on 14 as 4 + 3 compute 8 + 8 conv rows, 3 + 4
// would compute 6 + 10).
constexpr int band_begin(int rows, int bands, int b) { return static_cast<int>((static_cast<std::int64_t>(rows) * b + bands - 1) / bands); }
constexpr Rows band(int rows, int bands, int b) { return {band_begin(rows, bands, b), band_begin(rows, bands, b + 1)}; }

// Copies `rows` (which may reach past [0, h)) of each of c planes of h × w into dst, c planes of rows.count() × w:
// rows outside the plane are `zero` ? zeros (a conv's padding) : copies of the nearest plane row (a max pool's
// padding: a window holds a real row beside them, and the max of a repeated value is that value).
inline void copy_rows(const float* src, int c, int h, int w, Rows rows, bool zero, float* dst) {
  const std::int64_t row = w, plane = static_cast<std::int64_t>(h) * w, out_plane = static_cast<std::int64_t>(rows.count()) * w;
  for (int i = 0; i < c; ++i)
    for (int r = rows.begin; r < rows.end; ++r) {
      float* to = dst + i * out_plane + (r - rows.begin) * row;
      if (zero && (r < 0 || r >= h)) std::fill(to, to + row, 0.f);
      else std::memcpy(to, src + i * plane + std::clamp(r, 0, h - 1) * row, sizeof(float) * row);
    }
}

// A 1x1 window of stride 1, unpadded: the block has no pool (its last, NIN's), and y is the pair's output.
constexpr bool is_identity(const Pool2dShape& s) {
  return s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_h == 0 && s.pad_w == 0;
}

}  // namespace block_band_detail

// y = maxpool(pair(conv(x))): `conv` the k×k (C -> K, its output K × P × Q; BN folded, ReLU), `pair` the two 1x1s
// (K -> K each, the same), `pool` over K × P × Q (floor windows, pad < kernel; a 1x1 window of stride 1: none, y the
// pair's output, `pool` never called). Called as conv(shape, x, y) with a
// shape of the conv's but for its batch and input rows, pair(shape, x, middle, y) with the first 1x1's shape (middle:
// room for its output, should the pair need it) and pool(shape, x, y); each runs its kernels (serially when called
// from a band: parallel.h, 1 thread inside a pool task). `row_tile`: the rows of the conv's output tiles at batch 1
// (Winograd's 2 or 4, else 1): a band computes whole tiles of the image's grid from the same input rows, so each of
// its values has the bits of the whole image's.
template <class Conv, class Pair, class Pool>
inline void block_band_forward(const Conv2dShape& conv_shape, const Pool2dShape& pool_shape, int row_tile, const float* x, float* y,
                               Conv&& conv, Pair&& pair, Pool&& pool) {
  using namespace block_band_detail;
  const int threads = max_threads(), images = conv_shape.batch, k = conv_shape.out_channels;
  const int p = conv_shape.out_h(), q = conv_shape.out_w(), out_rows = pool_shape.out_h(), out_w = pool_shape.out_w();
  const auto pointwise = [&](int n, int rows) { return Conv2dShape{n, k, rows, q, k, 1, 1, 1, 1, 0, 0}; };
  if (images >= threads) {
    // The four calls on the whole batch, each splitting its own work (or serial inside a batch split's slice).
    const std::size_t middle = static_cast<std::size_t>(images) * k * p * q;
    float* a = thread_scratch(ScratchSlot::kBlockBandA, middle);
    float* b = thread_scratch(ScratchSlot::kBlockBandB, middle);
    float* c = thread_scratch(ScratchSlot::kBlockBandC, middle);
    conv(conv_shape, x, a);
    if (is_identity(pool_shape)) return pair(pointwise(images, p), a, b, y);
    pair(pointwise(images, p), a, b, c);
    pool(pool_shape, c, y);
    return;
  }
  const int bands = std::min(out_rows, (threads + images - 1) / images);
  const std::int64_t in_image = static_cast<std::int64_t>(conv_shape.in_channels) * conv_shape.in_plane();
  const std::int64_t out_plane = pool_shape.out_plane();
  parallel_for_dynamic(static_cast<std::int64_t>(images) * bands, threads, [&](std::int64_t task) {
    const int n = static_cast<int>(task / bands);
    const Rows out = band(out_rows, bands, static_cast<int>(task % bands));
    // The conv rows the band's windows read, and those the band computes: them in the plane, in whole tiles.
    const Rows wanted = rows_read(out, pool_shape.kernel_h, pool_shape.stride_h, pool_shape.pad_h), own = whole_tiles(wanted, row_tile, p);
    const Rows in = rows_read(own, conv_shape.kernel_h, conv_shape.stride_h, conv_shape.pad_h);
    // The conv on its input rows, unpadded in height (the copy holds the padding's zero rows).
    float* from = thread_scratch(ScratchSlot::kBlockBandB, static_cast<std::size_t>(conv_shape.in_channels) * in.count() * conv_shape.in_w);
    copy_rows(x + n * in_image, conv_shape.in_channels, conv_shape.in_h, conv_shape.in_w, in, true, from);
    Conv2dShape rows_shape = conv_shape;
    rows_shape.batch = 1;
    rows_shape.in_h = in.count();
    rows_shape.pad_h = 0;
    const std::size_t middle = static_cast<std::size_t>(k) * own.count() * q;
    float* a = thread_scratch(ScratchSlot::kBlockBandA, middle);
    conv(rows_shape, from, a);
    float* b = thread_scratch(ScratchSlot::kBlockBandB, std::max(middle, static_cast<std::size_t>(k) * wanted.count() * q));
    float* c = thread_scratch(ScratchSlot::kBlockBandC, middle);
    pair(pointwise(1, own.count()), a, b, c);
    // The pool's rows, its padding rows as copies of their neighbours, then its windows unpadded in height; with no
    // pool, the band's rows of the pair's output.
    const float* pooled = c + static_cast<std::int64_t>(out.begin - own.begin) * q;
    std::int64_t pooled_plane = static_cast<std::int64_t>(own.count()) * q;
    if (!is_identity(pool_shape)) {
      copy_rows(c, k, own.count(), q, {wanted.begin - own.begin, wanted.end - own.begin}, false, b);
      Pool2dShape band_pool = pool_shape;
      band_pool.batch = 1;
      band_pool.in_h = wanted.count();
      band_pool.pad_h = 0;
      float* to = thread_scratch(ScratchSlot::kBlockBandA, static_cast<std::size_t>(k) * out.count() * out_w);
      pool(band_pool, b, to);
      pooled = to;
      pooled_plane = static_cast<std::int64_t>(out.count()) * out_w;
    }
    float* image = y + n * k * out_plane;
    for (int i = 0; i < k; ++i)
      std::memcpy(image + i * out_plane + static_cast<std::int64_t>(out.begin) * out_w, pooled + i * pooled_plane, sizeof(float) * out.count() * out_w);
  });
}

}  // namespace cpu
}  // namespace nincc
