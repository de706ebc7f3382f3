// Model: a loaded artifact on one device — its plan, its arena and its executor — and the calls a
// host makes: run a program, copy named inputs in and outputs out, read and write tensors.
// Not thread-safe: one caller at a time (the N-API binding enforces that with a busy flag), except that
// stageInputs may be called while run() runs on another thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "arena.h"
#include "device.h"
#include "executor.h"
#include "plan.h"

namespace nincc {

class Model {
 public:
  // Reads DIR/plan.json, opens the device's library from plan.libraries, resolves every kernel
  // and allocates the arena.
  static std::unique_ptr<Model> load(const std::string& dir, const std::string& deviceName);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Plan& plan() const { return plan_; }
  std::string deviceName() const { return device_->name(); }
  int64_t maxBatch() const { return plan_.maxBatch; }
  const std::vector<int64_t>& inputShape() const { return plan_.input; }
  const std::vector<int64_t>& outputShape() const { return plan_.output; }
  int64_t classes() const { return plan_.classes; }
  const std::vector<TensorEntry>& params() const { return plan_.params; }
  const std::vector<TensorEntry>& state() const { return plan_.state; }

  void run(const std::string& program, int64_t n, const ScalarValues& scalars, uint64_t seed,
           const StepDone& stepDone = nullptr);
  const Program& program(const std::string& name) const { return executor_->program(name); }
  Device& device() { return *device_; }
  // A space's first element and its elements (act: for maxBatch images), for the gradient reducer.
  void* spaceBase(Space space) const { return arena_->base(space); }
  int64_t spaceCapacity(Space space) const { return arena_->capacity(space); }

  // A program's named input or output buffer; throws naming the ones that exist.
  const BufferRef& inputRef(const std::string& program, const std::string& name) const;
  const BufferRef& outputRef(const std::string& program, const std::string& name) const;
  // Elements of a buffer for n images (act: size*n); throws unless 1 <= n <= maxBatch.
  int64_t elementsFor(const BufferRef& ref, int64_t n) const;
  // Copies exactly the buffer's bytes for n images (an act buffer holds size*n elements).
  void setInput(const std::string& program, const std::string& name, int64_t n, const void* data,
                size_t bytes);
  void getOutput(const std::string& program, const std::string& name, int64_t n, void* data,
                 size_t bytes);
  // One named input of a staged batch: its bytes, checked as setInput checks them.
  struct NamedInput {
    std::string name;
    const void* data;
    size_t bytes;
  };
  // Stages the inputs of a later run of `program` on n images (docs/design.md#staged-input): the next
  // run of that program takes them, in the order staged; on cuda their copy overlaps a running step.
  // Throws when two batches are already staged, or for a wrong input name or size; `data` may be
  // reused when it returns. run() throws if the oldest staged batch of its program has another n.
  void stageInputs(const std::string& program, int64_t n, const std::vector<NamedInput>& inputs);
  size_t stagedBatches() const;
  // Forgets every staged batch no run has taken (a loop that stopped with the next batch staged), so the
  // next run sets its inputs or takes a batch staged after this; returns how many were dropped. On cuda
  // it waits for their copies, so no staged copy is left running. Not while a run is in flight.
  size_t discardStaged();

  // count elements at an element offset of a space ("param", "grad", "momentum", "state",
  // "fixed" or "act"); param/grad/momentum share the offsets listed in params().
  void readSpace(const std::string& space, int64_t offset, int64_t count, float* out);
  void writeSpace(const std::string& space, int64_t offset, int64_t count, const float* in);
  // Throws unless the space exists and [offset, offset+count) lies inside it.
  void checkSpaceRange(const std::string& space, int64_t offset, int64_t count) const {
    spaceRange(space, offset, count);
  }

 private:
  Model(Plan plan, std::unique_ptr<Device> device);
  void checkBytes(const char* direction, const std::string& program, const std::string& name,
                  const BufferRef& ref, int64_t n, size_t bytes) const;
  void* spaceRange(const std::string& space, int64_t offset, int64_t count) const;

  // Declaration order is destruction order in reverse: the arena releases through the device.
  Plan plan_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<Executor> executor_;
  // The staged batches not yet taken, oldest first: (program, n). Guarded: stageInputs runs on the
  // JS thread while run() runs on a worker.
  mutable std::mutex stagedMutex_;
  std::deque<std::pair<std::string, int64_t>> staged_;
};

}  // namespace nincc
