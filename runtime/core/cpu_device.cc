// CpuDevice: the kernel library's functions called directly with the step's NinccArgs.
#include "cpu_device.h"

#include "error.h"

namespace nincc {

void CpuDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  library_.open(path, sourceHash, {"cpu", NINCC_CPU_ABI, "nincc build"});
}

KernelHandle CpuDevice::findKernel(const std::string& symbol) {
  if (!library_.isOpen()) throw Error("the cpu device has no kernel library loaded");
  return library_.require(symbol, "kernel symbol");
}

void CpuDevice::launch(KernelHandle kernel, const Step&, const NinccArgs& args) {
  // A cpu kernel reports nothing: a crash inside it is a compiler bug, not an input error.
  reinterpret_cast<NinccKernelFn>(const_cast<void*>(kernel))(&args);
}

}  // namespace nincc
