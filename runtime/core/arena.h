// Arena: one device allocation per plan space, zero-filled. Act holds act*maxBatch elements and an
// act buffer of N images starts at act_base + offset*N (the planner's per-image layout stays
// disjoint when every offset and size is scaled by the same N).
#pragma once
#include <cstdint>

#include "device.h"
#include "plan.h"

namespace nincc {

class Arena {
 public:
  Arena(Device& device, const Plan& plan);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* base(Space space) const { return base_[static_cast<int>(space)]; }
  // Elements allocated for a space (act: act * maxBatch).
  int64_t capacity(Space space) const { return capacity_[static_cast<int>(space)]; }
  // The bytes allocated for a space.
  size_t capacityBytes(Space space) const;

  // Where a buffer lives for a call of n images, and how many elements it spans.
  void* pointer(const BufferRef& ref, int64_t n) const;
  static int64_t elements(const BufferRef& ref, int64_t n);

 private:
  Device& device_;
  void* base_[kSpaceCount] = {};
  int64_t capacity_[kSpaceCount] = {};
};

}  // namespace nincc
