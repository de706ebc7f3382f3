// report.txt's lines on the bf16 weight gradients' split counts: for which GPU they were chosen, and what that does to dW's bits.
import type { Program } from '../lower/program-ir.js';

export function wgradSplitsReport(programs: readonly Program[], gpu: string | undefined): string[] {
  const train = programs.find((p) => p.name === 'train_forward_backward');
  const steps = (train?.steps ?? []).flatMap((s) => (s.op === 'conv_wgrad_fused' ? [`${s.kernel} ${s.consts.splits}`] : []));
  if (steps.length === 0) return [];
  return [
    gpu !== undefined
      ? `Weight-gradient splits, chosen for ${gpu} (fewest waves × slices a block, compiler/lower/wgrad-splits-waves.ts; the folded bf16 ones only):`
      : 'Weight-gradient splits (the defaults for no GPU: nincc build --gpu a100|h100|h200 chooses them for its SMs):',
    `  ${steps.join(', ')}`,
    '  The splits fix the order dW is summed in: a build for another GPU (other counts) gives other low bits; one build is bitwise repeatable.',
  ];
}
