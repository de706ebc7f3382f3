// EmuDevice: dlopen of kernels.emu.so with the ABI and source-hash checks, kernelParams built from
// the step's buffers and N, and launches with the step's launch rule (docs/emu.md, docs/artifact.md).
#include "emu_device.h"

#include <cstdlib>
#include <cstring>
#include <thread>

#include "error.h"
#include "kernel_params.h"

namespace nincc {

namespace {

std::string describe(const Step& step) {
  return "kernel " + step.kernel + " (layer " + std::to_string(step.layer) +
         (step.source.empty() ? "" : " at " + step.source) + ")";
}

// NINCC_EMU_ORDER=forward|reverse|shuffled[:seed], NINCC_EMU_WORKERS=n, NINCC_EMU_REVERSE_THREADS=1
// (the emulator's own variables, docs/emu.md); by default blocks run on up to 8 OS threads.
void applyEnvironment(NinccEmuLaunch& l) {
  l.block_order = NINCC_EMU_FORWARD;
  if (const char* order = std::getenv("NINCC_EMU_ORDER")) {
    if (std::strncmp(order, "reverse", 7) == 0) l.block_order = NINCC_EMU_REVERSE;
    if (std::strncmp(order, "shuffled", 8) == 0) {
      l.block_order = NINCC_EMU_SHUFFLED;
      if (order[8] == ':') l.shuffle_seed = std::strtoull(order + 9, nullptr, 10);
    }
  }
  unsigned workers = std::thread::hardware_concurrency();
  if (workers == 0) workers = 1;
  if (workers > 8) workers = 8;
  if (const char* w = std::getenv("NINCC_EMU_WORKERS")) workers = unsigned(std::strtoul(w, nullptr, 10));
  l.workers = workers;
  if (const char* reverse = std::getenv("NINCC_EMU_REVERSE_THREADS")) l.reverse_threads = reverse[0] == '1';
}

}  // namespace

void EmuDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  library_.open(path, sourceHash, {"emu", NINCC_EMU_ABI, "nincc build --target emu"});
}

KernelHandle EmuDevice::findKernel(const Step& step) {
  if (!library_.isOpen()) throw Error("the emu device has no kernel library loaded");
  const std::string& symbol = step.kernel;
  Kernel kernel;
  kernel.symbol = symbol;
  kernel.descriptor = static_cast<const NinccEmuKernel*>(library_.find("nincc_emu_" + symbol));
  kernels_.push_back(std::move(kernel));
  return &kernels_.back();
}

void EmuDevice::launch(KernelHandle handle, const Step& step, const NinccArgs& args) {
  const Kernel& kernel = *static_cast<const Kernel*>(handle);
  if (!step.hasLaunch)
    throw Error(describe(step) + ": has no launch rule in plan.json, so it has no CUDA kernel (rebuild the artifact "
                "with `nincc build --target emu`)");
  if (!kernel.descriptor)
    throw Error(library_.path() + ": missing kernel `nincc_emu_" + kernel.symbol + "` for " + describe(step) +
                " (the library does not match plan.json; rebuild the artifact)");

  const std::string signature = kernel.descriptor->signature ? kernel.descriptor->signature : "";
  KernelParams params(describe(step) + " on emu", signature, step, args);
  NinccEmuLaunch l;
  std::memset(&l, 0, sizeof l);
  launchGeometry(step.launch, args.n, l.grid, l.block);
  l.dynamic_shared_bytes = step.launch.sharedBytes;
  l.param_count = params.count();
  applyEnvironment(l);
  if (kernel.descriptor->launch(&l, params.data()) != 0)
    throw Error(describe(step) + " failed on the emu device: " + l.error);
}

}  // namespace nincc
