// CudaDevice's staged input (issue #20; docs/design.md#staged-input): batch k's inputs go through slot
// k % 2 — pinned host memory, then device memory on the copy stream — and the step of batch k copies
// them from the slot into the arena on the compute stream, so that batch k+1's host→device copy runs
// while step k computes. Four orderings keep the two slots safe:
//   host writes slot s's pinned memory  after  the host waits for s's previous copy (`copied`);
//   copy stream copies into s's device memory  after  the compute stream's last read of s (`read`);
//   compute stream reads s  after  the copy stream's copy into s (`copied`);
//   a third batch is refused until the first is taken or discarded (Model), so `read` is never waited on stale.
// The arena's input buffer itself is written on the compute stream only: the plan's memory planner
// may reuse it for other activations later in the step, so it cannot be filled while a step runs.
#include <cstdio>
#include <cstring>

#include "cuda_device.h"
#include "cuda_driver.h"
#include "error.h"

namespace nincc {

namespace {
constexpr size_t kSlotAlignment = 256;  // each input's bytes start where cuMemAlloc would align them
size_t aligned(size_t bytes) { return (bytes + kSlotAlignment - 1) / kSlotAlignment * kSlotAlignment; }
}  // namespace

// Makes the slot hold `bytes`: first use makes the copy stream and the slot's events; growing frees the
// old memory once nothing queued still uses it.
void CudaDevice::prepareInputSlot(InputSlot& slot, size_t bytes) {
  // Non-blocking (CU_STREAM_NON_BLOCKING): ordered with the compute stream by the slots' events alone.
  if (!copyStream_) NINCC_CU(driver_.cuStreamCreate(&copyStream_, 1), "cuStreamCreate of the input copy stream");
  if (!slot.copied) NINCC_CU(driver_.cuEventCreate(&slot.copied, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate of an input slot");
  if (!slot.read) NINCC_CU(driver_.cuEventCreate(&slot.read, 2), "cuEventCreate of an input slot");
  // The pinned memory is rewritten below: its last copy to the device must be done (a no-op before the first).
  NINCC_CU(driver_.cuEventSynchronize(slot.copied), "cuEventSynchronize of an input slot's copy");
  if (bytes <= slot.capacity) return;
  NINCC_CU(driver_.cuEventSynchronize(slot.read), "cuEventSynchronize of an input slot's read");
  if (slot.device) NINCC_CU(driver_.cuMemFree(reinterpret_cast<CUdeviceptr>(slot.device)), "cuMemFree of an input slot");
  if (slot.host) NINCC_CU(driver_.cuMemFreeHost(slot.host), "cuMemFreeHost of an input slot");
  slot.device = slot.host = nullptr;
  slot.capacity = 0;
  CUdeviceptr device = 0;
  NINCC_CU(driver_.cuMemAlloc(&device, bytes), "cuMemAlloc(" + std::to_string(bytes) + " bytes) of an input slot");
  slot.device = reinterpret_cast<void*>(device);
  slot.capacity = bytes;
  if (pinnedInputsFailed_) return;
  if (driver_.cuMemAllocHost(&slot.host, bytes) != kSuccess) {
    slot.host = nullptr;
    pinnedInputsFailed_ = true;
    std::fprintf(stderr, "nincc: warning: cuda: cuMemAllocHost(%zu bytes) for staged input failed; copying the "
                 "input from pageable memory instead (slower: the driver stages it through its own buffer)\n", bytes);
  }
}

void CudaDevice::stageInputs(const std::vector<StagedInput>& inputs) {
  std::lock_guard<std::mutex> lock(stageMutex_);
  NINCC_CU_BIND();
  InputSlot& slot = inputSlots_[batchesStaged_ % 2];
  size_t total = 0;
  for (const StagedInput& in : inputs) total += aligned(in.bytes);
  prepareInputSlot(slot, total);
  NINCC_CU(driver_.cuStreamWaitEvent(copyStream_, slot.read, 0), "cuStreamWaitEvent: the input copy waits for the slot's last read");
  slot.parts.clear();
  size_t offset = 0;
  for (const StagedInput& in : inputs) {
    // Pinned: one memcpy here, then a true asynchronous copy. Pageable: the driver stages `src` before returning.
    const void* from = in.src;
    if (slot.host) {
      std::memcpy(static_cast<char*>(slot.host) + offset, in.src, in.bytes);
      from = static_cast<char*>(slot.host) + offset;
    }
    if (in.bytes)
      NINCC_CU(driver_.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(slot.device) + offset, from, in.bytes, copyStream_),
               "cuMemcpyHtoDAsync(" + std::to_string(in.bytes) + " bytes) of staged input on the copy stream");
    slot.parts.push_back({in.dst, reinterpret_cast<const void*>(offset), in.bytes});
    offset += aligned(in.bytes);
  }
  NINCC_CU(driver_.cuEventRecord(slot.copied, copyStream_), "cuEventRecord of an input slot's copy");
  ++batchesStaged_;
}

void CudaDevice::takeStagedInputs() {
  std::lock_guard<std::mutex> lock(stageMutex_);
  NINCC_CU_BIND();
  if (batchesTaken_ == batchesStaged_) throw Error("cuda: no staged input to take");
  InputSlot& slot = inputSlots_[batchesTaken_ % 2];
  NINCC_CU(driver_.cuStreamWaitEvent(stream_, slot.copied, 0), "cuStreamWaitEvent: the step waits for its staged input");
  for (const StagedInput& part : slot.parts) {
    const CUdeviceptr from = reinterpret_cast<CUdeviceptr>(slot.device) + reinterpret_cast<uintptr_t>(part.src);
    if (part.bytes)
      NINCC_CU(driver_.cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(part.dst), from, part.bytes, stream_),
               "cuMemcpyDtoDAsync(" + std::to_string(part.bytes) + " bytes) of staged input into the arena");
  }
  NINCC_CU(driver_.cuEventRecord(slot.read, stream_), "cuEventRecord of an input slot's read");
  ++batchesTaken_;
}

// Drops batches batchesTaken_ … batchesStaged_-1: the next batch staged goes into slot batchesStaged_ % 2, as
// it would after they were taken, so the orderings above hold (a dropped slot's `read` event is older,
// and its copy came before the next one on the copy stream). Their copies are waited for, so that nothing
// queued reads their pinned memory any more.
void CudaDevice::discardStagedInputs() {
  std::lock_guard<std::mutex> lock(stageMutex_);
  NINCC_CU_BIND();
  const uint64_t from = batchesTaken_;
  batchesTaken_ = batchesStaged_;  // forgotten even if a wait below fails
  for (uint64_t k = from; k < batchesStaged_; ++k) {
    InputSlot& slot = inputSlots_[k % 2];
    slot.parts.clear();
    NINCC_CU(driver_.cuEventSynchronize(slot.copied), "cuEventSynchronize of a discarded input slot's copy");
  }
}

// From the destructor: errors cannot be reported, and the context is already current.
void CudaDevice::releaseInputSlots() {
  if (copyStream_) driver_.cuStreamSynchronize(copyStream_);
  for (InputSlot& slot : inputSlots_) {
    if (slot.device) driver_.cuMemFree(reinterpret_cast<CUdeviceptr>(slot.device));
    if (slot.host) driver_.cuMemFreeHost(slot.host);
    if (slot.copied) driver_.cuEventDestroy(slot.copied);
    if (slot.read) driver_.cuEventDestroy(slot.read);
  }
  if (copyStream_) driver_.cuStreamDestroy(copyStream_);
}

}  // namespace nincc
