// Float64 reference GEMM, linear, batch norm, softmax, NLL loss and SGD, written straight from
// their definitions (Torch7 semantics) to check the float32 kernels against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace kernels_test {

// C = op(A) op(B) (+ C) + row/col bias, ReLU; A/B/C row-major with the given leading dimensions.
struct RefGemm {
  bool trans_a, trans_b;
  int m, n, k;
  int lda, ldb, ldc;
};
inline void ref_gemm(const RefGemm& g, const std::vector<double>& a, const std::vector<double>& b,
                     std::vector<double>& c, bool accumulate, const std::vector<double>* row_bias,
                     const std::vector<double>* col_bias, bool relu) {
  for (int i = 0; i < g.m; ++i)
    for (int j = 0; j < g.n; ++j) {
      double acc = accumulate ? c[std::size_t(i) * g.ldc + j] : 0.0;
      for (int p = 0; p < g.k; ++p) {
        const double av = g.trans_a ? a[std::size_t(p) * g.lda + i] : a[std::size_t(i) * g.lda + p];
        const double bv = g.trans_b ? b[std::size_t(j) * g.ldb + p] : b[std::size_t(p) * g.ldb + j];
        acc += av * bv;
      }
      if (row_bias) acc += (*row_bias)[i];
      if (col_bias) acc += (*col_bias)[j];
      c[std::size_t(i) * g.ldc + j] = relu ? std::max(acc, 0.0) : acc;
    }
}

// y[n][j] = sum_i x[n][i] w[j][i] + b[j]
inline std::vector<double> ref_linear_forward(int batch, int in, int out, const std::vector<double>& x,
                                              const std::vector<double>& w, const std::vector<double>& b) {
  std::vector<double> y(std::size_t(batch) * out);
  for (int n = 0; n < batch; ++n)
    for (int j = 0; j < out; ++j) {
      double acc = b[j];
      for (int i = 0; i < in; ++i) acc += x[std::size_t(n) * in + i] * w[std::size_t(j) * in + i];
      y[std::size_t(n) * out + j] = acc;
    }
  return y;
}

struct LinearGradients {
  std::vector<double> dx, dw, db;
};
inline LinearGradients ref_linear_backward(int batch, int in, int out, const std::vector<double>& x,
                                           const std::vector<double>& w, const std::vector<double>& dy) {
  LinearGradients g{std::vector<double>(x.size()), std::vector<double>(w.size()), std::vector<double>(out)};
  for (int n = 0; n < batch; ++n)
    for (int j = 0; j < out; ++j) {
      const double d = dy[std::size_t(n) * out + j];
      g.db[j] += d;
      for (int i = 0; i < in; ++i) {
        g.dx[std::size_t(n) * in + i] += d * w[std::size_t(j) * in + i];
        g.dw[std::size_t(j) * in + i] += d * x[std::size_t(n) * in + i];
      }
    }
  return g;
}

// Batch norm over x[batch][channels][plane].
struct RefBatchNorm {
  int batch, channels, plane;
  std::size_t at(int n, int c, int i) const { return (std::size_t(n) * channels + c) * plane + i; }
  int count() const { return batch * plane; }
};

struct BatchNormTrainResult {
  std::vector<double> y, mean, invstd, running_mean, running_var;
};
inline BatchNormTrainResult ref_batchnorm_train(const RefBatchNorm& s, const std::vector<double>& x,
                                                const std::vector<double>& gamma, const std::vector<double>& beta,
                                                std::vector<double> running_mean, std::vector<double> running_var,
                                                double eps, double momentum) {
  BatchNormTrainResult r{std::vector<double>(x.size()), std::vector<double>(s.channels),
                         std::vector<double>(s.channels), {}, {}};
  for (int c = 0; c < s.channels; ++c) {
    double sum = 0.0;
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) sum += x[s.at(n, c, i)];
    const double mean = sum / s.count();
    double sq = 0.0;
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) sq += (x[s.at(n, c, i)] - mean) * (x[s.at(n, c, i)] - mean);
    const double var = sq / s.count();  // biased: what training normalises with
    const double unbiased = s.count() > 1 ? sq / (s.count() - 1) : 0.0;
    r.mean[c] = mean;
    r.invstd[c] = 1.0 / std::sqrt(var + eps);
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean;
    running_var[c] = (1 - momentum) * running_var[c] + momentum * unbiased;
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i)
        r.y[s.at(n, c, i)] = (x[s.at(n, c, i)] - mean) * r.invstd[c] * gamma[c] + beta[c];
  }
  r.running_mean = running_mean;
  r.running_var = running_var;
  return r;
}

inline std::vector<double> ref_batchnorm_eval(const RefBatchNorm& s, const std::vector<double>& x,
                                              const std::vector<double>& gamma, const std::vector<double>& beta,
                                              const std::vector<double>& rm, const std::vector<double>& rv,
                                              double eps) {
  std::vector<double> y(x.size());
  for (int n = 0; n < s.batch; ++n)
    for (int c = 0; c < s.channels; ++c)
      for (int i = 0; i < s.plane; ++i)
        y[s.at(n, c, i)] = (x[s.at(n, c, i)] - rm[c]) / std::sqrt(rv[c] + eps) * gamma[c] + beta[c];
  return y;
}

