// runAndReduce: the bucket loop (shared by both paths) and the communication thread of the overlapped
// one. The executor reports each finished step; the thread reduces bucket k once the last step that
// touches it has run, in bucket order, so that every rank makes the same collective calls in the
// same order whichever path it takes.
#include "gradient_reducer.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>

#include "error.h"

namespace nincc {

namespace {

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::mutex timingMutex;
ReduceTiming lastTiming;

bool overlaps(const BufferRef& ref, const GradientBucket& b) {
  return ref.space == Space::Grad && ref.offset < b.offset + b.size && b.offset < ref.offset + ref.size;
}

void checkBuckets(const Model& model, const std::vector<GradientBucket>& buckets) {
  int64_t capacity = model.spaceCapacity(Space::Grad);
  for (const GradientBucket& b : buckets)
    if (b.offset < 0 || b.size < 0 || b.offset > capacity || b.size > capacity - b.offset)
      throw Error("gradient bucket [" + std::to_string(b.offset) + ", " + std::to_string(b.offset + b.size) +
                  ") lies outside the grad space of " + std::to_string(capacity) + " elements");
}

// Scales and sums one range of a space: in place where the collective reads that memory, else
// through a host copy (MPI ranks on a cuda model).
class RangeReducer {
 public:
  RangeReducer(Model& model, Collective& collective, double weight)
      : model_(model), collective_(collective), weight_(weight),
        direct_(collective.takesDeviceMemory() != model.device().hostAddressable()) {
    if (collective.takesDeviceMemory() && model.device().hostAddressable())
      throw Error(collective.name() + " reduces device memory, and a " + model.deviceName() +
                  " model's arena is host memory: reduce it with MPI");
  }
  bool inPlace() const { return direct_; }

  double seconds() const { return seconds_; }

  void reduce(Space space, int64_t offset, int64_t size) {
    if (size == 0) return;
    Clock::time_point started = Clock::now();
    reduceNow(space, offset, size);
    seconds_ += secondsSince(started);
  }

 private:
  void reduceNow(Space space, int64_t offset, int64_t size) {
    float* data = static_cast<float*>(model_.spaceBase(space)) + offset;
    if (direct_) {
      collective_.scaledSum(data, size_t(size), weight_);
      return;
    }
    staging_.resize(size_t(size));
    model_.device().copyToHost(staging_.data(), data, staging_.size() * 4);
    collective_.scaledSum(staging_.data(), staging_.size(), weight_);
    model_.device().copyToDevice(data, staging_.data(), staging_.size() * 4);
  }

  Model& model_;
  Collective& collective_;
  double weight_;
  bool direct_;
  std::vector<float> staging_;
  double seconds_ = 0;
};

// The overlapped path's shared state: how far the program has run, and whether it failed.
struct Progress {
  std::mutex mutex;
  std::condition_variable changed;
  int64_t stepsDone = 0;  // steps 0 .. stepsDone-1 have run
  bool failed = false;
};

}  // namespace

std::vector<int64_t> bucketReadySteps(const Program& program, const std::vector<GradientBucket>& buckets) {
  std::vector<int64_t> ready(buckets.size(), -1);
  for (size_t i = 0; i < program.steps.size(); ++i)
    for (const BufferRef& ref : program.steps[i].args)
      for (size_t b = 0; b < buckets.size(); ++b)
        if (overlaps(ref, buckets[b])) ready[b] = int64_t(i);
  return ready;
}

void runAndReduce(Model& model, Collective& collective, const std::string& programName, int64_t n,
                  const ScalarValues& scalars, uint64_t seed, const ReduceRequest& request) {
  checkBuckets(model, request.buckets);
  RangeReducer reducer(model, collective, request.weight);
  // Overlap needs memory the communication thread may read while the executor runs, and launches that
  // have finished when the executor reports them.
  bool overlap = request.overlap && reducer.inPlace() && model.device().hostAddressable();
  Clock::time_point programDone;
  if (!overlap) {
    model.run(programName, n, scalars, seed);
    programDone = Clock::now();
    for (const GradientBucket& b : request.buckets) reducer.reduce(Space::Grad, b.offset, b.size);
  } else {
    std::vector<int64_t> ready = bucketReadySteps(model.program(programName), request.buckets);
    Progress progress;
    std::exception_ptr commFailure;
    std::thread comm([&] {
      try {
        for (size_t b = 0; b < request.buckets.size(); ++b) {
          {
            std::unique_lock<std::mutex> lock(progress.mutex);
            progress.changed.wait(lock, [&] { return progress.failed || progress.stepsDone > ready[b]; });
            if (progress.failed) return;
          }
          reducer.reduce(Space::Grad, request.buckets[b].offset, request.buckets[b].size);
        }
      } catch (...) {
        commFailure = std::current_exception();
      }
    });
    auto report = [&](int64_t stepsDone) {
      {
        std::lock_guard<std::mutex> lock(progress.mutex);
        progress.stepsDone = stepsDone;
      }
      progress.changed.notify_one();
    };
    try {
      model.run(programName, n, scalars, seed, [&](size_t step) { report(int64_t(step) + 1); });
    } catch (...) {
      {
        std::lock_guard<std::mutex> lock(progress.mutex);
        progress.failed = true;
      }
      progress.changed.notify_one();
      comm.join();
      throw;
    }
    programDone = Clock::now();
    report(INT64_MAX);
    comm.join();
    if (commFailure) std::rethrow_exception(commFailure);
  }
  if (request.state) reducer.reduce(Space::State, 0, model.spaceCapacity(Space::State));
  std::lock_guard<std::mutex> lock(timingMutex);
  lastTiming = {reducer.seconds(), secondsSince(programDone)};
}

ReduceTiming lastReduceTiming() {
  std::lock_guard<std::mutex> lock(timingMutex);
  return lastTiming;
}

}  // namespace nincc
