// One interface for the cp.async rings of the bf16 tensor-core main loops (conv-mma.ts, conv-mma-grad.ts): a ring holds
// S slices of one operand, S − 1 in flight ahead of the slice multiplied. Each ring (conv-mma-async-1x1.ts: fp32 x of a
// 1×1 forward; conv-mma-b-ring.ts: B from a bf16 weight copy) is an instance
// of it; the loop places each part the same way whatever the ring, so a new ring is a new instance, not a new path.
import { BK } from './conv-mma-tile.js';

export interface SliceRing {
  /** the operand it stages: A (D's rows, tile `as`) or B (D's columns, tile `bs`) */
  readonly operand: 'A' | 'B';
  readonly stages: number;
  /** report.txt's words */
  readonly words: string;
  /** after m0 and n0 are known: the ring's declaration, its issue lambda, the first S − 1 slices issued */
  readonly prologue: readonly string[];
  /** slice k0 + (S−1)·BK issued into the stage the last iteration freed, and its group committed */
  readonly issue: readonly string[];
  /** in place of the operand's staging: slice k0 has landed (an A ring: converted into `as` too) */
  readonly wait: readonly string[];
  /** a B ring: the int4 offset in `bs` of the stage slice `it` is multiplied from (mmaSlice's bStage) */
  readonly slot?: string;
  /** after the loop: the groups still open */
  readonly drain: readonly string[];
}

/**
 * The main loop's header: a ring counts its iterations (`it` picks the stage). `span`: C++ expressions of a split's
 * first k and end (conv-mma-dgrad-splits.ts), else the whole reduction.
 */
export const ringLoop = (ring: SliceRing | undefined, depth: number, span?: KSpan) => {
  const [lo, hi] = span ? [span.lo, span.hi] : ['0', `${depth}`];
  return ring ? `for (int k0 = ${lo}, it = 0; k0 < ${hi}; k0 += ${BK}, ++it) {` : `for (int k0 = ${lo}; k0 < ${hi}; k0 += ${BK}) {`;
};

/** A split's range of the reduction: C++ expressions of its first k and its end. */
export interface KSpan {
  readonly lo: string;
  readonly hi: string;
}

/** The lines at the top of each iteration, before either operand is staged. */
export const ringTop = (ring: SliceRing | undefined): readonly string[] => ring?.issue ?? [];

/** How the loop stages `operand` from the ring, or undefined where the ring does not hold it (the operand's own staging). */
export function ringStaging(ring: SliceRing | undefined, operand: SliceRing['operand']): readonly string[] | undefined {
  if (ring?.operand !== operand) return undefined;
  return ring.wait;
}

/** B's stages for mmaPrologue's `bs` (1 unless a B ring holds them). */
export const bStagesOf = (ring: SliceRing | undefined) => (ring?.operand === 'B' ? ring.stages : undefined);
