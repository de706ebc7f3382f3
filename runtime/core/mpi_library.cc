// MpiLibrary: dlopen of Open MPI's libmpi.so.40 and dlsym of the functions and predefined handles used.
// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported globals
// (ompi_mpi_comm_world, ...), which is what mpi.h's macros expand to; so no mpi.h is needed to build.
#include "mpi_library.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>

#include "error.h"

namespace nincc {

namespace {

using Handle = void*;  // MPI_Comm, MPI_Datatype and MPI_Op are all pointers in Open MPI
constexpr int kMpiSuccess = 0;
constexpr int kMpiThreadMultiple = 3;
// The soname of Open MPI 4 and 5 (Debian 12's openmpi-bin / libopenmpi3 ships it).
constexpr const char* kLibrary = "libmpi.so.40";
constexpr const char* kInstallHint = "apt-get install openmpi-bin libopenmpi-dev";

}  // namespace

struct MpiLibrary::Api {
  int (*initialized)(int*);
  int (*initThread)(int*, char***, int, int*);
  int (*commRank)(Handle, int*);
  int (*commSize)(Handle, int*);
  int (*allreduce)(const void*, void*, int, Handle, Handle, Handle);
  int (*allgather)(const void*, int, Handle, void*, int, Handle, Handle);
  int (*barrier)(Handle);
  int (*finalize)();
  int (*abort)(Handle, int);
  Handle commWorld, floatType, doubleType, byteType, sumOp;
  void* inPlace;  // MPI_IN_PLACE is ((void*)1) in Open MPI
};

static void* symbol(void* library, const char* name) {
  void* p = dlsym(library, name);
  if (!p) throw Error(std::string(kLibrary) + " has no symbol " + name + ": it is not Open MPI 4 or 5 (" + kInstallHint + ")");
  return p;
}

template <typename Fn>
static void bind(void* library, Fn*& slot, const char* name) {
  slot = reinterpret_cast<Fn*>(symbol(library, name));
}

static void check(int status, const char* call) {
  if (status != kMpiSuccess) throw Error(std::string(call) + " failed with MPI error " + std::to_string(status));
}

MpiLibrary::MpiLibrary() : api_(new Api{}) {
  // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so) resolve libmpi's symbols through the global scope.
  // NINCC_MPI_LIBRARY names another copy (a path, or a soname the tests make unloadable).
  const char* name = std::getenv("NINCC_MPI_LIBRARY");
  if (!name || !*name) name = kLibrary;
  void* library = dlopen(name, RTLD_NOW | RTLD_GLOBAL);
  if (!library) {
    const char* why = dlerror();
    throw Error(std::string("a distributed run needs Open MPI, and ") + name + " could not be loaded (" + (why ? why : "unknown error") + "); install it with: " + kInstallHint);
  }
  Api& a = *api_;
  bind(library, a.initialized, "MPI_Initialized");
  bind(library, a.initThread, "MPI_Init_thread");
  bind(library, a.commRank, "MPI_Comm_rank");
  bind(library, a.commSize, "MPI_Comm_size");
  bind(library, a.allreduce, "MPI_Allreduce");
  bind(library, a.allgather, "MPI_Allgather");
  bind(library, a.barrier, "MPI_Barrier");
  bind(library, a.finalize, "MPI_Finalize");
  bind(library, a.abort, "MPI_Abort");
  a.commWorld = symbol(library, "ompi_mpi_comm_world");
  a.floatType = symbol(library, "ompi_mpi_float");
  a.doubleType = symbol(library, "ompi_mpi_double");
  a.byteType = symbol(library, "ompi_mpi_byte");
  a.sumOp = symbol(library, "ompi_mpi_op_sum");
  a.inPlace = reinterpret_cast<void*>(1);
  int already = 0;
  check(a.initialized(&already), "MPI_Initialized");
  if (!already) {
    int provided = 0;
    check(a.initThread(nullptr, nullptr, kMpiThreadMultiple, &provided), "MPI_Init_thread");
    if (provided < kMpiThreadMultiple)
      throw Error("this Open MPI gives thread level " + std::to_string(provided) +
                  ", and a distributed run needs MPI_THREAD_MULTIPLE (3): the gradient reducer and the " +
                  "watchdog call MPI from their own threads (" + kInstallHint + " builds it with threads)");
  }
  check(a.commRank(a.commWorld, &rank_), "MPI_Comm_rank");
  check(a.commSize(a.commWorld, &size_), "MPI_Comm_size");
}

MpiLibrary& MpiLibrary::world() {
  // Leaked on purpose: MPI_Finalize is explicit, and libmpi must stay loaded until the process exits.
  static MpiLibrary* instance = new MpiLibrary();
  return *instance;
}

// MPI counts are ints: larger buffers go in chunks.
void MpiLibrary::allreduceSumOf(void* data, size_t count, size_t width, void* type) {
  if (finalized_) throw Error("MPI was finalized");
  for (size_t done = 0; done < count;) {
    int n = int(std::min<size_t>(count - done, INT_MAX));
    check(api_->allreduce(api_->inPlace, static_cast<char*>(data) + done * width, n, type, api_->sumOp, api_->commWorld), "MPI_Allreduce");
    done += size_t(n);
  }
}

void MpiLibrary::scaledSum(float* data, size_t count, double weight) {
  if (weight == 0)
    std::fill(data, data + count, 0.0f);
  else if (weight != 1)
    for (size_t i = 0; i < count; ++i) data[i] = float(double(data[i]) * weight);
  allreduceSum(data, count);
}

void MpiLibrary::allreduceSum(float* data, size_t count) { allreduceSumOf(data, count, sizeof(float), api_->floatType); }
void MpiLibrary::allreduceSum(double* data, size_t count) { allreduceSumOf(data, count, sizeof(double), api_->doubleType); }

void MpiLibrary::allgather(const uint8_t* mine, size_t bytes, uint8_t* all) {
  if (finalized_) throw Error("MPI was finalized");
  if (bytes > size_t(INT_MAX)) throw Error("MPI_Allgather of more than 2 GiB per rank");
  check(api_->allgather(mine, int(bytes), api_->byteType, all, int(bytes), api_->byteType, api_->commWorld), "MPI_Allgather");
}

void MpiLibrary::barrier() {
  if (finalized_) throw Error("MPI was finalized");
  check(api_->barrier(api_->commWorld), "MPI_Barrier");
}

void MpiLibrary::finalize() {
  if (finalized_) return;
  finalized_ = true;
  check(api_->finalize(), "MPI_Finalize");
}

void MpiLibrary::abort(int code) {
  api_->abort(api_->commWorld, code);
  __builtin_unreachable();
}

}  // namespace nincc
