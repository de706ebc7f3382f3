// The cuda device where there is no GPU: `nincc_cuda_device_tests absent` (NINCC_CUDA_DRIVER names a
// library that does not exist), `nodevice` (the fake driver's cuInit fails) and `fake` (the fake driver
// of fake_cuda_driver.cc: module identity and signature checks, memory round trips, launch errors that
// name kernel, place and geometry), and `graphs` (NINCC_CUDA_GRAPHS=1: a program recorded once per batch
// size as a CUDA graph and replayed, only changed nodes updated, against the fake driver's host
// arithmetic), and `staged` (staged input, cuda_input_stage.cc: the copy stream, slots and events, against
// the fake driver's queued streams; with FAKE pinned allocation failing, the pageable fallback; staged
// batches discarded, and freed with the model), and `timing` (per-launch timing for nincc tune, with
// NINCC_CUDA_GRAPHS=1: events around each launch, the fake driver's durations back in launch order, the
// graph left out while timing; the GPU's name).
// ctest runs each mode with its environment (CMakeLists.txt).
#include <dlfcn.h>

#include <algorithm>
#include <cmath>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "cuda_device.h"
#include "device.h"
#include "fixture_artifact.h"
#include "model.h"
#include "staged_discard.h"

using nincc::Model;

namespace nincc_test {
int failures = 0;
}

