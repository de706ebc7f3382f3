// Proof that ASan sees through the emulator (build-and-run.sh, asan variant): a write through a raw
// pointer one past a shared array lands in the arena's poisoned gap, and a read past an array on
// a fiber's stack after the fiber was switched out and back is a stack-buffer-overflow. Each run
// must die with ASan's report; a run that prints "no report" fails the script.
//   asan_detects shared | asan_detects stack
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "nincc/device/primitives.cuh"

NINCC_KERNEL void raw_shared_overrun(float* out) {
  NINCC_SHARED(float, tile, 64);
  float* p = tile;                  // a raw pointer: the checked index does not see this
  p[threadIdx.x + 1] = 1.0f;        // thread 63 writes one past the end
  __syncthreads();
  out[threadIdx.x] = p[threadIdx.x];
}

NINCC_KERNEL void stack_overrun(float* out, int i) {
  volatile float local[8];
  for (int k = 0; k < 8; ++k) local[k] = float(k);
  __syncthreads();                   // the fiber is switched out and back with its frame live
  volatile float* p = local;         // through a pointer, so UBSan's bounds check stays out of it
  out[threadIdx.x] = p[i];           // i = 8: past the end of a fiber-stack array
}

int main(int argc, char** argv) {
  float out[64];
  if (argc > 1 && !std::strcmp(argv[1], "stack"))
    nincc::emu::launch("stack_overrun", dim3(1), dim3(64), 0, &stack_overrun, out, 8);
  else
    nincc::emu::launch("raw_shared_overrun", dim3(1), dim3(64), 0, &raw_shared_overrun, out);
  std::puts("no report");
}
