// `nincc tune --predict GPU`'s timer: each variant (an emu bf16 artifact, tune-variants.ts) timed by the profile
// model's per-kernel prediction for the GPU (run-profile.ts), the launches of inference and training summed per kernel.
import type { KernelTimes } from '../../compiler/tune/tune-choose.js';
import type { GpuSpec } from './gpus.js';
import { profileArtifact } from './run-profile.js';
import type { VariantTimer } from './tune-variants.js';

/** `key`: the --predict name tune.json files the choices under; `sample`: blocks run per class of each launch (0: all). */
export function predictedTimer(key: string, gpu: GpuSpec, sample: number): VariantTimer {
  return {
    key,
    how: 'predicted',
    target: 'emu',
    // A prediction has no noise: the faster variant wins by any amount.
    margin: 0,
    async time(dir: string, batch: number): Promise<KernelTimes> {
      const r = await profileArtifact(dir, { gpu, batch, sample });
      const out = new Map<string, number>();
      for (const k of r.kernels) out.set(k.kernel, (out.get(k.kernel) ?? 0) + k.prediction.micros);
      return out;
    },
  };
}
