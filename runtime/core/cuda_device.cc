// CudaDevice (SKELETON, untested on a GPU; see cuda_device.h). Declares the few driver API types it
// needs instead of including cuda.h, so it compiles on every machine.
#include "cuda_device.h"

#include <dlfcn.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "error.h"
#include "kernel_params.h"

namespace nincc {

namespace {
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
constexpr int kCudaSuccess = 0;
constexpr int kErrorNotFound = 500;  // CUDA_ERROR_NOT_FOUND: cuModuleGetFunction of an absent name
}  // namespace

struct CudaDriver {
  void* handle = nullptr;
  CUresult (*cuInit)(unsigned) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice*, int) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(void**, CUdevice) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice) = nullptr;
  CUresult (*cuCtxSetCurrent)(void*) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuModuleLoadData)(void**, const void*) = nullptr;
  CUresult (*cuModuleUnload)(void*) = nullptr;
  CUresult (*cuModuleGetFunction)(void**, void*, const char*) = nullptr;
  CUresult (*cuModuleGetGlobal)(CUdeviceptr*, size_t*, void*, const char*) = nullptr;
  CUresult (*cuLaunchKernel)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
                             void**, void**) = nullptr;
  CUresult (*cuMemAlloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*cuMemFree)(CUdeviceptr) = nullptr;
  CUresult (*cuMemsetD8)(CUdeviceptr, unsigned char, size_t) = nullptr;
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void*, size_t) = nullptr;
  CUresult (*cuMemcpyDtoH)(void*, CUdeviceptr, size_t) = nullptr;
  CUresult (*cuGetErrorString)(CUresult, const char**) = nullptr;

  template <class F>
  void resolve(F& f, const char* name) {
    f = reinterpret_cast<F>(dlsym(handle, name));
    if (!f) throw Error(std::string("libcuda.so.1 lacks `") + name + "`; update the NVIDIA driver");
  }
};

