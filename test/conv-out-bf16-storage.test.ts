// bf16 storage of a training conv's raw output y (issue #15; lower/train-fused.ts FusedTrainOptions.bf16ConvOut,
// lower/conv-out-bf16-readers.ts). A conv read through its BN and ReLU by one conv or pool rounds y to bf16 in its
// epilogue, takes its BN statistics from the rounded values, and stores it in half the bytes; each of y's readers
// (the next conv's forward and weight gradient as x, its data gradient's BN partials as e_y, a pool's forward and
// backward, the conv's own gradient rebuild as g_y) widens every load. In CI: the lowering (which convs, dtypes,
// sizes, each reader's flag) and the generated kernels' loads and stores; the values are checked on emu against
// float64 with the rounding in the reference (test/emu-conv-mma-grad.test.ts, test/emu-conv-mma-grad-bn.test.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { opBuffers } from '../compiler/lower/ops.js';
import type { KernelStep } from '../compiler/lower/program-ir.js';
import { fedToMma, withoutSharedBf16Copies } from './reference/bf16-storage-lowering.js';

function compile(source: string, file: string, precision: 'fp32' | 'bf16', ablations?: Ablations, input?: 'u8'): Compiled {
  const r = compileSpec(source, file);
  if (!r.model) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision, ...(ablations ? { ablations } : {}), ...(input ? { input } : {}) });
}

const training = (c: Compiled) => {
  const p = c.lowered.programs.find((q) => q.name === 'train_forward_backward');
  if (!p) throw new Error('no training program');
  return p;
};

/** The conv outputs a build stores in bf16, by layer index. */
const bf16ConvOutputs = (c: Compiled) =>
  training(c)
    .steps.filter((s) => s.op === 'conv_fwd_fused')
    .filter((s) => c.lowered.memory.buffers.find((b) => b.id === s.buffers.y)?.dtype === 'bf16')
    .map((s) => s.layer);

/** Each buffer step `s` reads or writes as `id`: its name in the step and its dtype by the op's contract. */
const uses = (s: KernelStep, id: string) =>
  opBuffers(s.op, s.consts)
    .filter((b) => s.buffers[b.name] === id)
    .map((b) => `${b.name}:${b.dtype}`);

const NIN = readFileSync('models/nin.model', 'utf8');
let ninBf16: Compiled | undefined;
/** nin.model's bf16 build, compiled once for the tests that read it (about a second). */
const ninBf16Compiled = () => (ninBf16 ??= compile(NIN, 'models/nin.model', 'bf16'));

