// The cpu device: host memory and a generated kernel library (kernels.cpu.so) loaded with dlopen, whose
// functions are called only through the library's own kernel table.
#pragma once
#include <map>

#include "host_device.h"
#include "kernel_library.h"

namespace nincc {

class CpuDevice final : public HostMemoryDevice {
 public:
  std::string name() const override { return "cpu"; }
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  KernelHandle findKernel(const Step& step) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;
  // The library's own thread pool (nincc_cpu_part_threads, nincc_cpu_run_parts), where it exports them.
  int partThreads() const override;
  void runParts(int64_t count, const std::function<void(int64_t)>& part) override;
  // The steps in order, the library's pool workers held awake throughout (nincc_cpu_hold_workers).
  void launchProgram(const std::string& program, const std::vector<StepLaunch>& steps) override;

 private:
  KernelLibrary library_;
  std::map<std::string, const NinccKernelEntry*> kernels_;  // nincc_kernels(), by name
  NinccPartThreadsFn partThreads_ = nullptr;  // optional: a library built before them runs parts in order
  NinccRunPartsFn runParts_ = nullptr;
  NinccHoldWorkersFn holdWorkers_ = nullptr;  // optional as well: without it, workers sleep between a program's jobs
};

}  // namespace nincc
