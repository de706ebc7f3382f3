// Tests of the artifacts the runtime must refuse, each with the message a user would see:
// versions, libraries, symbols, hashes, truncated JSON and invalid fields.
#include <chrono>
#include <string>
#include <thread>

#include "check.h"
#include "fixture_artifact.h"
#include "integrity.h"
#include "model.h"

using nincc::Model;
using namespace nincc_test;

namespace {

// Loads a fixture whose plan.json has `from` replaced by `to`, expecting an error naming `fragment`.
#define CHECK_EDIT_FAILS(from, to, fragment)                                                  \
  do {                                                                                        \
    std::string dir_ = makeArtifactDir(replaceOnce(fixturePlanText(), from, to), fixtureLibrary()); \
    CHECK_THROWS_WITH(Model::load(dir_, "cpu"), std::string(fragment));                       \
  } while (0)

void refusesOtherVersionsAndFormats() {
  // A newer plan, and an older one: version 1 had no splitLocal, and a runtime of its time read a version-2 plan's
  // split program as if its slices' buffers lay batch-major, overlapping (round 17's bench:cpu).
  for (const char* version : {"3", "1"}) {
    std::string dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"version\": 2", std::string("\"version\": ") + version),
                                      fixtureLibrary());
    CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                         dir + "/plan.json: plan format version " + version + " is not supported by this runtime "
                               "(expects 2); rebuild whichever is older, the artifact with this nincc or the runtime (npm run build:native)");
  }
  std::string dir;
  dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"nincc-plan\"", "\"onnx\""), fixtureLibrary());
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/plan.json: not a nincc plan (\"format\" must be \"nincc-plan\")");
  dir = makeArtifactDir("[]", fixtureLibrary());
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/plan.json: (top level): expected an object, found an array");
}

void refusesMissingFiles() {
  std::string dir = makeArtifactDir(fixturePlanText(), "");
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/kernels.cpu.so: the cpu kernel library is missing (rebuild the "
                             "artifact with `nincc build`)");
  CHECK_THROWS_WITH(Model::load(dir + "/nowhere", "cpu"),
                    dir + "/nowhere/plan.json: cannot open the plan");
  CHECK_EDIT_FAILS("\"cpu\": \"kernels.cpu.so\"", "\"cuda\": \"kernels.fatbin\"",
                   "/plan.json: libraries has no entry for device \"cpu\" (it has: cuda); build with "
                   "--target cpu");
}

void refusesMismatchedLibraries() {
  std::string dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"k_sgd\"", "\"k_missing\""),
                                    fixtureLibrary());
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/kernels.cpu.so: kernel k_missing (layer 1 at fixture.model:3:3) is not in the "
                             "library's kernel table (the library does not match plan.json; rebuild the artifact)");
  dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"fixture-source-hash-1\"", "\"abc123\""),
                        fixtureLibrary());
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/kernels.cpu.so: source hash \"fixture-source-hash-1\" does not match "
                             "plan.json's sourceHash \"abc123\": the library and the plan come from "
                             "different builds; rebuild the artifact");
  dir = makeArtifactDir(fixturePlanText(), fixtureBadAbiLibrary());
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"),
                       dir + "/kernels.cpu.so: kernel ABI is \"nincc-cpu-0\" but this runtime "
                             "expects \"nincc-cpu-2\"; rebuild with this nincc");
  // A plan.json in place of the library: dlopen fails and says why.
  std::string notALibrary = makeArtifactDir("{}", "");
  dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"kernels.cpu.so\"",
                                    "\"" + notALibrary + "/plan.json\""), "");
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), notALibrary + "/plan.json: cannot load the cpu kernel library: ");
}

