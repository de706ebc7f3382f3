// 2-D convolution (Torch7 SpatialConvolution, NCHW, cross-correlation, zero padding) forward,
// backward-data and backward-weights, each one GEMM over the batch's pixels with the unfolded
// input gathered on the fly: the forward and backward-data in conv_gemm.h (backward-data as a forward
// conv of dy for stride 1, Winograd for 3x3 and 5x5 in conv_winograd.h, else as W^T dy then col2im), the weight
// gradient in conv_wgrad.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_wgrad.h"
#include "conv_wgrad_1x1.h"
#include "conv_wgrad_stem.h"
#include "conv_winograd.h"
#include "conv_winograd_wgrad.h"
#include "gemm.h"
#include "im2col.h"
#include "parallel.h"
#include "reduce.h"

namespace nincc {
namespace cpu {
namespace conv_detail {

// The backward-data columns of a group of images stay within this many floats (16 MiB).
constexpr std::int64_t kColumnsFloats = std::int64_t{4} << 20;

}  // namespace conv_detail

// y[n][k] = bias[k] + sum_{c,r,s} w[k][c][r][s] * x[n][c][oh*sh-ph+r][ow*sw-pw+s], optionally
// followed by ReLU (fused into the GEMM's store). `bias` may be null (Torch's noBias()).
// x: batch x in_channels x in_h x in_w; w: out_channels x in_channels x kernel_h x kernel_w;
// y: batch x out_channels x out_h x out_w (overwritten), or those channels of a wider buffer, with a
// residual added before the ReLU, as `o` says (im2col.h ConvOutput; inference blocks).
// Packs w on every call (into the calling thread's scratch) and runs conv2d_forward_packed;
// inference packs its folded weights once instead.
inline void conv2d_forward(const Conv2dShape& shape, const float* x, const float* w, const float* bias,
                           float* y, bool relu = false, const ConvOutput& o = {}) {
  const int patch = shape.patch_size();
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(packed_conv_weights_size(shape.out_channels, patch)));
  pack_conv_weights(shape, w, packed);
  conv2d_forward_packed(shape, x, packed, bias, y, relu, o);
}

// Training's forward of a conv that the cost model (compiler/schedule/cpu-conv-algorithm.ts,
// chooseTrainingConvAlgorithm) gives to Winograd: the weights change every step, so U = G g G^T is
// computed on every call, into the calling thread's scratch, then conv2d_forward_winograd runs.
template <WinogradKind K>
inline void conv2d_forward_winograd_training(const Conv2dShape& shape, const float* x, const float* w, const float* bias, float* y,
                                             bool relu = false, const ConvOutput& o = {}) {
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(winograd_weights_size(K, shape.out_channels, shape.in_channels)));
  pack_winograd_weights<K>(shape, w, packed);
  conv2d_forward_winograd<K>(shape, x, packed, bias, y, relu, o);
}
inline void conv2d_forward_winograd_training(WinogradKind kind, const Conv2dShape& shape, const float* x, const float* w,
                                             const float* bias, float* y, bool relu = false, const ConvOutput& o = {}) {
  with_winograd_kind(kind, [&](auto k) { conv2d_forward_winograd_training<decltype(k)::value>(shape, x, w, bias, y, relu, o); });
}

// The algorithms a conv's forward (conv2d_forward of packed weights), data gradient and weight gradient choose between at
// run time, as bits. Each dispatcher below takes the paths it may compile as a template argument (all by default): the
// generated code (compiler/backends/cpu/render.ts) passes those its conv's shape can take, from the *_paths functions
// below, so that a library compiles the algorithms its plan calls and not every one the dispatchers name.
enum ConvPath : unsigned {
  kPathDirect = 1u << 0,           // conv2d_forward_direct
  kPathPointwiseDirect = 1u << 1,  // conv2d_forward_pointwise_direct
  kPathGemm = 1u << 2,             // the implicit GEMM: conv2d_forward_packed, conv2d_backward_weights_gemm
  kPathWinograd3 = 1u << 3,        // Winograd F(2x2,3x3) (gradients)
  kPathWinograd5 = 1u << 4,        // Winograd F(2x2,5x5) (gradients)
  kPathAsConv = 1u << 5,           // a data gradient as a forward conv of dy (conv_detail::backward_data_is_conv)
  kPathColumns = 1u << 6,          // a data gradient as W^T dy then col2im
  kPath1x1 = 1u << 7,              // conv2d_backward_weights_1x1
  kPathStem = 1u << 8,             // conv2d_backward_weights_stem
  kAllConvPaths = (1u << 9) - 1,
};

