// A stand-in for libcuda.so.1 (loaded through NINCC_CUDA_DRIVER) so the cuda device's driver calls,
// error reporting and module checks run where there is no GPU: memory is host memory, a "fatbin" is
// text lines `name=value` whose names are the module's globals and (with a `kernel:` prefix) its
// functions, and FAKE_CUDA_NO_DEVICE=1 makes cuInit fail as on a machine without a GPU.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {
using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNoDevice = 100, kNotFound = 500, kLaunchFailed = 719;
struct Module {
  std::map<std::string, std::string> globals;
  std::map<std::string, int> kernels;
};
int token;  // the addresses of the fake context and stream
}  // namespace

#define FAKE extern "C" __attribute__((visibility("default"))) CUresult
using Ptr = unsigned long long;

FAKE cuGetErrorName(CUresult r, const char** s) {
  *s = r == kNoDevice ? "CUDA_ERROR_NO_DEVICE" : r == kNotFound ? "CUDA_ERROR_NOT_FOUND"
     : r == kLaunchFailed ? "CUDA_ERROR_LAUNCH_FAILED" : "CUDA_ERROR_INVALID_VALUE";
  return kSuccess;
}
FAKE cuGetErrorString(CUresult r, const char** s) {
  *s = r == kNoDevice ? "no CUDA-capable device is detected" : r == kNotFound ? "named symbol not found"
     : r == kLaunchFailed ? "unspecified launch failure" : "invalid argument";
  return kSuccess;
}
FAKE cuInit(unsigned) {
  const char* none = std::getenv("FAKE_CUDA_NO_DEVICE");
  return none && none[0] == '1' ? kNoDevice : kSuccess;
}
FAKE cuDeviceGetCount(int* n) { *n = 1; return kSuccess; }
FAKE cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? kSuccess : kInvalidValue; }
FAKE cuDevicePrimaryCtxRetain(void** c, int) { *c = &token; return kSuccess; }
FAKE cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
FAKE cuCtxSetCurrent(void* c) { return c == &token ? kSuccess : kInvalidValue; }
FAKE cuStreamCreate(void** s, unsigned) { *s = &token; return kSuccess; }
FAKE cuStreamDestroy_v2(void*) { return kSuccess; }
FAKE cuStreamSynchronize(void*) { return kSuccess; }
FAKE cuModuleLoadData(void** m, const void* image) {
  auto* module = new Module;
  const char* text = static_cast<const char*>(image);
  for (const char* line = text; *line;) {
    const char* end = std::strchr(line, '\n');
    std::string l(line, end ? size_t(end - line) : std::strlen(line));
    size_t eq = l.find('=');
    if (eq == std::string::npos) { delete module; return kInvalidValue; }
    if (l.compare(0, 7, "kernel:") == 0) module->kernels[l.substr(7, eq - 7)] = 1;
    else module->globals[l.substr(0, eq)] = l.substr(eq + 1);
    line = end ? end + 1 : line + l.size();
  }
  *m = module;
  return kSuccess;
}
FAKE cuModuleUnload(void* m) { delete static_cast<Module*>(m); return kSuccess; }
FAKE cuModuleGetFunction(void** f, void* m, const char* name) {
  auto& k = static_cast<Module*>(m)->kernels;
  auto it = k.find(name);
  if (it == k.end()) return kNotFound;
  *f = &it->second;
  return kSuccess;
}
FAKE cuModuleGetGlobal_v2(Ptr* p, size_t* bytes, void* m, const char* name) {
  auto& g = static_cast<Module*>(m)->globals;
  auto it = g.find(name);
  if (it == g.end()) return kNotFound;
  *p = reinterpret_cast<Ptr>(it->second.c_str());
  *bytes = it->second.size() + 1;
  return kSuccess;
}
// Every launch "faults": the device must name the kernel and its geometry.
FAKE cuLaunchKernel(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**) {
  return kLaunchFailed;
}
FAKE cuMemAlloc_v2(Ptr* p, size_t bytes) {
  void* m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  *p = reinterpret_cast<Ptr>(m);
  return m ? kSuccess : kInvalidValue;
}
FAKE cuMemFree_v2(Ptr p) { std::free(reinterpret_cast<void*>(p)); return kSuccess; }
FAKE cuMemsetD8Async(Ptr p, unsigned char v, size_t n, void*) { std::memset(reinterpret_cast<void*>(p), v, n); return kSuccess; }
FAKE cuMemcpyHtoDAsync_v2(Ptr d, const void* s, size_t n, void*) { std::memcpy(reinterpret_cast<void*>(d), s, n); return kSuccess; }
FAKE cuMemcpyDtoHAsync_v2(void* d, Ptr s, size_t n, void*) { std::memcpy(d, reinterpret_cast<const void*>(s), n); return kSuccess; }
