// GEMM against a float64 triple loop: all four transpose combinations, overwrite and accumulate,
// each epilogue, padded leading dimensions, and shapes around every tile and block edge.
#include <cstdio>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/gemm.h"
#include "reference_dense.h"

namespace kernels_test {
namespace {

using nincc::cpu::GemmEpilogue;
using nincc::cpu::Transpose;

struct GemmCase {
  int m, n, k;
};

// Edge shapes: single elements, exact micro-tiles (6/12 rows, 16/32 columns), one past them,
// depth past the 256 block, rows past the 240-row block, columns past the 4096-column block.
const GemmCase kCases[] = {{1, 1, 1},   {5, 7, 3},     {12, 32, 256}, {13, 33, 257}, {6, 16, 1},
                           {37, 65, 300}, {100, 3, 513}, {250, 250, 40}, {601, 20, 30}, {3, 4200, 5},
                           {2, 9, 0}};

void run_case(const GemmCase& c, bool trans_a, bool trans_b, bool accumulate, int epilogue_kind, Rng& rng) {
  const int pad = 3;  // leading dimensions wider than the rows, to catch stride mix-ups
  RefGemm g{trans_a, trans_b, c.m, c.n, c.k, (trans_a ? c.m : c.k) + pad, (trans_b ? c.k : c.n) + pad, c.n + pad};
  const std::size_t a_rows = trans_a ? c.k : c.m, b_rows = trans_b ? c.n : c.k;
  std::vector<float> a = random_floats(a_rows * g.lda, rng), b = random_floats(b_rows * g.ldb, rng);
  std::vector<float> row_bias = random_floats(c.m, rng), col_bias = random_floats(c.n, rng);
  const std::size_t c_size = std::size_t(c.m) * g.ldc;
  std::vector<float> out = accumulate ? random_floats(c_size, rng) : poisoned(c_size);
  std::vector<double> want = to_double(out);
  if (!accumulate)
    for (double& v : want) v = 0.0;

  GemmEpilogue epilogue;
  const std::vector<double> row_bias_d = to_double(row_bias), col_bias_d = to_double(col_bias);
  if (epilogue_kind == 1) epilogue = GemmEpilogue{row_bias.data(), nullptr, true};
  if (epilogue_kind == 2) epilogue = GemmEpilogue{nullptr, col_bias.data(), false};
  nincc::cpu::gemm(trans_a ? Transpose::kYes : Transpose::kNo, trans_b ? Transpose::kYes : Transpose::kNo, c.m, c.n,
                   c.k, a.data(), g.lda, b.data(), g.ldb, out.data(), g.ldc, accumulate, epilogue);
  ref_gemm(g, to_double(a), to_double(b), want, accumulate, epilogue_kind == 1 ? &row_bias_d : nullptr,
           epilogue_kind == 2 ? &col_bias_d : nullptr, epilogue_kind == 1);

  // Compare only the m x n window; the padding columns of C must be left alone (still NaN or
  // their random values), which the full comparison below also covers since want kept them.
  if (!accumulate)
    for (int i = 0; i < c.m; ++i)
      for (int j = c.n; j < g.ldc; ++j) want[std::size_t(i) * g.ldc + j] = 0.0;
  std::vector<float> got = out;
  if (!accumulate)
    for (int i = 0; i < c.m; ++i)
      for (int j = c.n; j < g.ldc; ++j) {
        CHECK(got[std::size_t(i) * g.ldc + j] != got[std::size_t(i) * g.ldc + j]);  // untouched NaN
        got[std::size_t(i) * g.ldc + j] = 0.f;
      }
  char what[128];
  std::snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d acc=%d epilogue=%d", c.m, c.n, c.k, trans_a, trans_b,
                accumulate, epilogue_kind);
  CHECK_CLOSE(got, want, 2e-5, what);
}

}  // namespace

void test_gemm() {
  Rng rng(11);
  for (const GemmCase& c : kCases)
    for (int t = 0; t < 4; ++t)
      for (int acc = 0; acc < 2; ++acc)
        for (int epi = 0; epi < 3; ++epi) {
          if (c.n > 1000 && (acc || epi)) continue;  // the wide case only needs its blocking checked
          run_case(c, t & 1, t & 2, acc, epi, rng);
        }
}

}  // namespace kernels_test
