// Tests of loading the fixture artifact and running its programs: several batch sizes, the act
// offset*N rule, scalars, seeds, i32 buffers, the copies in and out of the arena, and staged batches dropped.
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"
#include "device.h"
#include "error.h"
#include "fixture_artifact.h"
#include "model.h"
#include "staged_discard.h"

using nincc::Model;
using namespace nincc_test;

namespace {

std::unique_ptr<Model> loadFixture() {
  return Model::load(makeArtifactDir(fixturePlanText(), fixtureLibrary()), "cpu");
}

void describesTheArtifact() {
  std::unique_ptr<Model> model = loadFixture();
  CHECK_STR_EQ(model->deviceName(), "cpu");
  CHECK_EQ(model->maxBatch(), int64_t(8));
  CHECK_EQ(model->classes(), int64_t(4));
  CHECK(model->inputShape() == std::vector<int64_t>({1, 2, 2}));
  CHECK(model->outputShape() == std::vector<int64_t>({4}));
  CHECK_EQ(model->params().size(), size_t(2));
  CHECK_STR_EQ(model->params()[1].name, "affine.weight");
  CHECK_EQ(model->params()[1].offset, int64_t(4));
  CHECK_STR_EQ(model->params()[1].init.kind, "uniform");
  CHECK_EQ(model->params()[1].init.bound, 0.5);
  CHECK_EQ(model->state().size(), size_t(1));
  CHECK_STR_EQ(model->state()[0].torchField, "running_mean");
  std::vector<std::string> devices = nincc::availableDevices();
  CHECK(!devices.empty() && devices[0] == "cpu");
}

void runsInferForSeveralBatchSizes() {
  std::unique_ptr<Model> model = loadFixture();
  const float bias[4] = {1, 2, 3, 4};
  model->writeSpace("param", 0, 4, bias);
  for (int n : {1, 3, 8}) {
    std::vector<float> images(size_t(n) * 4), output(size_t(n) * 4), act(size_t(n) * 4);
    for (size_t i = 0; i < images.size(); ++i) images[i] = 0.5f * float(i) - float(n);
    model->setInput("infer", "images", n, images.data(), images.size() * 4);
    model->run("infer", n, {{"scale", 2.0}, {"shift", -1.0}}, 0x1234567800000009ull);
    model->getOutput("infer", "output", n, output.data(), output.size() * 4);
    int wrong = 0;
    for (size_t i = 0; i < output.size(); ++i)
      if (output[i] != 2.0f * images[i] - 1.0f + bias[i % 4]) ++wrong;
    CHECK_EQ(wrong, 0);

    // The output REF has per-image offset 4: for n images it starts at element 4*n of act.
    model->readSpace("act", 4 * n, 4 * n, act.data());
    CHECK(std::memcmp(act.data(), output.data(), output.size() * 4) == 0);
    model->readSpace("act", 0, 4 * n, act.data());
    CHECK(std::memcmp(act.data(), images.data(), images.size() * 4) == 0);

    int32_t record[4];
    model->getOutput("infer", "record", n, record, sizeof record);
    CHECK_EQ(record[0], n);
    CHECK_EQ(record[1], 9);
    CHECK_EQ(record[2], 0x12345678);
  }
  int32_t record[4];
  model->getOutput("infer", "record", 1, record, sizeof record);
  CHECK_EQ(record[3], 3);  // the fixed space persists across calls
}

void runsI32Buffers() {
  std::unique_ptr<Model> model = loadFixture();
  const int32_t labels[5] = {0, 1, 2, 3, -1};
  model->setInput("next_label", "labels", 5, labels, sizeof labels);
  model->run("next_label", 5, {}, 0);
  int32_t out[5];
  model->getOutput("next_label", "labels", 5, out, sizeof out);
  for (int i = 0; i < 5; ++i) CHECK_EQ(out[i], labels[i] + 1);
  CHECK(model->inputRef("next_label", "labels").dtype == nincc::DType::I32);
}

void runsSgdWithScalars() {
  std::unique_ptr<Model> model = loadFixture();
  float params[8], grads[8], after[8];
  for (int i = 0; i < 8; ++i) {
    params[i] = float(i);
    grads[i] = float(10 * i);
  }
  model->writeSpace("param", 0, 8, params);
  model->writeSpace("grad", 0, 8, grads);
  CHECK_THROWS_EXACTLY(model->run("sgd_update", 1, {}, 0),
                       "program \"sgd_update\" step 0 (kernel k_sgd, layer 1 at fixture.model:3:3) "
                       "needs scalar \"lr\", which the call did not pass");
  CHECK_THROWS_WITH(model->run("sgd_update", 1, {{"lrr", 0.1}}, 0),
                    "unknown scalar \"lrr\" passed to run(\"sgd_update\") (known: first, lr, momentum, "
                    "scale, shift, training, wd)");
  model->readSpace("param", 0, 8, after);
  CHECK(std::memcmp(after, params, sizeof params) == 0);  // a refused run launches nothing
  // Scalars for other programs' steps (here "training") are accepted and ignored.
  model->run("sgd_update", 1, {{"lr", 0.5}, {"training", 1.0}}, 0);
  model->readSpace("param", 0, 8, after);
  int wrong = 0;
  for (int i = 0; i < 8; ++i)
    if (after[i] != params[i] - 0.5f * grads[i]) ++wrong;
  CHECK_EQ(wrong, 0);
}

void refusesBadCalls() {
  std::unique_ptr<Model> model = loadFixture();
  const std::string& file = model->plan().file;
  nincc::ScalarValues scalars = {{"scale", 1.0}, {"shift", 0.0}};
  CHECK_THROWS_EXACTLY(model->run("infer", 0, scalars, 0),
                       "batch size 0 is out of range: this artifact runs 1..8 images per call "
                       "(maxBatch in " + file + ")");
  CHECK_THROWS_WITH(model->run("infer", 9, scalars, 0), "batch size 9 is out of range");
  CHECK_THROWS_EXACTLY(model->run("train", 1, scalars, 0),
                       "unknown program \"train\": " + file + " has infer, next_label, sgd_update");
  float buffer[64] = {};
  CHECK_THROWS_EXACTLY(model->setInput("infer", "images", 2, buffer, 4 * 4),
                       "input \"images\" of program \"infer\" for 2 image(s) is 32 bytes (8 f32), not 16");
  CHECK_THROWS_EXACTLY(model->setInput("infer", "labels", 1, buffer, 4),
                       "program \"infer\" has no input \"labels\" (its inputs: images)");
  CHECK_THROWS_WITH(model->getOutput("infer", "output", 9, buffer, 9 * 16), "batch size 9 is out of range");
  CHECK_THROWS_EXACTLY(model->readSpace("param", 6, 4, buffer),
                       "range [6, 10) lies outside the param space of 8 elements");
  CHECK_THROWS_WITH(model->readSpace("act", 0, 8 * 9 + 1, buffer), "outside the act space of 72 elements");
  CHECK_THROWS_WITH(model->writeSpace("params", 0, 1, buffer), "unknown space \"params\"");
  CHECK_THROWS_WITH(model->readSpace("param", -1, 1, buffer), "outside the param space");
}

// A run that fails after a step that takes tickets (here k_record's call counter, listed as plan.json `tickets`)
// leaves them as that step left them; the next run zeroes them first (docs/artifact.md#tickets). A plan without
// `tickets` keeps its fixed space across the failure.
int32_t callsAfterAFailedRun(bool listTickets) {
  const std::string plan = listTickets ? replaceOnce(fixturePlanText(), "\"programs\": {",
                                                     "\"tickets\": [ { \"space\": \"fixed\", \"offset\": 0, \"size\": 4 } ],\n  \"programs\": {")
                                       : fixturePlanText();
  std::unique_ptr<Model> model = Model::load(makeArtifactDir(plan, fixtureLibrary()), "cpu");
  const nincc::ScalarValues scalars = {{"scale", 1.0}, {"shift", 0.0}};
  model->run("infer", 1, scalars, 0);
  CHECK_THROWS_EXACTLY(model->run("infer", 1, scalars, 0, [](size_t step) {
    if (step == 2) throw nincc::Error("cut short after k_record");
  }), "cut short after k_record");
  int32_t record[4];
  model->getOutput("infer", "record", 1, record, sizeof record);
  CHECK_EQ(record[3], 2);  // the failed run's count stays until the next run
  model->run("infer", 1, scalars, 0);
  model->getOutput("infer", "record", 1, record, sizeof record);
  return record[3];
}

void zeroesTicketsAfterAFailedRun() {
  CHECK_EQ(callsAfterAFailedRun(true), 1);
  CHECK_EQ(callsAfterAFailedRun(false), 3);
}

// cpu keeps a staged batch on the host: a discarded one is never copied into the arena.
void discardsStagedBatches() {
  std::unique_ptr<Model> model = loadFixture();
  CHECK_EQ(wrongRunsAroundDiscards(*model, [&] { return model->discardStaged(); }), 0);
}

}  // namespace

void runModelTests() {
  describesTheArtifact();
  runsInferForSeveralBatchSizes();
  runsI32Buffers();
  runsSgdWithScalars();
  refusesBadCalls();
  discardsStagedBatches();
  zeroesTicketsAfterAFailedRun();
}
