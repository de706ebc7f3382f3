// Device: what the executor and the arena need from a place that holds buffers and runs kernels.
// `cpu`, `cuda` (driver API through dlopen) and `emu` (the .cu under a SIMT
// emulator) plug in behind the same interface.
#pragma once
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nincc/abi.h"
#include "plan.h"

namespace nincc {

// An opaque resolved kernel (a function pointer on cpu, a CUfunction on cuda).
using KernelHandle = const void*;

// One input of a staged batch: `bytes` from host `src` to device `dst` (a program's input buffer).
struct StagedInput {
  void* dst;
  const void* src;
  size_t bytes;
};

// One launch timed on the device (Device::timeLaunches): the kernel's name and the µs between events around it.
struct LaunchTime {
  std::string kernel;
  double micros;
};

// One step of a program, ready to launch: its args point into the arena for this call's batch.
struct StepLaunch {
  KernelHandle kernel;
  const Step* step;
  NinccArgs args;
};

class Device {
 public:
  virtual ~Device() = default;
  Device() = default;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  virtual std::string name() const = 0;
  // The hardware under the device, e.g. "NVIDIA H100 80GB HBM3" (cuDeviceGetName); the device's name elsewhere.
  virtual std::string hardwareName() const { return name(); }
  // Per-launch timing on the device (nincc tune on a GPU): while on, each launch is bracketed by timing
  // events and a program is launched kernel by kernel (no graph). False: this device cannot time launches.
  virtual bool timeLaunches(bool on) {
    (void)on;
    return false;
  }
  // The launches timed since the last call, in launch order, once they have finished.
  virtual std::vector<LaunchTime> takeLaunchTimes() { return {}; }
  // True where the arena is this process's memory and a launch has finished when it returns (cpu,
  // emu): another thread may then read a buffer as soon as the step writing it has been launched.
  virtual bool hostAddressable() const { return false; }

  // Loads the artifact's library for this device; checks its ABI tag and that it was built from
  // the same source as plan.json. Throws naming the file (and the symbol, when one is missing).
  virtual void loadLibrary(const std::string& path, const std::string& sourceHash) = 0;
  // Resolves the kernel a step names in the loaded library (never any other symbol of the process);
  // throws naming the file and the kernel, or the argument that does not match the kernel's signature.
  virtual KernelHandle findKernel(const Step& step) = 0;
  // Runs one step. `step` gives launch errors the kernel, layer and spec place to name.
  virtual void launch(KernelHandle kernel, const Step& step, const NinccArgs& args) = 0;
  // Runs a whole program's steps in order. `program` names it and its batch size, the same steps
  // each time. The cuda device may submit them as one CUDA graph; by default, one launch per step.
  virtual void launchProgram(const std::string& program, const std::vector<StepLaunch>& steps) {
    (void)program;
    for (const StepLaunch& s : steps) launch(s.kernel, *s.step, s.args);
  }

  // Threads that can each run a part of a batch-split program (plan.json `splitBatch`): 1 where the
  // device has none of its own. runParts runs part(i) for every i in [0, count) on them, each part's
  // kernels serially on the thread that took it; by default, the parts in order on the calling thread.
  virtual int partThreads() const { return 1; }
  virtual void runParts(int64_t count, const std::function<void(int64_t)>& part) {
    for (int64_t i = 0; i < count; ++i) part(i);
  }

  // Device memory: zero-filled and 64-byte aligned; bytes may be 0. `first` says when it is first
  // written: a host device maps memory written at load (weights, folded weights) with its pages in place,
  // in one call rather than a page fault for each 4 KiB (a third of a cheap load's time, issue #21).
  enum class FirstWrite { Later, AtLoad };
  virtual void* alloc(size_t bytes, FirstWrite first) = 0;
  // Memory from alloc that is about to be written: a host device puts its pages in place now.
  virtual void willWrite(void* memory, size_t bytes) {
    (void)memory;
    (void)bytes;
  }
  virtual void release(void* memory) = 0;
  virtual void copyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual void copyToHost(void* dst, const void* src, size_t bytes) = 0;
  // Waits for queued work (a no-op where launches are synchronous).
  virtual void synchronize() = 0;

  // Devices whose launches are queued (cuda) keep a communication stream beside the compute stream,
  // for a distributed step's collectives (gradient_reducer.h), ordered against it by events.
  // commStream() is its handle (a CUstream) for a collective to enqueue on; null where launches are
  // synchronous (cpu, emu), which need none of this.
  virtual void* commStream() { return nullptr; }
  // The communication stream waits for everything launched on the compute stream so far.
  virtual void commWaitsForCompute() {}
  // The compute stream waits for everything queued on the communication stream so far.
  virtual void computeWaitsForComm() {}
  // Host memory that copies on the communication stream may use without waiting (page-locked on
  // cuda), at least `floats` floats, kept by the device for the next call; earlier contents are lost.
  virtual float* hostStaging(size_t floats) {
    if (staging_.size() < floats) staging_.resize(floats);
    return staging_.data();
  }
  // Copies queued on the communication stream between device memory and hostStaging() (the host must
  // not touch the staging floats until a mark after the copy has been waited for), a mark of what is
  // queued there so far, and the host's wait for a mark (which it releases). Another thread than the
  // one launching may call them (the gradient reducer's communication thread). Where launches are
  // synchronous the copies are done when they return and marks are null.
  virtual void commCopyToHost(void* dst, const void* src, size_t bytes) { copyToHost(dst, src, bytes); }
  virtual void commCopyToDevice(void* dst, const void* src, size_t bytes) { copyToDevice(dst, src, bytes); }
  virtual void* commMark() { return nullptr; }
  virtual void hostWaits(void* mark) { (void)mark; }

  // Staged input (docs/design.md#staged-input): stageInputs takes a batch's inputs while the previous
  // step may still run — the caller may reuse `src` when it returns — and takeStagedInputs, called
  // before the next step on the compute stream, puts the oldest staged batch into its `dst` buffers.
  // At most two batches are staged and not yet taken (Model checks). The cuda device copies on a
  // copy stream through pinned memory; here (cpu, emu: nothing to overlap) the bytes wait on the host.
  virtual void stageInputs(const std::vector<StagedInput>& inputs) {
    std::vector<HostPart> batch;
    for (const StagedInput& in : inputs)
      batch.push_back({in.dst, std::vector<char>(static_cast<const char*>(in.src), static_cast<const char*>(in.src) + in.bytes)});
    staged_.push_back(std::move(batch));
  }
  virtual void takeStagedInputs() {
    for (const HostPart& part : staged_.front()) copyToDevice(part.dst, part.bytes.data(), part.bytes.size());
    staged_.pop_front();
  }
  // Forgets every batch staged and not yet taken (a loop that stopped early: Model::discardStaged); the
  // next batch staged is the next one taken.
  virtual void discardStagedInputs() { staged_.clear(); }

 private:
  struct HostPart {
    void* dst;
    std::vector<char> bytes;
  };
  std::vector<float> staging_;
  std::deque<std::vector<HostPart>> staged_;
};

// The devices this machine can run: "cpu" and "emu" always; "cuda" when the driver loads and sees a GPU.
std::vector<std::string> availableDevices();

// A new device by name; throws for an unknown or unavailable one, listing the available ones.
std::unique_ptr<Device> createDevice(const std::string& name);

}  // namespace nincc
