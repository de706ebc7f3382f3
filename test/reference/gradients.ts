// Native gradients against float64 central differences of the reference interpreter's training-mode
// loss, at sampled elements of every parameter tensor (test/numerics-gradients.test.ts, test/emu-train.test.ts).
import { expect } from 'vitest';
import type { Model } from '../../runtime/model.js';
import { readWeights } from './artifacts.js';

// Central differences in float64 with h = 1e-5: truncation error O(h²) ~ 1e-10 and rounding error
// ~1e-16/h ~ 1e-11, so the reference gradient is good to ~1e-9; a ReLU or max-pool switch inside ±h is
// what could spoil an element, and at random points that has probability ~1e-5 per element.
const H = 1e-5;
// The native gradient is float32, summed over batch×positions and passed back through every layer;
// measured, its worst error is ~5e-6 of the tensor's largest gradient (NINCC_NUMERICS_LOG=1 prints them). Per tensor we allow
// 2e-4·max|fd| + 1e-5·(the model's largest gradient): a wrong index, transposition, missed term or stale
// value is off by O(max|fd|).
const REL = 2e-4;
const ABS = 1e-5;

/** Indices to check: all of a small tensor, else the ends and `count` random others. */
export function sample(size: number, count: number, next: () => number): number[] {
  if (size <= count + 2) return Array.from({ length: size }, (_, i) => i);
  const picked = new Set([0, size - 1]);
  while (picked.size < count + 2) picked.add(Math.floor(next() * size));
  return [...picked].sort((a, b) => a - b);
}

/** Compares getGradient(name) at sampled elements with central differences of `loss`; returns how many. */
export function checkGradients(m: Model, loss: (w: Map<string, Float64Array>, layer: number) => number, perTensor: number, next: () => number, what: string): number {
  const w = readWeights(m);
  const cases = m.info.params.map((t) => {
    const values = w.get(t.name)!;
    const at = sample(t.size, perTensor, next);
    const fd = at.map((i) => {
      const original = values[i];
      values[i] = original + H;
      const up = loss(w, t.layer);
      values[i] = original - H;
      const down = loss(w, t.layer);
      values[i] = original;
      return (up - down) / (2 * H);
    });
    return { name: t.name, native: m.getGradient(t.name), at, fd, scale: Math.max(...fd.map(Math.abs)) };
  });
  // A conv bias right before BN has an exact gradient of 0; float32 leaves noise of ~1e-7 of the model's gradients there.
  const floor = ABS * Math.max(...cases.map((c) => c.scale));
  for (const c of cases) {
    const bound = REL * c.scale + floor;
    const worst = Math.max(...c.at.map((i, k) => Math.abs(c.native[i] - c.fd[k])));
    if (process.env.NINCC_NUMERICS_LOG) console.log(`${what} ${c.name}: max err ${worst.toExponential(2)}, scale ${c.scale.toExponential(2)}, bound ${bound.toExponential(2)}`);
    c.at.forEach((i, k) => {
      const err = Math.abs(c.native[i] - c.fd[k]);
      expect(err, `${what}: d loss / d ${c.name}[${i}] is ${c.native[i]}, central difference ${c.fd[k]} (bound ${bound.toExponential(2)})`).toBeLessThanOrEqual(bound);
    });
  }
  return cases.reduce((sum, c) => sum + c.at.length, 0);
}

