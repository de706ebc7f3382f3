// A convolution's geometry and the unfolding (im2col) that turns it into a GEMM: the columns row
// (c*kernel_h + r)*kernel_w + s of output pixel (oh, ow) is image[c][oh*sh - ph + r][ow*sw - pw + s],
// zero in the padding. The GEMMs gather these on the fly (conv_gather.h); what is here is the shape,
// which output columns of a tap read inside the image, and col2im, the adjoint that folds column
// gradients back into an image gradient (backward-data).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "bn_moments.h"
#include "parallel.h"

namespace nincc {
namespace cpu {

// A 2-D convolution's geometry, Torch's SpatialConvolution: weight is
// out_channels x in_channels x kernel_h x kernel_w, input batch x in_channels x in_h x in_w.
// Generated code builds these as constexpr values.
struct Conv2dShape {
  int batch, in_channels, in_h, in_w;
  int out_channels, kernel_h, kernel_w;
  int stride_h, stride_w, pad_h, pad_w;

  constexpr int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }  // floor
  constexpr int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  constexpr std::int64_t in_plane() const { return static_cast<std::int64_t>(in_h) * in_w; }
  constexpr std::int64_t out_plane() const { return static_cast<std::int64_t>(out_h()) * out_w(); }
  // The GEMM depth: one column of the unfolded image per output pixel has this many rows.
  constexpr int patch_size() const { return in_channels * kernel_h * kernel_w; }
  // A 1x1, stride-1, unpadded convolution is already a GEMM over the image as stored.
  constexpr bool is_pointwise() const {
    return kernel_h == 1 && kernel_w == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0;
  }
};

// Where an inference conv's output goes and what its epilogue adds (compiler/lower/infer.ts): channels
// [channel_offset, channel_offset + out_channels) of each image of a buffer of image_channels channels
// (0: out_channels, the conv's own buffer; more: a concat's output, written in place), and `residual`,
// laid out as that buffer, added after the bias and before the ReLU (a residual block's shortcut).
struct ConvOutput {
  const float* residual = nullptr;
  int image_channels = 0;
  int channel_offset = 0;
  // Training: the per-tile sums of y the BN after the conv takes its statistics from (bn_moments.h), recorded by
  // the GEMM epilogue (conv_gemm.h) while each tile is in cache; none when partials is null. The Winograd and
  // direct convs take none (compiler/lower/train.ts gives them to the implicit GEMM only).
  ConvMoments bn_moments = {};
  constexpr int channels_of(const Conv2dShape& s) const { return image_channels > 0 ? image_channels : s.out_channels; }
};

// Where a training conv's output y went and so where its gradient dy lies (compiler/lower/train.ts concatSlots):
// channels [offset, offset + out_channels) of each image of a total-channel tensor, the concat's output and
// gradient, which a branch ending in this conv writes (ConvOutput) and whose backward reads dy there (conv.h);
// total 0: the conv's own dy.
struct ConvGradientPlace {
  int total = 0;
  int offset = 0;
};

namespace conv_detail {

// Output columns ow whose input column ow*stride - pad + offset lies inside [0, in_w):
// the half-open range [first, last). Everything outside it reads zero padding.
struct ValidRange {
  int first, last;
};
inline ValidRange valid_outputs(int in_size, int out_size, int stride, int pad, int offset) {
  const int shift = pad - offset;  // input index = o*stride - shift
  int first = shift <= 0 ? 0 : (shift + stride - 1) / stride;
  int last = in_size + shift <= 0 ? 0 : (in_size - 1 + shift) / stride + 1;
  first = std::min(first, out_size);
  last = std::max(first, std::min(last, out_size));
  return {first, last};
}

}  // namespace conv_detail

// col2im for one channel c: plane (in_h x in_w, overwritten) = the sum of every columns entry that
// im2col copied from channel c's plane, padding entries dropped, in a fixed (r, s, oh, ow) order.
inline void col2im_channel(const Conv2dShape& shape, const float* columns, int c, float* plane) {
  using conv_detail::valid_outputs;
  const int oh_count = shape.out_h(), ow_count = shape.out_w();
  std::memset(plane, 0, sizeof(float) * shape.in_plane());
  for (int r = 0; r < shape.kernel_h; ++r) {
    for (int s = 0; s < shape.kernel_w; ++s) {
      const int row = (c * shape.kernel_h + r) * shape.kernel_w + s;
      const auto cols = valid_outputs(shape.in_w, ow_count, shape.stride_w, shape.pad_w, s);
      const float* src_row = columns + static_cast<std::int64_t>(row) * shape.out_plane();
      for (int oh = 0; oh < oh_count; ++oh) {
        const int ih = oh * shape.stride_h - shape.pad_h + r;
        if (ih < 0 || ih >= shape.in_h) continue;
        const float* src = src_row + static_cast<std::int64_t>(oh) * ow_count;
        const std::int64_t dst_shift = static_cast<std::int64_t>(ih) * shape.in_w - shape.pad_w + s;
        for (int ow = cols.first; ow < cols.last; ++ow) plane[dst_shift + ow * shape.stride_w] += src[ow];
      }
    }
  }
}

// The adjoint of im2col: image[c][ih][iw] = sum of every columns entry that im2col copied from
// there (the image is overwritten, padding entries are dropped). Parallel over channels, since a
// channel's rows only ever land in that channel; each pixel sums in a fixed (r, s, oh, ow) order.
inline void col2im(const Conv2dShape& shape, const float* columns, float* image) {
  const std::int64_t work = static_cast<std::int64_t>(shape.patch_size()) * shape.out_plane();
  parallel_for(shape.in_channels, work, [&](std::int64_t c) {
    col2im_channel(shape, columns, static_cast<int>(c), image + c * shape.in_plane());
  });
}

}  // namespace cpu
}  // namespace nincc
