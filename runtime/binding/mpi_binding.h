// The addon's `mpi` object (mpi_binding.cc).
#pragma once
#include <napi.h>

#include "collective.h"
#include "gradient_reducer.h"

namespace nincc_binding {

Napi::Object mpiObject(Napi::Env env);
// The addon's `nccl` object: uniqueId(), init(rank, size, id), version() (nccl_library.h).
Napi::Object ncclObject(Napi::Env env);

// A run() whose gradients are reduced across ranks: what to reduce and with which backend.
struct ReduceJob {
  nincc::ReduceRequest request;
  nincc::Collective* collective;
};

// run()'s `reduce` argument: { buckets: Float64Array of offset, size pairs, weight, overlap, state,
// backend: "mpi" | "nccl" }. The backend must have been opened (mpi.init(), nccl.init()).
ReduceJob reduceJobArg(const Napi::Value& value);

}  // namespace nincc_binding
