// Verifier for the memory plan (pass verify-memory), written apart from the planner on purpose: it
// recomputes liveness its own way (a sweep over the program's time points, not lower/memory.ts's
// intervals), so a planner bug cannot hide behind the same mistake in its checker.
import type { MemoryPlan } from './memory.js';
import type { BufferDecl, Program } from './program-ir.js';

/** Time points of a program: -1 (the caller writes its inputs), each step, steps.length (the caller reads outputs). */
function accessTimes(p: Program): Map<string, number[]> {
  const times = new Map<string, number[]>();
  const add = (id: string, t: number) => times.set(id, [...(times.get(id) ?? []), t]);
  for (const id of Object.values(p.inputs)) add(id, -1);
  p.steps.forEach((s, t) => s.args.forEach((id) => add(id, t)));
  for (const id of Object.values(p.outputs)) add(id, p.steps.length);
  return times;
}

const overlaps = (a: BufferDecl, b: BufferDecl) => a.offset! < b.offset! + b.size && b.offset! < a.offset! + a.size;

/** Problems, empty when every buffer is placed inside its space and no two buffers in use at once share memory. */
export function verifyMemory(plan: MemoryPlan, programs: readonly Program[]): string[] {
  const problems: string[] = [];
  const byId = new Map(plan.buffers.map((b) => [b.id, b]));
  for (const b of plan.buffers) {
    if (b.offset === undefined) problems.push(`${b.id} has no offset`);
    else if (b.space === 'act' && b.offset + b.size > plan.actSize) problems.push(`${b.id} ends past the activation space (${plan.actSize})`);
    else if (b.space === 'fixed' && b.offset + b.size > plan.fixedSize) problems.push(`${b.id} ends past the fixed space (${plan.fixedSize})`);
  }
  if (problems.length > 0) return problems;
  // Fixed buffers keep their contents between programs: no two may share memory at all.
  const fixed = plan.buffers.filter((b) => b.space === 'fixed');
  for (let i = 0; i < fixed.length; i++) for (let j = i + 1; j < fixed.length; j++) if (overlaps(fixed[i], fixed[j])) problems.push(`fixed buffers ${fixed[i].id} and ${fixed[j].id} overlap`);
  // A batch-split program's slices run layers apart (schedule/cpu-infer-split-batch.ts): its batch-major act
  // buffers may share no memory at all, whatever their lifetimes. Those of a slice's own region (splitLocal) share
  // only by liveness (checked below with every program's), and the caller's inputs and outputs are batch-major.
  const split = programs.find((p) => p.name === 'infer' && plan.inferSplit?.split);
  if (split) {
    const local = plan.inferSplitLocal;
    const ids = [...accessTimes(split).keys()].filter((id) => byId.get(id)?.space === 'act');
    const isLocal = (id: string) => local !== undefined && byId.get(id)!.offset! >= local.from;
    const boundary = new Set([...Object.values(split.inputs), ...Object.values(split.outputs)]);
    for (const id of ids) {
      const b = byId.get(id)!;
      if (isLocal(id) && boundary.has(id)) problems.push(`${split.name}'s input or output ${id} lies in the slices' own region (from ${local!.from})`);
      if (isLocal(id) && b.offset! + b.size > local!.from + local!.stride) problems.push(`${id} ends past the slices' own region (${local!.from} + ${local!.stride})`);
    }
    for (let i = 0; i < ids.length; i++)
      for (let j = i + 1; j < ids.length; j++)
        if (!(isLocal(ids[i]) && isLocal(ids[j])) && overlaps(byId.get(ids[i])!, byId.get(ids[j])!)) problems.push(`${split.name} is batch-split, but its buffers ${ids[i]} and ${ids[j]} share memory`);
  }
  // Activations: at each time point of each program, the buffers in use (accessed at or before it and
  // at or after it) must be pairwise disjoint.
  for (const p of programs) {
    const times = [...accessTimes(p)].filter(([id]) => byId.get(id)?.space === 'act');
    const reported = new Set<string>();
    for (let t = -1; t <= p.steps.length; t++) {
      const inUse = times.filter(([, ts]) => Math.min(...ts) <= t && t <= Math.max(...ts)).map(([id]) => byId.get(id)!);
      inUse.sort((a, b) => a.offset! - b.offset!);
      for (let i = 0; i + 1 < inUse.length; i++) {
        for (let j = i + 1; j < inUse.length && inUse[j].offset! < inUse[i].offset! + inUse[i].size; j++) {
          const key = `${inUse[i].id}|${inUse[j].id}`;
          if (reported.has(key)) continue;
          reported.add(key);
          problems.push(`${p.name}: ${inUse[i].id} and ${inUse[j].id} share memory while both are in use (step ${t})`);
        }
      }
    }
  }
  return problems;
}
