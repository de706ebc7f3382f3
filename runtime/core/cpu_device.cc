// CpuDevice: the kernels the library's table lists, called directly with the step's NinccArgs once the
// step's arguments match the signature the kernel was generated for.
#include "cpu_device.h"

#include "error.h"

namespace nincc {

namespace {

std::string describeStep(const Step& step) {
  return "kernel " + step.kernel + " (layer " + std::to_string(step.layer) +
         (step.source.empty() ? "" : " at " + step.source) + ")";
}

}  // namespace

void CpuDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  library_.open(path, sourceHash, {"cpu", NINCC_CPU_ABI, "nincc build"});
  auto table = reinterpret_cast<NinccKernelTableFn>(library_.require("nincc_kernels", "symbol"));
  int32_t count = -1;
  const NinccKernelEntry* entries = table(&count);
  if (!entries || count < 0) throw Error(path + ": nincc_kernels() returned no table; rebuild the artifact");
  for (int32_t i = 0; i < count; ++i) {
    const NinccKernelEntry& e = entries[i];
    if (!e.name || !e.fn || e.argCount < 0 || e.scalarCount < 0 || (e.argCount > 0 && !e.args))
      throw Error(path + ": entry " + std::to_string(i) + " of the kernel table is malformed; rebuild the artifact");
    kernels_[e.name] = &e;
  }
  partThreads_ = reinterpret_cast<NinccPartThreadsFn>(library_.find("nincc_cpu_part_threads"));
  runParts_ = reinterpret_cast<NinccRunPartsFn>(library_.find("nincc_cpu_run_parts"));
  holdWorkers_ = reinterpret_cast<NinccHoldWorkersFn>(library_.find("nincc_cpu_hold_workers"));
}

KernelHandle CpuDevice::findKernel(const Step& step) {
  if (!library_.isOpen()) throw Error("the cpu device has no kernel library loaded");
  auto found = kernels_.find(step.kernel);
  if (found == kernels_.end())
    throw Error(library_.path() + ": " + describeStep(step) +
                " is not in the library's kernel table (the library does not match plan.json; rebuild the artifact)");
  const NinccKernelEntry& e = *found->second;
  auto mismatch = [&](const std::string& what) {
    return Error(library_.path() + ": " + describeStep(step) + " " + what +
                 " (the library does not match plan.json; rebuild the artifact)");
  };
  if (step.args.size() != static_cast<size_t>(e.argCount) || step.scalars.size() != static_cast<size_t>(e.scalarCount))
    throw mismatch("takes " + std::to_string(e.argCount) + " buffers and " + std::to_string(e.scalarCount) +
                   " scalars, but the step passes " + std::to_string(step.args.size()) + " and " +
                   std::to_string(step.scalars.size()));
  for (int32_t i = 0; i < e.argCount; ++i) {
    const BufferRef& ref = step.args[i];
    const NinccKernelArg& want = e.args[i];
    if (!want.space || std::string(spaceName(ref.space)) != want.space || ref.size != want.size)
      throw mismatch("takes as argument " + std::to_string(i) + " " + std::to_string(want.size) + " elements of " +
                     (want.space ? want.space : "(null)") + ", but the step passes " + std::to_string(ref.size) +
                     " of " + spaceName(ref.space));
  }
  return reinterpret_cast<const void*>(e.fn);
}

void CpuDevice::launch(KernelHandle kernel, const Step&, const NinccArgs& args) {
  // A cpu kernel reports nothing: a crash inside it is a compiler bug, not an input error.
  reinterpret_cast<NinccKernelFn>(const_cast<void*>(kernel))(&args);
}

void CpuDevice::launchProgram(const std::string& program, const std::vector<StepLaunch>& steps) {
  if (!holdWorkers_) return Device::launchProgram(program, steps);
  // A kernel reports nothing and does not throw (launch), so the release always runs.
  holdWorkers_(1);
  Device::launchProgram(program, steps);
  holdWorkers_(0);
}

int CpuDevice::partThreads() const { return partThreads_ && runParts_ ? partThreads_() : 1; }

void CpuDevice::runParts(int64_t count, const std::function<void(int64_t)>& part) {
  if (!runParts_) return Device::runParts(count, part);
  using Part = std::function<void(int64_t)>;
  runParts_(count, [](void* context, int64_t i) { (*static_cast<const Part*>(context))(i); }, const_cast<Part*>(&part));
}

}  // namespace nincc
