// Arena allocation and the REF → pointer rule of docs/artifact.md.
#include "arena.h"

#include "error.h"

namespace nincc {

namespace {
constexpr int64_t kElementBytes = 4;  // every plan space counts 4-byte elements (f32 or i32)
}

Arena::Arena(Device& device, const Plan& plan) : device_(device) {
  try {
    for (int i = 0; i < kSpaceCount; ++i) {
      Space space = static_cast<Space>(i);
      capacity_[i] = plan.sizeOf(space) * (space == Space::Act ? plan.maxBatch : 1);
      // The weights and the running statistics are written as the model loads; the folded weights by
      // the first prepare_infer (Executor), gradients, momentum and activations as far as calls use them.
      const bool atLoad = space == Space::Param || space == Space::State;
      base_[i] = device_.alloc(static_cast<size_t>(capacity_[i] * kElementBytes),
                               atLoad ? Device::FirstWrite::AtLoad : Device::FirstWrite::Later);
    }
  } catch (...) {
    for (void* memory : base_)
      if (memory) device_.release(memory);
    throw;
  }
}

Arena::~Arena() {
  for (void* memory : base_)
    if (memory) device_.release(memory);
}

size_t Arena::capacityBytes(Space space) const { return static_cast<size_t>(capacity(space) * kElementBytes); }

void* Arena::pointer(const BufferRef& ref, int64_t n) const {
  int64_t scale = ref.space == Space::Act ? n : 1;
  return static_cast<char*>(base(ref.space)) + ref.offset * scale * kElementBytes;
}

int64_t Arena::elements(const BufferRef& ref, int64_t n) {
  return ref.space == Space::Act ? ref.size * n : ref.size;
}

}  // namespace nincc