// A step may call only a kernel of the library's table, with the buffers it was generated for: not any
// symbol the process exports, nor another program's kernel (plans resealed, so the hash is not what stops them).
void callsOnlyTheKernelTable() {
  for (const char* symbol : {"abort", "exit", "free", "nincc_abi"})
    CHECK_EDIT_FAILS("\"kernel\": \"k_record\"", std::string("\"kernel\": \"") + symbol + "\"",
                     std::string("/kernels.cpu.so: kernel ") + symbol + " (layer 2 at fixture.model:4:3) is not in the library's kernel table");
  CHECK_EDIT_FAILS("\"kernel\": \"k_record\"", "\"kernel\": \"k_sgd\"",
                   "/kernels.cpu.so: kernel k_sgd (layer 2 at fixture.model:4:3) takes 2 buffers and 1 scalars, but the step "
                   "passes 1 and 0 (the library does not match plan.json; rebuild the artifact)");
  CHECK_EDIT_FAILS("\"kernel\": \"k_add_bias\"", "\"kernel\": \"k_sgd\"",
                   "/kernels.cpu.so: kernel k_sgd (layer 1 at fixture.model:3:3) takes 2 buffers and 1 scalars, but the step "
                   "passes 2 and 0");
  CHECK_EDIT_FAILS("{ \"space\": \"act\", \"offset\": 4, \"size\": 4 }, { \"space\": \"param\"",
                   "{ \"space\": \"act\", \"offset\": 4, \"size\": 3 }, { \"space\": \"param\"",
                   "/kernels.cpu.so: kernel k_add_bias (layer 1 at fixture.model:3:3) takes as argument 0 4 elements of act, "
                   "but the step passes 3 of act");
}

void refusesTruncatedJson() {
  std::string text = fixturePlanText();
  std::string dir = makeArtifactDir(text.substr(0, 300), fixtureLibrary());
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), dir + "/plan.json: invalid JSON at byte 300: unexpected end of input");
}

void namesTheJsonPathOfBadFields() {
  CHECK_EDIT_FAILS("\"act\": 9", "\"act\": -1",
                   "/plan.json: spaces.act: expected an integer in 0..1099511627776, found -1");
  CHECK_EDIT_FAILS("\"act\": 9", "\"activations\": 9", "/plan.json: spaces.act: missing required field");
  CHECK_EDIT_FAILS("\"maxBatch\": 8", "\"maxBatch\": \"8\"", "/plan.json: maxBatch: expected a number, found a string");
  CHECK_EDIT_FAILS("{ \"space\": \"act\", \"offset\": 4, \"size\": 4 }, { \"space\": \"param\"",
                   "{ \"space\": \"act\", \"offset\": 6, \"size\": 4 }, { \"space\": \"param\"",
                   "/plan.json: programs.infer.steps[1].args[0]: buffer [6, 10) lies outside the act "
                   "space of 9 elements per image");
  CHECK_EDIT_FAILS("\"dtype\": \"f32\"", "\"dtype\": \"f16\"",
                   "/plan.json: programs.infer.inputs.images.dtype: unknown dtype \"f16\" (expected f32, i32, u8 or bf16)");
  CHECK_EDIT_FAILS("\"space\": \"grad\"", "\"space\": \"grads\"",
                   "/plan.json: programs.sgd_update.steps[0].args[1].space: unknown space \"grads\" "
                   "(expected one of param, grad, momentum, state, fixed, act)");
  CHECK_EDIT_FAILS("\"shape\": [2, 2], \"offset\": 4, \"size\": 4", "\"shape\": [2, 3], \"offset\": 4, \"size\": 4",
                   "/plan.json: params[1].size: 4 does not match the shape's 6 elements");
  CHECK_EDIT_FAILS("\"kind\": \"uniform\"", "\"kind\": \"normal\"",
                   "/plan.json: params[1].init.kind: unknown init kind \"normal\"");
  CHECK_EDIT_FAILS("\"kernel\": \"k_record\"", "\"kernel\": \"k-record\"",
                   "/plan.json: programs.infer.steps[2].kernel: \"k-record\" is not a valid C symbol name");
  CHECK_EDIT_FAILS("\"scalars\": [\"lr\"]", "\"scalars\": [\"lr\", 3]",
                   "/plan.json: programs.sgd_update.steps[0].scalars[1]: expected a string, found a number");
  CHECK_EDIT_FAILS("\"name\": \"bn.running_mean\"", "\"name\": \"affine.bias\"",
                   "/plan.json: state[0].name: duplicate tensor name \"affine.bias\"");
  CHECK_EDIT_FAILS("\"infer\": {", "\"infer\": { \"splitBatch\": 1,",
                   "/plan.json: programs.infer.splitBatch: expected a boolean, found a number");
  // A slice's own region (splitLocal) must lie inside the act space of 9 elements per image.
  CHECK_EDIT_FAILS("\"infer\": {", "\"infer\": { \"splitLocal\": { \"from\": 4, \"stride\": 6 },",
                   "/plan.json: programs.infer.splitLocal.stride: expected an integer in 0..5, found 6");
  CHECK_EDIT_FAILS("\"infer\": {", "\"infer\": { \"splitLocal\": { \"from\": 10, \"stride\": 0 },",
                   "/plan.json: programs.infer.splitLocal.from: expected an integer in 0..9, found 10");
  CHECK_EDIT_FAILS("\"programs\": {", "\"tickets\": [ { \"space\": \"state\", \"offset\": 0, \"size\": 2 } ], \"programs\": {",
                   "/plan.json: tickets[0].space: must be \"fixed\": tickets live in the fixed space");
  CHECK_EDIT_FAILS("\"programs\": {", "\"tickets\": [ { \"space\": \"fixed\", \"offset\": 2, \"size\": 4 } ], \"programs\": {",
                   "/plan.json: tickets[0]: buffer [2, 6) lies outside the fixed space of 4 elements");
}

