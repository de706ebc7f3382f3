// Data-parallel gradient reduction on the arena (docs/distributed.md): a run of the backward program
// whose gradient buckets are scaled by this rank's share and summed over all ranks in place, either
// after the program or overlapped with it — each bucket handed to a communication thread as soon as
// the executor has run the last step that touches it. Either way every bucket is reduced in the same
// order with the same contents, so the two give bitwise the same result.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "collective.h"
#include "executor.h"
#include "model.h"
#include "plan.h"

namespace nincc {

// An element range of the grad space reduced in one collective.
struct GradientBucket {
  int64_t offset = 0;
  int64_t size = 0;
};

struct ReduceRequest {
  std::vector<GradientBucket> buckets;  // in the order every rank reduces them (last layer first)
  double weight = 1;                    // this rank's share of the global batch
  bool overlap = true;                  // reduce while the program still runs (where the device allows)
  bool state = true;                    // then the whole state space (BN running statistics), same weight
};

// Per bucket, the index of the last step of `program` with an argument in the bucket's range of the
// grad space: once it has run, the bucket's gradient is final. -1 when no step touches it.
std::vector<int64_t> bucketReadySteps(const Program& program, const std::vector<GradientBucket>& buckets);

// Runs `program` for n images and reduces the request's buckets (then the state space) with
// `collective`. Overlaps where the arena is host memory with synchronous launches (cpu, emu) and the
// collective takes host memory (a communication thread), and where the device queues its launches
// (cuda) and the collective takes its memory (NCCL: collectives queued on the device's communication
// stream behind events); MPI on a cuda arena (staged through the host) reduces after the program.
// How the last runAndReduce of this process spent its time (bench/distributed-reduce.ts): seconds
// inside the collectives (scaling and copies included; on cuda only the queueing), and seconds the
// caller waited for them after the program had finished (all of the former without overlap; what
// backward did not hide with it).
struct ReduceTiming {
  double reducing = 0;
  double exposed = 0;
};
ReduceTiming lastReduceTiming();

void runAndReduce(Model& model, Collective& collective, const std::string& program, int64_t n,
                  const ScalarValues& scalars, uint64_t seed, const ReduceRequest& request);

}  // namespace nincc
