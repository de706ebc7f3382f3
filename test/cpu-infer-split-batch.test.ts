// The cpu inference program's batch split (schedule/cpu-infer-split-batch.ts, issue #19): which programs the
// compiler marks splitBatch, that their act buffers then share no memory (and the verifier says so when they
// do), or, by default, only the slices' own buffers share, by liveness (plan.json splitLocal), the memory bound,
// and report.txt's line. The split's numbers against the float64 reference, on
// 1, 2 and all threads, are test/reference/zoo-suite.ts's ("infer on slices of the batch").
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, lowerModel } from '../compiler/pipeline.js';
import type { MemoryPlan } from '../compiler/lower/memory.js';
import type { BufferDecl, KernelStep, Program } from '../compiler/lower/program-ir.js';
import { verifyMemory } from '../compiler/lower/verify-memory.js';
import { batchSplitEligibility, batchSplitFits, batchSplitReport, kSplitGrowthBytes } from '../compiler/schedule/cpu-infer-split-batch.js';

const shaped = (file: string) => {
  const m = compileSpec(readFileSync(file, 'utf8'), file).model;
  if (!m) throw new Error(`${file} did not compile`);
  return m;
};

describe('nin-fashion: a split inference program', () => {
  const model = shaped('models/nin-fashion.model');
  const lowered = lowerModel(model, { maxBatch: 16, trainKernels: 'cpu' });
  const infer = lowered.programs.find((p) => p.name === 'infer')!;
  const act = (p: Program) => [...new Set(p.steps.flatMap((s) => s.args))].map((id) => lowered.memory.buffers.find((b) => b.id === id)!).filter((b) => b.space === 'act');

  it('is split, with every act buffer of it disjoint from every other, and only it carries splitBatch in plan.json', () => {
    expect(lowered.memory.inferSplit?.split).toBe(true);
    const buffers = act(infer);
    expect(buffers.length).toBeGreaterThan(10);
    for (const a of buffers) for (const b of buffers) if (a !== b) expect(a.offset! + a.size <= b.offset! || b.offset! + b.size <= a.offset!, `${a.id} and ${b.id}`).toBe(true);
    const { plan } = compileModel(model, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
    expect(Object.entries(plan.programs).filter(([, p]) => p.splitBatch).map(([name]) => name)).toEqual(['infer']);
  });

  it('the memory verifier refuses a split program whose buffers share memory, even at different times', () => {
    // Two buffers never live at once (the network's input and its output) moved onto one offset: liveness
    // allows it, but a slice several layers ahead of another would overwrite the other's input.
    const split = lowered.memory;
    const first = infer.steps[0].args.find((id) => act(infer).some((b) => b.id === id))!;
    const last = infer.steps[infer.steps.length - 1].args.find((id) => id !== first && act(infer).some((b) => b.id === id))!;
    const moved: MemoryPlan = { ...split, buffers: split.buffers.map((b) => (b.id === last ? { ...b, offset: split.buffers.find((x) => x.id === first)!.offset } : b)) };
    expect(verifyMemory({ ...moved, inferSplit: { split: false, why: 'test' } }, lowered.programs)).toEqual([]);
    const problems = verifyMemory(moved, lowered.programs);
    expect(problems.some((p) => p.startsWith('infer is batch-split, but its buffers') && p.includes(first) && p.includes(last) && p.endsWith('share memory'))).toBe(true);
  });

  it('report.txt says which and why', () => {
    expect(batchSplitReport(lowered.memory.inferSplit).join('\n')).toMatch(/T slices of whole images .* every step computes each image from that image alone and its buffers, all disjoint, take 0\.\d\d MiB per image/);
    expect(batchSplitReport({ split: false, why: 'k9 (dropout_fwd) is not computed image by image' })[1]).toBe('  each layer splits its own work across the threads: no batch split, as k9 (dropout_fwd) is not computed image by image.');
  });
});

describe('nin-fashion: a split inference program whose slices keep their own buffers (splitLocal, the default)', () => {
  const model = shaped('models/nin-fashion.model');
  // As a default cpu build lowers it (compileModel below): the block regions too (schedule/cpu-block-bands.ts).
  const lowered = lowerModel(model, { maxBatch: 16, trainKernels: 'cpu', cpuSplitLocalAct: true, cpuBlockBands: true });
  const infer = lowered.programs.find((p) => p.name === 'infer')!;
  const local = lowered.memory.inferSplitLocal!;
  const byId = new Map(lowered.memory.buffers.map((b) => [b.id, b]));
  const act = [...new Set(infer.steps.flatMap((s) => s.args))].map((id) => byId.get(id)!).filter((b) => b.space === 'act');
  const boundary = new Set([...Object.values(infer.inputs), ...Object.values(infer.outputs)]);

  it('puts the inputs and outputs below `from`, every other buffer in [from, from + stride), some of them sharing memory', () => {
    expect(lowered.memory.inferSplit?.split).toBe(true);
    expect(local.from).toBeGreaterThan(0);
    for (const b of act) {
      if (boundary.has(b.id)) expect(b.offset! + b.size, b.id).toBeLessThanOrEqual(local.from);
      else expect(b.offset! >= local.from && b.offset! + b.size <= local.from + local.stride, b.id).toBe(true);
    }
    const inner = act.filter((b) => !boundary.has(b.id));
    const shared = inner.some((a) => inner.some((b) => a !== b && a.offset! < b.offset! + b.size && b.offset! < a.offset! + a.size));
    expect(shared, 'liveness lets some of the slice\'s buffers share memory').toBe(true);
    expect(local.stride).toBeLessThan(inner.reduce((sum, b) => sum + b.size, 0));
    expect(verifyMemory(lowered.memory, lowered.programs)).toEqual([]);
    const { plan } = compileModel(model, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
    expect(plan.programs.infer.splitLocal).toEqual(local);
    const ablated = compileModel(model, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], ablations: { cpuSplitLocalAct: false } });
    expect(ablated.plan.programs.infer.splitBatch).toBe(true);
    expect(ablated.plan.programs.infer.splitLocal).toBeUndefined();
  });

  it('the memory verifier refuses an input in the slices\' region, and a batch-major buffer over a slice\'s', () => {
    const input = Object.values(infer.inputs)[0];
    const inner = act.find((b) => b.offset === local.from)!;
    const moved = (id: string, offset: number): MemoryPlan => ({ ...lowered.memory, buffers: lowered.memory.buffers.map((b) => (b.id === id ? { ...b, offset } : b)) });
    expect(verifyMemory(moved(input, local.from + local.stride - byId.get(input)!.size), lowered.programs).some((p) => p.startsWith(`infer's input or output ${input} lies in the slices' own region`))).toBe(true);
    // Straddling `from`: batch-major, yet over the first buffer of a slice's region.
    const over = verifyMemory(moved(input, local.from - 16), lowered.programs);
    expect(over.some((p) => p.startsWith('infer is batch-split, but its buffers') && p.includes(input) && p.includes(inner.id))).toBe(true);
  });

  it('report.txt says so', () => {
    expect(batchSplitReport(lowered.memory.inferSplit).join('\n')).toMatch(/its inputs and outputs disjoint and its other buffers shared by liveness within each slice \(plan.json splitLocal\), take 0\.\d\d MiB per image/);
  });
});

