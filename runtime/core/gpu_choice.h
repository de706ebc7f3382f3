// Which GPU a process's cuda device opens (docs/distributed.md#one-gpu-per-rank): the ranks mpirun
// starts on one machine take one GPU each, local rank k the k-th GPU the driver sees (so
// CUDA_VISIBLE_DEVICES still narrows and orders them), unless NINCC_GPU_PER_RANK (`nincc train
// --gpu-per-rank`) lists the ordinals by local rank. A plain process is local rank 0 of 1: GPU 0.
#pragma once
#include <string>

namespace nincc {

struct GpuChoiceInput {
  int deviceCount = 0;  // GPUs the driver sees
  int localRank = 0;    // this process's rank among the ranks on its machine
  int localSize = 1;    // how many ranks run on its machine
  std::string perRank;  // NINCC_GPU_PER_RANK: comma-separated ordinals by local rank; empty: one GPU per rank
};

// The device ordinal; throws nincc::Error saying why none fits (more ranks than GPUs, a bad list).
int chooseGpu(const GpuChoiceInput& input);

// The input from the environment: OMPI_COMM_WORLD_LOCAL_RANK and OMPI_COMM_WORLD_LOCAL_SIZE (Open
// MPI's mpirun sets them on every rank), NINCC_GPU_PER_RANK. Throws naming a variable that is not a number.
GpuChoiceInput gpuChoiceFromEnvironment(int deviceCount);

}  // namespace nincc
