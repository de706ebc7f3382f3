// cuLaunchKernel-style `kernelParams` for a plan step (docs/emu.md, docs/artifact.md): one entry per
// buffer (a pointer), then int n, then the step's scalars as float or double by the kernel's
// signature, then, when the launch rule says `seed`, the call's seed as an unsigned 64-bit integer. One routine for the emu device and (later) the cuda device, so a marshalling bug shows
// on the CPU before it corrupts a GPU launch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nincc/abi.h"
#include "plan.h"

namespace nincc {

class KernelParams {
 public:
  // Checks `signature` ("p" per buffer, "i" for n, "f"/"d" per scalar) against the step; throws
  // nincc::Error beginning with `what` when they disagree.
  KernelParams(const std::string& what, const std::string& signature, const Step& step, const NinccArgs& args);
  KernelParams(const KernelParams&) = delete;
  KernelParams& operator=(const KernelParams&) = delete;

  void** data() { return params_.data(); }
  uint32_t count() const { return static_cast<uint32_t>(params_.size()); }
  int32_t n() const { return n_; }

 private:
  int32_t n_;
  uint64_t seed_;
  std::vector<float> floats_;
  std::vector<double> doubles_;
  std::vector<void*> params_;
};

// The launch geometry of a step's rule for batch size n: grid dimension batchAxis times n.
void launchGeometry(const LaunchRule& rule, int64_t n, uint32_t grid[3], uint32_t block[3]);

}  // namespace nincc
