// The cpu device: host memory and a generated kernel library (kernels.cpu.so) loaded with dlopen.
#pragma once
#include "host_device.h"
#include "kernel_library.h"

namespace nincc {

class CpuDevice final : public HostMemoryDevice {
 public:
  std::string name() const override { return "cpu"; }
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  KernelHandle findKernel(const std::string& symbol) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;

 private:
  KernelLibrary library_;
};

}  // namespace nincc
