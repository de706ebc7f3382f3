// The discard of staged batches (Model::discardStaged, docs/design.md#staged-input) as one sequence of
// stages, discards and runs on the fixture's infer program, shared by the cpu test (model_test.cc) and
// the cuda one against the fake driver's streams (cuda_device_test.cc `staged`): a run after a discard
// sets its own input or takes a batch staged after it, never a dropped one.
#pragma once
#include <functional>
#include <vector>

#include "check.h"
#include "model.h"

namespace nincc_test {

// The runs whose output was not their own batch's. `discard` calls model.discardStaged() (a test may look
// at what the device did around it). Batch k holds images of value k + 0.5, all through one host buffer,
// rewritten as soon as a stage returns; the sequence ends with two batches staged, left to the destructor.
inline int wrongRunsAroundDiscards(nincc::Model& model, const std::function<size_t()>& discard) {
  constexpr int64_t n = 2;
  const float bias[4] = {1, 2, 3, 4};
  model.writeSpace("param", 0, 4, bias);
  std::vector<float> images(n * 4);
  auto fill = [&](int k) { images.assign(images.size(), float(k) + 0.5f); };
  auto stage = [&](int k) {
    fill(k);
    model.stageInputs("infer", n, {{"images", images.data(), images.size() * 4}});
    fill(-1);  // the caller may reuse its array once stageInputs returns
  };
  auto set = [&](int k) {
    fill(k);
    model.setInput("infer", "images", n, images.data(), images.size() * 4);
  };
  int wrong = 0;
  auto runExpecting = [&](int k) {
    model.run("infer", n, {{"scale", 2.0}, {"shift", -1.0}}, 1);
    std::vector<float> out(n * 4);
    model.getOutput("infer", "output", n, out.data(), out.size() * 4);
    for (int64_t i = 0; i < n * 4; ++i)
      if (out[size_t(i)] != 2.0f * (float(k) + 0.5f) - 1.0f + bias[i % 4]) return void(++wrong);
  };
  stage(0);
  runExpecting(0);
  stage(1);
  CHECK_EQ(discard(), size_t(1));  // after an odd number of batches: the slots' turn moves on
  CHECK_EQ(discard(), size_t(0));
  set(2);
  runExpecting(2);
  stage(3);
  stage(4);
  runExpecting(3);
  CHECK_EQ(discard(), size_t(1));
  CHECK_EQ(model.stagedBatches(), size_t(0));
  stage(5);
  stage(6);
  runExpecting(5);
  runExpecting(6);
  stage(7);
  stage(8);
  CHECK_EQ(discard(), size_t(2));
  set(9);
  runExpecting(9);
  stage(10);
  runExpecting(10);
  stage(11);
  stage(12);
  return wrong;
}

}  // namespace nincc_test
