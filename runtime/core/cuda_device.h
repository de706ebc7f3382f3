// The cuda device: the CUDA driver API through dlopen("libcuda.so.1") (no link-time CUDA dependency,
// so the addon builds and loads where there is no CUDA), the artifact's kernels.fatbin by
// cuModuleLoadData, kernels by cuModuleGetFunction on their extern "C" names with the parameter
// signature the module exports beside each (`nincc_signature_<kernel>`, device/cuda.cuh), launches by
// cuLaunchKernel on one stream (a second one, ordered by events, carries a distributed step's
// collectives: device.h commStream) with the same kernelParams (kernel_params.h) and launch rules
// (plan.json `launch`) as the emu device. Memory is device memory (cuMemAlloc, zero-filled).
// With NINCC_CUDA_GRAPHS=1 a program is built once per batch size into a CUDA graph of its kernel
// nodes, in order, and replayed with one cuGraphLaunch; a later call updates only the nodes whose
// parameters changed (docs/emu.md#cuda-graphs).
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "device.h"

namespace nincc {

struct CudaDriver;  // the driver's entry points, resolved once per process

// Empty when the cuda device can run here (the driver loads, cuInit succeeds and there is a GPU);
// otherwise why not, e.g. "libcuda.so.1 did not load (…)". NINCC_CUDA_DRIVER names another library.
std::string cudaUnavailableReason();

// Makes the primary context of the GPU a cuda device of this process opens (gpu_choice.h) current on
// the calling thread: NCCL creates a communicator on the CUDA runtime's current device, which is that
// context's GPU, not GPU 0. Throws as CudaDevice() does.
void makeChosenGpuCurrent();

// The name of the GPU a cuda device of this process opens (cuDeviceGetName, e.g. "NVIDIA H100 80GB HBM3"),
// without opening it: what `nincc build --target cuda` looks up a tune record by. Throws as CudaDevice() does.
std::string chosenGpuName();

class CudaDevice final : public Device {
 public:
  CudaDevice();  // throws when cudaUnavailableReason() is not empty
  ~CudaDevice() override;

  std::string name() const override { return "cuda"; }
  std::string hardwareName() const override;
  bool timeLaunches(bool on) override;
  std::vector<LaunchTime> takeLaunchTimes() override;
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  KernelHandle findKernel(const Step& step) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;
  void launchProgram(const std::string& program, const std::vector<StepLaunch>& steps) override;

  void* alloc(size_t bytes, FirstWrite first) override;
  void release(void* memory) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;
  void* commStream() override;
  void commWaitsForCompute() override;
  void computeWaitsForComm() override;
  float* hostStaging(size_t floats) override;
  void commCopyToHost(void* dst, const void* src, size_t bytes) override;
  void commCopyToDevice(void* dst, const void* src, size_t bytes) override;
  void* commMark() override;
  void hostWaits(void* mark) override;
  void stageInputs(const std::vector<StagedInput>& inputs) override;  // cuda_input_stage.cc
  void takeStagedInputs() override;
  void discardStagedInputs() override;

 private:
  struct Kernel {
    std::string symbol;
    void* function = nullptr;  // CUfunction; null: not in the module
    std::string signature;     // from nincc_signature_<symbol>: "p" per buffer, "i" for n, "f"/"d" per scalar
  };
  // A program recorded as a graph: its executable, its nodes in step order, and each node's
  // parameter values when last set (pointers, n, scalars, seed), to update only what changed.
  struct Graph {
    void* graph = nullptr;  // CUgraph
    void* exec = nullptr;   // CUgraphExec
    std::vector<void*> nodes;
    std::vector<std::vector<uint64_t>> values;
  };
  // The launch's name, geometry and the driver's kernel-node parameters, for cuLaunchKernel and graph nodes alike.
  struct Prepared;
  Prepared prepare(const Kernel& kernel, const Step& step, const NinccArgs& args) const;
  Graph& record(const std::string& program, const std::vector<StepLaunch>& steps);
  void destroyGraphs();

  // Throws "cuda: <what> failed: CUDA_ERROR_… (text) [<file>:<line>]" unless result is 0.
  void check(int result, const std::string& what, const char* file, int line) const;
  std::string readGlobal(const std::string& name, bool required);
  void order(void* from, void* to, const char* what);

  CudaDriver& driver_;
  void* context_ = nullptr;  // CUcontext: the primary context of the GPU gpu_choice.h picks
  int device_ = 0;
  void* stream_ = nullptr;   // CUstream: every launch and copy, in order
  void* commStream_ = nullptr;  // CUstream of a distributed step's collectives, made when first asked for
  float* pinned_ = nullptr;     // hostStaging(): page-locked (cuMemAllocHost), so copies need not wait
  size_t pinnedFloats_ = 0;
  void* module_ = nullptr;   // CUmodule
  std::string libraryPath_;
  std::string lastLaunch_;   // names the kernel an asynchronous fault most likely came from
  std::deque<Kernel> kernels_;
  // Functions whose dynamic shared-memory limit was raised (cuFuncSetAttribute), to the most any of their steps asks.
  std::map<void*, uint32_t> dynamicSharedLimits_;
  bool graphs_ = false;  // NINCC_CUDA_GRAPHS=1 and the driver has the graph API
  // timeLaunches(true): each launch's kernel and its start and end events (CUevent), until takeLaunchTimes.
  struct TimedLaunch {
    std::string kernel;
    void* start = nullptr;
    void* end = nullptr;
  };
  bool timing_ = false;
  std::vector<TimedLaunch> timed_;
  void destroyTimed();
  std::map<std::string, Graph> recorded_;

  // Staged input (cuda_input_stage.cc): batch k goes through slot k % 2, so batch k+1 is copied into
  // one slot on copyStream_ while the step of batch k reads the other. A slot's `copied` event marks
  // its host→device copy done; its `read` event, the compute stream's copy out of it into the arena.
  struct InputSlot {
    void* host = nullptr;    // page-locked (cuMemAllocHost), `capacity` bytes; null: pageable fallback
    void* device = nullptr;  // device memory (CUdeviceptr), `capacity` bytes
    size_t capacity = 0;
    void* copied = nullptr;  // CUevent, recorded on copyStream_
    void* read = nullptr;    // CUevent, recorded on stream_
    std::vector<StagedInput> parts;  // dst: the arena buffer; src: the byte offset in the slot
  };
  void prepareInputSlot(InputSlot& slot, size_t bytes);
  void releaseInputSlots();
  InputSlot inputSlots_[2];
  void* copyStream_ = nullptr;  // CUstream of staged input copies, made at the first stageInputs
  uint64_t batchesStaged_ = 0, batchesTaken_ = 0;
  bool pinnedInputsFailed_ = false;  // cuMemAllocHost failed once: pageable copies from now on
  std::mutex stageMutex_;            // stageInputs (JS main thread) races takeStagedInputs (the run's worker)
};

}  // namespace nincc
