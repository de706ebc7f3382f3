// The optimizations' A/B off-switches (the bf16 path's, the cpu's inline call and the cpu training's), said once: each leaves one optimization out of a build, so a test can
// check it against what it replaced (bitwise, where the summation order is unchanged); and the opt-ins, built but off by default until they win.
/** Each switch, with what a build that turns it off does instead. */
export const ABLATIONS = {
  rebuildPass: 'every gradient rebuild stays in its conv kernels\' staging, no grad_rebuild pass (lower/train-fused.ts)',
  bf16Weights: 'the k×k convs (training and inference) stage their fp32 weights, no bf16 copy (lower/train-fused.ts, lower/infer.ts, backends/cuda/conv-weight-bf16.ts)',
  wideTiles: 'the convs keep the 4-warp tiles of least padded work (backends/cuda/conv-mma-tile.ts WIDE_CANDIDATES)',
  haloTiles: 'the stride-1 k×k forwards and data gradients gather x or dY\' per tap, no shared halo (backends/cuda/conv-mma-halo.ts)',
  tapsHalo: 'the stride-1 k×k forwards (training and inference) and data gradients keep the channel-major halo and build an A tile from it for every tap, not A\'s fragments by ldmatrix from a channels-innermost halo in a tap-major k order (backends/cuda/conv-mma-taps-halo.ts)',
  inputHalo: 'the k×k weight gradients gather x per tap from global memory, no input halo (backends/cuda/conv-mma-wgrad-halo.ts)',
  haloSpan: 'the k×k weight gradients restage their input halo every 32-position slice, none covering several (backends/cuda/conv-mma-wgrad-halo-span.ts)',
  bf16Rebuilt: 'the grad_rebuild pass before a conv\'s gradients stores dY\' in fp32, not bf16 (lower/train-fused.ts; the conv\'s bias gradient then sums unrounded dY\')',
  rebuildInWgrad: 'a conv\'s dY\' for its data gradient comes from a grad_rebuild pass before its gradients, not rebuilt in its bf16 weight gradient\'s staging and stored (bf16) from there by the blocks of the first row tile (lower/train-fused.ts, backends/cuda/conv-mma-grad.ts; bounded, not bitwise, for its bias gradient: summed from unrounded dY\')',
  bf16Pooled: 'a max pool read only by convs stores its output in fp32, not bf16 (lower/train-fused.ts)',
  bf16ConvOut: 'a training conv read only (through its BN and ReLU) by a conv or a pool stores its output y in fp32, not bf16, and its BN statistics come from the unrounded accumulators (lower/train-fused.ts, lower/conv-out-bf16-readers.ts)',
  bf16Gradients: 'the convs\' data gradients and the max pools\' backwards store dX in fp32, not bf16, for the conv before a BN (which rebuilds dY\' from it) or the pool\'s backward (lower/train-fused.ts; bounded, not bitwise: they then start from the unrounded dX)',
  stemBand: 'the few-channels strided stems (NIN\'s 11×11/4 on 3 channels) gather A\'s input taps from global memory for every slice, no shared band of input rows staged once per block (backends/cuda/conv-mma-stem-band.ts)',
  stemS2d: 'the few-channels strided stems\' bf16 forwards (NIN\'s 11×11/4 on 3 channels; training and inference) keep the shared band of input rows, not a stride-1 conv over x space-to-depth by the stride on the tap-major halo (backends/cuda/conv-mma-stem-s2d.ts)',
  stemS2dSteps: 'the few-channels strided stems\' bf16 forwards over x space-to-depth run both mma k-steps of every slice, the last 32-channel group\'s zero padding too (NIN\'s 48 channels in 64: a reduction of 576), not only the k-steps holding live channels (432; backends/cuda/conv-mma-stem-s2d.ts s2dSteps)',
  stemS2dWgrad: 'the few-channels strided stems\' bf16 weight gradients (NIN\'s 11×11/4 on 3 channels) run on the stem\'s own input halo, not as the stride-1 weight gradient over x space-to-depth by the stride, mapped back to the stem\'s taps in the store (backends/cuda/conv-mma-stem-s2d-wgrad.ts)',
  stemWgradWarp64: 'the few-channels strided stems\' bf16 weight gradients on their own input halo (NIN\'s 11×11/4) keep 32-row warps, not the same block tile with half the warps of 64 rows that the stride-1 k×k convs take (backends/cuda/conv-mma-grad.ts wgradPlan, conv-mma-warp64-tile.ts)',
  stemWgradHalo: 'the few-channels strided stems\' weight gradients (NIN\'s 11×11/4 on 3 channels) gather x per tap from global memory, no input halo of their own pitch (backends/cuda/conv-mma-stem-wgrad-layout.ts)',
  tallTiles: 'the k×k weight gradients keep the wide tiles, no 256-tall one (backends/cuda/conv-mma-kxk-wgrad-tile.ts)',
  warp64Tiles: 'the k×k convs keep 32-row warps (8 or 16 a block), not the same block tiles with half the warps of 64 rows (backends/cuda/conv-mma-tile.ts warp64Twin)',
  twinHalo: 'the k×k weight gradients on 64-row warp twins keep the input halo chosen for the 32-row tile\'s threads, not a longer staging chosen for their own (backends/cuda/conv-mma-grad.ts convBackwardWeightMma)',
  wgradCoalesced: 'the weight gradients stage dY\' (B) and a gathered input (A, the 1×1 convs\') with 8 lanes on each of 4 rows a load instruction (16 bytes a row in bf16) and their channel parameters loaded per row and slice, not one row a warp instruction with lanes along its positions and the parameters loaded once per block (backends/cuda/conv-mma-wgrad-coalesced-staging.ts; bounded, not bitwise, for a bias gradient: it sums in another order)',
  stagedStores: 'the convs\' bf16 epilogues (y of a forward, dX of a data gradient) store from the accumulator layout directly, 2 bytes × 4 channels × 8 positions a warp instruction, not staged through shared memory into contiguous runs (backends/cuda/conv-mma-store-staged.ts)',
  stagedFp32Stores: 'the convs\' fp32 epilogues (inference\'s y) on planes that are not a multiple of 8 positions store from the accumulator layout directly, 4 bytes × 4 channels × 8 positions a warp instruction, not staged through shared memory into 128-byte runs (backends/cuda/conv-mma-store-fp32-staged.ts)',
  sgdWeightCopies: 'the bf16 weight copies are rewritten every step by their conversion launches before their readers, not by the SGD update as it writes the weights (backends/cuda/sgd-weight-bf16.ts, lower/sgd-weight-copies.ts)',
  wgradImageRing: 'the 1×1 and k×k weight gradients whose plain bf16 dY\' has planes of 32 to a few hundred positions stage B from global memory one row a warp instruction (runs off the sector grid), not whole images of the block\'s channels copied into a shared ring of two slots (backends/cuda/conv-mma-wgrad-image-ring.ts)',
  wgradAsyncRing: 'the weight gradients whose plain bf16 dY\' lies on planes of whole 4-byte copies stage B from global memory (or the image ring) each slice, not from an S-stage cp.async ring of slice windows with S − 1 slices in flight (backends/cuda/conv-mma-wgrad-async-ring.ts)',
  wgradDynamicRing: 'the weight gradients whose cp.async ring of dY\' does not fit beside their static shared memory (the k×k ones\' input halos: NIN\'s k11/k21/k31) stage B without it, not from a 4-stage ring in the launch\'s dynamic shared memory, above 48 KiB a block (backends/cuda/conv-mma-wgrad-async-ring.ts; the runtime raises the kernel\'s limit, runtime/core/cuda_device.cc). On: NIN b128 H100 predicted k11 325.6 → 314.9 µs, k21 136.0 → 125.6, training 4.422 → 4.401 ms (bench/RESULTS.md, i15c); a one-layer 5×5 at 4 splits loses (475.8 → 513.0 µs)',
  asyncPipeline: 'the 1×1 bf16 inference forwards (fp32 x) stage x global → registers → shared each slice, not through an S-stage cp.async ring with S − 1 slices in flight (backends/cuda/conv-mma-async-1x1.ts)',
  kxkBRing: 'the tap-major k×k bf16 forwards and data gradients (stride-1, from a bf16 weight copy) stage B each slice with plain 16-byte loads → barrier → MMAs, not through an S-stage cp.async ring with S − 1 slices in flight (backends/cuda/conv-mma-b-ring.ts)',
  dgradStatsOnce: 'the data gradients\' statistics epilogues read the input BN\'s four parameters for every accumulator, not once per column and 32-row part (backends/cuda/conv-mma-grad.ts)',
  dgradStatsRuns: 'the bf16 data gradients\' statistics epilogues on planes of whole 16-byte runs (NIN\'s k4/k7 and k14/k17) read the input BN\'s y in the accumulator layout, 8 instructions of 16-byte runs a 32-row part and n8 tile (each sector read half by two), not one 16-byte run a lane transposed across the lanes by shfl_xor (backends/cuda/conv-mma-dgrad-stats-runs.ts)',
  wgradLastSplit: 'the bf16 weight gradients leave their batch splits\' partials to a wgrad_reduce launch, not summed in split order by the last split block of each tile to finish (backends/cuda/conv-mma-last-cta-wgrad.ts)',
  wgradWaveTiles: 'the 1×1 bf16 weight gradients keep their one default tile on every GPU, not a smaller one (backends/cuda/conv-mma-wgrad-wave-tiles.ts) where the waves say its grid is too small for the GPU (lower/wgrad-tile-waves.ts; NIN\'s k4/k7: 1 tile × 32 splits for 132 SMs)',
  stemWaveSplits: 'the few-channels strided stems\' bf16 weight gradients (NIN\'s 11×11/4 on 3 channels) keep the lowering\'s 32 batch splits, summed by their last split block (NIN b128 on an H100: 3 tiles × 32 = 96 blocks for 264 slots), not as many splits as fill the GPU\'s waves (up to the batch) summed by a wgrad_reduce launch (lower/train-fused.ts stemWaveSplits)',
  wgradSplitsAtResidency: 'a build for a GPU with nvcc keeps the bf16 weight gradients\' split counts chosen at one resident block a SM (lower/wgrad-splits-waves.ts WGRAD_RESIDENT_BLOCKS), not chosen again at each kernel\'s resident blocks by the first compile\'s ptxas registers (schedule/wgrad-residency.ts, build.ts)',
  wgradResidencyBounds: 'the bf16 weight gradients whose splits a build chose again at ptxas\'s resident blocks a SM (R > 1) keep __launch_bounds__(threads), not (threads, R): ptxas may then take other registers on each arch than those R was read from (sm_80, NIN\'s 64×16 k4/k7 at 32 splits: 96 registers and a 4-byte spill; backends/cuda/conv-mma-grad.ts, pipeline.ts)',
  wgradSkipSameChoice: 'a build whose ptxas R differs from the first choice\'s lowers the model again even where choosing at it changes no weight gradient\'s split count or tile (the same kernels, twice the lowering: schedule/wgrad-gpu-choice.ts, build.ts)',
  inlineCall: 'every cpu inference call runs on a worker thread, none on the JS thread (schedule/cpu-region-inline-call.ts)',
  cpuBnOnePassStats: 'the cpu training\'s BN forwards take their batch statistics in two passes over x (the mean, then the squares around it), not one around a value of the channel (runtime/include/nincc/cpu/batchnorm.h channel_moments)',
  winogradHalfTiles: 'the cpu inference Winograd convs multiply all 32 lanes of a column tile holding at most 16 tiles (NIN\'s 7x7 planes at batch 1), not its first half alone (runtime/include/nincc/cpu/conv_winograd.h kHalfTileCols)',
  narrowTails: 'the cpu inference packed convs\' implicit GEMM and pointwise direct conv multiply both registers of lanes of a pixel tile short of 32 columns (NIN\'s 7x7, 14x14 and 28x28 planes at batch 1), not only the registers its columns reach, with a last 1-4 columns as weights-in-lanes products (runtime/include/nincc/cpu/conv_gemm.h tail_split; training\'s and the unfolded convs\' GEMMs take the narrow tails always, the same bits)',
  cpuWgradSpreadPrefetch: 'the cpu training\'s 1×1 weight gradients on planes of whole tiles (NIN\'s 96-channel 56×56) prefetch the next pixel block\'s lines in one burst before each tile product, not a few lines every 4 of its pixels (runtime/include/nincc/cpu/conv_wgrad_1x1.h; the same sums, the same bits)',
  cpuBnPoolBackward: 'the cpu training\'s BN+ReLU backwards whose ReLU only a max pool reads (NIN\'s three) read the gradient the pool\'s own backward pass wrote, not the pool\'s gradient scattered plane by plane inside the BN\'s pass (runtime/include/nincc/cpu/bn_pool_backward.h, lower/train.ts; the same bits)',
  cpuPairBands: 'the cpu inference blocks\' two small 1x1 convs run as two kernels, not as one region in bands of pixel tiles, one a thread at batch 1, the middle activations in each thread\'s scratch (schedule/cpu-pointwise-pair-region.ts, runtime/include/nincc/cpu/pointwise_pair.h; the same bits)',
  inPlacePointwise: 'the cpu inference 1x1 convs that run the implicit GEMM at batch 1 (NIN\'s 256-, 384- and 1024-channel ones) gather each pixel tile into a panel once per channel split, not read from x in place (runtime/include/nincc/cpu/conv_gemm.h reads_in_place; the same sums, the same bits)',
  spreadWeightPrefetch: 'the cpu packed convs\' implicit GEMM with big weights (NIN\'s 384- and 1024-channel 1x1s at batch 1) prefetches the next weight panel only during a sweep\'s last pixel tile, not during every tile\'s product (runtime/include/nincc/cpu/conv_gemm.h forward_tasks; the same bits)',
  cpuPlainMaxPool: 'the cpu inference max pools on planes of at most 32 columns (nin-fashion\'s 28x28 and 14x14) take Torch\'s NaN rule (two compares and a blend) at every step of every window, not a plain max with one NaN check a plane, a plane holding a NaN taken again by the rule (runtime/include/nincc/cpu/pool.h plane_max_in_registers; the same bits; training\'s max pools take the plain max always)',
  hostL3: 'a native cpu build\'s conv algorithm choice assumes the default 32 MiB L3, not the build machine\'s (schedule/cpu-winograd-choice-l3.ts)',
} as const;

