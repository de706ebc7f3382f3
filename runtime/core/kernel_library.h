// A generated kernel library opened with dlopen, checked for its ABI tag and the plan's source hash;
// shared by the devices whose kernels run in this process (cpu, emu).
#pragma once
#include <string>

namespace nincc {

struct KernelLibraryKind {
  const char* device;       // "cpu", "emu": named in errors
  const char* abi;          // what nincc_abi() must return
  const char* rebuildHint;  // the command that rebuilds a missing library
};

class KernelLibrary {
 public:
  KernelLibrary() = default;
  KernelLibrary(const KernelLibrary&) = delete;
  KernelLibrary& operator=(const KernelLibrary&) = delete;
  ~KernelLibrary();

  void open(const std::string& path, const std::string& sourceHash, const KernelLibraryKind& kind);
  bool isOpen() const { return handle_ != nullptr; }
  const std::string& path() const { return path_; }

  // The symbol's address, or an error naming the library and the symbol.
  void* require(const std::string& symbol, const char* what) const;
  // The symbol's address, or null when the library lacks it.
  void* find(const std::string& symbol) const;

 private:
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace nincc
