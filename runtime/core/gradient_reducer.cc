// runAndReduce: the bucket loop (shared by every path), the communication thread of the overlapped
// host path and the queued path of a cuda arena. The executor reports each launched step; bucket k is
// reduced once the last step that touches it has run (host: a thread waits for it) or been queued
// (cuda: its collective goes on the communication stream behind an event), in bucket order, so that
// every rank makes the same collective calls in the same order whichever path it takes.
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
  // Where a device-memory collective enqueues (the device's communication stream), or null.
  void enqueueOn(void* stream) { stream_ = stream; }

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
      collective_.scaledSum(data, size_t(size), weight_, stream_);
      return;
    }
    staging_.resize(size_t(size));
    model_.device().copyToHost(staging_.data(), data, staging_.size() * 4);
    collective_.scaledSum(staging_.data(), staging_.size(), weight_, nullptr);
    model_.device().copyToDevice(data, staging_.data(), staging_.size() * 4);
  }

  Model& model_;
  Collective& collective_;
  double weight_;
  bool direct_;
  std::vector<float> staging_;
  void* stream_ = nullptr;
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

namespace {

// A cuda arena reduced in place (NCCL): every collective is queued on the device's communication
// stream after an event on the compute stream, so the host never waits. Overlapped, a bucket's
// collective is queued as soon as the launch of its last writer has been, while the rest of backward
// is still queued behind it; otherwise all of them once the program has run. Then the state space, and
// the compute stream (the SGD update after it) waits for the communication stream.
void queueReductions(Model& model, RangeReducer& reducer, const std::string& programName, int64_t n,
                     const ScalarValues& scalars, uint64_t seed, const ReduceRequest& request,
                     Clock::time_point& programDone) {
  Device& device = model.device();
  reducer.enqueueOn(device.commStream());
  std::vector<int64_t> ready = bucketReadySteps(model.program(programName), request.buckets);
  size_t next = 0;
  auto queueReady = [&](int64_t stepsLaunched) {
    if (next >= request.buckets.size() || ready[next] >= stepsLaunched) return;
    device.commWaitsForCompute();
    for (; next < request.buckets.size() && ready[next] < stepsLaunched; ++next)
      reducer.reduce(Space::Grad, request.buckets[next].offset, request.buckets[next].size);
  };
  if (request.overlap)
    model.run(programName, n, scalars, seed, [&](size_t step) { queueReady(int64_t(step) + 1); });
  else
    model.run(programName, n, scalars, seed);
  programDone = Clock::now();
  queueReady(INT64_MAX);
  if (request.state) {
    device.commWaitsForCompute();
    reducer.reduce(Space::State, 0, model.spaceCapacity(Space::State));
  }
  device.computeWaitsForComm();
  device.synchronize();  // a collective's failure surfaces in this step, not the next
}

// A cuda arena reduced by a host-memory collective (MPI), overlapped: right after the launch of a
// bucket's last writer its copy to page-locked host memory is queued on the communication stream
// behind an event, and a mark after it; a communication thread waits for each bucket's mark in bucket
// order, sums the copy, and queues its copy back. After backward the compute stream waits for the
// communication stream; the state space then goes through the host on the compute stream, as after
// backward. The same sums of the same host copies in the same order as RangeReducer's staging, so
// bitwise the same result.
void stageOverlapped(Model& model, Collective& collective, RangeReducer& reducer, const std::string& programName,
                     int64_t n, const ScalarValues& scalars, uint64_t seed, const ReduceRequest& request,
                     Clock::time_point& programDone, double& commSeconds) {
  Device& device = model.device();
  device.commStream();  // made before two threads use it
  const std::vector<GradientBucket>& buckets = request.buckets;
  std::vector<int64_t> ready = bucketReadySteps(model.program(programName), buckets);
  std::vector<float*> staging(buckets.size());
  std::vector<void*> marks(buckets.size(), nullptr);
  size_t stagingFloats = 0;
  for (const GradientBucket& b : buckets) stagingFloats += size_t(b.size);
  float* host = device.hostStaging(stagingFloats);
  for (size_t b = 0, at = 0; b < buckets.size(); at += size_t(buckets[b].size), ++b) staging[b] = host + at;
  float* grad = static_cast<float*>(model.spaceBase(Space::Grad));
  Progress progress;  // stepsDone counts the buckets whose copy to the host is queued
  size_t next = 0;
  auto queueReady = [&](int64_t stepsLaunched) {
    if (next >= buckets.size() || ready[next] >= stepsLaunched) return;
    device.commWaitsForCompute();
    for (; next < buckets.size() && ready[next] < stepsLaunched; ++next) {
      device.commCopyToHost(staging[next], grad + buckets[next].offset, size_t(buckets[next].size) * 4);
      marks[next] = device.commMark();
    }
    {
      std::lock_guard<std::mutex> lock(progress.mutex);
      progress.stepsDone = int64_t(next);
    }
    progress.changed.notify_one();
  };
  std::exception_ptr commFailure;
  std::thread comm([&] {
    try {
      for (size_t b = 0; b < buckets.size(); ++b) {
        {
          std::unique_lock<std::mutex> lock(progress.mutex);
          progress.changed.wait(lock, [&] { return progress.failed || progress.stepsDone > int64_t(b); });
          if (progress.failed) return;
        }
        Clock::time_point started = Clock::now();
        device.hostWaits(marks[b]);  // this bucket's copy has arrived
        marks[b] = nullptr;
        if (buckets[b].size > 0) {
          collective.scaledSum(staging[b], size_t(buckets[b].size), request.weight, nullptr);
          device.commCopyToDevice(grad + buckets[b].offset, staging[b], size_t(buckets[b].size) * 4);
        }
        commSeconds += secondsSince(started);
      }
    } catch (...) {
      commFailure = std::current_exception();
    }
  });
  auto fail = [&] {
    {
      std::lock_guard<std::mutex> lock(progress.mutex);
      progress.failed = true;
    }
    progress.changed.notify_one();
    comm.join();
    for (void* mark : marks)
      if (mark) try {
          device.hostWaits(mark);
        } catch (...) {  // the failure being reported matters more
        }
  };
  try {
    model.run(programName, n, scalars, seed, [&](size_t step) { queueReady(int64_t(step) + 1); });
    programDone = Clock::now();
    queueReady(INT64_MAX);
  } catch (...) {
    fail();
    throw;
  }
  comm.join();
  // The copies back, from the staging memory the next step reuses, are done before it (and the
  // SGD update) starts; marks a failure left unwaited are released.
  device.computeWaitsForComm();
  device.synchronize();
  for (void* mark : marks)
    if (mark) device.hostWaits(mark);
  if (commFailure) std::rethrow_exception(commFailure);
  if (request.state) reducer.reduce(Space::State, 0, model.spaceCapacity(Space::State));
  device.synchronize();
}

}  // namespace

void runAndReduce(Model& model, Collective& collective, const std::string& programName, int64_t n,
                  const ScalarValues& scalars, uint64_t seed, const ReduceRequest& request) {
  checkBuckets(model, request.buckets);
  RangeReducer reducer(model, collective, request.weight);
  if (reducer.inPlace() && model.device().commStream()) {
    Clock::time_point programDone;
    queueReductions(model, reducer, programName, n, scalars, seed, request, programDone);
    std::lock_guard<std::mutex> lock(timingMutex);
    lastTiming = {reducer.seconds(), secondsSince(programDone)};
    return;
  }
  if (!reducer.inPlace() && request.overlap && model.device().commStream()) {
    Clock::time_point programDone;
    double commSeconds = 0;
    stageOverlapped(model, collective, reducer, programName, n, scalars, seed, request, programDone, commSeconds);
    std::lock_guard<std::mutex> lock(timingMutex);
    lastTiming = {commSeconds + reducer.seconds(), secondsSince(programDone)};
    return;
  }
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
