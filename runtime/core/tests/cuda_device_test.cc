// The cuda device where there is no GPU: `nincc_cuda_device_tests absent` (NINCC_CUDA_DRIVER names a
// library that does not exist), `nodevice` (the fake driver's cuInit fails) and `fake` (the fake driver
// of fake_cuda_driver.cc: module identity and signature checks, memory round trips, launch errors that
// name kernel, place and geometry), and `graphs` (NINCC_CUDA_GRAPHS=1: a program recorded once per batch
// size as a CUDA graph and replayed, only changed nodes updated, against the fake driver's host
// arithmetic). ctest runs each mode with its environment (CMakeLists.txt).
#include <dlfcn.h>

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
std::string runnableCudaArtifact(const std::string& addBias = "add_bias") {
  std::string plan = replaceOnce(fixturePlanText(), "\"cpu\": \"kernels.cpu.so\"", "\"cuda\": \"kernels.fatbin\"");
  const std::string rule = "\"launch\": { \"grid\": [1, 1, 1], \"batchAxis\": 0, \"block\": [32, 1, 1], \"shared\": 0 } }";
  plan = replaceOnce(plan, "\"scalars\": [\"scale\", \"shift\"] },", "\"scalars\": [\"scale\", \"shift\"], " + rule + ",");
  plan = replaceOnce(plan, "{ \"space\": \"param\", \"offset\": 0, \"size\": 4 } ],\n          \"scalars\": [] },",
                     "{ \"space\": \"param\", \"offset\": 0, \"size\": 4 } ],\n          \"scalars\": [], " + rule + ",");
  plan = replaceOnce(plan, "\"dtype\": \"i32\" } ],\n          \"scalars\": [] }\n      ]", "\"dtype\": \"i32\" } ],\n          \"scalars\": [], " + rule + "\n      ]");
  std::string dir = makeArtifactDir(plan, "", false);
  std::ofstream(dir + "/kernels.fatbin", std::ios::binary)
      << "nincc_source_hash=fixture-source-hash-1\n"
         "kernel:k_scale_add=scale_add\nnincc_signature_k_scale_add=ppiff\n"
         "kernel:k_add_bias=" << addBias << "\nnincc_signature_k_add_bias=ppi\n"
         "kernel:k_record=nop\nnincc_signature_k_record=pi\n";
  sealArtifactDir(dir);
  return dir;
}

// How often the fake driver's entry point `name` was called (fake_cuda_driver.cc).
int driverCalls(const char* name) {
  void* driver = dlopen(std::getenv("NINCC_CUDA_DRIVER"), RTLD_NOW | RTLD_NOLOAD);
  auto count = reinterpret_cast<int (*)(const char*)>(driver ? dlsym(driver, "fake_cuda_count") : nullptr);
  if (!count) throw std::runtime_error("the fake driver is not loaded");
  return count(name);
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
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "absent") absent();
    else if (mode == "nodevice") noDevice();
    else if (mode == "fake") fake();
    else if (mode == "graphs") graphs();
    else {
      std::fprintf(stderr, "usage: nincc_cuda_device_tests absent|nodevice|fake|graphs\n");
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
