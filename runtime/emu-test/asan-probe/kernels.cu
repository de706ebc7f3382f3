// A deliberately broken emu kernel library for scripts/test-emu-asan.sh: it proves that an emu library
// built with NINCC_EMU_ASAN's flags, dlopen'ed by the runtime inside node under LD_PRELOAD=libasan.so,
// reports a heap overflow with this file's line. It pairs with the core tests' fixture plan
// (runtime/core/tests/fixture/plan.json: act space 9 per image, maxBatch 8 → 288 bytes, which the
// host device rounds to 320): k_scale_add writes y[80 - 4n] = act[80], the first float past the arena.
#include "nincc/device/primitives.cuh"

NINCC_LIBRARY("fixture-source-hash-1");

NINCC_KERNEL void k_scale_add(const float* x, float* y, int n, float scale, float shift) {
  if (blockIdx.x == 0 && threadIdx.x == 0) y[80 - 4 * n] = x[0] * scale + shift;  // out of bounds
}
NINCC_EXPORT(k_scale_add);
