// HostMemoryDevice: arena spaces as anonymous mappings. The kernel hands out zeroed pages on first
// touch, so a load costs no memset and a batch-1 run faults in only the pages it uses (the act
// space is sized for maxBatch); munmap gives the memory back to the system at once, so load/dispose
// cycles keep the RSS flat. Page alignment covers the 64 bytes AVX-512 loads like.
#include "host_device.h"

#include <sys/mman.h>

#include <atomic>

#include <cstdlib>
#include <cstring>
#include <string>

#include "error.h"

namespace nincc {

namespace {
std::atomic<int64_t> liveBytes{0};
std::atomic<int64_t> liveAllocations{0};
std::atomic<int64_t> reclaimedAtTeardown{0};

void counted(int64_t bytes, int64_t allocations) {
  liveBytes += bytes;
  liveAllocations += allocations;
}
}  // namespace

HostMemoryStats hostMemoryStats() { return {liveBytes.load(), liveAllocations.load(), reclaimedAtTeardown.load()}; }

HostMemoryDevice::~HostMemoryDevice() {
  reclaimedAtTeardown += static_cast<int64_t>(mapped_.size() + heap_.size());
  for (const auto& entry : mapped_) {
    munmap(entry.first, entry.second);
    counted(-static_cast<int64_t>(entry.second), -1);
  }
  for (const auto& entry : heap_) {
    std::free(entry.first);
    counted(-static_cast<int64_t>(entry.second), -1);
  }
}

// scripts/test-emu-asan.sh runs the emu tests with NINCC_EMU_ASAN=1 and libasan preloaded: a kernel
// that writes past its space must land in a redzone, which a heap block has and a mapping does not.
static bool asanArena() {
  const char* v = std::getenv("NINCC_EMU_ASAN");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

void* HostMemoryDevice::alloc(size_t bytes, FirstWrite first) {
  size_t length = bytes == 0 ? 1 : bytes;  // a valid, distinct pointer even for an empty space
  if (asanArena()) {
    size_t rounded = (length + 63) / 64 * 64;  // aligned_alloc wants a multiple of the alignment
    void* memory = std::aligned_alloc(64, rounded);
    if (memory == nullptr) throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
    std::memset(memory, 0, rounded);
    heap_[memory] = rounded;
    counted(static_cast<int64_t>(rounded), 1);
    return memory;
  }
  const int populate = first == FirstWrite::AtLoad ? MAP_POPULATE : 0;
  void* memory = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | populate, -1, 0);
  if (memory == MAP_FAILED)
    throw Error("out of host memory allocating " + std::to_string(bytes) + " bytes");
  mapped_[memory] = length;
  counted(static_cast<int64_t>(length), 1);
  return memory;
}

void HostMemoryDevice::willWrite(void* memory, size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  // Linux 5.14 and later; an older kernel refuses it and the pages fault in one by one as before.
  if (mapped_.count(memory)) (void)madvise(memory, bytes, MADV_POPULATE_WRITE);
#else
  (void)memory;
  (void)bytes;
#endif
}

void HostMemoryDevice::release(void* memory) {
  if (auto block = heap_.find(memory); block != heap_.end()) {
    std::free(memory);
    counted(-static_cast<int64_t>(block->second), -1);
    heap_.erase(block);
    return;
  }
  auto entry = mapped_.find(memory);
  if (entry == mapped_.end()) return;
  munmap(entry->first, entry->second);
  counted(-static_cast<int64_t>(entry->second), -1);
  mapped_.erase(entry);
}

void HostMemoryDevice::copyToDevice(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

void HostMemoryDevice::copyToHost(void* dst, const void* src, size_t bytes) {
  if (bytes) std::memcpy(dst, src, bytes);
}

}  // namespace nincc
