// The folded bf16 weight gradients' (and a wave-split stem's: lower/train-fused.ts stemWaveSplits) resident blocks per SM on the build's GPU, from a first compile's ptxas
// registers and shared memory (runtime/profile/occupancy.ts, as the profile reads them): what build.ts's second
// split choice (compiler/lower/wgrad-splits-waves.ts) and report.txt read.
import type { GpuSpec } from '../../runtime/profile/gpus.js';
import { launchResidentBlocks } from '../../runtime/profile/occupancy.js';
import type { PtxasKernel } from '../backends/cuda/toolchain.js';
import type { Program } from '../lower/program-ir.js';
import type { ScheduledCudaKernel } from './cuda-launch.js';

export interface WgradResidency {
  readonly kernel: string;
  readonly registers: number;
  readonly residentBlocks: number;
}

/** Per layer (Torch index), each folded weight gradient's residency on `gpu` by its arch's ptxas line; a kernel ptxas did not list is left out. */
export function wgradResidency(programs: readonly Program[], kernels: readonly ScheduledCudaKernel[], ptxas: readonly PtxasKernel[], gpu: GpuSpec): Map<number, WgradResidency> {
  const launches = new Map(kernels.map((k) => [k.name, k.launch]));
  const out = new Map<number, WgradResidency>();
  for (const s of programs.find((p) => p.name === 'train_forward_backward')?.steps ?? []) {
    if (s.op !== 'conv_wgrad_fused' || !(s.consts.lastSplit || s.consts.waveSplits)) continue;
    const res = ptxas.find((p) => p.kernel === s.kernel && p.arch === gpu.arch);
    const launch = launches.get(s.kernel);
    if (!res || !launch) continue;
    out.set(s.layer, { kernel: s.kernel, registers: res.registers, residentBlocks: launchResidentBlocks(launch, res, gpu) });
  }
  return out;
}
