// The uint8 stem (issue #20, docs/artifact.md#imageinput): a model built with `--input u8` takes its
// images as N×H×W×C bytes, and its first conv normalises them, (v/255 − mean[c])/std[c], as it builds
// the float view its gather reads (conv_gather.h InputView): the phase-split copy a strided conv makes
// of a float input anyway, or a planar copy at stride 1, in the calling thread's scratch. The forward
// and the weight gradient read the same view; the stem has no input gradient.
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

// The stem's gather view of the normalised images: row ih of channel c of image n as stride_w runs of
// ceil(in_w / stride_w) floats (run ph: columns ph, ph + stride_w, …; zero past the end), which at
// stride 1 is the planar NCHW layout itself. Written into the calling thread's kConvPhases scratch.
inline conv_gemm_detail::InputView u8_input_view(const Conv2dShape& s, const U8Images& in) {
  const int channels = s.in_channels, stride = s.stride_w;
  const std::vector<float> table = u8_detail::value_tables(channels, in.mean, in.std);
  const int width = (s.in_w + stride - 1) / stride;
  const std::int64_t row = static_cast<std::int64_t>(stride) * width;
  const std::int64_t rows = static_cast<std::int64_t>(s.batch) * channels * s.in_h;
  float* copy = thread_scratch(ScratchSlot::kConvPhases, static_cast<std::size_t>(rows * row));
  parallel_for(rows, rows * row, [&](std::int64_t r) {
    const std::int64_t n = r / (static_cast<std::int64_t>(channels) * s.in_h);
    const int c = static_cast<int>(r / s.in_h % channels), ih = static_cast<int>(r % s.in_h);
    const std::uint8_t* src = in.pixels + ((n * s.in_h + ih) * s.in_w) * channels + c;  // stride: channels
    const float* value = table.data() + c * 256;
    float* dst = copy + r * row;
    for (int ph = 0; ph < stride; ++ph) {
      const int inside = (s.in_w - ph + stride - 1) / stride;
      float* out = dst + ph * width;
      for (int j = 0; j < inside; ++j) out[j] = value[src[static_cast<std::int64_t>(j * stride + ph) * channels]];
      for (int j = inside; j < width; ++j) out[j] = 0.f;
    }
  });
  const std::int64_t plane = static_cast<std::int64_t>(s.in_h) * row;
  return {copy, channels * plane, plane, row, stride == 1 ? 0 : width};
}

// conv2d_forward (conv.h) of uint8 images: weights packed per call, or once (inference's folded ones).
inline void conv2d_forward(const Conv2dShape& shape, const U8Images& x, const float* w, const float* bias, float* y,
                           bool relu = false, const ConvOutput& o = {}) {
  if (shape.out_channels <= 0 || shape.batch <= 0 || shape.out_plane() <= 0) return;
  const int patch = shape.patch_size();
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(packed_conv_weights_size(shape.out_channels, patch)));
  pack_conv_weights(shape, w, packed);
  conv2d_forward_view(shape, u8_input_view(shape, x), packed, bias, y, relu, o);
}

// conv2d_backward_weights (conv.h) of uint8 images: dw from the same normalised view, db from dy.
inline void conv2d_backward_weights(const Conv2dShape& shape, const U8Images& x, const float* dy, float* dw, float* db) {
  if (shape.batch <= 0 || shape.out_plane() <= 0) {
    std::memset(dw, 0, sizeof(float) * shape.out_channels * shape.patch_size());
  } else {
    conv2d_backward_weights_view(shape, u8_input_view(shape, x), dy, dw);
  }
  conv2d_bias_gradient(shape, dy, db);
}

}  // namespace cpu
}  // namespace nincc
