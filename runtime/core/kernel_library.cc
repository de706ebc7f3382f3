// KernelLibrary: dlopen with RTLD_LOCAL, then the ABI tag and source-hash checks every device needs.
#include "kernel_library.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstring>

#include "error.h"

namespace nincc {

namespace {

std::string lastDlError() {
  const char* message = dlerror();
  return message ? message : "unknown dlopen error";
}

bool fileExists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

}  // namespace

KernelLibrary::~KernelLibrary() {
  if (handle_) dlclose(handle_);
}

void KernelLibrary::open(const std::string& path, const std::string& sourceHash, const KernelLibraryKind& kind) {
  const std::string device = kind.device;
  if (handle_) throw Error("the " + device + " device already holds a kernel library (" + path_ + ")");
  // Without a slash dlopen would search the system library path instead of the artifact dir.
  std::string openPath = path.find('/') == std::string::npos ? "./" + path : path;
  if (!fileExists(openPath))
    throw Error(path + ": the " + device + " kernel library is missing (rebuild the artifact with `" + kind.rebuildHint + "`)");
  // RTLD_LOCAL: two artifacts export the same kernel names; each model must see only its own.
  handle_ = dlopen(openPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) throw Error(path + ": cannot load the " + device + " kernel library: " + lastDlError());
  path_ = path;

  using TextFn = const char* (*)();
  const char* abiTag = reinterpret_cast<TextFn>(require("nincc_abi", "symbol"))();
  if (!abiTag || std::strcmp(abiTag, kind.abi) != 0)
    throw Error(path + ": kernel ABI is \"" + (abiTag ? abiTag : "(null)") + "\" but this runtime expects \"" + kind.abi + "\"; rebuild with this nincc");
  const char* libraryHash = reinterpret_cast<TextFn>(require("nincc_source_hash", "symbol"))();
  if (!libraryHash || sourceHash != libraryHash)
    throw Error(path + ": source hash \"" + (libraryHash ? libraryHash : "(null)") +
                "\" does not match plan.json's sourceHash \"" + sourceHash +
                "\": the library and the plan come from different builds; rebuild the artifact");
}

void* KernelLibrary::find(const std::string& symbol) const {
  if (!handle_) throw Error("no kernel library is loaded");
  dlerror();  // clear a stale error so a null result is attributed correctly
  return dlsym(handle_, symbol.c_str());
}

void* KernelLibrary::require(const std::string& symbol, const char* what) const {
  void* address = find(symbol);
  if (!address)
    throw Error(path_ + ": missing " + what + " `" + symbol +
                "` (the library does not match plan.json; rebuild the artifact)");
  return address;
}

}  // namespace nincc
