// What the bf16 storage tests read of a build's lowering: a spec compiled for emu (no native build), its training
// program, and whether a step reads a buffer (test/bf16-storage-rebuilt.test.ts, test/bwd-traffic-bf16-gradients.test.ts).
import type { Ablations } from '../../compiler/ablations.js';
import { compileModel, compileSpec, type Compiled } from '../../compiler/pipeline.js';
import { opBuffers } from '../../compiler/lower/ops.js';
import type { KernelStep } from '../../compiler/lower/program-ir.js';

export function shaped(source: string, file: string) {
  const r = compileSpec(source, file);
  if (!r.model) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return r.model;
}

/** `source` compiled for emu at batch 4 (sources only), with the ablations given. */
export const compile = (source: string, file: string, precision: 'fp32' | 'bf16', ablations?: Ablations): Compiled =>
  compileModel(shaped(source, file), { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision, ...(ablations ? { ablations } : {}) });

export const training = (c: Compiled) => {
  const p = c.lowered.programs.find((q) => q.name === 'train_forward_backward');
  if (!p) throw new Error('no training program');
  return p;
};

/** Whether step `s` reads buffer `id` (an in or inout argument). */
export const reads = (s: KernelStep, id: string) => opBuffers(s.op, s.consts).some((b) => b.dir !== 'out' && s.buffers[b.name] === id);
