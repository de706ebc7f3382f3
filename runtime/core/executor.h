// Executor: runs a plan's programs. Every kernel symbol is resolved when it is built, so a library
// that lacks a kernel fails at load time rather than in the middle of training.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "arena.h"
#include "device.h"
#include "plan.h"

namespace nincc {

using ScalarValues = std::map<std::string, double>;
// Told the index of each step once it has been launched (docs/distributed.md: a gradient bucket is
// final after the last step that touches it).
using StepDone = std::function<void(size_t step)>;

class Executor {
 public:
  Executor(const Plan& plan, Device& device, Arena& arena);

  // Runs `program` for a batch of n images. Every scalar a step names must be in `scalars`; a
  // name no step of this plan uses and that the ABI does not define is rejected as a likely typo.
  // The seed goes unchanged to every step: kernels mix in their own layer, so a forward and a
  // backward kernel of one dropout layer derive the same mask.
  void run(const std::string& program, int64_t n, const ScalarValues& scalars, uint64_t seed,
           const StepDone& stepDone = nullptr);

  const Program& program(const std::string& name) const;
  // Throws unless 1 <= n <= maxBatch.
  void checkBatch(int64_t n) const;

 private:
  struct ResolvedStep {
    const Step* step;
    KernelHandle kernel;
  };

  std::string describe(const Program& program, size_t stepIndex) const;
  // How many slices of the batch a call runs at once for a splitBatch program: kT (k slices per thread
  // of the device's T part threads), or fewer whole multiples of T, the most that divide n or leave at
  // least 4 images a slice; 1 when none does, with a per-step hook, or on one thread.
  int64_t batchParts(const Program& program, int64_t n, bool perStepHook) const;
  // Every step of `prog` with its resolved scalars: one after another, or in slices of the batch.
  void launchSteps(const Program& prog, int64_t n, std::vector<std::vector<double>>& stepScalars, uint64_t seed,
                   const StepDone& stepDone);
  // Zeroes plan.json's tickets (a run failed since they were last known to be 0).
  void zeroTickets();
  void runBatchParts(const Program& prog, int64_t n, int64_t parts, std::vector<std::vector<double>>& stepScalars,
                     uint64_t seed);

  const Plan& plan_;
  Device& device_;
  Arena& arena_;
  std::map<std::string, std::vector<ResolvedStep>> resolved_;
  std::set<std::string> knownScalars_;
  // k above: NINCC_SPLIT_BATCH in the environment (0 turns the split off), for A/B measurements; default 1.
  int slicesPerThread_ = 1;
  // A run failed after it may have launched a step that takes tickets: zero them before the next run.
  bool ticketsStale_ = false;
  // The fixed space's pages are in place (willWrite, before the first one-shot program fills it).
  bool fixedWritten_ = false;
};

}  // namespace nincc