describe('conv outputs stored in bf16 in the lowering', () => {
  it('nin.model bf16: all twelve convs store y in bf16, ⌈K·P·Q/2⌉ words an image, and every step that touches y takes it as bf16', () => {
    const c = ninBf16Compiled();
    const p = training(c);
    const decl = new Map(c.lowered.memory.buffers.map((b) => [b.id, b]));
    const forwards = p.steps.filter((s) => s.op === 'conv_fwd_fused');
    expect(bf16ConvOutputs(c)).toEqual([1, 4, 7, 11, 14, 17, 21, 24, 27, 31, 34, 37]);
    const next = (l: number) => (forwards.find((s) => s.layer > l)?.layer ?? 0);
    for (const s of forwards) {
      if (s.op !== 'conv_fwd_fused') continue;
      const y = s.buffers.y;
      expect(s.consts.yBf16, s.kernel).toBe(true);
      expect(s.consts.stats, s.kernel).toBe(true);
      expect(decl.get(y)?.size, s.kernel).toBe(Math.ceil((s.consts.K * s.consts.P * s.consts.Q) / 2));
      const touching = p.steps.filter((r) => uses(r, y).length > 0).map((r) => `${r.op}@${r.layer} ${uses(r, y).join(',')}`);
      // Read by the next conv (forward x, weight gradient x, data gradient's partials e_y) or, closing a block of
      // NIN, by its pool (forward x, backward e_y); the conv's own gradients rebuild dY' from it (g_y): by the
      // grad_rebuild pass (k×k layers, and 1×1 of 128 or more input channels) or, in its place, the weight gradient that
      // stores dY' for the data gradient (rebuildInWgrad), else in both gradient kernels.
      const l = s.layer;
      const pool = [10, 20, 30, 40].find((q) => q === l + 3);
      const readers = pool
        ? [`${pool === 40 ? 'avg' : 'max'}pool_fwd_fused@${pool} x:bf16`, `${pool === 40 ? 'avg' : 'max'}pool_bwd_fused@${pool} e_y:bf16`]
        : [`conv_fwd_fused@${next(l)} x:bf16`, `conv_wgrad_fused@${next(l)} x:bf16`, `conv_dgrad_fused@${next(l)} e_y:bf16`];
      const rebuilt = p.steps.some((r) => r.op === 'grad_rebuild' && r.layer === l);
      const storing = p.steps.some((r) => r.op === 'conv_wgrad_fused' && r.layer === l && r.consts.dyOut === true);
      const own = rebuilt ? [`grad_rebuild@${l} g_y:bf16`] : [`conv_wgrad_fused@${l} g_y:bf16`, ...(l > 1 && !storing ? [`conv_dgrad_fused@${l} g_y:bf16`] : [])];
      expect(touching.sort(), s.kernel).toEqual([`conv_fwd_fused@${l} y:bf16`, ...readers, ...own].sort());
    }
  });

  it('bf16ConvOut false and fp32: every conv output fp32, no step with a conv-output flag; otherwise the same steps', () => {
    const on = training(ninBf16Compiled());
    const offCompiled = compile(NIN, 'models/nin.model', 'bf16', { bf16ConvOut: false });
    const off = training(offCompiled);
    expect(bf16ConvOutputs(offCompiled)).toEqual([]);
    expect(off.steps.map((s) => `${s.op}@${s.layer}`)).toEqual(on.steps.map((s) => `${s.op}@${s.layer}`));
    const flags = ['yBf16', 'gyBf16', 'eyBf16'];
    expect(off.steps.filter((s) => flags.some((f) => f in s.consts) || (s.op !== 'conv_fwd_fused' && s.op !== 'conv_wgrad_fused' && 'xBf16' in s.consts)).map((s) => s.kernel)).toEqual([]);
    // Only the max pools' outputs are a conv's bf16 x then, as before the switch.
    expect(off.steps.filter((s) => 'xBf16' in s.consts).map((s) => `${s.op}@${s.layer}`)).toEqual(['conv_fwd_fused@11', 'conv_fwd_fused@21', 'conv_fwd_fused@31', 'conv_wgrad_fused@31', 'conv_wgrad_fused@21', 'conv_wgrad_fused@11']);
    expect(bf16ConvOutputs(compile(NIN, 'models/nin.model', 'fp32'))).toEqual([]);
  });

  it('which convs: read by one conv or pool through BN and ReLU, or plainly; not by a linear layer, two readers, a dropout, nor a uint8 stem', () => {
    const source = `model conv_out_bf16 {
  input 3x12x12
  conv(3, 8, 3, 3, 1, 1, 1, 1)  bn(8)  relu
  conv(8, 8, 3, 3, 1, 1, 1, 1)  relu
  conv(8, 8, 1, 1)
  conv(8, 8, 3, 3, 1, 1, 1, 1)  bn(8)  relu
  dropout(0.5)
  conv(8, 8, 1, 1)  bn(8)  relu
  avgpool(2, 2, 2, 2)
  conv(8, 4, 1, 1)  bn(4)  relu
  view(-1)  linear(144, 3)  logsoftmax
}
`;
    // positions: conv1 bn2 relu3 conv4 relu5 conv6 conv7 bn8 relu9 dropout10 conv11 bn12 relu13 avgpool14 conv15 …
    expect(bf16ConvOutputs(compile(source, 'conv_out_bf16.model', 'bf16'))).toEqual([1, 4, 6, 11]);
    expect(bf16ConvOutputs(compile(source, 'conv_out_bf16.model', 'bf16', undefined, 'u8'))).toEqual([4, 6, 11]);
    const fanned = `model fanned {
  input 3x8x8
  conv(3, 8, 3, 3, 1, 1, 1, 1)  bn(8)  relu
  concat {
    branch { conv(8, 4, 1, 1)  bn(4)  relu }
    branch { conv(8, 4, 1, 1)  bn(4)  relu }
  }
  view(-1)  linear(512, 3)  logsoftmax
}
`;
    expect(bf16ConvOutputs(compile(fanned, 'fanned.model', 'bf16'))).toEqual([]);
  });
});