describe('batchSplitEligibility and batchSplitFits', () => {
  const buffers: BufferDecl[] = [
    { id: 'x', space: 'act', size: 64, dtype: 'f32' },
    { id: 'y', space: 'act', size: 64, dtype: 'f32' },
    { id: 'h', space: 'act', size: 32, dtype: 'bf16' },
  ];
  const step = (op: string, args: string[]) => ({ kernel: `k1_${op}`, op, layer: 1, source: 'm:1:1', comment: '', buffers: {}, args, scalars: [], consts: { count: 64 } }) as unknown as KernelStep;
  const program = (name: string, steps: KernelStep[]): Program => ({ name, inputs: { x: 'x' }, outputs: { y: 'y' }, steps });

  it('takes per-image ops on f32 act buffers, and refuses a training op, a bf16 buffer, or another program', () => {
    expect(batchSplitEligibility(program('infer', [step('relu_fwd', ['x', 'y'])]), buffers).split).toBe(true);
    expect(batchSplitEligibility(program('infer', [step('dropout_fwd', ['x', 'y'])]), buffers)).toEqual({ split: false, why: 'k1_dropout_fwd (dropout_fwd) is not computed image by image' });
    expect(batchSplitEligibility(program('infer', [step('relu_fwd', ['x', 'h'])]), buffers)).toEqual({ split: false, why: 'k1_relu_fwd takes the bf16 buffer h' });
    expect(batchSplitEligibility(program('train_forward_backward', [step('relu_fwd', ['x', 'y'])]), buffers).split).toBe(false);
  });

  it('keeps the split while it grows the activation space by at most kSplitGrowthBytes per image', () => {
    const limit = kSplitGrowthBytes / 4;
    expect(batchSplitFits(1000, 2000).split).toBe(true);
    expect(batchSplitFits(1000 + limit, 1000).split).toBe(true);
    expect(batchSplitFits(1001 + limit, 1000).split).toBe(false);
  });
});
