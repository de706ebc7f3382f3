// The uint8 stem (issue #20, docs/artifact.md#imageinput): a model built with `--input u8` takes its
// images as N×H×W×C bytes, and its first conv normalises them, (v/255 − mean[c])/std[c], in its implicit
// im2col: the GEMM's gather reads the bytes in place and writes each one's float, looked up in its
// channel's table, straight into the micro-kernel's panel (conv_gather.h byte_view, gather_row_bytes).
// No float copy of the images is written. The forward and the weight gradient gather alike; the stem
// has no input gradient.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "conv.h"
#include "conv_gather.h"
#include "conv_gemm.h"
#include "conv_wgrad.h"
#include "parallel.h"

namespace nincc {
namespace cpu {

// uint8 NHWC images and the per-channel normalisation of plan.json's imageInput.
struct U8Images {
  const std::uint8_t* pixels;  // batch x in_h x in_w x in_channels
  const double* mean;          // in_channels entries
  const double* std;
};

namespace u8_detail {

// The 256 values of each channel as the float loader computes them (runtime/imagenet/donkey.ts
// cropToTensor): (v/255 − mean)/std in double, rounded once to float, so both paths feed the same bits.
inline std::vector<float> value_tables(int channels, const double* mean, const double* std) {
  std::vector<float> table(static_cast<std::size_t>(channels) * 256);
  for (int c = 0; c < channels; ++c)
    for (int v = 0; v < 256; ++v) table[c * 256 + v] = static_cast<float>((v / 255.0 - mean[c]) / std[c]);
  return table;
}

}  // namespace u8_detail

// conv2d_forward (conv.h) of uint8 images: weights packed per call, or once (inference's folded ones).
inline void conv2d_forward(const Conv2dShape& shape, const U8Images& x, const float* w, const float* bias, float* y,
                           bool relu = false, const ConvOutput& o = {}) {
  if (shape.out_channels <= 0 || shape.batch <= 0 || shape.out_plane() <= 0) return;
  const int patch = shape.patch_size();
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(packed_conv_weights_size(shape.out_channels, patch)));
  pack_conv_weights(shape, w, packed);
  const std::vector<float> tables = u8_detail::value_tables(shape.in_channels, x.mean, x.std);
  conv2d_forward_view(shape, conv_gemm_detail::byte_view(shape, x.pixels, tables.data()), packed, bias, y, relu, o);
}

// conv2d_backward_weights (conv.h) of uint8 images: dw from the same normalised view, db from dy.
inline void conv2d_backward_weights(const Conv2dShape& shape, const U8Images& x, const float* dy, float* dw, float* db) {
  if (shape.batch <= 0 || shape.out_plane() <= 0) {
    std::memset(dw, 0, sizeof(float) * shape.out_channels * shape.patch_size());
  } else {
    const std::vector<float> tables = u8_detail::value_tables(shape.in_channels, x.mean, x.std);
    conv2d_backward_weights_view(shape, conv_gemm_detail::byte_view(shape, x.pixels, tables.data()), dy, dw);
  }
  conv2d_bias_gradient(shape, dy, db);
}

}  // namespace cpu
}  // namespace nincc