/**
 * A data gradient's statistics epilogue reads e_y in 16-byte runs into registers, transposed across lanes
 * (conv-mma-dgrad-stats-runs.ts), and widens each value from there: the run's load, then its bf16 halves widened.
 */
const widenedFromRuns = (text: string, name: string) =>
  new RegExp(`nincc::ld\\(reinterpret_cast<const int4\\*>\\(&${name}\\[`).test(text) && text.includes('nincc::bf16_to_float(j % 2 ? nincc::high_bf16(ey[');

describe('the generated kernels', () => {
  it('nin.model: a conv storing y rounds it before its statistics and stores the rounded bf16; every kernel widens each load of each bf16 buffer it takes', () => {
    const cuda = ninBf16Compiled().cuda;
    if (!cuda) throw new Error('no cuda kernels');
    const forwards = cuda.kernels.filter((k) => /conv_fwd_fused/.test(k.name));
    expect(forwards.length).toBe(12);
    for (const k of forwards) {
      expect(k.params, k.name).toMatch(/ nincc::bf16\* y\b/);
      const text = k.body.join('\n');
      const rounding = text.indexOf('d = nincc::bf16_to_float(nincc::to_bf16(d));');
      expect(rounding, k.name).toBeGreaterThan(0);
      expect(text.indexOf('v[j] = d;'), `${k.name}: the statistics take the rounded value`).toBeGreaterThan(rounding);
      expect(text, k.name).toMatch(/nincc::st\((&y\[[^\n]*\], nincc::to_bf16\(d\)|&staged\[[^\n]*\], nincc::to_bf16x2\(d, keep\[j\]\)|&spans\[[^\n]*\], nincc::to_bf16\((rewrite \? mate : )?d\))\);/); // staged: conv-mma-store-staged.ts; spans: conv-mma-store-spans.ts
    }
    // Every bf16 buffer a kernel reads: never a raw load of it, nor of a pointer into it (the forward's
    // xi and the pool's src, which must then be bf16 pointers); a raw load of a bf16 pointer into a float
    // would not compile, so these are what the generator must write.
    let reads = 0;
    for (const k of cuda.kernels) {
      // A raw copy into a bf16 shared array (the image ring) is widened where the array is read.
      const { text, copies } = withoutSharedBf16Copies(k.body);
      for (const [, name] of k.params.matchAll(/const nincc::bf16\* (\w+)/g)) {
        const aliases = [...text.matchAll(new RegExp(`const (float|nincc::bf16)\\* (\\w+) = ${name} \\+`, 'g'))];
        for (const [, type, alias] of aliases) expect(type, `${k.name}: ${alias} points into bf16 ${name}`).toBe('nincc::bf16');
        for (const p of [name, ...aliases.map((a) => a[2])]) expect(text, `${k.name}: a raw load of bf16 ${p}`).not.toMatch(new RegExp(`[^(]nincc::ld\\(&${p}\\[`));
        const widened = new RegExp(`nincc::bf16_to_float\\(nincc::ld\\(&(${[name, ...aliases.map((a) => a[2]), ...(copies.get(name) ?? [])].join('|')})\\[`).test(text);
        expect(widened || widenedFromRuns(text, name) || fedToMma(text, copies, name), `${k.name} ${name}: each load widened`).toBe(true);
        reads += 1;
      }
    }
    // twelve conv outputs read by 3 kernels each besides their own gradients (1–2), the pools', dY' and the max pools' outputs
    expect(reads).toBeGreaterThan(60);
    const tapMajor = cuda.kernels.filter((k) => /tap-major/.test(k.fused) && /const nincc::bf16\* x\b/.test(k.params));
    expect(tapMajor.length, 'the tap-major halo reads a bf16 x').toBeGreaterThan(0);
  });
});
