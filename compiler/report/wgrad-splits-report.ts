// report.txt's lines on the bf16 weight gradients' split counts: for which GPU they were chosen, at how many resident
// blocks a SM (R, by ptxas), the waves that makes, and what the choice does to dW's bits.
import { gpuNamed } from '../../runtime/profile/gpus.js';
import { gridBlocks, wavesOf } from '../../runtime/profile/waves.js';
import type { PtxasKernel } from '../backends/cuda/toolchain.js';
import { WGRAD_RESIDENT_BLOCKS } from '../lower/wgrad-splits-waves.js';
import type { Program } from '../lower/program-ir.js';
import type { ScheduledCudaKernel } from '../schedule/cuda-launch.js';
import { wgradResidency } from '../schedule/wgrad-residency.js';

/** The GPU a build chose its splits for, and the resident blocks per layer its choice used (build.ts: absent without nvcc). */
export interface WgradSplitsChoice {
  readonly gpu: string;
  readonly residentBlocks?: ReadonlyMap<number, number>;
}

export function wgradSplitsReport(programs: readonly Program[], choice: WgradSplitsChoice | undefined, kernels: readonly ScheduledCudaKernel[] = [], ptxas: readonly PtxasKernel[] = []): string[] {
  const train = programs.find((p) => p.name === 'train_forward_backward');
  const steps = (train?.steps ?? []).flatMap((s) => (s.op === 'conv_wgrad_fused' ? [s] : []));
  if (steps.length === 0) return [];
  if (choice === undefined) {
    return [
      'Weight-gradient splits (the defaults for no GPU: nincc build --gpu a100|h100|h200 chooses them for its SMs):',
      `  ${steps.map((s) => `${s.kernel} ${s.consts.splits}`).join(', ')}`,
      BITS,
    ];
  }
  const gpu = gpuNamed(choice.gpu);
  const built = wgradResidency(programs, kernels, ptxas, gpu);
  const launches = new Map(kernels.map((k) => [k.name, k.launch]));
  const line = (s: (typeof steps)[number]): string => {
    const count = `${s.kernel} ${plural(s.consts.splits, 'split')}`;
    if (!s.consts.lastSplit && !s.consts.waveSplits) return `${count} (the default: its splits are summed by a separate reduce, not chosen by GPU)`;
    const chosenAt = choice.residentBlocks?.get(s.layer) ?? WGRAD_RESIDENT_BLOCKS;
    const now = built.get(s.layer);
    const blocks = launches.get(s.kernel) ? gridBlocks(launches.get(s.kernel)!) : undefined;
    const waves = blocks !== undefined ? `, ${blocks} blocks in ${plural(wavesOf(blocks, gpu.sms, now?.residentBlocks ?? chosenAt), 'wave')}` : '';
    const r = now ? `R ${now.residentBlocks} (${gpu.arch} ${now.registers} registers)` : `R ${chosenAt} assumed (no ptxas report)`;
    const moved = now && now.residentBlocks !== chosenAt ? `; chosen at R ${chosenAt}` : '';
    const reduce = s.consts.waveSplits ? '; summed by a wgrad_reduce launch (lower/train-fused.ts stemWaveSplits)' : '';
    const tile = s.consts.waveTile !== undefined ? `; the smaller wave tile ${s.consts.waveTile} (lower/wgrad-tile-waves.ts)` : '';
    return `${count}: ${r}${waves}${moved}${tile}${reduce}`;
  };
  return [
    `Weight-gradient splits, chosen for ${choice.gpu} (fewest waves × slices a block at the kernel's resident blocks a SM, R, from a first compile's ptxas; compiler/lower/wgrad-splits-waves.ts; the folded bf16 ones and a wave-split stem only):`,
    ...steps.map((s) => `  ${line(s)}`),
    BITS,
  ];
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
const BITS = '  The splits fix the order dW is summed in: a build for another GPU (other counts) gives other low bits; one build is bitwise repeatable.';
