// Pass: arena offsets. Activations are placed by liveness within each program (programs never overlap
// in time); fixed buffers get their own static slots so folded weights survive between programs.
import { type BatchSplit, batchSplitEligibility, batchSplitFits } from '../schedule/cpu-infer-split-batch.js';
import type { BufferDecl, Program } from './program-ir.js';

const ALIGN = 16; // elements: 64 bytes, and still 64 bytes after the runtime multiplies by N

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

interface Interval {
  readonly id: string;
  readonly size: number;
  readonly first: number;
  readonly last: number;
}

function liveIntervals(p: Program, act: ReadonlySet<string>): Interval[] {
  const range = new Map<string, { first: number; last: number }>();
  const touch = (id: string, at: number) => {
    if (!act.has(id)) return;
    const r = range.get(id);
    if (!r) range.set(id, { first: at, last: at });
    else r.last = Math.max(r.last, at);
  };
  Object.values(p.inputs).forEach((id) => touch(id, -1)); // written by the caller before the first step
  p.steps.forEach((s, i) => s.args.forEach((id) => touch(id, i)));
  Object.values(p.outputs).forEach((id) => touch(id, p.steps.length)); // read by the caller after the last
  return [...range.entries()].map(([id, r]) => ({ id, size: 0, ...r }));
}

/** Greedy best fit, largest first: a buffer goes at the lowest offset free over its whole lifetime. */
function placeIntervals(intervals: readonly Interval[]): { offsets: Map<string, number>; size: number } {
  const placed: { start: number; end: number; first: number; last: number }[] = [];
  const offsets = new Map<string, number>();
  let size = 0;
  for (const it of [...intervals].sort((a, b) => b.size - a.size || a.first - b.first)) {
    const conflicts = placed.filter((p) => p.first <= it.last && it.first <= p.last).sort((a, b) => a.start - b.start);
    let offset = 0;
    for (const c of conflicts) {
      if (offset + it.size <= c.start) break;
      offset = Math.max(offset, c.end);
    }
    placed.push({ start: offset, end: offset + align(it.size), first: it.first, last: it.last });
    offsets.set(it.id, offset);
    size = Math.max(size, offset + align(it.size));
  }
  return { offsets, size };
}

export interface MemoryPlan {
  readonly buffers: readonly BufferDecl[]; // every buffer with its offset
  readonly actSize: number; // per image
  readonly fixedSize: number;
  readonly inferSplit?: BatchSplit; // whether the cpu runs the inference program on slices of the batch, and why
}

export function planMemory(buffers: readonly BufferDecl[], programs: readonly Program[]): MemoryPlan {
  const byId = new Map(buffers.map((b) => [b.id, b]));
  const act = new Set(buffers.filter((b) => b.space === 'act').map((b) => b.id));
  const intervalsOf = (p: Program) => liveIntervals(p, act).map((it) => ({ ...it, size: byId.get(it.id)!.size }));
  const placements = new Map(programs.map((p) => [p, placeIntervals(intervalsOf(p))]));
  const infer = programs.find((p) => p.name === 'infer');
  let inferSplit: BatchSplit | undefined;
  if (infer) {
    inferSplit = batchSplitEligibility(infer, buffers);
    if (inferSplit.split) {
      // Every buffer live for the whole program, so no two share memory (schedule/cpu-infer-split-batch.ts).
      const disjoint = placeIntervals(intervalsOf(infer).map((it) => ({ ...it, first: -1, last: infer.steps.length })));
      inferSplit = batchSplitFits(disjoint.size, Math.max(...[...placements.values()].map((x) => x.size)));
      if (inferSplit.split) placements.set(infer, disjoint);
    }
  }
  const offsets = new Map<string, number>();
  let actSize = 0;
  for (const placed of placements.values()) {
    placed.offsets.forEach((o, id) => offsets.set(id, o));
    actSize = Math.max(actSize, placed.size);
  }
  let fixedSize = 0;
  for (const b of buffers) {
    if (b.space !== 'fixed') continue;
    offsets.set(b.id, fixedSize);
    fixedSize += align(b.size);
  }
  const out = buffers.map((b) => (b.offset !== undefined ? b : { ...b, offset: offsets.get(b.id) }));
  const unplaced = out.filter((b) => b.offset === undefined);
  if (unplaced.length > 0) throw new Error(`internal error: buffers used by no program: ${unplaced.map((b) => b.id).join(', ')}`);
  return { buffers: out, actSize, fixedSize, ...(inferSplit ? { inferSplit } : {}) };
}
