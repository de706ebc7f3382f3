// HostMemoryDevice: arena spaces as anonymous mappings. The kernel hands out zeroed pages on first
// touch, so a load costs no memset and a batch-1 run faults in only the pages it uses (the act
// space is sized for maxBatch); munmap gives the memory back to the system at once, so load/dispose
// cycles keep the RSS flat. Page alignment covers the 64 bytes AVX-512 loads like.
#include "host_device.h"

#include <sys/mman.h>

#include <cstring>
#include <string>

#include "error.h"

namespace nincc {

HostMemoryDevice::~HostMemoryDevice() {
  for (const auto& entry : mapped_) munmap(entry.first, entry.second);
}

void* HostMemoryDevice::alloc(size_t bytes) {
  size_t length = bytes == 0 ? 1 : bytes;  // a valid, distinct pointer even for an empty space
  void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED)
    throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  mapped_[memory] = length;
  return memory;
}

void HostMemoryDevice::release(void* memory) {
  auto entry = mapped_.find(memory);
  if (entry == mapped_.end()) return;
  munmap(entry->first, entry->second);
  mapped_.erase(entry);
}

void HostMemoryDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void HostMemoryDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

}  // namespace nincc
