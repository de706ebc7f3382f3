// EmuDevice: dlopen of kernels.emu.so with the ABI and source-hash checks, kernelParams built from
// the step's buffers and N, and launches with the step's launch rule (docs/emu.md, docs/artifact.md).
#include "emu_device.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "error.h"
#include "kernel_params.h"

namespace nincc {

namespace {

constexpr size_t kAlignment = 64;

std::string lastDlError() {
  const char* message = dlerror();
  return message ? message : "unknown dlopen error";
}

bool fileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

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

EmuDevice::~EmuDevice() {
  if (library_) dlclose(library_);
}

void EmuDevice::loadLibrary(const std::string& path, const std::string& sourceHash) {
  if (library_) throw Error("the emu device already holds a kernel library (" + libraryPath_ + ")");
  std::string openPath = path.find('/') == std::string::npos ? "./" + path : path;
  if (!fileExists(openPath))
    throw Error(path + ": the emu kernel library is missing (rebuild the artifact with `nincc build --target emu`)");
  library_ = dlopen(openPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library_) throw Error(path + ": cannot load the emu kernel library: " + lastDlError());
  libraryPath_ = path;

  using TextFn = const char* (*)();
  auto abi = reinterpret_cast<TextFn>(requireSymbol("nincc_abi", "symbol"));
  const char* abiTag = abi();
  if (!abiTag || std::strcmp(abiTag, NINCC_EMU_ABI) != 0)
    throw Error(path + ": kernel ABI is \"" + (abiTag ? abiTag : "(null)") +
                "\" but the emu device expects \"" NINCC_EMU_ABI "\"; rebuild with this nincc");
  auto hashFn = reinterpret_cast<TextFn>(requireSymbol("nincc_source_hash", "symbol"));
  const char* libraryHash = hashFn();
  if (!libraryHash || sourceHash != libraryHash)
    throw Error(path + ": source hash \"" + (libraryHash ? libraryHash : "(null)") +
                "\" does not match plan.json's sourceHash \"" + sourceHash +
                "\": the library and the plan come from different builds; rebuild the artifact");
}

void* EmuDevice::requireSymbol(const char* symbol, const char* what) const {
  dlerror();
  void* address = dlsym(library_, symbol);
  if (!address)
    throw Error(libraryPath_ + ": missing " + what + " `" + symbol +
                "` (the library does not match plan.json; rebuild the artifact)");
  return address;
}

KernelHandle EmuDevice::findKernel(const std::string& symbol) {
  if (!library_) throw Error("the emu device has no kernel library loaded");
  Kernel kernel;
  kernel.symbol = symbol;
  dlerror();
  kernel.descriptor = static_cast<const NinccEmuKernel*>(dlsym(library_, ("nincc_emu_" + symbol).c_str()));
  kernels_.push_back(std::move(kernel));
  return &kernels_.back();
}

void EmuDevice::launch(KernelHandle handle, const Step& step, const NinccArgs& args) {
  const Kernel& kernel = *static_cast<const Kernel*>(handle);
  if (!step.hasLaunch)
    throw Error(describe(step) +
                ": not yet supported on emu (the emu device runs only the infer and prepare_infer "
                "programs so far; train on the cpu device)");
  if (!kernel.descriptor)
    throw Error(libraryPath_ + ": missing kernel `nincc_emu_" + kernel.symbol + "` for " + describe(step) +
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

void* EmuDevice::alloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  void* memory = std::aligned_alloc(kAlignment, rounded);
  if (!memory) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(memory, 0, rounded);
  return memory;
}

void EmuDevice::release(void* memory) { std::free(memory); }

void EmuDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void EmuDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

}  // namespace nincc