// A field this runtime does not read is refused, named by its path, at every level the loader reads: skipping it
// would run a newer compiler's plan as if the field were absent (docs/artifact.md, the versioning rule).
void refusesUnknownFields() {
  const std::string why = ": unknown field; this runtime (plan format version 2) does not read it; rebuild whichever "
                          "is older, the artifact with this nincc or the runtime (npm run build:native)";
  CHECK_EDIT_FAILS("\"maxBatch\": 8", "\"maxBatch\": 8, \"maxBatchPerRank\": 4", "/plan.json: maxBatchPerRank" + why);
  CHECK_EDIT_FAILS("\"act\": 9", "\"act\": 9, \"scratch\": 4", "/plan.json: spaces.scratch" + why);
  CHECK_EDIT_FAILS("\"name\": \"bn.running_mean\"", "\"name\": \"bn.running_mean\", \"dtype\": \"bf16\"",
                   "/plan.json: state[0].dtype" + why);
  CHECK_EDIT_FAILS("\"kind\": \"uniform\"", "\"kind\": \"uniform\", \"gain\": 2", "/plan.json: params[1].init.gain" + why);
  CHECK_EDIT_FAILS("\"field\": \"bias\"", "\"field\": \"bias\", \"transpose\": true",
                   "/plan.json: params[0].torch.transpose" + why);
  CHECK_EDIT_FAILS("\"infer\": {", "\"infer\": { \"splitTiles\": true,", "/plan.json: programs.infer.splitTiles" + why);
  CHECK_EDIT_FAILS("\"infer\": {", "\"infer\": { \"splitLocal\": { \"from\": 4, \"stride\": 0, \"align\": 4 },",
                   "/plan.json: programs.infer.splitLocal.align" + why);
  CHECK_EDIT_FAILS("\"kernel\": \"k_record\"", "\"kernel\": \"k_record\", \"stream\": 1",
                   "/plan.json: programs.infer.steps[2].stream" + why);
  CHECK_EDIT_FAILS("\"kernel\": \"k_record\"",
                   "\"kernel\": \"k_record\", \"launch\": { \"grid\": [1, 1, 1], \"block\": [32, 1, 1], \"shared\": 0, \"cluster\": 2 }",
                   "/plan.json: programs.infer.steps[2].launch.cluster" + why);
  CHECK_EDIT_FAILS("\"dtype\": \"f32\"", "\"dtype\": \"f32\", \"stride\": 2",
                   "/plan.json: programs.infer.inputs.images.stride" + why);
  CHECK_EDIT_FAILS("\"programs\": {", "\"tickets\": [ { \"space\": \"fixed\", \"offset\": 0, \"size\": 1, \"reset\": 0 } ], \"programs\": {",
                   "/plan.json: tickets[0].reset" + why);
  // integrity is written by the seal: add the field there and seal the plan's hash again.
  std::string dir = makeArtifactDir(fixturePlanText(), fixtureLibrary());
  std::string sealed = readFileForTest(dir + "/plan.json");
  size_t hashAt = sealed.find("\"plan\": \"") + 9;
  std::string edited = replaceOnce(sealed.substr(0, hashAt) + std::string(64, '0') + sealed.substr(hashAt + 64),
                                   "\"integrity\": {", "\"integrity\": { \"signature\": \"x\",");
  edited.replace(edited.find(std::string(64, '0')), 64, nincc::planTextHash(edited));
  writeFileForTest(dir + "/plan.json", edited);
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"), dir + "/plan.json: integrity.signature" + why);
  // The fields the compiler writes for the TypeScript runtime and for tools are known, so such a plan loads.
  dir = makeArtifactDir(replaceOnce(fixturePlanText(), "\"maxBatch\": 8",
                                    "\"maxBatch\": 8, \"macsPerImage\": 16, \"imageSize\": 2, \"cpuFeatures\": [\"avx2\"], "
                                    "\"precision\": \"bf16\", \"transform\": { \"mean\": [0], \"std\": [1] }, \"train\": {}, "
                                    "\"imageInput\": {}, \"untrainable\": \"\""),
                        fixtureLibrary());
  Model::load(dir, "cpu");
}

