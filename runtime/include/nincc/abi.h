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

#define NINCC_CPU_ABI "nincc-cpu-2"

/* A cpu library's table of its kernels and their signatures: the runtime calls only the functions this
   table lists, and only from a plan step whose arguments match (docs/artifact.md, "The kernel table"). */
typedef struct NinccKernelArg {
  const char* space;  /* "act", "param", …: the space of the buffer the kernel was generated for */
  int64_t size;       /* its elements (per image for act) */
} NinccKernelArg;

typedef struct NinccKernelEntry {
  const char* name;
  NinccKernelFn fn;
  int32_t argCount;
  const NinccKernelArg* args;
  int32_t scalarCount;
} NinccKernelEntry;

/* extern "C" const NinccKernelEntry* nincc_kernels(int32_t* count); */
typedef const NinccKernelEntry* (*NinccKernelTableFn)(int32_t* count);

/* Optional exports of a cpu kernel library (a batch-split program, plan.json `splitBatch`): how many
   threads its pool runs, and part(context, i) for every i in [0, count) on them, each part's kernels
   serial on the thread that took it. */
typedef int32_t (*NinccPartThreadsFn)(void);
typedef void (*NinccRunPartsFn)(int64_t count, void (*part)(void* context, int64_t i), void* context);
/* Optional: hold(1) before a program's steps, hold(0) after: the pool's workers stay awake in between. */
typedef void (*NinccHoldWorkersFn)(int32_t held);

/* What a cpu kernel library exports. It is built with hidden visibility and -Bsymbolic, so everything
   else in it (the kernel library's thread pool and other inline statics, and the standard-library
   templates instantiated over them) stays private to it: two artifacts loaded in one process, whatever
   nincc built them, never share or interpose each other's copies. */
#define NINCC_CPU_EXPORT extern "C" __attribute__((visibility("default")))

#ifdef __cplusplus
}
#endif
