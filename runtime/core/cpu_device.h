// The cpu device: host memory and a generated kernel library (kernels.cpu.so) loaded with dlopen.
#pragma once
#include "device.h"

namespace nincc {

class CpuDevice final : public Device {
 public:
  CpuDevice() = default;
  ~CpuDevice() override;

  std::string name() const override { return "cpu"; }
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  KernelHandle findKernel(const std::string& symbol) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;

  void* alloc(size_t bytes) override;
  void release(void* memory) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}

 private:
  void* requireSymbol(const char* symbol, const char* what) const;

  void* library_ = nullptr;
  std::string libraryPath_;
};

}  // namespace nincc