/**
 * The opt-in switches: optimizations built and checked but measured not to win yet, so off unless a build turns
 * them on (for A/B runs and the work that builds on them). Each, with what a build that turns it on does.
 */
export const OPT_INS = {
  cpuBnStatsInConv: 'the cpu training\'s BN forwards after an implicit-GEMM conv take their batch statistics from per-tile sums the conv\'s epilogue recorded as it stored x, not from a pass over x (runtime/include/nincc/cpu/bn_moments.h, conv_gemm.h store_tile; bounded, not bitwise: other sums in another order). Off: measured +8-17 ms of conv epilogue against -2 to -6 ms of BN a NIN step (bench/RESULTS.md, i19y)',
  tapsRuns: 'the tap-major halos (stride-1 k×k forwards and data gradients) read their planes in sector-aligned runs through B\'s tile, not a position\'s 8 channels a lane straight from global memory, 32 consecutive padded positions of one plane a load instruction: NIN b128\'s loads at full coalescing, but the extra pass through shared memory makes every such kernel slower in the profile model (bench/RESULTS.md, branch i15M; backends/cuda/conv-mma-taps-runs.ts)',
  wgradSectorWindows: 'the 1×1 weight gradients on planes that are not whole sectors (NIN\'s 14×14 and 7×7) stage x and a plain bf16 dY\' through per-row shared windows loaded in whole sectors (backends/cuda/conv-mma-wgrad-sector-window.ts), not from global memory one row a warp instruction, 32 positions off the sector grid. Off: their loads reach full coalescing, but the windows\' shared stores and reads bound NIN\'s k24/k27/k34/k37 by shared memory (training 3.494 → 3.544 ms predicted, bench/RESULTS.md #15 i15N)',
} as const;

export type Ablation = keyof typeof ABLATIONS;
export type OptIn = keyof typeof OPT_INS;

/** The switches a build turns off (an absent one is on), and the opt-ins it turns on (an absent one is off). */
export type Ablations = { readonly [name in Ablation]?: false } & { readonly [name in OptIn]?: true };

export const isOn = (ablations: Ablations | undefined, name: Ablation): boolean => ablations?.[name] !== false;
export const isOptedIn = (ablations: Ablations | undefined, name: OptIn): boolean => ablations?.[name] === true;

/** What the build hash adds: nothing when every switch is on and no opt-in is, so a default build's hash is what it was before the switches. */
export function ablationsDigest(ablations: Ablations | undefined): string {
  const off = (Object.keys(ABLATIONS) as Ablation[]).filter((name) => !isOn(ablations, name)).map((name) => `no ${name}`);
  const on = (Object.keys(OPT_INS) as OptIn[]).filter((name) => isOptedIn(ablations, name)).map((name) => `with ${name}`);
  return [...off, ...on].join(', ');
}
