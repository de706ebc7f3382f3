// Channel slices of NCHW tensors, for nn.Concat(2): a branch's output copied into its channels of the
// joined tensor, and the joined gradient's slice copied back out for the branch's backward; or a branch
// ending in a ReLU or a Tanh that writes its channels of the joined tensor itself, and its backward reading them there.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "parallel.h"

namespace nincc {
namespace cpu {

struct ChannelSlice {
  int batch;
  int channels;        // of the slice (the branch's tensor)
  int total;           // of the joined tensor
  int offset;          // the slice's first channel in the joined tensor
  std::int64_t plane;  // H * W
};

// joined[n][offset + c] = part[n][c] for every image n and channel c < channels; the rest of joined is untouched.
inline void channels_place(const ChannelSlice& s, const float* part, float* joined) {
  const std::int64_t bytes = sizeof(float) * s.channels * s.plane;
  parallel_for(s.batch, static_cast<std::int64_t>(s.batch) * s.channels * s.plane, [&](std::int64_t n) {
    std::memcpy(joined + (n * s.total + s.offset) * s.plane, part + n * s.channels * s.plane, bytes);
  });
}

// part[n][c] = joined[n][offset + c].
inline void channels_take(const ChannelSlice& s, const float* joined, float* part) {
  const std::int64_t bytes = sizeof(float) * s.channels * s.plane;
  parallel_for(s.batch, static_cast<std::int64_t>(s.batch) * s.channels * s.plane, [&](std::int64_t n) {
    std::memcpy(part + n * s.channels * s.plane, joined + (n * s.total + s.offset) * s.plane, bytes);
  });
}

namespace channels_detail {

// joined[n][offset + c] = rule(part[n][c]): a pointwise layer ending a concat's branch writes its slice of the
// joined tensor, and no copy follows.
template <class Rule>
inline void forward_into(const ChannelSlice& s, const float* part, float* joined, Rule rule) {
  const std::int64_t count = static_cast<std::int64_t>(s.channels) * s.plane;
  parallel_for(s.batch, static_cast<std::int64_t>(s.batch) * count, [&](std::int64_t n) {
    const float* x = part + n * count;
    float* y = joined + (n * s.total + s.offset) * s.plane;
    for (std::int64_t i = 0; i < count; ++i) y[i] = rule(x[i]);
  });
}

// Its backward: dx[n][c] = rule(y, dy) with y and dy at [n][offset + c] of the joined tensor's output and
// gradient, read in place (no slice copied out first).
template <class Rule>
inline void backward_from(const ChannelSlice& s, const float* joined_y, const float* joined_dy, float* dx, Rule rule) {
  const std::int64_t count = static_cast<std::int64_t>(s.channels) * s.plane;
  parallel_for(s.batch, static_cast<std::int64_t>(s.batch) * count, [&](std::int64_t n) {
    const std::int64_t at = (n * s.total + s.offset) * s.plane;
    const float* y = joined_y + at;
    const float* dy = joined_dy + at;
    float* d = dx + n * count;
    for (std::int64_t i = 0; i < count; ++i) d[i] = rule(y[i], dy[i]);
  });
}

}  // namespace channels_detail

// A ReLU ending a concat's branch: joined[n][offset + c] = part > 0 ? part : 0 (relu_forward's).
inline void relu_forward_into(const ChannelSlice& s, const float* part, float* joined) {
  channels_detail::forward_into(s, part, joined, [](float x) { return x > 0.f ? x : 0.f; });
}

// Its backward: dy where y > 0, else 0. dy is loaded unconditionally, so the loop vectorizes as a blend.
inline void relu_backward_from(const ChannelSlice& s, const float* joined_y, const float* joined_dy, float* dx) {
  channels_detail::backward_from(s, joined_y, joined_dy, dx, [](float y, float g) { return y > 0.f ? g : 0.f; });
}

// A Tanh ending a concat's branch: joined[n][offset + c] = tanh(part) (pointwise.h tanh_forward's std::tanh).
inline void tanh_forward_into(const ChannelSlice& s, const float* part, float* joined) {
  channels_detail::forward_into(s, part, joined, [](float x) { return std::tanh(x); });
}

// Its backward: dy * (1 - y^2) (tanh_backward's).
inline void tanh_backward_from(const ChannelSlice& s, const float* joined_y, const float* joined_dy, float* dx) {
  channels_detail::backward_from(s, joined_y, joined_dy, dx, [](float y, float g) { return g * (1.f - y * y); });
}

}  // namespace cpu
}  // namespace nincc
