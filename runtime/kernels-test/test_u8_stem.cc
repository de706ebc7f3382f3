// The uint8 stem (nincc/cpu/u8_input.h), which gathers its N×H×W×C bytes in place and normalises each as it
// packs the GEMM's panel: at 1 and 2 threads its forward and weight gradient equal bit for bit the float
// GEMM path fed the loader's normalised N×C×H×W floats ((v/255 − mean)/std in double, rounded once:
// runtime/imagenet/donkey.ts cropToTensor), and its forward is within 1e-5 of a float64 direct convolution
// (so an index both paths share cannot hide). Shapes: an ImageNet-like 11×11 stride-4 stem, a 3×3 stride-1
// one and an odd 5×4 stride-(2, 3) one, all padded and big enough to split among threads. The bytes end
// where an unreadable page begins, so a gather that read past the batch's last byte (the AVX-512 one reads
// 4-byte words) would fault.
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "check.h"
#include "kernel_tests.h"
#include "nincc/cpu/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace kernels_test {
namespace {

using namespace nincc::cpu;

const double kMean[3] = {0.48462227599918, 0.45624044862054, 0.40588363755159};
const double kStd[3] = {0.22889466674951, 0.22446679341259, 0.22495548344775};

// `count` bytes that end where a PROT_NONE page begins (freed with the returned mapping's size).
struct GuardedBytes {
  std::uint8_t* data = nullptr;
  void* map = nullptr;
  std::size_t map_bytes = 0;
  explicit GuardedBytes(std::size_t count) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t pages = (count + page - 1) / page;
    map_bytes = (pages + 1) * page;
    map = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    char* guard = static_cast<char*>(map) + pages * page;
    CHECK(mprotect(guard, page, PROT_NONE) == 0);
    data = reinterpret_cast<std::uint8_t*>(guard) - count;
  }
  ~GuardedBytes() { munmap(map, map_bytes); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// The float64 direct convolution of NCHW floats, against which the forward's largest error is measured.
double worst_forward_error(const Conv2dShape& s, const std::vector<float>& x, const std::vector<float>& w,
                           const std::vector<float>& bias, const std::vector<float>& y) {
  double worst = 0, scale = 0;
  for (float v : y) scale = std::fmax(scale, std::fabs(v));
  const int c = s.in_channels, h = s.in_h, wd = s.in_w;
  for (int n = 0; n < s.batch; ++n)
    for (int k = 0; k < s.out_channels; ++k)
      for (int oh = 0; oh < s.out_h(); ++oh)
        for (int ow = 0; ow < s.out_w(); ++ow) {
          double sum = bias[k];
          for (int ch = 0; ch < c; ++ch)
            for (int r = 0; r < s.kernel_h; ++r)
              for (int q = 0; q < s.kernel_w; ++q) {
                const int ih = oh * s.stride_h - s.pad_h + r, iw = ow * s.stride_w - s.pad_w + q;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                sum += static_cast<double>(w[((static_cast<std::size_t>(k) * c + ch) * s.kernel_h + r) * s.kernel_w + q]) *
                       x[((static_cast<std::size_t>(n) * c + ch) * h + ih) * wd + iw];
              }
          const std::size_t at = ((static_cast<std::size_t>(n) * s.out_channels + k) * s.out_h() + oh) * s.out_w() + ow;
          worst = std::fmax(worst, std::fabs(y[at] - sum) / scale);
        }
  return worst;
}

void check_stem(const Conv2dShape& s, int threads) {
#ifdef _OPENMP
  omp_set_num_threads(threads);
#else
  (void)threads;
#endif
  Rng rng(static_cast<std::uint64_t>(s.in_h * 131 + s.kernel_w));
  const int c = s.in_channels, h = s.in_h, w = s.in_w;
  const std::size_t count = static_cast<std::size_t>(s.batch) * h * w * c;
  GuardedBytes guarded(count);
  std::uint8_t* bytes = guarded.data;
  for (std::size_t i = 0; i < count; ++i) bytes[i] = static_cast<std::uint8_t>(rng.below(256));
  std::vector<float> floats(count);  // N×C×H×W, as cropToTensor writes it
  for (int n = 0; n < s.batch; ++n)
    for (int ch = 0; ch < c; ++ch)
      for (int p = 0; p < h * w; ++p)
        floats[(static_cast<std::size_t>(n) * c + ch) * h * w + p] =
            static_cast<float>((bytes[(static_cast<std::size_t>(n) * h * w + p) * c + ch] / 255.0 - kMean[ch]) / kStd[ch]);
  std::vector<float> weights(static_cast<std::size_t>(s.out_channels) * s.patch_size()), bias(s.out_channels);
  for (auto& v : weights) v = static_cast<float>(rng.uniform());
  for (auto& v : bias) v = static_cast<float>(rng.uniform());
  const std::size_t outputs = static_cast<std::size_t>(s.batch) * s.out_channels * s.out_plane();
  std::vector<float> dy(outputs);
  for (auto& v : dy) v = static_cast<float>(rng.uniform());
  const U8Images images{bytes, kMean, kStd};

  std::vector<float> y_u8(outputs, NAN), y_float(outputs, NAN);
  conv2d_forward(s, images, weights.data(), bias.data(), y_u8.data());
  conv2d_forward(s, floats.data(), weights.data(), bias.data(), y_float.data());
  CHECK(same_bits(y_u8, y_float));
  CHECK(worst_forward_error(s, floats, weights, bias, y_u8) < 1e-5);

  std::vector<float> dw_u8(weights.size(), NAN), dw_float(weights.size(), NAN), db_u8(bias.size(), NAN), db_float(bias.size(), NAN);
  conv2d_backward_weights(s, images, dy.data(), dw_u8.data(), db_u8.data());
  conv2d_backward_weights(s, floats.data(), dy.data(), dw_float.data(), db_float.data());
  CHECK(same_bits(dw_u8, dw_float));
  CHECK(same_bits(db_u8, db_float));
}

}  // namespace

void test_u8_stem() {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
#endif
  // batch, channels, in_h, in_w, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w
  const Conv2dShape shapes[] = {
      {3, 3, 67, 61, 96, 11, 11, 4, 4, 2, 2},
      {3, 3, 33, 29, 32, 3, 3, 1, 1, 1, 1},
      {4, 3, 41, 37, 24, 5, 4, 2, 3, 2, 1},
  };
  for (const Conv2dShape& s : shapes)
    for (int threads : {1, 2}) check_stem(s, threads);
#ifdef _OPENMP
  omp_set_num_threads(saved);
#endif
}

}  // namespace kernels_test
