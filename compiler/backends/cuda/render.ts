// Pass: render — the scheduled CUDA kernels (compiler/schedule/cuda-launch.ts) → kernels.cu through the
// template beside this file. The same source runs on a GPU (nvcc) and on the SIMT emulator (g++ -DNINCC_EMU,
// the `emu` device). Rendering decides nothing: each kernel's body and launch were fixed by the schedule.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { NINCC_VERSION } from '../../emit/plan.js';
import { packageRoot } from '../../package-root.js';
import type { ScheduledCudaKernel } from '../../schedule/cuda-launch.js';

const templateText = readFileSync(join(packageRoot(), 'compiler/backends/cuda/kernels.cu.njk'), 'utf8');

const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: false });

export interface CudaSource {
  readonly text: string;
  readonly kernels: readonly string[];
  readonly fused: ReadonlyMap<string, string>; // kernel → what it fuses ('' for plain kernels)
}

export function generateCudaSource(scheduled: readonly ScheduledCudaKernel[], info: { model: string; file: string; sourceHash: string }): CudaSource {
  const kernels = scheduled.map((k) => {
    const l = k.launch;
    const grid = l.grid.map((d, axis) => (axis === l.batchAxis ? (d === 1 ? 'N' : `${d}·N`) : String(d)));
    const launchText = `grid (${grid.join(', ')}), block (${l.block.join(', ')}), ${l.shared} B dynamic shared`;
    return { name: k.name, comment: k.comment, fused: k.fused, params: k.params, body: k.body, launch: l, launchText, bounds: [l.block[0] * l.block[1] * l.block[2], ...(k.minBlocks !== undefined ? [k.minBlocks] : [])].join(', ') };
  });
  const text = env.renderString(templateText, { ...info, version: NINCC_VERSION, kernels });
  return { text, kernels: kernels.map((k) => k.name), fused: new Map(kernels.map((k) => [k.name, k.fused])) };
}
