// chooseGpu and its environment (see gpu_choice.h).
#include "gpu_choice.h"

#include <cstdlib>
#include <vector>

#include "error.h"

namespace nincc {

namespace {

// A non-negative decimal integer, or -1.
int parseCount(const std::string& text) {
  if (text.empty() || text.size() > 6) return -1;
  int value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return -1;
    value = value * 10 + (c - '0');
  }
  return value;
}

std::string visibleNote() {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  return visible ? std::string(" (CUDA_VISIBLE_DEVICES=") + visible + ")" : std::string();
}

std::string gpus(int count) { return std::to_string(count) + (count == 1 ? " GPU" : " GPUs"); }

}  // namespace

int chooseGpu(const GpuChoiceInput& in) {
  if (in.perRank.empty()) {
    // NCCL refuses two ranks of one communicator on one GPU, so sharing is never the default.
    if (in.localSize > in.deviceCount)
      throw Error(std::to_string(in.localSize) + " ranks run on this machine and the driver sees " + gpus(in.deviceCount) +
                  visibleNote() + ": each rank takes a GPU of its own; launch at most " + std::to_string(in.deviceCount) +
                  " ranks per machine (mpirun --map-by ppr:" + std::to_string(in.deviceCount) +
                  ":node), or list each local rank's GPU with --gpu-per-rank (NINCC_GPU_PER_RANK), e.g. 0,0 "
                  "to share GPU 0 (then reduce with --reduce-with mpi: NCCL refuses two ranks on one GPU)");
    return in.localRank;
  }
  std::vector<int> ordinals;
  size_t start = 0;
  while (start <= in.perRank.size()) {
    size_t comma = in.perRank.find(',', start);
    if (comma == std::string::npos) comma = in.perRank.size();
    const int ordinal = parseCount(in.perRank.substr(start, comma - start));
    if (ordinal < 0)
      throw Error("NINCC_GPU_PER_RANK (--gpu-per-rank) \"" + in.perRank +
                  "\" is not a comma-separated list of GPU ordinals, e.g. 0,1");
    ordinals.push_back(ordinal);
    start = comma + 1;
  }
  if (in.localRank >= int(ordinals.size()))
    throw Error("NINCC_GPU_PER_RANK (--gpu-per-rank) \"" + in.perRank + "\" names " + gpus(int(ordinals.size())) +
                ", and this process is local rank " + std::to_string(in.localRank) + " of " +
                std::to_string(in.localSize) + " on its machine: list one ordinal per local rank");
  const int ordinal = ordinals[size_t(in.localRank)];
  if (ordinal >= in.deviceCount)
    throw Error("NINCC_GPU_PER_RANK (--gpu-per-rank) \"" + in.perRank + "\" gives local rank " +
                std::to_string(in.localRank) + " GPU " + std::to_string(ordinal) + ", and the driver sees " +
                gpus(in.deviceCount) + visibleNote() + " (ordinals 0.." + std::to_string(in.deviceCount - 1) + ")");
  return ordinal;
}

GpuChoiceInput gpuChoiceFromEnvironment(int deviceCount) {
  GpuChoiceInput in;
  in.deviceCount = deviceCount;
  auto number = [](const char* name, int fallback) {
    const char* text = std::getenv(name);
    if (!text || !*text) return fallback;
    const int value = parseCount(text);
    if (value < 0) throw Error(std::string(name) + "=\"" + text + "\" is not a non-negative integer");
    return value;
  };
  in.localRank = number("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  in.localSize = number("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  if (in.localSize < in.localRank + 1)
    throw Error("OMPI_COMM_WORLD_LOCAL_RANK=" + std::to_string(in.localRank) + " is not below OMPI_COMM_WORLD_LOCAL_SIZE=" +
                std::to_string(in.localSize));
  const char* perRank = std::getenv("NINCC_GPU_PER_RANK");
  if (perRank) in.perRank = perRank;
  return in;
}

}  // namespace nincc
