// The cuda device (SKELETON, issue 4: compiled but not registered in device_registry.cc and never run
// on a GPU yet). The CUDA driver API through dlopen("libcuda.so.1"), so the addon builds and loads
// where there is no CUDA: the artifact's fatbin (kernels.fatbin) by cuModuleLoadData, kernels by
// cuModuleGetFunction on their extern "C" names, launches by cuLaunchKernel with the same
// kernelParams (kernel_params.h) and launch rules (plan.json `launch`) as the emu device.
#pragma once
#include <deque>
#include <string>

#include "device.h"

namespace nincc {

struct CudaDriver;  // the driver entry points, resolved once

class CudaDevice final : public Device {
 public:
  CudaDevice();  // throws when libcuda.so.1 or a device is missing
  ~CudaDevice() override;

  std::string name() const override { return "cuda"; }
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  KernelHandle findKernel(const std::string& symbol) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;

  void* alloc(size_t bytes) override;
  void release(void* memory) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override;

 private:
  struct Kernel {
    std::string symbol;
    void* function = nullptr;     // CUfunction; null: not in the module
    std::string signature;        // "p…pi": the step's buffers then n (from the plan, see launch)
  };
  void check(int result, const std::string& what) const;

  CudaDriver* driver_ = nullptr;
  void* context_ = nullptr;  // CUcontext (the primary context of device 0)
  int device_ = 0;
  void* module_ = nullptr;   // CUmodule
  std::string libraryPath_;
  std::deque<Kernel> kernels_;
};

}  // namespace nincc
