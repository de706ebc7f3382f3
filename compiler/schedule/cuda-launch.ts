// Pass: schedule for the cuda/emu target — each kernel of the programs gets its CUDA body and launch
// geometry (grid, block, dynamic shared memory) once, before the plan is emitted: emit/plan.ts writes the
// launch rules into plan.json and backends/cuda/render.ts prints the same kernels. Tile sizes live with
// their kernel family (backends/cuda/conv.ts, parts.ts).
import type { PlanLaunch } from '../emit/plan.js';
import type { KernelStep, Program } from '../lower/program-ir.js';
import { cudaKernel, type CudaSchedule } from '../backends/cuda/kernels.js';

export interface ScheduledCudaKernel {
  readonly name: string;
  readonly comment: string;
  readonly fused: string; // what the kernel fuses, '' for a plain one
  readonly params: string;
  readonly body: readonly string[];
  readonly launch: PlanLaunch;
  readonly tile?: string; // the tile configuration the compiler chose, for report.txt (tensor-core kernels)
  readonly minBlocks?: number; // __launch_bounds__'s second argument (backends/cuda/parts.ts CudaKernel)
}

/**
 * The training programs of a cuda/emu build are the fused ones, which only the CUDA kernels implement:
 * the cpu library is built without them (pipeline.ts) and plan.json marks them cuda/emu only.
 */
export const CUDA_ONLY_PROGRAMS: readonly string[] = ['train_forward_backward', 'train_weight_copies', 'sgd_update'];

/** One scheduled kernel per distinct kernel name, in first-use order. */
export function scheduleCudaKernels(programs: readonly Program[], schedule: CudaSchedule): readonly ScheduledCudaKernel[] {
  const unique = new Map<string, KernelStep>();
  for (const p of programs) {
    for (const step of p.steps) {
      const seen = unique.get(step.kernel);
      if (seen && JSON.stringify([seen.op, seen.consts]) !== JSON.stringify([step.op, step.consts])) {
        throw new Error(`internal error: kernel ${step.kernel} is used with two different meanings`);
      }
      unique.set(step.kernel, step);
    }
  }
  return [...unique.values()].map((k) => {
    const g = cudaKernel(k, schedule);
    return { name: k.kernel, comment: k.comment, fused: g.fused ?? '', params: g.params, body: g.body, launch: g.launch, ...(g.tile ? { tile: g.tile } : {}), ...(g.minBlocks !== undefined ? { minBlocks: g.minBlocks } : {}) };
  });
}
