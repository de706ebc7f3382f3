// `npm run test:gpu`: the kernel tests on the cuda device (test/gpu/), which the plain `vitest run`
// leaves out (vitest.config.ts); they skip, saying why, where there is no GPU, driver or nvcc.
import { defineConfig } from 'vitest/config';
export default defineConfig({
  test: {
    include: ['test/gpu/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 300_000,
    hookTimeout: 600_000,
  },
});
