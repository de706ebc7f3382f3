// Devices whose memory is this process's own (cpu, emu): page-aligned, zeroed host allocations and memcpy.
#pragma once
#include <cstddef>
#include <unordered_map>
#include <unordered_set>

#include "device.h"

namespace nincc {

class HostMemoryDevice : public Device {
 public:
  ~HostMemoryDevice() override;
  void* alloc(size_t bytes) override;
  void release(void* memory) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}

 private:
  // Each live mapping's length, which munmap needs back.
  std::unordered_map<void*, size_t> mapped_;
  // Under NINCC_EMU_ASAN the spaces are malloc'ed instead (see alloc): ASan's redzones then sit at each end.
  std::unordered_set<void*> heap_;
};

}  // namespace nincc
