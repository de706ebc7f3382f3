// Devices whose memory is this process's own (cpu, emu): page-aligned, zeroed host allocations and memcpy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "device.h"

namespace nincc {

// What every HostMemoryDevice in the process holds and has had to reclaim: an owner (the arena) must
// release each allocation itself; the device frees leftovers at teardown but counts them, so a test
// can tell a leak-by-design-luck from a release that works (test/reliability-artifacts.test.ts).
struct HostMemoryStats {
  int64_t liveBytes;
  int64_t liveAllocations;
  int64_t reclaimedAtTeardown;  // allocations still held when their device was destroyed
};
HostMemoryStats hostMemoryStats();

class HostMemoryDevice : public Device {
 public:
  ~HostMemoryDevice() override;
  bool hostAddressable() const override { return true; }
  void* alloc(size_t bytes, FirstWrite first) override;
  void release(void* memory) override;
  void willWrite(void* memory, size_t bytes) override;
  void copyToDevice(void* dst, const void* src, size_t bytes) override;
  void copyToHost(void* dst, const void* src, size_t bytes) override;
  void synchronize() override {}

 private:
  // Each live mapping's length, which munmap needs back.
  std::unordered_map<void*, size_t> mapped_;
  // Under NINCC_EMU_ASAN the spaces are malloc'ed instead (see alloc): ASan's redzones then sit at each end.
  std::unordered_map<void*, size_t> heap_;
};

}  // namespace nincc
