// What the bf16 storage tests read of a build's lowering: a spec compiled for emu (no native build), its training
// program, and whether a step reads a buffer (test/bf16-storage-rebuilt.test.ts, test/bwd-traffic-bf16-gradients.test.ts, test/conv-out-bf16-storage.test.ts).
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

/**
 * A bf16 buffer copied raw into a bf16 shared array that ldmatrix reads as MMA fragments (the weight gradients' dY'
 * ring with `wgradRingFragments`): bf16 is the operand's own type there, so nothing needs widening.
 */
export function fedToMma(text: string, copies: ReadonlyMap<string, readonly string[]>, name: string): boolean {
  const arrays = copies.get(name) ?? [];
  return arrays.length > 0 && new RegExp(`nincc::ldmatrix<\\d>\\(frag_\\w+\\[\\w+\\], &(${arrays.join('|')})\\[`).test(text);
}

/**
 * A generated kernel's text without the lines that copy a bf16 buffer as it is into a bf16 shared array (the weight
 * gradients' image ring, backends/cuda/conv-mma-wgrad-image-ring.ts; their cp.async ring, conv-mma-wgrad-async-ring.ts),
 * static or dynamic, and for each buffer so copied the shared arrays that stand for it after: a check that every load of a bf16 buffer widens it looks for those arrays' loads instead.
 */
export function withoutSharedBf16Copies(body: readonly string[]): { text: string; copies: Map<string, string[]> } {
  const lines = body.join('\n').split('\n');
  const shared = new Set([...lines.join('\n').matchAll(/NINCC_(?:DYNAMIC_)?SHARED\(nincc::bf16, (\w+)[,)]/g)].map((m) => m[1]));
  const copies = new Map<string, string[]>();
  const kept = lines.filter((line) => {
    const copy = /nincc::st\(&(\w+)\[.*nincc::ld\(&(\w+)\[/.exec(line) ?? /nincc::cp_async_(?:cg|ca<\d+>)\(&(\w+)\[.*\], (\w+) \+ /.exec(line);
    if (!copy || !shared.has(copy[1])) return true;
    copies.set(copy[2], [...(copies.get(copy[2]) ?? []), copy[1]]);
    return false;
  });
  return { text: kept.join('\n'), copies };
}
