// Negative log-likelihood loss over log-probabilities, Torch7 nn.ClassNLLCriterion with
// sizeAverage = true (the mean over the batch), forward and gradient.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace nincc {
namespace cpu {

// *loss = -(1/batch) * sum_n logp[n][labels[n]], summed in double in batch order. Labels are
// 0-based class indices (Torch's are 1-based); an out-of-range label makes the loss NaN, so a
// data bug shows up in the loss instead of reading outside the row.
inline void nll_loss_forward(int batch, int classes, const float* logp, const std::int32_t* labels, float* loss) {
  double sum = 0.0;
  for (int n = 0; n < batch; ++n) {
    const std::int32_t label = labels[n];
    if (label < 0 || label >= classes) {
      *loss = std::numeric_limits<float>::quiet_NaN();
      return;
    }
    sum += logp[static_cast<std::int64_t>(n) * classes + label];
  }
  *loss = batch > 0 ? static_cast<float>(-sum / batch) : 0.f;
}

// dlogp = d(loss)/d(logp) * loss_grad: -loss_grad/batch at each row's label, 0 elsewhere
// (overwritten). Rows with an out-of-range label get no gradient.
inline void nll_loss_backward(int batch, int classes, const std::int32_t* labels, float* dlogp,
                              float loss_grad = 1.f) {
  std::memset(dlogp, 0, sizeof(float) * batch * classes);
  const float g = -loss_grad / static_cast<float>(batch);
  for (int n = 0; n < batch; ++n)
    if (labels[n] >= 0 && labels[n] < classes) dlogp[static_cast<std::int64_t>(n) * classes + labels[n]] = g;
}

}  // namespace cpu
}  // namespace nincc
