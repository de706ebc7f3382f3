// The median time of a call, for the per-call A/B tools (cpu-small-ab.ts, cpu-region-call-parts.ts).
import { median } from './report.js';

/** The median microseconds of `calls` calls of `run`, after three warm-up calls; `before`, untimed, ahead of each. */
export async function medianMicros(run: () => unknown, calls: number, before?: () => unknown): Promise<number> {
  const us: number[] = [];
  for (let i = 0; i < calls + 3; i++) {
    if (before) await before();
    const t0 = performance.now();
    await run();
    if (i >= 3) us.push((performance.now() - t0) * 1000);
  }
  return median(us);
}
