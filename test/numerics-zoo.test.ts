// Issue #17's layers and blocks on the cpu device against the float64 reference, on all threads (test/reference/zoo-suite.ts).
import { zooSuite } from './reference/zoo-suite.js';

zooSuite('all threads');
