// Channel slices of NCHW tensors, for nn.Concat(2): a branch's output copied into its channels of the
// joined tensor, and the joined gradient's slice copied back out for the branch's backward.
#pragma once

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

}  // namespace cpu
}  // namespace nincc
