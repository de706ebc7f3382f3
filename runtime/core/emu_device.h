// The emu device: the generated CUDA (kernels.cu) compiled by g++ -DNINCC_EMU into kernels.emu.so
// and run by the SIMT emulator on the CPU (docs/emu.md). Host memory, like the cpu device; kernels
// are found by `nincc_emu_<kernel>` and launched with cuLaunchKernel-style kernelParams and the
// grid/block of the step's launch rule for this N (docs/artifact.md).
#pragma once
#include <deque>
#include <string>

#include "host_device.h"
#include "kernel_library.h"
#include "nincc/device/emu_abi.h"

namespace nincc {

class EmuDevice final : public HostMemoryDevice {
 public:
  std::string name() const override { return "emu"; }
  void loadLibrary(const std::string& path, const std::string& sourceHash) override;
  // A kernel the library lacks resolves to a handle that fails at launch: the emu library has only
  // the inference kernels so far, and a plan's training programs must still load.
  KernelHandle findKernel(const Step& step) override;
  void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) override;

 private:
  struct Kernel {
    std::string symbol;
    const NinccEmuKernel* descriptor = nullptr;  // null: not in the library
  };
  KernelLibrary library_;
  std::deque<Kernel> kernels_;  // stable addresses: KernelHandle points into it
};

}  // namespace nincc