// The same with weights packed once beforehand (inference: packed when BN is folded). A
// single-channel input and most pointwise convs run the direct convs (conv_direct.h), the same bits
// in less time. `narrow_tails`, `in_place_pointwise`, `spread_weight_prefetch`: conv2d_forward_packed's (the narrowTails,
// inPlacePointwise and spreadWeightPrefetch ablations).
// `Paths`: those it may take (packed_forward_paths of its shape, or all).
template <unsigned Paths = kAllConvPaths>
inline void conv2d_forward(const Conv2dShape& shape, const float* x, PackedConvWeights w, const float* bias, float* y,
                           bool relu = false, const ConvOutput& o = {}, bool narrow_tails = true, bool in_place_pointwise = true,
                           bool spread_weight_prefetch = true) {
  if constexpr ((Paths & kPathDirect) != 0)
    if (direct_conv_applies(shape)) return conv2d_forward_direct(shape, x, w.data, bias, y, relu, o);
  if constexpr ((Paths & kPathPointwiseDirect) != 0)
    if (pointwise_direct_applies(shape)) return conv2d_forward_pointwise_direct(shape, x, w.data, bias, y, relu, o, narrow_tails);
  if constexpr ((Paths & kPathGemm) != 0)
    return conv2d_forward_packed(shape, x, w.data, bias, y, relu, o, narrow_tails, in_place_pointwise, spread_weight_prefetch);
  __builtin_trap();  // a shape outside its Paths: generated code passes packed_forward_paths of this very shape
}

// The paths conv2d_forward of packed weights may take for a shape (its batch aside): the direct conv, or the pointwise
// direct conv and the GEMM (which of them depends on the batch), or the GEMM.
constexpr unsigned packed_forward_paths(const Conv2dShape& image) {
  return direct_conv_applies(image) ? kPathDirect : pointwise_direct_applies(image) ? kPathPointwiseDirect | kPathGemm : kPathGemm;
}