struct BatchNormGradients {
  std::vector<double> dx, dgamma, dbeta;
};
// With xhat = (x - mean) * invstd: dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
inline BatchNormGradients ref_batchnorm_backward(const RefBatchNorm& s, const std::vector<double>& x,
                                                 const std::vector<double>& gamma, const std::vector<double>& dy,
                                                 double eps) {
  BatchNormGradients g{std::vector<double>(x.size()), std::vector<double>(s.channels), std::vector<double>(s.channels)};
  for (int c = 0; c < s.channels; ++c) {
    double sum = 0.0, sq = 0.0;
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) sum += x[s.at(n, c, i)];
    const double mean = sum / s.count();
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) sq += (x[s.at(n, c, i)] - mean) * (x[s.at(n, c, i)] - mean);
    const double invstd = 1.0 / std::sqrt(sq / s.count() + eps);
    double dy_mean = 0.0, dy_xhat_mean = 0.0;
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) {
        dy_mean += dy[s.at(n, c, i)] / s.count();
        dy_xhat_mean += dy[s.at(n, c, i)] * (x[s.at(n, c, i)] - mean) * invstd / s.count();
      }
    g.dbeta[c] = dy_mean * s.count();
    g.dgamma[c] = dy_xhat_mean * s.count();
    for (int n = 0; n < s.batch; ++n)
      for (int i = 0; i < s.plane; ++i) {
        const double xhat = (x[s.at(n, c, i)] - mean) * invstd;
        g.dx[s.at(n, c, i)] = gamma[c] * invstd * (dy[s.at(n, c, i)] - dy_mean - xhat * dy_xhat_mean);
      }
  }
  return g;
}

// Row-wise log-softmax / softmax of x[rows][classes] and their backward passes (from dy and x).
inline std::vector<double> ref_log_softmax(int rows, int classes, const std::vector<double>& x) {
  std::vector<double> y(x.size());
  for (int r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int j = 0; j < classes; ++j) sum += std::exp(x[std::size_t(r) * classes + j]);
    for (int j = 0; j < classes; ++j) y[std::size_t(r) * classes + j] = x[std::size_t(r) * classes + j] - std::log(sum);
  }
  return y;
}
inline std::vector<double> ref_softmax(int rows, int classes, const std::vector<double>& x) {
  std::vector<double> y = ref_log_softmax(rows, classes, x);
  for (double& v : y) v = std::exp(v);
  return y;
}
// d/dx of sum(dy * log_softmax(x)) = dy - softmax(x) * sum(dy)
inline std::vector<double> ref_log_softmax_backward(int rows, int classes, const std::vector<double>& x,
                                                    const std::vector<double>& dy) {
  const std::vector<double> p = ref_softmax(rows, classes, x);
  std::vector<double> dx(x.size());
  for (int r = 0; r < rows; ++r) {
    double total = 0.0;
    for (int j = 0; j < classes; ++j) total += dy[std::size_t(r) * classes + j];
    for (int j = 0; j < classes; ++j)
      dx[std::size_t(r) * classes + j] = dy[std::size_t(r) * classes + j] - p[std::size_t(r) * classes + j] * total;
  }
  return dx;
}
// d/dx of sum(dy * softmax(x)): the Jacobian diag(p) - p p^T applied to dy
inline std::vector<double> ref_softmax_backward(int rows, int classes, const std::vector<double>& x,
                                                const std::vector<double>& dy) {
  const std::vector<double> p = ref_softmax(rows, classes, x);
  std::vector<double> dx(x.size());
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < classes; ++i) {
      double acc = 0.0;
      for (int j = 0; j < classes; ++j) {
        const double jac = (i == j ? p[std::size_t(r) * classes + i] : 0.0) -
                           p[std::size_t(r) * classes + i] * p[std::size_t(r) * classes + j];
        acc += jac * dy[std::size_t(r) * classes + j];
      }
      dx[std::size_t(r) * classes + i] = acc;
    }
  return dx;
}

inline double ref_nll_loss(int batch, int classes, const std::vector<double>& logp, const std::vector<int>& labels) {
  double sum = 0.0;
  for (int n = 0; n < batch; ++n) sum -= logp[std::size_t(n) * classes + labels[n]];
  return sum / batch;
}

// torch/optim sgd in double, one step over a flat array; returns nothing, updates in place.
inline void ref_sgd(std::vector<double>& w, std::vector<double>& g, std::vector<double>& buf, double lr, double wd,
                    double momentum, bool first) {
  for (std::size_t i = 0; i < w.size(); ++i) {
    g[i] += wd * w[i];
    double step = g[i];
    if (momentum != 0.0) {
      buf[i] = first ? g[i] : momentum * buf[i] + g[i];
      step = buf[i];
    }
    w[i] -= lr * step;
  }
}

}  // namespace kernels_test
