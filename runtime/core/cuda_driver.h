// The CUDA driver API entry points the cuda device calls, resolved once per process by dlopen of
// libcuda.so.1 (or NINCC_CUDA_DRIVER) — declared here instead of including cuda.h, so the runtime builds
// where there are no CUDA headers. Shared by cuda_device.cc and cuda_input_stage.cc.
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace nincc {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;  // 64-bit on every platform the driver API v2 names serve
constexpr CUresult kSuccess = 0;
constexpr CUresult kErrorNotFound = 500;  // CUDA_ERROR_NOT_FOUND: an absent function or global name
// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: a launch may ask for more than 48 KiB of dynamic shared
// memory only after its function's attribute was raised to at least that much (the launch fails otherwise).
constexpr int kFuncAttributeMaxDynamicSharedBytes = 8;
constexpr unsigned kDefaultDynamicSharedBytes = 48 * 1024;

// CUDA_KERNEL_NODE_PARAMS_v2 of cuda.h (CUDA 12 and later), the layout cuGraphAddKernelNode_v2 takes.
struct KernelNodeParams {
  void* func;  // CUfunction
  unsigned gridDimX, gridDimY, gridDimZ;
  unsigned blockDimX, blockDimY, blockDimZ;
  unsigned sharedMemBytes;
  void** kernelParams;
  void** extra;
  void* kern;  // CUkernel: unused when func is set
  void* ctx;   // CUcontext: ignored when func is set
};

struct CudaDriver {
  void* handle = nullptr;
  std::string unavailable;  // empty: usable
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGetCount)(int*) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDeviceGetName)(char*, int, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(void**, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(void*) = nullptr;
  CUresult (*cuStreamCreate)(void**, unsigned) = nullptr;
  CUresult (*cuStreamDestroy)(void*) = nullptr;
  CUresult (*cuStreamSynchronize)(void*) = nullptr;
  CUresult (*cuStreamWaitEvent)(void*, void*, unsigned) = nullptr;
  CUresult (*cuEventCreate)(void**, unsigned) = nullptr;
  CUresult (*cuEventRecord)(void*, void*) = nullptr;
  CUresult (*cuEventDestroy)(void*) = nullptr;
  CUresult (*cuEventSynchronize)(void*) = nullptr;
  CUresult (*cuEventElapsedTime)(float*, void*, void*) = nullptr;  // milliseconds between two timing events
  CUresult (*cuMemAllocHost)(void**, size_t) = nullptr;
  CUresult (*cuMemFreeHost)(void*) = nullptr;
  CUresult (*cuModuleLoadData)(void**, const void*) = nullptr;
  CUresult (*cuModuleUnload)(void*) = nullptr;
  CUresult (*cuModuleGetFunction)(void**, void*, const char*) = nullptr;
  CUresult (*cuModuleGetGlobal)(CUdeviceptr*, size_t*, void*, const char*) = nullptr;
  CUresult (*cuFuncSetAttribute)(void*, int, int) = nullptr;
  CUresult (*cuLaunchKernel)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
                             void**, void**) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemsetD8Async)(CUdeviceptr, unsigned char, size_t, void*) = nullptr;
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void*, size_t, void*) = nullptr;
  CUresult (*cuMemcpyDtoHAsync)(void*, CUdeviceptr, size_t, void*) = nullptr;
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr, CUdeviceptr, size_t, void*) = nullptr;
  CUresult (*cuGetErrorName)(CUresult, const char**) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;
  // The graph API (CUDA 12 names), optional: NINCC_CUDA_GRAPHS=1 needs it, plain launches do not.
  CUresult (*cuGraphCreate)(void**, unsigned) = nullptr;
  CUresult (*cuGraphAddKernelNode)(void**, void*, void* const*, size_t, const KernelNodeParams*) = nullptr;
  CUresult (*cuGraphInstantiateWithFlags)(void**, void*, unsigned long long) = nullptr;
  CUresult (*cuGraphExecKernelNodeSetParams)(void*, void*, const KernelNodeParams*) = nullptr;
  CUresult (*cuGraphLaunch)(void*, void*) = nullptr;
  CUresult (*cuGraphExecDestroy)(void*) = nullptr;
  CUresult (*cuGraphDestroy)(void*) = nullptr;
  std::string graphsMissing;  // empty: the graph API is there

  // Optional entry points: a missing one only says which, in graphsMissing.
  template <class F>
  void resolveGraph(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(handle, name));
    if (!f && graphsMissing.empty()) graphsMissing = std::string(library()) + " lacks `" + name + "` (a driver for CUDA 12 or later has it)";
  }

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
    resolve(cuDeviceGetName, "cuDeviceGetName");
    resolve(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    resolve(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    resolve(cuCtxSetCurrent, "cuCtxSetCurrent");
    resolve(cuStreamCreate, "cuStreamCreate");
    resolve(cuStreamDestroy, "cuStreamDestroy_v2");
    resolve(cuStreamSynchronize, "cuStreamSynchronize");
    resolve(cuStreamWaitEvent, "cuStreamWaitEvent");
    resolve(cuEventCreate, "cuEventCreate");
    resolve(cuEventRecord, "cuEventRecord");
    resolve(cuEventDestroy, "cuEventDestroy_v2");
    resolve(cuEventSynchronize, "cuEventSynchronize");
    resolve(cuEventElapsedTime, "cuEventElapsedTime");
    resolve(cuMemAllocHost, "cuMemAllocHost_v2");
    resolve(cuMemFreeHost, "cuMemFreeHost");
    resolve(cuModuleLoadData, "cuModuleLoadData");
    resolve(cuModuleUnload, "cuModuleUnload");
    resolve(cuModuleGetFunction, "cuModuleGetFunction");
    resolve(cuModuleGetGlobal, "cuModuleGetGlobal_v2");
    resolve(cuFuncSetAttribute, "cuFuncSetAttribute");
    resolve(cuLaunchKernel, "cuLaunchKernel");
    resolve(cuMemAlloc, "cuMemAlloc_v2");
    resolve(cuMemFree, "cuMemFree_v2");
    resolve(cuMemsetD8Async, "cuMemsetD8Async");
    resolve(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
    resolve(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
    resolve(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
    if (!unavailable.empty()) return;
    resolveGraph(cuGraphCreate, "cuGraphCreate");
    resolveGraph(cuGraphAddKernelNode, "cuGraphAddKernelNode_v2");
    resolveGraph(cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags");
    resolveGraph(cuGraphExecKernelNodeSetParams, "cuGraphExecKernelNodeSetParams_v2");
    resolveGraph(cuGraphLaunch, "cuGraphLaunch");
    resolveGraph(cuGraphExecDestroy, "cuGraphExecDestroy");
    resolveGraph(cuGraphDestroy, "cuGraphDestroy");
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

// Inside CudaDevice's members: checks a driver call (CudaDevice::check names the call, the error and
// the file and line); and makes the device's context current, which is per OS thread (the runtime calls
// from Node's main thread and its workers).
#define NINCC_CU(call, what) check((call), (what), __FILE__, __LINE__)
#define NINCC_CU_BIND() NINCC_CU(driver_.cuCtxSetCurrent(context_), "cuCtxSetCurrent")

// The process's driver, loaded at first use and never unloaded (the driver does not support dlclose after cuInit).
CudaDriver& theDriver();

}  // namespace nincc
