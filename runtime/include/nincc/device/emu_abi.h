/* The C ABI between the runtime's `emu` device and a kernel library built from generated .cu
 * source by g++ -DNINCC_EMU (docs/emu.md). Plain C, so runtime/core includes it without the
 * emulator. It mirrors the driver API the `cuda` device uses: a kernel is found by name and
 * launched with a grid, a block, dynamic shared bytes and cuLaunchKernel's `kernelParams` array,
 * so one routine in the runtime marshals parameters for both devices. */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What `nincc_abi()` of an emu library returns. */
#define NINCC_EMU_ABI "nincc-emu-1"

/* The order in which a launch runs its blocks. A correct kernel gives bitwise the same result in
 * every order; the tests run all of them. */
typedef enum NinccEmuBlockOrder {
  NINCC_EMU_FORWARD = 0,  /* linear block index 0, 1, 2, … (x fastest, as CUDA numbers blocks) */
  NINCC_EMU_REVERSE = 1,  /* last block first */
  NINCC_EMU_SHUFFLED = 2  /* a permutation drawn from `shuffle_seed` */
} NinccEmuBlockOrder;

typedef struct NinccEmuLaunch {
  uint32_t grid[3];              /* blocks in x, y, z */
  uint32_t block[3];             /* threads per block in x, y, z */
  uint32_t dynamic_shared_bytes; /* cuLaunchKernel's sharedMemBytes */
  uint32_t param_count;          /* entries of `params`; must equal the kernel's parameter count */
  int32_t block_order;           /* NinccEmuBlockOrder */
  uint32_t workers;              /* OS threads running blocks (each with its own fibers); 0 = 1 */
  uint64_t shuffle_seed;         /* for NINCC_EMU_SHUFFLED */
  int32_t reverse_threads;       /* nonzero: resume a block's threads last to first */
  char error[1024];              /* out: the fault, naming kernel, block and thread, when the
                                    launch returns nonzero; empty on success */
} NinccEmuLaunch;

/* One exported kernel: `nincc_emu_<kernel>` in the library (NINCC_EXPORT writes it). */
typedef struct NinccEmuKernel {
  const char* name;      /* the kernel's name, as cuModuleGetFunction knows it */
  /* One letter per parameter: p pointer, i int32, u uint32, l int64, L uint64, f float, d double.
   * The runtime checks its marshalling against it once, when it resolves the kernel. */
  const char* signature;
  /* Runs the whole grid on the calling thread (and `workers - 1` helpers) and returns when it is
   * done: 0 on success, nonzero with `launch->error` set. `params[i]` points to the value of
   * parameter i, exactly as cuLaunchKernel's kernelParams. Never throws. */
  int (*launch)(NinccEmuLaunch* launch, void* const* params);
} NinccEmuKernel;

#ifdef __cplusplus
}
#endif
