// Imported first by a test file that runs the cpu kernels on two threads: OpenMP reads OMP_NUM_THREADS once, when it loads.
process.env.OMP_NUM_THREADS = '2';
