// The cpu training's BN+ReLU backward when a max pool is the ReLU's only reader: the pool's backward taken plane by
// plane inside the BN's, so its gradient plane is scattered into dx while in cache, with no pass of its own.
#pragma once

#include <cstdint>
#include <cstring>

#include "batchnorm.h"
#include "pool.h"

namespace nincc {
namespace cpu {

// maxpool_backward (pool.h) of the pool's gradient `pool_dy` by its `argmax`, then batchnorm_backward with `relu_y`
// (the BN+ReLU forward's output, the pool's input) of that gradient, in one pass: each plane of the pool's input
// gradient is built in dx (zeroed, then dy routed to each window's argmax in output order, as maxpool_backward) just
// before the BN's sums read it, so the bits are those of the two kernels. The BN and the pool own their layouts
// (no concat slot: lower/train.ts pooledBnBackward).
inline void batchnorm_relu_maxpool_backward(const BatchNormShape& shape, const Pool2dShape& pool, const float* x,
                                            const float* pool_dy, const std::int32_t* argmax, const float* relu_y,
                                            const float* gamma, const float* save_mean, const float* save_invstd,
                                            float* dx, float* dgamma, float* dbeta) {
  batchnorm_backward_from(shape, x, gamma, save_mean, save_invstd, dx, dgamma, dbeta, relu_y, BatchNormOutput{},
                          [&](int n, int c, float* dx_plane) -> const float* {
                            const std::int64_t p = static_cast<std::int64_t>(n) * shape.channels + c;
                            const std::int64_t out0 = p * pool.out_plane();
                            std::memset(dx_plane, 0, sizeof(float) * shape.plane);
                            for (std::int64_t o = 0; o < pool.out_plane(); ++o)
                              if (argmax[out0 + o] >= 0) dx_plane[argmax[out0 + o]] += pool_dy[out0 + o];
                            return dx_plane;
                          });
}

}  // namespace cpu
}  // namespace nincc
