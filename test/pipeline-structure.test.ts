// The compiler's structure: pipeline.ts's pass list is what runs, in that order, and the memory
// verifier (its own liveness) catches the overlap a broken planner would produce.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, lowerModel } from '../compiler/pipeline.js';
import type { MemoryPlan } from '../compiler/lower/memory.js';
import { verifyMemory } from '../compiler/lower/verify-memory.js';

const spec = 'models/nin-fashion.model';
const model = () => {
  const m = compileSpec(readFileSync(spec, 'utf8'), spec).model;
  if (!m) throw new Error(`${spec} did not compile`);
  return m;
};

describe('pipeline.ts', () => {
  it('runs exactly the passes its table of contents lists, in that order', () => {
    // The numbered lines of pipeline.ts's first comment: "//  13 schedule-cuda    schedule/…".
    const listed = [...readFileSync('compiler/pipeline.ts', 'utf8').matchAll(/^\/\/\s+(\d+) ([a-z-]+)\s/gm)].map((m) => ({ n: Number(m[1]), name: m[2] }));
    expect(listed.map((p) => p.n)).toEqual(listed.map((_, i) => i + 1));
    const ran: string[] = [];
    const dump = (pass: string) => void ran.push(pass);
    const m = compileSpec(readFileSync(spec, 'utf8'), spec, { dump }).model!;
    compileModel(m, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [] }, dump);
    expect(ran).toEqual(listed.map((p) => p.name));
  });
});

describe('verify-memory', () => {
  const lowered = lowerModel(model(), { maxBatch: 4, trainKernels: 'cuda' });

  it('accepts the planner’s layout of a shipped model', () => {
    expect(verifyMemory(lowered.memory, lowered.programs)).toEqual([]);
  });

  it('rejects two activations in use at once placed on the same memory', () => {
    // A planner that ignored liveness: two act buffers of one training step (read and written at once) given one offset.
    const train = lowered.programs.find((p) => p.name === 'train_forward_backward')!;
    const act = new Set(lowered.memory.buffers.filter((b) => b.space === 'act').map((b) => b.id));
    const step = train.steps.find((s) => new Set(s.args.filter((id) => act.has(id))).size >= 2)!;
    const size = (id: string) => lowered.memory.buffers.find((x) => x.id === id)!.size;
    // The smaller one moves onto the larger, so it stays inside the space and only liveness can object.
    const [a, b] = [...new Set(step.args.filter((id) => act.has(id)))].sort((x, y) => size(y) - size(x));
    const broken: MemoryPlan = { ...lowered.memory, buffers: lowered.memory.buffers.map((x) => (x.id === b ? { ...x, offset: lowered.memory.buffers.find((y) => y.id === a)!.offset } : x)) };
    const problems = verifyMemory(broken, lowered.programs);
    expect(problems.some((p) => p.includes(a) && p.includes(b) && p.includes('share memory'))).toBe(true);
  });

  it('rejects a buffer placed past the end of its space', () => {
    const [first] = lowered.memory.buffers.filter((b) => b.space === 'act');
    const broken: MemoryPlan = { ...lowered.memory, buffers: lowered.memory.buffers.map((x) => (x.id === first.id ? { ...x, offset: lowered.memory.actSize } : x)) };
    expect(verifyMemory(broken, lowered.programs)).toEqual([`${first.id} ends past the activation space (${lowered.memory.actSize})`]);
  });
});

describe('the trainable decision (lower/train.ts whyUntrainable)', () => {
  const lower = (layers: string) => {
    const source = `model m {\n  input 4x1x1\n  view(-1)  ${layers}\n}\n`;
    const r = compileSpec(source, 'inline.model');
    if (!r.model) throw new Error(`the inline spec did not compile: ${r.diagnostics.map((d) => d.message).join('; ')}`);
    const m = r.model;
    return compileModel(m, { target: 'cpu', maxBatch: 2, sourceHash: 'test', libraries: {}, cpuFeatures: [] });
  };

  it('a model that does not end in logsoftmax has no training programs, and the plan says why', () => {
    const c = lower('linear(4, 3)  relu');
    expect(c.plan.untrainable).toBe('training with the nll criterion needs a model that ends in logsoftmax');
    expect(Object.keys(c.plan.programs).sort()).toEqual(['infer', 'prepare_infer']);
  });

  it('a model without parameters has none either; one with both trains', () => {
    expect(lower('logsoftmax').plan.untrainable).toBe('the model has no parameters to train');
    const trainable = lower('linear(4, 3)  logsoftmax').plan;
    expect(trainable.untrainable).toBeUndefined();
    expect(Object.keys(trainable.programs)).toContain('train_forward_backward');
  });
});
