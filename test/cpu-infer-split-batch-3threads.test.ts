// The batch split (schedule/cpu-infer-split-batch.ts) on 3 threads, with NINCC_TEST_FULL=1 (one more kernel build
// and a whole zoo suite): batch 3 runs as 3 slices of one image, 4 and 2 unsplit (3 does not divide them, and
// they are under 4 images a slice). 1, 2 and all threads: test/numerics-zoo-1thread.test.ts,
// test/cpu-concat-slots.test.ts and test/numerics-zoo.test.ts run the same case on every build they make.
import './reference/three-threads.js';
import { it } from 'vitest';
import { zooSuite } from './reference/zoo-suite.js';

const full = process.env.NINCC_TEST_FULL === '1';
if (full) zooSuite('3 threads', ['blocks']);
else {
  console.log('test/cpu-infer-split-batch-3threads.test.ts: skipped in CI (one more kernel build and the zoo suite on 3 threads); NINCC_TEST_FULL=1 runs it');
  it.skip('the zoo suite on blocks at 3 threads (NINCC_TEST_FULL=1)', () => {});
}
