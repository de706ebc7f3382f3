// Open MPI loaded at run time (dlopen of libmpi.so.40), never linked: the addon builds and loads where
// MPI is absent, and only a distributed run asks for it. The few collectives data-parallel training
// uses (docs/distributed.md). Initialised with MPI_THREAD_MULTIPLE: the main thread, the gradient
// reducer's communication thread (never at the same time as the main thread) and the watchdog's
// heartbeats (at any time) all call MPI.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "collective.h"

namespace nincc {

class MpiLibrary final : public Collective {
 public:
  // Opens libmpi and calls MPI_Init_thread once per process; throws nincc::Error naming the packages
  // to install when the library is missing.
  static MpiLibrary& world();

  int rank() const { return rank_; }
  int size() const { return size_; }

  std::string name() const override { return "MPI"; }
  bool takesDeviceMemory() const override { return false; }
  // weight 0 sums zeros; otherwise each element becomes float(double(x) * weight) first (the rounding
  // the TS reducer used, so both give the same bits).
  void scaledSum(float* data, size_t count, double weight, void* stream) override;

  // In place: every rank ends with the element-wise sum over all ranks.
  void allreduceSum(float* data, size_t count);
  void allreduceSum(double* data, size_t count);
  // Each rank's `bytes` bytes, concatenated in rank order into `all` (size × bytes).
  void allgather(const uint8_t* mine, size_t bytes, uint8_t* all);
  void barrier();
  // Stops the watchdog first (telling the other ranks this one is done), then MPI_Finalize.
  void finalize();
  [[noreturn]] void abort(int code);

  // Starts the hung-rank watchdog (collective: every rank calls it once, at the same point): a thread
  // that sends every other rank a heartbeat each `timeoutSeconds`/8 (at most each second) over a
  // communicator of its own, and ends every rank with MPI_Abort, after printing which rank it was,
  // when some rank has sent none for `timeoutSeconds`. A stopped (SIGSTOP), frozen or unreachable
  // process sends none; a busy one does, so a long step or rank 0's test pass is not a hang.
  void startWatchdog(double timeoutSeconds);

 private:
  MpiLibrary();
  void stopWatchdog();
  void watch(double timeoutSeconds);
  void allreduceSumOf(void* data, size_t count, size_t width, void* type);
  struct Api;
  Api* api_;
  int rank_ = 0;
  int size_ = 1;
  bool finalized_ = false;
  struct Watchdog;
  Watchdog* watchdog_ = nullptr;
};

}  // namespace nincc