namespace {

using namespace nincc_test;

std::string cudaArtifact(const std::string& fatbin) {
  std::string plan = replaceOnce(fixturePlanText(), "\"cpu\": \"kernels.cpu.so\"", "\"cuda\": \"kernels.fatbin\"");
  plan = replaceOnce(plan, "\"scalars\": [\"scale\", \"shift\"] },",
                     "\"scalars\": [\"scale\", \"shift\"],\n"
                     "          \"launch\": { \"grid\": [2, 3, 1], \"batchAxis\": 1, \"block\": [64, 1, 1], \"shared\": 128 } },");
  std::string dir = makeArtifactDir(plan, "", false);
  std::ofstream(dir + "/kernels.fatbin", std::ios::binary) << fatbin;
  sealArtifactDir(dir);  // now that the fatbin is there to hash
  return dir;
}

// The fixture's infer program with a launch rule on all three steps, and a module that runs them on the
// fake driver: scale_add (y = scale·x + shift), add_bias (y += bias), nop.
// `shared`: every step's dynamic shared memory, in bytes.
std::string runnableCudaArtifact(const std::string& addBias = "add_bias", const std::string& moreModuleLines = "", unsigned shared = 0) {
  std::string plan = replaceOnce(fixturePlanText(), "\"cpu\": \"kernels.cpu.so\"", "\"cuda\": \"kernels.fatbin\"");
  const std::string rule = "\"launch\": { \"grid\": [1, 1, 1], \"batchAxis\": 0, \"block\": [32, 1, 1], \"shared\": " + std::to_string(shared) + " } }";
  plan = replaceOnce(plan, "\"scalars\": [\"scale\", \"shift\"] },", "\"scalars\": [\"scale\", \"shift\"], " + rule + ",");
  plan = replaceOnce(plan, "{ \"space\": \"param\", \"offset\": 0, \"size\": 4 } ],\n          \"scalars\": [] },",
                     "{ \"space\": \"param\", \"offset\": 0, \"size\": 4 } ],\n          \"scalars\": [], " + rule + ",");
  plan = replaceOnce(plan, "\"dtype\": \"i32\" } ],\n          \"scalars\": [] }\n      ]", "\"dtype\": \"i32\" } ],\n          \"scalars\": [], " + rule + "\n      ]");
  std::string dir = makeArtifactDir(plan, "", false);
  std::ofstream(dir + "/kernels.fatbin", std::ios::binary)
      << "nincc_source_hash=fixture-source-hash-1\n"
         "kernel:k_scale_add=scale_add\nnincc_signature_k_scale_add=ppiff\n"
         "kernel:k_add_bias=" << addBias << "\nnincc_signature_k_add_bias=ppi\n"
         "kernel:k_record=nop\nnincc_signature_k_record=pi\n" << moreModuleLines;
  sealArtifactDir(dir);
  return dir;
}

// How often the fake driver's entry point `name` was called (fake_cuda_driver.cc).
int driverCalls(const char* name);

template <class F>
F fakeDriverSymbol(const char* name) {
  void* driver = dlopen(std::getenv("NINCC_CUDA_DRIVER"), RTLD_NOW | RTLD_NOLOAD);
  auto f = reinterpret_cast<F>(driver ? dlsym(driver, name) : nullptr);
  if (!f) throw std::runtime_error(std::string("the fake driver lacks ") + name);
  return f;
}

// Runs infer on images of 0.5 and checks output = scale·0.5 + shift + bias for every image.
void inferAndCheck(Model& model, int64_t n, double scale, double shift, const float bias[4]) {
  std::vector<float> images(n * 4, 0.5f), out(n * 4, -1.0f);
  model.setInput("infer", "images", n, images.data(), images.size() * 4);
  model.run("infer", n, {{"scale", scale}, {"shift", shift}}, 1);
  model.getOutput("infer", "output", n, out.data(), out.size() * 4);
  bool ok = true;
  for (int64_t i = 0; i < n * 4; ++i) ok = ok && out[i] == static_cast<float>(scale * 0.5 + shift) + bias[i % 4];
  CHECK(ok);
}

// Kernel by kernel (no NINCC_CUDA_GRAPHS): three cuLaunchKernel per call, no graph.
void plainLaunches() {
  std::unique_ptr<Model> model = Model::load(runnableCudaArtifact(), "cuda");
  const float bias[4] = {1, 2, 3, 4};
  model->writeSpace("param", 0, 4, bias);
  const int before = driverCalls("cuLaunchKernel");
  inferAndCheck(*model, 3, 2.0, -1.0, bias);
  CHECK(driverCalls("cuLaunchKernel") == before + 3);
  CHECK(driverCalls("cuGraphCreate") == 0);
}

// Launches with more than 48 KiB of dynamic shared memory (the fake driver refuses them, as the driver does, unless
// the function's limit was raised): the device raises each function's limit once, when it loads the program's steps,
// and not for launches within the default 48 KiB. Kernel by kernel, or as graph nodes (NINCC_CUDA_GRAPHS=1).
void bigSharedLaunches() {
  const float bias[4] = {1, 2, 3, 4};
  const int before = driverCalls("cuFuncSetAttribute");
  std::unique_ptr<Model> small = Model::load(runnableCudaArtifact("add_bias", "", 48 * 1024), "cuda");
  small->writeSpace("param", 0, 4, bias);
  inferAndCheck(*small, 3, 2.0, -1.0, bias);
  CHECK(driverCalls("cuFuncSetAttribute") == before);
  small.reset();
  std::unique_ptr<Model> big = Model::load(runnableCudaArtifact("add_bias", "", 100 * 1024), "cuda");
  big->writeSpace("param", 0, 4, bias);
  inferAndCheck(*big, 3, 2.0, -1.0, bias);
  inferAndCheck(*big, 2, 4.0, 0.25, bias);
  CHECK(driverCalls("cuFuncSetAttribute") == before + 3);  // three kernels, each once
}

void graphs() {
  std::unique_ptr<Model> model = Model::load(runnableCudaArtifact(), "cuda");
  const float bias[4] = {1, 2, 3, 4};
  model->writeSpace("param", 0, 4, bias);
  // First call at batch 3: the graph is built (three nodes, chained) and launched once.
  inferAndCheck(*model, 3, 2.0, -1.0, bias);
  CHECK(driverCalls("cuGraphCreate") == 1);
  CHECK(driverCalls("cuGraphAddKernelNode_v2") == 3);
  CHECK(driverCalls("cuGraphLaunch") == 1);
  CHECK(driverCalls("cuLaunchKernel") == 0);
  // The same call again: replayed as it is.
  inferAndCheck(*model, 3, 2.0, -1.0, bias);
  CHECK(driverCalls("cuGraphCreate") == 1);
  CHECK(driverCalls("cuGraphExecKernelNodeSetParams_v2") == 0);
  CHECK(driverCalls("cuGraphLaunch") == 2);
  // New scalars: only the node that takes them is updated, and the result follows them.
  inferAndCheck(*model, 3, 4.0, 0.25, bias);
  CHECK(driverCalls("cuGraphExecKernelNodeSetParams_v2") == 1);
  CHECK(driverCalls("cuGraphLaunch") == 3);
  // Another batch size is another graph; the first is still there for batch 3.
  inferAndCheck(*model, 2, 4.0, 0.25, bias);
  CHECK(driverCalls("cuGraphCreate") == 2);
  inferAndCheck(*model, 3, 4.0, 0.25, bias);
  CHECK(driverCalls("cuGraphCreate") == 2);
  CHECK(driverCalls("cuGraphExecKernelNodeSetParams_v2") == 1);
  CHECK(driverCalls("cuLaunchKernel") == 0);
  model.reset();
  CHECK(driverCalls("cuGraphExecDestroy") == 2 && driverCalls("cuGraphDestroy") == 2);
  bigSharedLaunches();
  CHECK(driverCalls("cuGraphAddKernelNode_v2") == 15 && driverCalls("cuLaunchKernel") == 0);  // three more graphs of three

  // A kernel that faults inside the graph: the launch names the program and its size.
  std::unique_ptr<Model> faulting = Model::load(runnableCudaArtifact(""), "cuda");
  std::vector<float> images(4, 0.5f);
  faulting->setInput("infer", "images", 1, images.data(), images.size() * 4);
  CHECK_THROWS_WITH(faulting->run("infer", 1, {{"scale", 2.0}, {"shift", -1.0}}, 1),
                    "cuda: cuGraphLaunch of infer at batch 1 (3 kernels) failed: CUDA_ERROR_LAUNCH_FAILED");
  faulting.reset();
  std::unique_ptr<Model> unlaunchable = Model::load(cudaArtifact("nincc_source_hash=fixture-source-hash-1\nkernel:k_scale_add=\nnincc_signature_k_scale_add=ppiff\n"), "cuda");
  unlaunchable->setInput("infer", "images", 1, images.data(), images.size() * 4);
  // The fixture's other steps have no launch rule here: building the graph stops at the first of them.
  CHECK_THROWS_WITH(unlaunchable->run("infer", 1, {{"scale", 2.0}, {"shift", -1.0}}, 1),
                    "kernel k_add_bias (layer 1 at fixture.model:3:3): not yet supported on cuda");
}

// How often the fake driver's entry point `name` was called (fake_cuda_driver.cc).
int driverCalls(const char* name) { return fakeDriverSymbol<int (*)(const char*)>("fake_cuda_count")(name); }

// Staged input. Batch k holds images of value k + 0.5; run k must see batch k, whatever the streams'
// order. `ahead` batches are staged before run 0, and each run stages the next from inside its first
// step (after that step's launch, before the run's synchronize): ahead 1 is the trainer's pattern (batch
// k+1 copied during step k); ahead 2 also refills the slot step k reads from while step k is queued.
std::vector<std::string> stagedRuns(Model& model, int schedule, int ahead, bool& allRight) {
  constexpr int64_t n = 3;
  constexpr int batches = 5;
  const float bias[4] = {1, 2, 3, 4};
  model.writeSpace("param", 0, 4, bias);
  auto stage = [&](int k) {
    const std::vector<float> images(n * 4, float(k) + 0.5f);
    model.stageInputs("infer", n, {{"images", images.data(), images.size() * 4}});
  };
  fakeDriverSymbol<void (*)(int)>("fake_cuda_set_schedule")(schedule);
  fakeDriverSymbol<void (*)()>("fake_cuda_clear_executed")();
  int staged = 0;
  while (staged < ahead) stage(staged++);
  allRight = true;
  for (int k = 0; k < batches; ++k) {
    model.run("infer", n, {{"scale", 2.0}, {"shift", -1.0}}, 1, [&](size_t step) {
      if (step == 0 && staged < batches) stage(staged++);
    });
    std::vector<float> out(n * 4);
    model.getOutput("infer", "output", n, out.data(), out.size() * 4);
    for (int64_t i = 0; i < n * 4; ++i) allRight = allRight && out[i] == 2.0f * (float(k) + 0.5f) - 1.0f + bias[i % 4];
  }
  fakeDriverSymbol<void (*)(int)>("fake_cuda_set_schedule")(0);
  auto issued = fakeDriverSymbol<const char* (*)(int)>("fake_cuda_issued");
  std::vector<std::string> log;
  for (int i = 0; issued(i); ++i) log.push_back(issued(i));
  return log;
}

// The protocol, in the order the host issued it (fake_cuda_issued: "<op> s<stream> [e<event>]"). Batch j's
// copy: host→device copies on the copy stream right after it waits for the compute stream's read of
// batch j-2 from the same slot. Batch j's take: device→device copies on the compute stream right after
// it waits for batch j's copy. And in each run but the last, the next batch's copy is issued after the
// run's first launch and before its synchronize.
void checkProtocol(const std::vector<std::string>& log, int ahead) {
  auto word = [](const std::string& entry, int i) {
    std::vector<std::string> words;
    for (size_t at = 0, end; at <= entry.size(); at = end + 1) {
      end = std::min(entry.find(' ', at), entry.size());
      words.push_back(entry.substr(at, end - at));
    }
    return size_t(i) < words.size() ? words[size_t(i)] : std::string();
  };
  std::string compute, copy;
  for (const std::string& entry : log) {
    if (word(entry, 0) == "launch" && compute.empty()) compute = word(entry, 1);
    if (word(entry, 0) == "htod" && copy.empty()) copy = word(entry, 1);
  }
  CHECK(!compute.empty() && !copy.empty() && compute != copy);
  std::vector<std::string> copied, read;  // the events recorded after each batch's copy, and after each take
  size_t copies = 0, takes = 0;
  int runsCopyingTheNext = 0;
  bool launched = false, copiedDuringRun = false;
  std::string previous;
  for (const std::string& entry : log) {
    const std::string op = word(entry, 0), stream = word(entry, 1);
    if (op == "record") (stream == copy ? copied : read).push_back(word(entry, 2));
    if (op == "htod" && word(previous, 0) != "htod") {  // the first copy of batch `copies`
      CHECK_STR_EQ(stream, copy);
      CHECK(word(previous, 0) == "wait" && word(previous, 1) == copy);
      if (copies >= 2) CHECK(takes >= copies - 1 && word(previous, 2) == read[copies - 2]);
      ++copies;
      copiedDuringRun = copiedDuringRun || launched;
    }
    if (op == "dtod" && word(previous, 0) != "dtod") {  // the take of batch `takes`
      CHECK_STR_EQ(stream, compute);
      CHECK(previous == "wait " + compute + " " + (takes < copied.size() ? copied[takes] : std::string("?")));
      ++takes;
    }
    if (op == "launch") launched = true;
    if (op == "sync" && stream == compute && launched) {
      runsCopyingTheNext += copiedDuringRun;
      launched = copiedDuringRun = false;
    }
    previous = entry;
  }
  CHECK_EQ(takes, size_t(5));
  CHECK_EQ(runsCopyingTheNext, 5 - ahead);  // the runs that stage a batch: all but the last `ahead`
}

// Staged batches dropped (Model::discardStaged) under each stream schedule: later runs see their own batch,
// each discard waits for the copy of each batch it drops and issues nothing else, and a model destroyed with
// two batches staged frees its page-locked slots.
void stagedDiscard() {
  auto issued = fakeDriverSymbol<const char* (*)(int)>("fake_cuda_issued");
  auto pinnedBlocks = fakeDriverSymbol<int (*)()>("fake_cuda_pinned_blocks");
  const int pinnedBefore = pinnedBlocks();
  for (int schedule : {0, 1, 2}) {
    std::unique_ptr<Model> model = Model::load(runnableCudaArtifact(), "cuda");
    fakeDriverSymbol<void (*)(int)>("fake_cuda_set_schedule")(schedule);
    int discardsChecked = 0;
    const int wrong = wrongRunsAroundDiscards(*model, [&] {
      fakeDriverSymbol<void (*)()>("fake_cuda_clear_executed")();
      const size_t dropped = model->discardStaged();
      size_t waits = 0, others = 0;
      for (int i = 0; issued(i); ++i) (std::string(issued(i)).rfind("eventsync ", 0) == 0 ? waits : others)++;
      CHECK_EQ(waits, dropped);
      CHECK_EQ(others, size_t(0));
      ++discardsChecked;
      return dropped;
    });
    std::printf("staged input discarded, schedule %d: %d wrong run(s)\n", schedule, wrong);
    CHECK_EQ(wrong, 0);
    CHECK_EQ(discardsChecked, 4);
    CHECK(pinnedBlocks() > pinnedBefore);
    model.reset();
    CHECK_EQ(pinnedBlocks(), pinnedBefore);
    fakeDriverSymbol<void (*)(int)>("fake_cuda_set_schedule")(0);
  }
}

void staged() {
  for (int ahead : {1, 2})
    for (int schedule : {0, 1, 2}) {
      std::unique_ptr<Model> model = Model::load(runnableCudaArtifact(), "cuda");
      bool allRight = false;
      const std::vector<std::string> log = stagedRuns(*model, schedule, ahead, allRight);
      std::printf("staged input, %d ahead, schedule %d: %s\n", ahead, schedule, allRight ? "each run saw its batch" : "WRONG BATCH");
      CHECK(allRight);
      checkProtocol(log, ahead);
    }
  // Refused: a third batch before a run takes the first; a run of another batch size than the staged one.
  std::unique_ptr<Model> model = Model::load(runnableCudaArtifact(), "cuda");
  const std::vector<float> images(8, 0.5f);
  model->stageInputs("infer", 2, {{"images", images.data(), 32}});
  model->stageInputs("infer", 2, {{"images", images.data(), 32}});
  CHECK_THROWS_WITH(model->stageInputs("infer", 2, {{"images", images.data(), 32}}),
                    "stageInputs(\"infer\"): 2 batches are staged and not yet run; run one first");
  CHECK_THROWS_WITH(model->run("infer", 1, {{"scale", 2.0}, {"shift", -1.0}}, 1),
                    "run(\"infer\", 1): the batch staged for it holds 2 image(s)");
  CHECK_THROWS_WITH(model->stageInputs("infer", 2, {{"images", images.data(), 28}}),
                    "input \"images\" of program \"infer\" for 2 image(s) is 32 bytes");
  CHECK_THROWS_WITH(model->stageInputs("infer", 2, {{"labels", images.data(), 32}}), "program \"infer\" has no input \"labels\"");
  const int pinnedBefore = driverCalls("cuMemAllocHost_v2");
  model.reset();

  // Page-locked memory refused: one try, one warning, then pageable copies with the same results.
  fakeDriverSymbol<void (*)(int)>("fake_cuda_fail_host_alloc")(1);
  std::unique_ptr<Model> pageable = Model::load(runnableCudaArtifact(), "cuda");
  bool allRight = false;
  for (int schedule : {0, 1, 2}) {
    stagedRuns(*pageable, schedule, 2, allRight);
    CHECK(allRight);
  }
  CHECK_EQ(driverCalls("cuMemAllocHost_v2"), pinnedBefore + 1);
  fakeDriverSymbol<void (*)(int)>("fake_cuda_fail_host_alloc")(0);
  pageable.reset();
  stagedDiscard();
}

void absent() {
  CHECK(nincc::cudaUnavailableReason().find("/nonexistent/libcuda.so.1 did not load") == 0);
  std::vector<std::string> devices = nincc::availableDevices();
  CHECK(devices == std::vector<std::string>({"cpu", "emu"}));
  CHECK_THROWS_WITH(nincc::createDevice("cuda"),
                    "device \"cuda\" is not available on this machine: /nonexistent/libcuda.so.1 did not load (");
  CHECK_THROWS_WITH(Model::load(makeArtifactDir(fixturePlanText(), fixtureLibrary()), "cuda"), "(available: cpu, emu)");
}

void noDevice() {
  CHECK_THROWS_WITH(nincc::createDevice("cuda"),
                    "device \"cuda\" is not available on this machine: cuInit failed: CUDA_ERROR_NO_DEVICE (no "
                    "CUDA-capable device is detected) (available: cpu, emu)");
}

void fake() {
  CHECK(nincc::cudaUnavailableReason().empty());
  CHECK(nincc::availableDevices().back() == "cuda");
  const std::string good = "nincc_source_hash=fixture-source-hash-1\nkernel:k_scale_add=\nnincc_signature_k_scale_add=ppiff\n";

  std::unique_ptr<Model> model = Model::load(cudaArtifact(good), "cuda");
  const float bias[4] = {1, 2, 3, 4};
  float back[4] = {};
  model->writeSpace("param", 0, 4, bias);
  model->readSpace("param", 0, 4, back);
  CHECK(std::memcmp(bias, back, sizeof bias) == 0);
  model->readSpace("grad", 4, 4, back);  // zero-filled by alloc
  CHECK(back[0] == 0 && back[3] == 0);
  std::vector<float> images(12, 0.5f);
  model->setInput("infer", "images", 3, images.data(), images.size() * 4);
  // The signature check passed and the geometry is the rule's for n = 3 (grid y times 3).
  CHECK_THROWS_WITH(model->run("infer", 3, {{"scale", 2.0}, {"shift", -1.0}}, 1),
                    "cuda: cuLaunchKernel of kernel k_scale_add (layer 1 at fixture.model:3:3) with grid (2,9,1), "
                    "block (64,1,1), 128 B dynamic shared failed: CUDA_ERROR_LAUNCH_FAILED (unspecified launch "
                    "failure) [cuda_device.cc:");
  model.reset();

  std::unique_ptr<Model> wrongSignature =
      Model::load(cudaArtifact("nincc_source_hash=fixture-source-hash-1\nkernel:k_scale_add=\nnincc_signature_k_scale_add=pppiff\n"), "cuda");
  CHECK_THROWS_WITH(wrongSignature->run("infer", 1, {{"scale", 2.0}, {"shift", -1.0}}, 1),
                    "kernel k_scale_add (layer 1 at fixture.model:3:3) on cuda: the kernel's signature \"pppiff\" does "
                    "not match the step's 2 buffers, n and 2 scalars");
  wrongSignature.reset();

  CHECK_THROWS_WITH(Model::load(cudaArtifact("nincc_source_hash=other\n"), "cuda"),
                    "/kernels.fatbin: source hash \"other\" does not match plan.json's sourceHash \"fixture-source-hash-1\"");
  CHECK_THROWS_WITH(Model::load(cudaArtifact("kernel:k_scale_add=\n"), "cuda"),
                    "/kernels.fatbin: cuModuleGetGlobal(nincc_source_hash) failed: CUDA_ERROR_NOT_FOUND (named symbol not found)");
  CHECK_THROWS_WITH(Model::load(cudaArtifact("nincc_source_hash=fixture-source-hash-1\nkernel:k_scale_add=\n"), "cuda"),
                    "cuModuleGetGlobal(nincc_signature_k_scale_add) failed: CUDA_ERROR_NOT_FOUND");
  plainLaunches();
  bigSharedLaunches();
}

// FAKE_CUDA_MICROS gives k_scale_add 3 µs by name, k_add_bias 7 µs by its text's hash, the rest 1 µs.
void timing() {
  setenv("FAKE_CUDA_MICROS", "k_scale_add=3,0123abcd=7,*=1", 1);
  setenv("FAKE_CUDA_NAME", "Fake H100 80GB", 1);
  std::unique_ptr<Model> model = Model::load(runnableCudaArtifact("add_bias", "hash:k_add_bias=0123abcd\n"), "cuda");
  CHECK(model->device().hardwareName() == "Fake H100 80GB");
  CHECK(nincc::chosenGpuName() == "Fake H100 80GB");
  const float bias[4] = {1, 2, 3, 4};
  model->writeSpace("param", 0, 4, bias);
  CHECK(model->device().timeLaunches(true));
  inferAndCheck(*model, 2, 2.0, -1.0, bias);
  inferAndCheck(*model, 2, 2.0, -1.0, bias);
  // Timed launches go one by one, though NINCC_CUDA_GRAPHS=1.
  CHECK(driverCalls("cuGraphLaunch") == 0 && driverCalls("cuLaunchKernel") == 6);
  const std::vector<nincc::LaunchTime> times = model->device().takeLaunchTimes();
  const char* kernels[3] = {"k_scale_add", "k_add_bias", "k_record"};
  const double micros[3] = {3, 7, 1};
  CHECK(times.size() == 6);
  for (size_t i = 0; i < times.size() && i < 6; ++i) {
    CHECK(times[i].kernel == kernels[i % 3]);
    CHECK(std::abs(times[i].micros - micros[i % 3]) < 1e-3);
  }
  CHECK(model->device().takeLaunchTimes().empty());  // taken once
  model->device().timeLaunches(false);
  inferAndCheck(*model, 2, 2.0, -1.0, bias);
  CHECK(driverCalls("cuGraphLaunch") == 1);
  CHECK(model->device().takeLaunchTimes().empty());
  // One elapsed-time read per timed launch, none for the untimed call.
  CHECK(driverCalls("cuEventElapsedTime") == 6);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "absent") absent();
    else if (mode == "nodevice") noDevice();
    else if (mode == "fake") fake();
    else if (mode == "graphs") graphs();
    else if (mode == "staged") staged();
    else if (mode == "timing") timing();
    else {
      std::fprintf(stderr, "usage: nincc_cuda_device_tests absent|nodevice|fake|graphs|staged|timing\n");
      return 2;
    }
  } catch (const std::exception& e) {
    ++nincc_test::failures;
    std::fprintf(stderr, "%s: unexpected exception: %s\n", mode.c_str(), e.what());
  }
  nincc_test::removeFixtureDirs();
  std::printf("cuda device (%s): %s\n", mode.c_str(), nincc_test::failures ? "FAILED" : "ok");
  return nincc_test::failures ? 1 : 0;
}
