// Collective: what the gradient reducer (gradient_reducer.h) needs from a reduction backend — an
// in-place sum of a float buffer over all ranks — so that one bucket plan runs over MPI (host memory,
// mpi_library.h) or NCCL (device memory, nccl_library.h).
#pragma once
#include <cstddef>
#include <string>

namespace nincc {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual std::string name() const = 0;
  // True when allreduceSum takes device pointers (the arena of a cuda model), false for host memory.
  virtual bool takesDeviceMemory() const = 0;
  // In place: every rank ends with the element-wise sum over all ranks of `weight` × its `data`.
  // Each rank gives its own weight (its share of the global batch). The same calls, in the same
  // order and with the same counts, must be made on every rank. A device-memory collective enqueues
  // the sum on `stream` (a CUstream; null: CUDA's legacy default stream) and returns; host-memory
  // ones are done when they return and ignore it.
  virtual void scaledSum(float* data, size_t count, double weight, void* stream) = 0;
};

}  // namespace nincc
