// Which devices exist on this machine, and creating one by name. The cuda probe only dlopens the
// driver (the addon must build and load on machines without CUDA).
#include <dlfcn.h>

#include "cpu_device.h"
#include "emu_device.h"
#include "device.h"
#include "error.h"

namespace nincc {

namespace {

bool cudaDriverLoads() {
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver) return false;
  dlclose(driver);
  return true;
}

std::string joined(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

}  // namespace

std::vector<std::string> availableDevices() {
  std::vector<std::string> devices = {"cpu", "emu"};  // emu: the SIMT emulator, on the CPU
  if (cudaDriverLoads()) devices.push_back("cuda");
  return devices;
}

std::unique_ptr<Device> createDevice(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuDevice>();
  if (name == "emu") return std::make_unique<EmuDevice>();
  std::vector<std::string> available = availableDevices();
  std::string listing = " (available: " + joined(available) + ")";
  bool isAvailable = false;
  for (const std::string& n : available) isAvailable = isAvailable || n == name;
  if (isAvailable)
    throw Error("device \"" + name + "\" is present but not implemented by this runtime yet" + listing);
  if (name == "cuda")
    throw Error("device \"cuda\" is not available on this machine: libcuda.so.1 did not load" + listing);
  throw Error("unknown device \"" + name + "\"" + listing);
}

}  // namespace nincc
