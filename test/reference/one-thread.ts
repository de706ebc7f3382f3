// Imported first by a test file that runs the cpu kernels on one thread: OpenMP reads OMP_NUM_THREADS once, when it loads.
process.env.OMP_NUM_THREADS = '1';
