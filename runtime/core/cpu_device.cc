// CpuDevice: dlopen of the kernel library with its ABI and source-hash checks, aligned host
// allocations, and direct calls of the kernels.
#include "cpu_device.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "error.h"

namespace nincc {

namespace {

constexpr size_t kAlignment = 64;  // a cache line; also what AVX-512 loads like

std::string lastDlError() {
  const char* message = dlerror();
  return message ? message : "unknown dlopen error";
}

bool fileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

}  // namespace

CpuDevice::~CpuDevice() {
  if (library_) dlclose(library_);
}

void CpuDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  if (library_) throw Error("the cpu device already holds a kernel library (" + libraryPath_ + ")");
  // Without a slash dlopen would search the system library path instead of the artifact dir.
  std::string openPath = path.find('/') == std::string::npos ? "./" + path : path;
  if (!fileExists(openPath))
    throw Error(path + ": the cpu kernel library is missing (rebuild the artifact with `nincc build`)");
  // RTLD_LOCAL: two artifacts export the same kernel names; each model must see only its own.
  library_ = dlopen(openPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library_) throw Error(path + ": cannot load the cpu kernel library: " + lastDlError());
  libraryPath_ = path;

  using TextFn = const char* (*)();
  auto abi = reinterpret_cast<TextFn>(requireSymbol("nincc_abi", "symbol"));
  const char* abiTag = abi();
  if (!abiTag || std::strcmp(abiTag, NINCC_CPU_ABI) != 0)
    throw Error(path + ": kernel ABI is \"" + (abiTag ? abiTag : "(null)") +
                "\" but this runtime expects \"" NINCC_CPU_ABI "\"; rebuild with this nincc");
  auto hashFn = reinterpret_cast<TextFn>(requireSymbol("nincc_source_hash", "symbol"));
  const char* libraryHash = hashFn();
  if (!libraryHash || sourceHash != libraryHash)
    throw Error(path + ": source hash \"" + (libraryHash ? libraryHash : "(null)") +
                "\" does not match plan.json's sourceHash \"" + sourceHash +
                "\": the library and the plan come from different builds; rebuild the artifact");
}

void* CpuDevice::requireSymbol(const char* symbol, const char* what) const {
  dlerror();  // clear a stale error so a null result is attributed correctly
  void* address = dlsym(library_, symbol);
  if (!address)
    throw Error(libraryPath_ + ": missing " + what + " `" + symbol +
                "` (the library does not match plan.json; rebuild the artifact)");
  return address;
}

KernelHandle CpuDevice::findKernel(const std::string& symbol) {
  if (!library_) throw Error("the cpu device has no kernel library loaded");
  return requireSymbol(symbol.c_str(), "kernel symbol");
}

void CpuDevice::launch(KernelHandle kernel, const Step&, const NinccArgs& args) {
  // A cpu kernel reports nothing: a crash inside it is a compiler bug, not an input error.
  reinterpret_cast<NinccKernelFn>(const_cast<void*>(kernel))(&args);
}

void* CpuDevice::alloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;  // a valid, distinct pointer even for an empty space
  void* memory = std::aligned_alloc(kAlignment, rounded);
  if (!memory) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(memory, 0, rounded);
  return memory;
}

void CpuDevice::release(void* memory) { std::free(memory); }

void CpuDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void CpuDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

}  // namespace nincc