namespace conv_detail {

// A stride-1 conv whose padding is at most its kernel less one has a backward-data that is itself a
// forward conv (a "full" correlation): dy, padded by kernel - 1 - pad, with the weights flipped in
// space and their in/out channels swapped. It then runs on the forward's implicit GEMM, with no
// columns buffer and no col2im pass. (A pointwise conv's W^T dy is already dx.) On small planes,
// where the padded border is much of every gathered row, the columns path stays ahead: measured at 1
// thread, NIN's 5x5 on 28x28 takes 18-19% less time this way, its 3x3 on 14x14 10-14% less, and its
// 3x3 on 7x7 6% more (bench/logs/cpu-train-dgrad-as-conv.out).
constexpr std::int64_t kBackwardDataConvMinPlane = 100;

constexpr bool backward_data_is_conv(const Conv2dShape& s) {
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_h <= s.kernel_h - 1 && s.pad_w <= s.kernel_w - 1 &&
         !s.is_pointwise() && s.out_plane() >= kBackwardDataConvMinPlane;
}

inline Conv2dShape backward_data_conv_shape(const Conv2dShape& s) {
  return Conv2dShape{s.batch, s.out_channels, s.out_h(), s.out_w(), s.in_channels, s.kernel_h, s.kernel_w,
                     1, 1, s.kernel_h - 1 - s.pad_h, s.kernel_w - 1 - s.pad_w};
}

// A 3x3 or 5x5 stride-1 backward-data runs its flipped forward conv as Winograd F(2x2,3x3) or
// F(2x2,5x5), the variants the cost model (compiler/schedule/cpu-conv-algorithm.ts) picks for NIN's
// forwards, on every plane size, with the flipped weights transformed on every call: measured at 1
// thread, batch 16, NIN's 3x3 dgrads on 14x14 and 7x7 take 50% and 15% less time than the implicit
// GEMM and columns paths did (36.5 -> 18.2, 42.6 -> 36.3 ms; 9 ms of the latter is the transform of
// 384x1024 weights), nin-fashion's 32->64 on 14x14 37% less, NIN's 5x5 on 28x28 46% less (95.7 -> 51.9 ms)
// (bench/logs/cpu-train-dgrad-winograd.out). A pad past kernel - 1 would give the flipped conv a
// negative pad; those keep the columns path, as in backward_data_is_conv. Every element of dx is
// computed by one task, so its bits do not depend on the thread count.
constexpr bool backward_data_is_winograd(const Conv2dShape& s) {
  return s.kernel_h == s.kernel_w && (s.kernel_h == 3 || s.kernel_h == 5) && s.stride_h == 1 && s.stride_w == 1 &&
         s.pad_h <= s.kernel_h - 1 && s.pad_w <= s.kernel_w - 1;
}

// flipped[c][k][r][s] = w[k][c][kh - 1 - r][kw - 1 - s]: the weights of backward_data_conv_shape.
inline void flip_conv_weights(const Conv2dShape& s, const float* w, float* flipped) {
  const int taps = s.kernel_h * s.kernel_w;
  for (int c = 0; c < s.in_channels; ++c)
    for (int k = 0; k < s.out_channels; ++k) {
      const float* from = w + (static_cast<std::int64_t>(k) * s.in_channels + c) * taps;
      float* to = flipped + (static_cast<std::int64_t>(c) * s.out_channels + k) * taps;
      for (int t = 0; t < taps; ++t) to[t] = from[taps - 1 - t];
    }
}

// A 3x3 or 5x5 stride-1 conv's weight gradient runs as Winograd F(2x2,3x3) or F(2x2,5x5)
// (conv_winograd_wgrad.h) when both its channel counts are at least kWinogradWeightsMinChannels and
// the batch's element indices fit the 32-bit gathers (bench/logs/cpu-train-wgrad-winograd.out, last
// run: 1 thread, batch 16, against conv_wgrad.h's GEMM, NIN's 5x5 on 28x28 and 3x3 on 14x14 and 7x7
// ran in 0.45, 0.59 and 0.67 of the time, nin-fashion's 3x3 32->64 on 14x14 in 0.75, 64->128 on 7x7
// in 0.92). With fewer channels the a*a GEMMs are too thin to pay for the transforms.
constexpr int kWinogradWeightsMinChannels = 32;

// `dy_channels`: the channels of dy's images (a concat's when dy is read from its slot, ConvGradientPlace).
constexpr bool backward_weights_is_winograd(const Conv2dShape& s, int dy_channels = 0) {
  return s.kernel_h == s.kernel_w && (s.kernel_h == 3 || s.kernel_h == 5) && s.stride_h == 1 && s.stride_w == 1 &&
         s.in_channels >= kWinogradWeightsMinChannels && s.out_channels >= kWinogradWeightsMinChannels &&
         s.batch <= winograd_detail::max_batch_per_call(s, std::max(dy_channels, s.out_channels));
}

// The Winograd variant of a 3x3 or 5x5 gradient (backward_data_is_winograd, backward_weights_is_winograd):
// F(2x2,5x5) or F(2x2,3x3), the variants the cost model picks for NIN's forwards.
constexpr WinogradKind gradient_winograd_kind(const Conv2dShape& s) {
  return s.kernel_h == 5 ? WinogradKind::F2x5 : WinogradKind::F2x3;
}

// conv2d_forward_packed of dy (the input of a stride-1 shape `s` at the output resolution), read where `place`
// says: its own tensor, or its channels of a concat's gradient (ConvGradientPlace), in place.
inline void forward_packed_from(const Conv2dShape& s, const float* dy, const ConvGradientPlace& place,
                                const float* packed, float* y, const ConvOutput& o) {
  if (s.out_channels <= 0 || s.batch <= 0 || s.out_plane() <= 0) return;
  conv2d_forward_view(s, conv_gemm_detail::direct_view(s, dy, place), packed, nullptr, y, false, o);
}

// conv2d_backward_data's Winograd path (backward_data_is_winograd) of kind K (gradient_winograd_kind): the flipped
// forward conv of dy, its weights transformed on every call.
template <WinogradKind K>
inline void backward_data_winograd(const Conv2dShape& shape, const float* dy, const float* w, float* dx, const float* addend,
                                   const ConvGradientPlace& place) {
  const Conv2dShape flipped_shape = backward_data_conv_shape(shape);
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(winograd_weights_size(K, shape.in_channels, shape.out_channels)));
  pack_winograd_weights_flipped<K>(flipped_shape, w, packed);
  if (place.total <= 0) return conv2d_forward_winograd<K>(flipped_shape, dy, packed, nullptr, dx, false, ConvOutput{addend});
  Conv2dShape one = flipped_shape;
  one.batch = 1;
  const std::int64_t dy_plane = flipped_shape.in_plane(), dx_image = static_cast<std::int64_t>(shape.in_channels) * shape.in_plane();
  for (int n = 0; n < shape.batch; ++n)
    conv2d_forward_winograd<K>(one, dy + (static_cast<std::int64_t>(n) * place.total + place.offset) * dy_plane, packed, nullptr,
                               dx + n * dx_image, false, ConvOutput{addend ? addend + n * dx_image : nullptr});
}

