// vitest settings: tests live in test/, run in forks (native addon + child processes).
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import SlowFirstSequencer from './test/slow-first-sequencer.js';
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/gpu/**', 'node_modules/**'],
    pool: 'forks',
    // vitest's default is one fork fewer than the cores: a single fork on CI's two, while most tests
    // wait on g++ or a child process. Two forks there took the suite from 738 s to 290 s.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFirstSequencer },
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // The emu libraries the tests build (and the nincc children they spawn) at g++ -O1, not -O2: from a cold kernel
    // cache they are a large part of CI, and -O1 compiles in about 0.7 of the CPU time (half under ASan) while the
    // emulated runs took as long (bench/logs/ciU-times.md). The same kernels and checks run; a user's build keeps -O2.
    env: { NINCC_EMU_OPT: '-O1' },
  },
});
