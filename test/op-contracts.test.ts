// The op contracts (compiler/lower/ops.ts) and the program verifier (compiler/lower/verify-program.ts):
// every step the shipped models lower to keeps its contract, and a mistyped step is named with its kernel
// and spec source.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, lowerModel, type Lowered } from '../compiler/pipeline.js';
import type { BufferDecl, KernelStep, Program } from '../compiler/lower/program-ir.js';
import { verifyPrograms } from '../compiler/lower/verify-program.js';
import { OP_KINDS, opBuffers, type OpKind } from '../compiler/lower/ops.js';
import { BLOCKS, CONCAT_ENDS, FUSED_BLOCKS, POOLED_ADDS, ZOO_LAYERS } from './reference/specs.js';
import { trainingProblem } from '../compiler/front/lowerable.js';

// The shipped chain models every device lowers for training too (the fused emu/cuda training program takes
// them all: front/lowerable.ts). Blocks are lowered by the probes below, so the ResNets stay out of this test's time.
const models = readdirSync('models')
  .filter((f) => f.endsWith('.model'))
  .map((f) => `models/${f}`)
  .filter((spec) => {
    const m = compileSpec(readFileSync(spec, 'utf8'), spec, { device: 'emu' }).model;
    return m !== undefined && trainingProblem(m, 'emu') === undefined && m.network === undefined;
  });
const lower = (spec: string, trainKernels: 'cpu' | 'cuda'): Lowered => {
  const m = compileSpec(readFileSync(spec, 'utf8'), spec, { device: trainKernels === 'cuda' ? 'emu' : 'cpu' }).model;
  if (!m) throw new Error(`${spec} did not compile`);
  return lowerModel(m, { maxBatch: 4, trainKernels });
};

/** A step as untyped data, the way a buggy lowering (or a hand edit) could produce it. */
type LooseStep = { kernel: string; op: string; source: string; buffers: Record<string, string>; args: string[]; consts: Record<string, unknown> };
const loose = (step: KernelStep): LooseStep => JSON.parse(JSON.stringify(step));

/** The programs with the first step that `pick` accepts replaced by `edit` of it; also returns that step. */
function withEditedStep(programs: readonly Program[], pick: (s: KernelStep) => boolean, edit: (s: LooseStep) => void): { programs: Program[]; step: KernelStep } {
  const step = programs.flatMap((p) => p.steps).find(pick);
  if (!step) throw new Error('no step to edit');
  const edited = loose(step);
  edit(edited);
  // JSON round trip: the verifier's input is whatever the lowering produced, typed or not.
  const replaced: KernelStep = JSON.parse(JSON.stringify(edited));
  return { programs: programs.map((p) => ({ ...p, steps: p.steps.map((s) => (s === step ? replaced : s)) })), step };
}

describe('verify-program accepts the shipped models', () => {
  it('covers the three NIN models', () => {
    for (const m of ['models/nin.model', 'models/nin-fashion.model', 'models/nin-nobn.model']) expect(models).toContain(m);
  });

  for (const spec of models) {
    for (const trainKernels of ['cpu', 'cuda'] as const) {
      it(`${spec}, ${trainKernels} lowering: every step keeps its op's contract`, () => {
        const lowered = lower(spec, trainKernels); // lowerModel runs the verifier too, and throws on a problem
        const steps = lowered.programs.flatMap((p) => p.steps);
        expect(steps.length).toBeGreaterThan(10);
        expect(verifyPrograms(lowered.programs, lowered.memory.buffers)).toEqual([]);
        // Each step's args are its named buffers in the contract's order (plan.json's ABI).
        for (const s of steps) expect(s.args).toEqual(opBuffers(s.op, s.consts).map((b) => s.buffers[b.name]));
      });
    }
  }
});

