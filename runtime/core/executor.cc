// Executor: resolve kernels once; per call, turn REFs into pointers for this N and scalar names
// into values, then launch the steps in order (or, for a batch-split program, each slice of the
// batch's steps in order on its own thread).
#include "executor.h"

#include <algorithm>
#include <cstdlib>

#include "error.h"

namespace nincc {

namespace {
// The scalars docs/artifact.md defines; a plan may add its own through its steps.
const char* const kAbiScalars[] = {"lr", "wd", "momentum", "first", "training"};
}  // namespace

Executor::Executor(const Plan& plan, Device& device, Arena& arena)
    : plan_(plan), device_(device), arena_(arena) {
  for (const char* name : kAbiScalars) knownScalars_.insert(name);
  if (const char* split = std::getenv("NINCC_SPLIT_BATCH")) slicesPerThread_ = std::max(0, std::atoi(split));
  for (const Program& program : plan_.programs) {
    // A program this device does not implement is not resolved: its kernels are not in this library.
    if (!program.runsOn(device_.name())) continue;
    std::vector<ResolvedStep>& steps = resolved_[program.name];
    for (const Step& step : program.steps) {
      steps.push_back({&step, device_.findKernel(step)});
      knownScalars_.insert(step.scalars.begin(), step.scalars.end());
    }
  }
}

const Program& Executor::program(const std::string& name) const {
  const Program* program = plan_.findProgram(name);
  if (!program)
    throw Error("unknown program \"" + name + "\": " + plan_.file + " has " +
                plan_.programNameList());
  return *program;
}

void Executor::checkBatch(int64_t n) const {
  if (n < 1 || n > plan_.maxBatch)
    throw Error("batch size " + std::to_string(n) + " is out of range: this artifact runs 1.." +
                std::to_string(plan_.maxBatch) + " images per call (maxBatch in " + plan_.file + ")");
}

std::string Executor::describe(const Program& program, size_t stepIndex) const {
  const Step& step = program.steps[stepIndex];
  return "program \"" + program.name + "\" step " + std::to_string(stepIndex) + " (kernel " +
         step.kernel + ", layer " + std::to_string(step.layer) +
         (step.source.empty() ? "" : " at " + step.source) + ")";
}

int64_t Executor::batchParts(const Program& program, int64_t n, bool perStepHook) const {
  const int64_t threads = device_.partThreads();
  if (!program.splitBatch || perStepHook || threads <= 1) return 1;
  // Whole images per slice, so slices are even only when their count divides n; past 4 images a slice
  // the largest is at most 1.25x the mean. Otherwise each layer's own split balances better.
  for (int64_t parts = threads * slicesPerThread_; parts >= threads; parts -= threads)
    if (n >= parts && (n % parts == 0 || n >= 4 * parts)) return parts;
  return 1;
}

void Executor::runBatchParts(const Program& prog, int64_t n, int64_t parts, std::vector<std::vector<double>>& stepScalars,
                             uint64_t seed) {
  const std::vector<ResolvedStep>& steps = resolved_.at(prog.name);
  // Part p takes images [n*p/parts, n*(p+1)/parts): a batch-major act buffer starts that many images into the
  // call's (plan.json splitBatch), one of the part's own (splitLocal) in the part's region; every other space is
  // shared as it is.
  char* const act = static_cast<char*>(arena_.base(Space::Act));
  device_.runParts(parts, [&](int64_t p) {
    const int64_t first = n * p / parts, count = n * (p + 1) / parts - first;
    const auto pointer = [&](const BufferRef& ref) -> void* {
      if (ref.space != Space::Act) return arena_.pointer(ref, n);
      if (prog.splitLocalFrom < 0 || ref.offset < prog.splitLocalFrom)
        return static_cast<char*>(arena_.pointer(ref, n)) + first * ref.size * int64_t{4};
      return act + (prog.splitLocalFrom * n + first * prog.splitLocalStride + (ref.offset - prog.splitLocalFrom) * count) * int64_t{4};
    };
    std::vector<void*> pointers;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& step = *steps[i].step;
      pointers.clear();
      for (const BufferRef& ref : step.args) pointers.push_back(pointer(ref));
      NinccArgs args;
      args.n = static_cast<int32_t>(count);
      args.ptr = pointers.data();
      args.scalar = stepScalars[i].data();
      args.seed = seed;
      device_.launch(steps[i].kernel, step, args);
    }
  });
  device_.synchronize();
}

