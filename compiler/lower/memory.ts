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

/**
 * A batch-split program's act buffers that each slice keeps in a region of its own (plan.json `splitLocal`,
 * runtime/core/plan.h): those at per-image offsets from `from` on, `stride` elements per image of the slice.
 */
export interface SplitLocal {
  readonly from: number;
  readonly stride: number;
}

export interface MemoryPlan {
  readonly buffers: readonly BufferDecl[]; // every buffer with its offset
  readonly actSize: number; // per image
  readonly fixedSize: number;
  readonly inferSplit?: BatchSplit; // whether the cpu runs the inference program on slices of the batch, and why
  readonly inferSplitLocal?: SplitLocal; // where its slices keep their own buffers (absent: every buffer batch-major)
}

/**
 * A batch-split program's placement. Its slices run layers apart, so a buffer one slice reads may not share
 * memory with one another slice writes meanwhile. With `local`, the program's inputs and outputs (read and
 * written batch-major by the caller) go first, disjoint, and every other buffer into the slice's own region
 * (SplitLocal), where buffers share by liveness as in any program: a slice's layers run in order on one thread,
 * so each writes where its slice's earlier layers just worked, still in cache, not into memory untouched
 * since the last call. Without it (the ablation cpuSplitLocalAct), every buffer is disjoint and batch-major.
 */
function placeSplit(p: Program, intervals: readonly Interval[], local: boolean): { offsets: Map<string, number>; size: number; local?: SplitLocal } {
  const whole = (it: Interval): Interval => ({ ...it, first: -1, last: p.steps.length });
  if (!local) return placeIntervals(intervals.map(whole));
  const boundary = new Set([...Object.values(p.inputs), ...Object.values(p.outputs)]);
  const outer = placeIntervals(intervals.filter((it) => boundary.has(it.id)).map(whole));
  const inner = placeIntervals(intervals.filter((it) => !boundary.has(it.id)));
  const offsets = new Map(outer.offsets);
  inner.offsets.forEach((o, id) => offsets.set(id, outer.size + o));
  return { offsets, size: outer.size + inner.size, local: { from: outer.size, stride: inner.size } };
}

export function planMemory(buffers: readonly BufferDecl[], programs: readonly Program[], options: { readonly splitLocal?: boolean } = {}): MemoryPlan {
  const byId = new Map(buffers.map((b) => [b.id, b]));
  const act = new Set(buffers.filter((b) => b.space === 'act').map((b) => b.id));
  const intervalsOf = (p: Program) => liveIntervals(p, act).map((it) => ({ ...it, size: byId.get(it.id)!.size }));
  const placements = new Map(programs.map((p) => [p, placeIntervals(intervalsOf(p))]));
  const infer = programs.find((p) => p.name === 'infer');
  let inferSplit: BatchSplit | undefined;
  let inferSplitLocal: SplitLocal | undefined;
  if (infer) {
    inferSplit = batchSplitEligibility(infer, buffers);
    if (inferSplit.split) {
      const split = placeSplit(infer, intervalsOf(infer), options.splitLocal === true);
      inferSplit = batchSplitFits(split.size, Math.max(...[...placements.values()].map((x) => x.size)), split.local !== undefined);
      if (inferSplit.split) {
        placements.set(infer, split);
        inferSplitLocal = split.local;
      }
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
  return { buffers: out, actSize, fixedSize, ...(inferSplit ? { inferSplit } : {}), ...(inferSplitLocal ? { inferSplitLocal } : {}) };
}
