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
    compileModel(m, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {} }, dump);
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
