// A hand-written stand-in for a generated kernels.cpu.so, for the core tests and the addon smoke
// test: each kernel works on 4 floats per image, the layout of fixture/plan.json.
// Build: g++ -shared -fPIC -I runtime/include fixture_kernels.cc -o kernels.cpu.so
#include "nincc/abi.h"

// CMake builds a second copy with a wrong tag to test the ABI check.
#ifndef FIXTURE_ABI
#define FIXTURE_ABI NINCC_CPU_ABI
#endif

namespace {
constexpr int kPerImage = 4;
}

extern "C" {

const char* nincc_abi(void) { return FIXTURE_ABI; }
const char* nincc_source_hash(void) { return "fixture-source-hash-1"; }

// y = scale * x + shift. args: x, y (act, 4 per image); scalars: scale, shift.
void k_scale_add(const NinccArgs* a) {
  const float* x = static_cast<const float*>(a->ptr[0]);
  float* y = static_cast<float*>(a->ptr[1]);
  float scale = static_cast<float>(a->scalar[0]);
  float shift = static_cast<float>(a->scalar[1]);
  for (int i = 0; i < a->n * kPerImage; ++i) y[i] = scale * x[i] + shift;
}

// y[image][c] += bias[c]. args: y (act), bias (param, 4).
void k_add_bias(const NinccArgs* a) {
  float* y = static_cast<float*>(a->ptr[0]);
  const float* bias = static_cast<const float*>(a->ptr[1]);
  for (int i = 0; i < a->n * kPerImage; ++i) y[i] += bias[i % kPerImage];
}

// Records what the call passed: n, the seed's low and high words, and a call counter.
// args: record (fixed, 4 x i32).
void k_record(const NinccArgs* a) {
  int32_t* record = static_cast<int32_t*>(a->ptr[0]);
  record[0] = a->n;
  record[1] = static_cast<int32_t>(a->seed & 0xffffffffu);
  record[2] = static_cast<int32_t>(a->seed >> 32);
  record[3] += 1;
}

// labels[i] += 1. args: labels (act, 1 x i32 per image).
void k_next_label(const NinccArgs* a) {
  int32_t* labels = static_cast<int32_t*>(a->ptr[0]);
  for (int i = 0; i < a->n; ++i) labels[i] += 1;
}

// param -= lr * grad over 8 elements. args: param, grad; scalars: lr.
void k_sgd(const NinccArgs* a) {
  float* param = static_cast<float*>(a->ptr[0]);
  const float* grad = static_cast<const float*>(a->ptr[1]);
  float lr = static_cast<float>(a->scalar[0]);
  for (int i = 0; i < 8; ++i) param[i] -= lr * grad[i];
}

// The kernel table: the signatures of fixture/plan.json's steps.
namespace {
const NinccKernelArg kScaleAdd[] = {{"act", 4}, {"act", 4}};
const NinccKernelArg kAddBias[] = {{"act", 4}, {"param", 4}};
const NinccKernelArg kRecord[] = {{"fixed", 4}};
const NinccKernelArg kNextLabel[] = {{"act", 1}};
const NinccKernelArg kSgd[] = {{"param", 8}, {"grad", 8}};
const NinccKernelEntry kKernels[] = {
    {"k_scale_add", k_scale_add, 2, kScaleAdd, 2}, {"k_add_bias", k_add_bias, 2, kAddBias, 0},
    {"k_record", k_record, 1, kRecord, 0},         {"k_next_label", k_next_label, 1, kNextLabel, 0},
    {"k_sgd", k_sgd, 2, kSgd, 1},
};
}  // namespace

const NinccKernelEntry* nincc_kernels(int32_t* count) {
  *count = sizeof kKernels / sizeof kKernels[0];
  return kKernels;
}

}  // extern "C"
