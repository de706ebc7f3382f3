// Issue #17's layers and blocks on the cpu device against the float64 reference, on one thread: OpenMP reads
// OMP_NUM_THREADS when the kernel library loads, so it is set by the first import, before any load.
import './reference/one-thread.js';
import { zooSuite } from './reference/zoo-suite.js';

zooSuite('1 thread');