CudaDevice::CudaDevice() : driver_(new CudaDriver) {
  driver_->handle = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver_->handle) {
    delete driver_;
    throw Error("device \"cuda\": libcuda.so.1 did not load");
  }
  CudaDriver& d = *driver_;
  d.resolve(d.cuInit, "cuInit");
  d.resolve(d.cuDeviceGet, "cuDeviceGet");
  d.resolve(d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  d.resolve(d.cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  d.resolve(d.cuCtxSetCurrent, "cuCtxSetCurrent");
  d.resolve(d.cuCtxSynchronize, "cuCtxSynchronize");
  d.resolve(d.cuModuleLoadData, "cuModuleLoadData");
  d.resolve(d.cuModuleUnload, "cuModuleUnload");
  d.resolve(d.cuModuleGetFunction, "cuModuleGetFunction");
  d.resolve(d.cuModuleGetGlobal, "cuModuleGetGlobal_v2");
  d.resolve(d.cuLaunchKernel, "cuLaunchKernel");
  d.resolve(d.cuMemAlloc, "cuMemAlloc_v2");
  d.resolve(d.cuMemFree, "cuMemFree_v2");
  d.resolve(d.cuMemsetD8, "cuMemsetD8_v2");
  d.resolve(d.cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  d.resolve(d.cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  d.resolve(d.cuGetErrorString, "cuGetErrorString");
  check(d.cuInit(0), "cuInit");
  check(d.cuDeviceGet(&device_, 0), "cuDeviceGet(0)");
  check(d.cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
  check(d.cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

CudaDevice::~CudaDevice() {
  if (module_) driver_->cuModuleUnload(module_);
  if (context_) driver_->cuDevicePrimaryCtxRelease(device_);
  dlclose(driver_->handle);
  delete driver_;
}

void CudaDevice::check(int result, const std::string& what) const {
  if (result == kCudaSuccess) return;
  const char* text = nullptr;
  if (driver_->cuGetErrorString) driver_->cuGetErrorString(result, &text);
  throw Error("cuda: " + what + " failed: " + (text ? text : "error " + std::to_string(result)));
}

void CudaDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  if (module_) throw Error("the cuda device already holds a kernel module (" + libraryPath_ + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": the cuda fatbin is missing (rebuild the artifact with `nincc build --target emu` where nvcc exists)");
  std::vector<char> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(driver_->cuModuleLoadData(&module_, image.data()), path + ": cuModuleLoadData");
  libraryPath_ = path;
  // NINCC_LIBRARY's identity: extern "C" __device__ const char nincc_source_hash[] (device/cuda.cuh).
  CUdeviceptr hashAddress = 0;
  size_t hashBytes = 0;
  check(driver_->cuModuleGetGlobal(&hashAddress, &hashBytes, module_, "nincc_source_hash"),
        path + ": the module's nincc_source_hash");
  std::vector<char> hash(hashBytes + 1, '\0');
  check(driver_->cuMemcpyDtoH(hash.data(), hashAddress, hashBytes), "cuMemcpyDtoH(nincc_source_hash)");
  if (sourceHash != hash.data())
    throw Error(path + ": source hash \"" + std::string(hash.data()) + "\" does not match plan.json's sourceHash \"" +
                sourceHash + "\": the module and the plan come from different builds; rebuild the artifact");
}

KernelHandle CudaDevice::findKernel(const std::string& symbol) {
  if (!module_) throw Error("the cuda device has no kernel module loaded");
  Kernel kernel;
  kernel.symbol = symbol;
  const CUresult r = driver_->cuModuleGetFunction(&kernel.function, module_, symbol.c_str());
  if (r != kCudaSuccess && r != kErrorNotFound) check(r, "cuModuleGetFunction(" + symbol + ")");
  if (r != kCudaSuccess) kernel.function = nullptr;
  kernels_.push_back(std::move(kernel));
  return &kernels_.back();
}

void CudaDevice::launch(KernelHandle handle, const Step& step, const NinccArgs& args) {
  const Kernel& kernel = *static_cast<const Kernel*>(handle);
  const std::string what = "kernel " + step.kernel + " (layer " + std::to_string(step.layer) + " at " + step.source + ")";
  if (!step.hasLaunch || !kernel.function)
    throw Error(what + ": not yet supported on cuda (only the infer and prepare_infer programs have CUDA kernels)");
  // The fatbin carries no signatures: the generated kernels take the step's buffers then int n
  // (the emu library checks the same marshalling against its signature on the CPU).
  std::string signature(step.args.size(), 'p');
  signature += 'i';
  KernelParams params(what, signature, step, args);
  unsigned grid[3], block[3];
  launchGeometry(step.launch, args.n, grid, block);
  check(driver_->cuLaunchKernel(kernel.function, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                step.launch.sharedBytes, nullptr, params.data(), nullptr),
        what + ": cuLaunchKernel");
}

void* CudaDevice::alloc(size_t bytes) {
  CUdeviceptr p = 0;
  check(driver_->cuMemAlloc(&p, bytes ? bytes : 64), "cuMemAlloc(" + std::to_string(bytes) + ")");
  check(driver_->cuMemsetD8(p, 0, bytes ? bytes : 64), "cuMemsetD8");
  return reinterpret_cast<void*>(p);
}

void CudaDevice::release(void* memory) {
  if (memory) driver_->cuMemFree(reinterpret_cast<CUdeviceptr>(memory));
}

void CudaDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) check(driver_->cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(dst), src, bytes), "cuMemcpyHtoD");
}

void CudaDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) check(driver_->cuMemcpyDtoH(dst, reinterpret_cast<CUdeviceptr>(src), bytes), "cuMemcpyDtoH");
}

void CudaDevice::synchronize() { check(driver_->cuCtxSynchronize(), "cuCtxSynchronize"); }

}  // namespace nincc