// conv2d_backward_data's path for a stride-1 conv (backward_data_is_conv): a forward conv of dy with the flipped weights.
inline void backward_data_as_conv(const Conv2dShape& shape, const float* dy, const float* w, float* dx, const float* addend,
                                  const ConvGradientPlace& place) {
  // The flipped weights in the columns slot, which this path does not otherwise use.
  float* flipped = thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(shape.out_channels) * shape.patch_size());
  conv_detail::flip_conv_weights(shape, w, flipped);
  const Conv2dShape flipped_shape = conv_detail::backward_data_conv_shape(shape);
  if (place.total <= 0) return conv2d_forward(flipped_shape, dy, flipped, nullptr, dx, false, ConvOutput{addend});
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(packed_conv_weights_size(flipped_shape.out_channels, flipped_shape.patch_size())));
  pack_conv_weights(flipped_shape, flipped, packed);
  conv_detail::forward_packed_from(flipped_shape, dy, place, packed, dx, ConvOutput{addend});
}

// conv2d_backward_data's path for the others: W^T dy into columns (dx itself for a pointwise conv), then col2im.
inline void backward_data_columns(const Conv2dShape& shape, const float* dy, const float* w, float* dx, const float* addend,
                                  const ConvGradientPlace& place) {
  const int depth = shape.patch_size();
  float* packed = thread_scratch(ScratchSlot::kConvPackedWeights,
                                 static_cast<std::size_t>(packed_conv_weights_size(depth, shape.out_channels)));
  pack_conv_weights_transposed(shape, w, packed);
  if (shape.is_pointwise()) {
    conv_detail::forward_packed_from(transposed_gemm_shape(shape), dy, place, packed, dx, ConvOutput{addend});
    return;
  }
  const std::int64_t per_image = static_cast<std::int64_t>(depth) * shape.out_plane();
  const int group = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(shape.batch, conv_detail::kColumnsFloats / per_image)));
  float* columns = thread_scratch(ScratchSlot::kConvColumns, static_cast<std::size_t>(group * per_image));
  for (int n0 = 0; n0 < shape.batch; n0 += group) {
    Conv2dShape part = shape;
    part.batch = std::min(group, shape.batch - n0);
    const int dy_channels = place.total > 0 ? place.total : shape.out_channels;
    conv_detail::forward_packed_from(transposed_gemm_shape(part), dy + static_cast<std::int64_t>(n0) * dy_channels * shape.out_plane(),
                                     place, packed, columns, ConvOutput{});
    // Every (image, channel) plane of dx is one item: a channel's columns only land in that channel.
    const std::int64_t planes = static_cast<std::int64_t>(part.batch) * shape.in_channels;
    parallel_for(planes, part.batch * per_image, [&](std::int64_t t) {
      const std::int64_t n = t / shape.in_channels, c = t % shape.in_channels;
      const std::int64_t at = ((n0 + n) * shape.in_channels + c) * shape.in_plane();
      col2im_channel(shape, columns + n * per_image, static_cast<int>(c), dx + at);
      if (addend)
        for (std::int64_t i = 0; i < shape.in_plane(); ++i) dx[at + i] += addend[at + i];
    });
  }
}

}  // namespace conv_detail

