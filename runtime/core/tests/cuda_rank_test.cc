// The cuda rank path of data-parallel training without a GPU or NCCL (docs/distributed.md#nccl): run by
// ctest as `mpirun -np 2 nincc_cuda_rank_tests` over the fake CUDA driver (fake_cuda_driver.cc, with
// two GPUs and queued streams) and the fake NCCL (fake_nccl.cc, sums through MPI). Each rank checks
// that it opened the GPU of its local rank; that rank 0's NCCL unique id, carried by MPI, is the one
// both ranks joined with (and only rank 0 made one), on the rank's GPU; and that runAndReduce on a cuda arena gives
// bitwise the same gradients, statistics and SGD update overlapped and after backward, equal to the
// weighted sum of the ranks' own gradients, in bucket order, with the first bucket's collective run
// before backward's later kernels when overlapped: under a schedule where the communication stream
// runs as early as its events allow, and one where the compute stream does; the same with MPI summing
// the cuda arena through host copies (--reduce-with mpi).
#include <dlfcn.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "fixture_artifact.h"
#include "gpu_choice.h"
#include "gradient_reducer.h"
#include "model.h"
#include "mpi_library.h"
#include "nccl_library.h"

using namespace nincc;
using namespace nincc_test;

namespace nincc_test {
int failures = 0;
}

