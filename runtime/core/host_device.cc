// HostMemoryDevice: 64-byte aligned, zero-filled allocations (a cache line; what AVX-512 loads like).
#include "host_device.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "error.h"

namespace nincc {

namespace {
constexpr size_t kAlignment = 64;
}  // namespace

void* HostMemoryDevice::alloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;  // a valid, distinct pointer even for an empty space
  void* memory = std::aligned_alloc(kAlignment, rounded);
  if (!memory) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(memory, 0, rounded);
  return memory;
}

void HostMemoryDevice::release(void* memory) { std::free(memory); }

void HostMemoryDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void HostMemoryDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

}  // namespace nincc
