// Imported first by a test file that runs the cpu kernels on three threads (more than this 2-core machine has, and
// odd): OpenMP reads OMP_NUM_THREADS once, when it loads.
process.env.OMP_NUM_THREADS = '3';