namespace {

// A fake-driver artifact: "backward" writes grad[4,8) at step 0 (bucket 0's last writer), changes its
// input at step 1, writes grad[0,4) at step 2 (bucket 1's) and runs a nop at step 3; "update" adds
// grad[0,4) to param[4,8) (an SGD update's reads); the state space is 2 floats.
std::string rankArtifact() {
  const std::string rule = "\"launch\": { \"grid\": [1, 1, 1], \"batchAxis\": 0, \"block\": [32, 1, 1], \"shared\": 0 }";
  auto ref = [](const char* space, int offset, int size) {
    return std::string("{ \"space\": \"") + space + "\", \"offset\": " + std::to_string(offset) + ", \"size\": " + std::to_string(size) + " }";
  };
  auto step = [&](const char* kernel, const std::string& args, const char* scalars) {
    return std::string("{ \"kernel\": \"") + kernel + "\", \"layer\": 1, \"source\": \"rank.model:1:1\", \"args\": [" + args +
           "], \"scalars\": [" + scalars + "], " + rule + " }";
  };
  const std::string scaleShift = "\"scale\", \"shift\"";
  const std::string plan =
      "{ \"format\": \"nincc-plan\", \"version\": 2, \"nincc\": \"0.1.0\", \"model\": \"rank\", \"sourceHash\": \"rank-source\",\n"
      "  \"input\": [1, 2, 2], \"output\": [4], \"classes\": 4, \"maxBatch\": 1, \"libraries\": { \"cuda\": \"kernels.fatbin\" },\n"
      "  \"spaces\": { \"param\": 8, \"grad\": 8, \"momentum\": 8, \"state\": 2, \"fixed\": 4, \"act\": 4 },\n"
      "  \"params\": [ { \"name\": \"w\", \"shape\": [8], \"offset\": 0, \"size\": 8, \"init\": { \"kind\": \"zeros\" },"
      " \"torch\": { \"index\": 1, \"field\": \"weight\" }, \"layer\": 1 } ],\n"
      "  \"state\": [ { \"name\": \"bn.running_mean\", \"shape\": [2], \"offset\": 0, \"size\": 2, \"init\": { \"kind\": \"zeros\" },"
      " \"torch\": { \"index\": 1, \"field\": \"running_mean\" }, \"layer\": 1 } ],\n"
      "  \"programs\": {\n"
      "    \"backward\": { \"inputs\": { \"images\": { \"space\": \"act\", \"offset\": 0, \"size\": 4, \"dtype\": \"f32\" } }, \"outputs\": {},\n"
      "      \"steps\": [ " + step("k_scale_add", ref("act", 0, 4) + ", " + ref("grad", 4, 4), scaleShift.c_str()) + ",\n" +
      "        " + step("k_add_bias", ref("act", 0, 4) + ", " + ref("param", 0, 4), "") + ",\n" +
      "        " + step("k_scale_add", ref("act", 0, 4) + ", " + ref("grad", 0, 4), scaleShift.c_str()) + ",\n" +
      "        " + step("k_record", "{ \"space\": \"fixed\", \"offset\": 0, \"size\": 4, \"dtype\": \"i32\" }", "") + " ] },\n"
      "    \"update\": { \"inputs\": {}, \"outputs\": {}, \"steps\": [ " + step("k_add_bias", ref("param", 4, 4) + ", " + ref("grad", 0, 4), "") + " ] }\n"
      "  }\n}\n";
  std::string dir = makeArtifactDir(plan, "", false);
  std::ofstream(dir + "/kernels.fatbin", std::ios::binary)
      << "nincc_source_hash=rank-source\n"
         "kernel:k_scale_add=scale_add\nnincc_signature_k_scale_add=ppiff\n"
         "kernel:k_add_bias=add_bias\nnincc_signature_k_add_bias=ppi\n"
         "kernel:k_record=nop\nnincc_signature_k_record=pi\n";
  sealArtifactDir(dir);
  return dir;
}

template <class F>
F fakeSymbol(const char* libraryVariable, const char* name) {
  void* library = dlopen(std::getenv(libraryVariable), RTLD_NOW | RTLD_NOLOAD);
  auto f = reinterpret_cast<F>(library ? dlsym(library, name) : nullptr);
  if (!f) throw std::runtime_error(std::string("the fake library of ") + libraryVariable + " lacks " + name);
  return f;
}

std::vector<std::string> executed() {
  auto at = fakeSymbol<const char* (*)(int)>("NINCC_CUDA_DRIVER", "fake_cuda_executed");
  std::vector<std::string> out;
  for (int i = 0; at(i); ++i) out.push_back(at(i));
  return out;
}

std::string allreduceLabel(const Model& model, Space space, int64_t offset, int64_t count) {
  char label[64];
  std::snprintf(label, sizeof label, "allreduce %p %lld", static_cast<void*>(static_cast<float*>(model.spaceBase(space)) + offset),
                static_cast<long long>(count));
  return label;
}

size_t indexOf(const std::vector<std::string>& log, const std::string& suffix) {
  for (size_t i = 0; i < log.size(); ++i)
    if (log[i].size() >= suffix.size() && log[i].compare(log[i].size() - suffix.size(), suffix.size(), suffix) == 0) return i;
  return log.size();
}

// What one rank holds after a step: grad, state and param spaces.
struct Result {
  std::vector<float> grad = std::vector<float>(8), state = std::vector<float>(2), param = std::vector<float>(8);
};

const std::vector<GradientBucket> kBuckets = {{4, 4}, {0, 4}};  // the last layer's first, as backward makes them

// This rank's inputs: different images, bias and statistics per rank.
void prepare(Model& model, int rank) {
  std::vector<float> images = {1.5f + float(rank), -0.25f, 3.0f, 0.125f * float(rank + 1)};
  std::vector<float> param = {0.5f, -1.0f, 0.25f * float(rank), 2.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  std::vector<float> state = {0.75f + float(rank), -2.0f};
  model.setInput("backward", "images", 1, images.data(), images.size() * 4);
  model.writeSpace("param", 0, 8, param.data());
  model.writeSpace("state", 0, 2, state.data());
}

Result read(Model& model) {
  Result r;
  model.readSpace("grad", 0, 8, r.grad.data());
  model.readSpace("state", 0, 2, r.state.data());
  model.readSpace("param", 0, 8, r.param.data());
  return r;
}

const ScalarValues kScalars = {{"scale", 0.3}, {"shift", 0.7}};

void deviceOrdinalIsTheLocalRank(int rank) {
  CHECK_EQ(fakeSymbol<int (*)()>("NINCC_CUDA_DRIVER", "fake_cuda_ordinal")(), rank);  // mpirun -np 2 on one machine
  // The rule itself, beyond what one machine with two fake GPUs shows.
  CHECK_EQ(chooseGpu({4, 3, 4, ""}), 3);
  CHECK_EQ(chooseGpu({2, 1, 2, "1,0"}), 0);
  CHECK_EQ(chooseGpu({1, 1, 2, "0,0"}), 0);
  CHECK_THROWS_WITH(chooseGpu({2, 0, 3, ""}), "3 ranks run on this machine and the driver sees 2 GPUs");
  CHECK_THROWS_WITH(chooseGpu({2, 2, 3, "0,1"}), "names 2 GPUs, and this process is local rank 2 of 3");
  CHECK_THROWS_WITH(chooseGpu({2, 0, 1, "2"}), "gives local rank 0 GPU 2, and the driver sees 2 GPUs");
  CHECK_THROWS_WITH(chooseGpu({2, 0, 1, "0,x"}), "is not a comma-separated list of GPU ordinals");
}

std::unique_ptr<NcclCollective> joinNccl(MpiLibrary& mpi) {
  // Rank 0's id, carried by MPI (runtime/distributed/backend.ts does the same through the addon).
  NcclUniqueId mine{};
  if (mpi.rank() == 0) mine = NcclLibrary::get().uniqueId();
  std::vector<uint8_t> all(kNcclUniqueIdBytes * size_t(mpi.size()));
  mpi.allgather(mine.data(), mine.size(), all.data());
  NcclUniqueId id{};
  std::memcpy(id.data(), all.data(), id.size());
  auto comm = std::make_unique<NcclCollective>(mpi.rank(), mpi.size(), id);
  // Both ranks joined with rank 0's id, which names rank 0's process; only rank 0 made one.
  std::vector<uint8_t> joined(kNcclUniqueIdBytes), everyone(kNcclUniqueIdBytes * size_t(mpi.size()));
  std::memcpy(joined.data(), fakeSymbol<const char* (*)()>("NINCC_NCCL_LIBRARY", "fake_nccl_joined_id")(), joined.size());
  mpi.allgather(joined.data(), joined.size(), everyone.data());
  CHECK(std::memcmp(everyone.data(), everyone.data() + kNcclUniqueIdBytes, kNcclUniqueIdBytes) == 0);
  CHECK(std::string(reinterpret_cast<const char*>(everyone.data())).find("fake-nccl-id of pid ") == 0);
  CHECK_EQ(fakeSymbol<int (*)()>("NINCC_NCCL_LIBRARY", "fake_nccl_unique_ids")(), mpi.rank() == 0 ? 1 : 0);
  // On this rank's GPU, though the calling thread had no context current.
  CHECK_EQ(fakeSymbol<int (*)()>("NINCC_NCCL_LIBRARY", "fake_nccl_joined_on")(), mpi.rank());
  return comm;
}

// One step: backward with its reduction, then the update; `schedule` as fake_cuda_set_schedule.
Result step(Model& model, Collective& nccl, int rank, double weight, bool overlap, int schedule, std::vector<std::string>& log) {
  fakeSymbol<void (*)(int)>("NINCC_CUDA_DRIVER", "fake_cuda_set_schedule")(0);
  prepare(model, rank);
  model.writeSpace("grad", 0, 8, std::vector<float>(8, -9.0f).data());  // stale values a wrong order would leave
  // Staging that still held the last step's sums would hide a missing wait (the shares add up to 1).
  float* staging = model.device().hostStaging(8);
  std::fill(staging, staging + 8, -7.0f);
  fakeSymbol<void (*)(int)>("NINCC_CUDA_DRIVER", "fake_cuda_set_schedule")(schedule);
  fakeSymbol<void (*)()>("NINCC_CUDA_DRIVER", "fake_cuda_clear_executed")();
  ReduceRequest request;
  request.buckets = kBuckets;
  request.weight = weight;
  request.overlap = overlap;
  runAndReduce(model, nccl, "backward", 1, kScalars, 1, request);
  model.run("update", 1, {}, 1);
  log = executed();
  Result r = read(model);
  fakeSymbol<void (*)(int)>("NINCC_CUDA_DRIVER", "fake_cuda_set_schedule")(0);
  return r;
}

void reducesOnTheCommunicationStream(MpiLibrary& mpi, Model& model, Collective& nccl) {
  const int rank = mpi.rank();
  const double weight = rank == 0 ? 0.25 : 0.75;  // shares of a global batch of 4 split 1 + 3
  // The expected sum: each rank's own gradients and statistics (a plain run), weighted in float as
  // NCCL's pre-multiplied sum does, added over the ranks.
  prepare(model, rank);
  model.run("backward", 1, kScalars, 1);
  Result own = read(model);
  std::vector<float> mine(own.grad);
  mine.insert(mine.end(), own.state.begin(), own.state.end());
  for (float& v : mine) v *= float(weight);
  std::vector<float> all(mine.size() * 2);
  mpi.allgather(reinterpret_cast<const uint8_t*>(mine.data()), mine.size() * 4, reinterpret_cast<uint8_t*>(all.data()));
  std::vector<float> expected(mine.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = all[i] + all[mine.size() + i];

  const std::string bucket0 = allreduceLabel(model, Space::Grad, 4, 4), bucket1 = allreduceLabel(model, Space::Grad, 0, 4),
                    state = allreduceLabel(model, Space::State, 0, 2);
  for (int schedule : {1, 2}) {
    std::vector<std::string> afterLog, overlapLog;
    const Result after = step(model, nccl, rank, weight, false, schedule, afterLog);
    const Result overlapped = step(model, nccl, rank, weight, true, schedule, overlapLog);
    for (const Result* r : {&after, &overlapped}) {
      std::vector<float> got(r->grad);
      got.insert(got.end(), r->state.begin(), r->state.end());
      CHECK(std::memcmp(got.data(), expected.data(), got.size() * 4) == 0);
      // The update read the summed gradients: param[4 + i] = own param (1) + sum grad[i].
      for (int i = 0; i < 4; ++i) CHECK(r->param[size_t(4 + i)] == 1.0f + expected[size_t(i)]);
    }
    CHECK(std::memcmp(after.param.data(), overlapped.param.data(), 32) == 0);
    for (const std::vector<std::string>* log : {&afterLog, &overlapLog}) {
      // Bucket order, then the statistics, all on the communication stream (the device's second).
      const size_t b0 = indexOf(*log, bucket0), b1 = indexOf(*log, bucket1), s = indexOf(*log, state);
      CHECK(b0 < b1 && b1 < s && s < log->size());
      CHECK(b0 < log->size() && (*log)[b0].compare(0, 3, "s1 ") == 0);
      // The update ran after the last collective.
      CHECK(!log->empty() && log->back() == "s0 add_bias" && s + 1 < log->size());
    }
    // Overlapped, bucket 0 is summed while backward's later kernels wait: where the communication
    // stream runs first, before step 1 (the first add_bias); after backward, only after step 3.
    const size_t firstAddBias = indexOf(overlapLog, "s0 add_bias"), nop = indexOf(overlapLog, "s0 nop");
    if (schedule == 1) CHECK(indexOf(overlapLog, bucket0) < firstAddBias);
    CHECK(indexOf(afterLog, bucket0) > indexOf(afterLog, "s0 nop"));
    CHECK(nop < overlapLog.size());
    if (failures) {
      std::fprintf(stderr, "rank %d schedule %d overlapped:", rank, schedule);
      for (const std::string& e : overlapLog) std::fprintf(stderr, " [%s]", e.c_str());
      std::fprintf(stderr, "\n");
    }
  }
}

// --reduce-with mpi on a cuda arena: each bucket copied to the host, summed by MPI, copied back.
// Overlapped, the copies go on the communication stream as buckets become final and a thread sums
// them; after backward, through the compute stream. Both bitwise the expected sum (MPI's own rounding:
// float(double(g) × share)), with the update reading it, and overlapped bucket 0 leaves for the host
// before backward's later kernels have run where the communication stream runs first.
void reducesThroughTheHost(MpiLibrary& mpi, Model& model) {
  const int rank = mpi.rank();
  const double weight = rank == 0 ? 0.25 : 0.75;
  prepare(model, rank);
  model.run("backward", 1, kScalars, 1);
  Result own = read(model);
  std::vector<float> mine(own.grad);
  mine.insert(mine.end(), own.state.begin(), own.state.end());
  for (float& v : mine) v = float(double(v) * weight);
  std::vector<float> all(mine.size() * 2);
  mpi.allgather(reinterpret_cast<const uint8_t*>(mine.data()), mine.size() * 4, reinterpret_cast<uint8_t*>(all.data()));
  std::vector<float> expected(mine.size());
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = all[i] + all[mine.size() + i];
  char bucket0[64];
  std::snprintf(bucket0, sizeof bucket0, "dtoh %p 16", static_cast<void*>(static_cast<float*>(model.spaceBase(Space::Grad)) + 4));
  for (int schedule : {1, 2}) {
    std::vector<std::string> afterLog, overlapLog;
    const Result after = step(model, mpi, rank, weight, false, schedule, afterLog);
    const Result overlapped = step(model, mpi, rank, weight, true, schedule, overlapLog);
    for (const Result* r : {&after, &overlapped}) {
      std::vector<float> got(r->grad);
      got.insert(got.end(), r->state.begin(), r->state.end());
      CHECK(std::memcmp(got.data(), expected.data(), got.size() * 4) == 0);
      for (int i = 0; i < 4; ++i) CHECK(r->param[size_t(4 + i)] == 1.0f + expected[size_t(i)]);
    }
    const size_t copied = indexOf(overlapLog, bucket0);
    CHECK(copied < overlapLog.size() && overlapLog[copied].compare(0, 3, "s1 ") == 0);
    if (schedule == 1) CHECK(copied < indexOf(overlapLog, "s0 add_bias"));
    CHECK(indexOf(afterLog, bucket0) > indexOf(afterLog, "s0 nop"));
  }
}

}  // namespace

int main() {
  int rank = -1;
  try {
    MpiLibrary& mpi = MpiLibrary::world();
    rank = mpi.rank();
    if (mpi.size() != 2) throw std::runtime_error("run under mpirun -np 2 (ctest does)");
    std::unique_ptr<Model> model = Model::load(rankArtifact(), "cuda");
    deviceOrdinalIsTheLocalRank(rank);
    // Joined from a thread of its own, where no CUDA context is current (the addon's main thread may
    // have none either: models load on worker threads).
    std::unique_ptr<NcclCollective> nccl;
    std::exception_ptr joinFailure;
    std::thread([&] {
      try {
        nccl = joinNccl(mpi);
      } catch (...) {
        joinFailure = std::current_exception();
      }
    }).join();
    if (joinFailure) std::rethrow_exception(joinFailure);
    reducesOnTheCommunicationStream(mpi, *model, *nccl);
    reducesThroughTheHost(mpi, *model);
    model.reset();
    nccl.reset();
    // Every rank's verdict, so that both report a failure on either.
    double failed = failures;
    mpi.allreduceSum(&failed, 1);
    if (failed > 0 && failures == 0) ++failures;
    mpi.finalize();
  } catch (const std::exception& e) {
    ++failures;
    std::fprintf(stderr, "rank %d: unexpected exception: %s\n", rank, e.what());
    removeFixtureDirs();
    std::fflush(stderr);
    std::_Exit(1);  // the other rank may wait in a collective: mpirun ends it when this one exits nonzero
  }
  removeFixtureDirs();
  std::printf("cuda ranks (rank %d): %s\n", rank, failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
