// NcclLibrary and NcclCollective: dlopen/dlsym of the few NCCL functions used. The enum values and
// the by-value ncclUniqueId are NCCL's stable ABI (nccl.h), so no nccl.h is needed to build.
#include "nccl_library.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>

#include "cuda_device.h"
#include "error.h"

namespace nincc {

namespace {

constexpr const char* kLibrary = "libnccl.so.2";
constexpr const char* kInstallHint =
    "install NCCL 2.11 or later: apt-get install libnccl2 from NVIDIA's CUDA repository, or pip install "
    "nvidia-nccl-cu12 and point NINCC_NCCL_LIBRARY at its libnccl.so.2";
constexpr int kNcclSuccess = 0;
constexpr int kNcclFloat32 = 7;
constexpr int kNcclSum = 0;
constexpr int kNcclScalarHostImmediate = 1;
constexpr int kPreMulSumVersion = 21100;  // NCCL 2.11.0

struct UniqueIdArg {
  char internal[kNcclUniqueIdBytes];
};

}  // namespace

struct NcclLibrary::Api {
  int (*getVersion)(int*);
  int (*getUniqueId)(UniqueIdArg*);
  int (*commInitRank)(void**, int, UniqueIdArg, int);
  int (*commDestroy)(void*);
  int (*allReduce)(const void*, void*, size_t, int, int, void*, void*);
  int (*redOpCreatePreMulSum)(int*, void*, int, int, void*);
  int (*redOpDestroy)(int, void*);
  const char* (*getErrorString)(int);
};

template <typename Fn>
static void bind(void* library, Fn*& slot, const char* name) {
  slot = reinterpret_cast<Fn*>(dlsym(library, name));
  if (!slot) throw Error(std::string(kLibrary) + " has no symbol " + name + ": " + kInstallHint);
}

NcclLibrary::NcclLibrary() : api_(new Api{}) {
  const char* name = std::getenv("NINCC_NCCL_LIBRARY");
  if (!name || !*name) name = kLibrary;
  void* library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = dlerror();
    throw Error(std::string("a distributed run on cuda reduces with NCCL, and ") + name + " could not be loaded (" +
                (why ? why : "unknown error") + "); " + kInstallHint);
  }
  Api& a = *api_;
  bind(library, a.getVersion, "ncclGetVersion");
  bind(library, a.getUniqueId, "ncclGetUniqueId");
  bind(library, a.commInitRank, "ncclCommInitRank");
  bind(library, a.commDestroy, "ncclCommDestroy");
  bind(library, a.allReduce, "ncclAllReduce");
  bind(library, a.redOpCreatePreMulSum, "ncclRedOpCreatePreMulSum");
  bind(library, a.redOpDestroy, "ncclRedOpDestroy");
  bind(library, a.getErrorString, "ncclGetErrorString");
  check(a.getVersion(&version_), "ncclGetVersion");
  if (version_ < kPreMulSumVersion)
    throw Error(std::string(name) + " is NCCL version code " + std::to_string(version_) + ", older than 2.11; " + kInstallHint);
}

NcclLibrary& NcclLibrary::get() {
  // Leaked on purpose, like MpiLibrary: communicators may outlive any owner.
  static NcclLibrary* instance = new NcclLibrary();
  return *instance;
}

void NcclLibrary::check(int result, const char* call) const {
  if (result != kNcclSuccess)
    throw Error(std::string(call) + " failed: " + api_->getErrorString(result) + " (NCCL error " + std::to_string(result) + ")");
}

NcclUniqueId NcclLibrary::uniqueId() {
  UniqueIdArg id{};
  check(api_->getUniqueId(&id), "ncclGetUniqueId");
  NcclUniqueId out{};
  std::memcpy(out.data(), id.internal, out.size());
  return out;
}

NcclCollective::NcclCollective(int rank, int size, const NcclUniqueId& id)
    : nccl_(NcclLibrary::get()), rank_(rank), size_(size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw Error("NCCL rank " + std::to_string(rank) + " of " + std::to_string(size) + ": not a rank of the world");
  UniqueIdArg arg{};
  std::memcpy(arg.internal, id.data(), id.size());
  makeChosenGpuCurrent();
  nccl_.check(nccl_.api().commInitRank(&comm_, size, arg, rank), "ncclCommInitRank");
}

NcclCollective::~NcclCollective() {
  if (comm_) nccl_.api().commDestroy(comm_);
}

void NcclCollective::scaledSum(float* data, size_t count, double weight, void* stream) {
  const NcclLibrary::Api& a = nccl_.api();
  if (weight == 1) {
    nccl_.check(a.allReduce(data, data, count, kNcclFloat32, kNcclSum, comm_, stream), "ncclAllReduce");
    return;
  }
  float scalar = float(weight);
  int op = 0;
  nccl_.check(a.redOpCreatePreMulSum(&op, &scalar, kNcclFloat32, kNcclScalarHostImmediate, comm_), "ncclRedOpCreatePreMulSum");
  int result = a.allReduce(data, data, count, kNcclFloat32, op, comm_, stream);
  a.redOpDestroy(op, comm_);
  nccl_.check(result, "ncclAllReduce");
}

}  // namespace nincc