// Every path of the fused training program (as test/emu-train.test.ts's fused_paths), then dropout and a
// softmax inside the model, so that with the shipped models every op of ops.ts is lowered somewhere.
const PROBE = `
model probe {
  input 3x10x9
  bn(3, 1e-5, 0.2)  relu
  conv(3, 6, 3, 3, 2, 2, 1, 1)
  relu  bn(6)
  maxpool(2, 2)
  bn(6, 1e-3)  relu
  conv(6, 5, 1, 1)  relu
  avgpool(2, 2, 1, 1)
  bn(5)  relu  view(-1)
  linear(5, 4)  relu
  dropout(0.3)  linear(4, 4)  softmax  linear(4, 3)
  logsoftmax
}
`;

describe('every op of ops.ts', () => {
  it('is lowered by a shipped model or a probe spec, renders on every backend that takes it, and keeps its contract', () => {
    const probe = compileSpec(PROBE, 'probe.model', { device: 'emu' }).model;
    if (!probe) throw new Error('the probe spec did not compile');
    const shipped = models.map((spec) => compileSpec(readFileSync(spec, 'utf8'), spec, { device: 'emu' }).model!);
    // The zoo's layers, ceil pools and blocks (trained on the cpu device only, so far), and blocks the fused
    // training program takes (its residual add of three branches is the one add_infer left at inference; adds an average pool takes),
    // and the concat branch ends cpu training writes in place (a Tanh's: tanh_fwd_slice).
    const zoo = [compileSpec(ZOO_LAYERS, 'zoo.model').model!, compileSpec(BLOCKS, 'blocks.model').model!, compileSpec(CONCAT_ENDS, 'concat_ends.model').model!, compileSpec(FUSED_BLOCKS, 'fused_blocks.model', { device: 'emu' }).model!, compileSpec(POOLED_ADDS, 'pooled_adds.model', { device: 'emu' }).model!];
    const seen = new Set<OpKind>();
    for (const m of [...shipped, probe, ...zoo]) {
      for (const target of ['cpu', 'emu'] as const) {
        // compileModel runs verify-program, the cuda kernels' parameter check (emu) and the cpu renderer's name lookups.
        const c = compileModel(m, { target, maxBatch: 3, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
        for (const s of c.lowered.programs.flatMap((p) => p.steps)) seen.add(s.op);
      }
    }
    // The ops only a bf16 build lowers (conv_weight_bf16: the k×k convs' bf16 weight copies; sgd_conv_bf16: the SGD
    // update writing them, for convs with channels in 32s: NIN's).
    // pointwise_pair_infer: nin-fashion's pairs without the block regions, which call them inside (schedule/cpu-block-bands.ts).
    const fashion = shipped[models.indexOf('models/nin-fashion.model')];
    const unbanded = compileModel(fashion, { target: 'cpu', maxBatch: 3, sourceHash: 'test', libraries: {}, cpuFeatures: [], ablations: { cpuBlockBands: false } });
    for (const s of unbanded.lowered.programs.flatMap((p) => p.steps)) seen.add(s.op);
    const nin = shipped[models.indexOf('models/nin.model')];
    for (const m of [probe, nin]) {
      const bf16 = compileModel(m, { target: 'emu', maxBatch: 3, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16' });
      for (const s of bf16.lowered.programs.flatMap((p) => p.steps)) seen.add(s.op);
    }
    expect(OP_KINDS.length).toBeGreaterThan(40);
    expect(OP_KINDS.filter((op) => !seen.has(op))).toEqual([]);
  });
});

describe('verify-program rejects a mistyped step', () => {
  const spec = 'models/nin-fashion.model';
  const cpu = lower(spec, 'cpu');
  const cuda = lower(spec, 'cuda');
  const problemsOf = (l: Lowered, pick: (s: KernelStep) => boolean, edit: (s: LooseStep) => void, decls: readonly BufferDecl[] = l.memory.buffers) => {
    const { programs, step } = withEditedStep(l.programs, pick, edit);
    return { problems: verifyPrograms(programs, decls), step };
  };
  const named = (step: KernelStep) => `${step.kernel} (${step.op}) of `;

  it('a buffer of the wrong dtype (an f32 activation as the maxpool argmax)', () => {
    const { problems, step } = problemsOf(cpu, (s) => s.op === 'maxpool_fwd', (s) => {
      s.buffers.argmax = s.buffers.y;
      s.args[2] = s.buffers.y;
    });
    expect(step.source).toMatch(/^nin-fashion\.model:\d+:\d+$/);
    expect(problems).toEqual([`${named(step)}train_forward_backward from ${step.source}: buffer 'argmax' (${step.buffers.y}) is f32, the op takes i32`]);
  });

  it('a missing const', () => {
    const { problems, step } = problemsOf(cuda, (s) => s.op === 'conv_fwd_fused', (s) => delete s.consts.K);
    expect(problems).toEqual([`${named(step)}train_forward_backward from ${step.source}: missing const 'K' (int)`]);
  });

  it('a const of the wrong type', () => {
    const { problems, step } = problemsOf(cuda, (s) => s.op === 'bn_finalize', (s) => (s.consts.eps = 'small'));
    expect(problems).toEqual([`${named(step)}train_forward_backward from ${step.source}: const 'eps' is "small", not a finite number`]);
  });

  it('a buffer of the wrong size', () => {
    const step = cpu.programs.flatMap((p) => p.steps).find((s) => s.op === 'conv_infer')!;
    const y = step.buffers.y;
    const decls = cpu.memory.buffers.map((b) => (b.id === y ? { ...b, size: b.size - 1 } : b));
    const need = cpu.memory.buffers.find((b) => b.id === y)!.size;
    // The next conv reads it as its x: each step that passes it is named.
    expect(verifyPrograms(cpu.programs, decls)).toContain(`${named(step)}infer from ${step.source}: buffer 'y' (${y}) has ${need - 1} elements, the op's consts need ${need}`);
  });

  it('an unknown op', () => {
    const { problems, step } = problemsOf(cpu, (s) => s.op === 'maxpool_fwd', (s) => (s.op = 'maxpool_fwdd'));
    // The cpu inference program has maxpool_fwd_infer: the first maxpool_fwd is the training forward's.
    expect(problems).toEqual([`${step.kernel} (maxpool_fwdd) of train_forward_backward from ${step.source}: unknown op 'maxpool_fwdd'`]);
  });

  it('args out of the contract order, and a buffer the op does not take', () => {
    const swapped = problemsOf(cpu, (s) => s.op === 'bn_eval' || s.op === 'conv_fwd', (s) => s.args.reverse());
    expect(swapped.problems).toHaveLength(1);
    expect(swapped.problems[0]).toContain(`${named(swapped.step)}`);
    expect(swapped.problems[0]).toContain("are not its buffers in the op's order");
    const extra = problemsOf(cpu, (s) => s.op === 'maxpool_fwd', (s) => (s.buffers.mask = s.buffers.x));
    expect(extra.problems).toEqual([`${named(extra.step)}train_forward_backward from ${extra.step.source}: buffers (x, y, argmax, mask) are not the op's (x, y, argmax) for these consts`]);
  });

  it('a step that writes a program input, or reads an activation nothing wrote', () => {
    const train = cpu.programs.find((p) => p.name === 'train_forward_backward')!;
    const [first, second] = train.steps;
    const others = cpu.programs.filter((p) => p !== train);
    // The first step's output declared an input of the program: the step now overwrites what the caller passed.
    const asInput = { ...train, inputs: { ...train.inputs, extra: first.buffers.y } };
    expect(verifyPrograms([...others, asInput], cpu.memory.buffers)).toEqual([`${named(first)}train_forward_backward from ${first.source}: writes 'y' (${first.buffers.y}), an input of the program`]);
    // Without the first step, the second reads its output before anything wrote it.
    const read = Object.entries(second.buffers).find(([, id]) => id === first.buffers.y)![0];
    const skipped = { ...train, steps: train.steps.slice(1) };
    // (its backward reads it too)
    expect(verifyPrograms([...others, skipped], cpu.memory.buffers)).toContain(`${named(second)}train_forward_backward from ${second.source}: reads activation '${read}' (${first.buffers.y}) before any step of the program wrote it`);
  });
});
