// The C ABI between the runtime and a generated kernel library (docs/artifact.md).
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct NinccArgs {
  int32_t n;             /* batch size of this call, 1..maxBatch */
  void* const* ptr;      /* one pointer per buffer reference in the step's args */
  const double* scalar;  /* one value per name in the step's scalars */
  uint64_t seed;         /* per-call seed (dropout masks) */
} NinccArgs;

typedef void (*NinccKernelFn)(const NinccArgs*);

#define NINCC_CPU_ABI "nincc-cpu-1"

#ifdef __cplusplus
}
#endif
