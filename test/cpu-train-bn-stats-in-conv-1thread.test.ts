// The cpuBnStatsInConv opt-in's float64-reference suite (test/reference/bn-stats-in-conv.ts) on one thread: OpenMP
// reads OMP_NUM_THREADS when the kernel library loads, so it is set by the first import.
import './reference/one-thread.js';
import { bnStatsInConvSuite } from './reference/bn-stats-in-conv.js';

bnStatsInConvSuite('1 thread', false);