void Executor::run(const std::string& programName, int64_t n, const ScalarValues& scalars,
                   uint64_t seed, const StepDone& stepDone) {
  const Program& prog = program(programName);
  if (!prog.runsOn(device_.name())) {
    std::string devices;
    for (const std::string& d : prog.devices) devices += (devices.empty() ? "" : ", ") + d;
    throw Error("program \"" + programName + "\" of " + plan_.file + " runs on " + devices + ", not on the " +
                device_.name() + " device (a cuda/emu build's training program uses the fused CUDA kernels; " +
                "build with --target cpu to train on the cpu device)");
  }
  checkBatch(n);
  for (const auto& given : scalars)
    if (!knownScalars_.count(given.first)) {
      std::string known;
      for (const std::string& k : knownScalars_) known += (known.empty() ? "" : ", ") + k;
      throw Error("unknown scalar \"" + given.first + "\" passed to run(\"" + programName +
                  "\") (known: " + known + ")");
    }

  // Resolve every step's scalars before launching any, so a missing one changes nothing.
  const std::vector<ResolvedStep>& steps = resolved_.at(prog.name);
  std::vector<std::vector<double>> stepScalars(steps.size());
  for (size_t i = 0; i < steps.size(); ++i)
    for (const std::string& name : steps[i].step->scalars) {
      auto found = scalars.find(name);
      if (found == scalars.end())
        throw Error(describe(prog, i) + " needs scalar \"" + name + "\", which the call did not pass");
      stepScalars[i].push_back(found->second);
    }

  if (ticketsStale_) zeroTickets();
  try {
    launchSteps(prog, n, stepScalars, seed, stepDone);
  } catch (...) {
    // A kernel cut short may have taken some of its tiles' tickets and not the last: the next run starts from 0.
    ticketsStale_ = !plan_.tickets.empty();
    throw;
  }
}

void Executor::zeroTickets() {
  device_.synchronize();  // nothing of the failed run is still queued behind the copies
  for (const BufferRef& ref : plan_.tickets) {
    const std::vector<float> zeros(static_cast<size_t>(ref.size), 0.0f);
    device_.copyToDevice(arena_.pointer(ref, 1), zeros.data(), zeros.size() * sizeof(float));
  }
  device_.synchronize();
  ticketsStale_ = false;
}

void Executor::launchSteps(const Program& prog, int64_t n, std::vector<std::vector<double>>& stepScalars,
                           uint64_t seed, const StepDone& stepDone) {
  const std::vector<ResolvedStep>& steps = resolved_.at(prog.name);
  const int64_t parts = batchParts(prog, n, stepDone != nullptr);
  if (parts > 1) {
    runBatchParts(prog, n, parts, stepScalars, seed);
    return;
  }

  // Every step's args first, then the program in one call (the cuda device can replay it as a graph).
  std::vector<std::vector<void*>> pointers(steps.size());
  std::vector<StepLaunch> launches(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = *steps[i].step;
    for (const BufferRef& ref : step.args) pointers[i].push_back(arena_.pointer(ref, n));
    NinccArgs& args = launches[i].args;
    args.n = static_cast<int32_t>(n);
    args.ptr = pointers[i].data();
    args.scalar = stepScalars[i].data();
    args.seed = seed;
    launches[i].kernel = steps[i].kernel;
    launches[i].step = &step;
  }
  if (prog.oneShot && !fixedWritten_) {
    // prepare_infer writes the folded weights, most of the fixed space (2.6 of 2.7 MB for nin-fashion).
    device_.willWrite(arena_.base(Space::Fixed), arena_.capacityBytes(Space::Fixed));
    fixedWritten_ = true;
  }
  if (stepDone || prog.oneShot) {
    // Told after each step (the distributed trainer's bucket hook), or a program run once after the
    // weights change (plan.h Program::oneShot): launched one by one.
    for (size_t i = 0; i < launches.size(); ++i) {
      device_.launch(launches[i].kernel, *launches[i].step, launches[i].args);
      if (stepDone) stepDone(i);
    }
  } else {
    device_.launchProgram(prog.name + " at batch " + std::to_string(n), launches);
  }
  device_.synchronize();
}

}  // namespace nincc
