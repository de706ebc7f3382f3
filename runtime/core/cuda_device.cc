// CudaDevice (see cuda_device.h). Declares the few driver API types and entry points it needs instead
// of including cuda.h, so it compiles on machines without CUDA headers; every call is checked and a
// failure names the call, CUDA's error name and text, and this file's line.
#include "cuda_device.h"

#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <vector>

#include "error.h"
#include "kernel_params.h"

namespace nincc {

namespace {
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;  // 64-bit on every platform the driver API v2 names serve
constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNotFound = 500;  // CUDA_ERROR_NOT_FOUND: an absent function or global name
}  // namespace

struct CudaDriver {
  void* handle = nullptr;
  std::string unavailable;  // empty: usable
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(void**, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(void*) = nullptr;
  CUresult (*cuStreamCreate)(void**, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(void*) = nullptr;
  CUresult (*cuStreamSynchronize)(void*) = nullptr;
  CUresult (*cuModuleLoadData)(void**, const void*) = nullptr;
  CUresult (*cuModuleUnload)(void*) = nullptr;
  CUresult (*cuModuleGetFunction)(void**, void*, const char*) = nullptr;
  CUresult (*cuModuleGetGlobal)(CUdeviceptr*, size_t*, void*, const char*) = nullptr;
  CUresult (*cuLaunchKernel)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
                             void**, void**) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, void*) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void*, size_t, void*) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void*, CUdeviceptr, size_t, void*) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char**) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;

  // False (and `unavailable` says why) when the symbol is missing.
  template <class F>
  bool resolve(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(handle, name));
    if (!f && unavailable.empty()) unavailable = std::string(library()) + " lacks `" + name + "` (update the NVIDIA driver)";
    return f != nullptr;
  }

  static const char* library() {
    const char* chosen = std::getenv("NINCC_CUDA_DRIVER");
    return chosen && *chosen ? chosen : "libcuda.so.1";
  }

  std::string errorText(CUresult r) const {
    const char *name = nullptr, *text = nullptr;
    if (cuGetErrorName) cuGetErrorName(r, &name);
    if (cuGetErrorString) cuGetErrorString(r, &text);
    std::string out = name ? name : "CUDA error " + std::to_string(r);
    if (text) out += std::string(" (") + text + ")";
    return out;
  }

  void load() {
    handle = dlopen(library(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      unavailable = std::string(library()) + " did not load (" + (why ? why : "no NVIDIA driver") + ")";
      return;
    }
    resolve(cuGetErrorName, "cuGetErrorName");
    resolve(cuGetErrorString, "cuGetErrorString");
    resolve(cuInit, "cuInit");
    resolve(cuDeviceGetCount, "cuDeviceGetCount");
    resolve(cuDeviceGet, "cuDeviceGet");
    resolve(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    resolve(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    resolve(cuCtxSetCurrent, "cuCtxSetCurrent");
    resolve(cuStreamCreate, "cuStreamCreate");
    resolve(cuStreamDestroy, "cuStreamDestroy_v2");
    resolve(cuStreamSynchronize, "cuStreamSynchronize");
    resolve(cuModuleLoadData, "cuModuleLoadData");
    resolve(cuModuleUnload, "cuModuleUnload");
    resolve(cuModuleGetFunction, "cuModuleGetFunction");
    resolve(cuModuleGetGlobal, "cuModuleGetGlobal_v2");
    resolve(cuLaunchKernel, "cuLaunchKernel");
    resolve(cuMemAlloc, "cuMemAlloc_v2");
    resolve(cuMemFree, "cuMemFree_v2");
    resolve(cuMemsetD8Async, "cuMemsetD8Async");
    resolve(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    resolve(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    if (!unavailable.empty()) return;
    CUresult r = cuInit(0);
    if (r != kSuccess) {
      unavailable = "cuInit failed: " + errorText(r);
      return;
    }
    int count = 0;
    r = cuDeviceGetCount(&count);
    if (r != kSuccess) unavailable = "cuDeviceGetCount failed: " + errorText(r);
    else if (count == 0) unavailable = "the driver sees no GPU";
  }
};

namespace {
// Loaded once and never unloaded: the driver does not support dlclose after cuInit.
CudaDriver& theDriver() {
  static CudaDriver* driver = [] {
    auto* d = new CudaDriver;
    d->load();
    return d;
  }();
  return *driver;
}
}  // namespace

std::string cudaUnavailableReason() { return theDriver().unavailable; }

#define NINCC_CU(call, what) check((call), (what), __LINE__)
// The context is current per OS thread, and the runtime calls from Node's main thread and its workers.
#define NINCC_CU_BIND() NINCC_CU(driver_.cuCtxSetCurrent(context_), "cuCtxSetCurrent")

CudaDevice::CudaDevice() : driver_(theDriver()) {
  if (!driver_.unavailable.empty()) throw Error("device \"cuda\" is not available: " + driver_.unavailable);
  NINCC_CU(driver_.cuDeviceGet(&device_, 0), "cuDeviceGet(0)");
  NINCC_CU(driver_.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  NINCC_CU(driver_.cuCtxSetCurrent(context_), "cuCtxSetCurrent");
  NINCC_CU(driver_.cuStreamCreate(&stream_, 0), "cuStreamCreate");
}

CudaDevice::~CudaDevice() {
  // Errors here cannot be reported (a destructor); a faulted context fails these calls harmlessly.
  driver_.cuCtxSetCurrent(context_);
  if (stream_) driver_.cuStreamSynchronize(stream_);
  if (module_) driver_.cuModuleUnload(module_);
  if (stream_) driver_.cuStreamDestroy(stream_);
  if (context_) driver_.cuDevicePrimaryCtxRelease(device_);
}

void CudaDevice::check(int result, const std::string& what, int line) const {
  if (result == kSuccess) return;
  throw Error("cuda: " + what + " failed: " + driver_.errorText(result) + " [cuda_device.cc:" + std::to_string(line) +
              "]");
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
  kernels_.push_back(std::move(kernel));
  return &kernels_.back();
}

void CudaDevice::launch(KernelHandle handle, const Step& step, const NinccArgs& args) {
  NINCC_CU_BIND();
  const Kernel& kernel = *static_cast<const Kernel*>(handle);
  const std::string what = "kernel " + step.kernel + " (layer " + std::to_string(step.layer) +
                           (step.source.empty() ? "" : " at " + step.source) + ")";
  if (!step.hasLaunch)
    throw Error(what + ": not yet supported on cuda (this step has no CUDA kernel in the artifact; run it on the cpu device)");
  if (!kernel.function)
    throw Error(libraryPath_ + ": missing kernel `" + kernel.symbol + "` for " + what +
                " (the fatbin does not match plan.json; rebuild the artifact)");
  KernelParams params(what + " on cuda", kernel.signature, step, args);
  uint32_t grid[3], block[3];
  launchGeometry(step.launch, args.n, grid, block);
  const std::string geometry = "grid (" + std::to_string(grid[0]) + "," + std::to_string(grid[1]) + "," +
                               std::to_string(grid[2]) + "), block (" + std::to_string(block[0]) + "," +
                               std::to_string(block[1]) + "," + std::to_string(block[2]) + "), " +
                               std::to_string(step.launch.sharedBytes) + " B dynamic shared";
  NINCC_CU(driver_.cuLaunchKernel(kernel.function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                  step.launch.sharedBytes, stream_, params.data(), nullptr),
           "cuLaunchKernel of " + what + " with " + geometry);
  lastLaunch_ = what + " with " + geometry;
}

void* CudaDevice::alloc(size_t bytes) {
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

void CudaDevice::synchronize() {
  NINCC_CU_BIND();
  // A kernel's fault surfaces here, asynchronously: name the last launch as the likely culprit.
  NINCC_CU(driver_.cuStreamSynchronize(stream_),
           "cuStreamSynchronize" + (lastLaunch_.empty() ? std::string() : " (after " + lastLaunch_ + ")"));
}

}  // namespace nincc
