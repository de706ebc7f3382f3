// The cuda device where there is no GPU: `nincc_cuda_device_tests absent` (NINCC_CUDA_DRIVER names a
// library that does not exist), `nodevice` (the fake driver's cuInit fails) and `fake` (the fake driver
// of fake_cuda_driver.cc: module identity and signature checks, memory round trips, launch errors that
// name kernel, place and geometry). ctest runs each mode with its environment (CMakeLists.txt).
#include <cstdio>
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
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "absent") absent();
    else if (mode == "nodevice") noDevice();
    else if (mode == "fake") fake();
    else {
      std::fprintf(stderr, "usage: nincc_cuda_device_tests absent|nodevice|fake\n");
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