// dx = the gradient of the loss with respect to x, given dy (same layout as y). Overwrites dx.
// A 3x3 or 5x5 stride-1 conv's dx is a Winograd conv of dy (conv_detail::backward_data_is_winograd), another
// stride-1 conv's a forward conv of dy (conv_detail::backward_data_is_conv). Otherwise
// columns = W^T dy (patch_size x out_plane per image) as one implicit GEMM over a group of images
// (conv_gemm.h, with W^T packed once per call), then col2im folds each image's columns into dx; a
// pointwise conv's columns are dx itself. Groups keep the columns buffer within kColumnsFloats.
// Scratch: the packed W^T and the columns, in the calling thread's scratch. `addend` (laid out as dx, or
// null): another reader's gradient of the same input, added to each plane as it is written (the sum a
// fanned-out value's gradient needs, without a pass of its own). `place`: where dy lies (ConvGradientPlace: a
// concat branch's conv reads its channels of the concat's gradient in place; the Winograd path then runs image by
// image, every element the same bits).
// `Paths`: those it may take (data_gradient_paths of its shape, or all).
template <unsigned Paths = kAllConvPaths>
inline void conv2d_backward_data(const Conv2dShape& shape, const float* dy, const float* w, float* dx,
                                 const float* addend = nullptr, const ConvGradientPlace& place = {}) {
  using namespace conv_detail;
  if (backward_data_is_winograd(shape)) {
    if constexpr ((Paths & kPathWinograd3) != 0)
      if (gradient_winograd_kind(shape) == WinogradKind::F2x3) return backward_data_winograd<WinogradKind::F2x3>(shape, dy, w, dx, addend, place);
    if constexpr ((Paths & kPathWinograd5) != 0)
      if (gradient_winograd_kind(shape) == WinogradKind::F2x5) return backward_data_winograd<WinogradKind::F2x5>(shape, dy, w, dx, addend, place);
  } else if (backward_data_is_conv(shape)) {
    if constexpr ((Paths & kPathAsConv) != 0) return backward_data_as_conv(shape, dy, w, dx, addend, place);
  } else {
    if constexpr ((Paths & kPathColumns) != 0) return backward_data_columns(shape, dy, w, dx, addend, place);
  }
  __builtin_trap();  // a shape outside its Paths: generated code passes data_gradient_paths of this very shape
}

namespace conv_detail {

// conv2d_backward_weights' dw: the first of its paths that takes the shape.
template <bool SpreadPrefetches, unsigned Paths>
inline void weight_gradient(const Conv2dShape& shape, const float* x, const float* dy, float* dw, const ConvGradientPlace& place) {
  if (backward_weights_is_winograd(shape, place.total)) {
    if constexpr ((Paths & kPathWinograd3) != 0)
      if (gradient_winograd_kind(shape) == WinogradKind::F2x3) return conv2d_backward_weights_winograd<WinogradKind::F2x3>(shape, x, dy, dw, place);
    if constexpr ((Paths & kPathWinograd5) != 0)
      if (gradient_winograd_kind(shape) == WinogradKind::F2x5) return conv2d_backward_weights_winograd<WinogradKind::F2x5>(shape, x, dy, dw, place);
    __builtin_trap();  // a shape outside its Paths: generated code passes weight_gradient_paths of this very shape
  }
  if constexpr ((Paths & kPath1x1) != 0)
    if (wgrad_1x1_applies(shape)) return conv2d_backward_weights_1x1<SpreadPrefetches>(shape, x, dy, dw, place);
  if constexpr ((Paths & kPathStem) != 0)
    if (wgrad_stem_applies(shape) && place.total <= 0) return conv2d_backward_weights_stem(shape, x, dy, dw);
  if constexpr ((Paths & kPathGemm) != 0)
    conv2d_backward_weights_gemm(shape, x, dy, dw, place);
  else
    __builtin_trap();
}

}  // namespace conv_detail

