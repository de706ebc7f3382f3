// Tests of the gradient reducer's host side with a recording Collective standing in for MPI and NCCL:
// which step makes each bucket final, the order and contents of the collective calls with and
// without overlap, and the refusal of a device-memory backend for a host-memory arena.
#include <cstdint>
#include <string>
#include <vector>

#include "check.h"
#include "fixture_artifact.h"
#include "gradient_reducer.h"
#include "model.h"

using namespace nincc;
using namespace nincc_test;

namespace {

// Records each call (where in which space, how many, with what weight) and sums as two ranks holding
// the same values would: data ← 2 × weight × data.
class RecordingCollective final : public Collective {
 public:
  RecordingCollective(const Model& model, bool deviceMemory) : model_(model), deviceMemory_(deviceMemory) {}
  std::string name() const override { return deviceMemory_ ? "NCCL stand-in" : "MPI stand-in"; }
  bool takesDeviceMemory() const override { return deviceMemory_; }
  void scaledSum(float* data, size_t count, double weight, void*) override {
    const char* space = data >= static_cast<float*>(model_.spaceBase(Space::State)) &&
                                data < static_cast<float*>(model_.spaceBase(Space::State)) + model_.spaceCapacity(Space::State)
                            ? "state"
                            : "grad";
    const float* base = static_cast<const float*>(model_.spaceBase(std::string(space) == "state" ? Space::State : Space::Grad));
    calls.push_back(std::string(space) + "@" + std::to_string(data - base) + "+" + std::to_string(count) + "×" + std::to_string(weight));
    for (size_t i = 0; i < count; ++i) data[i] = float(2 * weight * double(data[i]));
  }
  std::vector<std::string> calls;

 private:
  const Model& model_;
  bool deviceMemory_;
};

BufferRef grad(int64_t offset, int64_t size) {
  BufferRef r;
  r.space = Space::Grad;
  r.offset = offset;
  r.size = size;
  return r;
}

void findsTheStepThatFinishesEachBucket() {
  Program p;
  p.steps.resize(4);
  BufferRef param;
  param.space = Space::Param;
  param.offset = 0;
  param.size = 100;
  p.steps[0].args = {grad(0, 4)};
  p.steps[1].args = {param};   // the same offsets in another space: not a gradient
  p.steps[2].args = {grad(4, 4)};
  p.steps[3].args = {grad(2, 1)};  // the last step touching [0, 4)
  std::vector<GradientBucket> buckets = {{6, 2}, {0, 4}, {8, 2}};
  std::vector<int64_t> ready = bucketReadySteps(p, buckets);
  CHECK(ready == std::vector<int64_t>({2, 3, -1}));
}

void reducesBucketsInOrderWithOrWithoutOverlap() {
  for (bool overlap : {true, false}) {
    std::unique_ptr<Model> model = Model::load(makeArtifactDir(fixturePlanText(), fixtureLibrary()), "cpu");
    std::vector<float> grads = {1, 2, 3, 4, 5, 6, 7, 8}, state = {10, 20};
    model->writeSpace("grad", 0, 8, grads.data());
    model->writeSpace("state", 0, 2, state.data());
    RecordingCollective mpi(*model, false);
    ReduceRequest request;
    request.buckets = {{4, 4}, {0, 4}};
    request.weight = 0.25;
    request.overlap = overlap;
    runAndReduce(*model, mpi, "sgd_update", 1, {{"lr", 0.0}}, 0, request);
    CHECK(mpi.calls == std::vector<std::string>({"grad@4+4×0.250000", "grad@0+4×0.250000", "state@0+2×0.250000"}));
    std::vector<float> after(10);
    model->readSpace("grad", 0, 8, after.data());
    model->readSpace("state", 0, 2, after.data() + 8);
    CHECK(after == std::vector<float>({0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f, 4, 5, 10}));
  }
}

void refusesDeviceMemoryBackendsForHostArenas() {
  std::unique_ptr<Model> model = Model::load(makeArtifactDir(fixturePlanText(), fixtureLibrary()), "cpu");
  RecordingCollective nccl(*model, true);
  ReduceRequest request;
  request.buckets = {{0, 8}};
  CHECK_THROWS_WITH(runAndReduce(*model, nccl, "sgd_update", 1, {{"lr", 0.0}}, 0, request),
                    "NCCL stand-in reduces device memory, and a cpu model's arena is host memory: reduce it with MPI");
  request.buckets = {{4, 8}};
  RecordingCollective mpi(*model, false);
  CHECK_THROWS_WITH(runAndReduce(*model, mpi, "sgd_update", 1, {{"lr", 0.0}}, 0, request),
                    "gradient bucket [4, 12) lies outside the grad space of 8 elements");
  CHECK(mpi.calls.empty());
}

}  // namespace

void runGradientReducerTests() {
  findsTheStepThatFinishesEachBucket();
  reducesBucketsInOrderWithOrWithoutOverlap();
  refusesDeviceMemoryBackendsForHostArenas();
}