// Any edit after the build, of the plan or of the library, is refused before the library is opened.
void refusesEditedArtifacts() {
  std::string dir = makeArtifactDir(fixturePlanText(), fixtureLibrary(), false);
  CHECK_THROWS_EXACTLY(Model::load(dir, "cpu"), dir + "/plan.json: integrity: missing required field");

  dir = makeArtifactDir(fixturePlanText(), fixtureLibrary());
  std::string sealed = readFileForTest(dir + "/plan.json");
  writeFileForTest(dir + "/plan.json", replaceOnce(sealed, "\"offset\": 4, \"size\": 4 }, { \"space\": \"param\"",
                                                   "\"offset\": 5, \"size\": 4 }, { \"space\": \"param\""));
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), dir + "/plan.json: the plan's SHA-256 is ");
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), ": plan.json was edited or damaged after the build; rebuild the artifact");

  dir = makeArtifactDir(fixturePlanText(), fixtureLibrary());
  std::string library = readFileForTest(dir + "/kernels.cpu.so");
  library[library.size() / 2] ^= 1;
  writeFileForTest(dir + "/kernels.cpu.so", library);
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), dir + "/kernels.cpu.so: the cpu kernel library's SHA-256 is ");
  writeFileForTest(dir + "/kernels.cpu.so", library.substr(0, 4096));
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), "/plan.json records ");
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), ": the library was changed or damaged after the build; rebuild the artifact");
}

// A library hashed once is not read again while it is unchanged, but only once its file times are
// settled (they advance in coarse ticks): any later edit is still refused.
void remembersOnlySettledLibraryHashes() {
  std::string dir = makeArtifactDir(fixturePlanText(), fixtureLibrary());
  long reads = nincc::libraryHashReads();
  Model::load(dir, "cpu");
  Model::load(dir, "cpu");
  CHECK(nincc::libraryHashReads() == reads + 2);  // written just now: read at every load

  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  Model::load(dir, "cpu");
  Model::load(dir, "cpu");
  CHECK(nincc::libraryHashReads() == reads + 3);  // settled: read once more, then remembered

  std::string library = readFileForTest(dir + "/kernels.cpu.so");
  library[library.size() / 3] ^= 1;  // same size, same inode
  writeFileForTest(dir + "/kernels.cpu.so", library);
  CHECK_THROWS_WITH(Model::load(dir, "cpu"), dir + "/kernels.cpu.so: the cpu kernel library's SHA-256 is ");
}

void refusesUnknownDevices() {
  std::string dir = makeArtifactDir(fixturePlanText(), fixtureLibrary());
  CHECK_THROWS_WITH(Model::load(dir, "tpu"), "unknown device \"tpu\" (available: cpu");
}

}  // namespace

void runPlanErrorTests() {
  refusesOtherVersionsAndFormats();
  refusesMissingFiles();
  refusesMismatchedLibraries();
  callsOnlyTheKernelTable();
  refusesTruncatedJson();
  namesTheJsonPathOfBadFields();
  refusesUnknownFields();
  refusesEditedArtifacts();
  remembersOnlySettledLibraryHashes();
  refusesUnknownDevices();
}
