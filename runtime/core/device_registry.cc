// Which devices exist on this machine, and creating one by name. The cuda probe dlopens the driver
// and asks it for a GPU (the addon must build and load on machines without CUDA).
#include "cpu_device.h"
#include "cuda_device.h"
#include "emu_device.h"
#include "device.h"
#include "error.h"

namespace nincc {

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

}  // namespace

std::vector<std::string> availableDevices() {
  std::vector<std::string> devices = {"cpu", "emu"};  // emu: the SIMT emulator, on the CPU
  if (cudaUnavailableReason().empty()) devices.push_back("cuda");
  return devices;
}

std::unique_ptr<Device> createDevice(const std::string& name) {
  if (name == "cpu") return std::make_unique<CpuDevice>();
  if (name == "emu") return std::make_unique<EmuDevice>();
  const std::string listing = " (available: " + joined(availableDevices()) + ")";
  if (name == "cuda") {
    const std::string why = cudaUnavailableReason();
    if (why.empty()) return std::make_unique<CudaDevice>();
    throw Error("device \"cuda\" is not available on this machine: " + why + listing);
  }
  throw Error("unknown device \"" + name + "\"" + listing);
}

}  // namespace nincc
