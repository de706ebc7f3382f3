// Devices whose memory is this process's own (cpu, emu): aligned, zeroed host allocations and memcpy.
#pragma once
#include "device.h"

namespace nincc {

class HostMemoryDevice : public Device {
 public:
  void* alloc(size_t bytes) override;
  void release(void* memory) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}
};

}  // namespace nincc
