// nin-fashion's inference layers and NIN's 1x1 convs (BN-folded convs with packed weights, ReLU fused; its max pools, and NIN's first;
// its three 1x1 pairs as the pointwise_pair region runs them)
// through the kernel headers, as a shared library: nincc_layer_count/name/run. bench/cpu/layer-ab.cc
// loads two builds of it (before and after a header change) and times them call by call, alternately.
#include <cstdint>
#include <vector>

#include "nincc/cpu/kernels.h"

#include "bench-util.h"

using namespace nincc::cpu;
using nincc_bench::values;

namespace {

struct Conv {
  const char* name;
  int c, h, k, r, pad;
};
const Conv kConvs[] = {{"k1 5x5 1->32 28x28", 1, 28, 32, 5, 2},   {"k4 1x1 32->32 28x28", 32, 28, 32, 1, 0},
                       {"k11 3x3 32->64 14x14", 32, 14, 64, 3, 1}, {"k14 1x1 64->64 14x14", 64, 14, 64, 1, 0},
                       {"k21 3x3 64->128 7x7", 64, 7, 128, 3, 1},  {"k24 1x1 128->128 7x7", 128, 7, 128, 1, 0},
                       // NIN's 1x1 convs (at batch 1 their planes leave 0-15 lanes of the last pixel tile empty)
                       {"NIN k4 1x1 96->96 56x56", 96, 56, 96, 1, 0},  {"NIN k14 1x1 256 28x28", 256, 28, 256, 1, 0},
                       {"NIN k24 1x1 384 14x14", 384, 14, 384, 1, 0},  {"NIN k34 1x1 1024 7x7", 1024, 7, 1024, 1, 0}};
constexpr int kConvCount = sizeof kConvs / sizeof kConvs[0];
struct Pool {
  const char* name;
  int c, h;  // 3x3 windows, stride 2, pad 1
};
const Pool kPools[] = {{"maxpool 32x28x28", 32, 28}, {"maxpool 64x14x14", 64, 14}, {"NIN maxpool 96x56x56", 96, 56}};
constexpr int kPoolCount = sizeof kPools / sizeof kPools[0];
// Layers after the pools: the 3x3 convs under each Winograd variant, to set beside the GEMM rows
// (nincc's cost model picks F(2x2,3x3) for k11 and the implicit GEMM for k21).
struct Extra {
  const char* name;
  int conv;  // index into kConvs
  WinogradKind kind;
};
const Extra kExtras[] = {{"k11 as Winograd F2x3", 2, WinogradKind::F2x3}, {"k21 as Winograd F2x3", 4, WinogradKind::F2x3},
                         {"k11 as Winograd F4x3", 2, WinogradKind::F4x3}, {"k21 as Winograd F4x3", 4, WinogradKind::F4x3}};
constexpr int kExtraCount = sizeof kExtras / sizeof kExtras[0];
// nin-fashion's mlpconv 1x1 pairs (first conv kConvs[conv], the second K -> K on the same plane), as pointwise_pair_forward.
struct Pair {
  const char* name;
  int conv;  // index into kConvs
};
const Pair kPairs[] = {{"k4+k7 1x1 pair 32ch 28x28", 1}, {"k14+k17 1x1 pair 64ch 14x14", 3}, {"k24+k27 1x1 pair 128ch 7x7", 5}};
constexpr int kPairCount = sizeof kPairs / sizeof kPairs[0];
constexpr int kLayerCount = kConvCount + kPoolCount + kExtraCount + kPairCount;

// One layer's buffers at one batch, made on first use.
struct Buffers {
  int batch = -1;
  std::vector<float> x, packed, b, y, packed2, b2;
};

// A pair's run: both convs' weights packed, y = relu(w2 relu(w1 x + b1) + b2).
float run_pair(const Pair& pair, int batch, Buffers& bu) {
  const Conv& l = kConvs[pair.conv];
  const Conv2dShape s{batch, l.c, l.h, l.h, l.k, 1, 1, 1, 1, 0, 0};
  if (bu.batch != batch) {
    bu.batch = batch;
    bu.x = values(static_cast<std::size_t>(batch) * l.c * l.h * l.h, 2.f);
    const Conv2dShape first{1, l.c, l.h, l.h, l.k, 1, 1, 1, 1, 0, 0}, second{1, l.k, l.h, l.h, l.k, 1, 1, 1, 1, 0, 0};
    bu.packed.assign(packed_conv_weights_size(l.k, l.c), 0.f);
    bu.packed2.assign(packed_conv_weights_size(l.k, l.k), 0.f);
    pack_conv_weights(first, values(static_cast<std::size_t>(l.k) * l.c, 0.2f).data(), bu.packed.data());
    pack_conv_weights(second, values(static_cast<std::size_t>(l.k) * l.k, 0.3f).data(), bu.packed2.data());
    bu.b = values(l.k, 0.1f);
    bu.b2 = values(l.k, 0.2f);
    bu.y.assign(static_cast<std::size_t>(batch) * l.k * s.out_plane(), 0.f);
  }
  pointwise_pair_forward(s, bu.x.data(), bu.packed.data(), bu.b.data(), bu.packed2.data(), bu.b2.data(), bu.y.data());
  return bu.y[bu.y.size() / 2];
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int nincc_layer_count() { return kLayerCount; }
extern "C" __attribute__((visibility("default"))) const char* nincc_layer_name(int i) {
  return i < kConvCount                            ? kConvs[i].name
         : i < kConvCount + kPoolCount               ? kPools[i - kConvCount].name
         : i < kConvCount + kPoolCount + kExtraCount ? kExtras[i - kConvCount - kPoolCount].name
                                                     : kPairs[i - kConvCount - kPoolCount - kExtraCount].name;
}

// Runs layer i once at `batch`; returns a value of its output (so the call cannot be dropped).
extern "C" __attribute__((visibility("default"))) float nincc_layer_run(int i, int batch) {
  static Buffers buffers[kLayerCount];
  Buffers& bu = buffers[i];
  if (i >= kConvCount + kPoolCount + kExtraCount) return run_pair(kPairs[i - kConvCount - kPoolCount - kExtraCount], batch, bu);
  if (i < kConvCount || i >= kConvCount + kPoolCount) {
    const bool winograd = i >= kConvCount + kPoolCount;
    const Extra* extra = winograd ? &kExtras[i - kConvCount - kPoolCount] : nullptr;
    const Conv& l = kConvs[winograd ? extra->conv : i];
    const Conv2dShape s{batch, l.c, l.h, l.h, l.k, l.r, l.r, 1, 1, l.pad, l.pad};
    if (bu.batch != batch) {
      bu.batch = batch;
      bu.x = values(static_cast<std::size_t>(batch) * l.c * l.h * l.h, 2.f);
      const auto w = values(static_cast<std::size_t>(l.k) * s.patch_size(), 0.2f);
      bu.b = values(l.k, 0.1f);
      bu.y.assign(static_cast<std::size_t>(batch) * l.k * s.out_plane(), 0.f);
      const Conv2dShape one{1, l.c, l.h, l.h, l.k, l.r, l.r, 1, 1, l.pad, l.pad};
      bu.packed.assign(winograd ? winograd_weights_size(extra->kind, l.k, l.c) : packed_conv_weights_size(l.k, s.patch_size()), 0.f);
      if (winograd) pack_winograd_weights(extra->kind, one, w.data(), bu.packed.data());
      else pack_conv_weights(one, w.data(), bu.packed.data());
    }
    if (winograd) conv2d_forward_winograd(extra->kind, s, bu.x.data(), bu.packed.data(), bu.b.data(), bu.y.data(), true);
    else conv2d_forward(s, bu.x.data(), PackedConvWeights{bu.packed.data()}, bu.b.data(), bu.y.data(), true);
    return bu.y[bu.y.size() / 2];
  }
  const int c = kPools[i - kConvCount].c, h = kPools[i - kConvCount].h;
  const Pool2dShape s{batch, c, h, h, 3, 3, 2, 2, 1, 1};
  if (bu.batch != batch) {
    bu.batch = batch;
    bu.x = values(static_cast<std::size_t>(batch) * c * h * h, 2.f);
    bu.y.assign(static_cast<std::size_t>(s.planes() * s.out_plane()), 0.f);
  }
  maxpool_forward(s, bu.x.data(), bu.y.data(), nullptr);
  return bu.y[bu.y.size() / 2];
}
