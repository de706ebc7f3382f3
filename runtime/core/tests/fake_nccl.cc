// A stand-in for libnccl.so.2 (loaded through NINCC_NCCL_LIBRARY) for the cuda rank tests
// (cuda_rank_test.cc, run under mpirun with the fake CUDA driver): ncclGetUniqueId makes an id that
// names the process, ncclCommInitRank records the id it was given and the GPU current then, and ncclAllReduce
// queues, on the stream it is given, through the fake driver (fake_cuda_enqueue), a sum of the
// fake-device (host) buffer over the ranks by MPI_Allreduce of the process's Open MPI (already loaded
// RTLD_GLOBAL by the runtime), after multiplying by a pre-multiplied sum's float scalar as NCCL does.
// fake_nccl_* report what happened.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {
constexpr int kSuccess = 0, kInvalidArgument = 4, kFloat32 = 7, kSum = 0;
struct UniqueId {
  char bytes[128];
};
struct Comm {
  UniqueId id;
  int rank, size;
};
struct AllReduce {
  float* data;
  size_t count;
  float scalar;
};
int uniqueIds = 0;         // ncclGetUniqueId calls
UniqueId joined{};         // the id the last ncclCommInitRank was given
int joinedOn = -1;         // the GPU current on the thread then (NCCL takes the runtime's current device)
std::map<int, float> ops;  // pre-multiplied sums by handle

using Enqueue = int (*)(void*, int (*)(void*), void*, const char*);
Enqueue driverEnqueue() {
  void* driver = dlopen(std::getenv("NINCC_CUDA_DRIVER"), RTLD_NOW | RTLD_NOLOAD);
  return driver ? reinterpret_cast<Enqueue>(dlsym(driver, "fake_cuda_enqueue")) : nullptr;
}

// Runs on the stream: Open MPI's handles are its exported globals (mpi_library.cc).
int sumOverRanks(void* context) {
  auto* job = static_cast<AllReduce*>(context);
  using Allreduce = int (*)(const void*, void*, int, void*, void*, void*);
  auto allreduce = reinterpret_cast<Allreduce>(dlsym(RTLD_DEFAULT, "MPI_Allreduce"));
  void *world = dlsym(RTLD_DEFAULT, "ompi_mpi_comm_world"), *type = dlsym(RTLD_DEFAULT, "ompi_mpi_float"),
       *sum = dlsym(RTLD_DEFAULT, "ompi_mpi_op_sum");
  int result = kInvalidArgument;
  if (allreduce && world && type && sum) {
    for (size_t i = 0; i < job->count; ++i) job->data[i] *= job->scalar;
    result = allreduce(reinterpret_cast<void*>(1) /* MPI_IN_PLACE */, job->data, int(job->count), type, sum, world) == 0
                 ? kSuccess : kInvalidArgument;
  }
  delete job;
  return result;
}
}  // namespace

#define NCCL extern "C" __attribute__((visibility("default"))) int

NCCL ncclGetVersion(int* v) { *v = 21903; return kSuccess; }
NCCL ncclGetUniqueId(UniqueId* id) {
  ++uniqueIds;
  std::memset(id->bytes, 0, sizeof id->bytes);
  std::snprintf(id->bytes, sizeof id->bytes, "fake-nccl-id of pid %d", int(getpid()));
  return kSuccess;
}
NCCL ncclCommInitRank(void** comm, int size, UniqueId id, int rank) {
  joined = id;
  void* driver = dlopen(std::getenv("NINCC_CUDA_DRIVER"), RTLD_NOW | RTLD_NOLOAD);
  auto currentOrdinal = reinterpret_cast<int (*)()>(driver ? dlsym(driver, "fake_cuda_current_ordinal") : nullptr);
  joinedOn = currentOrdinal ? currentOrdinal() : -1;
  *comm = new Comm{id, rank, size};
  return kSuccess;
}
NCCL ncclCommDestroy(void* comm) { delete static_cast<Comm*>(comm); return kSuccess; }
NCCL ncclRedOpCreatePreMulSum(int* op, void* scalar, int type, int residence, void*) {
  if (type != kFloat32 || residence != 1) return kInvalidArgument;
  *op = 64 + int(ops.size());
  ops[*op] = *static_cast<float*>(scalar);
  return kSuccess;
}
NCCL ncclRedOpDestroy(int, void*) { return kSuccess; }
NCCL ncclAllReduce(const void* send, void* recv, size_t count, int type, int op, void*, void* stream) {
  if (send != recv || type != kFloat32 || (op != kSum && !ops.count(op))) return kInvalidArgument;
  Enqueue enqueue = driverEnqueue();
  if (!enqueue) return kInvalidArgument;
  auto* job = new AllReduce{static_cast<float*>(recv), count, op == kSum ? 1.0f : ops[op]};
  char label[64];
  std::snprintf(label, sizeof label, "allreduce %p %zu", recv, count);
  return enqueue(stream, sumOverRanks, job, label) == 0 ? kSuccess : kInvalidArgument;
}
extern "C" __attribute__((visibility("default"))) const char* ncclGetErrorString(int r) {
  return r == kSuccess ? "no error" : "invalid argument (fake NCCL)";
}

extern "C" __attribute__((visibility("default"))) int fake_nccl_unique_ids() { return uniqueIds; }
extern "C" __attribute__((visibility("default"))) const char* fake_nccl_joined_id() { return joined.bytes; }
extern "C" __attribute__((visibility("default"))) int fake_nccl_joined_on() { return joinedOn; }
