// One step of torch/optim sgd on a flat parameter array (dampening 0, no Nesterov, no learning
// rate decay), the update that imagenet-multiGPU.torch runs once per batch.
#pragma once

#include <cstdint>

#include "parallel.h"

namespace nincc {
namespace cpu {

// In Torch's order, every step in float like Torch's tensor ops:
//   g   <- g + weight_decay * w                  (g is modified in place, as optim.sgd does)
//   buf <- g                   on the first step after a reset (`first`)
//   buf <- momentum * buf + g  afterwards
//   w   <- w - lr * buf
// With momentum == 0 there is no buffer: w <- w - lr * g, and `momentum_buffer` may be null.
// Built with floating-point contraction on (GNU modes' default with FMA hardware) the compiler
// may fuse a multiply-add, which rounds once where Torch rounds twice: a last-bit difference.
inline void sgd_update(std::int64_t count, float* w, float* g, float* momentum_buffer, float lr, float weight_decay,
                       float momentum, bool first) {
  parallel_slices(count, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) {
      float grad = g[i];
      if (weight_decay != 0.f) {
        grad = grad + weight_decay * w[i];
        g[i] = grad;
      }
      if (momentum != 0.f) {
        const float buf = first ? grad : momentum * momentum_buffer[i] + grad;
        momentum_buffer[i] = buf;
        grad = buf;
      }
      w[i] = w[i] - lr * grad;
    }
  });
}

}  // namespace cpu
}  // namespace nincc
