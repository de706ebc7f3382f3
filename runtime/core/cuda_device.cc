// CudaDevice (see cuda_device.h) through the driver entry points of cuda_driver.h; every call is checked
// and a failure names the call, CUDA's error name and text, and this file's line.
#include "cuda_device.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "cuda_driver.h"
#include "error.h"
#include "gpu_choice.h"
#include "kernel_params.h"

namespace nincc {

CudaDriver& theDriver() {
  static CudaDriver* driver = [] {
    auto* d = new CudaDriver;
    d->load();
    return d;
  }();
  return *driver;
}

std::string cudaUnavailableReason() { return theDriver().unavailable; }

namespace {
// The GPU a cuda device of this process opens (gpu_choice.h), through `check` (which throws on an error).
template <class Check>
CUdevice chosenDevice(CudaDriver& driver, Check check) {
  if (!driver.unavailable.empty()) throw Error("device \"cuda\" is not available: " + driver.unavailable);
  int count = 0, device = 0;
  check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount");
  const int ordinal = chooseGpu(gpuChoiceFromEnvironment(count));
  check(driver.cuDeviceGet(&device, ordinal), "cuDeviceGet(" + std::to_string(ordinal) + ")");
  return device;
}

std::string gpuName(CudaDriver& driver, CUdevice device) {
  char name[256] = {};
  const CUresult r = driver.cuDeviceGetName(name, int(sizeof name) - 1, device);
  if (r != kSuccess) throw Error("cuda: cuDeviceGetName failed: " + driver.errorText(r));
  return name;
}

void checkCall(CUresult r, const std::string& what) {
  if (r != kSuccess) throw Error("cuda: " + what + " failed: " + theDriver().errorText(r));
}
}  // namespace

void makeChosenGpuCurrent() {
  CudaDriver& driver = theDriver();
  const CUdevice device = chosenDevice(driver, checkCall);
  // Retained for the life of the process, as the one communicator that needs it is.
  void* context = nullptr;
  checkCall(driver.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
  checkCall(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

std::string chosenGpuName() { return gpuName(theDriver(), chosenDevice(theDriver(), checkCall)); }

CudaDevice::CudaDevice() : driver_(theDriver()) {
  if (!driver_.unavailable.empty()) throw Error("device \"cuda\" is not available: " + driver_.unavailable);
  int count = 0;
  NINCC_CU(driver_.cuDeviceGetCount(&count), "cuDeviceGetCount");
  const int ordinal = chooseGpu(gpuChoiceFromEnvironment(count));
  NINCC_CU(driver_.cuDeviceGet(&device_, ordinal), "cuDeviceGet(" + std::to_string(ordinal) + ")");
  NINCC_CU(driver_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  NINCC_CU(driver_.cuCtxSetCurrent(context_), "cuCtxSetCurrent");
  NINCC_CU(driver_.cuStreamCreate(&stream_, 0), "cuStreamCreate");
  const char* graphs = std::getenv("NINCC_CUDA_GRAPHS");
  graphs_ = graphs && std::string(graphs) == "1";
  if (graphs_ && !driver_.graphsMissing.empty()) {
    driver_.cuStreamDestroy(stream_);
    driver_.cuDevicePrimaryCtxRelease(device_);
    throw Error("NINCC_CUDA_GRAPHS=1: " + driver_.graphsMissing + "; unset it to launch kernel by kernel");
  }
}

void CudaDevice::destroyGraphs() {
  for (auto& entry : recorded_) {
    if (entry.second.exec) driver_.cuGraphExecDestroy(entry.second.exec);
    if (entry.second.graph) driver_.cuGraphDestroy(entry.second.graph);
  }
  recorded_.clear();
}

CudaDevice::~CudaDevice() {
  // Errors here cannot be reported (a destructor); a faulted context fails these calls harmlessly.
  driver_.cuCtxSetCurrent(context_);
  if (stream_) driver_.cuStreamSynchronize(stream_);
  destroyGraphs();
  destroyTimed();
  if (commStream_) driver_.cuStreamSynchronize(commStream_);
  releaseInputSlots();
  if (module_) driver_.cuModuleUnload(module_);
  if (commStream_) driver_.cuStreamDestroy(commStream_);
  if (pinned_) driver_.cuMemFreeHost(pinned_);
  if (stream_) driver_.cuStreamDestroy(stream_);
  if (context_) driver_.cuDevicePrimaryCtxRelease(device_);
}

void CudaDevice::check(int result, const std::string& what, const char* file, int line) const {
  if (result == kSuccess) return;
  const char* slash = std::strrchr(file, '/');
  throw Error("cuda: " + what + " failed: " + driver_.errorText(result) + " [" + (slash ? slash + 1 : file) + ":" +
              std::to_string(line) + "]");
}

// The bytes of a __device__ global of the module (a NUL-terminated string); "" when absent and not required.
std::string CudaDevice::readGlobal(const std::string& name, bool required) {
  CUdeviceptr address = 0;
  size_t bytes = 0;
  const CUresult r = driver_.cuModuleGetGlobal(&address, &bytes, module_, name.c_str());
  if (r == kErrorNotFound && !required) return "";
  NINCC_CU(r, libraryPath_ + ": cuModuleGetGlobal(" + name + ")");
  std::vector<char> text(bytes + 1, '\0');
  NINCC_CU(driver_.cuMemcpyDtoHAsync(text.data(), address, bytes, stream_), "cuMemcpyDtoHAsync(" + name + ")");
  NINCC_CU(driver_.cuStreamSynchronize(stream_), "cuStreamSynchronize");
  return text.data();
}

void CudaDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  if (module_) throw Error("the cuda device already holds a kernel module (" + libraryPath_ + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(path + ": the cuda fatbin is missing (rebuild the artifact with `nincc build --target cuda` where nvcc exists)");
  std::vector<char> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  image.push_back('\0');  // a fatbin carries its size; PTX text (also accepted) must end in NUL
  NINCC_CU_BIND();
  NINCC_CU(driver_.cuModuleLoadData(&module_, image.data()),
           path + ": cuModuleLoadData (a fatbin for sm_80/sm_90 + compute_90 PTX; an older GPU or driver cannot load it)");
  libraryPath_ = path;
  // NINCC_LIBRARY's identity: extern "C" __device__ const char nincc_source_hash[] (device/cuda.cuh).
  const std::string hash = readGlobal("nincc_source_hash", true);
  if (hash != sourceHash)
    throw Error(path + ": source hash \"" + hash + "\" does not match plan.json's sourceHash \"" + sourceHash +
                "\": the module and the plan come from different builds; rebuild the artifact");
}

KernelHandle CudaDevice::findKernel(const Step& step) {
  NINCC_CU_BIND();
  const std::string& symbol = step.kernel;
  if (!module_) throw Error("the cuda device has no kernel module loaded");
  Kernel kernel;
  kernel.symbol = symbol;
  // As on emu, a kernel the module lacks fails at launch: a plan's cpu-only programs must still load.
  const CUresult r = driver_.cuModuleGetFunction(&kernel.function, module_, symbol.c_str());
  if (r != kSuccess && r != kErrorNotFound) NINCC_CU(r, "cuModuleGetFunction(" + symbol + ")");
  if (r != kSuccess) kernel.function = nullptr;
  if (kernel.function) kernel.signature = readGlobal("nincc_signature_" + symbol, true);
  // A step that launches with more than 48 KiB of dynamic shared memory (the plan's launch.shared) needs its function's
  // limit raised first: the attribute is the function's, so it is set once, to the most any step of it asks.
  const uint32_t shared = step.launch.sharedBytes;
  if (kernel.function && shared > kDefaultDynamicSharedBytes && shared > dynamicSharedLimits_[kernel.function]) {
    NINCC_CU(driver_.cuFuncSetAttribute(kernel.function, kFuncAttributeMaxDynamicSharedBytes, static_cast<int>(shared)),
             "cuFuncSetAttribute(" + symbol + ", MAX_DYNAMIC_SHARED_SIZE_BYTES, " + std::to_string(shared) + ")");
    dynamicSharedLimits_[kernel.function] = shared;
  }
  kernels_.push_back(std::move(kernel));
  return &kernels_.back();
}

struct CudaDevice::Prepared {
  std::string what;      // "kernel k3_conv (layer 3 at nin.model:12:5)"
  std::string geometry;  // "grid (…), block (…), N B dynamic shared"
  std::unique_ptr<KernelParams> params;
  KernelNodeParams node;  // the same launch as a graph node
};

CudaDevice::Prepared CudaDevice::prepare(const Kernel& kernel, const Step& step, const NinccArgs& args) const {
  Prepared p;
  p.what = "kernel " + step.kernel + " (layer " + std::to_string(step.layer) +
           (step.source.empty() ? "" : " at " + step.source) + ")";
  if (!step.hasLaunch)
    throw Error(p.what + ": not yet supported on cuda (this step has no CUDA kernel in the artifact; run it on the cpu device)");
  if (!kernel.function)
    throw Error(libraryPath_ + ": missing kernel `" + kernel.symbol + "` for " + p.what +
                " (the fatbin does not match plan.json; rebuild the artifact)");
  p.params = std::make_unique<KernelParams>(p.what + " on cuda", kernel.signature, step, args);
  uint32_t grid[3], block[3];
  launchGeometry(step.launch, args.n, grid, block);
  p.geometry = "grid (" + std::to_string(grid[0]) + "," + std::to_string(grid[1]) + "," + std::to_string(grid[2]) +
               "), block (" + std::to_string(block[0]) + "," + std::to_string(block[1]) + "," +
               std::to_string(block[2]) + "), " + std::to_string(step.launch.sharedBytes) + " B dynamic shared";
  p.node = {kernel.function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
            static_cast<unsigned>(step.launch.sharedBytes), p.params->data(), nullptr, nullptr, nullptr};
  return p;
}

void CudaDevice::launch(KernelHandle handle, const Step& step, const NinccArgs& args) {
  NINCC_CU_BIND();
  const Prepared p = prepare(*static_cast<const Kernel*>(handle), step, args);
  const KernelNodeParams& k = p.node;
  TimedLaunch timed{step.kernel};
  if (timing_) {
    // Flags 0: timing events (the device's other events are made with CU_EVENT_DISABLE_TIMING).
    NINCC_CU(driver_.cuEventCreate(&timed.start, 0), "cuEventCreate of the timing event before " + p.what);
    timed_.push_back(timed);  // owned by timed_ from here, so an error below still frees it
    NINCC_CU(driver_.cuEventCreate(&timed_.back().end, 0), "cuEventCreate of the timing event after " + p.what);
    NINCC_CU(driver_.cuEventRecord(timed_.back().start, stream_), "cuEventRecord before " + p.what);
  }
  NINCC_CU(driver_.cuLaunchKernel(k.func, k.gridDimX, k.gridDimY, k.gridDimZ, k.blockDimX, k.blockDimY, k.blockDimZ,
                                  k.sharedMemBytes, stream_, k.kernelParams, nullptr),
           "cuLaunchKernel of " + p.what + " with " + p.geometry);
  if (timing_) NINCC_CU(driver_.cuEventRecord(timed_.back().end, stream_), "cuEventRecord after " + p.what);
  lastLaunch_ = p.what + " with " + p.geometry;
}

std::string CudaDevice::hardwareName() const { return gpuName(driver_, device_); }

bool CudaDevice::timeLaunches(bool on) {
  timing_ = on;
  return true;
}

void CudaDevice::destroyTimed() {
  for (const TimedLaunch& t : timed_) {
    if (t.start) driver_.cuEventDestroy(t.start);
    if (t.end) driver_.cuEventDestroy(t.end);
  }
  timed_.clear();
}

std::vector<LaunchTime> CudaDevice::takeLaunchTimes() {
  NINCC_CU_BIND();
  std::vector<LaunchTime> out;
  try {
    synchronize();
    for (const TimedLaunch& t : timed_) {
      float ms = 0;
      NINCC_CU(driver_.cuEventElapsedTime(&ms, t.start, t.end), "cuEventElapsedTime of kernel " + t.kernel);
      out.push_back({t.kernel, double(ms) * 1000});
    }
  } catch (...) {
    destroyTimed();
    throw;
  }
  destroyTimed();
  return out;
}

namespace {
// What a graph node's parameters are made of, bit for bit: the buffer pointers, n, the scalars, the seed.
std::vector<uint64_t> parameterValues(const StepLaunch& s) {
  std::vector<uint64_t> v;
  for (size_t i = 0; i < s.step->args.size(); ++i) v.push_back(reinterpret_cast<uintptr_t>(s.args.ptr[i]));
  v.push_back(static_cast<uint64_t>(s.args.n));
  for (size_t i = 0; i < s.step->scalars.size(); ++i) {
    uint64_t bits;
    std::memcpy(&bits, &s.args.scalar[i], sizeof bits);
    v.push_back(bits);
  }
  v.push_back(s.step->launch.seed ? s.args.seed : 0);
  return v;
}
}  // namespace

// Kernel nodes in step order, each depending on the one before: the stream's order, as one submission.
CudaDevice::Graph& CudaDevice::record(const std::string& program, const std::vector<StepLaunch>& steps) {
  Graph g;
  NINCC_CU(driver_.cuGraphCreate(&g.graph, 0), "cuGraphCreate for " + program);
  try {
    for (const StepLaunch& s : steps) {
      const Prepared p = prepare(*static_cast<const Kernel*>(s.kernel), *s.step, s.args);
      void* node = nullptr;
      void* const* after = g.nodes.empty() ? nullptr : &g.nodes.back();
      NINCC_CU(driver_.cuGraphAddKernelNode(&node, g.graph, after, after ? 1 : 0, &p.node),
               "cuGraphAddKernelNode of " + p.what + " with " + p.geometry);
      g.nodes.push_back(node);
      g.values.push_back(parameterValues(s));
    }
    NINCC_CU(driver_.cuGraphInstantiateWithFlags(&g.exec, g.graph, 0),
             "cuGraphInstantiateWithFlags of " + program + " (" + std::to_string(steps.size()) + " kernels)");
  } catch (...) {
    driver_.cuGraphDestroy(g.graph);
    throw;
  }
  return recorded_.emplace(program, std::move(g)).first->second;
}

void CudaDevice::launchProgram(const std::string& program, const std::vector<StepLaunch>& steps) {
  // Timed launches go one by one: events between a graph's nodes would need a graph of their own.
  if (!graphs_ || timing_ || steps.empty()) return Device::launchProgram(program, steps);
  NINCC_CU_BIND();
  auto found = recorded_.find(program);
  Graph& g = found != recorded_.end() ? found->second : record(program, steps);
  if (found != recorded_.end()) {
    if (g.nodes.size() != steps.size())
      throw Error("cuda: the graph of " + program + " has " + std::to_string(g.nodes.size()) + " kernels, the call " +
                  std::to_string(steps.size()));
    // Most calls change nothing (same batch, same buffers); a step's scalars (lr) or seed (dropout) do.
    for (size_t i = 0; i < steps.size(); ++i) {
      std::vector<uint64_t> values = parameterValues(steps[i]);
      if (values == g.values[i]) continue;
      const Prepared p = prepare(*static_cast<const Kernel*>(steps[i].kernel), *steps[i].step, steps[i].args);
      NINCC_CU(driver_.cuGraphExecKernelNodeSetParams(g.exec, g.nodes[i], &p.node),
               "cuGraphExecKernelNodeSetParams of " + p.what);
      g.values[i] = std::move(values);
    }
  }
  NINCC_CU(driver_.cuGraphLaunch(g.exec, stream_),
           "cuGraphLaunch of " + program + " (" + std::to_string(steps.size()) + " kernels)");
  lastLaunch_ = "the graph of " + program + " (" + std::to_string(steps.size()) + " kernels)";
}

void* CudaDevice::alloc(size_t bytes, FirstWrite) {
  NINCC_CU_BIND();
  // cuMemAlloc returns 256-byte aligned memory (the Device contract asks for 64).
  const size_t size = bytes ? bytes : 64;
  CUdeviceptr p = 0;
  NINCC_CU(driver_.cuMemAlloc(&p, size), "cuMemAlloc(" + std::to_string(size) + " bytes)");
  NINCC_CU(driver_.cuMemsetD8Async(p, 0, size, stream_), "cuMemsetD8Async");
  NINCC_CU(driver_.cuStreamSynchronize(stream_), "cuStreamSynchronize after cuMemsetD8Async");
  return reinterpret_cast<void*>(p);
}

void CudaDevice::release(void* memory) {
  if (!memory) return;
  NINCC_CU_BIND();
  NINCC_CU(driver_.cuMemFree(reinterpret_cast<CUdeviceptr>(memory)), "cuMemFree");
}

void CudaDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  NINCC_CU_BIND();
  // From pageable memory the call returns once `src` is staged, so the caller may reuse it at once.
  if (bytes)
    NINCC_CU(driver_.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(dst), src, bytes, stream_),
             "cuMemcpyHtoDAsync(" + std::to_string(bytes) + " bytes)");
}

void CudaDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  NINCC_CU_BIND();
  if (!bytes) return;
  NINCC_CU(driver_.cuMemcpyDtoHAsync(dst, reinterpret_cast<CUdeviceptr>(src), bytes, stream_),
           "cuMemcpyDtoHAsync(" + std::to_string(bytes) + " bytes)");
  synchronize();
}

void* CudaDevice::commStream() {
  NINCC_CU_BIND();
  // Non-blocking (CU_STREAM_NON_BLOCKING): it is ordered with the compute stream by events alone.
  if (!commStream_) NINCC_CU(driver_.cuStreamCreate(&commStream_, 1), "cuStreamCreate of the communication stream");
  return commStream_;
}

// An event recorded on `from` after its queued work, waited for by `to`. Destroyed at once: a wait
// already queued keeps it, and the driver frees it when it completes.
void CudaDevice::order(void* from, void* to, const char* what) {
  NINCC_CU_BIND();
  void* event = nullptr;
  NINCC_CU(driver_.cuEventCreate(&event, 2 /* CU_EVENT_DISABLE_TIMING */), std::string("cuEventCreate: ") + what);
  const CUresult recorded = driver_.cuEventRecord(event, from);
  const CUresult waited = recorded == kSuccess ? driver_.cuStreamWaitEvent(to, event, 0) : kSuccess;
  driver_.cuEventDestroy(event);
  NINCC_CU(recorded, std::string("cuEventRecord: ") + what);
  NINCC_CU(waited, std::string("cuStreamWaitEvent: ") + what);
}

void CudaDevice::commWaitsForCompute() { order(stream_, commStream(), "the communication stream waits for the compute stream"); }

void CudaDevice::computeWaitsForComm() { order(commStream(), stream_, "the compute stream waits for the communication stream"); }

void CudaDevice::commCopyToHost(void* dst, const void* src, size_t bytes) {
  NINCC_CU_BIND();
  if (bytes)
    NINCC_CU(driver_.cuMemcpyDtoHAsync(dst, reinterpret_cast<CUdeviceptr>(src), bytes, commStream()),
             "cuMemcpyDtoHAsync(" + std::to_string(bytes) + " bytes) on the communication stream");
}

void CudaDevice::commCopyToDevice(void* dst, const void* src, size_t bytes) {
  NINCC_CU_BIND();
  if (bytes)
    NINCC_CU(driver_.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(dst), src, bytes, commStream()),
             "cuMemcpyHtoDAsync(" + std::to_string(bytes) + " bytes) on the communication stream");
}

float* CudaDevice::hostStaging(size_t floats) {
  if (floats <= pinnedFloats_) return pinned_;
  NINCC_CU_BIND();
  if (pinned_) NINCC_CU(driver_.cuMemFreeHost(pinned_), "cuMemFreeHost");
  pinned_ = nullptr;
  pinnedFloats_ = 0;
  void* p = nullptr;
  NINCC_CU(driver_.cuMemAllocHost(&p, floats * 4), "cuMemAllocHost(" + std::to_string(floats * 4) + " bytes)");
  pinned_ = static_cast<float*>(p);
  pinnedFloats_ = floats;
  return pinned_;
}

void* CudaDevice::commMark() {
  NINCC_CU_BIND();
  void* event = nullptr;
  NINCC_CU(driver_.cuEventCreate(&event, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate of a communication mark");
  const CUresult r = driver_.cuEventRecord(event, commStream());
  if (r != kSuccess) driver_.cuEventDestroy(event);
  NINCC_CU(r, "cuEventRecord of a communication mark");
  return event;
}

void CudaDevice::hostWaits(void* mark) {
  NINCC_CU_BIND();
  const CUresult r = driver_.cuEventSynchronize(mark);
  driver_.cuEventDestroy(mark);
  NINCC_CU(r, "cuEventSynchronize of a communication mark");
}

void CudaDevice::synchronize() {
  NINCC_CU_BIND();
  // A kernel's fault surfaces here, asynchronously: name the last launch as the likely culprit.
  NINCC_CU(driver_.cuStreamSynchronize(stream_),
           "cuStreamSynchronize" + (lastLaunch_.empty() ? std::string() : " (after " + lastLaunch_ + ")"));
}

}  // namespace nincc
