// MpiLibrary: dlopen of Open MPI's libmpi.so.40 and dlsym of the functions and predefined handles used.
// Open MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported globals
// (ompi_mpi_comm_world, ...), which is what mpi.h's macros expand to; so no mpi.h is needed to build.
#include "mpi_library.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "error.h"

namespace nincc {

namespace {

using Handle = void*;  // MPI_Comm, MPI_Datatype, MPI_Op and MPI_Request are all pointers in Open MPI
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
  int (*commDup)(Handle, Handle*);
  int (*isend)(const void*, int, Handle, int, int, Handle, Handle*);
  int (*irecv)(void*, int, Handle, int, int, Handle, Handle*);
  int (*test)(Handle*, int*, void*);  // the status argument: MPI_STATUS_IGNORE is a null pointer
  int (*cancel)(Handle*);
  int (*wait)(Handle*, void*);
  int (*requestFree)(Handle*);
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
  bind(library, a.commDup, "MPI_Comm_dup");
  bind(library, a.isend, "MPI_Isend");
  bind(library, a.irecv, "MPI_Irecv");
  bind(library, a.test, "MPI_Test");
  bind(library, a.cancel, "MPI_Cancel");
  bind(library, a.wait, "MPI_Wait");
  bind(library, a.requestFree, "MPI_Request_free");
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

void MpiLibrary::scaledSum(float* data, size_t count, double weight, void*) {
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

struct MpiLibrary::Watchdog {
  Handle comm = nullptr;  // a duplicate of the world: heartbeats never meet the collectives' messages
  std::atomic<bool> stop{false};
  std::thread thread;
};

namespace {
// What a heartbeat says: alive, or done (the sender is finalizing; stop watching it).
constexpr unsigned char kAlive = 1;
constexpr unsigned char kDone = 0;
constexpr int kHeartbeatTag = 7;
}  // namespace

void MpiLibrary::startWatchdog(double timeoutSeconds) {
  if (finalized_) throw Error("MPI was finalized");
  if (watchdog_) throw Error("the watchdog is already running");
  if (!(timeoutSeconds > 0)) throw Error("the rank timeout must be positive");
  watchdog_ = new Watchdog();
  check(api_->commDup(api_->commWorld, &watchdog_->comm), "MPI_Comm_dup");
  watchdog_->thread = std::thread([this, timeoutSeconds] { watch(timeoutSeconds); });
}

void MpiLibrary::watch(double timeoutSeconds) {
  using Clock = std::chrono::steady_clock;
  Api& a = *api_;
  Watchdog& w = *watchdog_;
  const auto period = std::chrono::duration<double>(std::min(1.0, timeoutSeconds / 8));
  std::vector<unsigned char> received(size_t(size_), 0);
  std::vector<Handle> pending(size_t(size_), nullptr);
  std::vector<Clock::time_point> heard(size_t(size_), Clock::now());
  std::vector<bool> watched(size_t(size_), true);
  watched[size_t(rank_)] = false;
  auto send = [&](const unsigned char* what) {
    for (int peer = 0; peer < size_; ++peer) {
      if (peer == rank_) continue;
      Handle request = nullptr;
      // Freed at once: the one-byte message goes out on its own, and `what` is static.
      if (a.isend(what, 1, a.byteType, peer, kHeartbeatTag, w.comm, &request) == kMpiSuccess) a.requestFree(&request);
    }
  };
  for (int peer = 0; peer < size_; ++peer)
    if (watched[size_t(peer)]) a.irecv(&received[size_t(peer)], 1, a.byteType, peer, kHeartbeatTag, w.comm, &pending[size_t(peer)]);
  Clock::time_point lastSent = Clock::now() - std::chrono::hours(1);
  while (!w.stop.load()) {
    Clock::time_point now = Clock::now();
    if (now - lastSent >= period) {
      send(&kAlive);
      lastSent = now;
    }
    for (int peer = 0; peer < size_; ++peer) {
      size_t p = size_t(peer);
      if (!watched[p]) continue;
      int arrived = 0;
      // Drains every heartbeat that has arrived, reposting the receive after each.
      while (a.test(&pending[p], &arrived, nullptr) == kMpiSuccess && arrived) {
        heard[p] = Clock::now();
        if (received[p] == kDone) {
          watched[p] = false;
          break;
        }
        a.irecv(&received[p], 1, a.byteType, peer, kHeartbeatTag, w.comm, &pending[p]);
      }
      double silent = std::chrono::duration<double>(Clock::now() - heard[p]).count();
      if (watched[p] && silent > timeoutSeconds) {
        std::fprintf(stderr,
                     "nincc: rank %d of %d: rank %d has sent no heartbeat for %.1f s (--rank-timeout %g): it is "
                     "stopped, frozen or unreachable; ending every rank (resume from the last checkpoint with --resume)\n",
                     rank_, size_, peer, silent, timeoutSeconds);
        std::fflush(stderr);
        a.abort(a.commWorld, 1);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  send(&kDone);
  for (int peer = 0; peer < size_; ++peer)
    if (watched[size_t(peer)]) {
      a.cancel(&pending[size_t(peer)]);
      a.wait(&pending[size_t(peer)], nullptr);
    }
}

void MpiLibrary::stopWatchdog() {
  if (!watchdog_) return;
  watchdog_->stop.store(true);
  watchdog_->thread.join();
  delete watchdog_;
  watchdog_ = nullptr;
}

void MpiLibrary::finalize() {
  if (finalized_) return;
  stopWatchdog();
  finalized_ = true;
  check(api_->finalize(), "MPI_Finalize");
}

void MpiLibrary::abort(int code) {
  api_->abort(api_->commWorld, code);
  __builtin_unreachable();
}

}  // namespace nincc