// dw[k][c][r][s] = sum over the batch of dy[n][k] . unfolded x[n]; db[k] = sum of dy[n][k][.].
// Both are overwritten (not accumulated), and `db` may be null. dw is one GEMM over all the
// batch's pixels (conv_wgrad.h; for a 1x1 on a plane of whole tiles, conv_wgrad_1x1.h's bitwise
// equal form with dy unpacked; for a strided stem of few channels, conv_wgrad_stem.h's with X unpacked), or Winograd for most 3x3 and 5x5 (backward_weights_is_winograd), every
// element summed in batch order for any thread count; db sums in double in a fixed order (reduce.h). `place`: where dy lies (ConvGradientPlace, as for conv2d_backward_data).
inline void conv2d_bias_gradient(const Conv2dShape& shape, const float* dy, float* db, const ConvGradientPlace& place = {});

// SpreadPrefetches false: the 1x1 form's prefetches in one burst per tile product (compiler/ablations.ts cpuWgradSpreadPrefetch).
// `Paths`: those it may take (weight_gradient_paths of its shape, or all).
template <bool SpreadPrefetches = true, unsigned Paths = kAllConvPaths>
inline void conv2d_backward_weights(const Conv2dShape& shape, const float* x, const float* dy, float* dw,
                                    float* db, const ConvGradientPlace& place = {}) {
  conv_detail::weight_gradient<SpreadPrefetches, Paths>(shape, x, dy, dw, place);
  conv2d_bias_gradient(shape, dy, db, place);
}

// The paths conv2d_backward_data may take for a shape (its batch aside): one.
constexpr unsigned data_gradient_paths(const Conv2dShape& image) {
  if (conv_detail::backward_data_is_winograd(image)) return conv_detail::gradient_winograd_kind(image) == WinogradKind::F2x5 ? kPathWinograd5 : kPathWinograd3;
  return conv_detail::backward_data_is_conv(image) ? kPathAsConv : kPathColumns;
}

// The paths conv2d_backward_weights may take for a shape (its batch aside; dy_channels as backward_weights_is_winograd's):
// Winograd and the GEMM (for a batch past max_batch_per_call), or one of the others.
constexpr unsigned weight_gradient_paths(const Conv2dShape& image, int dy_channels = 0) {
  if (conv_detail::backward_weights_is_winograd(image, dy_channels))
    return (conv_detail::gradient_winograd_kind(image) == WinogradKind::F2x5 ? kPathWinograd5 : kPathWinograd3) | kPathGemm;
  if (wgrad_1x1_applies(image)) return kPath1x1;
  return wgrad_stem_applies(image) && dy_channels <= 0 ? kPathStem : kPathGemm;
}

// db[k] = sum of dy[n][k][.] in double in a fixed order (nothing when db is null).
inline void conv2d_bias_gradient(const Conv2dShape& shape, const float* dy, float* db, const ConvGradientPlace& place) {
  const std::int64_t dy_image_size = static_cast<std::int64_t>(place.total > 0 ? place.total : shape.out_channels) * shape.out_plane();
  if (db == nullptr) return;
  dy += place.offset * shape.out_plane();
  parallel_for(shape.out_channels, shape.out_channels * shape.out_plane() * shape.batch, [&](std::int64_t k) {
    double sum = 0.0;
    for (int n = 0; n < shape.batch; ++n)
      sum += sum_of(dy + n * dy_image_size + k * shape.out_plane(), shape.out_plane());
    db[k] = static_cast<float>(sum);
  });
}

}  // namespace cpu
}  // namespace nincc
