// vitest's file order (vitest.config.ts): the slowest files first, so CI's two forks finish together. On a clean
// clone vitest has no timings and runs the largest files first; the slowest (cold g++ builds) were then taken late
// and left one fork working alone for minutes at the end.
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Slowest first, by a clean-clone CI run's file times (bench/logs/ci-round13.log, before the round that added this;
 * bench/logs/ciA-times.md). emu-infer is kept away from emu-train: they build the same specs (one cache entry
 * each), and side by side both would compile them.
 */
export const SLOW_FIRST = [
  'test/emu-train.test.ts',
  'test/cuda-build.test.ts',
  'test/emu-blocks-train.test.ts',
  'test/onnx-export.test.ts',
  'test/emu-conv-mma.test.ts',
  'test/emu-infer.test.ts',
  'test/reliability-artifacts.test.ts',
  'test/package-install.test.ts',
  'test/cpu-train-bn-stats-in-conv.test.ts',
  'test/u8-default.test.ts',
  'test/distributed-train.test.ts',
  'test/numerics-zoo.test.ts',
  'test/cpu-concat-slots.test.ts',
  'test/emu-conv-mma-wide.test.ts',
];

/** `paths` (relative to the root) with SLOW_FIRST's in its order ahead of the rest, which keep theirs. */
export function slowFirst(paths: readonly string[]): number[] {
  const rank = (p: string) => {
    const i = SLOW_FIRST.indexOf(p);
    return i < 0 ? SLOW_FIRST.length : i;
  };
  return paths.map((p, i) => ({ p, i })).sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i).map((x) => x.i);
}

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const base = await super.sort(files);
    return slowFirst(base.map((f) => relative(this.ctx.config.root, f.moduleId))).map((i) => base[i]);
  }
}
