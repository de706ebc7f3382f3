// The "last block to finish reduces" pattern that folds a finalize kernel into its producer
// (issue #15): each block writes its per-channel partials, fences, takes an integer ticket, and
// the block that takes the last ticket sums every block's partials in block order — so the sums are
// bitwise those of a separate finalize kernel, whatever order the blocks ran in.
#include "nincc/device/primitives.cuh"

// partials[b·channels + c] = Σ x[r·channels + c] over block b's rows; then the last block writes
// sums[c] = Σ_b partials[b·channels + c] in b order. `ticket` is 0 before a launch and, after a launch
// that ran to the end, 0 again (atomicInc wraps), so back-to-back launches need no reset; a launch
// cut short leaves it nonzero and the host must zero it (test_glue_fold.cc shows both). The block
// `interrupt_block` (−1: none) faults before its ticket, standing for a step interrupted mid-way.
NINCC_KERNEL void glue_fold_channel_sums(const float* x, int rows, int channels, int rows_per_block, float* partials,
                                         unsigned* ticket, float* sums, int interrupt_block) {
  NINCC_SHARED(unsigned, took_last_ticket, 1);
  const int t = int(threadIdx.x), threads = int(blockDim.x), b = int(blockIdx.x), blocks = int(gridDim.x);
  const int begin = b * rows_per_block, end = min(rows, begin + rows_per_block);
  for (int c = t; c < channels; c += threads) {
    float s = 0.0f;
    for (int r = begin; r < end; ++r) s += x[r * channels + c];
    partials[b * channels + c] = s;
  }
  if (b == interrupt_block && t == 1) return;  // leaves the barrier below: the emulator faults the launch
  // Each writer's partials reach L2 before its block's ticket; the barrier makes thread 0's ticket
  // come after every thread's fence.
  __threadfence();
  __syncthreads();
  if (t == 0) took_last_ticket[0] = atomicInc(ticket, unsigned(blocks - 1)) == unsigned(blocks - 1);
  __syncthreads();
  if (!took_last_ticket[0]) return;
  // Volatile: other blocks' partials, read past any stale L1 line (L1 is not coherent on a GPU).
  const volatile float* all = partials;
  for (int c = t; c < channels; c += threads) {
    float s = 0.0f;
    for (int i = 0; i < blocks; ++i) s += all[i * channels + c];
    sums[c] = s;
  }
}
NINCC_EXPORT(glue_fold_channel_sums);

// Every thread adds 1 to `count` `repeats` times (by atomicInc with no wrap when `with_inc`): atomics across
// blocks that run on several OS threads at once, many per thread so that the OS threads overlap often.
NINCC_KERNEL void glue_fold_count_threads(unsigned* count, int with_inc, int repeats) {
  for (int i = 0; i < repeats; ++i) {
    if (with_inc)
      atomicInc(count, 0xffffffffu);
    else
      atomicAdd(count, 1u);
  }
}
NINCC_EXPORT(glue_fold_count_threads);

// One thread applies atomicInc(counter, limit) `steps` times, writing each old value: the wrap rule.
NINCC_KERNEL void glue_fold_inc_sequence(unsigned* counter, unsigned limit, int steps, unsigned* olds) {
  for (int i = 0; i < steps; ++i) olds[i] = atomicInc(counter, limit);
}
NINCC_EXPORT(glue_fold_inc_sequence);

// The weight gradient's shape of the pattern (conv-mma-last-cta-wgrad.ts), with counted accesses: block (tile, 0,
// split) stores its split's `width` partials of tile `tile` (x scaled), fences and takes the tile's ticket; the
// tile's last split sums the splits' partials in split order into sums[tile·width + c]. The profile's test of a
// sampled launch (test_glue_fold.cc) needs the tail's loads and stores counted, as the generated kernels' are.
NINCC_KERNEL void glue_fold_tile_splits(const float* x, int width, float* partials, unsigned* tickets, float* sums) {
  NINCC_SHARED(unsigned, took_last_ticket, 1);
  const int t = int(threadIdx.x), tile = int(blockIdx.x), split = int(blockIdx.z);
  const int tiles = int(gridDim.x), splits = int(gridDim.z);
  for (int c = t; c < width; c += int(blockDim.x))
    nincc::st(&partials[(split * tiles + tile) * width + c], 2.0f * nincc::ld(&x[(split * tiles + tile) * width + c]));
  __threadfence();
  __syncthreads();
  if (t == 0) took_last_ticket[0] = atomicInc(&tickets[tile], unsigned(splits - 1)) == unsigned(splits - 1);
  __syncthreads();
  if (!took_last_ticket[0]) return;
  for (int c = t; c < width; c += int(blockDim.x)) {
    float s = 0.0f;
    for (int sp = 0; sp < splits; ++sp) s += nincc::ldcg(&partials[(sp * tiles + tile) * width + c]);
    nincc::st(&sums[tile * width + c], s);
  }
}
NINCC_EXPORT(glue_fold_tile_splits);
