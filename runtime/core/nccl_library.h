// NCCL loaded at run time (dlopen of libnccl.so.2), never linked, like Open MPI (mpi_library.h): the
// GPU ranks' reduction backend. Rank 0 makes the unique id, MPI carries it to the others
// (runtime/distributed/backend.ts), and each rank joins the communicator with it; then
// NcclCollective sums gradient buckets in the cuda arena, in place, on the device.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "collective.h"

namespace nincc {

// The bytes of an ncclUniqueId (NCCL_UNIQUE_ID_BYTES).
constexpr size_t kNcclUniqueIdBytes = 128;
using NcclUniqueId = std::array<uint8_t, kNcclUniqueIdBytes>;

class NcclLibrary {
 public:
  // Opens the library once per process; throws nincc::Error naming what to install when it is
  // missing or older than 2.11 (ncclRedOpCreatePreMulSum, which scales while it sums).
  static NcclLibrary& get();
  int version() const { return version_; }
  // ncclGetUniqueId: on rank 0 only.
  NcclUniqueId uniqueId();

  struct Api;
  const Api& api() const { return *api_; }
  void check(int result, const char* call) const;

 private:
  NcclLibrary();
  Api* api_;
  int version_ = 0;
};

// One rank of an NCCL communicator (ncclCommInitRank) over the GPU this process's cuda device uses.
// Its collectives go on the stream the caller gives: the cuda device's communication stream, which
// gradient_reducer.cc orders after each bucket's last backward kernel and before the SGD update by
// events (device.h commWaitsForCompute / computeWaitsForComm).
class NcclCollective final : public Collective {
 public:
  NcclCollective(int rank, int size, const NcclUniqueId& id);
  ~NcclCollective() override;
  std::string name() const override { return "NCCL"; }
  bool takesDeviceMemory() const override { return true; }
  // ncclAllReduce in place; weight != 1 through a pre-multiplied sum (the weight rounded to float).
  void scaledSum(float* data, size_t count, double weight, void* stream) override;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  NcclLibrary& nccl_;
  void* comm_ = nullptr;  // ncclComm_t
  int rank_;
  int size_;
};

}  // namespace nincc
